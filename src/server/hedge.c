/* Hedged attempts: when a group hedges and its current attempt has no first byte
 * within the delay (src/route/hedge.c), the next candidate starts alongside it; the
 * first to send the client a byte wins and the other is cancelled at once, recorded in
 * the ledger with what it used, and reported to the router as cancelled (not a failure). */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "core/clock.h"
#include "server/plan.h"

static void observe_cancelled(struct sl_exchange *x, size_t index, int stream)
{
    struct sl_route_outcome o = {.result = SL_OUTCOME_CANCELLED, .stream = stream,
                                 .retry_after_ms = -1};
    sl_route_observe(x->snap->health, index, &o, sl_now_us());
}

/* Stops an attempt that lost (or was dropped) and records it. */
static void stop_loser(struct sl_exchange *x, struct sl_plan *p, struct sl_attempt *a,
                       const char *why)
{
    struct sl_usage spent = {0};
    int estimated = 0;
    a->stop(a->path, &spent, &estimated);
    if (a->claimed)
        observe_cancelled(x, a->index, p->stream);
    sl_plan_record(x, p, a->m, a->number, a->start_us, 0, "cancelled: another attempt answered",
                   why, &spent, estimated);
    *a = (struct sl_attempt){0};
}

static void disarm(struct sl_plan *p)
{
    if (p->hedge_timer)
        evtimer_del(p->hedge_timer);
}

/* The plan's current attempt, as a struct of its own, and back. The two attempts may
 * be on different paths, so the client-gone reaction travels with each. */
static struct sl_attempt current_of(const struct sl_exchange *x, const struct sl_plan *p)
{
    return (struct sl_attempt){p->path, p->stop, x->on_gone, p->current, p->current_index,
                               p->number, p->claimed, p->first_byte, p->attempt_start_us};
}

static void make_current(struct sl_exchange *x, struct sl_plan *p, const struct sl_attempt *a)
{
    p->path = a->path;
    p->stop = a->stop;
    p->current = a->m;
    p->current_index = a->index;
    p->number = a->number;
    p->claimed = a->claimed;
    p->first_byte = a->first_byte;
    p->attempt_start_us = a->start_us;
    x->state = a->path;
    x->on_gone = a->on_gone;
    x->row.attempt = a->number;
}

static void on_hedge_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sl_exchange *x = arg;
    struct sl_plan *p = x->plan;
    const struct sl_config *cfg = x->snap->cfg;
    int64_t now = sl_now_us();
    (void)fd;
    (void)what;
    if (p->first_byte || p->hedge.path || !p->path || x->client_gone || p->att.next >= p->route.n)
        return;
    size_t idx = p->route.c[p->att.next].model;
    const struct sl_model_cfg *m = &cfg->models[idx];
    if (p->att.used >= p->att.budget)
        return;
    if (sl_route_acquire(x->snap->health, idx, p->stream, now))
        return; /* the next one is benched now: the current attempt goes on alone */
    struct sl_route_step step;
    if (sl_route_attempts_hedge(&p->att, now, &step)) {
        observe_cancelled(x, idx, p->stream);
        return;
    }
    p->step = step;
    p->attempts++;
    p->hedge = (struct sl_attempt){.m = m, .index = idx, .number = p->attempts, .claimed = 1,
                                   .start_us = now};
    p->starting_hedge = 1;
    sl_plan_run_path(x, p, m);
    p->starting_hedge = 0;
}

static void arm(struct sl_exchange *x, struct sl_plan *p)
{
    if (!p->group || p->att.next >= p->route.n || p->att.used >= p->att.budget)
        return;
    int64_t ms = sl_route_hedge_delay_ms(x->snap->health, p->group, p->current_index);
    if (ms < 0)
        return;
    if (!p->hedge_timer)
        p->hedge_timer = evtimer_new(x->w->base, on_hedge_timer, x);
    if (!p->hedge_timer)
        return; /* out of memory: no hedge, the attempt itself goes on */
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(p->hedge_timer, &tv);
}

void sl_plan_attempt_begun(struct sl_exchange *x, struct sl_plan *p, void *path,
                           sl_attempt_stop_cb stop, sl_gone_cb on_gone)
{
    if (p->starting_hedge) {
        p->hedge.path = path;
        p->hedge.stop = stop;
        p->hedge.on_gone = on_gone;
        return;
    }
    p->path = path;
    p->stop = stop;
    x->state = path;
    x->on_gone = on_gone;
    arm(x, p);
}

void sl_plan_first_byte(struct sl_plan *p, void *path)
{
    if (path == p->path)
        p->first_byte = 1;
    else if (path == p->hedge.path)
        p->hedge.first_byte = 1;
}

void sl_plan_commit(struct sl_exchange *x, struct sl_plan *p, void *path)
{
    disarm(p);
    if (!p->hedge.path)
        return;
    if (path == p->hedge.path) {
        struct sl_attempt loser = current_of(x, p), winner = p->hedge;
        p->hedge = (struct sl_attempt){0};
        make_current(x, p, &winner);
        stop_loser(x, p, &loser, "hedge: lost, the hedge answered first");
        snprintf(x->row.why, sizeof(x->row.why), "hedge: won");
    } else {
        stop_loser(x, p, &p->hedge, "hedge: lost, the first attempt answered first");
    }
}

void sl_plan_attempt_failed(struct sl_exchange *x, struct sl_plan *p, void *path,
                            const struct sl_error *e, const char *retry_after)
{
    int is_hedge = p->starting_hedge || (p->hedge.path && path == p->hedge.path);
    if (!is_hedge && !p->hedge.path) {
        disarm(p);
        sl_plan_failed(x, p, e, retry_after);
        return;
    }
    /* The other attempt is still running: this one is only recorded. */
    struct sl_attempt failed = is_hedge ? p->hedge : current_of(x, p);
    struct sl_route_outcome o = {.result = SL_OUTCOME_HTTP, .status = e->status,
                                 .stream = p->stream, .retry_after_ms = -1};
    if (strcmp(e->code, "upstream_unreachable") == 0)
        o.result = SL_OUTCOME_CONNECT;
    else if (strcmp(e->code, "upstream_timeout") == 0)
        o.result = SL_OUTCOME_TIMEOUT;
    if (failed.claimed)
        sl_route_observe(x->snap->health, failed.index, &o, sl_now_us());
    sl_plan_record(x, p, failed.m, failed.number, failed.start_us, e->status, e->message,
                   "hedge: failed, the other attempt goes on", &(struct sl_usage){0}, 0);
    if (!is_hedge)
        make_current(x, p, &p->hedge);
    p->hedge = (struct sl_attempt){0};
}

void sl_plan_drop_hedge(struct sl_exchange *x, struct sl_plan *p)
{
    disarm(p);
    if (p->hedge.path)
        stop_loser(x, p, &p->hedge, "hedge: cancelled, the request ended");
}
