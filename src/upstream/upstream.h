/* Upstream HTTP client: libcurl multi driven by one worker's libevent loop.
 * One sl_upstream per worker (its own connection pool); calls never cross workers. */
#ifndef SL_UPSTREAM_H
#define SL_UPSTREAM_H

#include <stddef.h>

#include "config/config.h"

struct event_base;
struct sl_upstream;
struct sl_upstream_call;

enum sl_upstream_result {
    SL_UP_OK = 0,
    SL_UP_UNREACHABLE,      /* DNS, refused, TLS handshake: no HTTP answer */
    SL_UP_TIMEOUT_CONNECT,
    SL_UP_TIMEOUT_FIRST_BYTE,
    SL_UP_TIMEOUT_IDLE,
    SL_UP_TIMEOUT_TOTAL,
    SL_UP_BROKEN,           /* connection cut or invalid HTTP after the answer began */
    SL_UP_TOO_BIG,          /* a non-streamed reply exceeded SL_MAX_UPSTREAM_BODY */
};

/* What the upstream said besides the body; valid from on_headers to on_done. */
struct sl_upstream_meta {
    int status;
    char content_type[128];
    char retry_after[64];     /* "" when absent */
    char retry_after_ms[32];  /* retry-after-ms (OpenAI, Azure) */
    char reset_requests[32];  /* x-ratelimit-reset-requests, a Go duration */
    char reset_tokens[32];    /* x-ratelimit-reset-tokens */
    char request_id[128];     /* x-request-id / request-id of the provider */
};

struct sl_upstream_cbs {
    /* Once, before the first on_data (also for an empty body). */
    void (*on_headers)(void *ctx, const struct sl_upstream_meta *meta);
    /* Body bytes as they arrive. */
    void (*on_data)(void *ctx, const char *p, size_t n);
    /* Exactly once, last, unless the call was cancelled. */
    void (*on_done)(void *ctx, enum sl_upstream_result result, const char *detail);
};

struct sl_upstream_req {
    const char *url;
    const char *body; /* must stay valid until on_done or cancel */
    size_t body_len;
    const char *const *headers; /* "Name: value" lines */
    int nheaders;
    struct sl_timeouts timeouts;
};

struct sl_upstream *sl_upstream_new(struct event_base *base);
/* Cancels every call still running (without callbacks) and frees the pool. */
void sl_upstream_free(struct sl_upstream *up);

/* Starts a POST. Returns the call, or NULL (callbacks never run) when curl could
 * not be set up. The request's strings are copied except body. */
struct sl_upstream_call *sl_upstream_start(struct sl_upstream *up, const struct sl_upstream_req *req,
                                           const struct sl_upstream_cbs *cbs, void *ctx);

/* Stops a call at once; no callback runs after this returns. Safe from inside
 * the call's own callbacks. */
void sl_upstream_cancel(struct sl_upstream_call *call);

/* Calls in flight on this pool. */
int sl_upstream_active(const struct sl_upstream *up);

const char *sl_upstream_result_name(enum sl_upstream_result r);

#endif
