/* SPDX-License-Identifier: Apache-2.0 */
/* server_http.h — the libmicrohttpd callbacks and the read-only endpoints' answers. */
#ifndef CANVAS_SERVER_SERVER_HTTP_H
#define CANVAS_SERVER_SERVER_HTTP_H

#include <microhttpd.h>
#include <stddef.h>

#include "server/server_internal.h"

/* MHD_AccessHandlerCallback and MHD_RequestCompletedCallback (cls: the server). */
enum MHD_Result server_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls);
void server_on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode code);

/* The answers of GET /healthz, /metrics (Prometheus text), /v1/memory and /v1/plan, built
 * from what the worker published (mem_alloc'd; NULL when out of memory). server_plan_json
 * reads width, height, refs, steps, cfg from the query and sets *status (400 on a bad one,
 * with the reason in canvas_last_error()). */
char *server_health_json(server *s);
char *server_metrics_text(server *s);
char *server_memory_json(server *s);
char *server_plan_json(server *s, struct MHD_Connection *c, int *status);

/* GET /: the page, embedded at build time (server_page.c). */
extern const unsigned char server_page_html[];
extern const size_t server_page_html_size;

#endif
