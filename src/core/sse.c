/* SSE line splitter and field parser. */
#include "core/sse.h"

#include <string.h>

void sl_sse_reader_init(struct sl_sse_reader *r, size_t max_event)
{
    sl_buf_init(&r->line, max_event);
    sl_buf_init(&r->data, max_event);
    sl_buf_init(&r->type, 256);
    r->skip_lf = 0;
    r->has_data = 0;
}

void sl_sse_reader_release(struct sl_sse_reader *r)
{
    sl_buf_release(&r->line);
    sl_buf_release(&r->data);
    sl_buf_release(&r->type);
}

int sl_sse_pending(const struct sl_sse_reader *r)
{
    return r->line.len > 0 || r->has_data;
}

static int dispatch(struct sl_sse_reader *r, sl_sse_event_cb cb, void *arg)
{
    int rc = 0;
    if (r->has_data) {
        if (r->data.len && r->data.ptr[r->data.len - 1] == '\n')
            r->data.ptr[--r->data.len] = '\0';
        struct sl_sse_event ev = {
            .type = r->type.ptr ? r->type.ptr : "",
            .type_len = r->type.len,
            .data = r->data.ptr ? r->data.ptr : "",
            .data_len = r->data.len,
        };
        rc = cb(arg, &ev);
    }
    sl_buf_reset(&r->data);
    sl_buf_reset(&r->type);
    r->has_data = 0;
    return rc;
}

static int process_line(struct sl_sse_reader *r, const char *line, size_t len, sl_sse_event_cb cb,
                        void *arg)
{
    if (len == 0)
        return dispatch(r, cb, arg);
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = (size_t)(line + len - value);
    if (value_len && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 0) {
        struct sl_sse_event ev = {.type = "", .data = value, .data_len = value_len, .comment = 1};
        return cb(arg, &ev);
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        r->has_data = 1;
        if (sl_buf_append(&r->data, value, value_len) || sl_buf_append(&r->data, "\n", 1))
            return SL_SSE_TOO_BIG;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        sl_buf_reset(&r->type);
        if (sl_buf_append(&r->type, value, value_len))
            return SL_SSE_TOO_BIG;
    }
    /* id:, retry: and unknown fields carry nothing sluice uses. */
    return 0;
}

int sl_sse_feed(struct sl_sse_reader *r, const char *p, size_t n, sl_sse_event_cb cb, void *arg)
{
    const char *end = p + n;
    if (r->skip_lf && p < end) {
        if (*p == '\n')
            p++;
        r->skip_lf = 0;
    }
    while (p < end) {
        const char *eol = p;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        if (eol == end) {
            if (sl_buf_append(&r->line, p, (size_t)(end - p)))
                return SL_SSE_TOO_BIG;
            break;
        }
        int rc;
        if (r->line.len) {
            if (sl_buf_append(&r->line, p, (size_t)(eol - p)))
                return SL_SSE_TOO_BIG;
            rc = process_line(r, r->line.ptr, r->line.len, cb, arg);
            sl_buf_reset(&r->line);
        } else {
            rc = process_line(r, p, (size_t)(eol - p), cb, arg);
        }
        if (*eol == '\r') {
            if (eol + 1 < end) {
                if (eol[1] == '\n')
                    eol++;
            } else {
                r->skip_lf = 1;
            }
        }
        p = eol + 1;
        if (rc)
            return rc;
    }
    return 0;
}
