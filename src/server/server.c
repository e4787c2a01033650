/* Server lifecycle: load config, start the ledger (and the built-in simulated
 * provider when no provider key is set), bind, run the workers, and handle
 * SIGHUP (reload) and SIGTERM/SIGINT (drain, flush, exit). */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include <curl/curl.h>
#include <event2/thread.h>

#include "core/clock.h"
#include "core/log.h"
#include "meter/catalog.h"
#include "meter/govern.h"
#include "meter/keys.h"
#include "route/route.h"
#include "server/health_check.h"
#include "cache/cache.h"
#include "server/kb_pool.h"
#include "server/internal.h"
#include "server/metrics.h"
#include "server/worker.h"
#include "sim/sim.h"

struct sl_snapshot *sl_snapshot_acquire(struct sl_server *srv)
{
    pthread_mutex_lock(&srv->snap_lock);
    struct sl_snapshot *s = srv->snap;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&srv->snap_lock);
    return s;
}

void sl_snapshot_release(struct sl_snapshot *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        sl_route_health_free(s->health);
        sl_catalog_free(s->catalog);
        sl_config_free(s->cfg);
        free(s);
    }
}

void sl_snapshot_install(struct sl_server *srv, struct sl_config *cfg, struct sl_catalog *catalog)
{
    struct sl_snapshot *s = calloc(1, sizeof(*s));
    struct sl_route_health *health = s ? sl_route_health_new(cfg) : NULL;
    if (!health) {
        free(s);
        sl_catalog_free(catalog);
        sl_config_free(cfg);
        return;
    }
    atomic_init(&s->refs, 1);
    s->cfg = cfg;
    s->catalog = catalog;
    s->health = health;
    pthread_mutex_lock(&srv->snap_lock);
    struct sl_snapshot *old = srv->snap;
    if (old) /* a reload neither closes an open breaker nor forgets latencies */
        sl_route_health_inherit(s->health, old->health);
    srv->snap = s;
    pthread_mutex_unlock(&srv->snap_lock);
    sl_snapshot_release(old);
}

struct sl_keyset *sl_keyset_acquire(struct sl_server *srv)
{
    pthread_mutex_lock(&srv->snap_lock);
    struct sl_keyset *k = srv->keyset;
    if (k)
        atomic_fetch_add(&k->refs, 1);
    pthread_mutex_unlock(&srv->snap_lock);
    return k;
}

void sl_keyset_release(struct sl_keyset *k)
{
    if (k && atomic_fetch_sub(&k->refs, 1) == 1) {
        sl_keys_free(k->keys);
        free(k);
    }
}

int sl_keyset_reload(struct sl_server *srv, const char *store_url)
{
    char err[256];
    struct sl_keyset *k = calloc(1, sizeof(*k));
    if (k)
        k->keys = sl_keys_load(store_url, err, sizeof(err));
    if (!k || !k->keys) {
        sl_error("virtual keys: %s", k ? err : "out of memory");
        free(k);
        return -1;
    }
    atomic_init(&k->refs, 1);
    pthread_mutex_lock(&srv->snap_lock);
    struct sl_keyset *old = srv->keyset;
    srv->keyset = k;
    pthread_mutex_unlock(&srv->snap_lock);
    sl_keyset_release(old);
    return 0;
}

static size_t enabled_providers(const struct sl_config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->nproviders; i++)
        n += cfg->providers[i].enabled;
    return n;
}

/* When no provider can be used, serve the simulated one so that a first run answers. */
static int add_sim(struct sl_server *srv, struct sl_config *cfg)
{
    int want = cfg->sim == 1 || (cfg->sim == -1 && enabled_providers(cfg) == 0);
    if (!want)
        return 0;
    if (!srv->sim) {
        struct sl_sim_opts o = {.host = "127.0.0.1", .ttft_ms = 120, .chunk_delay_ms = 15,
                                .latency_ms = 200, .words_per_chunk = 1, .quiet = 1};
        if (sl_sim_start(&o, &srv->sim))
            return -1;
    }
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", sl_sim_port(srv->sim));
    if (sl_config_add_provider(cfg, "sim", SL_WIRE_OPENAI, url, NULL))
        return -1;
    for (const char *const *m = sl_sim_models; *m; m++)
        if (!sl_config_find_model(cfg, *m) && sl_config_add_model(cfg, *m, "sim", *m))
            return -1;
    /* the sim's reranker, so a knowledge base's stage 2 runs offline too */
    if (!sl_config_find_model(cfg, "sim-rerank") &&
        sl_config_add_model(cfg, "sim-rerank", "sim", "sim-rerank"))
        return -1;
    return 1;
}

static void log_config(const struct sl_config *cfg, int sim, size_t keys)
{
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const struct sl_provider_cfg *p = &cfg->providers[i];
        if (!p->enabled)
            sl_info("provider %s disabled: %s", p->name, p->disabled_reason);
    }
    size_t models = 0;
    for (size_t i = 0; i < cfg->nmodels; i++)
        models += sl_config_find_model(cfg, cfg->models[i].name) != NULL;
    sl_info("%zu provider(s) enabled, %zu model(s) served", enabled_providers(cfg), models);
    if (sim && cfg->sim == 1)
        sl_info("sim: true: serving the built-in simulated provider too (models sim-small, "
                "sim-large, sim-reasoner, sim-rerank)");
    else if (sim)
        sl_info("no provider key is set: serving the built-in simulated provider (models "
                "sim-small, sim-large, sim-reasoner, sim-rerank). Set e.g. DEEPSEEK_API_KEY to use "
                "a real provider.");
    if (keys == 0)
        sl_info("no virtual keys exist: sluice is open to loopback clients only, with any or no "
                "bearer token (create one with 'sluice keys create')");
    else
        sl_info("virtual keys exist (%zu created): every client request needs a live one", keys);
}

static void log_errors(const struct sl_buf *errors)
{
    for (const char *line = errors->ptr, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        sl_error("%.*s", nl ? (int)(nl - line) : (int)strlen(line), line);
    }
}

/* The config and the price catalog it names, both valid, or NULL (problems logged). */
static struct sl_config *load(struct sl_server *srv, int *sim, struct sl_catalog **catalog)
{
    struct sl_config *cfg = NULL;
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    *catalog = NULL;
    if (!srv->config_path)
        cfg = sl_config_default();
    else if (sl_config_load(srv->config_path, &cfg, &errors))
        cfg = NULL;
    if (cfg && !(*catalog = sl_catalog_from_config(cfg, &errors))) {
        sl_config_free(cfg);
        cfg = NULL;
    }
    log_errors(&errors);
    sl_buf_release(&errors);
    if (!cfg)
        return NULL;
    if (srv->listen_override) {
        free(cfg->server.listen);
        cfg->server.listen = strdup(srv->listen_override);
    }
    *sim = add_sim(srv, cfg);
    if (*sim < 0) {
        sl_error("cannot start the built-in simulated provider");
        sl_catalog_free(*catalog);
        sl_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static int split_listen(const char *listen, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= cap)
        return -1;
    const char *h = listen;
    size_t n = (size_t)(colon - listen);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    *port = atoi(colon + 1);
    return 0;
}

static evutil_socket_t bind_one(const struct sockaddr *sa, socklen_t len)
{
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    /* Accepted sockets inherit it: a stream chunk must not wait for the client's
     * delayed ACK of the previous one (Nagle), on a kept-alive connection above all. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, sa, len) || listen(fd, 1024)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One listening socket per worker on the same port (SO_REUSEPORT): the kernel
 * spreads connections, and no accept lock is shared. */
static int bind_all(const char *listen_addr, evutil_socket_t *fds, int n, char *shown, size_t cap)
{
    char host[256];
    int port;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE}, *ai = NULL;
    if (split_listen(listen_addr, host, sizeof(host), &port) ||
        getaddrinfo(host, NULL, &hints, &ai)) {
        sl_error("listen: cannot parse address '%s'", listen_addr);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = ai->ai_addrlen;
    memcpy(&ss, ai->ai_addr, len);
    freeaddrinfo(ai);
    ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port); /* same offset for v6 */
    for (int i = 0; i < n; i++) {
        fds[i] = bind_one((struct sockaddr *)&ss, len);
        if (fds[i] < 0) {
            sl_error("listen: cannot bind %s: %s", listen_addr, strerror(errno));
            while (i--)
                close(fds[i]);
            return -1;
        }
        if (i == 0 && port == 0)
            getsockname(fds[0], (struct sockaddr *)&ss, &len); /* the port picked for port 0 */
    }
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(shown, cap, "%s%s%s:%d", ss.ss_family == AF_INET6 ? "[" : "", host,
             ss.ss_family == AF_INET6 ? "]" : "", port);
    return 0;
}

struct signals {
    struct sl_server *srv;
    struct event_base *base;
    int stopping;
};

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    struct signals *s = arg;
    int sim;
    struct sl_catalog *catalog;
    if (!s->srv->config_path) {
        sl_info("SIGHUP: no config file to reload");
        return;
    }
    struct sl_config *cfg = load(s->srv, &sim, &catalog);
    if (!cfg) {
        sl_warn("SIGHUP: reload failed, keeping the running config");
        return;
    }
    sl_snapshot_install(s->srv, cfg, catalog);
    sl_info("SIGHUP: config reloaded from %s (listen address and workers apply at restart)",
            s->srv->config_path);
    sl_keyset_reload(s->srv, cfg->store);
    sl_ledger_set_retention(s->srv->ledger, cfg->govern.retention_days);
    sl_govern_set_soft(s->srv->govern, cfg->govern.soft_percent);
    struct sl_keyset *k = sl_keyset_acquire(s->srv);
    log_config(cfg, sim > 0, k ? sl_keys_ever(k->keys) : 0);
    sl_keyset_release(k);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
    struct signals *s = arg;
    if (s->stopping++) {
        sl_warn("second signal: exiting without waiting for in-flight requests");
        _exit(1);
    }
    sl_info("%s: draining %d in-flight request(s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
            atomic_load(&s->srv->inflight));
    for (int i = 0; i < s->srv->nworkers; i++)
        sl_worker_drain(&s->srv->workers[i]);
    event_base_loopexit(s->base, NULL);
}

static int worker_count(int configured)
{
    if (configured > 0)
        return configured;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int run_workers(struct sl_server *srv, const struct sl_config *cfg)
{
    int n = worker_count(cfg->server.workers);
    evutil_socket_t *fds = calloc((size_t)n, sizeof(*fds));
    srv->workers = calloc((size_t)n, sizeof(*srv->workers));
    char shown[300];
    int rc = -1;
    if (!fds || !srv->workers || bind_all(cfg->server.listen, fds, n, shown, sizeof(shown)))
        goto out;
    for (int i = 0; i < n; i++) {
        if (sl_worker_init(&srv->workers[i], srv, i, fds[i], &cfg->server) ||
            sl_worker_start(&srv->workers[i])) {
            sl_error("cannot start worker %d", i);
            goto out; /* workers already started are stopped by the caller's drain */
        }
        srv->nworkers = i + 1;
    }
    sl_info("listening on http://%s (%d workers)", shown, n);
    const char *colon = strrchr(shown, ':'); /* the KB's model calls come back over loopback */
    snprintf(srv->self_url, sizeof(srv->self_url), "http://%s:%s",
             shown[0] == '[' ? "[::1]" : "127.0.0.1", colon ? colon + 1 : "4000");
    rc = 0;
out:
    free(fds);
    return rc;
}

static void wait_signals(struct sl_server *srv)
{
    struct event_base *base = event_base_new();
    struct signals s = {srv, base, 0};
    struct event *hup = evsignal_new(base, SIGHUP, on_sighup, &s);
    struct event *term = evsignal_new(base, SIGTERM, on_sigterm, &s);
    struct event *intr = evsignal_new(base, SIGINT, on_sigterm, &s);
    event_add(hup, NULL);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_base_dispatch(base);
    event_free(hup);
    event_free(term);
    event_free(intr);
    event_base_free(base);
}

/* The credential of the knowledge base's calls back into this process. */
static void make_kb_token(struct sl_server *srv)
{
    unsigned char r[24];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (unsigned char)(sl_now_us() >> (i % 8)) ^ (unsigned char)rand();
    memcpy(srv->kb_token, "sk-kb-", 6);
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(srv->kb_token + 6 + 2 * i, 3, "%02x", r[i]);
}

int sl_server_run(const struct sl_serve_opts *opts)
{
    struct sl_server srv = {.config_path = opts->config_path, .listen_override = opts->listen};
    char err[256];
    int sim, rc = 1;
    struct sl_catalog *catalog = NULL;
    pthread_mutex_init(&srv.snap_lock, NULL);
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    srv.started_ms = sl_wall_ms();
    struct sl_config *cfg = load(&srv, &sim, &catalog);
    if (!cfg)
        goto out;
    enum sl_log_level level;
    if (cfg->server.log_level && sl_log_parse_level(cfg->server.log_level, &level) == 0)
        sl_log_set_level(level);
    if (opts->quiet)
        sl_log_set_level(SL_LOG_WARN);
    if (sl_ledger_open(cfg->store, &srv.ledger, err, sizeof(err))) {
        sl_error("store %s: %s", cfg->store, err);
        sl_catalog_free(catalog);
        sl_config_free(cfg);
        goto out;
    }
    srv.cache = sl_cache_new(&cfg->cache, cfg->store, err, sizeof(err));
    if (!srv.cache)
        sl_warn("cache: %s; answers are not cached", err);
    sl_snapshot_install(&srv, cfg, catalog);
    if (!srv.snap) {
        sl_error("out of memory");
        sl_ledger_close(srv.ledger);
        goto out;
    }
    if (sl_keyset_reload(&srv, cfg->store) || sl_server_govern_start(&srv, cfg)) {
        sl_ledger_close(srv.ledger);
        goto out;
    }
    log_config(cfg, sim > 0, sl_keys_ever(srv.keyset->keys));
    struct sl_checker *checker = NULL;
    make_kb_token(&srv);
    if (run_workers(&srv, srv.snap->cfg) == 0 && (srv.kb_pool = sl_kb_pool_start(2)) &&
        sl_checker_start(&srv, &checker) == 0) {
        if (opts->on_ready) {
            rc = opts->on_ready(opts->ready_arg, srv.self_url, srv.kb_token);
        } else {
            wait_signals(&srv);
            rc = 0;
        }
    }
    sl_checker_stop(checker);
    for (int i = 0; i < srv.nworkers; i++)
        sl_worker_drain(&srv.workers[i]);
    sl_kb_pool_stop(srv.kb_pool); /* its last jobs are answered by the draining workers */
    for (int i = 0; i < srv.nworkers; i++)
        sl_worker_join_release(&srv.workers[i]);
    sl_ledger_close(srv.ledger);
    sl_info("stopped: ledger flushed");
out:
    sl_cache_free(srv.cache);
    free(srv.workers);
    sl_govern_free(srv.govern);
    sl_snapshot_release(srv.snap);
    sl_keyset_release(srv.keyset);
    sl_sim_stop(srv.sim);
    sl_metrics_reset();
    curl_global_cleanup();
    libevent_global_shutdown();
    pthread_mutex_destroy(&srv.snap_lock);
    return rc;
}
