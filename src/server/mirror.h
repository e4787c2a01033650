/* Mirroring (shadow traffic): copies of a sample of a group's requests, sent in the
 * background to the group's mirror: deployments and recorded in the ledger only. */
#ifndef SL_SERVER_MIRROR_H
#define SL_SERVER_MIRROR_H

#include "config/config.h"
#include "server/internal.h"

struct sl_plan;

/* 1 when a request with this id is to be copied under g's mirror.sample (0 for a
 * group without mirror:). Deterministic for an id; ids are random. */
int sl_mirror_sampled(const struct sl_group_cfg *g, const char *request_id);

/* Prepares one non-stream copy of p's request per mirror deployment when p->mirrored,
 * into out (room for SL_MAX_GROUP_DEPLOYMENTS) and returns how many. Each copy owns its
 * memory and a snapshot reference, so it outlives x; it counts in x->w->inflight until
 * it ends (a draining worker waits for it) and leaves a ledger row, mirror_of = x->id. */
struct sl_mirror;
size_t sl_mirror_prepare(struct sl_exchange *x, struct sl_plan *p, struct sl_mirror **out);

/* Sends prepared copies; call once the client's own attempt is dispatched (x may be
 * gone by then). */
void sl_mirror_send(struct sl_mirror **copies, size_t n);

/* Cancels the copies still running on w (recorded as cancelled); for worker teardown. */
void sl_mirror_stop_all(struct sl_worker *w);

#endif
