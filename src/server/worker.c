/* A worker thread: its own event loop, HTTP server on the shared port, and
 * upstream pool. Requests are routed here and live their whole life on it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/json.h"
#include "formats/format.h"
#include "meter/keys.h"
#include "server/internal.h"
#include "server/mirror.h"
#include "server/metrics.h"
#include "server/worker.h"
#include "upstream/upstream.h"

/* Who may call an endpoint. */
enum access {
    OPEN,   /* health and metrics */
    CLIENT, /* a virtual key when any exists; loopback clients only while none does */
    ADMIN,  /* the master key (the handler checks it: sl_admin_authorized) */
    KB,     /* the master key, or as CLIENT (the knowledge base: writes need the master key) */
    OPS,    /* the master key when one is configured; else loopback clients only */
};

/* To add an endpoint: a row here, a handler in its own file declared in
 * internal.h, an end-to-end test, and a line in README.md. A path ending in '/'
 * matches every path under it. */
static const struct route {
    enum evhttp_cmd_type method;
    const char *path;
    sl_handler_fn fn;
    enum access access;
} routes[] = {
    {EVHTTP_REQ_POST, "/v1/chat/completions", sl_chat_handle, CLIENT},
    {EVHTTP_REQ_POST, "/chat/completions", sl_chat_handle, CLIENT},
    {EVHTTP_REQ_POST, "/v1/embeddings", sl_embeddings_handle, CLIENT},
    {EVHTTP_REQ_POST, "/embeddings", sl_embeddings_handle, CLIENT},
    {EVHTTP_REQ_POST, "/v1/rerank", sl_rerank_handle, CLIENT},
    {EVHTTP_REQ_POST, "/v2/rerank", sl_rerank_handle, CLIENT},
    {EVHTTP_REQ_POST, "/rerank", sl_rerank_handle, CLIENT},
    {EVHTTP_REQ_POST, "/v1/messages", sl_messages_handle, CLIENT},
    {EVHTTP_REQ_POST, "/v1/messages/count_tokens", sl_count_tokens_handle, CLIENT},
    {EVHTTP_REQ_GET, "/v1/models", sl_models_handle, CLIENT},
    {EVHTTP_REQ_GET, "/models", sl_models_handle, CLIENT},
    {EVHTTP_REQ_GET, "/health", sl_health_handle, OPEN},
    {EVHTTP_REQ_GET, "/metrics", sl_metrics_handle, OPEN},
    {EVHTTP_REQ_GET, "/admin/health", sl_admin_health_handle, OPS},
    {EVHTTP_REQ_POST, "/admin/keys", sl_admin_keys_create_handle, ADMIN},
    {EVHTTP_REQ_GET, "/admin/keys", sl_admin_keys_list_handle, ADMIN},
    {EVHTTP_REQ_DELETE, "/admin/keys/", sl_admin_keys_revoke_handle, ADMIN},
    {EVHTTP_REQ_GET, "/admin/usage", sl_admin_usage_handle, ADMIN},
    {EVHTTP_REQ_POST, "/v1/kb", sl_kb_handle, KB},
    {EVHTTP_REQ_GET, "/v1/kb", sl_kb_handle, KB},
    {EVHTTP_REQ_POST, "/v1/kb/", sl_kb_handle, KB},
    {EVHTTP_REQ_GET, "/v1/kb/", sl_kb_handle, KB},
    {EVHTTP_REQ_DELETE, "/v1/kb/", sl_kb_handle, KB},
};

static void make_id(char *out, size_t cap)
{
    static _Thread_local uint64_t state;
    if (!state && getrandom(&state, sizeof(state), 0) != sizeof(state))
        state = (uint64_t)sl_now_us() | 1;
    /* xorshift64*: ids need to be unique, not secret */
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t a = state * 0x2545F4914F6CDD1DULL;
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t b = state * 0x2545F4914F6CDD1DULL;
    snprintf(out, cap, "req_%016llx%08llx", (unsigned long long)a, (unsigned long long)(b >> 32));
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct sl_exchange *x = arg;
    x->client_gone = 1;
    x->evcon = NULL;
    /* libevent detaches a request whose client hung up (and we must free it), but
     * frees it itself when the connection is freed on purpose. */
    x->req_ours = evhttp_request_get_connection(x->req) == NULL;
    if (x->watch)
        event_del(x->watch);
    if (x->on_gone)
        x->on_gone(x);
}

/* evhttp reads nothing more from a connection while its request is being served,
 * so a client that hangs up is only noticed at the next write. Peek instead. */
static void on_client_readable(evutil_socket_t fd, short what, void *arg)
{
    struct sl_exchange *x = arg;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        event_del(x->watch); /* a pipelined request: evhttp reads it later */
        return;
    }
    evhttp_connection_free(x->evcon); /* runs on_close */
}

static void watch_client(struct sl_exchange *x)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(x->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0)
        return;
    x->watch = event_new(x->w->base, fd, EV_READ | EV_PERSIST, on_client_readable, x);
    if (x->watch)
        event_add(x->watch, NULL);
}

static const struct route *find_route(const char *path, enum evhttp_cmd_type method, int *path_known)
{
    *path_known = 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        size_t n = strlen(routes[i].path);
        int prefix = routes[i].path[n - 1] == '/';
        if (prefix ? strncmp(routes[i].path, path, n) != 0 || !path[n]
                   : strcmp(routes[i].path, path) != 0)
            continue;
        *path_known = 1;
        if (routes[i].method == method)
            return &routes[i];
    }
    return NULL;
}

static struct sl_exchange *exchange_new(struct sl_worker *w, struct evhttp_request *req)
{
    struct sl_arena *arena = sl_arena_new();
    struct sl_exchange *x = arena ? sl_arena_alloc(arena, sizeof(*x)) : NULL;
    if (!x) {
        sl_arena_free(arena);
        return NULL;
    }
    x->arena = arena;
    x->req = req;
    x->w = w;
    x->t_start_us = sl_now_us();
    x->seg_start_us = x->t_start_us;
    x->snap = sl_snapshot_acquire(w->srv);
    x->keyset = sl_keyset_acquire(w->srv);
    x->row.ts_ms = sl_wall_ms();
    x->row.ttft_us = -1;
    make_id(x->id, sizeof(x->id));
    snprintf(x->row.id, sizeof(x->row.id), "%s", x->id);
    snprintf(x->row.request_id, sizeof(x->row.request_id), "%s", x->id);
    x->row.attempt = 1;
    x->row.final = 1;
    x->evcon = evhttp_request_get_connection(req);
    if (x->evcon) {
        evhttp_connection_set_closecb(x->evcon, on_close, x);
        const struct sl_server_cfg *s = &x->snap->cfg->server;
        struct timeval tv = {s->write_timeout_ms / 1000, (s->write_timeout_ms % 1000) * 1000};
        evhttp_connection_set_timeout_tv(x->evcon, &tv);
        watch_client(x);
    }
    w->inflight++;
    atomic_fetch_add(&w->srv->inflight, 1);
    sl_metrics_inflight(1);
    return x;
}

static int is_loopback(struct evhttp_connection *evcon)
{
    char *addr = NULL;
    ev_uint16_t port;
    if (!evcon)
        return 0;
    evhttp_connection_get_peer(evcon, &addr, &port);
    return addr && (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
                    strncmp(addr, "::ffff:127.", 11) == 0);
}

#define MAX_TAGS 16
#define MAX_TAG 64

/* One "name=value" tag into the JSON array being built. -1 when it is not one. */
static int add_tag(struct sl_buf *b, const char *s, size_t n, int *count)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0)
        return 0;
    const char *eq = memchr(s, '=', n);
    if (!eq || eq == s || n > MAX_TAG || *count == MAX_TAGS)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == '"' || s[i] == '\\')
            return -1;
    if (sl_buf_puts(b, (*count)++ ? "," : "[") || sl_json_quote(b, s, n))
        return -1;
    return 0;
}

static int add_tags(struct sl_buf *b, const char *list, int *count)
{
    for (const char *p = list, *comma; p && *p; p = comma ? comma + 1 : NULL) {
        comma = strchr(p, ',');
        if (add_tag(b, p, comma ? (size_t)(comma - p) : strlen(p), count))
            return -1;
    }
    return 0;
}

/* The request's tags for the ledger: the key's defaults, then every x-sluice-tag header
 * (several allowed, each a comma-separated list). Answers 400 on a malformed one. */
static int collect_tags(struct sl_exchange *x, const char *key_tags, const struct sl_client_format *cf)
{
    struct sl_buf b = SL_BUF_INIT(sizeof(x->row.tags) - 2);
    struct evkeyvalq *h = evhttp_request_get_input_headers(x->req);
    int count = 0, bad = add_tags(&b, key_tags, &count);
    for (struct evkeyval *kv = h->tqh_first; kv && !bad; kv = kv->next.tqe_next)
        if (evutil_ascii_strcasecmp(kv->key, "x-sluice-tag") == 0)
            bad = add_tags(&b, kv->value, &count);
    if (!bad && count)
        snprintf(x->row.tags, sizeof(x->row.tags), "%s]", b.ptr);
    sl_buf_release(&b);
    if (bad) {
        struct sl_error e;
        sl_error_set(&e, 400, "invalid_request_error",
                     "x-sluice-tag: tags are name=value, at most %d of %d characters each, no quotes",
                     MAX_TAGS, MAX_TAG);
        sl_exchange_send_error(x, cf, &e);
    }
    return bad ? -1 : 0;
}

/* A client endpoint's gate: the virtual key (named in the ledger row), or, while no
 * key exists, a loopback client. 0 lets the request through; else it is answered. */
static int authenticate(struct sl_exchange *x, const char *path)
{
    const struct sl_keys *keys = x->keyset ? x->keyset->keys : NULL;
    const struct sl_client_format *cf =
        strncmp(path, "/v1/messages", 12) == 0 ? sl_client_format("anthropic") : &sl_openai_client;
    struct sl_error e;
    struct evkeyvalq *in = evhttp_request_get_input_headers(x->req);
    const char *bearer = sl_keys_presented(evhttp_find_header(in, "Authorization"), NULL);
    if (bearer && strncmp(bearer, "sk-kb-", 6) == 0 &&
        sl_keys_secret_equal(bearer, x->w->srv->kb_token)) {
        /* the knowledge base's own model calls: billed to, and limited by, the key it
         * works for (its id; the tags it carries came with the KB request) */
        const struct sl_key *k =
            sl_keys_find_id(keys, evhttp_find_header(in, "x-sluice-kb-key"), sl_wall_ms());
        if (k) {
            x->key = k;
            snprintf(x->row.key, sizeof(x->row.key), "%.127s", k->name);
            snprintf(x->key_id, sizeof(x->key_id), "%s", k->id);
        }
        return collect_tags(x, NULL, cf ? cf : &sl_openai_client);
    }
    if (sl_keys_ever(keys) == 0) {
        if (is_loopback(x->evcon))
            return collect_tags(x, NULL, cf ? cf : &sl_openai_client);
        sl_error_set(&e, 401, "authentication_error",
                     "no virtual key exists yet: sluice serves loopback clients only until one "
                     "is created (sluice keys create)");
    } else {
        struct evkeyvalq *h = evhttp_request_get_input_headers(x->req);
        const char *secret = sl_keys_presented(evhttp_find_header(h, "Authorization"),
                                               evhttp_find_header(h, "x-api-key"));
        const struct sl_key *k = sl_keys_find(keys, secret, sl_wall_ms());
        if (k) {
            x->key = k;
            snprintf(x->row.key, sizeof(x->row.key), "%.127s", k->name);
            snprintf(x->key_id, sizeof(x->key_id), "%s", k->id);
            return collect_tags(x, k->tags, cf ? cf : &sl_openai_client);
        }
        sl_error_set(&e, 401, "authentication_error",
                     "a valid virtual key is required (Authorization: Bearer, or x-api-key)");
    }
    snprintf(e.code, sizeof(e.code), "invalid_api_key");
    sl_exchange_send_error(x, cf ? cf : &sl_openai_client, &e);
    return -1;
}

/* The request carries "Authorization: Bearer <master key>" (one is configured). */
static int is_master(struct sl_exchange *x)
{
    const char *master = x->snap->cfg->master_key;
    struct evkeyvalq *in = evhttp_request_get_input_headers(x->req);
    return master[0] &&
           sl_keys_secret_equal(sl_keys_presented(evhttp_find_header(in, "Authorization"), NULL), master);
}

/* An OPS endpoint without a master key: loopback clients only (else answered 403). */
static int ops_from_loopback(struct sl_exchange *x)
{
    if (is_loopback(x->evcon))
        return 1;
    sl_exchange_error(x, 403, "permission_error",
                      "this endpoint is served to loopback clients only until a master_key is "
                      "configured", NULL, "forbidden");
    return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct sl_worker *w = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct sl_exchange *x = exchange_new(w, req);
    if (!x) {
        evhttp_send_error(req, 503, "out of memory");
        return;
    }
    int known;
    const struct route *r = find_route(path ? path : "", evhttp_request_get_command(req), &known);
    if (r) {
        if (r->access == OPS) {
            if (x->snap->cfg->master_key[0] ? sl_admin_authorized(x) : ops_from_loopback(x))
                r->fn(x);
        } else if ((r->access != CLIENT && r->access != KB) ||
            (r->access == KB && is_master(x) ? collect_tags(x, NULL, &sl_openai_client) == 0
                                              : authenticate(x, path) == 0))
            r->fn(x);
    } else if (known)
        sl_exchange_error(x, 405, "invalid_request_error", "method not allowed for this path", NULL,
                          NULL);
    else
        sl_exchange_error(x, 404, "invalid_request_error", "no such endpoint", NULL,
                          "unknown_url");
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sl_worker *w = arg;
    sl_warn("worker %d: %d request(s) still in flight after the drain timeout: closing them",
            w->index, w->inflight);
    event_base_loopbreak(w->base);
}

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct sl_worker *w = arg;
    if (w->draining)
        return;
    w->draining = 1;
    int ms = w->srv->snap->cfg->server.drain_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_once(w->base, -1, EV_TIMEOUT, on_drain_timeout, w, &tv);
    if (w->bound) {
        evhttp_del_accept_socket(w->http, w->bound);
        w->bound = NULL;
    }
    if (w->inflight == 0)
        event_base_loopexit(w->base, NULL);
}

int sl_worker_init(struct sl_worker *w, struct sl_server *srv, int index, evutil_socket_t fd,
                   const struct sl_server_cfg *cfg)
{
    w->srv = srv;
    w->index = index;
    struct event_config *ec = event_config_new();
    if (ec) /* del + add of one fd in one loop turn becomes a single epoll_ctl */
        event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = ec ? event_base_new_with_config(ec) : NULL;
    if (ec)
        event_config_free(ec);
    w->http = w->base ? evhttp_new(w->base) : NULL;
    w->up = w->base ? sl_upstream_new(w->base) : NULL;
    w->drain_ev = w->base ? event_new(w->base, -1, 0, on_drain, w) : NULL;
    if (!w->http || !w->up || !w->drain_ev)
        return -1;
    /* Bodies up to twice the limit are read so the handler can answer 413 in the
     * client's format; beyond that libevent refuses them itself. */
    evhttp_set_max_body_size(w->http, (ev_ssize_t)cfg->max_body * 2);
    evhttp_set_max_headers_size(w->http, (ev_ssize_t)cfg->max_headers);
    struct timeval tv = {cfg->read_timeout_ms / 1000, (cfg->read_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(w->http, &tv);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(w->http, on_request, w);
    w->bound = evhttp_accept_socket_with_handle(w->http, fd);
    return w->bound ? 0 : -1;
}

static void *worker_main(void *arg)
{
    struct sl_worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int sl_worker_start(struct sl_worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) ? -1 : 0;
}

void sl_worker_drain(struct sl_worker *w)
{
    event_active(w->drain_ev, EV_READ, 0);
}

void sl_worker_join_release(struct sl_worker *w)
{
    pthread_join(w->thread, NULL);
    if (w->http)
        evhttp_free(w->http);
    sl_mirror_stop_all(w);
    sl_upstream_free(w->up);
    if (w->drain_ev)
        event_free(w->drain_ev);
    if (w->base)
        event_base_free(w->base);
}
