/* SPDX-License-Identifier: Apache-2.0 */
/* queue_redis.c — the reconnecting Redis link (queue_redis.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "base/clock.h"
#include "server/queue_redis.h"

/* A command answers within this (workers block at most 1 s in XREADGROUP / XREAD). */
static const struct timeval command_timeout = {5, 0};
static const struct timeval connect_timeout = {1, 0};

void redis_link_init(redis_link *l, const queue_url *url, const char *who)
{
    memset(l, 0, sizeof *l);
    l->url = *url;
    l->who = who;
    l->backoff = 0.1;
}

static void drop(redis_link *l, const char *reason)
{
    snprintf(l->error, sizeof l->error, "%s", reason && reason[0] ? reason : "connection lost");
    if (l->c) redisFree(l->c);
    l->c = NULL;
    l->next_try = clock_seconds() + l->backoff;
    l->backoff = l->backoff * 2 < 5 ? l->backoff * 2 : 5;
    if (!l->down_reported)
        fprintf(stderr, "%s: redis://%s:%d: %s; reconnecting (backoff up to 5 s)\n", l->who, l->url.host, l->url.port,
                l->error);
    l->down_reported = 1;
}

int redis_link_ready(redis_link *l)
{
    if (l->c) return 1;
    if (clock_seconds() < l->next_try) return 0;
    redisContext *c = redisConnectWithTimeout(l->url.host, l->url.port, connect_timeout);
    if (!c || c->err) {
        char reason[200];
        snprintf(reason, sizeof reason, "cannot connect: %s", c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        drop(l, reason);
        return 0;
    }
    redisSetTimeout(c, command_timeout);
    l->c = c;
    l->backoff = 0.1;
    l->generation++;
    if (l->down_reported) fprintf(stderr, "%s: redis://%s:%d: connected again\n", l->who, l->url.host, l->url.port);
    l->down_reported = 0;
    return 1;
}

redisReply *redis_link_command(redis_link *l, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    redisReply *r = redis_link_vcommand(l, format, args);
    va_end(args);
    return r;
}

redisReply *redis_link_vcommand(redis_link *l, const char *format, va_list args)
{
    if (!redis_link_ready(l)) return NULL;
    redisReply *r = redisvCommand(l->c, format, args);
    if (!r || l->c->err) {
        char reason[200];
        snprintf(reason, sizeof reason, "%s", l->c->err ? l->c->errstr : "no answer");
        if (r) freeReplyObject(r);
        drop(l, reason);
        return NULL;
    }
    return r;
}

void redis_link_close(redis_link *l)
{
    if (l->c) redisFree(l->c);
    l->c = NULL;
}
