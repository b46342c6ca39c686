/* SPDX-License-Identifier: Apache-2.0 */
/* queue_redis.h — one connection to Redis that reconnects itself, for the queue's front and
 * workers (queue_front.c, queue_worker.c). A failed connection or command drops the link;
 * the next use reconnects, no sooner than a backoff that doubles from 0.1 s to 5 s. Each
 * change between up and down is printed once on stderr, prefixed with `who`. */
#ifndef CANVAS_SERVER_QUEUE_REDIS_H
#define CANVAS_SERVER_QUEUE_REDIS_H

#include <hiredis/hiredis.h>
#include <stdarg.h>

#include "server/queue.h"

typedef struct redis_link {
    queue_url url;
    const char *who;            /* "canvas serve", "canvas worker" */
    redisContext *c;
    double next_try, backoff;   /* clock seconds; seconds */
    unsigned generation;        /* counts successful connections */
    int down_reported;
    char error[256];            /* the last failure */
} redis_link;

void redis_link_init(redis_link *l, const queue_url *url, const char *who);
/* Connected, or reconnected now: 1; 0 while down (l->error says why). */
int redis_link_ready(redis_link *l);
/* A command as hiredis' redisCommand takes it (%s text, %b bytes + length). NULL when the
 * link is down or dropped by this command (a connection failure); otherwise the reply, an
 * error reply included, for the caller to free with freeReplyObject. */
redisReply *redis_link_command(redis_link *l, const char *format, ...);
redisReply *redis_link_vcommand(redis_link *l, const char *format, va_list args);
void redis_link_close(redis_link *l);

#endif
