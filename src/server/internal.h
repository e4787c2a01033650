/* What the server's files share: the server, its workers, config snapshots and
 * the per-request exchange. Not used outside src/server/. */
#ifndef SL_SERVER_INTERNAL_H
#define SL_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>

#include "config/config.h"
#include "core/arena.h"
#include "core/buf.h"
#include "meter/ledger.h"

/* An immutable config plus a reference count; a reload swaps in a new one while
 * requests keep the one they started with. */
struct sl_snapshot {
    atomic_int refs;
    struct sl_config *cfg;
    struct sl_route_health *health; /* breakers and latencies of cfg's deployments */
    struct sl_catalog *catalog;     /* prices (catalog/ and pricing: in cfg) */
};

struct sl_server;

struct sl_worker {
    struct sl_server *srv;
    int index;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct sl_upstream *up;
    struct event *drain_ev;   /* made active by the main thread on SIGTERM */
    int draining;
    int inflight;             /* exchanges alive on this worker */
    struct sl_mirror *mirrors; /* mirrored copies in flight (src/server/mirror.c) */
};

/* The virtual keys in force, replaced whole when an admin call changes them. */
struct sl_keyset {
    atomic_int refs;
    struct sl_keys *keys;
};

struct sl_server {
    struct sl_worker *workers;
    int nworkers;
    pthread_mutex_t snap_lock;     /* guards snap and keyset (the pointers, not their contents) */
    struct sl_snapshot *snap;
    struct sl_keyset *keyset;
    struct sl_ledger *ledger;
    struct sl_cache *cache;        /* the response cache (src/cache/); NULL = none */
    struct sl_govern *govern;      /* budgets and rate limits, shared by every worker */
    struct sl_sim *sim;
    const char *config_path;
    const char *listen_override;
    atomic_int inflight;
    int64_t started_ms;
    struct sl_kb_pool *kb_pool;    /* the knowledge base's threads (server/kb_pool.c) */
    char self_url[64];             /* http://127.0.0.1:PORT: the KB's model calls come back here */
    char kb_token[65];             /* internal credential of those calls, random per process */
};

/* The key table: acquire for a request, release after; reload after an admin change
 * (or a config reload). Reload returns 0, or -1 with the old table kept. */
struct sl_keyset *sl_keyset_acquire(struct sl_server *srv);
void sl_keyset_release(struct sl_keyset *k);
int sl_keyset_reload(struct sl_server *srv, const char *store_url);

/* Takes a reference on the current snapshot; release with sl_snapshot_release. */
struct sl_snapshot *sl_snapshot_acquire(struct sl_server *srv);
void sl_snapshot_release(struct sl_snapshot *s);
/* Installs cfg and its price catalog as the current snapshot (takes ownership). */
struct sl_catalog;
void sl_snapshot_install(struct sl_server *srv, struct sl_config *cfg, struct sl_catalog *catalog);

struct sl_exchange;
struct sl_plan;
typedef void (*sl_gone_cb)(struct sl_exchange *x);

/* One client request from arrival to the last byte, with its arena. */
struct sl_exchange {
    struct sl_arena *arena;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct sl_worker *w;
    struct sl_snapshot *snap;
    struct sl_keyset *keyset;
    char id[40];
    int64_t t_start_us;
    int64_t overhead_us;       /* time spent in sluice so far, excluding upstream waits */
    int64_t seg_start_us;      /* start of the current in-sluice segment, 0 when none */
    int client_gone;
    int req_ours;              /* the client left and libevent detached req: we free it */
    struct event *watch;       /* notices a client that closes while we wait */
    int streaming;             /* the reply was started with evhttp_send_reply_start */
    int status;                /* status sent to the client */
    sl_gone_cb on_gone;        /* the handler's reaction to a client disconnect */
    sl_gone_cb on_finish;      /* runs once when the exchange ends, before the arena goes */
    void *state;               /* the handler's own state, in the arena */
    struct sl_plan *plan;      /* the attempts of a chat or messages request */
    const struct sl_model_cfg *model; /* the deployment the row is billed on */
    struct sl_usage_row row;   /* the ledger row, filled along the way */
    char key_id[32];           /* the virtual key's id ("" = none): the cache's tenant */
    const struct sl_key *key;  /* the virtual key that authenticated it (x->keyset's), or NULL */
    struct sl_gov_ticket *ticket;   /* what budgets and limits hold for it, or NULL */
    int64_t attempts_cost_micros;   /* cost of its failed attempts' rows (billed anyway) */
    const char *reply_extra;   /* JSON members spliced into a 200 JSON-object reply (KB sources) */
    const char *stream_prelude; /* bytes sent first on a started stream (KB sources chunk) */
};

typedef void (*sl_handler_fn)(struct sl_exchange *x);

/* Sends a whole reply with a JSON body and ends the exchange. */
void sl_exchange_reply(struct sl_exchange *x, int status, const char *content_type,
                       const char *body, size_t len);
/* Sends an error reply in the client's format and ends the exchange. */
struct sl_client_format;
struct sl_error;
void sl_exchange_send_error(struct sl_exchange *x, const struct sl_client_format *cf,
                            const struct sl_error *e);
/* Sends an OpenAI-shaped error reply and ends the exchange. */
void sl_exchange_error(struct sl_exchange *x, int status, const char *type, const char *message,
                       const char *param, const char *code);
/* Starts a streamed reply (status 200, text/event-stream). */
void sl_exchange_stream_start(struct sl_exchange *x);
/* Sends bytes of a started stream at once. */
void sl_exchange_stream_write(struct sl_exchange *x, const char *p, size_t n);
/* Ends a started stream and the exchange. */
void sl_exchange_stream_end(struct sl_exchange *x);
/* Ends an exchange whose client is gone (no reply possible). */
void sl_exchange_abandon(struct sl_exchange *x);
/* Adds the x-request-id and overhead headers; called by the reply functions. */
void sl_exchange_add_headers(struct sl_exchange *x, const char *content_type);

/* Overhead accounting: sluice's own work happens between begin and end; the
 * waits for the upstream fall outside. */
void sl_exchange_overhead_begin(struct sl_exchange *x);
void sl_exchange_overhead_end(struct sl_exchange *x);

/* Fills the ledger row's provider, upstream model and tokens: the usage the provider
 * reported, else estimates from the prompt messages and est_completion (marked so). */
struct sl_usage;
struct sl_model_cfg;
typedef struct cJSON cJSON;
void sl_exchange_account(struct sl_exchange *x, const struct sl_model_cfg *m,
                         const struct sl_usage *u, const cJSON *messages, int64_t est_completion);
/* The error for an upstream exchange that got no HTTP answer, or lost it: 502, or 504
 * for a timeout, with the code the router reads ("upstream_unreachable",
 * "upstream_timeout"); counted in /metrics. */
enum sl_upstream_result;
void sl_exchange_upstream_failure(struct sl_error *e, const char *provider,
                                  enum sl_upstream_result r, const char *detail);

/* The client left: marks the row (499 unless a stream had begun) and ends the exchange.
 * The caller has already stopped its upstream work and accounted. */
void sl_exchange_client_left(struct sl_exchange *x);

/* Records the time to first token, once. */
void sl_exchange_first_token(struct sl_exchange *x);

/* Budgets and rate limits (govern_gate.c). What a request asks for at admission: */
struct sl_limits_cfg;
struct sl_admit_req {
    const char *scope_kind;   /* "model" or "group" */
    const char *scope_name;   /* the name the client asked for */
    const struct sl_limits_cfg *limits; /* its limits:, or NULL */
    int64_t prompt_tokens;    /* estimated */
    int64_t max_tokens;       /* the request's cap on output; 0 = none given */
    int output_possible;      /* 0 for embeddings: nothing is written back */
    const struct sl_model_cfg *const *cands; /* deployments it may be billed on */
    size_t ncands;
};
/* Admits the request under its key's, tags' and model's budgets and limits. Returns 0
 * to go on (x-ratelimit-* headers added when a limit applies); else the exchange was
 * answered 429 in cf's format and is over. */
int sl_exchange_admit(struct sl_exchange *x, const struct sl_client_format *cf,
                      const struct sl_admit_req *a);
/* Settles what admission charged on the row's real tokens and cost; finish() calls it. */
void sl_exchange_settle(struct sl_exchange *x);
/* Creates srv->govern with the spend so far loaded from cfg's store, and sets the
 * ledger's retention. Returns 0, or -1 after logging why. */
int sl_server_govern_start(struct sl_server *srv, const struct sl_config *cfg);

/* Handlers (one file each). */
void sl_chat_handle(struct sl_exchange *x);
void sl_embeddings_handle(struct sl_exchange *x);
void sl_rerank_handle(struct sl_exchange *x);
void sl_models_handle(struct sl_exchange *x);
void sl_health_handle(struct sl_exchange *x);
void sl_metrics_handle(struct sl_exchange *x);
void sl_admin_health_handle(struct sl_exchange *x);
void sl_messages_handle(struct sl_exchange *x);
void sl_count_tokens_handle(struct sl_exchange *x);
/* The knowledge-base API under /v1/kb (server/kb_api.c), and `model: "kb:NAME"` on
 * /v1/chat/completions: takes ownership of req (the decoded body). */
void sl_kb_handle(struct sl_exchange *x);
void sl_kb_model_chat(struct sl_exchange *x, cJSON *req, const char *name);

/* Returns 1 when the request's virtual key may use the model or group name; otherwise
 * answers 403 (code "model_not_allowed") in format cf and returns 0. */
int sl_exchange_model_allowed(struct sl_exchange *x, const struct sl_client_format *cf,
                              const char *name);

/* Parses an endpoint's JSON body into *root (set as soon as it parses: the caller owns
 * and frees it): a JSON object without duplicate keys whose "model" is a non-empty
 * string, copied into the ledger row. Returns 0, or -1 after answering a 400 in
 * OpenAI's shape. */
int sl_exchange_read_request(struct sl_exchange *x, const char *body, size_t len, cJSON **root);

/* Reads the whole request body (already in memory); returns a view. */
const char *sl_exchange_body(struct sl_exchange *x, size_t *len);

/* Virtual keys' admin API (admin_keys.c): POST /admin/keys, GET /admin/keys and
 * DELETE /admin/keys/ID (the route matches the "/admin/keys/" prefix). */
void sl_admin_keys_create_handle(struct sl_exchange *x);
void sl_admin_keys_list_handle(struct sl_exchange *x);
void sl_admin_keys_revoke_handle(struct sl_exchange *x);
/* GET /admin/usage (admin_usage.c): the spend report, as `sluice cost report`. */
void sl_admin_usage_handle(struct sl_exchange *x);
/* Returns 1 when the request carries "Authorization: Bearer <master_key>" (compared in
 * constant time). Otherwise replies itself, 403 when no master key is configured and
 * 401 for a missing or wrong one, in OpenAI's error shape, and returns 0: the exchange
 * is then over and the caller must not touch it. */
int sl_admin_authorized(struct sl_exchange *x);

#endif
