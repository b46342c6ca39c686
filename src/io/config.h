/* SPDX-License-Identifier: Apache-2.0 */
/* config.h — typed component configs, parsed from a diffusers/transformers config.json.
 *
 * Missing keys take the reference implementation's defaults (the constructor defaults
 * of the diffusers / transformers classes); a key with the wrong JSON type or an
 * impossible value is CANVAS_ERR_INPUT naming the file and the key. A key that is
 * present with the value null counts as absent (its default applies), except where a
 * field says otherwise. When a diffusers "_class_name" is present it must name the
 * expected class (so a VAE config given as a transformer config is caught).
 * The *_default functions fill in the class defaults; the *_load functions start from
 * them, apply the file and validate; on failure *out is unspecified. Every size and
 * count must lie between 1 and a sanity bound (widths 2^20, layers/heads 4096), so that
 * a hostile file cannot make the architecture code allocate without limit. */
#ifndef CANVAS_IO_CONFIG_H
#define CANVAS_IO_CONFIG_H

#include <stdbool.h>

#include "canvas.h"

struct json_t; /* jansson */

/* QwenImageTransformer2DModel */
typedef struct qwen_dit_config {
    int patch_size;            /* 2 */
    int in_channels;           /* 64 */
    int out_channels;          /* 16 (null -> in_channels) */
    int num_layers;            /* 60 */
    int attention_head_dim;    /* 128 */
    int num_attention_heads;   /* 24 */
    int joint_attention_dim;   /* 3584 */
    int axes_dims_rope[3];     /* 16, 56, 56 */
    bool guidance_embeds;      /* false; unused by the model */
    bool zero_cond_t;          /* false; true for Edit-2511 */
    bool use_additional_t_cond;/* false; Qwen-Image-Layered only (unsupported) */
    bool use_layer3d_rope;     /* false; Qwen-Image-Layered only (unsupported) */
} qwen_dit_config;

/* inner dim = heads x head_dim */
static inline int qwen_dit_inner_dim(const qwen_dit_config *c) { return c->num_attention_heads * c->attention_head_dim; }

/* Validates: every size positive, axes_dims_rope three even entries summing to
 * attention_head_dim. The two Qwen-Image-Layered flags are parsed and kept as given;
 * arch_dit refuses them (CANVAS_ERR_UNSUPPORTED), so a config can still be read. */
canvas_status qwen_dit_config_load(const char *config_json_path, qwen_dit_config *out);
void qwen_dit_config_default(qwen_dit_config *out);

/* AutoencoderKLQwenImage */
#define VAE_MAX_LEVELS 8
#define VAE_MAX_Z_DIM 64
typedef struct vae_config {
    int base_dim;                             /* 96 */
    int z_dim;                                /* 16 (latent channels) */
    int n_dim_mult;                           /* 4 */
    int dim_mult[VAE_MAX_LEVELS];             /* 1, 2, 4, 4 */
    int num_res_blocks;                       /* 2 */
    int n_attn_scales;                        /* 0 (arch_vae supports only none) */
    double attn_scales[VAE_MAX_LEVELS];
    int n_temperal_downsample;                /* n_dim_mult - 1 ("temperal" is the real key) */
    bool temperal_downsample[VAE_MAX_LEVELS]; /* false, true, true */
    double dropout;                           /* 0.0 */
    int input_channels;                       /* 3 */
    double latents_mean[VAE_MAX_Z_DIM];       /* z_dim entries; defaults are Qwen-Image's 16 */
    double latents_std[VAE_MAX_Z_DIM];        /* z_dim entries, all > 0 */
} vae_config;

/* Validates: sizes positive, 1..VAE_MAX_LEVELS dim_mult entries, temperal_downsample
 * with exactly n_dim_mult-1 entries, latents_mean/std with exactly z_dim entries (the
 * 16-entry defaults apply only when z_dim is 16), dropout in [0, 1). */
canvas_status vae_config_load(const char *config_json_path, vae_config *out);
void vae_config_default(vae_config *out);
/* Spatial downscale factor: 2^(n_dim_mult-1) (8 for the real VAE). */
int vae_scale_factor(const vae_config *c);

/* FlowMatchEulerDiscreteScheduler */
typedef enum time_shift_type { TIME_SHIFT_EXPONENTIAL = 0, TIME_SHIFT_LINEAR } time_shift_type;
typedef struct scheduler_config {
    int num_train_timesteps;      /* 1000 */
    double shift;                 /* 1.0 */
    bool use_dynamic_shifting;    /* false (true for Qwen-Image) */
    double base_shift;            /* 0.5 */
    double max_shift;             /* 1.15 (0.9 for Qwen-Image) */
    int base_image_seq_len;       /* 256 */
    int max_image_seq_len;        /* 4096 (8192 for Qwen-Image) */
    bool invert_sigmas;           /* false */
    double shift_terminal;        /* 0 = none (absent or null); 0.02 for Qwen-Image */
    bool use_karras_sigmas;       /* false; at most one of the three sigma options */
    bool use_exponential_sigmas;  /* false */
    bool use_beta_sigmas;         /* false */
    time_shift_type time_shift;   /* "exponential" (key time_shift_type) */
    bool stochastic_sampling;     /* false */
} scheduler_config;

/* Validates: num_train_timesteps > 0, shift > 0, base_image_seq_len < max_image_seq_len
 * (dynamic shift divides by their difference), 0 <= shift_terminal < 1, at most one
 * of the karras/exponential/beta options, time_shift_type "exponential" or "linear". */
canvas_status scheduler_config_load(const char *config_json_path, scheduler_config *out);
/* The same fields from an object inside another JSON file (a golden case's
 * "scheduler_config"); errors name `path` and `key`. */
canvas_status scheduler_config_from_json(struct json_t *object, const char *path, const char *key,
                                         scheduler_config *out);
void scheduler_config_default(scheduler_config *out);

/* Qwen2_5_VLForConditionalGeneration: the language model part (Qwen2_5_VLTextConfig). */
typedef struct textenc_text_config {
    int vocab_size;               /* 152064 */
    int hidden_size;              /* 8192 (3584 in Qwen-Image) */
    int intermediate_size;        /* 29568 (18944) */
    int num_hidden_layers;        /* 80 (28) */
    int num_attention_heads;      /* 64 (28) */
    int num_key_value_heads;      /* 8 (4); divides num_attention_heads */
    int head_dim;                 /* derived: hidden_size / num_attention_heads */
    char hidden_act[16];          /* "silu" */
    int max_position_embeddings;  /* 32768 (128000) */
    double rms_norm_eps;          /* 1e-5 (1e-6) */
    double rope_theta;            /* 1e6 */
    int mrope_section[3];         /* rope_scaling.mrope_section (16, 24, 24); all 0 when absent */
    bool use_sliding_window;      /* false */
    int sliding_window;           /* 4096 */
    int max_window_layers;        /* 80 */
    double attention_dropout;     /* 0.0 */
} textenc_text_config;

/* The vision tower (Qwen2_5_VLVisionConfig). */
#define TEXTENC_MAX_FULLATT 64
typedef struct textenc_vision_config {
    int depth;                    /* 32 */
    int hidden_size;              /* 3584 (1280 in Qwen-Image) */
    int num_heads;                /* 16; divides hidden_size */
    int intermediate_size;        /* 3420 */
    char hidden_act[16];          /* "silu" */
    int in_channels;              /* 3 (older files: "in_chans") */
    int patch_size;               /* 14 */
    int temporal_patch_size;      /* 2 */
    int spatial_merge_size;       /* 2 */
    int window_size;              /* 112 (pixels) */
    int out_hidden_size;          /* 3584; must equal the text hidden_size */
    int tokens_per_second;        /* 4 (2) */
    int n_fullatt_blocks;         /* 4 */
    int fullatt_block_indexes[TEXTENC_MAX_FULLATT]; /* 7, 15, 23, 31 */
} textenc_vision_config;

typedef struct textenc_config {
    textenc_text_config text;     /* "text_config", or the top-level keys when it is absent */
    textenc_vision_config vision; /* "vision_config" */
    int image_token_id;           /* 151655 */
    int video_token_id;           /* 151656 */
    int vision_start_token_id;    /* 151652 */
    int vision_end_token_id;      /* 151653 */
    int vision_token_id;          /* 151654 */
    int bos_token_id;             /* 151643 */
    int eos_token_id;             /* 151645 */
    bool tie_word_embeddings;     /* false: lm_head.weight is its own tensor */
} textenc_config;

/* Text keys come from "text_config" when present (as transformers >= 4.50 writes it),
 * otherwise from the top level (older files); token ids and tie_word_embeddings from
 * the top level, falling back to text_config. Validates: sizes positive, heads divide
 * hidden sizes, kv heads divide heads, mrope_section (when given) sums to head_dim/2,
 * model_type (when given) "qwen2_5_vl", vision out_hidden_size == text hidden_size. */
canvas_status textenc_config_load(const char *config_json_path, textenc_config *out);
void textenc_config_default(textenc_config *out);

/* Qwen2VLImageProcessor: a model's processor/preprocessor_config.json. Only the slow
 * (PIL) path with every step on is implemented, so do_resize, do_rescale, do_normalize
 * and do_convert_rgb must be true when given. min/max pixels come from "size"
 * {"shortest_edge", "longest_edge"} (newer files), overridden by "min_pixels" /
 * "max_pixels" when present, as transformers does. */
typedef struct vl_image_config {
    int patch_size;               /* 14 */
    int temporal_patch_size;      /* 2 */
    int merge_size;               /* 2; smart_resize's factor is patch_size · merge_size */
    int min_pixels;               /* 3136 (56·56) */
    int max_pixels;               /* 1003520 (28·28·1280); Qwen2.5-VL's file: 12845056 */
    int resample;                 /* PIL's code: 3 BICUBIC (1 LANCZOS and 2 BILINEAR accepted) */
    double rescale_factor;        /* 1/255 */
    double image_mean[3];         /* OPENAI_CLIP_MEAN */
    double image_std[3];          /* OPENAI_CLIP_STD; each > 0 */
} vl_image_config;

/* Validates: sizes in 1..1024 (pixels 1..2^28, min <= max), rescale_factor > 0, three
 * means and three positive stds, image_processor_type (when given) Qwen2VLImageProcessor
 * or its Fast variant (computed as the slow one). */
canvas_status vl_image_config_load(const char *preprocessor_config_path, vl_image_config *out);
void vl_image_config_default(vl_image_config *out);

/* model_index.json of a diffusers pipeline folder. */
#define PIPELINE_MAX_COMPONENTS 16
typedef struct pipeline_component {
    char name[32];                /* folder name: "transformer", "vae", ... */
    char library[32];             /* "diffusers" / "transformers" */
    char class_name[64];          /* "QwenImageTransformer2DModel", ... */
} pipeline_component;

typedef struct pipeline_index {
    char class_name[64];          /* "QwenImageEditPlusPipeline" */
    int n_components;             /* in file order; [null, null] entries are left out */
    pipeline_component components[PIPELINE_MAX_COMPONENTS];
} pipeline_index;

/* Keys starting with '_' are metadata; other keys must be [library, class] pairs of
 * strings (or [null, null] for an absent optional component), or plain values
 * (booleans such as "requires_safety_checker"), which are skipped. */
canvas_status pipeline_index_load(const char *model_index_path, pipeline_index *out);
/* The component of that name, or NULL. */
const pipeline_component *pipeline_index_find(const pipeline_index *index, const char *name);

#endif
