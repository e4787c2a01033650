/* The configuration keys of budgets and limits: limits: on a model or group,
 * budgets: per tag, budget_alert:, retention: and govern: (where the counters live;
 * read by src/meter/govern.c and the ledger). The walker that applies them is in load.c. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/loader.h"
#include "meter/govern.h"
#include "meter/govern_redis.h"

#define MAX_LIMIT       1000000000000LL /* requests, tokens or slots: more is a typo */
#define MAX_RETENTION   36500           /* days: a hundred years */

static int parse_count(const char *s, int64_t max, int64_t *out)
{
    int64_t n = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        n = n * 10 + (*s - '0');
        if (n > max)
            return -1;
    }
    *out = n;
    return 0;
}

static int parse_limit(struct loader *ld, const struct scalar *v, void *base,
                       const struct directive *d)
{
    if (parse_count(v->s, MAX_LIMIT, FIELD(int64_t, base, d)) || *FIELD(int64_t, base, d) == 0) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a whole number above 0", v->s);
        *FIELD(int64_t, base, d) = 0;
        return -1;
    }
    return 0;
}

#define LIM(field) offsetof(struct sl_limits_cfg, field)
static const struct directive limits_rows[] = {
    {.key = "rpm", .scalar = parse_limit, .off = LIM(rpm)},
    {.key = "tpm", .scalar = parse_limit, .off = LIM(tpm)},
    {.key = "concurrency", .scalar = parse_limit, .off = LIM(concurrency)},
};
const struct table sl_config_limits_table = TABLE("limits (rpm, tpm, concurrency)", limits_rows);

/* "80%" or "80": a whole percentage from 0 (off) to 100. */
int sl_config_parse_percent(struct loader *ld, const struct scalar *v, void *base,
                            const struct directive *d)
{
    char digits[8];
    int64_t n;
    size_t len = v->len && v->s[v->len - 1] == '%' ? v->len - 1 : v->len;
    if (len == 0 || len >= sizeof(digits)) {
        n = -1;
    } else {
        memcpy(digits, v->s, len);
        digits[len] = '\0';
        if (parse_count(digits, 100, &n))
            n = -1;
    }
    if (n < 0) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a percentage from 0 to 100 (e.g. 80%%)",
                      v->s);
        return -1;
    }
    *FIELD(int, base, d) = (int)n;
    return 0;
}

/* "90d", "90" (days) or "forever". */
int sl_config_parse_retention(struct loader *ld, const struct scalar *v, void *base,
                              const struct directive *d)
{
    char digits[16];
    int64_t n = -1;
    size_t len = v->len && v->s[v->len - 1] == 'd' ? v->len - 1 : v->len;
    if (strcmp(v->s, "forever") == 0) {
        n = 0;
    } else if (len > 0 && len < sizeof(digits)) {
        memcpy(digits, v->s, len);
        digits[len] = '\0';
        if (parse_count(digits, MAX_RETENTION, &n) || n == 0)
            n = -1;
    }
    if (n < 0) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a number of days from 1 to %d (e.g. "
                      "90d) or forever", v->s, MAX_RETENTION);
        return -1;
    }
    *FIELD(int, base, d) = (int)n;
    return 0;
}

static int parse_tag(struct loader *ld, const struct scalar *v, void *base,
                     const struct directive *d)
{
    struct sl_tag_budget *b = base;
    const char *eq = strchr(v->s, '=');
    int ok = eq && eq != v->s && eq[1] && v->len <= SL_MAX_NAME;
    for (size_t i = 0; ok && i < v->len; i++)
        ok = (unsigned char)v->s[i] > ' ' && v->s[i] != '"' && v->s[i] != '\\';
    if (!ok) {
        sl_config_bad(ld, v->line, v->key, "'%.64s' is not a tag NAME=VALUE (e.g. team=search)",
                      v->s);
        return -1;
    }
    memcpy(b->tag, v->s, v->len + 1);
    (void)d;
    return 0;
}

static int parse_budget_limit(struct loader *ld, const struct scalar *v, void *base,
                              const struct directive *d)
{
    struct sl_tag_budget *b = base;
    struct sl_budget parsed;
    if (v->len >= sizeof(b->limit) || sl_budget_parse(v->s, &parsed)) {
        sl_config_bad(ld, v->line, v->key, "'%.64s' is not a budget AMOUNT usd|cny "
                      "[/day|/month|/total] (e.g. 50usd/month)", v->s);
        return -1;
    }
    memcpy(b->limit, v->s, v->len + 1);
    (void)d;
    return 0;
}

static const struct directive budget_rows[] = {
    {.key = "tag", .scalar = parse_tag, .flags = D_REQUIRED},
    {.key = "limit", .scalar = parse_budget_limit, .flags = D_REQUIRED},
};
static const struct table budget_table = TABLE("a budget (tag, limit)", budget_rows);

static void init_budget(void *item, int line)
{
    ((struct sl_tag_budget *)item)->line = line;
}

/* "memory" or "redis://HOST[:PORT][/DB]". */
static int parse_backend(struct loader *ld, const struct scalar *v, void *base,
                         const struct directive *d)
{
    char host[256];
    int port, db;
    struct sl_govern_cfg *g = base;
    if (strcmp(v->s, "memory") != 0 &&
        (v->len >= sizeof(g->backend) ||
         sl_gov_redis_parse_url(v->s, host, sizeof(host), &port, &db))) {
        sl_config_bad(ld, v->line, v->key, "'%.64s' is not memory or redis://HOST[:PORT][/DB] "
                      "(e.g. redis://127.0.0.1:6379/0; DB 0 to 15)", v->s);
        return -1;
    }
    memcpy(g->backend, v->s, v->len + 1);
    (void)d;
    return 0;
}

static int parse_on_error(struct loader *ld, const struct scalar *v, void *base,
                          const struct directive *d)
{
    struct sl_govern_cfg *g = base;
    if (strcmp(v->s, "deny") != 0 && strcmp(v->s, "allow") != 0) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not deny or allow", v->s);
        return -1;
    }
    g->allow_on_error = strcmp(v->s, "allow") == 0;
    (void)d;
    return 0;
}

static int parse_lease(struct loader *ld, const struct scalar *v, void *base,
                       const struct directive *d)
{
    struct sl_govern_cfg *g = base;
    if (sl_config_parse_duration(v->s, &g->lease_ms) || g->lease_ms < 1000) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a duration of 1s or more (e.g. 10m)",
                      v->s);
        return -1;
    }
    (void)d;
    return 0;
}

static const struct directive govern_rows[] = {
    {.key = "backend", .scalar = parse_backend, .def = "memory"},
    {.key = "on_error", .scalar = parse_on_error, .def = "deny"},
    {.key = "lease", .scalar = parse_lease, .def = "10m"},
};
const struct table sl_config_govern_table = TABLE("govern (backend, on_error, lease)",
                                                  govern_rows);

const struct list sl_config_budgets_list = {
    &budget_table, sizeof(struct sl_tag_budget), SL_MAX_TAG_BUDGETS,
    offsetof(struct sl_config, govern.budgets), offsetof(struct sl_config, govern.nbudgets),
    init_budget};
