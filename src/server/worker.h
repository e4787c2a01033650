/* Worker threads of the gateway server. */
#ifndef SL_WORKER_H
#define SL_WORKER_H

#include "server/internal.h"

/* Sets up w's loop, HTTP server (accepting on fd) and upstream pool. 0 or -1. */
int sl_worker_init(struct sl_worker *w, struct sl_server *srv, int index, evutil_socket_t fd,
                   const struct sl_server_cfg *cfg);
int sl_worker_start(struct sl_worker *w);
/* Asks w (from any thread) to stop accepting and exit once its requests are done. */
void sl_worker_drain(struct sl_worker *w);
/* Waits for w's thread and frees its resources. */
void sl_worker_join_release(struct sl_worker *w);

#endif
