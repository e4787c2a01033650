/* POST /v1/embeddings: routed by model like chat, to an OpenAI-format, DashScope-native
 * or Gemini provider. A batch over the provider's limit is split into parts sent a few
 * at a time and reassembled in order; one part failing fails the whole request. */
#include <stdio.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/json.h"
#include "core/limits.h"
#include "formats/embeddings.h"
#include "meter/estimate.h"
#include "server/internal.h"
#include "server/metrics.h"
#include "upstream/upstream.h"

struct emb;

/* One upstream request: inputs [off, off+cnt) of the client's batch. */
struct part {
    struct emb *e;
    int off, cnt;
    struct sl_encoded enc;
    struct sl_upstream_call *call;
    struct sl_upstream_meta meta;
    struct sl_buf body;
};

struct emb {
    struct sl_exchange *x;
    cJSON *root;
    struct sl_embed_req req;
    const struct sl_model_cfg *model;
    enum sl_embed_wire wire;
    int limit, nparts, started, finished;
    struct part *parts;
    struct sl_embed_vec *vecs;  /* one per input, filled as parts arrive */
    size_t values_left;         /* of SL_EMBED_MAX_VALUES */
    int64_t tokens;
    int estimated;              /* a part's provider reported no usage */
};

static void cancel_all(struct emb *e)
{
    for (int i = 0; i < e->started; i++) {
        sl_upstream_cancel(e->parts[i].call);
        e->parts[i].call = NULL;
    }
}

static void on_emb_cleanup(void *p)
{
    struct emb *e = p;
    cancel_all(e); /* no callback may outlive the exchange */
    for (int i = 0; i < e->nparts && e->parts; i++)
        sl_buf_release(&e->parts[i].body);
    cJSON_Delete(e->root);
}

/* ---- the ledger row and failures ---- */

static void fill_row(struct emb *e)
{
    struct sl_usage_row *row = &e->x->row;
    e->x->model = e->model;
    snprintf(row->provider, sizeof(row->provider), "%s", e->model->provider);
    snprintf(row->upstream_model, sizeof(row->upstream_model), "%s", e->model->model);
    if (e->x->status < 400) {
        row->prompt_tokens = e->tokens;
        row->estimated = e->estimated;
    }
}

static void fail(struct emb *e, int status, const char *type, const char *msg, const char *code)
{
    cancel_all(e);
    e->x->status = status;
    fill_row(e);
    sl_exchange_error(e->x, status, type, msg, NULL, code);
}

static void fail_transport(struct emb *e, enum sl_upstream_result r, const char *detail)
{
    struct sl_error err;
    sl_exchange_upstream_failure(&err, e->model->provider, r, detail);
    fail(e, err.status, err.type, err.message, err.code);
}

/* A provider's HTTP error: its status and message, in OpenAI's shape. */
static void fail_upstream(struct emb *e, struct part *p)
{
    struct sl_error err;
    char kind[32];
    int status = p->meta.status >= 400 && p->meta.status <= 599 ? p->meta.status : 502;
    sl_embed_parse_error(e->wire, status, p->body.ptr ? p->body.ptr : "", p->body.len, &err);
    if (!err.message[0])
        snprintf(err.message, sizeof(err.message), "upstream %s answered HTTP %d: %.200s",
                 e->model->provider, p->meta.status, p->body.ptr ? p->body.ptr : "");
    if (p->meta.retry_after[0] && !e->x->client_gone)
        evhttp_add_header(evhttp_request_get_output_headers(e->x->req), "Retry-After",
                          p->meta.retry_after);
    snprintf(kind, sizeof(kind), "status_%d", p->meta.status);
    sl_metrics_upstream_error(e->model->provider, kind);
    fail(e, status, err.type, err.message, err.code[0] ? err.code : NULL);
}

/* ---- parts ---- */

/* Tokens of inputs the provider did not count for us: exact for token arrays. */
static int64_t estimate_part(const struct emb *e, const struct part *p)
{
    int64_t n = 0;
    const cJSON *it = sl_embed_input(&e->req, p->off);
    for (int i = 0; it && i < p->cnt; i++, it = it->next)
        n += cJSON_IsString(it) ? sl_estimate_text(it->valuestring, strlen(it->valuestring))
                                : cJSON_GetArraySize(it);
    return n;
}

static void count_usage(struct emb *e, const struct part *p, const struct sl_embed_parsed *u)
{
    if (u->usage_present) {
        e->tokens += u->tokens;
        return;
    }
    e->tokens += estimate_part(e, p);
    e->estimated = 1;
}

static void reply_whole(struct emb *e)
{
    struct sl_buf out = SL_BUF_INIT(SL_EMBED_MAX_REPLY);
    if (sl_embed_reply(e->vecs, e->req.ninputs, e->model->model, e->tokens, e->req.base64, &out)) {
        sl_buf_release(&out);
        fail(e, 502, "upstream_error", "the embeddings reply is larger than sluice can build", NULL);
        return;
    }
    e->x->status = 200;
    fill_row(e);
    sl_exchange_reply(e->x, 200, "application/json", out.ptr, out.len);
    sl_buf_release(&out);
}

/* One request to an OpenAI-format provider: its reply is the client's, byte for byte. */
static void reply_passthrough(struct emb *e, struct part *p)
{
    struct sl_embed_parsed u;
    if (sl_embed_openai_usage(p->body.ptr ? p->body.ptr : "", p->body.len, &u)) {
        fail(e, 502, "upstream_error", "the upstream embeddings reply is not a JSON object", NULL);
        return;
    }
    count_usage(e, p, &u);
    e->x->status = 200;
    fill_row(e);
    sl_exchange_reply(e->x, 200, "application/json", p->body.ptr, p->body.len);
}

static int start_parts(struct emb *e);

static void part_ok(struct emb *e, struct part *p)
{
    struct sl_embed_parsed u;
    struct sl_error err;
    if (e->nparts == 1 && e->wire == SL_EMBED_OPENAI) {
        reply_passthrough(e, p);
        return;
    }
    if (sl_embed_parse_reply(e->wire, p->body.ptr ? p->body.ptr : "", p->body.len, p->cnt,
                             e->values_left, e->x->arena, e->vecs + p->off, &u, &err)) {
        fail(e, err.status, err.type, err.message, NULL);
        return;
    }
    e->values_left -= u.values;
    count_usage(e, p, &u);
    sl_buf_release(&p->body); /* the vectors are kept; the text is not needed any more */
    if (++e->finished == e->nparts)
        reply_whole(e);
    else if (start_parts(e))
        fail(e, 500, "api_error", "cannot start the upstream request", NULL);
    else
        sl_exchange_overhead_end(e->x);
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
        sl_exchange_overhead_begin(p->e->x);
        fail_transport(p->e, SL_UP_TOO_BIG, "the reply is larger than the upstream body limit");
    }
}

static void on_up_done(void *ctx, enum sl_upstream_result r, const char *detail)
{
    struct part *p = ctx;
    struct emb *e = p->e;
    p->call = NULL;
    sl_exchange_overhead_begin(e->x);
    if (r != SL_UP_OK)
        fail_transport(e, r, detail);
    else if (p->meta.status < 200 || p->meta.status > 299)
        fail_upstream(e, p);
    else
        part_ok(e, p);
}

static int start_part(struct emb *e, struct part *p)
{
    static const struct sl_upstream_cbs cbs = {on_up_headers, on_up_data, on_up_done};
    if (sl_embed_encode(e->wire, &e->req, e->model, p->off, p->cnt, e->x->arena, &p->enc))
        return -1;
    struct sl_upstream_req req = {
        .url = p->enc.url,
        .body = p->enc.body,
        .body_len = p->enc.len,
        .headers = p->enc.headers,
        .nheaders = p->enc.nheaders,
        .timeouts = e->model->p->timeouts,
    };
    p->call = sl_upstream_start(e->x->w->up, &req, &cbs, p);
    return p->call ? 0 : -1;
}

/* Keeps up to SL_EMBED_MAX_INFLIGHT parts in flight: a large batch neither waits
 * for one request at a time nor floods the provider's rate limit. */
static int start_parts(struct emb *e)
{
    while (e->started < e->nparts && e->started - e->finished < SL_EMBED_MAX_INFLIGHT) {
        struct part *p = &e->parts[e->started];
        p->e = e;
        sl_embed_part(e->req.ninputs, e->limit, e->started, &p->off, &p->cnt);
        sl_buf_init(&p->body, SL_MAX_UPSTREAM_BODY);
        e->started++;
        if (start_part(e, p))
            return -1;
    }
    return 0;
}

static void on_client_gone(struct sl_exchange *x)
{
    struct emb *e = x->state;
    cancel_all(e);
    x->status = 499; /* nginx's "client closed request" */
    snprintf(x->row.error, sizeof(x->row.error), "client disconnected");
    fill_row(e);
    sl_exchange_abandon(x);
}

/* ---- the handler ---- */

static int bad(struct sl_exchange *x, const char *param, const char *msg)
{
    sl_exchange_error(x, 400, "invalid_request_error", msg, param, NULL);
    return -1;
}

static int parse_body(struct emb *e, const char *body, size_t len)
{
    struct sl_exchange *x = e->x;
    struct sl_error err;
    if (sl_exchange_read_request(x, body, len, &e->root))
        return -1;
    if (sl_embed_request_read(e->root, body, len, &e->req, &err)) {
        sl_exchange_error(x, err.status, err.type, err.message, err.param, NULL);
        return -1;
    }
    return 0;
}

/* The model, and whether its provider can embed this input. */
static int route(struct emb *e)
{
    struct sl_exchange *x = e->x;
    char msg[SL_MAX_NAME + 128];
    if (!sl_exchange_model_allowed(x, &sl_openai_client, x->row.model))
        return -1;
    e->model = sl_config_find_model(x->snap->cfg, x->row.model);
    if (!e->model) {
        snprintf(msg, sizeof(msg), "The model '%s' does not exist or is not served by this gateway",
                 x->row.model);
        sl_exchange_error(x, 404, "invalid_request_error", msg, "model", "model_not_found");
        return -1;
    }
    e->wire = sl_embed_wire_of(e->model->p);
    if (e->wire == SL_EMBED_AUTO) {
        snprintf(msg, sizeof(msg), "The model '%s' is served by a provider without an embeddings API",
                 x->row.model);
        return bad(x, "model", msg);
    }
    if (e->req.tokens && e->wire != SL_EMBED_OPENAI)
        return bad(x, "input", "token arrays are only accepted for OpenAI-format providers; "
                               "send the text instead");
    return 0;
}

/* Budgets and rate limits: the whole batch's estimated tokens, nothing written back. */
static int admit(struct emb *e)
{
    struct part all = {.e = e, .off = 0, .cnt = e->req.ninputs};
    const struct sl_model_cfg *cands[1] = {e->model};
    struct sl_admit_req a = {.scope_kind = "model", .scope_name = e->model->name,
                             .limits = &e->model->limits, .prompt_tokens = estimate_part(e, &all),
                             .cands = cands, .ncands = 1};
    return sl_exchange_admit(e->x, &sl_openai_client, &a);
}

static int plan(struct emb *e)
{
    struct sl_arena *a = e->x->arena;
    e->limit = sl_embed_batch_limit(e->wire, e->model);
    e->nparts = sl_embed_nparts(e->req.ninputs, e->limit);
    e->parts = sl_arena_alloc(a, (size_t)e->nparts * sizeof(*e->parts));
    e->vecs = sl_arena_alloc(a, (size_t)e->req.ninputs * sizeof(*e->vecs));
    e->values_left = SL_EMBED_MAX_VALUES;
    return e->parts && e->vecs ? 0 : -1;
}

void sl_embeddings_handle(struct sl_exchange *x)
{
    struct emb *e = sl_arena_alloc(x->arena, sizeof(*e));
    size_t len;
    const char *body = sl_exchange_body(x, &len);
    if (!e || sl_arena_cleanup(x->arena, on_emb_cleanup, e)) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return;
    }
    e->x = x;
    x->state = e;
    if (len > x->snap->cfg->server.max_body) {
        sl_exchange_error(x, 413, "invalid_request_error",
                          "the request body is larger than server.max_body", NULL,
                          "request_too_large");
        return;
    }
    if (parse_body(e, body ? body : "", len) || route(e) || admit(e))
        return;
    if (plan(e) || start_parts(e)) {
        fail(e, 500, "api_error", "cannot start the upstream request", NULL);
        return;
    }
    x->on_gone = on_client_gone;
    sl_exchange_overhead_end(x);
}
