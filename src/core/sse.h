/* Incremental server-sent-events reader (WHATWG rules): CR, LF or CRLF line ends,
 * one optional space after the colon, comments, events and UTF-8 split across reads. */
#ifndef SL_SSE_H
#define SL_SSE_H

#include <stddef.h>

#include "core/buf.h"

struct sl_sse_event {
    const char *type; /* "event:" field; "" when absent */
    size_t type_len;
    const char *data; /* data lines joined with '\n'; NUL-terminated */
    size_t data_len;
    int comment;      /* 1: a ":" comment line; its text (after one space) is in data */
};

/* Called once per dispatched event or comment. A non-zero return stops the feed
 * and is returned by sl_sse_feed(). Pointers are valid only during the call. */
typedef int (*sl_sse_event_cb)(void *arg, const struct sl_sse_event *ev);

struct sl_sse_reader {
    struct sl_buf line, data, type;
    int skip_lf;  /* the previous read ended on CR: a leading LF belongs to it */
    int has_data; /* a data: field was seen in the pending event */
};

#define SL_SSE_TOO_BIG (-2)

void sl_sse_reader_init(struct sl_sse_reader *r, size_t max_event);

/* Feeds n bytes. Returns 0, SL_SSE_TOO_BIG when a line or event exceeds the
 * maximum, or the callback's non-zero value. */
int sl_sse_feed(struct sl_sse_reader *r, const char *p, size_t n, sl_sse_event_cb cb, void *arg);

/* True when bytes of an undispatched event are pending (a stream cut mid-event). */
int sl_sse_pending(const struct sl_sse_reader *r);

void sl_sse_reader_release(struct sl_sse_reader *r);

#endif
