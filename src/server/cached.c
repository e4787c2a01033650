/* The response cache on the request path (see cached.h). The cache itself (keys,
 * backends, the semantic index) is src/cache/; this file knows the exchange: headers,
 * the client's format, the ledger rows of hits and of the semantic embedding. */
#include "server/cached.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "cache/cache.h"
#include "cache/index.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "formats/format.h"
#include "formats/openai.h"
#include "meter/cost.h"
#include "server/plan.h"
#include "upstream/embed_one.h"

#define MAX_CALLS    16 /* streamed tool calls assembled for storing; more: not stored */

/* A tool call as its stream chunks build it. */
struct call {
    char *id, *name;       /* malloc'd */
    struct sl_buf args;
};

struct sl_cached {
    struct sl_cache_policy pol;
    uint8_t key[SL_CACHE_KEY_LEN];
    int served;                   /* answered from the cache */
    /* semantic lookup */
    uint64_t scope;
    float *vec;                   /* the normalised embedding (arena), NULL when none */
    int dim;
    struct sl_embed_one *embed;   /* in flight */
    sl_plan_go_fn go;
    /* the answer as it takes shape */
    char *whole;                  /* a whole reply, OpenAI JSON (arena) */
    size_t whole_len;
    struct sl_buf content, reasoning;
    char finish[32];
    char *model;                  /* from the first chunk */
    struct call calls[MAX_CALLS];
    int ncalls;
    int chunks, uncacheable;
    struct sl_usage usage;
};

static void on_cached_cleanup(void *arg)
{
    struct sl_cached *c = arg;
    sl_embed_one_cancel(c->embed);
    free(c->whole);
    free(c->model);
    for (int i = 0; i < c->ncalls; i++) {
        free(c->calls[i].id);
        free(c->calls[i].name);
        sl_buf_release(&c->calls[i].args);
    }
    sl_buf_release(&c->content);
    sl_buf_release(&c->reasoning);
}

static void set_header(struct sl_exchange *x, const char *name, const char *value)
{
    if (x->client_gone)
        return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(x->req);
    evhttp_remove_header(h, name);
    evhttp_add_header(h, name, value);
}

/* ---- answering from the cache ---- */

/* Answers from entry e, marked label ("hit" or "stale"). Returns 0, or -1 (nothing
 * sent) when the entry cannot be read. */
static int serve(struct sl_exchange *x, struct sl_plan *p, struct sl_cached *c,
                 const struct sl_cache_entry *e, const char *label)
{
    cJSON *comp = cJSON_ParseWithLength(e->value, e->len);
    struct sl_usage u = {0};
    struct sl_buf out = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY * 2);
    char age[32];
    int rc = -1;
    if (!comp)
        return -1;
    sl_openai_usage(comp, &u);
    cJSON_ReplaceItemInObjectCaseSensitive(comp, "id", cJSON_CreateString(x->id));
    rc = p->stream ? sl_cached_replay_stream(x, p, comp, &u, &out) : p->cf->encode_reply(comp, &u, &out);
    cJSON_Delete(comp);
    if (rc) {
        sl_buf_release(&out);
        return -1;
    }
    c->served = 1;
    snprintf(x->row.cache, sizeof(x->row.cache), "%s", label);
    x->row.saved_micros = e->cost_micros;
    snprintf(age, sizeof(age), "%lld", (long long)((sl_wall_ms() - e->created_ms) / 1000));
    set_header(x, "x-sluice-cache", label);
    set_header(x, "x-sluice-cache-age", age);
    sl_exchange_first_token(x);
    if (p->stream) {
        sl_exchange_stream_start(x);
        sl_exchange_stream_write(x, out.ptr, out.len);
        sl_buf_release(&out);
        sl_exchange_stream_end(x);
    } else {
        sl_exchange_reply(x, 200, "application/json", out.ptr ? out.ptr : "{}", out.len);
        sl_buf_release(&out);
    }
    return 0;
}

/* ---- the semantic lookup ---- */

/* The embedding call is spend of its own: a row linked to the request, not a request. */
static void record_embedding(struct sl_exchange *x, const struct sl_model_cfg *m,
                             const struct sl_embed_one_result *r)
{
    struct sl_usage_row row = x->row;
    if (!x->w->srv->ledger)
        return;
    snprintf(row.id, sizeof(row.id), "%s/embed", x->id);
    snprintf(row.model, sizeof(row.model), "%s", m->name);
    snprintf(row.provider, sizeof(row.provider), "%s", m->provider);
    snprintf(row.upstream_model, sizeof(row.upstream_model), "%s", m->model);
    snprintf(row.error, sizeof(row.error), "%s", r->error ? r->error : "");
    snprintf(row.why, sizeof(row.why), "cache: semantic lookup");
    row.cache[0] = '\0';
    row.saved_micros = 0;
    row.final = 0;
    row.attempt = 0;
    row.stream = 0;
    row.status = r->error ? (r->status ? r->status : 502) : 200;
    row.prompt_tokens = r->error ? 0 : r->tokens;
    row.completion_tokens = row.cached_tokens = row.reasoning_tokens = 0;
    row.estimated = r->estimated;
    row.latency_us = r->latency_us;
    row.ttft_us = -1;
    sl_cost_row(x->snap->catalog, m, &row);
    sl_ledger_record(x->w->srv->ledger, &row);
}

static void on_embedded(void *arg, const struct sl_embed_one_result *r)
{
    struct sl_exchange *x = arg;
    struct sl_plan *p = x->plan;
    struct sl_cached *c = p->cached;
    struct sl_cache *cache = x->w->srv->cache;
    const struct sl_model_cfg *m =
        sl_config_find_model(x->snap->cfg, x->snap->cfg->cache.embedding_model);
    c->embed = NULL;
    x->on_gone = NULL;
    sl_exchange_overhead_begin(x);
    if (m)
        record_embedding(x, m, r);
    if (r->error)
        sl_warn("cache: semantic lookup skipped: %s", r->error);
    c->vec = r->v ? sl_arena_alloc(x->arena, (size_t)r->dim * sizeof(float)) : NULL;
    if (c->vec) {
        memcpy(c->vec, r->v, (size_t)r->dim * sizeof(float));
        c->dim = r->dim;
        if (sl_cache_normalise(c->vec, c->dim))
            c->vec = NULL;
    }
    uint8_t key[SL_CACHE_KEY_LEN];
    float score = 0;
    if (c->vec && sl_cache_semantic_find(cache, c->scope, c->vec, c->dim, c->pol.threshold, key,
                                         &score) == 0) {
        struct sl_cache_entry e;
        if (sl_cache_get(cache, key, sl_wall_ms(), 0, &e) == 0) {
            char sim[16];
            snprintf(sim, sizeof(sim), "%.4f", score);
            set_header(x, "x-sluice-cache-similarity", sim);
            int rc = serve(x, p, c, &e, "hit");
            free(e.value);
            if (rc == 0)
                return;
        } else {
            sl_cache_semantic_forget(cache, key); /* its answer expired or was evicted */
        }
    }
    c->go(x, p);
}

static void on_embed_gone(struct sl_exchange *x)
{
    struct sl_cached *c = x->plan->cached;
    sl_embed_one_cancel(c->embed);
    c->embed = NULL;
    sl_exchange_client_left(x);
}

static int start_semantic(struct sl_exchange *x, struct sl_plan *p, struct sl_cached *c,
                          const char *tenant)
{
    const struct sl_cache_cfg *cfg = &x->snap->cfg->cache;
    const char *text = sl_cache_semantic_text(p->req);
    if (!c->pol.semantic || !cfg->embedding_model[0] || !text)
        return 0;
    const struct sl_model_cfg *m = sl_config_find_model(x->snap->cfg, cfg->embedding_model);
    if (!m) {
        sl_warn("cache: embedding_model %s is not a configured model", cfg->embedding_model);
        return 0;
    }
    c->scope = sl_cache_semantic_scope(p->req, x->row.model, tenant);
    c->embed = sl_embed_one_start(x->w->up, m, text, on_embedded, x);
    if (!c->embed)
        return 0;
    x->on_gone = on_embed_gone;
    sl_exchange_overhead_end(x);
    return 1;
}

/* ---- lookup ---- */

static const struct sl_cache_rule *rule_of(struct sl_exchange *x, const struct sl_plan *p)
{
    const struct sl_config *cfg = x->snap->cfg;
    if (p->group)
        return &p->group->cache;
    return p->route.n ? &cfg->models[p->route.c[0].model].cache : NULL;
}

static const char *tenant_of(const struct sl_exchange *x)
{
    return x->snap->cfg->cache.shared == SL_FLAG_YES ? "" : x->key_id;
}

int sl_cached_lookup(struct sl_exchange *x, struct sl_plan *p, sl_plan_go_fn go)
{
    struct sl_cache *cache = x->w->srv->cache;
    struct sl_cache_policy pol;
    if (!cache || p->last.status)
        return 0;
    struct evkeyvalq *in = evhttp_request_get_input_headers(x->req);
    sl_cache_policy_of(&x->snap->cfg->cache, rule_of(x, p), &pol);
    if (!sl_cache_wanted(&pol, p->req, evhttp_find_header(in, "x-sluice-cache"))) {
        set_header(x, "x-sluice-cache", "skip");
        return 0;
    }
    struct sl_cached *c = sl_arena_alloc(x->arena, sizeof(*c));
    if (!c || sl_arena_cleanup(x->arena, on_cached_cleanup, c))
        return 0;
    c->pol = pol;
    c->go = go;
    sl_buf_init(&c->content, SL_MAX_UPSTREAM_BODY);
    sl_buf_init(&c->reasoning, SL_MAX_UPSTREAM_BODY);
    if (sl_cache_key(p->req, x->row.model, tenant_of(x), c->key))
        return 0;
    p->cached = c;
    struct sl_cache_entry e;
    if (sl_cache_get(cache, c->key, sl_wall_ms(), 0, &e) == 0) {
        int rc = serve(x, p, c, &e, "hit");
        free(e.value);
        if (rc == 0)
            return 1;
    }
    set_header(x, "x-sluice-cache", "miss");
    return start_semantic(x, p, c, tenant_of(x));
}

/* ---- storing ---- */

void sl_cached_reply_text(struct sl_plan *p, const char *json, size_t len)
{
    struct sl_cached *c = p->cached;
    if (!c || c->served || c->whole)
        return;
    c->whole = malloc(len + 1); /* freed by the cleanup */
    if (!c->whole)
        return;
    memcpy(c->whole, json, len);
    c->whole[len] = '\0';
    c->whole_len = len;
}

void sl_cached_reply(struct sl_plan *p, const cJSON *completion, const struct sl_usage *u)
{
    struct sl_cached *c = p->cached;
    if (!c || c->served || c->whole)
        return;
    cJSON *copy = cJSON_Duplicate(completion, 1);
    struct sl_buf b = SL_BUF_INIT(4096);
    if (copy && u->present && !cJSON_GetObjectItemCaseSensitive(copy, "usage") &&
        sl_openai_usage_json(&b, u) == 0) {
        cJSON *usage = cJSON_ParseWithLength(b.ptr, b.len);
        if (usage)
            cJSON_AddItemToObject(copy, "usage", usage);
    }
    char *s = copy ? cJSON_PrintUnformatted(copy) : NULL;
    if (s)
        sl_cached_reply_text(p, s, strlen(s));
    cJSON_free(s);
    cJSON_Delete(copy);
    sl_buf_release(&b);
}

/* One tool_calls item of a delta: the call's id and name come once, its arguments in
 * pieces. Returns -1 when it cannot be kept (too many calls, out of memory). */
static int add_call_part(struct sl_cached *c, const cJSON *tc, int pos)
{
    int i = (int)sl_json_int(tc, "index", pos);
    if (i < 0 || i >= MAX_CALLS)
        return -1;
    for (; c->ncalls <= i; c->ncalls++)
        sl_buf_init(&c->calls[c->ncalls].args, SL_MAX_UPSTREAM_BODY);
    struct call *k = &c->calls[i];
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const char *id = sl_json_str(tc, "id", NULL), *name = sl_json_str(fn, "name", NULL);
    const char *args = sl_json_str(fn, "arguments", NULL);
    if (id && !k->id && !(k->id = strdup(id)))
        return -1;
    if (name && !k->name && !(k->name = strdup(name)))
        return -1;
    return args && sl_buf_puts(&k->args, args) ? -1 : 0;
}

/* The assembled calls as OpenAI's message.tool_calls. */
static cJSON *calls_json(const struct sl_cached *c)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < c->ncalls; i++) {
        const struct call *k = &c->calls[i];
        cJSON *o = cJSON_CreateObject(), *fn = NULL;
        if (!o || !cJSON_AddItemToArray(arr, o) ||
            !cJSON_AddStringToObject(o, "id", k->id ? k->id : "") ||
            !cJSON_AddStringToObject(o, "type", "function") ||
            !(fn = cJSON_AddObjectToObject(o, "function")) ||
            !cJSON_AddStringToObject(fn, "name", k->name ? k->name : "") ||
            !cJSON_AddStringToObject(fn, "arguments", k->args.ptr ? k->args.ptr : "")) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

void sl_cached_chunk(struct sl_plan *p, const cJSON *chunk)
{
    struct sl_cached *c = p->cached;
    if (!c || c->served || c->uncacheable)
        return;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");
    const cJSON *choice = cJSON_GetArrayItem(choices, 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    sl_openai_usage(chunk, &c->usage);
    c->chunks++;
    if (cJSON_GetArraySize(choices) > 1) {
        c->uncacheable = 1;
        return;
    }
    const cJSON *tc;
    int pos = 0;
    cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls"))
    {
        if (add_call_part(c, tc, pos++))
            c->uncacheable = 1;
    }
    const char *model = sl_json_str(chunk, "model", NULL);
    if (model && !c->model)
        c->model = strdup(model);
    const char *s = sl_json_str(delta, "content", NULL);
    if (s && sl_buf_puts(&c->content, s))
        c->uncacheable = 1;
    s = sl_json_str(delta, "reasoning_content", NULL);
    if (s && sl_buf_puts(&c->reasoning, s))
        c->uncacheable = 1;
    s = sl_json_str(choice, "finish_reason", NULL);
    if (s)
        snprintf(c->finish, sizeof(c->finish), "%s", s);
}

static int add_calls(cJSON *msg, const struct sl_cached *c)
{
    cJSON *arr = calls_json(c);
    return arr && cJSON_AddItemToObject(msg, "tool_calls", arr);
}

/* A completion assembled from the stream's chunks, as OpenAI JSON (malloc'd). */
static char *assemble(struct sl_exchange *x, struct sl_cached *c)
{
    cJSON *o = cJSON_CreateObject(), *choices, *choice, *msg;
    struct sl_buf u = SL_BUF_INIT(4096);
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "id", x->id) &&
        cJSON_AddStringToObject(o, "object", "chat.completion") &&
        cJSON_AddNumberToObject(o, "created", (double)(sl_wall_ms() / 1000)) &&
        cJSON_AddStringToObject(o, "model", c->model ? c->model : x->row.model) &&
        (choices = cJSON_AddArrayToObject(o, "choices")) && (choice = cJSON_CreateObject()) &&
        cJSON_AddItemToArray(choices, choice) && cJSON_AddNumberToObject(choice, "index", 0) &&
        (msg = cJSON_AddObjectToObject(choice, "message")) &&
        cJSON_AddStringToObject(msg, "role", "assistant") &&
        (c->ncalls && !c->content.len ? cJSON_AddNullToObject(msg, "content") != NULL
                                      : cJSON_AddStringToObject(msg, "content",
                                                                c->content.ptr ? c->content.ptr : "") != NULL) &&
        (!c->ncalls || add_calls(msg, c)) &&
        (!c->reasoning.len || cJSON_AddStringToObject(msg, "reasoning_content", c->reasoning.ptr)) &&
        cJSON_AddStringToObject(choice, "finish_reason", c->finish) &&
        (!c->usage.present || sl_openai_usage_json(&u, &c->usage) == 0)) {
        cJSON *usage = c->usage.present ? cJSON_ParseWithLength(u.ptr, u.len) : NULL;
        if (usage)
            cJSON_AddItemToObject(o, "usage", usage);
        s = cJSON_PrintUnformatted(o);
    }
    sl_buf_release(&u);
    cJSON_Delete(o);
    if (!s)
        return NULL;
    char *copy = strdup(s);
    cJSON_free(s);
    return copy;
}

static void store(struct sl_exchange *x, struct sl_cached *c)
{
    struct sl_cache *cache = x->w->srv->cache;
    char *text = c->whole;
    c->whole = NULL;
    if (!text && c->chunks && c->finish[0] && !c->uncacheable)
        text = assemble(x, c);
    if (!text)
        return;
    struct sl_usage_row row = x->row;
    sl_cost_row(x->snap->catalog, x->model, &row); /* what a hit will have saved */
    int64_t now = sl_wall_ms();
    struct sl_cache_entry e = {
        .value = text, .len = strlen(text), .created_ms = now,
        .expires_ms = now + c->pol.ttl_ms, .cost_micros = row.cost_micros,
    };
    snprintf(e.currency, sizeof(e.currency), "%s", row.currency);
    if (sl_cache_put(cache, c->key, &e) == 0 && c->vec)
        sl_cache_semantic_add(cache, c->scope, c->vec, c->dim, c->key);
    free(text);
}

void sl_cached_finish(struct sl_exchange *x, struct sl_plan *p)
{
    struct sl_cached *c = p->cached;
    if (!c)
        return;
    if (!c->served && !x->client_gone && x->status == 200 && !x->row.error[0] && x->model)
        store(x, c);
}

/* ---- stale on error ---- */

int sl_cached_stale(struct sl_exchange *x, struct sl_plan *p)
{
    struct sl_cached *c = p->cached;
    int status = p->last.status;
    if (!c || c->served || !c->pol.stale_on_error || x->client_gone)
        return 0;
    if (status && status < 500 && status != 429)
        return 0; /* the request itself was refused: a cached answer would hide that */
    struct sl_cache_entry e;
    int r = sl_cache_get(x->w->srv->cache, c->key, sl_wall_ms(),
                         x->snap->cfg->cache.max_stale_ms, &e);
    if (r == 1)
        return 0;
    int rc = serve(x, p, c, &e, r == 0 ? "hit" : "stale");
    free(e.value);
    return rc == 0;
}
