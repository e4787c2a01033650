/* One text to one vector, asynchronously: the request is built by the embeddings
 * encoders (src/formats/embeddings.c) for the model's provider shape and sent on the
 * worker's curl multi; the reply is parsed into floats. The call lives in its own
 * arena, freed when it ends or is cancelled. */
#include "upstream/embed_one.h"

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/limits.h"
#include "formats/embeddings.h"
#include "meter/estimate.h"

struct sl_embed_one {
    struct sl_arena *arena;
    cJSON *root;
    struct sl_embed_req req;
    enum sl_embed_wire wire;
    const struct sl_model_cfg *m;
    struct sl_upstream_call *call;
    struct sl_upstream_meta meta;
    struct sl_buf body;
    sl_embed_one_cb cb;
    void *arg;
    int64_t start_us;
    const char *text;
};

#define MAX_REPLY   (16u * 1024 * 1024)
#define MAX_WAIT_MS 10000

static void release(struct sl_embed_one *e)
{
    sl_buf_release(&e->body);
    cJSON_Delete(e->root);
    sl_arena_free(e->arena);
}

static void finish(struct sl_embed_one *e, const float *v, int dim, int64_t tokens, int estimated,
                   const char *error)
{
    struct sl_embed_one_result r = {
        .v = v, .dim = dim, .tokens = tokens, .estimated = estimated, .status = e->meta.status,
        .error = error, .latency_us = sl_now_us() - e->start_us,
    };
    e->cb(e->arg, &r);
    release(e);
}

static void on_headers(void *ctx, const struct sl_upstream_meta *meta)
{
    struct sl_embed_one *e = ctx;
    e->meta = *meta;
}

static void on_data(void *ctx, const char *p, size_t n)
{
    struct sl_embed_one *e = ctx;
    sl_buf_append(&e->body, p, n); /* over the cap: the parse below fails */
}

static void on_done(void *ctx, enum sl_upstream_result res, const char *detail)
{
    struct sl_embed_one *e = ctx;
    struct sl_embed_vec vec = {0};
    struct sl_embed_parsed u = {0};
    struct sl_error err;
    e->call = NULL;
    if (res != SL_UP_OK) {
        finish(e, NULL, 0, 0, 0, sl_upstream_result_name(res));
        return;
    }
    if (e->meta.status < 200 || e->meta.status > 299) {
        finish(e, NULL, 0, 0, 0, "the embedding model answered an HTTP error");
        return;
    }
    if (sl_embed_parse_reply(e->wire, e->body.ptr ? e->body.ptr : "", e->body.len, 1, 1u << 20,
                             e->arena, &vec, &u, &err) || vec.dim <= 0) {
        finish(e, NULL, 0, 0, 0, "the embedding reply could not be read");
        return;
    }
    float *f = sl_arena_alloc(e->arena, (size_t)vec.dim * sizeof(float));
    if (!f) {
        finish(e, NULL, 0, 0, 0, "out of memory");
        return;
    }
    for (int i = 0; i < vec.dim; i++)
        f[i] = (float)vec.v[i];
    int64_t tokens = u.usage_present ? u.tokens : sl_estimate_text(e->text, strlen(e->text));
    finish(e, f, vec.dim, tokens, !u.usage_present, NULL);
}

struct sl_embed_one *sl_embed_one_start(struct sl_upstream *up, const struct sl_model_cfg *m,
                                        const char *text, sl_embed_one_cb cb, void *arg)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_embed_one *e = a ? sl_arena_alloc(a, sizeof(*e)) : NULL;
    struct sl_error err;
    struct sl_encoded enc;
    if (!e) {
        sl_arena_free(a);
        return NULL;
    }
    e->arena = a;
    e->m = m;
    e->cb = cb;
    e->arg = arg;
    e->start_us = sl_now_us();
    sl_buf_init(&e->body, MAX_REPLY);
    e->wire = m->p ? sl_embed_wire_of(m->p) : SL_EMBED_AUTO;
    e->root = cJSON_CreateObject();
    char *body = NULL;
    if (e->wire == SL_EMBED_AUTO || !e->root || !cJSON_AddStringToObject(e->root, "model", m->name) ||
        !cJSON_AddStringToObject(e->root, "input", text) ||
        !(body = cJSON_PrintUnformatted(e->root)))
        goto fail;
    char *copy = sl_arena_strndup(a, body, strlen(body));
    size_t len = strlen(body);
    cJSON_free(body);
    e->text = cJSON_GetObjectItemCaseSensitive(e->root, "input")->valuestring;
    if (!copy || sl_embed_request_read(e->root, copy, len, &e->req, &err) ||
        sl_embed_encode(e->wire, &e->req, m, 0, 1, a, &enc))
        goto fail;
    struct sl_upstream_req req = {
        .url = enc.url, .body = enc.body, .body_len = enc.len,
        .headers = enc.headers, .nheaders = enc.nheaders, .timeouts = m->p->timeouts,
    };
    /* One short text: a slow embedding would only delay the answer it tries to save. */
    if (req.timeouts.total_ms > MAX_WAIT_MS)
        req.timeouts.total_ms = MAX_WAIT_MS;
    if (req.timeouts.first_byte_ms > MAX_WAIT_MS)
        req.timeouts.first_byte_ms = MAX_WAIT_MS;
    static const struct sl_upstream_cbs cbs = {on_headers, on_data, on_done};
    e->call = sl_upstream_start(up, &req, &cbs, e);
    if (!e->call)
        goto fail;
    return e;
fail:
    release(e);
    return NULL;
}

void sl_embed_one_cancel(struct sl_embed_one *e)
{
    if (!e)
        return;
    sl_upstream_cancel(e->call);
    release(e);
}
