/* The translation pipeline: a canonical request is encoded for the provider's format,
 * and its reply or stream decoded back to canonical chunks and encoded for the
 * client's format, chunk by chunk as they arrive. Used whenever client and provider
 * speak different formats. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/hash.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/sse.h"
#include "formats/format.h"
#include "formats/openai.h"
#include "meter/estimate.h"
#include "server/cached.h"
#include "server/internal.h"
#include "server/plan.h"
#include "server/metrics.h"
#include "upstream/upstream.h"

struct tx {
    struct sl_exchange *x;
    struct sl_plan *plan;
    const struct sl_client_format *cf;
    const struct sl_upstream_format *uf;
    const struct sl_model_cfg *m;
    cJSON *req;                 /* the plan's canonical request */
    int stream;
    struct sl_upstream_call *call;
    struct sl_upstream_meta meta;
    int relaying, ended;
    int stop;                 /* the decoder ended the stream: 1 complete, -1 failed */
    struct sl_error stop_err;
    struct sl_sse_reader sse;
    void *dec, *enc;
    struct sl_buf body, out;
    struct sl_usage usage;
    int64_t est_completion;
    uint64_t hash;              /* of the answer text, for mirrored requests */
    size_t hashed;
};

static void on_tx_cleanup(void *p)
{
    struct tx *t = p;
    if (t->dec)
        t->uf->stream_release(t->dec);
    if (t->enc)
        t->cf->stream_release(t->enc);
    sl_sse_reader_release(&t->sse);
    sl_buf_release(&t->body);
    sl_buf_release(&t->out);
}

static void account(struct tx *t)
{
    sl_plan_answer_hash(t->x, t->plan, t->hash, t->hashed);
    sl_exchange_account(t->x, t->m, &t->usage, cJSON_GetObjectItemCaseSensitive(t->req, "messages"),
                        t->est_completion);
}

/* Nothing has reached the client yet: the plan decides what comes next. */
static void reply_error(struct tx *t, const struct sl_error *e, const char *retry_after)
{
    sl_plan_attempt_failed(t->x, t->plan, t, e, retry_after);
}

/* The client's reply starts with its first bytes: until then the plan can still move
 * the request to another deployment. */
static void flush_out(struct tx *t)
{
    if (!t->out.len)
        return;
    if (!t->x->streaming) {
        sl_plan_commit(t->x, t->plan, t); /* the first byte: this attempt wins */
        sl_exchange_stream_start(t->x);
    }
    sl_exchange_stream_write(t->x, t->out.ptr, t->out.len);
    sl_buf_reset(&t->out);
}

/* Ends a started stream: complete, or with an in-band error in the client's format. */
static void end_stream(struct tx *t, const struct sl_error *failure)
{
    if (t->ended)
        return;
    t->ended = 1;
    if (failure && !t->x->streaming && !t->out.len) {
        sl_upstream_cancel(t->call);
        t->call = NULL;
        sl_plan_attempt_failed(t->x, t->plan, t, failure, NULL);
        return;
    }
    if (failure) {
        t->cf->stream_error(t->enc, failure, &t->out);
        snprintf(t->x->row.error, sizeof(t->x->row.error), "%.255s", failure->message);
    } else {
        t->cf->stream_end(t->enc, &t->usage, &t->out);
    }
    flush_out(t);
    sl_upstream_cancel(t->call);
    t->call = NULL;
    account(t);
    sl_exchange_stream_end(t->x);
}

static int on_chunk(void *arg, const cJSON *chunk)
{
    struct tx *t = arg;
    int64_t n = sl_openai_estimate_output(chunk);
    t->est_completion += n;
    if (n)
        sl_exchange_first_token(t->x);
    if (t->plan->mirrored)
        sl_plan_hash_answer(chunk, &t->hash, &t->hashed);
    sl_cached_chunk(t->plan, chunk);
    return t->cf->stream_chunk(t->enc, chunk, &t->out);
}

/* Only records how the stream ended: the exchange (and t) may not be freed while
 * the SSE reader is still on the stack. */
static int on_event(void *arg, const struct sl_sse_event *ev)
{
    struct tx *t = arg;
    if (!ev->comment)
        sl_plan_first_byte(t->plan, t); /* a stream's first event, keep-alives aside */
    t->stop = t->uf->stream_event(t->dec, ev, on_chunk, t, &t->usage, &t->stop_err);
    return t->stop != 0;
}

static void on_up_headers(void *ctx, const struct sl_upstream_meta *meta)
{
    struct tx *t = ctx;
    t->meta = *meta;
    sl_exchange_overhead_begin(t->x);
    if (!(meta->status == 200 && t->stream && strcasestr(meta->content_type, "event-stream")))
        sl_plan_first_byte(t->plan, t); /* a whole reply, or an error: it is answering */
    if (meta->status == 200 && t->stream && strcasestr(meta->content_type, "event-stream")) {
        t->relaying = 1;
        t->dec = sl_arena_alloc(t->x->arena, t->uf->stream_size ? t->uf->stream_size : 1);
        t->enc = sl_arena_alloc(t->x->arena, t->cf->stream_size ? t->cf->stream_size : 1);
        if (!t->dec || !t->enc)
            return; /* on_up_data notices and fails the stream */
        t->uf->stream_init(t->dec, t->x->id, t->m->model);
        t->cf->stream_init(t->enc, t->x->id, t->m->model,
                           sl_json_bool(cJSON_GetObjectItemCaseSensitive(t->req, "stream_options"),
                                        "include_usage", 0));
    }
}

static void on_up_data(void *ctx, const char *p, size_t n)
{
    struct tx *t = ctx;
    struct sl_error e;
    if (!t->relaying) {
        if (sl_buf_append(&t->body, p, n)) {
            sl_upstream_cancel(t->call);
            t->call = NULL;
            sl_error_set(&e, 502, "upstream_error", "the upstream reply is over the size limit");
            reply_error(t, &e, NULL);
        }
        return;
    }
    if (t->ended)
        return;
    if (!t->dec || !t->enc) {
        sl_error_set(&e, 500, "api_error", "out of memory");
        end_stream(t, &e);
        return;
    }
    if (sl_sse_feed(&t->sse, p, n, on_event, t) == SL_SSE_TOO_BIG) {
        sl_error_set(&e, 502, "upstream_error", "the upstream sent a stream event over the size limit");
        end_stream(t, &e);
    } else if (t->stop) {
        end_stream(t, t->stop < 0 ? &t->stop_err : NULL);
    } else {
        flush_out(t);
    }
}

static void reply_whole(struct tx *t)
{
    struct sl_error e;
    cJSON *completion = t->uf->decode_reply(t->body.ptr ? t->body.ptr : "", t->body.len,
                                            t->m->model, &t->usage, &e);
    if (!completion) {
        reply_error(t, &e, NULL);
        return;
    }
    if (sl_plan_escalates(t->plan, completion)) {
        cJSON_Delete(completion);
        sl_plan_commit(t->x, t->plan, t);
        sl_plan_escalate(t->x, t->plan, &t->usage);
        return;
    }
    struct sl_buf b = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY * 2);
    t->est_completion = sl_openai_estimate_output(completion);
    if (t->plan->mirrored)
        sl_plan_hash_answer(completion, &t->hash, &t->hashed);
    sl_cached_reply(t->plan, completion, &t->usage);
    int rc = t->cf->encode_reply(completion, &t->usage, &b);
    cJSON_Delete(completion);
    if (rc) {
        sl_buf_release(&b);
        sl_error_set(&e, 500, "api_error", "cannot encode the reply");
        reply_error(t, &e, NULL);
        return;
    }
    sl_plan_commit(t->x, t->plan, t);
    t->x->status = 200;
    account(t);
    sl_exchange_reply(t->x, 200, "application/json", b.ptr, b.len);
    sl_buf_release(&b);
}

static void on_up_done(void *ctx, enum sl_upstream_result r, const char *detail)
{
    struct tx *t = ctx;
    struct sl_error e;
    t->call = NULL;
    sl_exchange_overhead_begin(t->x);
    if (r != SL_UP_OK) {
        sl_exchange_upstream_failure(&e, t->m->provider, r, detail);
        if (t->relaying)
            end_stream(t, &e);
        else
            reply_error(t, &e, NULL);
    } else if (t->relaying) {
        if (!t->ended && t->uf->stream_end(t->dec, on_chunk, t, &t->usage)) {
            end_stream(t, NULL);
        } else if (!t->ended) {
            sl_error_set(&e, 502, "upstream_error", "the upstream closed the stream before it finished");
            end_stream(t, &e);
        }
    } else if (t->meta.status >= 200 && t->meta.status < 300) {
        reply_whole(t);
    } else {
        char kind[32];
        snprintf(kind, sizeof(kind), "status_%d", t->meta.status);
        sl_metrics_upstream_error(t->m->provider, kind);
        t->uf->decode_error(t->meta.status, t->body.ptr ? t->body.ptr : "", t->body.len, &e);
        if (e.status < 400 || e.status > 599)
            e.status = 502;
        sl_plan_note_limits(t->plan, &t->meta);
        reply_error(t, &e, t->meta.retry_after[0] ? t->meta.retry_after : e.retry_after);
    }
}

static void on_client_gone(struct sl_exchange *x)
{
    struct tx *t = x->state;
    sl_upstream_cancel(t->call);
    t->call = NULL;
    account(t);
    sl_exchange_client_left(x);
}

/* A hedge lost (or the request ended while it ran): stop it, and say what it used. */
static void on_attempt_stop(void *path, struct sl_usage *spent, int *estimated)
{
    struct tx *t = path;
    sl_upstream_cancel(t->call);
    t->call = NULL;
    t->ended = 1;
    if (t->usage.present) {
        *spent = t->usage;
        *estimated = 0;
        return;
    }
    spent->prompt = sl_estimate_messages(cJSON_GetObjectItemCaseSensitive(t->req, "messages"));
    spent->completion = t->est_completion;
    *estimated = 1;
}

void sl_translate_attempt(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m)
{
    struct tx *t = sl_arena_alloc(x->arena, sizeof(*t));
    struct sl_error e;
    struct sl_encoded enc = {0};
    if (!t || sl_arena_cleanup(x->arena, on_tx_cleanup, t)) {
        sl_error_set(&e, 503, "api_error", "out of memory");
        sl_plan_attempt_failed(x, p, NULL, &e, NULL);
        return;
    }
    t->x = x;
    t->plan = p;
    t->cf = p->cf;
    t->m = m;
    t->req = p->req;
    t->uf = sl_upstream_format(m->p->kind);
    t->stream = p->stream;
    t->hash = SL_HASH64_INIT;
    sl_sse_reader_init(&t->sse, SL_MAX_SSE_EVENT);
    sl_buf_init(&t->body, SL_MAX_UPSTREAM_BODY);
    sl_buf_init(&t->out, SL_MAX_SSE_EVENT * 2);
    if (!t->uf) {
        sl_error_set(&e, 501, "api_error", "provider %s speaks %s, which this build cannot translate",
                     m->provider, sl_wire_name(m->p->kind));
        reply_error(t, &e, NULL);
        return;
    }
    if (t->uf->encode(p->req, m, t->stream, x->arena, &enc, &e)) {
        reply_error(t, &e, NULL);
        return;
    }
    struct sl_upstream_req ur = {
        .url = enc.url, .body = enc.body, .body_len = enc.len,
        .headers = enc.headers, .nheaders = enc.nheaders, .timeouts = sl_plan_timeouts(p, m),
    };
    static const struct sl_upstream_cbs cbs = {on_up_headers, on_up_data, on_up_done};
    t->call = sl_upstream_start(x->w->up, &ur, &cbs, t);
    if (!t->call) {
        sl_error_set(&e, 500, "api_error", "cannot start the upstream request");
        reply_error(t, &e, NULL);
        return;
    }
    sl_plan_attempt_begun(x, p, t, on_attempt_stop, on_client_gone);
    sl_exchange_overhead_end(x);
}
