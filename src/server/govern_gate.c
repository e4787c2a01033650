/* Where a request meets budgets and rate limits (src/meter/govern.c): the scopes that
 * apply to it (its key, its tags with a budget, the model or group it named), what it
 * may cost, admission before the first upstream byte, settlement when it ends. */
#include <stdio.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/clock.h"
#include "core/log.h"
#include "formats/format.h"
#include "meter/catalog.h"
#include "meter/cost.h"
#include "meter/estimate.h"
#include "meter/govern.h"
#include "server/internal.h"
#include "server/plan.h"
#include "store/store.h"

#define DEFAULT_MAX_OUTPUT 4096 /* tokens reserved when neither request nor catalog says */

static int limited(const struct sl_gov_scope *s)
{
    return s->rpm || s->tpm || s->concurrency || s->budget.limit_micros;
}

/* The request's tags are a JSON array of "name=value" strings (worker.c). */
static int has_tag(const char *tags_json, const char *tag)
{
    size_t n = strlen(tag);
    for (const char *p = tags_json; (p = strchr(p, '"')) != NULL; p++) {
        if (strncmp(p + 1, tag, n) == 0 && p[n + 1] == '"')
            return 1;
        p = strchr(p + 1, '"'); /* past the closing quote of this tag */
        if (!p)
            break;
    }
    return 0;
}

static size_t build_scopes(struct sl_exchange *x, const struct sl_admit_req *a,
                           struct sl_gov_scope *s)
{
    const struct sl_config *cfg = x->snap->cfg;
    size_t n = 0;
    if (x->key) {
        struct sl_gov_scope *k = &s[n];
        memset(k, 0, sizeof(*k));
        snprintf(k->name, sizeof(k->name), "key:%s", x->key->name);
        k->rpm = x->key->rpm;
        k->tpm = x->key->tpm;
        k->concurrency = x->key->concurrency;
        if (x->key->budget[0])
            sl_budget_parse(x->key->budget, &k->budget); /* checked when the key was made */
        n += limited(k);
    }
    for (size_t i = 0; i < cfg->govern.nbudgets && n < SL_GOV_MAX_SCOPES - 1; i++) {
        const struct sl_tag_budget *b = &cfg->govern.budgets[i];
        if (!x->row.tags[0] || !has_tag(x->row.tags, b->tag))
            continue;
        memset(&s[n], 0, sizeof(s[n]));
        snprintf(s[n].name, sizeof(s[n].name), "tag:%s", b->tag);
        n += sl_budget_parse(b->limit, &s[n].budget) == 0;
    }
    if (a->limits && (a->limits->rpm || a->limits->tpm || a->limits->concurrency)) {
        memset(&s[n], 0, sizeof(s[n]));
        snprintf(s[n].name, sizeof(s[n].name), "%s:%s", a->scope_kind, a->scope_name);
        s[n].rpm = a->limits->rpm;
        s[n].tpm = a->limits->tpm;
        s[n].concurrency = a->limits->concurrency;
        n++;
    }
    return n;
}

/* The most the request may cost: its prompt estimate and the most it may write, on
 * the dearest of its candidates, in the reporting currency. */
static int64_t worst_cost(const struct sl_exchange *x, const struct sl_admit_req *a)
{
    const struct sl_catalog *c = x->snap->catalog;
    int64_t worst = 0;
    for (size_t i = 0; i < a->ncands; i++) {
        const struct sl_model_cfg *m = a->cands[i];
        const struct sl_catalog_entry *e = c ? sl_catalog_find(c, m->model, NULL) : NULL;
        struct sl_usage_row row;
        memset(&row, 0, sizeof(row));
        snprintf(row.model, sizeof(row.model), "%s", m->name);
        snprintf(row.upstream_model, sizeof(row.upstream_model), "%s", m->model);
        row.prompt_tokens = a->prompt_tokens;
        row.completion_tokens = a->max_tokens > 0       ? a->max_tokens
                                : e && e->max_output > 0 ? e->max_output
                                : a->output_possible     ? DEFAULT_MAX_OUTPUT
                                                         : 0;
        sl_cost_row(c, m, &row);
        if (row.cost_micros > worst)
            worst = row.cost_micros;
    }
    return worst;
}

/* OpenAI writes these as durations: "20ms", "1s", "6m0s". */
static void duration(char *out, size_t n, int64_t ms)
{
    if (ms < 1000)
        snprintf(out, n, "%lldms", (long long)(ms > 0 ? ms : 0));
    else if (ms < 60000)
        snprintf(out, n, "%llds", (long long)((ms + 999) / 1000));
    else
        snprintf(out, n, "%lldm%llds", (long long)(ms / 60000), (long long)((ms % 60000 + 999) / 1000));
}

static void add_int(struct evkeyvalq *h, const char *name, int64_t v)
{
    char s[32];
    snprintf(s, sizeof(s), "%lld", (long long)v);
    evhttp_add_header(h, name, s);
}

static void add_rate_headers(struct sl_exchange *x, const struct sl_gov_headers *g)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(x->req);
    char d[32];
    if (x->client_gone)
        return;
    if (g->limit_requests) {
        add_int(h, "x-ratelimit-limit-requests", g->limit_requests);
        add_int(h, "x-ratelimit-remaining-requests", g->remaining_requests);
        duration(d, sizeof(d), g->reset_requests_ms);
        evhttp_add_header(h, "x-ratelimit-reset-requests", d);
    }
    if (g->limit_tokens) {
        add_int(h, "x-ratelimit-limit-tokens", g->limit_tokens);
        add_int(h, "x-ratelimit-remaining-tokens", g->remaining_tokens);
        duration(d, sizeof(d), g->reset_tokens_ms);
        evhttp_add_header(h, "x-ratelimit-reset-tokens", d);
    }
}

static void refuse(struct sl_exchange *x, const struct sl_client_format *cf,
                   const struct sl_gov_refusal *r)
{
    static const char *const what[] = {"", "budget", "requests per minute", "tokens per minute",
                                       "requests in flight"};
    struct sl_error e;
    char used[32], limit[32];
    if (r->reason == SL_GOV_UNAVAILABLE) {
        sl_error_set(&e, 503, "service_unavailable",
                     "the shared store of budgets and rate limits did not answer; the request "
                     "was not sent (govern.on_error: deny)");
        snprintf(e.code, sizeof(e.code), "governor_unavailable");
    } else if (r->reason == SL_GOV_BUDGET) {
        sl_cost_format(r->used, used, sizeof(used));
        sl_cost_format(r->limit, limit, sizeof(limit));
        sl_error_set(&e, 429, "budget_exceeded",
                     "budget_exceeded: %s has spent or reserved %s of its %s %s budget",
                     r->scope, used, limit, r->currency);
        snprintf(e.code, sizeof(e.code), "budget_exceeded");
    } else {
        sl_error_set(&e, 429, r->reason == SL_GOV_TPM ? "tokens" : "requests",
                     "rate limit reached for %s on %s: limit %lld, used %lld; try again in "
                     "%lld ms", r->scope, what[r->reason], (long long)r->limit,
                     (long long)r->used, (long long)r->retry_after_ms);
        snprintf(e.code, sizeof(e.code), "%s", r->reason == SL_GOV_CONCURRENCY
                                                   ? "concurrency_limit_exceeded"
                                                   : "rate_limit_exceeded");
    }
    if (r->retry_after_ms > 0 && !x->client_gone) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(x->req);
        add_int(h, "Retry-After", (r->retry_after_ms + 999) / 1000);
        add_int(h, "retry-after-ms", r->retry_after_ms);
    }
    sl_exchange_send_error(x, cf, &e);
}

int sl_exchange_admit(struct sl_exchange *x, const struct sl_client_format *cf,
                      const struct sl_admit_req *a)
{
    struct sl_gov_scope scopes[SL_GOV_MAX_SCOPES];
    struct sl_gov_refusal r;
    struct sl_govern *g = x->w->srv->govern;
    size_t n = g ? build_scopes(x, a, scopes) : 0;
    if (n == 0)
        return 0;
    int budgets = 0;
    for (size_t i = 0; i < n; i++)
        budgets |= scopes[i].budget.limit_micros != 0;
    const struct sl_catalog *c = x->snap->catalog;
    struct sl_gov_ask ask = {.now_ms = sl_wall_ms(),
                             .tokens = a->prompt_tokens + (a->max_tokens > 0 ? a->max_tokens : 0),
                             .cost_micros = budgets ? worst_cost(x, a) : 0,
                             .usd_per_cny = c ? c->usd_per_cny : 140000};
    snprintf(ask.currency, sizeof(ask.currency), "%s", c ? c->currency : "USD");
    x->ticket = sl_arena_alloc(x->arena, sizeof(*x->ticket));
    if (!x->ticket)
        return 0; /* out of memory: let it through uncounted rather than fail it */
    if (sl_govern_admit(g, scopes, n, &ask, x->ticket, &r) == SL_GOV_OK) {
        add_rate_headers(x, &x->ticket->hdr);
        return 0;
    }
    add_rate_headers(x, &x->ticket->hdr);
    refuse(x, cf, &r);
    return -1;
}

void sl_exchange_settle(struct sl_exchange *x)
{
    const struct sl_usage_row *row = &x->row;
    const struct sl_catalog *c = x->snap->catalog;
    if (!x->ticket || !x->ticket->active)
        return;
    struct sl_gov_spend s = {.now_ms = sl_wall_ms(),
                             .tokens = row->prompt_tokens + row->completion_tokens,
                             .cost_micros = row->cost_micros + x->attempts_cost_micros,
                             .usd_per_cny = c ? c->usd_per_cny : 140000};
    snprintf(s.currency, sizeof(s.currency), "%s", row->currency[0] ? row->currency : "USD");
    sl_govern_settle(x->w->srv->govern, x->ticket, &s);
}

/* ---- the server's table ------------------------------------------------------------ */

int sl_server_govern_start(struct sl_server *srv, const struct sl_config *cfg)
{
    char err[512] = "";
    struct sl_store *s = NULL;
    srv->govern = sl_govern_new(cfg->govern.soft_percent);
    if (!srv->govern) {
        sl_error("out of memory");
        return -1;
    }
    if (cfg->govern.backend[0] && strcmp(cfg->govern.backend, "memory") != 0) {
        if (sl_govern_use_redis(srv->govern, cfg->govern.backend, cfg->govern.allow_on_error,
                                cfg->govern.lease_ms, err, sizeof(err))) {
            sl_error("govern.backend: %s", err);
            return -1;
        }
        sl_info("budgets and rate limits: counted in %s, shared with every replica using it",
                cfg->govern.backend);
    }
    /* the ledger has just opened (and created) the store: the spend so far is in it */
    int rc = sl_store_open(cfg->store, SL_STORE_MUST_EXIST, &s, err, sizeof(err));
    if (rc == SL_STORE_OK && sl_govern_load(srv->govern, s, sl_wall_ms(), err, sizeof(err)))
        rc = SL_STORE_ERROR;
    sl_store_close(s);
    if (rc != SL_STORE_OK) {
        sl_error("budgets: cannot load the spend so far from %s: %s", cfg->store, err);
        return -1;
    }
    sl_ledger_set_retention(srv->ledger, cfg->govern.retention_days);
    return 0;
}

/* ---- chat and messages --------------------------------------------------------------- */

int sl_plan_admit(struct sl_exchange *x, struct sl_plan *p)
{
    const struct sl_config *cfg = x->snap->cfg;
    const struct sl_model_cfg *cands[SL_MAX_GROUP_DEPLOYMENTS];
    size_t n = 0;
    for (size_t i = 0; i < p->route.n && n < SL_MAX_GROUP_DEPLOYMENTS; i++)
        cands[n++] = &cfg->models[p->route.c[i].model];
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(p->req, "max_completion_tokens");
    if (!cJSON_IsNumber(max))
        max = cJSON_GetObjectItemCaseSensitive(p->req, "max_tokens");
    struct sl_admit_req a = {
        .scope_kind = p->group ? "group" : "model",
        .scope_name = p->group ? p->group->name : n ? cands[0]->name : x->row.model,
        .limits = p->group ? &p->group->limits : n ? &cands[0]->limits : NULL,
        .prompt_tokens = sl_estimate_messages(cJSON_GetObjectItemCaseSensitive(p->req, "messages")),
        .max_tokens = cJSON_IsNumber(max) && max->valuedouble > 0 ? (int64_t)max->valuedouble : 0,
        .output_possible = 1,
        .cands = cands,
        .ncands = n,
    };
    return sl_exchange_admit(x, p->cf, &a);
}
