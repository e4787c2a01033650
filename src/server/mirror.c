/* Mirroring (shadow traffic): a sample of a group's requests is copied, after the
 * client's own attempt is dispatched, to the group's mirror deployments as non-stream
 * requests. A copy lives apart from the client's exchange (its own arena and snapshot
 * reference), so it never changes the client's reply or latency; its result is only a
 * ledger row linked to the request (mirror_of), with the answer's hash for
 * `sluice compare`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/limits.h"
#include "core/log.h"
#include "formats/format.h"
#include "formats/openai.h"
#include "meter/cost.h"
#include "meter/estimate.h"
#include "server/mirror.h"
#include "server/plan.h"
#include "upstream/upstream.h"

struct sl_mirror {
    struct sl_worker *w;
    struct sl_snapshot *snap;   /* a reference of its own: the request may end first */
    struct sl_arena *arena;
    const struct sl_model_cfg *m;
    const struct sl_upstream_format *uf;
    struct sl_upstream_call *call;
    struct sl_upstream_meta meta;
    struct sl_buf body;
    struct sl_encoded enc;      /* the copy's request, in its arena */
    int64_t start_us, prompt_estimate;
    struct sl_usage_row row;
    struct sl_mirror *prev, *next; /* the worker's live copies */
};

/* A request is copied when its draw (from its random id) falls under the sample. */
int sl_mirror_sampled(const struct sl_group_cfg *g, const char *request_id)
{
    if (!g || g->mirror.to.n == 0 || g->mirror.sample <= 0.0)
        return 0;
    uint64_t h = sl_hash64(SL_HASH64_INIT, request_id, strlen(request_id));
    h ^= h >> 33; /* FNV's low bits mix poorly: fold the high ones in */
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return (double)(h >> 11) * 0x1.0p-53 < g->mirror.sample;
}

static void unlink_mirror(struct sl_mirror *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->mirrors = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void mirror_free(struct sl_mirror *c)
{
    struct sl_worker *w = c->w;
    unlink_mirror(c);
    sl_buf_release(&c->body);
    sl_snapshot_release(c->snap);
    sl_arena_free(c->arena);
    free(c);
    w->inflight--;
    if (w->draining && w->inflight == 0)
        event_base_loopexit(w->base, NULL);
}

static void finish(struct sl_mirror *c, int status, const char *error)
{
    struct sl_usage_row *r = &c->row;
    r->status = status;
    r->latency_us = sl_now_us() - c->start_us;
    snprintf(r->error, sizeof(r->error), "%.255s", error ? error : "");
    snprintf(r->provider, sizeof(r->provider), "%s", c->m->provider);
    snprintf(r->upstream_model, sizeof(r->upstream_model), "%s", c->m->model);
    sl_cost_row(c->snap->catalog, c->m, r);
    if (c->w->srv->ledger)
        sl_ledger_record(c->w->srv->ledger, r);
    mirror_free(c);
}

static void on_headers(void *ctx, const struct sl_upstream_meta *meta)
{
    struct sl_mirror *c = ctx;
    c->meta = *meta;
    c->row.ttft_us = sl_now_us() - c->start_us; /* a whole reply: its first byte */
}

static void on_data(void *ctx, const char *p, size_t n)
{
    struct sl_mirror *c = ctx;
    if (sl_buf_append(&c->body, p, n)) {
        sl_upstream_cancel(c->call);
        c->call = NULL;
        finish(c, 502, "the reply is larger than the upstream body limit");
    }
}

/* A whole 2xx reply: its usage (estimated when missing) and its answer's hash. */
static void read_reply(struct sl_mirror *c)
{
    struct sl_error e;
    struct sl_usage u = {0};
    cJSON *completion = c->uf->decode_reply(c->body.ptr ? c->body.ptr : "", c->body.len,
                                            c->m->model, &u, &e);
    if (!completion) {
        finish(c, e.status ? e.status : 502, e.message);
        return;
    }
    uint64_t h = SL_HASH64_INIT;
    size_t n = 0;
    sl_plan_hash_answer(completion, &h, &n);
    if (n)
        sl_hash64_hex(h, c->row.answer_hash);
    c->row.prompt_tokens = u.present ? u.prompt : c->prompt_estimate;
    c->row.completion_tokens = u.present ? u.completion : sl_openai_estimate_output(completion);
    c->row.cached_tokens = u.cached;
    c->row.reasoning_tokens = u.reasoning;
    c->row.estimated = !u.present;
    cJSON_Delete(completion);
    finish(c, 200, NULL);
}

static void on_done(void *ctx, enum sl_upstream_result r, const char *detail)
{
    struct sl_mirror *c = ctx;
    c->call = NULL;
    if (r != SL_UP_OK) {
        char msg[256];
        snprintf(msg, sizeof(msg), "upstream %s (%s): %s", c->m->provider,
                 sl_upstream_result_name(r), detail ? detail : "");
        finish(c, r == SL_UP_UNREACHABLE || r == SL_UP_BROKEN ? 502 : 504, msg);
        return;
    }
    if (c->meta.status >= 200 && c->meta.status < 300) {
        read_reply(c);
        return;
    }
    struct sl_error e;
    c->uf->decode_error(c->meta.status, c->body.ptr ? c->body.ptr : "", c->body.len, &e);
    finish(c, c->meta.status, e.message);
}

/* One copy to deployment m, ready to send: everything it needs is its own. NULL when
 * it could not be made (logged, or already recorded as failed). */
static struct sl_mirror *prepare_copy(struct sl_exchange *x, struct sl_plan *p,
                                      const struct sl_model_cfg *m, size_t n)
{
    struct sl_error e;
    struct sl_mirror *c = calloc(1, sizeof(*c));
    if (!c || !(c->arena = sl_arena_new())) {
        free(c);
        sl_warn("mirror to %s: out of memory", m->name);
        return NULL;
    }
    c->w = x->w;
    c->m = m;
    c->uf = sl_upstream_format(m->p->kind);
    c->snap = x->snap;
    atomic_fetch_add(&c->snap->refs, 1);
    c->start_us = sl_now_us();
    sl_buf_init(&c->body, SL_MAX_UPSTREAM_BODY);
    c->next = x->w->mirrors;
    if (c->next)
        c->next->prev = c;
    x->w->mirrors = c;
    x->w->inflight++; /* a draining worker waits for its copies too */
    c->row = x->row;
    c->row.final = 0;
    c->row.stream = 0;
    c->row.attempt = 1;
    c->row.ttft_us = -1;
    c->row.answer_hash[0] = '\0';
    snprintf(c->row.id, sizeof(c->row.id), "%s/mirror%zu", x->id, n + 1);
    snprintf(c->row.mirror_of, sizeof(c->row.mirror_of), "%s", x->id);
    snprintf(c->row.model, sizeof(c->row.model), "mirror:%.*s", SL_MAX_NAME - 8, p->group->name);
    snprintf(c->row.why, sizeof(c->row.why), "mirror");
    c->prompt_estimate = sl_estimate_messages(cJSON_GetObjectItemCaseSensitive(p->req, "messages"));
    if (!c->uf || c->uf->encode(p->req, m, 0, c->arena, &c->enc, &e)) {
        finish(c, c->uf ? e.status : 501, c->uf ? e.message : "no translation for this provider");
        return NULL;
    }
    return c;
}

static void send_copy(struct sl_mirror *c)
{
    struct sl_upstream_req ur = {
        .url = c->enc.url, .body = c->enc.body, .body_len = c->enc.len,
        .headers = c->enc.headers, .nheaders = c->enc.nheaders, .timeouts = c->m->p->timeouts,
    };
    static const struct sl_upstream_cbs cbs = {on_headers, on_data, on_done};
    c->start_us = sl_now_us();
    c->call = sl_upstream_start(c->w->up, &ur, &cbs, c);
    if (!c->call)
        finish(c, 500, "cannot start the upstream request");
}

size_t sl_mirror_prepare(struct sl_exchange *x, struct sl_plan *p, struct sl_mirror **out)
{
    const struct sl_config *cfg = x->snap->cfg;
    size_t n = 0;
    if (!p->mirrored || x->w->draining)
        return 0;
    for (size_t i = 0; i < p->group->mirror.to.n; i++) {
        struct sl_mirror *c = prepare_copy(x, p, &cfg->models[p->group->mirror.to.index[i]], i);
        if (c)
            out[n++] = c;
    }
    return n;
}

void sl_mirror_send(struct sl_mirror **copies, size_t n)
{
    for (size_t i = 0; i < n; i++)
        send_copy(copies[i]);
}

void sl_mirror_stop_all(struct sl_worker *w)
{
    while (w->mirrors) {
        struct sl_mirror *c = w->mirrors;
        sl_upstream_cancel(c->call);
        c->call = NULL;
        finish(c, 0, "cancelled: sluice stopped before the mirror answered");
    }
}
