/* Every cap on input-driven memory growth, in one place. */
#ifndef SL_LIMITS_H
#define SL_LIMITS_H

#define SL_MAX_REQUEST_BODY   (10u * 1024 * 1024)  /* default server.max_body */
#define SL_MAX_HEADERS_SIZE   (64u * 1024)         /* all request headers together */
#define SL_MAX_UPSTREAM_BODY  (32u * 1024 * 1024)  /* a non-streamed upstream reply */
#define SL_MAX_SSE_EVENT      (4u * 1024 * 1024)   /* one SSE event, data lines joined */
#define SL_MAX_SSE_LINE       (4u * 1024 * 1024)   /* one SSE line */
#define SL_MAX_NAME           128                  /* model, provider and key names */
#define SL_MAX_URL            2048
#define SL_MAX_PROVIDERS      256
#define SL_MAX_MODELS         4096
#define SL_MAX_TOP_KEYS       256                  /* top-level keys of a request body */

#endif
