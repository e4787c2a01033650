/* The timed playback of one chat request: parse, answer, then send the reply, the
 * injected failure or the stream's pieces, each after its delay. Delays are evtimer
 * events, never sleeps, so one thread serves many requests at once. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/limits.h"
#include "sim/sim.h"
#include "sim/sim_internal.h"

enum play_kind { PLAY_REPLY, PLAY_RESET, PLAY_STREAM };

/* One chat request being answered. It lives in its own arena, with the parsed body. */
struct sim_play {
    struct sim_play *prev, *next;
    struct sim_loop *loop;
    struct sl_arena *arena;
    const struct sim_wire *wire;
    struct evhttp_request *req;
    struct evhttp_connection *evcon; /* set while a close callback is registered */
    struct event *timer;
    enum play_kind kind;
    struct sim_request rq;
    struct sim_directives dir;
    struct sim_answer ans;
    struct sim_exchange x;
    struct sim_cursor cur;
    struct sim_piece piece; /* PLAY_STREAM: what the timer sends next */
    struct sl_buf body;     /* PLAY_REPLY */
    const char *arg;        /* what the route left of the path */
    int status, retry_after;
    int started;  /* the stream's headers are out */
    int closed;   /* the client went away */
    int owns_req; /* ... and libevent left the request for us to free */
};

static struct timeval ms_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

/* ---- replies ---- */

void sl_sim_send_body(struct evhttp_request *req, int status, const struct sl_buf *body,
                      int retry_after)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (retry_after >= 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", retry_after);
        evhttp_add_header(h, "Retry-After", v);
    }
    if (body->len)
        evbuffer_add(evhttp_request_get_output_buffer(req), body->ptr, body->len);
    evhttp_send_reply(req, status, NULL, NULL);
}

static void add_request_id(struct evhttp_request *req, const struct sim_wire *wire,
                           const char *request_id)
{
    if (wire->request_id_header && request_id)
        evhttp_add_header(evhttp_request_get_output_headers(req), wire->request_id_header,
                          request_id);
}

void sl_sim_send_error(struct evhttp_request *req, const struct sim_wire *wire,
                       const struct sim_error *e)
{
    struct sl_buf body = SL_BUF_INIT(64 * 1024);
    wire->error(e, &body);
    add_request_id(req, wire, e->request_id);
    sl_sim_send_body(req, e->status, &body, wire->retry_after_header ? e->retry_after : -1);
    sl_buf_release(&body);
}

unsigned long long sl_sim_request_id(struct sim_loop *l, char id[32])
{
    unsigned long long n = atomic_fetch_add(l->requests, 1) + 1;
    snprintf(id, 32, "req_sim_%llu", n);
    return n;
}

void sl_sim_fail(struct sim_loop *l, struct evhttp_request *req, const struct sim_wire *wire,
                 int status, const char *message, const char *param)
{
    char id[32];
    sl_sim_request_id(l, id);
    struct sim_error e = {status, message, param, id, -1};
    sl_sim_send_error(req, wire, &e);
}

cJSON *sl_sim_read_json(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *s = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    return s ? cJSON_ParseWithLength(s, len) : NULL;
}

/* ---- playback ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg);

static void delete_json(void *v)
{
    cJSON_Delete(v);
}

static struct sim_play *play_new(struct sim_loop *l, struct evhttp_request *req,
                                 const struct sim_wire *wire)
{
    struct sl_arena *a = sl_arena_new();
    struct sim_play *p = a ? sl_arena_alloc(a, sizeof(*p)) : NULL;
    if (p)
        p->timer = evtimer_new(l->base, on_timer, p);
    if (!p || !p->timer) {
        sl_arena_free(a);
        return NULL;
    }
    p->loop = l;
    p->arena = a;
    p->wire = wire;
    p->req = req;
    p->retry_after = -1;
    sl_buf_init(&p->body, SL_MAX_UPSTREAM_BODY);
    p->next = l->plays;
    if (l->plays)
        l->plays->prev = p;
    l->plays = p;
    return p;
}

static void play_free(struct sim_play *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->loop->plays = p->next;
    if (p->next)
        p->next->prev = p->prev;
    event_free(p->timer);
    sl_buf_release(&p->body);
    sl_arena_free(p->arena); /* p itself lives there */
}

/* Stops listening for the close of the connection; before the last send, after
 * which libevent may free the connection. */
static void play_unwatch(struct sim_play *p)
{
    if (p->evcon && !p->closed)
        evhttp_connection_set_closecb(p->evcon, NULL, NULL);
    p->evcon = NULL;
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct sim_play *p = arg;
    struct timeval now = {0, 0};
    p->closed = 1;
    /* On EOF libevent detaches an unfinished request instead of freeing it. */
    p->owns_req = evhttp_request_get_connection(p->req) == NULL;
    evtimer_add(p->timer, &now);
}

static void play_abort(struct sim_play *p)
{
    if (p->closed ? p->owns_req : 1)
        evhttp_request_free(p->req);
    play_free(p);
}

static void play_reply(struct sim_play *p)
{
    play_unwatch(p);
    add_request_id(p->req, p->wire, p->x.request_id);
    sl_sim_send_body(p->req, p->status, &p->body, p->retry_after);
    play_free(p);
}

/* Closes the connection under the request; abrupt means a TCP reset. */
static void play_drop(struct sim_play *p, int abrupt)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
    play_unwatch(p);
    if (abrupt) {
        struct linger lg = {1, 0};
        int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    evhttp_connection_free(evcon); /* frees the request too */
    play_free(p);
}

static void on_flushed(struct evhttp_connection *evcon, void *arg)
{
    struct sim_play *p = arg;
    if (!sl_sim_cursor_next(&p->cur, &p->piece)) {
        play_unwatch(p);
        evhttp_send_reply_end(p->req);
        play_free(p);
        return;
    }
    struct timeval tv = ms_tv(p->piece.delay_ms);
    evtimer_add(p->timer, &tv);
}

static void stream_headers(struct sim_play *p)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(p->req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    add_request_id(p->req, p->wire, p->x.request_id);
    evhttp_send_reply_start(p->req, 200, NULL);
    p->started = 1;
}

/* Sends the pending piece as its own HTTP chunk; the next one is timed from the
 * moment this one has left, so a slow reader slows the stream instead of growing it. */
static void play_piece(struct sim_play *p)
{
    if (p->piece.kind == SIM_PIECE_CLOSE) {
        play_drop(p, 0);
        return;
    }
    struct sl_buf out = SL_BUF_INIT(SL_MAX_SSE_EVENT);
    if (p->wire->piece(&p->x, &p->piece, &out)) {
        sl_buf_release(&out);
        play_drop(p, 0);
        return;
    }
    if (!p->started)
        stream_headers(p);
    if (out.len == 0) {
        on_flushed(p->evcon, p);
        return;
    }
    struct evbuffer *chunk = evbuffer_new();
    if (chunk && evbuffer_add(chunk, out.ptr, out.len) == 0)
        evhttp_send_reply_chunk_with_cb(p->req, chunk, on_flushed, p);
    else
        play_drop(p, 0);
    if (chunk)
        evbuffer_free(chunk);
    sl_buf_release(&out);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sim_play *p = arg;
    if (p->closed || !evhttp_request_get_connection(p->req)) {
        play_abort(p);
        return;
    }
    switch (p->kind) {
    case PLAY_REPLY:
        play_reply(p);
        break;
    case PLAY_RESET:
        play_drop(p, 1);
        break;
    case PLAY_STREAM:
        play_piece(p);
        break;
    }
}

/* Sends now, or after delay_ms while watching for the client going away. */
static void play_start(struct sim_play *p, int delay_ms)
{
    if (p->kind == PLAY_REPLY && delay_ms == 0) {
        play_reply(p);
        return;
    }
    p->evcon = evhttp_request_get_connection(p->req);
    evhttp_connection_set_closecb(p->evcon, on_close, p);
    struct timeval tv = ms_tv(delay_ms);
    evtimer_add(p->timer, &tv);
}

/* ---- chat ---- */

/* Parses and answers the request. Returns 0, or the HTTP status of the error in *err. */
static int prepare(struct sim_play *p, const char **err, const char **param)
{
    char request_id[32];
    unsigned long long n_req = sl_sim_request_id(p->loop, request_id);
    p->x.request_id = sl_arena_strndup(p->arena, request_id, strlen(request_id));
    cJSON *body = sl_sim_read_json(p->req);
    *param = NULL;
    if (!body || sl_arena_cleanup(p->arena, delete_json, body)) {
        cJSON_Delete(body);
        *err = "We could not parse the JSON body of your request.";
        return 400;
    }
    if (p->wire->decode(body, p->arg, p->arena, &p->rq, err, param))
        return 400;
    const struct sim_msg *user = sl_sim_last_user(&p->rq);
    sl_sim_directives_parse(user ? user->text : NULL, &p->dir);
    if (sl_sim_answer(&p->rq, &p->dir, p->arena, &p->ans)) {
        *err = "Out of memory.";
        return 500;
    }
    p->x = (struct sim_exchange){
        .rq = &p->rq,
        .ans = &p->ans,
        .dir = &p->dir,
        .id = sl_arena_sprintf(p->arena, "%s%llu", p->wire->id_prefix, n_req),
        .request_id = p->x.request_id,
        .created = (int64_t)time(NULL),
        .usage = p->rq.stream && p->rq.include_usage && !p->dir.no_usage,
    };
    if (!p->x.id || !p->x.request_id) {
        *err = "Out of memory.";
        return 500;
    }
    return 0;
}

static int pick(int directive, int option)
{
    return directive >= 0 ? directive : option > 0 ? option : 0;
}

static void start_failure(struct sim_play *p, int stall)
{
    if (p->dir.reset) {
        p->kind = PLAY_RESET;
        play_start(p, stall);
        return;
    }
    p->kind = PLAY_REPLY;
    p->status = p->dir.status >= 400 ? p->dir.status : 500;
    p->retry_after = p->wire->retry_after_header ? p->dir.retry_after : -1;
    const char *msg = sl_arena_sprintf(p->arena, "Simulated HTTP %d error (@sim:status).",
                                       p->status);
    struct sim_error e = {p->status, msg ? msg : "Simulated error.", NULL, p->x.request_id,
                          p->dir.retry_after};
    p->wire->error(&e, &p->body);
    play_start(p, stall);
}

static void start_answer(struct sim_play *p, int stall)
{
    const struct sl_sim_opts *o = p->loop->opts;
    if (p->rq.stream) {
        p->kind = PLAY_STREAM;
        sl_sim_cursor_init(&p->cur, &p->x, pick(p->dir.ttft_ms, o->ttft_ms) + stall,
                           pick(p->dir.delay_ms, o->chunk_delay_ms), o->words_per_chunk);
        sl_sim_cursor_next(&p->cur, &p->piece);
        play_start(p, p->piece.delay_ms);
        return;
    }
    p->kind = PLAY_REPLY;
    p->status = 200;
    if (p->wire->reply(&p->x, &p->body)) {
        sl_buf_reset(&p->body);
        p->status = 500;
        struct sim_error e = {500, "The simulated reply is too large.", NULL, p->x.request_id, -1};
        p->wire->error(&e, &p->body);
    }
    play_start(p, pick(p->dir.ttft_ms, o->latency_ms) + stall);
}

void sl_sim_chat(struct sim_loop *l, struct evhttp_request *req, const struct sim_wire *wire,
                 const char *arg)
{
    struct sim_play *p = play_new(l, req, wire);
    if (!p) {
        sl_sim_fail(l, req, wire, 500, "Out of memory.", NULL);
        return;
    }
    p->arg = arg;
    const char *err, *param;
    int status = prepare(p, &err, &param);
    if (status) {
        struct sim_error e = {status, err, param, p->x.request_id, -1};
        sl_sim_send_error(req, wire, &e);
        play_free(p);
        return;
    }
    int stall = p->dir.stall_ms > 0 ? p->dir.stall_ms : 0;
    const struct sim_msg *user = sl_sim_last_user(&p->rq);
    if (sl_sim_failure_due(l->fails, &p->dir, user ? user->text : ""))
        start_failure(p, stall);
    else
        start_answer(p, stall);
}

void sl_sim_plays_release(struct sim_loop *l)
{
    while (l->plays) {
        struct sim_play *p = l->plays;
        /* A request still on its connection is freed with it by evhttp_free(); one
         * that libevent detached when its client left is ours to free. */
        if (!p->closed && evhttp_request_get_connection(p->req))
            play_unwatch(p);
        else if (!p->closed || p->owns_req)
            evhttp_request_free(p->req);
        play_free(p);
    }
}
