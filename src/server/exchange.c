/* The exchange: one request's life on its worker, its replies, and its end
 * (ledger row, metrics, arena freed). */
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "formats/format.h"
#include "formats/openai.h"
#include "meter/cost.h"
#include "meter/estimate.h"
#include "meter/usage.h"
#include "config/config.h"
#include "meter/keys.h"
#include "server/internal.h"
#include "server/metrics.h"
#include "upstream/upstream.h"

void sl_exchange_overhead_begin(struct sl_exchange *x)
{
    if (!x->seg_start_us)
        x->seg_start_us = sl_now_us();
}

void sl_exchange_overhead_end(struct sl_exchange *x)
{
    if (x->seg_start_us) {
        x->overhead_us += sl_now_us() - x->seg_start_us;
        x->seg_start_us = 0;
    }
}

const char *sl_exchange_body(struct sl_exchange *x, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(x->req);
    *len = evbuffer_get_length(in);
    return (const char *)evbuffer_pullup(in, -1);
}

void sl_exchange_add_headers(struct sl_exchange *x, const char *content_type)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(x->req);
    char overhead[32];
    sl_exchange_overhead_end(x);
    snprintf(overhead, sizeof(overhead), "%.3f", (double)x->overhead_us / 1000.0);
    evhttp_add_header(h, "Content-Type", content_type);
    evhttp_add_header(h, "x-request-id", x->id);
    evhttp_add_header(h, "request-id", x->id); /* the name Anthropic's SDK reads */
    evhttp_add_header(h, "x-sluice-overhead-ms", overhead);
}

/* The last step of every exchange: record, count, free. */
static void finish(struct sl_exchange *x)
{
    struct sl_worker *w = x->w;
    struct sl_usage_row *row = &x->row;
    if (x->on_finish)
        x->on_finish(x);
    row->status = x->status;
    row->client_gone = x->client_gone;
    row->latency_us = sl_now_us() - x->t_start_us;
    if (x->watch)
        event_free(x->watch);
    if (x->evcon) {
        /* The connection may carry more requests: back to the idle-read timeout. */
        const struct sl_server_cfg *s = &x->snap->cfg->server;
        struct timeval tv = {s->read_timeout_ms / 1000, (s->read_timeout_ms % 1000) * 1000};
        evhttp_connection_set_closecb(x->evcon, NULL, NULL);
        evhttp_connection_set_timeout_tv(x->evcon, &tv);
    }
    sl_cost_row(x->snap->catalog, x->model, row);
    sl_exchange_settle(x);
    sl_metrics_request(row);
    if (w->srv->ledger && row->model[0])
        sl_ledger_record(w->srv->ledger, row);
    sl_snapshot_release(x->snap);
    sl_keyset_release(x->keyset);
    sl_arena_free(x->arena);
    w->inflight--;
    atomic_fetch_sub(&w->srv->inflight, 1);
    sl_metrics_inflight(-1);
    if (w->draining && w->inflight == 0)
        event_base_loopexit(w->base, NULL);
}

void sl_exchange_account(struct sl_exchange *x, const struct sl_model_cfg *m,
                         const struct sl_usage *u, const cJSON *messages, int64_t est_completion)
{
    struct sl_usage_row *row = &x->row;
    x->model = m;
    snprintf(row->provider, sizeof(row->provider), "%s", m->provider);
    snprintf(row->upstream_model, sizeof(row->upstream_model), "%s", m->model);
    if (u->present) {
        row->prompt_tokens = u->prompt;
        row->completion_tokens = u->completion;
        row->cached_tokens = u->cached;
        row->reasoning_tokens = u->reasoning;
        row->estimated = 0;
    } else if (x->status < 400 || x->streaming) {
        /* No usage from the provider (an older server, or a stream cut short): the
         * request is still billed, by estimate, and the row says so. */
        row->prompt_tokens = sl_estimate_messages(messages);
        row->completion_tokens = est_completion;
        row->estimated = 1;
    }
}

void sl_exchange_upstream_failure(struct sl_error *e, const char *provider,
                                  enum sl_upstream_result r, const char *detail)
{
    int status = r == SL_UP_UNREACHABLE || r == SL_UP_BROKEN || r == SL_UP_TOO_BIG ? 502 : 504;
    sl_metrics_upstream_error(provider, sl_upstream_result_name(r));
    sl_error_set(e, status, "upstream_error", "upstream %s (%s): %s", provider,
                 sl_upstream_result_name(r), detail);
    snprintf(e->code, sizeof(e->code), "%s", status == 504 ? "upstream_timeout" : "upstream_unreachable");
}

void sl_exchange_client_left(struct sl_exchange *x)
{
    if (!x->streaming)
        x->status = 499; /* nginx's "client closed request" */
    snprintf(x->row.error, sizeof(x->row.error), "client disconnected");
    sl_exchange_abandon(x);
}

void sl_exchange_first_token(struct sl_exchange *x)
{
    if (x->row.ttft_us < 0)
        x->row.ttft_us = sl_now_us() - x->t_start_us;
}

void sl_exchange_reply(struct sl_exchange *x, int status, const char *content_type,
                       const char *body, size_t len)
{
    x->status = status;
    if (!x->client_gone) {
        struct evbuffer *out = evbuffer_new();
        sl_exchange_add_headers(x, content_type);
        size_t skip = 0;
        while (skip < len && (body[skip] == ' ' || body[skip] == '\n' || body[skip] == '\r'))
            skip++;
        if (out && x->reply_extra && status == 200 && skip < len && body[skip] == '{') {
            /* {"sources":[...], <the reply's own members>} */
            evbuffer_add(out, "{", 1);
            evbuffer_add(out, x->reply_extra, strlen(x->reply_extra));
            body += skip + 1;
            len -= skip + 1;
            size_t i = 0;
            while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
                i++;
            if (i < len && body[i] != '}')
                evbuffer_add(out, ",", 1);
        }
        if (out)
            evbuffer_add(out, body, len);
        evhttp_send_reply(x->req, status, NULL, out);
        if (out)
            evbuffer_free(out);
    } else if (x->req_ours) {
        evhttp_request_free(x->req);
    }
    finish(x);
}

void sl_exchange_send_error(struct sl_exchange *x, const struct sl_client_format *cf,
                            const struct sl_error *e)
{
    struct sl_buf b = SL_BUF_INIT(64 * 1024);
    if (!x->row.error[0])
        snprintf(x->row.error, sizeof(x->row.error), "%.255s", e->message);
    cf->error_body(e, &b);
    sl_exchange_reply(x, e->status, "application/json", b.ptr ? b.ptr : "{}", b.len);
    sl_buf_release(&b);
}

void sl_exchange_error(struct sl_exchange *x, int status, const char *type, const char *message,
                       const char *param, const char *code)
{
    struct sl_error e;
    sl_error_set(&e, status, type, "%s", message);
    snprintf(e.param, sizeof(e.param), "%s", param ? param : "");
    snprintf(e.code, sizeof(e.code), "%s", code ? code : "");
    sl_exchange_send_error(x, &sl_openai_client, &e);
}

void sl_exchange_stream_start(struct sl_exchange *x)
{
    x->status = 200;
    x->streaming = 1;
    if (x->client_gone)
        return;
    sl_exchange_add_headers(x, "text/event-stream; charset=utf-8");
    struct evkeyvalq *h = evhttp_request_get_output_headers(x->req);
    evhttp_add_header(h, "Cache-Control", "no-cache");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(x->req, 200, "OK");
    if (x->stream_prelude)
        sl_exchange_stream_write(x, x->stream_prelude, strlen(x->stream_prelude));
    /* A streaming client sends nothing while it reads: only a write that cannot
     * drain within write_timeout means a slow or dead client. */
    struct bufferevent *bev = x->evcon ? evhttp_connection_get_bufferevent(x->evcon) : NULL;
    if (bev) {
        int ms = x->snap->cfg->server.write_timeout_ms;
        struct timeval wt = {ms / 1000, (ms % 1000) * 1000};
        bufferevent_set_timeouts(bev, NULL, &wt);
    }
}

void sl_exchange_stream_write(struct sl_exchange *x, const char *p, size_t n)
{
    if (x->client_gone || n == 0)
        return;
    struct evbuffer *out = evbuffer_new();
    if (!out)
        return;
    evbuffer_add(out, p, n);
    evhttp_send_reply_chunk(x->req, out);
    evbuffer_free(out);
}

void sl_exchange_stream_end(struct sl_exchange *x)
{
    if (!x->client_gone)
        evhttp_send_reply_end(x->req);
    else if (x->req_ours)
        evhttp_request_free(x->req);
    finish(x);
}

void sl_exchange_abandon(struct sl_exchange *x)
{
    if (x->req_ours)
        evhttp_request_free(x->req);
    finish(x);
}

int sl_exchange_model_allowed(struct sl_exchange *x, const struct sl_client_format *cf,
                              const char *name)
{
    if (sl_key_allows(x->key, name))
        return 1;
    struct sl_error e;
    sl_error_set(&e, 403, "permission_error",
                 "the virtual key '%.128s' may not use the model '%.128s' (its models: %.256s)",
                 x->key->name, name, x->key->models);
    snprintf(e.code, sizeof(e.code), "model_not_allowed");
    sl_exchange_send_error(x, cf, &e);
    return 0;
}

static int bad_request(struct sl_exchange *x, const char *param, const char *msg)
{
    sl_exchange_error(x, 400, "invalid_request_error", msg, param, NULL);
    return -1;
}

int sl_exchange_read_request(struct sl_exchange *x, const char *body, size_t len, cJSON **root)
{
    char msg[96];
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!*root) {
        snprintf(msg, sizeof(msg), "the request body is not valid JSON (near byte %zu)",
                 end ? (size_t)(end - body) : (size_t)0);
        return bad_request(x, NULL, msg);
    }
    if (!cJSON_IsObject(*root))
        return bad_request(x, NULL, "the request body must be a JSON object");
    const char *dup = sl_json_duplicate_key(*root);
    if (dup) {
        snprintf(msg, sizeof(msg), "the request has the key '%.48s' more than once", dup);
        return bad_request(x, dup, msg);
    }
    const char *model = sl_json_str(*root, "model", NULL);
    if (!model || !model[0])
        return bad_request(x, "model", "'model' must be a non-empty string");
    snprintf(x->row.model, sizeof(x->row.model), "%s", model);
    return 0;
}
