/* POST /v1/chat/completions for OpenAI-format providers: the fast path. The body
 * is forwarded with only `model` (and stream_options) rewritten in place, and the
 * upstream's SSE events are relayed as they arrive, read only for usage. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/sse.h"
#include "formats/format.h"
#include "formats/openai.h"
#include "meter/estimate.h"
#include "providers/providers.h"
#include "server/cached.h"
#include "server/internal.h"
#include "server/plan.h"
#include "server/metrics.h"
#include "upstream/upstream.h"

struct chat {
    struct sl_exchange *x;
    struct sl_plan *plan;
    cJSON *root;                     /* the parsed client request (the plan's) */
    const struct sl_model_cfg *model;
    int client_stream, client_usage; /* the client streams / asked for the usage chunk */
    struct sl_upstream_call *call;
    struct sl_upstream_meta meta;
    int relaying;                    /* upstream answered 200 with an SSE stream */
    struct sl_sse_reader sse;
    struct sl_buf body;              /* a whole (non-stream or error) upstream reply */
    struct sl_buf out;               /* bytes for the client from one upstream read */
    struct sl_usage usage;
    int64_t est_completion;
    int saw_done, saw_finish, usage_forwarded, broken;
    int saw_error;                   /* an in-band error event was relayed */
    int has_content;                 /* a chunk for the client is out or on its way */
    const char *fail_msg;            /* why the relay stopped (broken) */
    char *chunk_id, *chunk_model;    /* from the first chunk, for a synthesised usage chunk */
    char *usage_json;                /* usage moved off a content chunk, as the provider sent it */
    int64_t chunk_created;
    uint64_t hash;                   /* of the answer text, for mirrored requests */
    size_t hashed;
};

static void on_chat_cleanup(void *p)
{
    struct chat *c = p;
    sl_sse_reader_release(&c->sse);
    sl_buf_release(&c->body);
    sl_buf_release(&c->out);
}

/* ---- request validation and rewrite ---- */

/* The upstream body: the client's bytes with the provider's edits (model name,
 * include_usage, preset quirks) applied in place, so that every other field passes
 * through untouched. Keys written with escapes take the parse-and-print path. */
static char *rewrite(struct chat *c, const char *body, size_t len, size_t *out_len)
{
    struct sl_json_edit edits[8];
    int n = sl_provider_edits(c->model, c->root, c->client_stream, c->x->arena, edits, 8);
    struct sl_buf b = SL_BUF_INIT(len + 4096);
    char *result = NULL;
    if (n < 0)
        return NULL;
    if (sl_json_apply_edits(body, len, edits, n, &b) == 0) {
        result = sl_arena_strndup(c->x->arena, b.ptr, b.len);
        *out_len = b.len;
    } else {
        cJSON *copy = cJSON_Duplicate(c->root, 1);
        char *printed = copy && sl_json_apply_edits_tree(copy, edits, n) == 0
                            ? cJSON_PrintUnformatted(copy) : NULL;
        if (printed) {
            *out_len = strlen(printed);
            result = sl_arena_strndup(c->x->arena, printed, *out_len);
        }
        cJSON_free(printed);
        cJSON_Delete(copy);
    }
    sl_buf_release(&b);
    return result;
}

/* ---- relaying the upstream stream ---- */

static void emit(struct chat *c, const char *prefix, const char *data, size_t len)
{
    sl_buf_puts(&c->out, prefix);
    sl_buf_append(&c->out, data, len);
    sl_buf_append(&c->out, "\n\n", 2);
}

static void emit_error_event(struct chat *c, const char *message, const char *type)
{
    struct sl_buf e = SL_BUF_INIT(64 * 1024);
    sl_openai_error(&e, 502, type, message, NULL, NULL);
    emit(c, "data: ", e.ptr ? e.ptr : "{}", e.len);
    emit(c, "data: ", "[DONE]", 6);
    sl_buf_release(&e);
    c->saw_done = 1;
    if (!c->x->row.error[0])
        snprintf(c->x->row.error, sizeof(c->x->row.error), "%s", message);
}

static void remember_chunk(struct chat *c, const cJSON *obj)
{
    const char *id = sl_json_str(obj, "id", NULL), *model = sl_json_str(obj, "model", NULL);
    if (c->chunk_id || !id)
        return;
    c->chunk_id = sl_arena_strndup(c->x->arena, id, strlen(id));
    c->chunk_model = model ? sl_arena_strndup(c->x->arena, model, strlen(model)) : NULL;
    c->chunk_created = sl_json_int(obj, "created", sl_wall_ms() / 1000);
}

/* Providers that put usage on the finish chunk (DeepSeek, GLM) or inside the choice
 * (Moonshot) never send OpenAI's separate usage chunk: give the client one. */
static void emit_usage_chunk(struct chat *c)
{
    struct sl_buf b = SL_BUF_INIT(64 * 1024);
    const char *model = c->chunk_model ? c->chunk_model : c->model->model;
    sl_buf_puts(&b, "{\"id\":");
    sl_json_quote(&b, c->chunk_id ? c->chunk_id : c->x->id, strlen(c->chunk_id ? c->chunk_id : c->x->id));
    sl_buf_printf(&b, ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                  (long long)c->chunk_created);
    sl_json_quote(&b, model, strlen(model));
    sl_buf_puts(&b, ",\"choices\":[],\"usage\":");
    if (c->usage_json)
        sl_buf_puts(&b, c->usage_json);
    else
        sl_openai_usage_json(&b, &c->usage);
    sl_buf_puts(&b, "}");
    emit(c, "data: ", b.ptr ? b.ptr : "{}", b.len);
    sl_buf_release(&b);
    c->usage_forwarded = 1;
}

/* Takes the usage object off a chunk that also carries choices (DeepSeek and GLM put
 * it on the finish chunk, Moonshot inside the choice), keeping it in OpenAI's shape
 * for the separate usage chunk: the client sees usage once, where OpenAI puts it. */
static void move_usage(struct chat *c, cJSON *obj)
{
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices");
    cJSON *u = cJSON_DetachItemFromObjectCaseSensitive(obj, "usage");
    if (!cJSON_IsObject(u)) {
        cJSON_Delete(u);
        u = cJSON_DetachItemFromObjectCaseSensitive(cJSON_GetArrayItem(choices, 0), "usage");
    }
    cJSON_AddNullToObject(obj, "usage");
    if (!cJSON_IsObject(u)) {
        cJSON_Delete(u);
        return;
    }
    cJSON *details = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details");
    if (!cJSON_IsObject(details))
        details = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    if (details && !cJSON_GetObjectItemCaseSensitive(details, "cached_tokens"))
        cJSON_AddNumberToObject(details, "cached_tokens", (double)c->usage.cached);
    if (!cJSON_GetObjectItemCaseSensitive(u, "total_tokens"))
        cJSON_AddNumberToObject(u, "total_tokens", (double)(c->usage.prompt + c->usage.completion));
    char *printed = cJSON_PrintUnformatted(u);
    if (printed)
        c->usage_json = sl_arena_strndup(c->x->arena, printed, strlen(printed));
    cJSON_free(printed);
    cJSON_Delete(u);
}

static void on_data_event(struct chat *c, const struct sl_sse_event *ev)
{
    cJSON *obj = cJSON_ParseWithLength(ev->data, ev->data_len);
    if (!obj) {
        c->broken = 1;
        c->fail_msg = "the upstream sent a malformed stream event";
        return;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(obj, "error");
    if (err && !cJSON_IsNull(err) && !c->has_content) {
        c->broken = 1; /* nothing sent yet: an error the plan can still act on */
        c->fail_msg = "the upstream reported an error before its first chunk";
        cJSON_Delete(obj);
        return;
    }
    if (err && !cJSON_IsNull(err)) {
        const char *msg = sl_json_str(err, "message", cJSON_IsString(err) ? err->valuestring : NULL);
        struct sl_buf e = SL_BUF_INIT(64 * 1024);
        sl_openai_error(&e, 502, sl_json_str(err, "type", "upstream_error"),
                        msg ? msg : "the upstream reported an error mid-stream", NULL, NULL);
        emit(c, "data: ", e.ptr ? e.ptr : "{}", e.len);
        sl_buf_release(&e);
        snprintf(c->x->row.error, sizeof(c->x->row.error), "%s", msg ? msg : "mid-stream error");
        c->saw_error = 1;
        cJSON_Delete(obj);
        return;
    }
    remember_chunk(c, obj);
    if (c->plan->mirrored)
        sl_plan_hash_answer(obj, &c->hash, &c->hashed);
    sl_cached_chunk(c->plan, obj);
    int had_usage = sl_openai_usage(obj, &c->usage);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices");
    int usage_only = had_usage && cJSON_IsArray(choices) && cJSON_GetArraySize(choices) == 0;
    c->saw_finish |= sl_openai_has_finish(obj);
    int64_t out = sl_openai_estimate_output(obj);
    c->est_completion += out;
    if (out)
        sl_exchange_first_token(c->x);
    c->has_content |= !usage_only || c->client_usage;
    if (had_usage && !usage_only) {
        move_usage(c, obj);
        char *printed = cJSON_PrintUnformatted(obj);
        if (printed)
            emit(c, "data: ", printed, strlen(printed));
        cJSON_free(printed);
    } else if (!usage_only || c->client_usage) {
        c->usage_forwarded |= usage_only; /* else: sluice asked for it, not the client */
        emit(c, "data: ", ev->data, ev->data_len);
    }
    cJSON_Delete(obj);
}

static int on_sse_event(void *arg, const struct sl_sse_event *ev)
{
    struct chat *c = arg;
    if (ev->comment) {
        /* Keep-alives keep the client's connection too, but only once the reply has
         * begun: until then the request can still fall over to another deployment. */
        if (c->has_content)
            emit(c, ": ", ev->data, ev->data_len);
        return 0;
    }
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        if (c->client_usage && c->usage.present && !c->usage_forwarded)
            emit_usage_chunk(c);
        c->saw_done = 1;
        emit(c, "data: ", "[DONE]", 6);
        return 0;
    }
    if (c->saw_done)
        return 0;
    sl_plan_first_byte(c->plan, c); /* a stream's first event, keep-alives aside */
    on_data_event(c, ev);
    return c->broken;
}

/* ---- upstream callbacks ---- */

static void end_stream(struct chat *c, int status, const char *failure);
static void reply_failure(struct chat *c, enum sl_upstream_result r, const char *detail);

static void on_up_headers(void *ctx, const struct sl_upstream_meta *meta)
{
    struct chat *c = ctx;
    c->meta = *meta;
    sl_exchange_overhead_begin(c->x);
    if (meta->status == 200 && c->client_stream && strcasestr(meta->content_type, "event-stream")) {
        c->relaying = 1; /* the client's reply starts with the first chunk (flush_out) */
    } else {
        sl_plan_first_byte(c->plan, c); /* a whole reply, or an error: it is answering */
    }
}

static void flush_out(struct chat *c)
{
    if (!c->out.len)
        return;
    if (!c->x->streaming) {
        sl_plan_commit(c->x, c->plan, c); /* the first byte: this attempt wins */
        sl_exchange_stream_start(c->x);
    }
    sl_exchange_stream_write(c->x, c->out.ptr, c->out.len);
    sl_buf_reset(&c->out);
}

static void on_up_data(void *ctx, const char *p, size_t n)
{
    struct chat *c = ctx;
    if (!c->relaying) {
        if (sl_buf_append(&c->body, p, n)) {
            sl_upstream_cancel(c->call);
            c->call = NULL;
            reply_failure(c, SL_UP_TOO_BIG, "the reply is larger than the upstream body limit");
        }
        return;
    }
    int rc = sl_sse_feed(&c->sse, p, n, on_sse_event, c);
    if (rc == SL_SSE_TOO_BIG) {
        c->broken = 1;
        c->fail_msg = "the upstream sent a stream event over the size limit";
    }
    if (c->broken) {
        sl_upstream_cancel(c->call);
        c->call = NULL;
        end_stream(c, 502, c->fail_msg);
        return;
    }
    flush_out(c);
}

static void fill_row(struct chat *c)
{
    sl_plan_answer_hash(c->x, c->plan, c->hash, c->hashed);
    sl_exchange_account(c->x, c->model, &c->usage,
                        cJSON_GetObjectItemCaseSensitive(c->root, "messages"), c->est_completion);
}

/* Ends the relay. A failure before anything reached the client goes back to the plan
 * (another deployment, or an error with a status); after that the stream ends with an
 * error event. */
static void end_stream(struct chat *c, int status, const char *failure)
{
    if (failure && !c->x->streaming && !c->has_content) {
        struct sl_error e;
        sl_error_set(&e, status, "upstream_error", "upstream %s: %s", c->model->provider, failure);
        sl_plan_attempt_failed(c->x, c->plan, c, &e, NULL);
        return;
    }
    if (failure && !c->saw_done && !c->saw_error) /* one error event per stream */
        emit_error_event(c, failure, "upstream_error");
    else if (!c->saw_done) {
        if (c->client_usage && c->usage.present && !c->usage_forwarded)
            emit_usage_chunk(c);
        emit(c, "data: ", "[DONE]", 6);
    }
    flush_out(c);
    fill_row(c);
    sl_exchange_stream_end(c->x);
}

static void reply_failure(struct chat *c, enum sl_upstream_result r, const char *detail)
{
    struct sl_error e;
    sl_exchange_upstream_failure(&e, c->model->provider, r, detail);
    sl_plan_attempt_failed(c->x, c->plan, c, &e, NULL);
}

/* An upstream HTTP error: the provider's status and message. */
static void reply_upstream_error(struct chat *c)
{
    struct sl_error e;
    char kind[32];
    snprintf(kind, sizeof(kind), "status_%d", c->meta.status);
    sl_metrics_upstream_error(c->model->provider, kind);
    sl_openai_upstream.decode_error(c->meta.status, c->body.ptr ? c->body.ptr : "", c->body.len, &e);
    if (e.status < 400 || e.status > 599)
        e.status = 502;
    sl_plan_note_limits(c->plan, &c->meta);
    sl_plan_attempt_failed(c->x, c->plan, c, &e, c->meta.retry_after);
}

/* The usage of a whole reply, parsing only its top-level "usage" value: the rest
 * (the answer itself) is passed on without being read. 0 when it has none there. */
static int reply_usage(const char *p, size_t n, struct sl_usage *u)
{
    struct sl_json_member m[SL_MAX_TOP_KEYS];
    int count = sl_json_members(p, n, m, SL_MAX_TOP_KEYS);
    for (int i = 0; i < count; i++) {
        if (m[i].key.len != 5 || memcmp(m[i].key.ptr, "usage", 5) != 0)
            continue;
        cJSON *usage = cJSON_ParseWithLength(m[i].value.ptr, m[i].value.len);
        int found = sl_openai_usage_object(usage, u);
        cJSON_Delete(usage);
        return found;
    }
    return 0;
}

static void reply_whole(struct chat *c)
{
    const char *p = c->body.ptr ? c->body.ptr : "";
    size_t n = c->body.len;
    while (n && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) {
        p++; /* DeepSeek sends blank lines while a non-stream request waits */
        n--;
    }
    if (c->plan->group && c->plan->group->strategy == SL_STRATEGY_TIERS) {
        cJSON *obj = cJSON_ParseWithLength(p, n);
        int escalate = obj && sl_plan_escalates(c->plan, obj);
        if (escalate)
            sl_openai_usage(obj, &c->usage);
        cJSON_Delete(obj);
        if (escalate) {
            sl_plan_commit(c->x, c->plan, c);
            sl_plan_escalate(c->x, c->plan, &c->usage);
            return;
        }
    }
    if (c->plan->mirrored) {
        cJSON *obj = cJSON_ParseWithLength(p, n);
        sl_plan_hash_answer(obj, &c->hash, &c->hashed);
        cJSON_Delete(obj);
    }
    if (!reply_usage(p, n, &c->usage)) {
        /* No usage where OpenAI puts it (Moonshot's is in the choice), or no object at
         * all: the whole parse says which, and gives the estimate. */
        cJSON *obj = cJSON_ParseWithLength(p, n);
        if (!obj) {
            reply_failure(c, SL_UP_BROKEN, "the reply is not valid JSON");
            return;
        }
        sl_openai_usage(obj, &c->usage);
        c->est_completion = sl_openai_estimate_output(obj);
        cJSON_Delete(obj);
    }
    sl_plan_commit(c->x, c->plan, c);
    c->x->status = 200;
    fill_row(c);
    sl_cached_reply_text(c->plan, p, n);
    sl_exchange_reply(c->x, 200, "application/json", p, n);
}

static void on_up_done(void *ctx, enum sl_upstream_result r, const char *detail)
{
    struct chat *c = ctx;
    c->call = NULL;
    sl_exchange_overhead_begin(c->x);
    if (c->relaying) {
        if (r != SL_UP_OK)
            sl_metrics_upstream_error(c->model->provider, sl_upstream_result_name(r));
        const char *failure = r != SL_UP_OK ? sl_upstream_result_name(r)
                              : (!c->saw_done && !c->saw_finish)
                                  ? "the upstream closed the stream before it finished"
                                  : NULL;
        int timeout = r == SL_UP_TIMEOUT_IDLE || r == SL_UP_TIMEOUT_TOTAL ||
                      r == SL_UP_TIMEOUT_FIRST_BYTE || r == SL_UP_TIMEOUT_CONNECT;
        end_stream(c, timeout ? 504 : 502, failure);
    } else if (r != SL_UP_OK) {
        reply_failure(c, r, detail);
    } else if (c->meta.status >= 200 && c->meta.status < 300) {
        reply_whole(c);
    } else {
        reply_upstream_error(c);
    }
}

static void on_client_gone(struct sl_exchange *x)
{
    struct chat *c = x->state;
    sl_upstream_cancel(c->call);
    c->call = NULL;
    fill_row(c);
    sl_exchange_client_left(x);
}

/* A hedge lost (or the request ended while it ran): stop it, and say what it used. */
static void on_attempt_stop(void *path, struct sl_usage *spent, int *estimated)
{
    struct chat *c = path;
    sl_upstream_cancel(c->call);
    c->call = NULL;
    if (c->usage.present) {
        *spent = c->usage;
        *estimated = 0;
        return;
    }
    spent->prompt = sl_estimate_messages(cJSON_GetObjectItemCaseSensitive(c->root, "messages"));
    spent->completion = c->est_completion;
    *estimated = 1;
}

/* ---- the path ---- */

static int start_upstream(struct chat *c, const char *body, size_t len)
{
    const struct sl_provider_cfg *p = c->model->p;
    struct sl_exchange *x = c->x;
    char *auth = p->api_key ? sl_arena_sprintf(x->arena, "Authorization: Bearer %s", p->api_key) : NULL;
    const char *headers[3];
    int nh = 0;
    headers[nh++] = "Content-Type: application/json";
    headers[nh++] = c->client_stream ? "Accept: text/event-stream" : "Accept: application/json";
    if (auth)
        headers[nh++] = auth;
    struct sl_upstream_req req = {
        .url = sl_arena_sprintf(x->arena, "%s/chat/completions", p->base_url),
        .body = body,
        .body_len = len,
        .headers = headers,
        .nheaders = nh,
        .timeouts = sl_plan_timeouts(c->plan, c->model),
    };
    static const struct sl_upstream_cbs cbs = {on_up_headers, on_up_data, on_up_done};
    c->call = sl_upstream_start(x->w->up, &req, &cbs, c);
    return c->call ? 0 : -1;
}

void sl_fast_start(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m)
{
    struct chat *c = sl_arena_alloc(x->arena, sizeof(*c));
    struct sl_error e;
    size_t up_len = 0;
    if (!c || sl_arena_cleanup(x->arena, on_chat_cleanup, c)) {
        sl_error_set(&e, 503, "api_error", "out of memory");
        sl_plan_attempt_failed(x, p, NULL, &e, NULL);
        return;
    }
    c->x = x;
    c->plan = p;
    c->root = p->req;
    c->model = m;
    c->hash = SL_HASH64_INIT;
    c->client_stream = p->stream;
    c->client_usage = p->stream &&
                      sl_json_bool(cJSON_GetObjectItemCaseSensitive(p->req, "stream_options"),
                                   "include_usage", 0);
    sl_sse_reader_init(&c->sse, SL_MAX_SSE_EVENT);
    sl_buf_init(&c->body, SL_MAX_UPSTREAM_BODY);
    sl_buf_init(&c->out, SL_MAX_SSE_EVENT * 2);
    char *up_body = rewrite(c, p->raw, p->raw_len, &up_len);
    if (!up_body || start_upstream(c, up_body, up_len)) {
        sl_error_set(&e, 500, "api_error", "cannot start the upstream request");
        sl_plan_attempt_failed(x, p, c, &e, NULL);
        return;
    }
    sl_plan_attempt_begun(x, p, c, on_attempt_stop, on_client_gone);
    sl_exchange_overhead_end(x);
}

/* ---- the handler ---- */

void sl_chat_handle(struct sl_exchange *x)
{
    size_t len;
    const char *body = sl_exchange_body(x, &len);
    struct sl_error e;
    if (len > x->snap->cfg->server.max_body) {
        sl_exchange_error(x, 413, "invalid_request_error",
                          "the request body is larger than server.max_body", NULL,
                          "request_too_large");
        return;
    }
    body = body ? body : "";
    cJSON *req = sl_openai_client.decode_request(body, len, &e);
    if (!req) {
        sl_exchange_send_error(x, &sl_openai_client, &e);
        return;
    }
    snprintf(x->row.model, sizeof(x->row.model), "%s", sl_json_str(req, "model", ""));
    if (strncmp(x->row.model, "kb:", 3) == 0) {
        sl_kb_model_chat(x, req, x->row.model + 3);
        return;
    }
    if (!sl_exchange_model_allowed(x, &sl_openai_client, x->row.model)) {
        cJSON_Delete(req);
        return;
    }
    struct sl_plan *p = sl_plan_new(x, &sl_openai_client, req, body, len);
    if (!p) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return;
    }
    if (sl_plan_resolve(x, p, x->row.model)) {
        char msg[SL_MAX_NAME + 96];
        snprintf(msg, sizeof(msg), "The model '%s' does not exist or is not served by this gateway",
                 x->row.model);
        sl_exchange_error(x, 404, "invalid_request_error", msg, "model", "model_not_found");
        return;
    }
    sl_plan_start(x, p);
}
