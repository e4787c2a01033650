/* The in-memory counter table behind budgets and rate limits (see govern.h): one
 * hash table of scopes, one lock taken once per admission and once per settlement.
 * With a Redis backend (govern_redis.c) admit and settle go there instead. */
#include "meter/govern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "meter/cost.h"
#include "meter/govern_redis.h"
#include "meter/ratelimit.h"
#include "store/store.h"

#define NBUCKETS 16384 /* a power of two */

struct entry {
    struct entry *next;    /* in its bucket */
    uint64_t hash;
    struct entry *all;     /* every entry, newest first, for /metrics */
    char name[SL_GOV_NAME];
    struct sl_rate_window requests, tokens;
    int64_t inflight;
    /* the budget window being counted; has_budget 0 until a scope brings one */
    int has_budget;
    struct sl_budget budget;
    int64_t window_start, window_end, spent, reserved; /* end: first ms after the window */
    int soft_fired;        /* the soft threshold was crossed in this window */
    uint64_t soft_crossings;
};

/* Spend already in the ledger when the table was loaded, per scope and window. */
struct seed {
    char name[SL_GOV_NAME];
    enum sl_budget_window window;
    int64_t window_start;
    int64_t usd, cny;
};

struct sl_govern {
    pthread_mutex_t lock;
    struct entry *buckets[NBUCKETS];
    struct entry *all;
    struct seed *seeds;
    size_t nseeds;
    int soft_percent;
    atomic_uint_fast64_t refused[SL_GOV_UNAVAILABLE + 1];
    struct sl_gov_redis *redis;   /* NULL: the counters are in this table */
    int allow_on_error;
    atomic_int_fast64_t redis_warned_s; /* the second of the last Redis error logged */
};

/* Logs a Redis failure at most once a second: an outage fails every request. */
static void redis_warn(struct sl_govern *g, int64_t now_ms, const char *what, const char *err)
{
    int64_t last = atomic_load(&g->redis_warned_s), now_s = now_ms / 1000;
    if (last != now_s && atomic_compare_exchange_strong(&g->redis_warned_s, &last, now_s))
        sl_warn("budgets: %s%s", what, err);
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

struct sl_govern *sl_govern_new(int soft_percent)
{
    struct sl_govern *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    pthread_mutex_init(&g->lock, NULL);
    g->soft_percent = soft_percent;
    return g;
}

void sl_govern_set_soft(struct sl_govern *g, int soft_percent)
{
    pthread_mutex_lock(&g->lock);
    g->soft_percent = soft_percent;
    pthread_mutex_unlock(&g->lock);
}

void sl_govern_free(struct sl_govern *g)
{
    if (!g)
        return;
    for (struct entry *e = g->all, *next; e; e = next) {
        next = e->all;
        free(e);
    }
    free(g->seeds);
    sl_gov_redis_free(g->redis);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

int sl_govern_use_redis(struct sl_govern *g, const char *url, int allow_on_error,
                        int64_t lease_ms, char *err, size_t errlen)
{
    struct sl_gov_redis *r = sl_gov_redis_new(url, lease_ms, err, errlen);
    if (!r)
        return -1;
    sl_gov_redis_free(g->redis);
    g->redis = r;
    g->allow_on_error = allow_on_error;
    if (sl_gov_redis_ping(r, err, errlen))
        sl_warn("budgets: %s; requests are %s until it answers", err,
                allow_on_error ? "let through uncounted" : "refused");
    return 0;
}

/* ---- loading spend from the ledger --------------------------------------------------- */

static int add_seeds(struct sl_govern *g, const struct sl_usage_group *grp, size_t n,
                     const char *prefix, enum sl_budget_window w, int64_t start)
{
    struct seed *v = realloc(g->seeds, (g->nseeds + n + 1) * sizeof(*v));
    if (!v)
        return -1;
    g->seeds = v;
    for (size_t i = 0; i < n; i++) {
        struct seed *s = &g->seeds[g->nseeds++];
        memset(s, 0, sizeof(*s));
        snprintf(s->name, sizeof(s->name), "%s%.*s", prefix, SL_MAX_NAME, grp[i].group);
        s->window = w;
        s->window_start = start;
        /* one group per currency: a key billed in both keeps both sums */
        if (strcmp(grp[i].currency, "CNY") == 0)
            s->cny = grp[i].cost_micros;
        else
            s->usd = grp[i].cost_micros;
    }
    return 0;
}

int sl_govern_load(struct sl_govern *g, struct sl_store *s, int64_t now_ms, char *err,
                   size_t errlen)
{
    static const enum sl_budget_window ws[] = {SL_WINDOW_TOTAL, SL_WINDOW_DAY, SL_WINDOW_MONTH};
    static const struct { enum sl_usage_by by; const char *prefix; } scopes[] = {
        {SL_BY_KEY, "key:"}, {SL_BY_TAG, "tag:"},
    };
    for (size_t w = 0; w < 3; w++) {
        int64_t start = sl_budget_window_start(ws[w], now_ms);
        for (size_t k = 0; k < 2; k++) {
            struct sl_usage_group *grp = NULL;
            size_t n = 0;
            int rc = sl_store_usage_groups(s, start, scopes[k].by, &grp, &n, err, errlen);
            if (rc == SL_STORE_OK && add_seeds(g, grp, n, scopes[k].prefix, ws[w], start)) {
                snprintf(err, errlen, "out of memory");
                rc = SL_STORE_ERROR;
            }
            free(grp);
            if (rc != SL_STORE_OK)
                return -1;
        }
    }
    return 0;
}

/* What the ledger held for name in this window when the table was loaded, in currency. */
static int64_t seeded(const struct sl_govern *g, const char *name, const struct sl_budget *b,
                      int64_t start, int64_t usd_per_cny)
{
    int64_t sum = 0;
    for (size_t i = 0; i < g->nseeds; i++) {
        const struct seed *s = &g->seeds[i];
        if (s->window != b->window || s->window_start != start || strcmp(s->name, name) != 0)
            continue;
        sum += sl_cost_convert(s->usd, "USD", b->currency, usd_per_cny) +
               sl_cost_convert(s->cny, "CNY", b->currency, usd_per_cny);
    }
    return sum;
}

/* ---- the table ----------------------------------------------------------------------- */

static struct entry *find_or_add(struct sl_govern *g, const char *name)
{
    uint64_t full = hash(name), h = full & (NBUCKETS - 1);
    for (struct entry *e = g->buckets[h]; e; e = e->next)
        if (e->hash == full && strcmp(e->name, name) == 0)
            return e;
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->hash = full;
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->next = g->buckets[h];
    g->buckets[h] = e;
    e->all = g->all;
    g->all = e;
    return e;
}

/* The first millisecond after the window that starts at start. */
static int64_t window_end(enum sl_budget_window w, int64_t start)
{
    if (w == SL_WINDOW_TOTAL)
        return INT64_MAX;
    if (w == SL_WINDOW_DAY)
        return start + 86400000LL;
    return sl_budget_window_start(SL_WINDOW_MONTH, start + 32 * 86400000LL);
}

/* Brings e's budget state to the scope's budget and the window holding now: a new
 * window starts from what the ledger held for it at load (0 for one begun since). */
static void roll_budget(struct sl_govern *g, struct entry *e, const struct sl_budget *b,
                        int64_t now_ms, int64_t usd_per_cny)
{
    int same = e->has_budget && e->budget.window == b->window &&
               strcmp(e->budget.currency, b->currency) == 0;
    if (same && now_ms >= e->window_start && now_ms < e->window_end) {
        e->budget.limit_micros = b->limit_micros; /* a reload may change the amount */
        return;
    }
    if (e->has_budget && strcmp(e->budget.currency, b->currency) != 0)
        e->reserved = sl_cost_convert(e->reserved, e->budget.currency, b->currency, usd_per_cny);
    int64_t start = sl_budget_window_start(b->window, now_ms);
    e->has_budget = 1;
    e->budget = *b;
    e->window_start = start;
    e->window_end = window_end(b->window, start);
    e->spent = seeded(g, e->name, b, start, usd_per_cny);
    e->soft_fired = g->soft_percent &&
                    (__int128)e->spent * 100 >= (__int128)b->limit_micros * g->soft_percent;
}

/* Fills r for the first limit scope s fails, or returns 0 when it passes all. */
static int check(struct entry *e, const struct sl_gov_scope *s,
                 const struct sl_gov_ask *a, int64_t cost, struct sl_gov_refusal *r)
{
    int64_t now_s = a->now_ms / 1000;
    memset(r, 0, sizeof(*r));
    if (s->concurrency && e->inflight + 1 > s->concurrency) {
        *r = (struct sl_gov_refusal){.reason = SL_GOV_CONCURRENCY, .limit = s->concurrency,
                                     .used = e->inflight, .retry_after_ms = 1000};
    } else if (s->rpm && sl_rate_sum(&e->requests, now_s) + 1 > s->rpm) {
        *r = (struct sl_gov_refusal){.reason = SL_GOV_RPM, .limit = s->rpm,
                                     .used = sl_rate_sum(&e->requests, now_s),
                                     .retry_after_ms = sl_rate_wait_ms(&e->requests, a->now_ms,
                                                                       s->rpm - 1)};
    } else if (s->tpm && sl_rate_sum(&e->tokens, now_s) + a->tokens > s->tpm) {
        int64_t target = s->tpm - a->tokens;
        *r = (struct sl_gov_refusal){.reason = SL_GOV_TPM, .limit = s->tpm,
                                     .used = sl_rate_sum(&e->tokens, now_s),
                                     .retry_after_ms = target < 0 ? 60000
                                                       : sl_rate_wait_ms(&e->tokens, a->now_ms,
                                                                         target)};
    } else if (s->budget.limit_micros && e->spent + e->reserved + cost > s->budget.limit_micros) {
        *r = (struct sl_gov_refusal){.reason = SL_GOV_BUDGET, .limit = s->budget.limit_micros,
                                     .used = e->spent + e->reserved};
        memcpy(r->currency, s->budget.currency, 4);
        if (s->budget.window != SL_WINDOW_TOTAL)
            r->retry_after_ms = e->window_end - a->now_ms;
    }
    if (r->reason != SL_GOV_OK)
        snprintf(r->scope, sizeof(r->scope), "%s", s->name);
    return r->reason != SL_GOV_OK;
}

/* The tightest request and token limits among the scopes, for the x-ratelimit-* headers. */
static void headers(struct entry *const *es, const struct sl_gov_scope *scopes, size_t n,
                    int64_t now_ms, struct sl_gov_headers *h)
{
    int64_t now_s = now_ms / 1000;
    memset(h, 0, sizeof(*h));
    for (size_t i = 0; i < n; i++) {
        if (scopes[i].rpm) {
            int64_t left = scopes[i].rpm - sl_rate_sum(&es[i]->requests, now_s);
            if (!h->limit_requests || left < h->remaining_requests) {
                h->limit_requests = scopes[i].rpm;
                h->remaining_requests = left > 0 ? left : 0;
                h->reset_requests_ms = sl_rate_wait_ms(&es[i]->requests, now_ms, 0);
            }
        }
        if (scopes[i].tpm) {
            int64_t left = scopes[i].tpm - sl_rate_sum(&es[i]->tokens, now_s);
            if (!h->limit_tokens || left < h->remaining_tokens) {
                h->limit_tokens = scopes[i].tpm;
                h->remaining_tokens = left > 0 ? left : 0;
                h->reset_tokens_ms = sl_rate_wait_ms(&es[i]->tokens, now_ms, 0);
            }
        }
    }
}

/* Admission in Redis: the costs in each budget's currency and this replica's ledger
 * spend for each window (Redis keeps its own once it has a counter) go with it. */
static enum sl_gov_reason redis_admit(struct sl_govern *g, const struct sl_gov_scope *scopes,
                                      size_t n, const struct sl_gov_ask *a,
                                      struct sl_gov_ticket *t, struct sl_gov_refusal *r)
{
    int64_t cost[SL_GOV_MAX_SCOPES], seed[SL_GOV_MAX_SCOPES];
    char err[256] = "";
    for (size_t i = 0; i < n; i++) {
        const struct sl_budget *b = &scopes[i].budget;
        cost[i] = seed[i] = 0;
        if (!b->limit_micros)
            continue;
        cost[i] = sl_cost_convert(a->cost_micros, a->currency, b->currency, a->usd_per_cny);
        seed[i] = seeded(g, scopes[i].name, b, sl_budget_window_start(b->window, a->now_ms),
                         a->usd_per_cny);
    }
    enum sl_gov_reason reason = sl_gov_redis_admit(g->redis, scopes, n, a, cost, seed, t, r, err,
                                                   sizeof(err));
    if (reason == SL_GOV_UNAVAILABLE) {
        redis_warn(g, a->now_ms, "", err);
        memset(r, 0, sizeof(*r));
        t->n = 0;
        t->active = 0;
        if (g->allow_on_error)
            return SL_GOV_OK; /* let through uncounted: nothing to settle */
        r->reason = SL_GOV_UNAVAILABLE;
        snprintf(r->scope, sizeof(r->scope), "%s", n ? scopes[0].name : "");
    }
    if (reason != SL_GOV_OK)
        atomic_fetch_add(&g->refused[reason], 1);
    return reason;
}

enum sl_gov_reason sl_govern_admit(struct sl_govern *g, const struct sl_gov_scope *scopes,
                                   size_t n, const struct sl_gov_ask *a,
                                   struct sl_gov_ticket *t, struct sl_gov_refusal *r)
{
    struct entry *es[SL_GOV_MAX_SCOPES];
    int64_t cost[SL_GOV_MAX_SCOPES];
    int64_t now_s = a->now_ms / 1000;
    t->n = 0;
    t->active = 0;
    memset(r, 0, sizeof(*r));
    n = n < SL_GOV_MAX_SCOPES ? n : SL_GOV_MAX_SCOPES;
    if (g->redis)
        return redis_admit(g, scopes, n, a, t, r);
    pthread_mutex_lock(&g->lock);
    size_t i = 0;
    for (; i < n && r->reason == SL_GOV_OK; i++) {
        es[i] = find_or_add(g, scopes[i].name);
        if (!es[i])
            break; /* out of memory: this scope is not counted, the request is not refused */
        cost[i] = 0;
        if (scopes[i].budget.limit_micros) {
            roll_budget(g, es[i], &scopes[i].budget, a->now_ms, a->usd_per_cny);
            cost[i] = sl_cost_convert(a->cost_micros, a->currency, scopes[i].budget.currency,
                                      a->usd_per_cny);
        }
        check(es[i], &scopes[i], a, cost[i], r);
    }
    n = i;
    if (r->reason == SL_GOV_OK) {
        for (i = 0; i < n; i++) {
            struct sl_gov_hold *h = &t->h[t->n++];
            memset(h, 0, sizeof(*h));
            h->entry = es[i];
            h->counted = 1;
            es[i]->inflight++;
            sl_rate_add(&es[i]->requests, now_s, 1);
            sl_rate_add(&es[i]->tokens, now_s, a->tokens);
            h->tokens = a->tokens;
            h->token_sec = now_s;
            if (scopes[i].budget.limit_micros) {
                es[i]->reserved += cost[i];
                h->reserved = cost[i];
                h->window_start = es[i]->window_start;
                h->budgeted = 1;
            }
        }
        t->active = 1;
    }
    headers(es, scopes, n, a->now_ms, &t->hdr);
    pthread_mutex_unlock(&g->lock);
    if (r->reason != SL_GOV_OK) {
        t->n = 0;
        atomic_fetch_add(&g->refused[r->reason], 1);
    }
    return r->reason;
}

/* Adds a settled cost to e's window; returns 1 when it crossed the soft threshold. */
static int spend(struct sl_govern *g, struct entry *e, const struct sl_gov_hold *h,
                 const struct sl_gov_spend *s)
{
    e->reserved -= h->reserved;
    if (e->reserved < 0)
        e->reserved = 0;
    if (h->window_start != e->window_start)
        return 0; /* begun in a window that has ended: the ledger dates it there */
    e->spent += sl_cost_convert(s->cost_micros, s->currency, e->budget.currency, s->usd_per_cny);
    if (!g->soft_percent || e->soft_fired ||
        (__int128)e->spent * 100 < (__int128)e->budget.limit_micros * g->soft_percent)
        return 0;
    e->soft_fired = 1;
    e->soft_crossings++;
    return 1;
}

/* Settlement in Redis; a replica logs the soft threshold when its own settle crossed it. */
static void redis_settle(struct sl_govern *g, struct sl_gov_ticket *t, const struct sl_gov_spend *s)
{
    int64_t cost[SL_GOV_MAX_SCOPES], after[SL_GOV_MAX_SCOPES];
    char err[256] = "";
    int pct = g->soft_percent;
    for (size_t i = 0; i < t->n; i++)
        cost[i] = t->h[i].budgeted ? sl_cost_convert(s->cost_micros, s->currency,
                                                     t->h[i].currency, s->usd_per_cny)
                                   : 0;
    t->active = 0;
    if (sl_gov_redis_settle(g->redis, t, s, cost, after, err, sizeof(err))) {
        redis_warn(g, s->now_ms, "settle not counted (leases free its holds later): ", err);
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct sl_gov_hold *h = &t->h[i];
        __int128 mark = (__int128)h->limit_micros * pct;
        if (!pct || !h->budgeted || after[i] < 0 || (__int128)after[i] * 100 < mark ||
            (__int128)(after[i] - cost[i]) * 100 >= mark)
            continue;
        char a[32], b[32];
        sl_cost_format(after[i], a, sizeof(a));
        sl_cost_format(h->limit_micros, b, sizeof(b));
        sl_warn("budget: %s: %s of %s %s passed its soft threshold (%d%%)", h->name, a, b,
                h->currency, pct);
    }
}

void sl_govern_settle(struct sl_govern *g, struct sl_gov_ticket *t, const struct sl_gov_spend *s)
{
    char crossed[SL_GOV_MAX_SCOPES][SL_GOV_NAME + 96];
    int ncrossed = 0;
    if (!t->active)
        return;
    if (g->redis) {
        redis_settle(g, t, s);
        return;
    }
    int64_t now_s = s->now_ms / 1000;
    pthread_mutex_lock(&g->lock);
    int pct = g->soft_percent;
    for (size_t i = 0; i < t->n; i++) {
        struct sl_gov_hold *h = &t->h[i];
        struct entry *e = h->entry;
        e->inflight -= h->counted;
        sl_rate_correct(&e->tokens, h->token_sec, now_s, s->tokens - h->tokens);
        if (h->budgeted && spend(g, e, h, s)) {
            char a[32], b[32];
            sl_cost_format(e->spent, a, sizeof(a));
            sl_cost_format(e->budget.limit_micros, b, sizeof(b));
            snprintf(crossed[ncrossed++], sizeof(crossed[0]), "%s: %s of %s %s", e->name, a, b,
                     e->budget.currency);
        }
    }
    pthread_mutex_unlock(&g->lock);
    t->active = 0;
    for (int i = 0; i < ncrossed; i++)
        sl_warn("budget: %s passed its soft threshold (%d%%)", crossed[i], pct);
}

/* ---- observing ------------------------------------------------------------------------ */

static void label(struct sl_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sl_buf_append(b, "\\", 1);
        sl_buf_append(b, s, 1);
    }
}

void sl_govern_metrics(struct sl_govern *g, struct sl_buf *out)
{
    static const char *const reasons[] = {"", "budget", "rpm", "tpm", "concurrency",
                                          "unavailable"};
    static const struct { const char *name, *help; } series[] = {
        {"sluice_budget_limit_micros", "Budget of the window, micro-units of its currency."},
        {"sluice_budget_spent_micros", "Spend settled in the budget window."},
        {"sluice_budget_reserved_micros", "Reserved by requests in flight."},
        {"sluice_budget_soft_crossings_total", "Times the soft threshold was crossed."},
    };
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    for (size_t k = 0; k < 4; k++) {
        sl_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", series[k].name, series[k].help,
                      series[k].name, k == 3 ? "counter" : "gauge");
        for (struct entry *e = g->all; e; e = e->all) {
            if (!e->has_budget)
                continue;
            int64_t v[] = {e->budget.limit_micros, e->spent, e->reserved,
                           (int64_t)e->soft_crossings};
            sl_buf_printf(out, "%s{scope=\"", series[k].name);
            label(out, e->name);
            sl_buf_printf(out, "\",currency=\"%s\"} %lld\n", e->budget.currency, (long long)v[k]);
        }
    }
    pthread_mutex_unlock(&g->lock);
    sl_buf_puts(out, "# HELP sluice_govern_refused_total Requests refused by a budget or limit.\n"
                     "# TYPE sluice_govern_refused_total counter\n");
    for (int r = SL_GOV_BUDGET; r <= SL_GOV_UNAVAILABLE; r++)
        sl_buf_printf(out, "sluice_govern_refused_total{reason=\"%s\"} %llu\n", reasons[r],
                      (unsigned long long)atomic_load(&g->refused[r]));
}

int sl_govern_budget_state(struct sl_govern *g, const char *scope, int64_t *spent,
                           int64_t *reserved)
{
    int found = -1;
    pthread_mutex_lock(&g->lock);
    for (struct entry *e = g->all; e; e = e->all) {
        if (e->has_budget && strcmp(e->name, scope) == 0) {
            *spent = e->spent;
            *reserved = e->reserved;
            found = 0;
        }
    }
    pthread_mutex_unlock(&g->lock);
    return found;
}
