/* The simulator's HTTP server: worker threads, each with its own event_base and evhttp
 * on its own SO_REUSEPORT socket, the route table, and start/stop. Chat requests are
 * handed to sim_play.c. */
#include "sim/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/log.h"
#include "sim/sim_internal.h"

#define MAX_THREADS 256
#define BACKLOG     1024

const char *const sl_sim_models[] = {"sim-small", "sim-large", "sim-reasoner", NULL};

struct worker {
    struct sim_loop loop; /* what the requests it serves see */
    struct evhttp *http;
    struct event *stop;
    pthread_t thread;
    int running;
};

struct sl_sim {
    struct sl_sim_opts opts;
    char *host;
    int port;
    int n_workers;
    struct worker *workers;
    struct sim_failmap *fails;
    atomic_ullong requests;
};

/* ---- routes ---- */

static void on_chat(struct sim_loop *l, struct evhttp_request *req, const char *arg,
                    const struct sim_wire *wire)
{
    sl_sim_chat(l, req, wire, arg);
}

static void on_gemini(struct sim_loop *l, struct evhttp_request *req, const char *arg,
                      const struct sim_wire *wire)
{
    sl_sim_gemini_route(l, req, arg);
}

static void on_embeddings(struct sim_loop *l, struct evhttp_request *req, const char *arg,
                          const struct sim_wire *wire)
{
    sl_sim_embed_openai(l, req);
}

static void on_dashscope_embeddings(struct sim_loop *l, struct evhttp_request *req,
                                    const char *arg, const struct sim_wire *wire)
{
    sl_sim_embed_dashscope(l, req);
}

static void on_rerank(struct sim_loop *l, struct evhttp_request *req, const char *arg,
                      const struct sim_wire *wire)
{
    sl_sim_rerank_jina(l, req);
}

static void on_cohere_rerank(struct sim_loop *l, struct evhttp_request *req, const char *arg,
                             const struct sim_wire *wire)
{
    sl_sim_rerank_cohere(l, req);
}

static void on_dashscope_rerank(struct sim_loop *l, struct evhttp_request *req, const char *arg,
                                const struct sim_wire *wire)
{
    sl_sim_rerank_dashscope(l, req);
}

static void on_health(struct sim_loop *l, struct evhttp_request *req, const char *arg,
                      const struct sim_wire *wire)
{
    struct sl_buf body = SL_BUF_INIT(64);
    sl_buf_puts(&body, "{\"status\":\"ok\"}");
    sl_sim_send_body(req, 200, &body, -1);
    sl_buf_release(&body);
}

static void on_models(struct sim_loop *l, struct evhttp_request *req, const char *arg,
                      const struct sim_wire *wire)
{
    struct sl_buf body = SL_BUF_INIT(64 * 1024);
    if (sl_sim_openai_models(*arg ? arg : NULL, &body))
        sl_sim_fail(l, req, wire, 500, "Out of memory.", NULL);
    else
        sl_sim_send_body(req, 200, &body, -1);
    sl_buf_release(&body);
}

#define ANY_FORMAT SL_SIM_FORMAT_ALL
#define OPENAI     SL_SIM_FORMAT_OPENAI
#define DASHSCOPE_EMBEDDINGS "/api/v1/services/embeddings/text-embedding/text-embedding"
#define DASHSCOPE_RERANK     "/api/v1/services/rerank/text-rerank/text-rerank"

/* To add a route: a row here (a new wire format brings its chat path and its format bit),
 * a test, a line in docs/sim.md. A prefix row takes the rest of the path as its argument.
 * A row whose format is not served is skipped: its path answers 404. */
static const struct route {
    enum evhttp_cmd_type method;
    const char *path;
    int prefix;
    void (*handle)(struct sim_loop *l, struct evhttp_request *req, const char *arg,
                   const struct sim_wire *wire);
    const struct sim_wire *wire;
    unsigned format;
} routes[] = {
    {EVHTTP_REQ_GET, "/health", 0, on_health, &sl_sim_openai, ANY_FORMAT},
    {EVHTTP_REQ_GET, "/v1/models", 0, on_models, &sl_sim_openai, ANY_FORMAT},
    {EVHTTP_REQ_GET, "/v1/models/", 1, on_models, &sl_sim_openai, ANY_FORMAT},
    {EVHTTP_REQ_POST, "/v1/chat/completions", 0, on_chat, &sl_sim_openai, OPENAI},
    {EVHTTP_REQ_POST, "/v1/embeddings", 0, on_embeddings, &sl_sim_openai, OPENAI},
    {EVHTTP_REQ_POST, DASHSCOPE_EMBEDDINGS, 0, on_dashscope_embeddings, &sl_sim_dashscope, OPENAI},
    {EVHTTP_REQ_POST, "/v1/rerank", 0, on_rerank, &sl_sim_openai, OPENAI},
    {EVHTTP_REQ_POST, "/v2/rerank", 0, on_cohere_rerank, &sl_sim_openai, OPENAI},
    {EVHTTP_REQ_POST, DASHSCOPE_RERANK, 0, on_dashscope_rerank, &sl_sim_dashscope, OPENAI},
    {EVHTTP_REQ_POST, "/v1/messages", 0, on_chat, &sl_sim_anthropic, SL_SIM_FORMAT_ANTHROPIC},
    {EVHTTP_REQ_POST, "/v1beta/models/", 1, on_gemini, &sl_sim_gemini, SL_SIM_FORMAT_GEMINI},
};

/* The error shape for a path no route serves: the format its prefix belongs to. */
static const struct sim_wire *path_wire(const char *path)
{
    if (strncmp(path, "/v1beta/", 8) == 0)
        return &sl_sim_gemini;
    if (strncmp(path, "/v1/messages", 12) == 0)
        return &sl_sim_anthropic;
    return strncmp(path, "/api/v1/", 8) == 0 ? &sl_sim_dashscope : &sl_sim_openai;
}

static const char *method_name(enum evhttp_cmd_type m)
{
    return m == EVHTTP_REQ_GET ? "GET" : m == EVHTTP_REQ_POST ? "POST" : "OTHER";
}

static int path_matches(const struct route *r, const char *path)
{
    size_t n = strlen(r->path);
    return r->prefix ? strncmp(path, r->path, n) == 0 && path[n] : strcmp(path, r->path) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct sim_loop *l = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    int path_known = 0;
    if (!path)
        path = "";
    if (!l->opts->quiet)
        sl_info("sim: %s %s", method_name(method), path);
    unsigned served = l->opts->formats ? l->opts->formats : SL_SIM_FORMAT_ALL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!(routes[i].format & served) || !path_matches(&routes[i], path))
            continue;
        path_known = 1;
        if (routes[i].method == method) {
            routes[i].handle(l, req, path + strlen(routes[i].path), routes[i].wire);
            return;
        }
    }
    char msg[256];
    snprintf(msg, sizeof(msg), "%s %s %.160s.", path_known ? "Method not allowed:" :
             "Unknown request URL:", method_name(method), path);
    sl_sim_fail(l, req, path_wire(path), path_known ? 405 : 404, msg, NULL);
}

/* ---- workers ---- */

/* A listening socket on host:port; *port gets the bound port. Returns -1 on failure. */
static int listen_on(const char *host, int *port, int reuseport)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char service[16];
    int one = 1, fd = -1;
    snprintf(service, sizeof(service), "%d", *port);
    if (getaddrinfo(host, service, &hints, &ai) == 0)
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    else
        errno = EADDRNOTAVAIL; /* the caller reports errno; the host did not resolve */
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
                    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
                    /* accepted sockets inherit it: each stream event leaves at once, not
                     * held by Nagle until the client's delayed ACK (up to 40 ms) */
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
                    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, BACKLOG))) {
        int saved = errno;
        close(fd);
        errno = saved;
        fd = -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    if (ai)
        freeaddrinfo(ai);
    return fd;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static int worker_init(struct worker *w, struct sl_sim *sim, int fd)
{
    struct event_base *base = event_base_new();
    w->loop = (struct sim_loop){base, &sim->opts, sim->fails, &sim->requests, NULL};
    w->http = base ? evhttp_new(base) : NULL;
    w->stop = base ? event_new(base, -1, 0, on_stop, base) : NULL;
    if (!w->http || !w->stop || !evhttp_accept_socket_with_handle(w->http, fd)) {
        close(fd); /* evhttp owns it only once accepted */
        return -1;
    }
    evhttp_set_gencb(w->http, on_request, &w->loop);
    evhttp_set_max_body_size(w->http, SL_MAX_REQUEST_BODY);
    evhttp_set_max_headers_size(w->http, SL_MAX_HEADERS_SIZE);
    /* libevent's 50 s default would cut a long injected stall short. */
    evhttp_set_timeout(w->http, SIM_MAX_MS / 1000 + 60);
    return 0;
}

/* Frees what the stopped loop left: requests still in flight first, then the server
 * (which frees the connections and the requests still on them). */
static void worker_release(struct worker *w)
{
    sl_sim_plays_release(&w->loop);
    if (w->http)
        evhttp_free(w->http);
    if (w->stop)
        event_free(w->stop);
    if (w->loop.base)
        event_base_free(w->loop.base);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->loop.base);
    return NULL;
}

/* Worker threads leave asynchronous signals (SIGINT, SIGTERM, SIGPIPE) to the
 * process's main thread; a write to a closed socket then just fails with EPIPE. */
static int start_threads(struct sl_sim *sim)
{
    sigset_t all, old;
    sigfillset(&all);
    int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP};
    for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
        sigdelset(&all, sync_signals[i]);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int result = 0;
    for (int i = 0; i < sim->n_workers && !result; i++) {
        result = pthread_create(&sim->workers[i].thread, NULL, worker_main, &sim->workers[i]);
        sim->workers[i].running = result == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return result ? -1 : 0;
}

static pthread_once_t threads_once = PTHREAD_ONCE_INIT;

static void use_pthreads(void)
{
    /* Lets sl_sim_stop() wake a worker's loop from another thread. */
    evthread_use_pthreads();
}

static int bind_workers(struct sl_sim *sim, int n)
{
    sim->port = sim->opts.port;
    for (int i = 0; i < n; i++) {
        int fd = listen_on(sim->host, &sim->port, n > 1);
        if (fd < 0) {
            sl_error("sim: cannot listen on %s:%d: %s", sim->host, sim->port, strerror(errno));
            return -1;
        }
        sim->n_workers = i + 1;
        if (worker_init(&sim->workers[i], sim, fd)) {
            sl_error("sim: cannot start worker %d", i);
            return -1;
        }
    }
    return 0;
}

int sl_sim_start(const struct sl_sim_opts *opts, struct sl_sim **out)
{
    pthread_once(&threads_once, use_pthreads);
    int n = opts->threads > 1 ? opts->threads : 1;
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    struct sl_sim *sim = calloc(1, sizeof(*sim));
    if (!sim)
        return -1;
    sim->opts = *opts;
    sim->host = strdup(opts->host ? opts->host : "127.0.0.1");
    sim->opts.host = sim->host;
    sim->workers = calloc((size_t)n, sizeof(*sim->workers));
    sim->fails = sl_sim_failmap_new();
    if (!sim->host || !sim->workers || !sim->fails || bind_workers(sim, n) ||
        start_threads(sim)) {
        sl_sim_stop(sim);
        return -1;
    }
    *out = sim;
    return 0;
}

int sl_sim_port(const struct sl_sim *sim)
{
    return sim->port;
}

void sl_sim_stop(struct sl_sim *sim)
{
    if (!sim)
        return;
    for (int i = 0; i < sim->n_workers; i++)
        if (sim->workers[i].running)
            event_active(sim->workers[i].stop, EV_READ, 0);
    for (int i = 0; i < sim->n_workers; i++)
        if (sim->workers[i].running)
            pthread_join(sim->workers[i].thread, NULL);
    for (int i = 0; i < sim->n_workers; i++)
        worker_release(&sim->workers[i]);
    sl_sim_failmap_free(sim->fails);
    free(sim->workers);
    free(sim->host);
    free(sim);
}
