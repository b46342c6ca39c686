/* SPDX-License-Identifier: Apache-2.0 */
/* qwen_image_rope.c — the position and time encodings of the Qwen-Image transformer:
 * the 3-axis "MSRoPE" rotation tables of the joint sequence and the sinusoidal timestep
 * projection (spec/qwen-image-transformer.md §3.3, §3.4).
 *
 * Both follow torch's float32 arithmetic step by step (arguments rounded to float32
 * exactly where torch rounds them); cos and sin are then taken in double and rounded,
 * which is what torch's float32 cos/sin give to within an ulp. The arguments reach
 * ~1000 rad, so computing them in double instead would move results by up to ~1e-4. */
#include <math.h>

#include "models/qwen_image_dit.h"

void qwen_dit_timestep_sinusoid(float t, float out[QWEN_DIT_TIME_CHANNELS])
{
    const int half = QWEN_DIT_TIME_CHANNELS / 2;
    /* exponent = -ln(max_period) * arange(half) / (half - downscale_freq_shift), shift 0 */
    const float neg_log_period = -(float)log(10000.0);
    for (int k = 0; k < half; k++) {
        float exponent = (neg_log_period * (float)k) / (float)half;
        float freq = (float)exp((double)exponent);
        float arg = 1000.0f * (t * freq);          /* scale applied after the product, as torch does */
        out[k] = (float)cos((double)arg);          /* flip_sin_to_cos: cos half first */
        out[half + k] = (float)sin((double)arg);
    }
}

/* Inverse frequencies of one axis: 1 / theta^(2j / dim), j < dim/2, in float32. */
static float axis_inv_freq(int j, int axis_dim)
{
    float exponent = (float)(2 * j) / (float)axis_dim;
    float power = (float)pow((double)QWEN_DIT_ROPE_THETA, (double)exponent);
    return 1.0f / power;
}

/* Fill one token's pairs: positions per axis, pairs laid out [frame | height | width]. */
static void rope_token(const qwen_dit_config *config, const int position[3], float *cos_row, float *sin_row)
{
    int pair = 0;
    for (int axis = 0; axis < 3; axis++) {
        int axis_dim = config->axes_dims_rope[axis];
        for (int j = 0; j < axis_dim / 2; j++, pair++) {
            float angle = (float)position[axis] * axis_inv_freq(j, axis_dim);
            cos_row[pair] = (float)cos((double)angle);
            sin_row[pair] = (float)sin((double)angle);
        }
    }
}

void qwen_dit_rope_tables(const qwen_dit_config *config, const qwen_dit_image_shape *shapes, int n_images, int64_t n_txt,
                     float *cos_out, float *sin_out)
{
    const int pairs = config->attention_head_dim / 2;

    /* Text positions start after the largest image half-extent (scale_rope=True). */
    int max_vid_index = 0;
    for (int i = 0; i < n_images; i++) {
        int half_h = shapes[i].height / 2, half_w = shapes[i].width / 2;
        int m = half_h > half_w ? half_h : half_w;
        if (m > max_vid_index) max_vid_index = m;
    }
    int64_t row = 0;
    for (int64_t j = 0; j < n_txt; j++, row++) {
        int p = max_vid_index + (int)j;
        int position[3] = {p, p, p};
        rope_token(config, position, cos_out + row * pairs, sin_out + row * pairs);
    }

    /* Image k: frame index k + f; rows and columns centred, odd sizes get the extra
     * negative position: -(H - H/2) .. H/2 - 1. */
    for (int i = 0; i < n_images; i++) {
        const qwen_dit_image_shape *s = &shapes[i];
        for (int f = 0; f < s->frames; f++)
            for (int y = 0; y < s->height; y++)
                for (int x = 0; x < s->width; x++, row++) {
                    int position[3] = {i + f, y - (s->height - s->height / 2), x - (s->width - s->width / 2)};
                    rope_token(config, position, cos_out + row * pairs, sin_out + row * pairs);
                }
    }
}
