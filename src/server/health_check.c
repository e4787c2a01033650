/* The probe loop: every tick, the deployments whose probe is due are asked for their model
 * list (cheap, free at every provider, and it proves the key still works), all at once
 * through one curl multi handle; each answer is an outcome for the router. */
#include "server/health_check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/clock.h"
#include "core/log.h"
#include "route/route.h"
#include "server/internal.h"

#define TICK_MS 50
#define MAX_PROBES 256

struct sl_checker {
    struct sl_server *srv;
    pthread_t thread;
    atomic_int stop;
    int64_t *due_us;        /* per cfg->models index of the snapshot it was sized for */
    size_t ndue;
    const struct sl_config *sized_for;
};

struct probe {
    CURL *easy;
    struct curl_slist *headers;
    size_t model;
};

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    return size * n;
}

static struct curl_slist *probe_headers(const struct sl_provider_cfg *p, char *buf, size_t cap)
{
    struct curl_slist *h = NULL;
    if (p->kind == SL_WIRE_ANTHROPIC) {
        h = curl_slist_append(h, "anthropic-version: 2023-06-01");
        if (p->api_key)
            snprintf(buf, cap, "x-api-key: %s", p->api_key);
    } else if (p->kind == SL_WIRE_GEMINI) {
        if (p->api_key)
            snprintf(buf, cap, "x-goog-api-key: %s", p->api_key);
    } else if (p->api_key) {
        snprintf(buf, cap, "Authorization: Bearer %s", p->api_key);
    }
    if (p->api_key)
        h = curl_slist_append(h, buf);
    return h;
}

static int probe_start(CURLM *multi, struct probe *pr, const struct sl_model_cfg *m, int timeout_ms)
{
    char url[SL_MAX_URL + 32], auth[1024] = "";
    const struct sl_provider_cfg *p = m->p;
    snprintf(url, sizeof(url), "%s%s", p->base_url, p->kind == SL_WIRE_ANTHROPIC ? "/v1/models" : "/models");
    pr->easy = curl_easy_init();
    pr->headers = probe_headers(p, auth, sizeof(auth));
    explicit_bzero(auth, sizeof(auth));
    if (!pr->easy)
        return -1;
    curl_easy_setopt(pr->easy, CURLOPT_URL, url);
    curl_easy_setopt(pr->easy, CURLOPT_HTTPHEADER, pr->headers);
    curl_easy_setopt(pr->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(pr->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(pr->easy, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(pr->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(pr->easy, CURLOPT_PRIVATE, pr);
    return curl_multi_add_handle(multi, pr->easy) == CURLM_OK ? 0 : -1;
}

/* What a probe's answer means to the router. A model list that does not exist (404,
 * 405) still proves the server is up; a refused key or a 5xx does not. */
static struct sl_route_outcome outcome(CURL *easy, CURLcode rc)
{
    struct sl_route_outcome o = {.result = SL_OUTCOME_OK, .retry_after_ms = -1};
    long status = 0;
    curl_off_t start = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &start);
    o.ttft_us = start;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        o.result = SL_OUTCOME_TIMEOUT;
    else if (rc != CURLE_OK)
        o.result = SL_OUTCOME_CONNECT;
    else if ((status < 200 || status >= 300) && status != 404 && status != 405) {
        o.result = SL_OUTCOME_HTTP;
        o.status = (int)status;
    }
    return o;
}

static void run_probes(struct sl_snapshot *snap, struct probe *probes, size_t n, int timeout_ms)
{
    CURLM *multi = curl_multi_init();
    if (!multi)
        return;
    for (size_t i = 0; i < n; i++)
        if (probe_start(multi, &probes[i], &snap->cfg->models[probes[i].model], timeout_ms))
            probes[i].model = SIZE_MAX;
    int running = 1;
    while (running) {
        curl_multi_perform(multi, &running);
        if (running)
            curl_multi_poll(multi, NULL, 0, TICK_MS, NULL);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left))) {
        struct probe *pr = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&pr);
        if (msg->msg == CURLMSG_DONE && pr && pr->model != SIZE_MAX) {
            struct sl_route_outcome o = outcome(msg->easy_handle, msg->data.result);
            sl_route_observe(snap->health, pr->model, &o, sl_now_us());
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (probes[i].easy) {
            curl_multi_remove_handle(multi, probes[i].easy);
            curl_easy_cleanup(probes[i].easy);
        }
        curl_slist_free_all(probes[i].headers);
    }
    curl_multi_cleanup(multi);
}

/* The deployments whose probe is due now, and the timeout for this round. */
static size_t due_probes(struct sl_checker *c, const struct sl_config *cfg, int64_t now,
                         struct probe *out, int *timeout_ms)
{
    size_t n = 0;
    for (size_t g = 0; g < cfg->ngroups; g++) {
        const struct sl_group_cfg *grp = &cfg->groups[g];
        if (grp->health_check.interval_ms <= 0)
            continue;
        for (size_t i = 0; i < grp->nmembers && n < MAX_PROBES; i++) {
            size_t m = grp->members[i];
            if (m >= c->ndue || c->due_us[m] > now || !cfg->models[m].p->enabled)
                continue;
            c->due_us[m] = now + (int64_t)grp->health_check.interval_ms * 1000;
            if (grp->health_check.timeout_ms > *timeout_ms)
                *timeout_ms = grp->health_check.timeout_ms;
            out[n++] = (struct probe){.model = m};
        }
    }
    return n;
}

static void tick(struct sl_checker *c, struct probe *probes)
{
    struct sl_snapshot *snap = sl_snapshot_acquire(c->srv);
    const struct sl_config *cfg = snap->cfg;
    if (c->sized_for != cfg) { /* a reload: every probe is due at once */
        free(c->due_us);
        c->due_us = calloc(cfg->nmodels ? cfg->nmodels : 1, sizeof(*c->due_us));
        c->ndue = c->due_us ? cfg->nmodels : 0;
        c->sized_for = cfg;
    }
    int timeout_ms = 0;
    size_t n = due_probes(c, cfg, sl_now_us(), probes, &timeout_ms);
    if (n)
        run_probes(snap, probes, n, timeout_ms);
    sl_snapshot_release(snap);
}

static void *checker_main(void *arg)
{
    struct sl_checker *c = arg;
    struct probe *probes = calloc(MAX_PROBES, sizeof(*probes));
    while (probes && !atomic_load(&c->stop)) {
        memset(probes, 0, MAX_PROBES * sizeof(*probes));
        tick(c, probes);
        struct timespec ts = {0, TICK_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(probes);
    free(c->due_us);
    return NULL;
}

int sl_checker_start(struct sl_server *srv, struct sl_checker **out)
{
    struct sl_checker *c = calloc(1, sizeof(*c));
    *out = NULL;
    if (!c)
        return -1;
    c->srv = srv;
    if (pthread_create(&c->thread, NULL, checker_main, c)) {
        sl_error("cannot start the health-check thread");
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void sl_checker_stop(struct sl_checker *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, 1);
    pthread_join(c->thread, NULL);
    free(c);
}
