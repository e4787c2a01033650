/* Typed configuration loaded from YAML. A loaded config is immutable: a reload
 * builds a new one and the server swaps snapshots. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"

enum sl_wire { SL_WIRE_OPENAI, SL_WIRE_ANTHROPIC, SL_WIRE_GEMINI };

/* The wire shape of a provider's embeddings API; AUTO follows its kind. */
enum sl_embed_wire { SL_EMBED_AUTO, SL_EMBED_OPENAI, SL_EMBED_DASHSCOPE, SL_EMBED_GEMINI };

/* The wire shape of a provider's rerank API (rerank: key); AUTO follows its preset and
 * kind. JINA is the {model, query, documents, top_n} shape Jina, SiliconFlow and vLLM share. */
enum sl_rerank_wire { SL_RERANK_AUTO, SL_RERANK_JINA, SL_RERANK_COHERE, SL_RERANK_DASHSCOPE };

struct sl_timeouts {
    int connect_ms;    /* TCP + TLS connect */
    int first_byte_ms; /* request sent -> first response byte */
    int idle_ms;       /* between two reads of a stream */
    int total_ms;      /* whole upstream exchange */
};

struct sl_provider_cfg {
    char *name;
    enum sl_wire kind;
    char *base_url;   /* no trailing slash */
    char *api_key;    /* NULL when the provider needs none; never logged */
    int enabled;      /* 0 when api_key was written as ${VAR} and VAR is unset or empty */
    char *disabled_reason; /* e.g. "DEEPSEEK_API_KEY is not set"; NULL when enabled */
    struct sl_timeouts timeouts;
    int line;
    enum sl_embed_wire embeddings; /* embeddings: key; AUTO = by kind */
    char *embeddings_url;  /* embeddings_url: key; NULL = DashScope's public endpoint */
    char preset[32];       /* preset: key (src/providers/); "" = detect from base_url */
    enum sl_rerank_wire rerank; /* rerank: key; AUTO = by preset and kind */
    char *rerank_url;      /* rerank_url: key; NULL = the shape's path under base_url */
};

/* ---- response cache (cache:, and cache: in a group or a model), read by src/cache -- */

/* Zero is "not written" everywhere, so a rule that was never parsed (a model added
 * in code) follows the global cache: value. */
enum sl_cache_when {
    SL_CACHE_UNSET = 0,  /* a group's or model's rule: the global value */
    SL_CACHE_OFF,        /* never looked up nor stored (x-sluice-cache: force too) */
    SL_CACHE_TEMP0,      /* requests with temperature 0, and x-sluice-cache: force */
    SL_CACHE_ALWAYS,     /* every request but x-sluice-cache: skip */
};

enum sl_flag { SL_FLAG_UNSET = 0, SL_FLAG_NO, SL_FLAG_YES };

/* What a group or a model may override; unset fields (0) take the global value. */
struct sl_cache_rule {
    int enabled;        /* enum sl_cache_when */
    int ttl_ms;
    int semantic;       /* enum sl_flag: also look up by meaning (needs embedding_model) */
    double threshold;   /* cosine at or above which a semantic match is a hit */
    int stale_on_error; /* enum sl_flag: serve an expired answer when every deployment failed */
};

enum sl_cache_store { SL_CACHE_MEMORY, SL_CACHE_SQLITE };

struct sl_cache_cfg {
    struct sl_cache_rule rule;      /* the global rule: every field set */
    int max_stale_ms;               /* how long past its ttl an answer may serve as stale */
    size_t max_bytes;               /* the backend's cap on stored answers */
    enum sl_cache_store backend;
    int shared;                     /* enum sl_flag: one cache for every virtual key */
    char embedding_model[SL_MAX_NAME + 1]; /* a configured model; "" = no semantic cache */
    int embedding_model_line;       /* where it was written, for the load's checks */
    int semantic_max_entries;       /* vectors kept in the index */
};

/* limits: on a model or a group (src/meter/govern.c); 0 = no limit of that kind. */
struct sl_limits_cfg {
    int64_t rpm, tpm, concurrency;
};

struct sl_model_cfg {
    char *name;       /* what clients ask for */
    char *provider;   /* provider name */
    char *model;      /* what the provider is sent */
    int64_t context_window; /* 0 = unknown */
    const struct sl_provider_cfg *p; /* resolved; NULL only before validation */
    int line;
    int max_batch;    /* embeddings inputs per upstream request; 0 = the known limit */
    /* Routing (groups:). Prices are USD per million tokens; priced is 0 when neither
     * price_in nor price_out was written (the price catalog will fill them later). */
    double price_in, price_out;
    int priced;
    unsigned capabilities; /* SL_CAP_* it supports; 0 = not written, assumed all */
    struct sl_cache_rule cache; /* cache: of this model */
    struct sl_limits_cfg limits;
};

struct sl_server_cfg {
    char *listen;          /* "HOST:PORT" */
    int workers;           /* 0 = one per core */
    size_t max_body;       /* bytes; default SL_MAX_REQUEST_BODY */
    size_t max_headers;    /* bytes; default SL_MAX_HEADERS_SIZE */
    int read_timeout_ms;   /* slow clients: time to send a whole request */
    int write_timeout_ms;  /* slow clients: time a write may wait */
    int drain_timeout_ms;  /* SIGTERM: how long in-flight requests may finish */
    char *log_level;       /* debug | info | warn | error */
};

/* ---- prices (pricing:), read by src/meter/catalog.c ------------------------------ */

#define SL_MAX_PRICE_OVERRIDES 256
#define SL_MAX_CATALOG_PATH    1024

/* One pricing.overrides item. Fixed arrays, so the list is one allocation. */
struct sl_price_override {
    char model[SL_MAX_NAME + 1]; /* upstream model name */
    char provider[32];           /* preset name; "" = every provider */
    char currency[4];            /* "USD" (default) or "CNY" */
    int64_t input, cached_input, output; /* micro-units per million tokens; cached_input
                                            -1 = not written, the input price */
    int line;
};

struct sl_pricing_cfg {
    char catalog[SL_MAX_CATALOG_PATH]; /* path, relative to the working directory */
    int catalog_line;     /* 0: the default path (a missing file is then no error) */
    char currency[4];     /* reporting currency: "USD" or "CNY" */
    int64_t usd_per_cny;  /* exchange rate in micro-units: 0.14 -> 140000 */
    struct sl_price_override *overrides; /* freed by sl_config_release_pricing */
    size_t noverrides;
};

#define SL_MAX_MASTER_KEY 256

/* ---- budgets:, budget_alert:, retention: (src/meter/govern.c, src/store/) -------- */

#define SL_MAX_TAG_BUDGETS 256

/* One budgets: item: spend of requests carrying a tag, capped per window. */
struct sl_tag_budget {
    char tag[SL_MAX_NAME + 1];   /* "team=search" */
    char limit[64];              /* "50usd/month", as written (sl_budget_parse checked it) */
    int line;
};

struct sl_govern_cfg {
    struct sl_tag_budget *budgets; /* freed by sl_config_free */
    size_t nbudgets;
    int soft_percent;              /* budget_alert: 1..100; 0 = off */
    int retention_days;            /* retention: raw ledger rows kept; 0 = forever */
    /* govern: where the counters live: "memory" or "redis://HOST[:PORT][/DB]" */
    char backend[256];
    int allow_on_error;            /* govern.on_error: allow (1) or deny (0) */
    int lease_ms;                  /* govern.lease: an unsettled admission's life in Redis */
};

/* chunking: one knowledge-base chunking profile (docs/kb.md). Unset fields come from the
 * built-in profile named by base (default "default"). */
#define SL_MAX_CHUNKING_PROFILES 32
struct sl_chunking_cfg {
    char *name, *base;
    char **separators;    /* NULL: base's */
    size_t nseparators;
    int64_t size, overlap; /* -1: base's */
    int unit;              /* -1: base's; else enum sl_chunk_unit */
    int64_t headings;      /* -1: base's; else SL_HEADINGS_* bits */
    int line;
};

struct sl_config {
    char *path;            /* file it was loaded from, or the name given */
    struct sl_server_cfg server;
    char *store;           /* "sqlite://PATH" */
    struct sl_timeouts upstream; /* defaults for every provider */
    int sim;               /* -1 auto (start the built-in sim when no provider is enabled), 0 off, 1 on */
    struct sl_provider_cfg *providers;
    size_t nproviders;
    struct sl_model_cfg *models;
    size_t nmodels;
    struct sl_group_cfg *groups; /* groups: names share one namespace with models */
    size_t ngroups;
    struct sl_pricing_cfg pricing;
    /* master_key: authorises the admin API (/admin/keys); "" = none, admin keys refused.
     * A fixed array so sl_config_free needs no change; never logged or echoed. */
    char master_key[SL_MAX_MASTER_KEY + 1];
    struct sl_cache_cfg cache; /* cache: */
    struct sl_govern_cfg govern;
    struct sl_chunking_cfg *chunking; /* released by sl_config_release_chunking */
    size_t nchunking;
};

/* Loads and validates a YAML file. On success returns 0 and *out (free with
 * sl_config_free). On failure returns -1 and appends one line per problem,
 * "FILE:LINE: message\n", to errors (every problem, not just the first). */
int sl_config_load(const char *path, struct sl_config **out, struct sl_buf *errors);

/* Same, from a string; name is used in error lines. */
int sl_config_parse(const char *yaml, size_t len, const char *name, struct sl_config **out,
                    struct sl_buf *errors);

/* A config with the defaults and no providers (used when no file is given). */
struct sl_config *sl_config_default(void);

/* Adds a provider and a model to cfg (used for the built-in simulated provider).
 * Returns 0 or -1 when out of memory. */
int sl_config_add_provider(struct sl_config *cfg, const char *name, enum sl_wire kind,
                           const char *base_url, const char *api_key);
int sl_config_add_model(struct sl_config *cfg, const char *name, const char *provider,
                        const char *model);

/* Returns the enabled model called name, or NULL. */
const struct sl_model_cfg *sl_config_find_model(const struct sl_config *cfg, const char *name);

void sl_config_free(struct sl_config *cfg);

const char *sl_wire_name(enum sl_wire w);

/* Added for the loader's parts and for other modules that read the same notations. */

/* Parses "openai" | "anthropic" | "gemini". Returns 0, or -1 when unknown. */
int sl_wire_parse(const char *s, enum sl_wire *out);

/* Returns the provider called name (enabled or not), or NULL. The pointer is valid
 * until the next sl_config_add_provider or sl_config_free. */
const struct sl_provider_cfg *sl_config_find_provider(const struct sl_config *cfg,
                                                      const char *name);

/* Parses a duration: "200ms", "10s", "5m", "1h", or a bare integer of milliseconds.
 * Returns 0 and *ms, or -1 when malformed, zero, or above INT_MAX milliseconds. */
int sl_config_parse_duration(const char *s, int *ms);

/* Parses a size: bytes, or with a B, KB/MB/GB (powers of 1000) or KiB/MiB/GiB (powers
 * of 1024) suffix. Returns 0 and *bytes, or -1 when malformed, zero or too large. */
int sl_config_parse_size(const char *s, size_t *bytes);

/* Appends s[0..len) to out with ${VAR}, ${VAR:-default} and $$ expanded; out->ptr is
 * non-NULL afterwards even when the result is empty. The first variable referenced
 * without a default whose value came out unset or empty is copied to unset (""
 * when none). Returns 0, or -1 with *why set to a static message (malformed
 * reference, or the result would exceed out->max). */
int sl_config_expand_env(const char *s, size_t len, struct sl_buf *out, char *unset,
                         size_t unset_size, const char **why);

/* ---- model groups (groups:), read by src/route ---------------------------------- */

enum sl_strategy {
    SL_STRATEGY_FALLBACK, SL_STRATEGY_WEIGHTED, SL_STRATEGY_LATENCY, SL_STRATEGY_COST,
    SL_STRATEGY_TIERS,
};

enum sl_tier { SL_TIER_SIMPLE, SL_TIER_MEDIUM, SL_TIER_COMPLEX, SL_TIER_LONG, SL_TIER_COUNT };

/* What a request may need from a deployment (models: capabilities:). */
enum { SL_CAP_TOOLS = 1, SL_CAP_JSON = 2, SL_CAP_IMAGES = 4, SL_CAP_ALL = 7, SL_CAP_RERANK = 8 };

#define SL_MAX_GROUP_DEPLOYMENTS 256

/* A list of names as written, and what each resolved to after validation. */
struct sl_name_list {
    char **names;
    size_t *index; /* deployments: index into cfg->models; tiers: position in members */
    size_t n;
    int line;      /* of the key; 0 when not written */
};

struct sl_int_list {
    int64_t *v;
    size_t n;
    int line;
};

struct sl_breaker_cfg {
    int window_ms;     /* sliding window of outcomes */
    int min_requests;  /* the error rate is judged only over at least this many */
    double error_rate; /* 0 < rate <= 1: opens at or above it */
    int consecutive;   /* opens after this many failures in a row; 0 = off */
    int cooldown_ms;   /* open -> half-open */
};

/* Hedging: neither set = off. */
struct sl_hedge_cfg {
    int after_ms; /* fixed delay */
    int p95;      /* 1: the deployment's observed p95 time to first token */
};

/* Active health checks: interval 0 = off. */
struct sl_health_check_cfg {
    int interval_ms; /* how often each deployment of the group is probed */
    int timeout_ms;  /* one probe */
};

/* Mirroring: a sample of the group's requests copied to other deployments in the
 * background (src/server/mirror.c). to.n 0 = off. */
struct sl_mirror_cfg {
    struct sl_name_list to; /* index: cfg->models */
    double sample;          /* 0..1: the share of requests copied (default 1) */
};

struct sl_group_cfg {
    char *name;
    enum sl_strategy strategy;
    struct sl_name_list deployments;
    struct sl_int_list weights;               /* weighted only; as many as deployments */
    struct sl_name_list tiers[SL_TIER_COUNT]; /* tiers only */
    struct sl_int_list tier_words;            /* as written */
    int64_t tier_limit[SL_TIER_COUNT - 1];    /* resolved words: simple < [0] <= medium ... */
    int retries;            /* attempts after the first, across all deployments */
    int timeout_ms;         /* the whole request */
    int attempt_timeout_ms; /* one attempt; 0 = the provider's total_timeout */
    struct sl_breaker_cfg breaker;
    struct sl_hedge_cfg hedge;
    size_t *members; /* resolved: cfg->models indexes, deployments then tier-only names */
    size_t nmembers;
    int line;
    struct sl_health_check_cfg health_check;
    struct sl_mirror_cfg mirror;
    struct sl_cache_rule cache; /* cache: of this group */
    struct sl_limits_cfg limits;
};

/* Returns the group called name, or NULL. Valid as long as cfg. */
const struct sl_group_cfg *sl_config_find_group(const struct sl_config *cfg, const char *name);

/* Frees what pricing: allocated and empties its overrides; safe to call twice, so
 * calling it before sl_config_free is always right (sl_config_free is to call it too). */
void sl_config_release_pricing(struct sl_config *cfg);

/* Registers the chunking: profiles of cfg with the chunker (kb/chunk.h), replacing earlier
 * ones of the same name. Returns 0, or -1 with err filled. */
int sl_config_register_chunking(const struct sl_config *cfg, char *err, size_t errlen);
void sl_config_release_chunking(struct sl_config *cfg);

#endif
