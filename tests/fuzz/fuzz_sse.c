/* libFuzzer: the SSE reader, fed the same bytes whole and cut at a point chosen by the
 * input; both feeds must dispatch exactly the same events. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/sse.h"

struct log {
    struct sl_buf b;
};

static int on_event(void *arg, const struct sl_sse_event *ev)
{
    struct log *l = arg;
    sl_buf_append(&l->b, ev->comment ? "#" : "E", 1);
    sl_buf_append(&l->b, ev->type, ev->type_len);
    sl_buf_append(&l->b, "|", 1);
    sl_buf_append(&l->b, ev->data, ev->data_len);
    sl_buf_append(&l->b, "\0", 1);
    return 0;
}

static void run(const uint8_t *p, size_t n, size_t cut, struct log *l)
{
    struct sl_sse_reader r;
    sl_sse_reader_init(&r, 1 << 16);
    sl_buf_init(&l->b, 1 << 24);
    int a = sl_sse_feed(&r, (const char *)p, cut, on_event, l);
    if (a == 0)
        sl_sse_feed(&r, (const char *)p + cut, n - cut, on_event, l);
    sl_sse_reader_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut = data[0] % size;
    struct log whole, split;
    run(data + 1, size - 1, size - 1, &whole);
    run(data + 1, size - 1, cut > size - 1 ? size - 1 : cut, &split);
    if (whole.b.len != split.b.len || (whole.b.len && memcmp(whole.b.ptr, split.b.ptr, whole.b.len)))
        abort();
    sl_buf_release(&whole.b);
    sl_buf_release(&split.b);
    return 0;
}
