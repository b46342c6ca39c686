/* SPDX-License-Identifier: Apache-2.0 */
/* queue_none.c — the queue's Redis side when CMake found no hiredis (libhiredis-dev): the
 * front and the worker refuse to start, saying so. */
#include "base/status.h"
#include "server/queue.h"

static canvas_status no_hiredis(void)
{
    return status_fail(CANVAS_ERR_UNSUPPORTED, "--queue: this canvas was built without hiredis "
                                               "(install libhiredis-dev, tools/install-deps.sh does, and rebuild)");
}

canvas_status queue_front_start(server *s)
{
    (void)s;
    return no_hiredis();
}

int queue_front_submit(server *s, const form *f, int edit, job *j, char *message, size_t message_size)
{
    (void)s, (void)f, (void)edit, (void)j, (void)message, (void)message_size;
    return 503;
}

void queue_front_stop(server *s) { (void)s; }

void queue_front_free(server *s) { (void)s; }

canvas_status queue_worker_run(const server_config *server_config, const queue_worker_config *config)
{
    (void)server_config, (void)config;
    return no_hiredis();
}
