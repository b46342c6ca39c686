/* SPDX-License-Identifier: Apache-2.0 */
/* server.c — `canvas serve`'s life: open the model, listen, wait for SIGTERM / SIGINT, stop
 * in order (jobs first, then the HTTP threads, then the model). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/path.h"
#include "base/status.h"
#include "mem/mem.h"
#include "server/queue.h"
#include "server/server_http.h"
#include "server/server_internal.h"

void server_config_default(server_config *config)
{
    memset(config, 0, sizeof *config);
    canvas_options_default(&config->options);
    config->listen = "127.0.0.1:8188";
    config->queue_max = 16;
    config->max_body_bytes = (size_t)64 << 20;
    config->max_image_pixels = (int64_t)1 << 24;
    config->jobs_kept = 256;
    config->job_ttl_seconds = 3600;
}

canvas_status server_parse_listen(const char *text, uint32_t *address, uint16_t *port, int *loopback)
{
    const char *colon = text ? strrchr(text, ':') : NULL;
    char host[64];
    if (!colon || colon == text || (size_t)(colon - text) >= sizeof host)
        return status_fail(CANVAS_ERR_USAGE, "--listen takes HOST:PORT (got '%s')", text ? text : "");
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535)
        return status_fail(CANVAS_ERR_USAGE, "--listen %s: the port must be 0 to 65535", text);
    struct in_addr a;
    if (!strcmp(host, "localhost")) a.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a) != 1)
        return status_fail(CANVAS_ERR_USAGE, "--listen %s: HOST must be an IPv4 address or localhost", text);
    *address = a.s_addr;
    *port = (uint16_t)p;
    *loopback = (ntohl(a.s_addr) >> 24) == 127;
    return CANVAS_OK;
}

void server_destroy(server *s)
{
    while (s->jobs) {
        job *j = s->jobs;
        s->jobs = j->next;
        job_release_locked(j);
    }
    canvas_close(s->model);
    mem_free(s->queue);
    mem_free(s->profile_json);
    if (s->tmp_dir[0]) rmdir(s->tmp_dir);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
    mem_free(s);
}

/* LoRA `path` at `scale` into the server's list, named by its file name without ".safetensors". */
static canvas_status add_lora(server *s, const char *path, float scale)
{
    if (s->n_loras == SERVER_MAX_LORAS)
        return status_fail(CANVAS_ERR_USAGE, "more than %d LoRAs (--lora and --lora-dir together)", SERVER_MAX_LORAS);
    const int i = s->n_loras;
    if (snprintf(s->lora_paths[i], sizeof s->lora_paths[i], "%s", path) >= (int)sizeof s->lora_paths[i])
        return status_fail(CANVAS_ERR_USAGE, "%s: LoRA path too long", path);
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t len = strlen(base);
    if (len > 12 && !strcmp(base + len - 12, ".safetensors")) len -= 12;
    if (len == 0 || len >= sizeof s->lora_names[i])
        return status_fail(CANVAS_ERR_USAGE, "%s: a LoRA's file name must be 1 to 255 bytes before .safetensors", path);
    if (memchr(base, ',', len) || memchr(base, ':', len)) /* a request could never name it */
        return status_fail(CANVAS_ERR_USAGE, "%s: a LoRA's name cannot hold ',' or ':' (the request field lora=NAME:SCALE,... "
                           "separates with them): rename the file", path);
    memcpy(s->lora_names[i], base, len);
    s->lora_names[i][len] = '\0';
    for (int k = 0; k < i; k++)
        if (!strcmp(s->lora_names[k], s->lora_names[i]))
            return status_fail(CANVAS_ERR_USAGE, "two LoRAs named '%s' (%s and %s): requests name them by file name",
                               s->lora_names[i], s->lora_paths[k], path);
    s->loras[i] = (canvas_lora){s->lora_paths[i], scale};
    s->lora_defaults[i] = s->lora_scales[i] = scale;
    s->n_loras++;
    return CANVAS_OK;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* --lora files, then every regular *.safetensors file of --lora-dir in name order (at strength 0:
 * checked when the model opens, merged only for the jobs that name them). Other entries are
 * skipped; a folder that cannot be read, or more LoRAs than the server keeps, is an error. */
static canvas_status collect_loras(server *s, const server_config *config)
{
    for (int i = 0; i < config->options.n_loras; i++)
        TRY(add_lora(s, config->options.loras[i].path, config->options.loras[i].scale));
    if (!config->lora_dir) return CANVAS_OK;
    DIR *dir = opendir(config->lora_dir);
    if (!dir) return status_fail(CANVAS_ERR_INPUT, "--lora-dir %s: %s", config->lora_dir, strerror(errno));
    char *names[SERVER_MAX_LORAS + 1];
    int n = 0;
    canvas_status st = CANVAS_OK;
    for (struct dirent *e; st == CANVAS_OK && (e = readdir(dir)) != NULL;) {
        size_t len = strlen(e->d_name);
        char path[4096];
        struct stat sb;
        if (len <= 12 || strcmp(e->d_name + len - 12, ".safetensors") || e->d_name[0] == '.') continue;
        if (path_join(path, sizeof path, config->lora_dir, e->d_name) != CANVAS_OK || stat(path, &sb) != 0 ||
            !S_ISREG(sb.st_mode)) {
            status_clear();
            continue; /* not a regular file (a FIFO, a folder): never opened */
        }
        if (n + s->n_loras == SERVER_MAX_LORAS) {
            st = status_fail(CANVAS_ERR_USAGE, "--lora-dir %s: more than %d LoRAs (with --lora)", config->lora_dir,
                             SERVER_MAX_LORAS);
            break;
        }
        st = mem_strdup(&names[n], path);
        if (st == CANVAS_OK) n++;
    }
    closedir(dir);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    for (int i = 0; i < n; i++) {
        if (st == CANVAS_OK) st = add_lora(s, names[i], 0.0f);
        mem_free(names[i]);
    }
    return st;
}

canvas_status server_create(const server_config *config, int open_model, server **out)
{
    server *s;
    TRY(mem_calloc((void **)&s, 1, sizeof *s, MEM_SCRATCH));
    s->config = *config;
    s->started = clock_seconds();
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    canvas_status st = mem_calloc((void **)&s->queue, (size_t)config->queue_max, sizeof(job *), MEM_SCRATCH);
    char path[4096];
    struct stat sb;
    if (st == CANVAS_OK && path_join(path, sizeof path, config->model_dir, "text_encoder/config.json") == CANVAS_OK)
        s->has_text_encoder = stat(path, &sb) == 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s/canvas-serve.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (st == CANVAS_OK && !mkdtemp(s->tmp_dir)) {
        st = status_fail(CANVAS_ERR_IO, "%s: cannot make a scratch folder: %s", s->tmp_dir, strerror(errno));
        s->tmp_dir[0] = '\0';
    }
    if (st == CANVAS_OK) st = collect_loras(s, config); /* a front without the model names them too */
    canvas_options options = config->options;
    options.loras = s->loras;
    options.n_loras = s->n_loras;
    if (st == CANVAS_OK && open_model) st = canvas_open(config->model_dir, &options, &s->model);
    if (st == CANVAS_OK && s->model) canvas_memory_snapshot_take(s->model, &s->snapshot);
    if (config->options.strategy) snprintf(s->strategy, sizeof s->strategy, "%s", config->options.strategy);
    if (st != CANVAS_OK) {
        server_destroy(s);
        return st;
    }
    *out = s;
    return CANVAS_OK;
}

canvas_status server_run(const server_config *config)
{
    uint32_t address;
    uint16_t port;
    int loopback;
    TRY(server_parse_listen(config->listen, &address, &port, &loopback));
    if (!loopback && !config->api_key)
        return status_fail(CANVAS_ERR_USAGE, "--listen %s is not a loopback address: give --api-key KEY (clients send "
                                             "Authorization: Bearer KEY)", config->listen);
    if (config->queue_max < 1 || config->queue_max > 100000)
        return status_fail(CANVAS_ERR_USAGE, "--queue takes 1 to 100000 (got %d)", config->queue_max);
    if (config->options.n_loras > SERVER_MAX_LORAS) /* before canvas_open merges them */
        return status_fail(CANVAS_ERR_USAGE, "at most %d LoRAs (got %d)", SERVER_MAX_LORAS, config->options.n_loras);
    /* every thread made from here on (the model's pool, the worker, the HTTP threads) inherits
     * this mask, so the signals come to sigwait below and nowhere else */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* with a queue (server/queue.h) the workers hold the model: this front reads its folder's
     * config files only */
    server *s;
    TRY(server_create(config, config->queue_url == NULL, &s));
    canvas_status st = CANVAS_OK;
    pthread_t worker;
    if (config->queue_url) st = queue_front_start(s);
    else if (pthread_create(&worker, NULL, server_worker, s) != 0)
        st = status_fail(CANVAS_ERR_IO, "cannot start the worker thread");
    if (st != CANVAS_OK) {
        server_destroy(s);
        return st;
    }

    struct sockaddr_in bind_to;
    memset(&bind_to, 0, sizeof bind_to);
    bind_to.sin_family = AF_INET;
    bind_to.sin_addr.s_addr = address;
    bind_to.sin_port = htons(port);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        server_on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&bind_to, MHD_OPTION_NOTIFY_COMPLETED,
        server_on_completed, s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)256, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_END);
    if (!d) {
        st = status_fail(CANVAS_ERR_IO, "cannot listen on %s (in use, or not an address of this machine)", config->listen);
    } else {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        char host[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &bind_to.sin_addr, host, sizeof host);
        printf("canvas serve: listening on http://%s:%u\n", host, info ? (unsigned)info->port : (unsigned)port);
        fflush(stdout);
        fprintf(stderr, "canvas serve: model %s, queue %d%s\n", config->model_dir, config->queue_max,
                config->api_key ? ", API key required" : "");
        int signal_number = 0;
        sigwait(&stop_signals, &signal_number);
        pthread_mutex_lock(&s->lock);
        int queued = s->queue_len, running = s->running != NULL;
        pthread_mutex_unlock(&s->lock);
        fprintf(stderr, "canvas serve: %s: stopping (%s, %d queued answered 503)\n",
                signal_number == SIGINT ? "SIGINT" : "SIGTERM",
                running ? "cancelling the running job at its next step" : "no job running", queued);
    }
    /* jobs first (waiters are answered), then the HTTP threads, then the model */
    if (config->queue_url) queue_front_stop(s);
    server_stop_jobs(s);
    if (!config->queue_url) pthread_join(worker, NULL);
    /* every job has ended: let the answers and event streams under way go out (stopping the
     * daemon closes their sockets), for at most 5 seconds */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&s->lock);
    while (d && s->active_requests > 0 && pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == 0) {
    }
    pthread_mutex_unlock(&s->lock);
    if (d) MHD_stop_daemon(d);
    queue_front_free(s);
    canvas_status written = CANVAS_OK;
    if (config->report_path && s->model) written = canvas_profile_write_report(s->model, config->report_path);
    if (written == CANVAS_OK && config->trace_path && s->model) written = canvas_profile_write_trace(s->model, config->trace_path);
    if (st == CANVAS_OK) st = written;
    server_destroy(s);
    return st;
}
