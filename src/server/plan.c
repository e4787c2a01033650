/* The attempt loop shared by every client format: resolve a model or a group into
 * candidates, pick the path each deployment needs, and let the routing policy decide
 * what a failure before the first byte leads to (src/route/ holds the policy). */
#include "server/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"
#include "meter/cost.h"
#include "meter/estimate.h"
#include "server/mirror.h"
#include "server/cached.h"
#include "upstream/upstream.h"

static void on_req_cleanup(void *p)
{
    cJSON_Delete(p);
}

static void on_plan_finish(struct sl_exchange *x);

struct sl_plan *sl_plan_new(struct sl_exchange *x, const struct sl_client_format *cf, cJSON *req,
                            const char *raw, size_t raw_len)
{
    struct sl_plan *p = sl_arena_alloc(x->arena, sizeof(*p));
    if (!p || sl_arena_cleanup(x->arena, on_req_cleanup, req)) {
        cJSON_Delete(req);
        return NULL;
    }
    p->cf = cf;
    p->req = req;
    p->raw = raw;
    p->raw_len = raw_len;
    p->stream = sl_json_bool(req, "stream", 0);
    p->limit_ms = -1;
    x->row.stream = p->stream;
    x->plan = p;
    x->on_finish = on_plan_finish;
    return p;
}

/* ---- resolving the name ---- */

static int has_image(const cJSON *messages)
{
    const cJSON *m, *part;
    cJSON_ArrayForEach(m, messages)
    {
        cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(m, "content"))
        {
            if (cJSON_IsObject(part) && strcmp(sl_json_str(part, "type", ""), "image_url") == 0)
                return 1;
        }
    }
    return 0;
}

/* What the request needs from a deployment, for the router's skips. */
static void describe(struct sl_exchange *x, const struct sl_plan *p, struct sl_route_request *rq)
{
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(p->req, "messages");
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(p->req, "tools");
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(p->req, "response_format");
    const char *rf_type = sl_json_str(rf, "type", "text");
    struct evkeyvalq *in = evhttp_request_get_input_headers(x->req);
    rq->prompt_tokens = sl_estimate_messages(messages);
    rq->max_tokens = sl_json_int(p->req, "max_completion_tokens", sl_json_int(p->req, "max_tokens", 0));
    rq->needs = (cJSON_GetArraySize(tools) > 0 ? SL_CAP_TOOLS : 0) |
                (strcmp(rf_type, "text") != 0 ? SL_CAP_JSON : 0) |
                (has_image(messages) ? SL_CAP_IMAGES : 0);
    rq->stream = p->stream;
    rq->pin = evhttp_find_header(in, "x-sluice-deployment");
    rq->seed = (uint64_t)x->t_start_us * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)x;
}

int sl_plan_resolve(struct sl_exchange *x, struct sl_plan *p, const char *name)
{
    const struct sl_config *cfg = x->snap->cfg;
    const struct sl_model_cfg *m = sl_config_find_model(cfg, name);
    if (m) {
        p->route.n = 1;
        p->route.c[0].model = (uint32_t)(m - cfg->models);
        return 0;
    }
    p->group = sl_config_find_group(cfg, name);
    if (!p->group)
        return -1;
    struct sl_route_request rq;
    describe(x, p, &rq);
    if (sl_route_plan(cfg, p->group, x->snap->health, &rq, sl_now_us(), &p->route) == SL_ROUTE_EPIN) {
        p->route.n = 0;
        sl_error_set(&p->last, 400, "invalid_request_error",
                     "x-sluice-deployment: '%.128s' is not a deployment of group %.128s", rq.pin, name);
    }
    return 0;
}

/* ---- attempts ---- */

/* Nothing is left to try: the client gets the last failure, in its own format. */
static void answer_failure(struct sl_exchange *x, struct sl_plan *p)
{
    if (sl_cached_stale(x, p))
        return; /* stale_on_error: the cached answer, marked stale */
    if (!p->last.status) {
        const struct sl_route_plan *r = &p->route;
        sl_error_set(&p->last, 503, "api_error",
                     "no deployment of %s can take this request now (%u open breaker(s), "
                     "%u rate limited, %u too small a context window, %u lacking a capability)",
                     p->group ? p->group->name : "the model", r->skipped_open, r->skipped_limited,
                     r->skipped_context, r->skipped_capability);
        if (r->limited_until_us)
            snprintf(p->retry_after, sizeof(p->retry_after), "%lld",
                     (long long)((r->limited_until_us - sl_now_us()) / 1000000 + 1));
    }
    x->status = p->last.status;
    if (p->current)
        sl_exchange_account(x, p->current, &(struct sl_usage){0}, NULL, 0);
    if (p->retry_after[0] && !x->client_gone)
        evhttp_add_header(evhttp_request_get_output_headers(x->req), "Retry-After", p->retry_after);
    sl_exchange_send_error(x, p->cf, &p->last);
}

static void begin_attempt(struct sl_exchange *x, struct sl_plan *p);
static void on_waiting_gone(struct sl_exchange *x);

/* The first attempt starts at once; later ones from the loop (after their backoff, or
 * at its next turn), never from inside the failed attempt's upstream callbacks. */
static void run_step(struct sl_exchange *x, struct sl_plan *p, int first)
{
    if (p->step.action == SL_ACTION_STOP) {
        answer_failure(x, p);
        return;
    }
    if (first && p->step.delay_ms <= 0) {
        begin_attempt(x, p);
        return;
    }
    int64_t ms = p->step.delay_ms > 0 ? p->step.delay_ms : 0;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    x->on_gone = on_waiting_gone;
    x->state = NULL;
    evtimer_add(p->wait, &tv);
}

static void on_wait_done(evutil_socket_t fd, short what, void *arg)
{
    struct sl_exchange *x = arg;
    begin_attempt(x, x->plan);
}

static void on_waiting_gone(struct sl_exchange *x)
{
    evtimer_del(x->plan->wait);
    sl_exchange_client_left(x);
}

static void begin_attempt(struct sl_exchange *x, struct sl_plan *p)
{
    const struct sl_config *cfg = x->snap->cfg;
    size_t idx = p->route.c[p->step.candidate].model;
    const struct sl_model_cfg *m = &cfg->models[idx];
    int64_t now = sl_now_us();
    if (p->group && sl_route_acquire(x->snap->health, idx, p->stream, now)) {
        sl_route_attempts_skip(&p->att, now, &p->step); /* opened since the plan was made */
        run_step(x, p, 1);
        return;
    }
    p->claimed = p->group != NULL;
    p->attempts++;
    p->number = p->attempts;
    p->path = NULL;
    p->first_byte = 0;
    x->row.attempt = p->attempts;
    p->current = m;
    p->current_index = idx;
    p->attempt_start_us = now;
    x->on_gone = NULL;
    sl_plan_run_path(x, p, m);
}

void sl_plan_run_path(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m)
{
    int same_wire = (m->p->kind == SL_WIRE_OPENAI && strcmp(p->cf->name, "openai") == 0) ||
                    (m->p->kind == SL_WIRE_ANTHROPIC && strcmp(p->cf->name, "anthropic") == 0);
    if (!same_wire || !p->raw)
        sl_translate_attempt(x, p, m);
    else if (m->p->kind == SL_WIRE_OPENAI)
        sl_fast_start(x, p, m);
    else
        sl_pass_start(x, p, m);
}

/* A model asked for by name is tried once, as configured; a group follows its policy. */
static const struct sl_group_cfg single = {.name = "", .retries = 0, .timeout_ms = 24 * 3600 * 1000};

static void plan_go(struct sl_exchange *x, struct sl_plan *p);

void sl_plan_start(struct sl_exchange *x, struct sl_plan *p)
{
    /* Budgets and rate limits first: a cache hit is a request too (it settles at its
     * cost, 0, which releases the reservation and the token pre-charge). */
    if (sl_plan_admit(x, p))
        return; /* refused by a budget or a rate limit: answered */
    if (sl_cached_lookup(x, p, plan_go))
        return; /* answered from the cache, or a semantic lookup that calls plan_go */
    plan_go(x, p);
}

static void plan_go(struct sl_exchange *x, struct sl_plan *p)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(x->req);
    const char *t = evhttp_find_header(in, "x-stainless-timeout"); /* the SDKs' own timeout, s */
    int64_t now = sl_now_us(), client_ms = t ? sl_json_clamp_int(atof(t) * 1000) : 0;
    p->wait = evtimer_new(x->w->base, on_wait_done, x);
    if (!p->wait) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return;
    }
    sl_route_attempts_init(&p->att, p->group ? p->group : &single, p->route.n, now, client_ms,
                           (uint64_t)now);
    sl_route_attempts_first(&p->att, now, &p->step);
    p->mirrored = p->step.action == SL_ACTION_TRY && sl_mirror_sampled(p->group, x->id);
    struct sl_mirror *copies[SL_MAX_GROUP_DEPLOYMENTS];
    size_t ncopies = sl_mirror_prepare(x, p, copies);
    run_step(x, p, 1); /* may end the exchange: x and p are not touched after it */
    sl_mirror_send(copies, ncopies);
}

void sl_plan_hash_answer(const cJSON *obj, uint64_t *h, size_t *n)
{
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(obj, "choices"), 0);
    const cJSON *part = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    if (!part)
        part = cJSON_GetObjectItemCaseSensitive(choice, "message");
    const char *text = sl_json_str(part, "content", NULL);
    if (!text || !*text)
        return;
    size_t len = strlen(text);
    *h = sl_hash64(*h, text, len);
    *n += len;
}

void sl_plan_answer_hash(struct sl_exchange *x, const struct sl_plan *p, uint64_t h, size_t n)
{
    if (p->mirrored && n && !x->row.error[0])
        sl_hash64_hex(h, x->row.answer_hash);
}

static struct sl_route_outcome outcome_of(const struct sl_plan *p, const struct sl_error *e,
                                          int64_t now)
{
    struct sl_route_outcome o = {.result = SL_OUTCOME_HTTP, .status = e->status, .stream = p->stream,
                                 .retry_after_ms = -1};
    if (strcmp(e->code, "upstream_unreachable") == 0)
        o.result = SL_OUTCOME_CONNECT;
    else if (strcmp(e->code, "invalid_json") == 0)
        o.result = SL_OUTCOME_CANCELLED; /* not the deployment's health: move up a tier */
    else if (strcmp(e->code, "upstream_timeout") == 0)
        o.result = SL_OUTCOME_TIMEOUT;
    int64_t ms;
    if (p->limit_ms >= 0)
        o.retry_after_ms = p->limit_ms;
    else if (p->retry_after[0] && sl_route_parse_retry_after(p->retry_after, sl_wall_ms(), &ms) == 0)
        o.retry_after_ms = ms;
    (void)now;
    return o;
}

void sl_plan_record(struct sl_exchange *x, const struct sl_plan *p, const struct sl_model_cfg *m,
                    int number, int64_t start_us, int status, const char *error, const char *why,
                    const struct sl_usage *spent, int estimated)
{
    struct sl_usage_row row = x->row;
    if (!x->w->srv->ledger || !m)
        return;
    snprintf(row.id, sizeof(row.id), "%s/%d", x->id, number);
    snprintf(row.provider, sizeof(row.provider), "%s", m->provider);
    snprintf(row.upstream_model, sizeof(row.upstream_model), "%s", m->model);
    snprintf(row.error, sizeof(row.error), "%.255s", error ? error : "");
    snprintf(row.why, sizeof(row.why), "%s", why ? why : "");
    row.attempt = number;
    row.final = 0;
    row.status = status;
    row.prompt_tokens = spent->prompt; /* billed even though the answer was not used */
    row.completion_tokens = spent->completion;
    row.cached_tokens = spent->cached;
    row.reasoning_tokens = spent->reasoning;
    row.estimated = estimated;
    row.latency_us = sl_now_us() - start_us;
    row.ttft_us = -1;
    sl_cost_row(x->snap->catalog, m, &row);
    x->attempts_cost_micros += row.cost_micros; /* the budget pays for it too */
    sl_ledger_record(x->w->srv->ledger, &row);
    (void)p;
}

/* A failed attempt that the request goes on from gets a ledger row of its own, linked
 * to the request's: which deployment, what it answered, and what the router did next. */
static void record_attempt(struct sl_exchange *x, const struct sl_plan *p)
{
    sl_plan_record(x, p, p->current, p->number, p->attempt_start_us, p->last.status,
                   p->last.message, p->step.why, &p->spent, 0);
}

void sl_plan_note_limits(struct sl_plan *p, const struct sl_upstream_meta *meta)
{
    struct sl_route_limit_hints h = {
        .retry_after = meta->retry_after[0] ? meta->retry_after : NULL,
        .retry_after_ms = meta->retry_after_ms[0] ? meta->retry_after_ms : NULL,
        .reset_requests = meta->reset_requests[0] ? meta->reset_requests : NULL,
        .reset_tokens = meta->reset_tokens[0] ? meta->reset_tokens : NULL,
    };
    p->limit_ms = h.retry_after || h.retry_after_ms || h.reset_requests || h.reset_tokens
                      ? sl_route_limit_delay_ms(&h, sl_wall_ms())
                      : -1;
}

void sl_plan_failed(struct sl_exchange *x, struct sl_plan *p, const struct sl_error *e,
                    const char *retry_after)
{
    int64_t now = sl_now_us();
    p->last = *e;
    snprintf(p->retry_after, sizeof(p->retry_after), "%s", retry_after ? retry_after : "");
    if (!p->retry_after[0] && e->retry_after[0])
        snprintf(p->retry_after, sizeof(p->retry_after), "%s", e->retry_after);
    if (x->client_gone) {
        sl_exchange_abandon(x);
        return;
    }
    sl_plan_drop_hedge(x, p); /* the plan moves on: nothing else may be in flight */
    p->path = NULL;
    struct sl_route_outcome o = outcome_of(p, e, now);
    p->limit_ms = -1; /* the hints were this attempt's */
    if (p->claimed) {
        sl_route_observe(x->snap->health, p->current_index, &o, now);
        p->claimed = 0;
    }
    sl_route_attempts_next(&p->att, &o, now, &p->step);
    if (p->step.action == SL_ACTION_TRY && o.result == SL_OUTCOME_CANCELLED)
        p->step.why = "escalate: invalid JSON in JSON mode";
    if (p->step.action == SL_ACTION_TRY)
        record_attempt(x, p);
    p->spent = (struct sl_usage){0};
    run_step(x, p, 0);
}

int sl_plan_escalates(const struct sl_plan *p, const cJSON *completion)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(p->req, "response_format");
    const char *type = sl_json_str(rf, "type", "text");
    if (!p->group || p->group->strategy != SL_STRATEGY_TIERS || p->stream ||
        strcmp(type, "text") == 0 || p->att.next >= p->route.n)
        return 0;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(completion, "choices");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 0), "message");
    const char *content = sl_json_str(msg, "content", NULL);
    if (!content)
        return 0; /* a tool call, or a refusal: not a JSON answer gone wrong */
    cJSON *parsed = cJSON_Parse(content);
    int bad = !parsed;
    cJSON_Delete(parsed);
    return bad;
}

void sl_plan_escalate(struct sl_exchange *x, struct sl_plan *p, const struct sl_usage *spent)
{
    struct sl_error e;
    sl_error_set(&e, 502, "upstream_error", "%s answered invalid JSON in JSON mode",
                 p->current ? p->current->name : "the deployment");
    snprintf(e.code, sizeof(e.code), "invalid_json");
    p->spent = *spent;
    sl_plan_failed(x, p, &e, NULL);
}

struct sl_timeouts sl_plan_timeouts(const struct sl_plan *p, const struct sl_model_cfg *m)
{
    struct sl_timeouts t = m->p->timeouts;
    if (p->step.timeout_ms > 0 && p->step.timeout_ms < t.total_ms)
        t.total_ms = (int)p->step.timeout_ms;
    if (t.first_byte_ms > t.total_ms)
        t.first_byte_ms = t.total_ms;
    return t;
}

/* The exchange ends: the attempt that answered (or broke after its first byte) is
 * reported to the router. */
static void on_plan_finish(struct sl_exchange *x)
{
    struct sl_plan *p = x->plan;
    sl_plan_drop_hedge(x, p);
    if (p->hedge_timer)
        event_free(p->hedge_timer);
    p->hedge_timer = NULL;
    sl_cached_finish(x, p);
    if (p->wait)
        event_free(p->wait);
    p->wait = NULL;
    if (!p->claimed)
        return;
    int64_t now = sl_now_us();
    struct sl_route_outcome o = {.result = SL_OUTCOME_OK, .stream = p->stream, .retry_after_ms = -1};
    if (x->client_gone)
        o.result = SL_OUTCOME_CANCELLED;
    else if (x->row.error[0])
        o.result = SL_OUTCOME_STALL; /* a stream that broke after it began */
    /* The attempt's own time to first token (not the request's, which includes the
     * attempts before it); for a whole reply, the time it took. */
    o.ttft_us = x->row.ttft_us >= 0 ? x->t_start_us + x->row.ttft_us - p->attempt_start_us
                                    : now - p->attempt_start_us;
    sl_route_observe(x->snap->health, p->current_index, &o, now);
    p->claimed = 0;
}
