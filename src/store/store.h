/* The persistent store behind the ledger (and later keys and the knowledge base).
 * One small vtable, one file per backend: sqlite.c today, postgres.c later. */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

struct sl_usage_row;

/* Return codes of the store functions; the human text goes to err. */
enum {
    SL_STORE_OK = 0,
    SL_STORE_ERROR = -1,   /* anything else: I/O, SQL, bad URL, out of memory */
    SL_STORE_MISSING = -2, /* SL_STORE_MUST_EXIST was given and there is no database */
    SL_STORE_BUSY = -3,    /* locked or out of space: worth retrying later */
    SL_STORE_NOT_FOUND = -4, /* no row with that id */
};

/* Flags of sl_store_open. */
#define SL_STORE_MUST_EXIST 1 /* fail with SL_STORE_MISSING instead of creating */

/* Per-model sums over the usage table. */
struct sl_usage_total {
    char model[SL_MAX_NAME];
    int64_t requests;
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens;
    int64_t estimated; /* rows whose tokens sluice estimated */
    int64_t errors;    /* rows with status >= 400 */
};

/* How sl_store_usage_groups groups rows. */
enum sl_usage_by {
    SL_BY_MODEL,    /* the model the client asked for */
    SL_BY_PROVIDER,
    SL_BY_DAY,      /* "YYYY-MM-DD", UTC */
    SL_BY_MONTH,    /* "YYYY-MM", UTC */
    SL_BY_KEY,      /* virtual key name */
    SL_BY_TAG,      /* one group per tag; untagged rows in the "" group */
    SL_BY_UPSTREAM, /* the model the provider was sent (else the asked one), and provider */
};

/* Sums over the rows of one group (and one currency) for the cost reports. */
struct sl_usage_group {
    char group[SL_MAX_NAME];    /* the model, provider, key, day or month */
    char provider[SL_MAX_NAME]; /* SL_BY_UPSTREAM only, else "" */
    char currency[4];           /* of cost_micros; "" for rows recorded unpriced */
    int64_t requests;           /* request rows (final = 1) */
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens; /* every row */
    int64_t cost_micros;        /* every row */
    int64_t unpriced;           /* rows with tokens but no known price */
    int64_t cache_hits;         /* request rows answered from the cache (hit or stale) */
    int64_t saved_micros;       /* what those answers cost when they were made */
};

/* A virtual key as stored (src/meter/keys.c). Never the secret: only its SHA-256. */
#define SL_KEY_ID_SIZE     24   /* "key_" + 16 hex digits + NUL */
#define SL_KEY_HASH_SIZE   65   /* SHA-256 in hex + NUL */
#define SL_KEY_PREFIX_SIZE 19   /* "sk-sluice-" + 8 characters + NUL */
#define SL_KEY_BUDGET_SIZE 64
#define SL_KEY_LIST_SIZE   1024 /* models and tags, comma-separated */

struct sl_key {
    char id[SL_KEY_ID_SIZE];
    char name[SL_MAX_NAME + 1];
    char hash[SL_KEY_HASH_SIZE];
    char prefix[SL_KEY_PREFIX_SIZE]; /* shown in lists so people can tell keys apart */
    int64_t created_ms;
    int64_t expires_ms;              /* 0 = never */
    int64_t revoked_ms;              /* 0 = live */
    char budget[SL_KEY_BUDGET_SIZE]; /* "100usd/month"; "" = none */
    int64_t rpm, tpm;                /* 0 = no limit */
    char models[SL_KEY_LIST_SIZE];   /* "deepseek-*,qwen-*"; "" = every model */
    char tags[SL_KEY_LIST_SIZE];     /* "team=search,env=prod"; "" = none */
    int64_t concurrency;             /* requests in flight at once; 0 = no limit */
};

/* One row for `sluice compare`: the own row of a request that was mirrored, or one
 * of its mirrored copies. */
struct sl_compare_row {
    int mirror;                      /* 0: the request's own (final) row; 1: a copy */
    char provider[SL_MAX_NAME];
    char upstream_model[SL_MAX_NAME];
    int64_t latency_us, ttft_us;     /* ttft_us -1: unknown */
    int64_t completion_tokens;
    int64_t cost_micros;
    char currency[4];
    int status;
    int agree;                       /* copies: 1 same answer as the request's, 0 not,
                                        -1 unknown (either had no answer); own rows -1 */
};

struct sl_store;

/* What a backend implements. A store is used by one thread at a time. */
struct sl_store_ops {
    const char *scheme; /* "sqlite" for sqlite://PATH */
    int (*open)(const char *rest, int flags, struct sl_store **out, char *err, size_t errlen);
    int (*insert_usage)(struct sl_store *s, const struct sl_usage_row *rows, size_t n, char *err,
                        size_t errlen);
    int (*usage_totals)(struct sl_store *s, int64_t since_ms, struct sl_usage_total **out,
                        size_t *n, char *err, size_t errlen);
    void (*close)(struct sl_store *s);
    int (*usage_groups)(struct sl_store *s, int64_t since_ms, enum sl_usage_by by,
                        struct sl_usage_group **out, size_t *n, char *err, size_t errlen);
    int (*insert_key)(struct sl_store *s, const struct sl_key *k, char *err, size_t errlen);
    int (*list_keys)(struct sl_store *s, struct sl_key **out, size_t *n, char *err,
                     size_t errlen);
    int (*revoke_key)(struct sl_store *s, const char *id, int64_t now_ms, char *err,
                      size_t errlen);
    int (*compare_rows)(struct sl_store *s, int64_t since_ms, const char *group,
                        struct sl_compare_row **out, size_t *n, char *err, size_t errlen);
    int (*prune_usage)(struct sl_store *s, int64_t before_ms, int64_t *deleted, char *err,
                       size_t errlen);
};

/* Every backend's store starts with this. */
struct sl_store {
    const struct sl_store_ops *ops;
};

/* Opens the store named by url ("sqlite://PATH"; PATH may be relative), creating
 * the database and schema when missing (unless SL_STORE_MUST_EXIST) and applying
 * pending migrations. Returns SL_STORE_OK and *out (close with sl_store_close),
 * or a negative code with a message in err. */
int sl_store_open(const char *url, int flags, struct sl_store **out, char *err, size_t errlen);

/* Splits "scheme://rest". Returns a pointer to rest and the scheme's length in
 * *scheme_len, or NULL when url has no "://" or an empty rest. */
const char *sl_store_parse_url(const char *url, size_t *scheme_len);

/* Inserts n rows in one transaction: all of them or none. Returns SL_STORE_OK,
 * SL_STORE_BUSY (retry later) or SL_STORE_ERROR, with a message in err. */
static inline int sl_store_insert_usage(struct sl_store *s, const struct sl_usage_row *rows,
                                        size_t n, char *err, size_t errlen)
{
    return s->ops->insert_usage(s, rows, n, err, errlen);
}

/* Sums the rows with ts_ms >= since_ms per model, ordered by model. On success
 * *out is a malloc'd array of *n totals (the caller frees it; NULL when *n is 0). */
static inline int sl_store_usage_totals(struct sl_store *s, int64_t since_ms,
                                        struct sl_usage_total **out, size_t *n, char *err,
                                        size_t errlen)
{
    return s->ops->usage_totals(s, since_ms, out, n, err, errlen);
}

/* Sums the rows with ts_ms >= since_ms per group and currency, ordered by group,
 * provider, currency. On success *out is a malloc'd array of *n groups (the caller
 * frees it; NULL when *n is 0). */
static inline int sl_store_usage_groups(struct sl_store *s, int64_t since_ms,
                                        enum sl_usage_by by, struct sl_usage_group **out,
                                        size_t *n, char *err, size_t errlen)
{
    return s->ops->usage_groups(s, since_ms, by, out, n, err, errlen);
}

/* Inserts one key. Returns SL_STORE_OK, SL_STORE_BUSY or SL_STORE_ERROR (also for a
 * duplicate id or hash), with a message in err. */
static inline int sl_store_insert_key(struct sl_store *s, const struct sl_key *k, char *err,
                                      size_t errlen)
{
    return s->ops->insert_key(s, k, err, errlen);
}

/* Every key, revoked ones included, oldest first. On success *out is a malloc'd array
 * of *n keys (the caller frees it; NULL when *n is 0). */
static inline int sl_store_list_keys(struct sl_store *s, struct sl_key **out, size_t *n,
                                     char *err, size_t errlen)
{
    return s->ops->list_keys(s, out, n, err, errlen);
}

/* Marks key id revoked at now_ms; revoking a revoked key keeps its first time and
 * succeeds. Returns SL_STORE_OK, SL_STORE_NOT_FOUND when no key has that id, or an error. */
static inline int sl_store_revoke_key(struct sl_store *s, const char *id, int64_t now_ms,
                                      char *err, size_t errlen)
{
    return s->ops->revoke_key(s, id, now_ms, err, errlen);
}

/* The rows of mirrored requests (and their copies) with ts_ms >= since_ms, of group
 * (NULL: every group). On success *out is a malloc'd array of *n rows (the caller
 * frees it; NULL when *n is 0). */
static inline int sl_store_compare_rows(struct sl_store *s, int64_t since_ms, const char *group,
                                        struct sl_compare_row **out, size_t *n, char *err,
                                        size_t errlen)
{
    return s->ops->compare_rows(s, since_ms, group, out, n, err, errlen);
}

/* Retention: deletes the raw usage rows of the whole days before before_ms (their daily
 * roll-ups stay, so reports over those days still add up). *deleted says how many. */
static inline int sl_store_prune_usage(struct sl_store *s, int64_t before_ms, int64_t *deleted,
                                       char *err, size_t errlen)
{
    return s->ops->prune_usage(s, before_ms, deleted, err, errlen);
}

/* Closes the store and frees it. NULL is allowed. */
static inline void sl_store_close(struct sl_store *s)
{
    if (s)
        s->ops->close(s);
}

#endif
