/* The Redis backend of the govern table (govern_redis.c), called by govern.c: the
 * counters of every scope live in one Redis shared by all replicas, and each admit and
 * each settle is one Lua script run there, so replicas cannot interleave. */
#ifndef SL_GOVERN_REDIS_H
#define SL_GOVERN_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "meter/govern.h"

struct sl_gov_redis;

/* Parses url ("redis://HOST[:PORT][/DB]"); connects lazily. Returns 0, or -1 with a
 * message in err. */
int sl_gov_redis_parse_url(const char *url, char *host, size_t hostlen, int *port, int *db);

struct sl_gov_redis *sl_gov_redis_new(const char *url, int64_t lease_ms, char *err,
                                      size_t errlen);
void sl_gov_redis_free(struct sl_gov_redis *r); /* NULL is allowed */

/* Sends PING on a fresh connection: 0 when Redis answers, else -1 with err. */
int sl_gov_redis_ping(struct sl_gov_redis *r, char *err, size_t errlen);

/* One admission of every scope at once (see sl_govern_admit). cost[i] is the
 * reservation in scope i's budget currency, seed[i] what this replica's ledger holds for
 * its current window (used only when Redis has no counter for that window yet).
 * Returns the reason (SL_GOV_OK: t holds it), or SL_GOV_UNAVAILABLE when Redis did not
 * answer (err says why). */
enum sl_gov_reason sl_gov_redis_admit(struct sl_gov_redis *r, const struct sl_gov_scope *scopes,
                                      size_t n, const struct sl_gov_ask *a, const int64_t *cost,
                                      const int64_t *seed, struct sl_gov_ticket *t,
                                      struct sl_gov_refusal *ref, char *err, size_t errlen);

/* Settles t; spent_after[i] gets the budget spend of scope i after this settle (-1
 * when it has none). Returns 0, or -1 when Redis did not answer (the lease frees the
 * slots and reservations later). */
int sl_gov_redis_settle(struct sl_gov_redis *r, const struct sl_gov_ticket *t,
                        const struct sl_gov_spend *s, const int64_t *cost, int64_t *spent_after,
                        char *err, size_t errlen);

#endif
