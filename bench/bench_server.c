/* SPDX-License-Identifier: Apache-2.0 */
/* bench_server.c — what `canvas serve` adds to a job, and how fast it answers /healthz.
 *
 *   bench_server CANVAS_CLI MODEL_DIR IMAGE EMBEDS [--jobs N] [--steps S] [--clients C] [--seconds T]
 *
 * 1. In process: the model opened once, the same edit run N times through the library
 *    (canvas_edit), and its PNG written N times (canvas_image_save_png): medians.
 * 2. Through the server: `CANVAS_CLI serve` on a free loopback port, the same edit posted N
 *    times to /v1/images/edits (multipart, the answer's b64_json) over one keep-alive
 *    connection, in turn with the library runs: the median round trip. Overhead per job =
 *    round trip - library edit (the bound: 10 ms plus the PNG encoding), as the
 *    difference of the medians and as the median of each back-to-back pair's difference
 *    (which a drift in the machine's load touches less); and the
 *    part outside the worker: round trip - the job's own started..finished (GET /v1/jobs/{id}),
 *    which the noise of a shared machine touches less.
 * 3. /healthz with C keep-alive clients (threads, one connection each) for T seconds.
 * The HTTP client is a minimal one on sockets (requests with Content-Length, answers with
 * Content-Length), enough for this server. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "canvas.h"
#include "io/file_read.h"
#include "mem/mem.h"

static __attribute__((noreturn)) void die(const char *what)
{
    fprintf(stderr, "bench_server: %s: %s\n", what, canvas_last_error()[0] ? canvas_last_error() : "failed");
    exit(1);
}

/* ---- a minimal HTTP/1.1 client ------------------------------------------------------------ */

static int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    return fd;
}

static int write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w <= 0) return 0;
        data += w;
        n -= (size_t)w;
    }
    return 1;
}

/* Send head + body; read the answer into *buf (grown as needed). Returns the status, -1 on error. */
static int http_exchange(int fd, const char *head, const char *body, size_t body_size, char **buf, size_t *cap,
                         size_t *body_len)
{
    if (!write_all(fd, head, strlen(head)) || (body_size && !write_all(fd, body, body_size))) return -1;
    size_t len = 0;
    char *end = NULL;
    for (;;) {
        if (len + 65536 > *cap) {
            *cap = (len + 65536) * 2;
            void *block = *buf;
            if ((block ? mem_realloc(&block, *cap, MEM_SCRATCH) : mem_alloc(&block, *cap, MEM_SCRATCH)) != CANVAS_OK)
                die("memory");
            *buf = block;
        }
        if (!end) {
            ssize_t r = read(fd, *buf + len, *cap - len - 1);
            if (r <= 0) return -1;
            len += (size_t)r;
            (*buf)[len] = '\0';
            end = strstr(*buf, "\r\n\r\n");
            if (!end) continue;
        }
        const char *cl = strcasestr(*buf, "\r\nContent-Length:");
        size_t want = cl && cl < end ? strtoull(cl + 17, NULL, 10) : 0;
        size_t have = len - (size_t)(end + 4 - *buf);
        if (have >= want) {
            *body_len = want;
            return atoi(*buf + 9);
        }
        size_t header = (size_t)(end + 4 - *buf);
        if (header + want + 1 > *cap) {
            *cap = header + want + 1;
            void *block = *buf;
            if (mem_realloc(&block, *cap, MEM_SCRATCH) != CANVAS_OK) die("memory");
            *buf = block;
            end = *buf + header - 4;
        }
        ssize_t r = read(fd, *buf + len, header + want - len);
        if (r <= 0) return -1;
        len += (size_t)r;
    }
}

/* ---- /healthz from many clients ----------------------------------------------------------- */

typedef struct health_client {
    int port;
    double until;
    long requests;
} health_client;

static void *health_loop(void *arg)
{
    health_client *h = arg;
    int fd = http_connect(h->port);
    char *buf = NULL;
    size_t cap = 0, body;
    const char *head = "GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n";
    while (fd >= 0 && now_seconds() < h->until && http_exchange(fd, head, NULL, 0, &buf, &cap, &body) == 200)
        h->requests++;
    if (fd >= 0) close(fd);
    mem_free(buf);
    return NULL;
}

/* ---- the server --------------------------------------------------------------------------- */

static pid_t start_server(const char *cli, const char *model, int *port)
{
    int out[2];
    if (pipe(out) != 0) die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(cli, cli, "serve", "--model", model, "--listen", "127.0.0.1:0", "--queue", "64", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[256];
    if (!f || !fgets(line, sizeof line, f) || sscanf(line, "canvas serve: listening on http://127.0.0.1:%d", port) != 1)
        die("starting canvas serve");
    return pid;
}

static void part(char *body, size_t *len, const char *name, const char *filename, const char *data, size_t size)
{
    *len += (size_t)sprintf(body + *len, "--BENCHBOUNDARY\r\nContent-Disposition: form-data; name=\"%s\"%s%s%s\r\n\r\n",
                            name, filename ? "; filename=\"" : "", filename ? filename : "", filename ? "\"" : "");
    memcpy(body + *len, data, size);
    *len += size;
    *len += (size_t)sprintf(body + *len, "\r\n");
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_server CANVAS_CLI MODEL_DIR IMAGE EMBEDS [--jobs N] [--steps S] [--clients C] "
                        "[--seconds T]\n");
        return 2;
    }
    const char *cli = argv[1], *model_dir = argv[2], *image_path = argv[3], *embeds_path = argv[4];
    int jobs = 10, steps = 2, clients = 16;
    double seconds = 3;
    for (int i = 5; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--jobs")) jobs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--clients")) clients = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
    }
    if (jobs < 1 || jobs > 1000 || steps < 1 || clients < 1 || clients > 256 || !(seconds > 0)) {
        fprintf(stderr, "bench_server: bad --jobs / --steps / --clients / --seconds\n");
        return 2;
    }

    /* 1. the library in process, 2. the same edit through the server */
    canvas_options options;
    canvas_options_default(&options);
    canvas_model *model;
    canvas_image image, out;
    canvas_prompt prompt;
    canvas_edit_params params;
    canvas_edit_params_default(&params);
    params.steps = steps;
    params.vae_area = 4096;
    params.width = params.height = 64; /* the reference's size: a short edit, so that noise is small next to 10 ms */
    if (canvas_open(model_dir, &options, &model) != CANVAS_OK) die(model_dir);
    if (canvas_image_load(image_path, &image) != CANVAS_OK) die(image_path);
    if (canvas_prompt_load(embeds_path, &prompt) != CANVAS_OK) die(embeds_path);
    double *edit_s, *png_s, *trip_s, *http_s, *paired_s;
    if (mem_calloc((void **)&edit_s, (size_t)jobs * 5, sizeof(double), MEM_SCRATCH) != CANVAS_OK) die("memory");
    png_s = edit_s + jobs;
    trip_s = png_s + jobs;
    http_s = trip_s + jobs;
    paired_s = http_s + jobs;
    char png_path[] = "/tmp/bench_server_XXXXXX.png";
    int png_fd = mkstemps(png_path, 4);
    if (png_fd >= 0) close(png_fd);
    int port;
    pid_t server = start_server(cli, model_dir, &port);
    char *image_bytes, *embeds_bytes;
    size_t image_size, embeds_size;
    if (file_read_all(image_path, (size_t)64 << 20, &image_bytes, &image_size) != CANVAS_OK ||
        file_read_all(embeds_path, (size_t)64 << 20, &embeds_bytes, &embeds_size) != CANVAS_OK)
        die("reading the inputs");
    char *body;
    if (mem_alloc((void **)&body, image_size + embeds_size + 4096, MEM_SCRATCH) != CANVAS_OK) die("memory");
    size_t len = 0;
    char steps_text[16];
    snprintf(steps_text, sizeof steps_text, "%d", steps);
    part(body, &len, "image", "image.png", image_bytes, image_size);
    part(body, &len, "prompt_embeds", "embeds.safetensors", embeds_bytes, embeds_size);
    part(body, &len, "steps", NULL, steps_text, strlen(steps_text));
    part(body, &len, "vae_area", NULL, "4096", 4);
    part(body, &len, "size", NULL, "64x64", 5);
    len += (size_t)sprintf(body + len, "--BENCHBOUNDARY--\r\n");
    char head[512];
    snprintf(head, sizeof head,
             "POST /v1/images/edits HTTP/1.1\r\nHost: bench\r\nContent-Type: multipart/form-data; boundary=BENCHBOUNDARY\r\n"
             "Content-Length: %zu\r\n\r\n", len);
    /* library and server in turn, so that a change in the machine's load falls on both */
    int fd = http_connect(port);
    char *answer = NULL;
    size_t cap = 0, answer_len = 0, edit_answer_bytes = 0;
    for (int i = -1; i < jobs; i++) { /* one warm-up run of each */
        double t0 = now_seconds();
        if (canvas_edit(model, &prompt, &image, 1, &params, NULL, NULL, &out) != CANVAS_OK) die("canvas_edit");
        double t1 = now_seconds();
        if (canvas_image_save_png(png_path, &out, NULL, 0) != CANVAS_OK) die("canvas_image_save_png");
        double t2 = now_seconds();
        canvas_image_free(&out);
        int status = http_exchange(fd, head, body, len, &answer, &cap, &answer_len);
        if (status != 200) {
            fprintf(stderr, "bench_server: /v1/images/edits answered %d\n", status);
            kill(server, SIGKILL);
            return 1;
        }
        double t3 = now_seconds();
        edit_answer_bytes = answer_len;
        /* the worker's own time for the job (started to finished, PNG included) */
        char job_head[256], *id = strstr(answer, "\"id\":\"");
        double started = 0, finished = 0;
        if (id) {
            snprintf(job_head, sizeof job_head, "GET /v1/jobs/%.*s HTTP/1.1\r\nHost: bench\r\n\r\n",
                     (int)strcspn(id + 6, "\""), id + 6);
            if (http_exchange(fd, job_head, NULL, 0, &answer, &cap, &answer_len) == 200) {
                const char *a = strstr(answer, "\"started\":"), *b = strstr(answer, "\"finished\":");
                if (a && b) started = atof(a + 10), finished = atof(b + 11);
            }
        }
        if (i >= 0) {
            edit_s[i] = t1 - t0;
            png_s[i] = t2 - t1;
            trip_s[i] = t3 - t2;
            http_s[i] = t3 - t2 - (finished - started);
            paired_s[i] = (t3 - t2) - (t1 - t0) - (t2 - t1); /* this pair's overhead beyond its PNG encoding */
        }
    }
    close(fd);
    unlink(png_path);
    canvas_close(model);
    canvas_image_free(&image);
    canvas_prompt_free(&prompt);

    /* 3. /healthz from many keep-alive clients */
    health_client *hc;
    pthread_t *threads;
    if (mem_calloc((void **)&hc, (size_t)clients, sizeof *hc, MEM_SCRATCH) != CANVAS_OK ||
        mem_calloc((void **)&threads, (size_t)clients, sizeof *threads, MEM_SCRATCH) != CANVAS_OK)
        die("memory");
    double start = now_seconds();
    for (int i = 0; i < clients; i++) {
        hc[i] = (health_client){port, start + seconds, 0};
        pthread_create(&threads[i], NULL, health_loop, &hc[i]);
    }
    long total = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(threads[i], NULL);
        total += hc[i].requests;
    }
    double elapsed = now_seconds() - start;
    kill(server, SIGTERM);
    int wstatus;
    waitpid(server, &wstatus, 0);

    double edit = median(edit_s, jobs), png = median(png_s, jobs), trip = median(trip_s, jobs);
    double http = median(http_s, jobs), paired = median(paired_s, jobs);
    printf("edit through the library   %8.2f ms (median of %d, %d steps)\n", edit * 1e3, jobs, steps);
    printf("PNG encoding               %8.2f ms\n", png * 1e3);
    printf("server round trip          %8.2f ms (/v1/images/edits, b64_json answer of %zu bytes)\n", trip * 1e3, edit_answer_bytes);
    printf("server overhead per job    %8.2f ms (round trip - library edit); beyond PNG encoding %.2f ms (bound 10 ms)\n",
           (trip - edit) * 1e3, (trip - edit - png) * 1e3);
    printf("  the same, paired         %8.2f ms (median over the %d pairs of round trip - edit - PNG, each pair run "
           "back to back; bound 10 ms)\n", paired * 1e3, jobs);
    printf("outside the worker         %8.2f ms (round trip - the job's started..finished: HTTP, multipart, decode, queue)\n",
           http * 1e3);
    printf("/healthz                   %8.0f requests/s (%d keep-alive clients, %.1f s)\n", (double)total / elapsed,
           clients, elapsed);
    printf("server exit status         %d\n", WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    mem_free(answer);
    mem_free(body);
    mem_free(image_bytes);
    mem_free(embeds_bytes);
    mem_free(edit_s);
    mem_free(hc);
    mem_free(threads);
    return 0;
}
