/* SPDX-License-Identifier: Apache-2.0 */
/* test_soak.c — one process, one model, 100 edits in a row through the library API, as a
 * server runs them: every 10th job is cancelled after its first step. What the model holds
 * between jobs must not grow (host and device bytes exactly as after the first job), each
 * job's device and host peaks must be the first job's, every image the same bytes, and
 * the process's resident set flat after the first few jobs (allocator caches and lazily
 * touched pages settle there; checked loosely: at most 16 MiB of growth from job 5 to
 * job 100, from job 50 under ASan, see RSS_FROM_JOB). Prints the RSS at jobs 1, 5, 50 and
 * 100. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

#define JOBS 100
#define RSS_SLACK_BYTES (16u << 20)
/* The job the RSS is measured from. Under ASan freed blocks wait in its quarantine before
 * their pages can be reused, so the RSS climbs until that is full and is flat only after it;
 * LeakSanitizer checks the leaks there. The default quarantine (256 MiB) filled only around
 * job 50, a few MiB a job, so ctest runs this program with quarantine_size_mb=8 in
 * ASAN_OPTIONS (CMakeLists.txt): full within the first jobs. */
#ifdef CANVAS_SANITIZE_BUILD
#define RSS_FROM_JOB 50
#else
#define RSS_FROM_JOB 5
#endif

typedef struct job_stop {
    int stop_after_step;    /* 0: never */
    int stop;
} job_stop;

static void on_progress(void *ctx, const canvas_progress *p)
{
    job_stop *s = ctx;
    if (p->kind == CANVAS_PROGRESS_STEP && p->step == s->stop_after_step) s->stop = 1;
}

static int on_cancel(void *ctx) { return ((job_stop *)ctx)->stop; }

static void test_hundred_edits(void)
{
    char dir[4096], path[4200], model_dir[4200];
    test_path(dir, sizeof dir, "golden/cases/edit-cfg");
    snprintf(model_dir, sizeof model_dir, "%s/../../models/edit-tiny", dir);
    canvas_prompt prompt = {0};
    canvas_image image = {0}, first = {0};
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    CHECK_OK(canvas_prompt_load(path, &prompt));
    snprintf(path, sizeof path, "%s/image0.png", dir);
    CHECK_OK(canvas_image_load(path, &image));
    canvas_options o;
    canvas_options_default(&o);
    o.vram_bytes = 16u << 20; /* a capped device: the transformer's blocks and activations live there */
    canvas_model *m = NULL;
    CHECK_OK(canvas_open(model_dir, &o, &m));
    if (!m || !prompt.positive.values || !image.pixels) goto done;

    canvas_edit_params e;
    canvas_edit_params_default(&e);
    e.steps = 2;
    e.vae_area = 64 * 64;
    e.seed = 11;
    e.cancel = on_cancel;
    canvas_memory_snapshot after_first = {0}, s;
    uint64_t first_device_peak = 0, first_host_peak = 0, rss_from = 0, rss_max = 0;
    int images_differ = 0, held_moved = 0, peaks_moved = 0, completed = 0, cancelled = 0;
    for (int job = 1; job <= JOBS; job++) {
        CHECK_OK(canvas_profile_reset(m));
        job_stop stop = {.stop_after_step = job % 10 == 0 ? 1 : 0};
        e.cancel_ctx = &stop;
        canvas_image out = {0};
        canvas_status st = canvas_edit(m, &prompt, &image, 1, &e, on_progress, &stop, &out);
        if (stop.stop_after_step) {
            CHECK(st == CANVAS_ERR_CANCELLED && out.pixels == NULL);
            cancelled += st == CANVAS_ERR_CANCELLED;
        } else {
            CHECK_OK(st);
            completed += st == CANVAS_OK;
            if (!first.pixels) first = out;
            else {
                images_differ += out.width != first.width || out.height != first.height ||
                                 memcmp(out.pixels, first.pixels, (size_t)out.width * out.height * 3) != 0;
                canvas_image_free(&out);
            }
        }
        CHECK_OK(canvas_memory_snapshot_take(m, &s));
        if (job == 1) {
            after_first = s;
            first_device_peak = s.device_peak_bytes;
            first_host_peak = s.host_peak_bytes;
        } else {
            held_moved += s.host_bytes != after_first.host_bytes || s.device_bytes != after_first.device_bytes ||
                          s.device_activation_bytes != 0;
            /* a cancelled job stops after one step: its peaks may only be lower */
            if (stop.stop_after_step) peaks_moved += s.device_peak_bytes > first_device_peak;
            else peaks_moved += s.device_peak_bytes != first_device_peak || s.host_peak_bytes != first_host_peak;
        }
        if (job == RSS_FROM_JOB) rss_from = s.host_rss_bytes;
        if (job >= RSS_FROM_JOB && s.host_rss_bytes > rss_max) rss_max = s.host_rss_bytes;
        if (job == 1 || job == 5 || job == 50 || job == JOBS)
            printf("  job %3d: RSS %.1f MiB, held host %llu B, device %llu B, device peak %llu B, host peak %llu B\n",
                   job, s.host_rss_bytes / 1048576.0, (unsigned long long)s.host_bytes,
                   (unsigned long long)s.device_bytes, (unsigned long long)s.device_peak_bytes,
                   (unsigned long long)s.host_peak_bytes);
    }
    CHECK(completed == JOBS - JOBS / 10 && cancelled == JOBS / 10);
    CHECK_MSG(images_differ == 0, "%d images differ from the first", images_differ);
    CHECK_MSG(held_moved == 0, "%d jobs left the model holding other bytes than after job 1", held_moved);
    CHECK_MSG(peaks_moved == 0, "%d jobs had other peaks than job 1", peaks_moved);
    CHECK_MSG(rss_max - rss_from <= RSS_SLACK_BYTES, "RSS grew %.1f MiB from job %d (max %.1f MiB)",
              (rss_max - rss_from) / 1048576.0, RSS_FROM_JOB, rss_max / 1048576.0);
    printf("  RSS growth from job %d to job %d: %.2f MiB (limit %u MiB)\n", RSS_FROM_JOB, JOBS,
           (rss_max - rss_from) / 1048576.0, RSS_SLACK_BYTES >> 20);
done:
    canvas_image_free(&first);
    canvas_image_free(&image);
    canvas_prompt_free(&prompt);
    canvas_close(m);
}

int main(void)
{
    RUN(test_hundred_edits);
    return check_summary();
}
