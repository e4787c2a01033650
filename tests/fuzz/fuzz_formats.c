/* libFuzzer: every decoder. The first byte picks the target; the rest is the input:
 * a client request for each client format (decoded, then encoded back as a reply and
 * a stream), or an upstream reply, error body or SSE stream for each upstream format. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"

static const char *const clients[] = {"openai", "anthropic"};
static const enum sl_wire wires[] = {SL_WIRE_OPENAI, SL_WIRE_ANTHROPIC, SL_WIRE_GEMINI};

static int on_chunk(void *arg, const cJSON *chunk)
{
    const struct sl_client_format *cf = arg;
    (void)cf;
    return cJSON_IsObject(chunk) ? 0 : 1;
}

struct feed {
    const struct sl_upstream_format *uf;
    void *st;
    struct sl_usage *u;
};

static int on_event(void *arg, const struct sl_sse_event *ev)
{
    struct feed *f = arg;
    struct sl_error e;
    return f->uf->stream_event(f->st, ev, on_chunk, NULL, f->u, &e) != 0;
}

static void fuzz_client(const struct sl_client_format *cf, const char *p, size_t n)
{
    struct sl_error e;
    cJSON *req = cf->decode_request(p, n, &e);
    if (!req)
        return;
    struct sl_buf out = SL_BUF_INIT(1 << 24);
    struct sl_usage u = {1, 2, 0, 0, 1};
    void *st = calloc(1, cf->stream_size ? cf->stream_size : 1);
    cf->stream_init(st, "req_fuzz", "m", 1);
    sl_error_set(&e, 502, "upstream_error", "fuzz");
    cf->stream_error(st, &e, &out);
    cf->stream_end(st, &u, &out);
    cf->stream_release(st);
    free(st);
    cf->error_body(&e, &out);
    sl_buf_release(&out);
    cJSON_Delete(req);
}

static void fuzz_upstream(const struct sl_upstream_format *uf, uint8_t mode, const char *p, size_t n)
{
    struct sl_usage u = {0};
    struct sl_error e;
    if (mode % 3 == 0) {
        cJSON *c = uf->decode_reply(p, n, "m", &u, &e);
        cJSON_Delete(c);
    } else if (mode % 3 == 1) {
        uf->decode_error(400 + mode % 200, p, n, &e);
    } else {
        struct sl_sse_reader r;
        void *st = calloc(1, uf->stream_size ? uf->stream_size : 1);
        struct feed f = {uf, st, &u};
        uf->stream_init(st, "req_fuzz", "m");
        sl_sse_reader_init(&r, 1 << 16);
        if (sl_sse_feed(&r, p, n, on_event, &f) == 0)
            uf->stream_end(st, on_chunk, NULL, &u);
        sl_sse_reader_release(&r);
        uf->stream_release(st);
        free(st);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t pick = data[0], mode = data[1];
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    if (pick & 1) {
        const struct sl_client_format *cf = sl_client_format(clients[(pick >> 1) % 2]);
        if (cf)
            fuzz_client(cf, p, n);
    } else {
        const struct sl_upstream_format *uf = sl_upstream_format(wires[(pick >> 1) % 3]);
        if (uf)
            fuzz_upstream(uf, mode, p, n);
    }
    return 0;
}
