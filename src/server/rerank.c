/* POST /v1/rerank (and /v2/rerank): a model or a group resolved like chat, each
 * attempt sent to a Jina-style, Cohere v2 or DashScope-native provider. A document
 * list over the provider's limit is split into parts sent a few at a time; their hits
 * are merged, sorted and cut to top_n. A failed attempt (any part failing) is retried
 * or moved to the next deployment by src/route/'s policy, as a whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "formats/rerank.h"
#include "meter/cost.h"
#include "meter/estimate.h"
#include "route/route.h"
#include "server/internal.h"
#include "server/metrics.h"
#include "upstream/upstream.h"

/* A model asked for by name: rerank calls are idempotent, so a 429, a 5xx or a lost
 * connection is retried twice on it (with backoff, or after Retry-After). */
static const struct sl_group_cfg by_name = {.name = "", .retries = 2,
                                            .timeout_ms = 10 * 60 * 1000};

struct rr;

/* One upstream request: documents [off, off+cnt) of the client's list. */
struct part {
    struct rr *r;
    int off, cnt;
    struct sl_encoded enc;
    struct sl_upstream_call *call;
    struct sl_upstream_meta meta;
    struct sl_buf body;
};

struct rr {
    struct sl_exchange *x;
    cJSON *root;
    struct sl_rerank_req req;
    const struct sl_group_cfg *group;  /* NULL: a model by name */
    struct sl_route_plan *route;
    struct sl_route_attempts att;
    struct sl_route_step step;
    struct event *wait;                /* backoff before the next attempt */
    const struct sl_model_cfg *model;  /* the attempt's deployment */
    size_t model_index;
    int claimed;                       /* model holds a routing claim not yet observed */
    int attempts;
    int64_t attempt_start_us;
    struct sl_error last;
    int64_t limit_ms;                  /* the provider's rate-limit hint; -1 none */
    char retry_after[32];
    /* the attempt's parts and what they returned */
    enum sl_rerank_wire wire;
    int nparts, started, finished;
    int *starts;                       /* part i is documents [starts[i], starts[i+1]) */
    struct part *parts;
    struct sl_rerank_hit *hits;        /* one slot per document */
    int nhits;
    int64_t tokens, search_units;
    int estimated;
};

static void cancel_parts(struct rr *r)
{
    for (int i = 0; i < r->started; i++) {
        sl_upstream_cancel(r->parts[i].call);
        r->parts[i].call = NULL;
    }
}

static void release_parts(struct rr *r)
{
    cancel_parts(r);
    for (int i = 0; i < r->started; i++)
        sl_buf_release(&r->parts[i].body);
    r->started = r->finished = 0;
}

static void on_rr_cleanup(void *p)
{
    struct rr *r = p;
    release_parts(r); /* no callback may outlive the exchange */
    cJSON_Delete(r->root);
}

static void observe(struct rr *r, const struct sl_route_outcome *o)
{
    if (!r->claimed)
        return;
    sl_route_observe(r->x->snap->health, r->model_index, o, sl_now_us());
    r->claimed = 0;
}

static void on_rr_finish(struct sl_exchange *x)
{
    struct rr *r = x->state;
    struct sl_route_outcome o = {.result = x->client_gone ? SL_OUTCOME_CANCELLED : SL_OUTCOME_OK,
                                 .retry_after_ms = -1,
                                 .ttft_us = sl_now_us() - r->attempt_start_us};
    if (r->wait)
        event_free(r->wait);
    r->wait = NULL;
    observe(r, &o);
}

static void fill_row(struct rr *r)
{
    struct sl_usage_row *row = &r->x->row;
    if (!r->model)
        return;
    r->x->model = r->model;
    snprintf(row->provider, sizeof(row->provider), "%s", r->model->provider);
    snprintf(row->upstream_model, sizeof(row->upstream_model), "%s", r->model->model);
    row->prompt_tokens = r->x->status < 400 ? r->tokens : 0;
    row->estimated = r->x->status < 400 && r->estimated;
}

/* ---- the attempt loop ---- */

static void begin_attempt(struct rr *r);

/* Nothing is left to try: the client gets the last failure. */
static void answer_failure(struct rr *r)
{
    struct sl_exchange *x = r->x;
    if (!r->last.status)
        sl_error_set(&r->last, 503, "api_error",
                     "no deployment of %s can take this rerank request now",
                     r->group ? r->group->name : "the model");
    x->status = r->last.status;
    fill_row(r);
    if (r->retry_after[0] && !x->client_gone)
        evhttp_add_header(evhttp_request_get_output_headers(x->req), "Retry-After", r->retry_after);
    sl_exchange_error(x, r->last.status, r->last.type, r->last.message,
                      r->last.param[0] ? r->last.param : NULL,
                      r->last.code[0] ? r->last.code : NULL);
}

static void on_waiting_gone(struct sl_exchange *x)
{
    struct rr *r = x->state;
    evtimer_del(r->wait);
    x->status = 499;
    fill_row(r);
    sl_exchange_client_left(x);
}

static void run_step(struct rr *r, int first)
{
    if (r->step.action == SL_ACTION_STOP) {
        answer_failure(r);
        return;
    }
    if (first && r->step.delay_ms <= 0) {
        begin_attempt(r);
        return;
    }
    int64_t ms = r->step.delay_ms > 0 ? r->step.delay_ms : 0;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    r->x->on_gone = on_waiting_gone;
    evtimer_add(r->wait, &tv);
    sl_exchange_overhead_end(r->x); /* the backoff is waiting, not sluice's work */
}

static void on_wait_done(evutil_socket_t fd, short what, void *arg)
{
    struct rr *r = arg;
    (void)fd;
    (void)what;
    sl_exchange_overhead_begin(r->x);
    begin_attempt(r);
}

/* A failed attempt the request goes on from: a ledger row of its own. */
static void record_attempt(struct rr *r)
{
    struct sl_exchange *x = r->x;
    struct sl_usage_row row = x->row;
    if (!x->w->srv->ledger || !r->model)
        return;
    snprintf(row.id, sizeof(row.id), "%s/%d", x->id, r->attempts);
    snprintf(row.provider, sizeof(row.provider), "%s", r->model->provider);
    snprintf(row.upstream_model, sizeof(row.upstream_model), "%s", r->model->model);
    snprintf(row.error, sizeof(row.error), "%.255s", r->last.message);
    snprintf(row.why, sizeof(row.why), "%s", r->step.why ? r->step.why : "");
    row.final = 0;
    row.status = r->last.status;
    row.prompt_tokens = row.completion_tokens = row.cached_tokens = row.reasoning_tokens = 0;
    row.estimated = 0;
    row.latency_us = sl_now_us() - r->attempt_start_us;
    row.ttft_us = -1;
    sl_cost_row(x->snap->catalog, r->model, &row);
    sl_ledger_record(x->w->srv->ledger, &row);
}

static struct sl_route_outcome outcome_of(const struct rr *r, const struct sl_error *e)
{
    struct sl_route_outcome o = {.result = SL_OUTCOME_HTTP, .status = e->status, .retry_after_ms = -1};
    int64_t ms;
    if (strcmp(e->code, "upstream_unreachable") == 0)
        o.result = SL_OUTCOME_CONNECT;
    else if (strcmp(e->code, "upstream_timeout") == 0)
        o.result = SL_OUTCOME_TIMEOUT;
    if (r->limit_ms >= 0)
        o.retry_after_ms = r->limit_ms;
    else if (r->retry_after[0] && sl_route_parse_retry_after(r->retry_after, sl_wall_ms(), &ms) == 0)
        o.retry_after_ms = ms;
    return o;
}

/* The attempt failed before anything reached the client: the policy decides. */
static void attempt_failed(struct rr *r, const struct sl_error *e, const char *retry_after)
{
    struct sl_exchange *x = r->x;
    cancel_parts(r);
    r->last = *e;
    snprintf(r->retry_after, sizeof(r->retry_after), "%s", retry_after ? retry_after : "");
    if (x->client_gone) {
        sl_exchange_abandon(x);
        return;
    }
    struct sl_route_outcome o = outcome_of(r, e);
    r->limit_ms = -1;
    observe(r, &o);
    sl_route_attempts_next(&r->att, &o, sl_now_us(), &r->step);
    if (r->step.action == SL_ACTION_TRY)
        record_attempt(r);
    run_step(r, 0);
}

static void fail_transport(struct rr *r, enum sl_upstream_result res, const char *detail)
{
    struct sl_error err;
    sl_exchange_upstream_failure(&err, r->model->provider, res, detail);
    attempt_failed(r, &err, NULL);
}

/* A provider's HTTP error: its status and message, in OpenAI's shape. */
static void fail_upstream(struct rr *r, struct part *p)
{
    struct sl_error err;
    char kind[32];
    struct sl_route_limit_hints h = {
        .retry_after = p->meta.retry_after[0] ? p->meta.retry_after : NULL,
        .retry_after_ms = p->meta.retry_after_ms[0] ? p->meta.retry_after_ms : NULL,
        .reset_requests = p->meta.reset_requests[0] ? p->meta.reset_requests : NULL,
        .reset_tokens = p->meta.reset_tokens[0] ? p->meta.reset_tokens : NULL,
    };
    int status = p->meta.status >= 400 && p->meta.status <= 599 ? p->meta.status : 502;
    sl_rerank_parse_error(status, p->body.ptr ? p->body.ptr : "", p->body.len, &err);
    if (!err.message[0])
        snprintf(err.message, sizeof(err.message), "upstream %s answered HTTP %d: %.200s",
                 r->model->provider, p->meta.status, p->body.ptr ? p->body.ptr : "");
    r->limit_ms = h.retry_after || h.retry_after_ms || h.reset_requests || h.reset_tokens
                      ? sl_route_limit_delay_ms(&h, sl_wall_ms())
                      : -1;
    snprintf(kind, sizeof(kind), "status_%d", p->meta.status);
    sl_metrics_upstream_error(r->model->provider, kind);
    attempt_failed(r, &err, p->meta.retry_after[0] ? p->meta.retry_after : NULL);
}

/* ---- parts ---- */

/* Tokens of a part the provider did not count: its query and documents, estimated. */
static int64_t estimate_part(const struct rr *r, const struct part *p)
{
    int64_t n = sl_estimate_text(r->req.query, strlen(r->req.query));
    for (int i = p->off; i < p->off + p->cnt; i++)
        n += sl_estimate_text(r->req.docs[i], strlen(r->req.docs[i]));
    return n;
}

static void reply_whole(struct rr *r)
{
    struct sl_exchange *x = r->x;
    struct sl_buf out = SL_BUF_INIT(SL_RERANK_MAX_REPLY);
    char id[64];
    snprintf(id, sizeof(id), "rerank-%s", x->id);
    sl_rerank_sort(r->hits, r->nhits);
    if (sl_rerank_reply(&r->req, r->hits, r->nhits, id, r->model->model, r->tokens,
                        r->search_units ? r->search_units : r->nparts, &out)) {
        sl_buf_release(&out);
        sl_exchange_error(x, 502, "upstream_error", "the rerank reply is larger than sluice can build",
                          NULL, NULL);
        return;
    }
    x->status = 200;
    fill_row(r);
    sl_exchange_reply(x, 200, "application/json", out.ptr, out.len);
    sl_buf_release(&out);
}

static int start_parts(struct rr *r);

static void part_ok(struct rr *r, struct part *p)
{
    struct sl_rerank_parsed u;
    struct sl_error err;
    if (sl_rerank_parse_reply(r->wire, p->body.ptr ? p->body.ptr : "", p->body.len, p->off,
                              p->cnt, r->hits + r->nhits, &u, &err)) {
        attempt_failed(r, &err, NULL);
        return;
    }
    r->nhits += u.nhits;
    r->search_units += u.search_units;
    if (u.usage_present) {
        r->tokens += u.tokens;
    } else {
        r->tokens += estimate_part(r, p);
        r->estimated = 1;
    }
    sl_buf_release(&p->body);
    if (++r->finished == r->nparts)
        reply_whole(r);
    else if (start_parts(r))
        fail_transport(r, SL_UP_UNREACHABLE, "cannot start the upstream request");
    else
        sl_exchange_overhead_end(r->x);
}

static void on_up_headers(void *ctx, const struct sl_upstream_meta *meta)
{
    struct part *p = ctx;
    p->meta = *meta;
}

static void on_up_data(void *ctx, const char *s, size_t n)
{
    struct part *p = ctx;
    if (sl_buf_append(&p->body, s, n)) {
        sl_exchange_overhead_begin(p->r->x);
        fail_transport(p->r, SL_UP_TOO_BIG, "the reply is larger than the upstream body limit");
    }
}

static void on_up_done(void *ctx, enum sl_upstream_result res, const char *detail)
{
    struct part *p = ctx;
    struct rr *r = p->r;
    p->call = NULL;
    sl_exchange_overhead_begin(r->x);
    if (res != SL_UP_OK)
        fail_transport(r, res, detail);
    else if (p->meta.status < 200 || p->meta.status > 299)
        fail_upstream(r, p);
    else
        part_ok(r, p);
}

static struct sl_timeouts attempt_timeouts(const struct rr *r)
{
    struct sl_timeouts t = r->model->p->timeouts;
    if (r->step.timeout_ms > 0 && r->step.timeout_ms < t.total_ms)
        t.total_ms = (int)r->step.timeout_ms;
    if (t.first_byte_ms > t.total_ms)
        t.first_byte_ms = t.total_ms;
    return t;
}

static int start_part(struct rr *r, struct part *p)
{
    static const struct sl_upstream_cbs cbs = {on_up_headers, on_up_data, on_up_done};
    if (sl_rerank_encode(r->wire, &r->req, r->model, p->off, p->cnt, r->x->arena, &p->enc))
        return -1;
    struct sl_upstream_req req = {
        .url = p->enc.url,
        .body = p->enc.body,
        .body_len = p->enc.len,
        .headers = p->enc.headers,
        .nheaders = p->enc.nheaders,
        .timeouts = attempt_timeouts(r),
    };
    p->call = sl_upstream_start(r->x->w->up, &req, &cbs, p);
    return p->call ? 0 : -1;
}

/* Keeps up to SL_RERANK_MAX_INFLIGHT parts in flight. */
static int start_parts(struct rr *r)
{
    while (r->started < r->nparts && r->started - r->finished < SL_RERANK_MAX_INFLIGHT) {
        struct part *p = &r->parts[r->started];
        memset(p, 0, sizeof(*p));
        p->r = r;
        p->off = r->starts[r->started];
        p->cnt = r->starts[r->started + 1] - p->off;
        sl_buf_init(&p->body, SL_MAX_UPSTREAM_BODY);
        r->started++;
        if (start_part(r, p))
            return -1;
    }
    return 0;
}

static void on_client_gone(struct sl_exchange *x)
{
    struct rr *r = x->state;
    cancel_parts(r);
    x->status = 499;
    fill_row(r);
    sl_exchange_client_left(x);
}

static void begin_attempt(struct rr *r)
{
    struct sl_exchange *x = r->x;
    const struct sl_config *cfg = x->snap->cfg;
    size_t idx = r->route->c[r->step.candidate].model;
    int64_t now = sl_now_us();
    if (r->group && sl_route_acquire(x->snap->health, idx, 0, now)) {
        sl_route_attempts_skip(&r->att, now, &r->step); /* opened since the plan was made */
        run_step(r, 1);
        return;
    }
    release_parts(r);
    r->claimed = r->group != NULL;
    r->model = &cfg->models[idx];
    r->model_index = idx;
    r->attempts++;
    x->row.attempt = r->attempts;
    r->attempt_start_us = now;
    r->wire = sl_rerank_wire_of(r->model->p);
    r->starts = sl_arena_alloc(x->arena, ((size_t)r->req.ndocs + 1) * sizeof(*r->starts));
    r->nparts = r->starts ? sl_rerank_plan(&r->req, sl_rerank_batch_limit(r->wire, r->model),
                                           sl_rerank_token_limit(r->wire), r->starts)
                          : 0;
    r->parts = sl_arena_alloc(x->arena, (size_t)r->nparts * sizeof(*r->parts) + 1);
    r->nhits = 0;
    r->tokens = r->search_units = 0;
    r->estimated = 0;
    x->on_gone = on_client_gone;
    if (!r->starts || !r->parts || start_parts(r))
        fail_transport(r, SL_UP_UNREACHABLE, "cannot start the upstream request");
    else
        sl_exchange_overhead_end(x);
}

/* ---- the handler ---- */

static int bad(struct sl_exchange *x, const char *param, const char *msg)
{
    sl_exchange_error(x, 400, "invalid_request_error", msg, param, NULL);
    return -1;
}

static int parse_body(struct rr *r, const char *body, size_t len)
{
    struct sl_exchange *x = r->x;
    struct sl_error err;
    if (sl_exchange_read_request(x, body, len, &r->root))
        return -1;
    if (sl_rerank_request_read(r->root, x->arena, &r->req, &err)) {
        sl_exchange_error(x, err.status, err.type, err.message, err.param[0] ? err.param : NULL, NULL);
        return -1;
    }
    r->hits = sl_arena_alloc(x->arena, (size_t)r->req.ndocs * sizeof(*r->hits));
    if (!r->hits) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return -1;
    }
    return 0;
}

static int can_rerank(const struct sl_model_cfg *m)
{
    return m->p->enabled && sl_rerank_wire_of(m->p) != SL_RERANK_AUTO &&
           (!m->capabilities || (m->capabilities & SL_CAP_RERANK));
}

/* Drops the candidates whose provider has no rerank API. */
static void keep_rerankers(const struct sl_config *cfg, struct sl_route_plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        if (can_rerank(&cfg->models[p->c[i].model]))
            p->c[n++] = p->c[i];
    p->n = n;
}

/* The model or group asked for, as candidates. */
static int resolve(struct rr *r)
{
    struct sl_exchange *x = r->x;
    const struct sl_config *cfg = x->snap->cfg;
    const struct sl_model_cfg *m = sl_config_find_model(cfg, x->row.model);
    char msg[SL_MAX_NAME + 128];
    if (!sl_exchange_model_allowed(x, &sl_openai_client, x->row.model))
        return -1;
    r->route = sl_arena_alloc(x->arena, sizeof(*r->route));
    if (!r->route) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return -1;
    }
    if (m && !can_rerank(m)) {
        snprintf(msg, sizeof(msg), "The model '%s' is not a rerank model or its provider has no "
                 "rerank API", x->row.model);
        return bad(x, "model", msg);
    }
    if (m) {
        r->route->n = 1;
        r->route->c[0].model = (uint32_t)(m - cfg->models);
        return 0;
    }
    r->group = sl_config_find_group(cfg, x->row.model);
    if (!r->group) {
        snprintf(msg, sizeof(msg), "The model '%s' does not exist or is not served by this gateway",
                 x->row.model);
        sl_exchange_error(x, 404, "invalid_request_error", msg, "model", "model_not_found");
        return -1;
    }
    struct sl_route_request rq = {
        .needs = SL_CAP_RERANK,
        .pin = evhttp_find_header(evhttp_request_get_input_headers(x->req), "x-sluice-deployment"),
        .seed = (uint64_t)x->t_start_us * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)x,
    };
    if (sl_route_plan(cfg, r->group, x->snap->health, &rq, sl_now_us(), r->route) == SL_ROUTE_EPIN)
        return bad(x, "x-sluice-deployment", "x-sluice-deployment is not a deployment of the group");
    keep_rerankers(cfg, r->route);
    return 0;
}

void sl_rerank_handle(struct sl_exchange *x)
{
    struct rr *r = sl_arena_alloc(x->arena, sizeof(*r));
    size_t len;
    const char *body = sl_exchange_body(x, &len);
    if (!r || sl_arena_cleanup(x->arena, on_rr_cleanup, r)) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return;
    }
    memset(r, 0, sizeof(*r));
    r->x = x;
    r->limit_ms = -1;
    x->state = r;
    if (len > x->snap->cfg->server.max_body) {
        sl_exchange_error(x, 413, "invalid_request_error",
                          "the request body is larger than server.max_body", NULL,
                          "request_too_large");
        return;
    }
    if (parse_body(r, body ? body : "", len) || resolve(r))
        return;
    r->wait = evtimer_new(x->w->base, on_wait_done, r);
    if (!r->wait) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return;
    }
    x->on_finish = on_rr_finish;
    int64_t now = sl_now_us();
    sl_route_attempts_init(&r->att, r->group ? r->group : &by_name, r->route->n, now, 0,
                           (uint64_t)now);
    sl_route_attempts_first(&r->att, now, &r->step);
    run_step(r, 1);
}
