/* POST /v1/messages for Anthropic-format clients. To an Anthropic provider the request
 * passes through (only `model` rewritten, the reply relayed byte for byte, usage read on
 * the side); to any other provider it goes through the translation pipeline. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/hash.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/sse.h"
#include "formats/anthropic_client.h"
#include "formats/format.h"
#include "meter/estimate.h"
#include "server/cached.h"
#include "server/internal.h"
#include "server/plan.h"
#include "server/metrics.h"
#include "upstream/upstream.h"

struct pass {
    struct sl_exchange *x;
    struct sl_plan *plan;
    const struct sl_client_format *cf;
    const struct sl_upstream_format *uf;
    const struct sl_model_cfg *m;
    cJSON *req;                  /* the plan's canonical request */
    struct sl_upstream_call *call;
    struct sl_upstream_meta meta;
    int relaying, saw_stop;
    void *enc;
    void *dec;                   /* a cached request: the stream decoded on the side */
    struct sl_sse_reader sse;
    struct sl_buf body;
    struct sl_usage usage;
    uint64_t hash;               /* of the answer text, for mirrored requests */
    size_t hashed;
};

static void on_pass_cleanup(void *p)
{
    struct pass *s = p;
    if (s->enc)
        s->cf->stream_release(s->enc);
    if (s->dec)
        s->uf->stream_release(s->dec);
    sl_sse_reader_release(&s->sse);
    sl_buf_release(&s->body);
}

static void account(struct pass *s)
{
    sl_plan_answer_hash(s->x, s->plan, s->hash, s->hashed);
    sl_exchange_account(s->x, s->m, &s->usage, cJSON_GetObjectItemCaseSensitive(s->req, "messages"), 0);
}

/* Nothing has reached the client yet: the plan decides what comes next. */
static void fail(struct pass *s, int status, const char *type, const char *msg)
{
    struct sl_error e;
    sl_error_set(&e, status, type, "%s", msg);
    sl_plan_attempt_failed(s->x, s->plan, s, &e, NULL);
}

/* The client's body with the provider's model name, every other byte kept; NULL when
 * a top-level key is written with escapes (the caller translates instead). */
static char *splice_model(struct sl_exchange *x, const char *body, size_t len, const char *model,
                          size_t *out_len)
{
    struct sl_buf quoted = SL_BUF_INIT(SL_MAX_NAME * 6 + 2), b = SL_BUF_INIT(len + 1024);
    char *r = NULL;
    sl_json_quote(&quoted, model, strlen(model));
    struct sl_json_edit edit = {"model", quoted.ptr};
    if (quoted.ptr && sl_json_apply_edits(body, len, &edit, 1, &b) == 0) {
        r = sl_arena_strndup(x->arena, b.ptr, b.len);
        *out_len = b.len;
    }
    sl_buf_release(&quoted);
    sl_buf_release(&b);
    return r;
}

/* Mirrored requests: the answer text of a text_delta event, for sluice compare. */
static void hash_delta(struct pass *s, const struct sl_sse_event *ev)
{
    cJSON *obj = cJSON_ParseWithLength(ev->data, ev->data_len);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(obj, "delta");
    const char *text = sl_json_str(delta, "text", NULL);
    if (text && *text) {
        s->hash = sl_hash64(s->hash, text, strlen(text));
        s->hashed += strlen(text);
    }
    cJSON_Delete(obj);
}

/* Mirrored requests: the answer text of a whole reply, read as the canonical one. */
static void hash_reply(struct pass *s)
{
    struct sl_error e;
    struct sl_usage u = {0};
    cJSON *completion = s->uf->decode_reply(s->body.ptr ? s->body.ptr : "", s->body.len,
                                            s->m->model, &u, &e);
    sl_plan_hash_answer(completion, &s->hash, &s->hashed);
    cJSON_Delete(completion);
}

static int on_side_chunk(void *arg, const cJSON *chunk)
{
    struct pass *s = arg;
    sl_cached_chunk(s->plan, chunk);
    return 0;
}

static int on_event(void *arg, const struct sl_sse_event *ev)
{
    struct pass *s = arg;
    if (ev->type_len == 12 && memcmp(ev->type, "message_stop", 12) == 0)
        s->saw_stop = 1;
    if (!ev->comment)
        s->uf->sniff_usage(ev, NULL, 0, &s->usage);
    if (s->plan->mirrored && ev->type_len == 19 && memcmp(ev->type, "content_block_delta", 19) == 0)
        hash_delta(s, ev);
    if (s->dec) { /* canonical chunks for the cache only: the client got the bytes */
        struct sl_usage u = {0};
        struct sl_error e;
        if (s->uf->stream_event(s->dec, ev, on_side_chunk, s, &u, &e) < 0) {
            s->uf->stream_release(s->dec);
            s->dec = NULL;
        }
    }
    return 0;
}

static void on_up_headers(void *ctx, const struct sl_upstream_meta *meta)
{
    struct pass *s = ctx;
    s->meta = *meta;
    sl_exchange_overhead_begin(s->x);
    sl_plan_first_byte(s->plan, s);
    if (meta->status == 200 && strcasestr(meta->content_type, "event-stream")) {
        s->relaying = 1;
        s->enc = sl_arena_alloc(s->x->arena, s->cf->stream_size ? s->cf->stream_size : 1);
        if (s->enc)
            s->cf->stream_init(s->enc, s->x->id, s->m->model, 0);
        if (s->plan->cached) {
            s->dec = sl_arena_alloc(s->x->arena, s->uf->stream_size ? s->uf->stream_size : 1);
            if (s->dec)
                s->uf->stream_init(s->dec, s->x->id, s->m->model);
        }
    }
}

static void on_up_data(void *ctx, const char *p, size_t n)
{
    struct pass *s = ctx;
    if (s->relaying) {
        if (!s->x->streaming) {
            sl_plan_commit(s->x, s->plan, s); /* the first byte: this attempt wins */
            sl_exchange_stream_start(s->x); /* only now: until here the plan could fall over */
        }
        sl_exchange_first_token(s->x);
        sl_exchange_stream_write(s->x, p, n);
        sl_sse_feed(&s->sse, p, n, on_event, s); /* usage only: the bytes went out as they came */
    } else if (sl_buf_append(&s->body, p, n)) {
        sl_upstream_cancel(s->call);
        s->call = NULL;
        fail(s, 502, "upstream_error", "the upstream reply is over the size limit");
    }
}

static void end_relay(struct pass *s, const char *failure)
{
    if (failure && !s->x->streaming) {
        fail(s, 502, "upstream_error", failure);
        return;
    }
    if (failure && s->enc) {
        struct sl_error e;
        struct sl_buf b = SL_BUF_INIT(64 * 1024);
        sl_error_set(&e, 502, "upstream_error", "%.255s", failure);
        s->cf->stream_error(s->enc, &e, &b);
        sl_exchange_stream_write(s->x, b.ptr, b.len);
        sl_buf_release(&b);
        snprintf(s->x->row.error, sizeof(s->x->row.error), "%.255s", failure);
    }
    account(s);
    sl_exchange_stream_end(s->x);
}

static void on_up_done(void *ctx, enum sl_upstream_result r, const char *detail)
{
    struct pass *s = ctx;
    s->call = NULL;
    sl_exchange_overhead_begin(s->x);
    if (s->relaying) {
        end_relay(s, r != SL_UP_OK   ? "the upstream stream failed before it finished"
                     : !s->saw_stop ? "the upstream closed the stream before it finished"
                                    : NULL);
        return;
    }
    if (r != SL_UP_OK) {
        struct sl_error e;
        sl_exchange_upstream_failure(&e, s->m->provider, r, detail);
        sl_plan_attempt_failed(s->x, s->plan, s, &e, NULL);
        return;
    }
    if (s->meta.status < 200 || s->meta.status >= 300) {
        struct sl_error e;
        char kind[32];
        snprintf(kind, sizeof(kind), "status_%d", s->meta.status);
        sl_metrics_upstream_error(s->m->provider, kind);
        s->uf->decode_error(s->meta.status, s->body.ptr ? s->body.ptr : "", s->body.len, &e);
        if (e.status < 400 || e.status > 599)
            e.status = 502;
        sl_plan_note_limits(s->plan, &s->meta);
        sl_plan_attempt_failed(s->x, s->plan, s, &e, s->meta.retry_after);
        return;
    }
    /* Same format both sides: the provider's reply is the answer, byte for byte. */
    sl_plan_commit(s->x, s->plan, s);
    s->x->status = s->meta.status;
    s->uf->sniff_usage(NULL, s->body.ptr ? s->body.ptr : "", s->body.len, &s->usage);
    if (s->plan->mirrored)
        hash_reply(s);
    account(s);
    if (s->plan->cached) {
        struct sl_error e;
        struct sl_usage u = {0};
        cJSON *completion = s->uf->decode_reply(s->body.ptr ? s->body.ptr : "", s->body.len,
                                                s->m->model, &u, &e);
        if (completion)
            sl_cached_reply(s->plan, completion, &u);
        cJSON_Delete(completion);
    }
    sl_exchange_reply(s->x, s->meta.status, s->meta.content_type[0] ? s->meta.content_type
                                                                     : "application/json",
                      s->body.ptr ? s->body.ptr : "", s->body.len);
}

static void on_client_gone(struct sl_exchange *x)
{
    struct pass *s = x->state;
    sl_upstream_cancel(s->call);
    s->call = NULL;
    account(s);
    sl_exchange_client_left(x);
}

static int pass_headers(struct sl_exchange *x, const struct sl_provider_cfg *p, const char **h)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(x->req);
    const char *version = evhttp_find_header(in, "anthropic-version");
    const char *beta = evhttp_find_header(in, "anthropic-beta");
    int n = 0;
    h[n++] = "Content-Type: application/json";
    h[n++] = sl_arena_sprintf(x->arena, "anthropic-version: %s", version ? version : "2023-06-01");
    if (beta)
        h[n++] = sl_arena_sprintf(x->arena, "anthropic-beta: %s", beta);
    if (p->api_key)
        h[n++] = sl_arena_sprintf(x->arena, "x-api-key: %s", p->api_key);
    return n;
}

/* A hedge lost (or the request ended while it ran): stop it, and say what it used. */
static void on_attempt_stop(void *path, struct sl_usage *spent, int *estimated)
{
    struct pass *s = path;
    sl_upstream_cancel(s->call);
    s->call = NULL;
    if (s->usage.present) {
        *spent = s->usage;
        *estimated = 0;
        return;
    }
    spent->prompt = sl_estimate_messages(cJSON_GetObjectItemCaseSensitive(s->req, "messages"));
    *estimated = 1;
}

void sl_pass_start(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m)
{
    struct pass *s = sl_arena_alloc(x->arena, sizeof(*s));
    size_t up_len = 0;
    if (!s || sl_arena_cleanup(x->arena, on_pass_cleanup, s)) {
        struct sl_error e;
        sl_error_set(&e, 503, "api_error", "out of memory");
        sl_plan_attempt_failed(x, p, NULL, &e, NULL);
        return;
    }
    *s = (struct pass){.x = x, .plan = p, .cf = p->cf, .uf = sl_upstream_format(SL_WIRE_ANTHROPIC),
                       .m = m, .req = p->req, .hash = SL_HASH64_INIT};
    sl_sse_reader_init(&s->sse, SL_MAX_SSE_EVENT);
    sl_buf_init(&s->body, SL_MAX_UPSTREAM_BODY);
    char *up_body = splice_model(x, p->raw, p->raw_len, m->model, &up_len);
    if (!up_body) {
        sl_translate_attempt(x, p, m); /* "model" hidden behind escapes: translate instead */
        return;
    }
    const char *headers[5];
    struct sl_upstream_req ur = {
        .url = sl_arena_sprintf(x->arena, "%s/v1/messages", m->p->base_url),
        .body = up_body, .body_len = up_len,
        .headers = headers, .nheaders = pass_headers(x, m->p, headers),
        .timeouts = sl_plan_timeouts(p, m),
    };
    static const struct sl_upstream_cbs cbs = {on_up_headers, on_up_data, on_up_done};
    s->call = sl_upstream_start(x->w->up, &ur, &cbs, s);
    if (!s->call) {
        fail(s, 500, "api_error", "cannot start the upstream request");
        return;
    }
    sl_plan_attempt_begun(x, p, s, on_attempt_stop, on_client_gone);
    sl_exchange_overhead_end(x);
}

void sl_messages_handle(struct sl_exchange *x)
{
    const struct sl_client_format *cf = sl_client_format("anthropic");
    size_t len;
    const char *body = sl_exchange_body(x, &len);
    struct sl_error e;
    if (!cf) {
        sl_exchange_error(x, 501, "api_error", "this build has no Anthropic client format", NULL, NULL);
        return;
    }
    if (len > x->snap->cfg->server.max_body) {
        sl_error_set(&e, 413, "request_too_large", "the request body is larger than server.max_body");
        sl_exchange_send_error(x, cf, &e);
        return;
    }
    cJSON *req = cf->decode_request(body ? body : "", len, &e);
    if (!req) {
        sl_exchange_send_error(x, cf, &e);
        return;
    }
    snprintf(x->row.model, sizeof(x->row.model), "%s", sl_json_str(req, "model", ""));
    if (!sl_exchange_model_allowed(x, cf, x->row.model)) {
        cJSON_Delete(req);
        return;
    }
    struct sl_plan *p = sl_plan_new(x, cf, req, body, len);
    if (!p) {
        sl_error_set(&e, 503, "api_error", "out of memory");
        sl_exchange_send_error(x, cf, &e);
        return;
    }
    if (sl_plan_resolve(x, p, x->row.model)) {
        sl_error_set(&e, 404, "not_found_error", "model: %.128s", x->row.model);
        sl_exchange_send_error(x, cf, &e);
        return;
    }
    sl_plan_start(x, p);
}

/* POST /v1/messages/count_tokens: estimated here, without a provider call, so it
 * answers the same whichever provider the model is on. */
void sl_count_tokens_handle(struct sl_exchange *x)
{
    const struct sl_client_format *cf = sl_client_format("anthropic");
    size_t len;
    const char *body = sl_exchange_body(x, &len);
    struct sl_error e;
    int64_t tokens = 0;
    if (sl_anthropic_count_tokens(body ? body : "", len, &tokens, &e)) {
        sl_exchange_send_error(x, cf, &e);
        return;
    }
    char reply[64];
    int n = snprintf(reply, sizeof(reply), "{\"input_tokens\":%lld}", (long long)tokens);
    sl_exchange_reply(x, 200, "application/json", reply, (size_t)n);
}
