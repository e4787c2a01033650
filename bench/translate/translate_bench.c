/* Translation cost per request, per whole reply and per stream chunk, for each
 * client -> upstream direction sluice serves. Runs the library's own vtables
 * (src/formats/format.h) on prepared bytes: no sockets, no event loop, no curl.
 *
 *   translate_bench [--data DIR] [--rounds N] [--scale K] [--only NAME]
 *                   [--part request|reply|stream] [--no-time] [--dump]
 *
 * --no-time runs the loops without reading the clock, for callgrind: run it under
 * `valgrind --tool=callgrind --collect-atstart=no`; each loop toggles collection on and
 * off around itself and dumps its own profile ("request:NAME", "reply:NAME",
 * "stream:NAME"); divide its Ir by the count the program prints. --scale K divides the
 * iteration counts by K (instruction counts per operation do not depend on it).
 * --dump prints what each direction produces once, to check that the work is real.
 *
 * What one iteration is, per direction (mirrors src/server/chat.c, translate.c and
 * messages.c; the server's static helpers are copied below where they are needed):
 *   request: arena + client decode_request + (fast path: sl_provider_edits +
 *            sl_json_apply_edits | pass-through: splice of "model" | translation:
 *            cJSON_Duplicate + upstream encode) + arena free.
 *   reply:   fast path: parse + usage + estimate (the bytes are relayed as they are);
 *            pass-through: sniff_usage on the body; translation: upstream decode_reply
 *            + estimate + client encode_reply.
 *   chunk:   one sl_sse_feed of one upstream event, with everything the server does
 *            for it in the callback (fast path: one cJSON parse, usage, finish and
 *            estimate, re-emit; translation: upstream stream_event -> canonical chunk
 *            -> client stream_chunk; pass-through: copy out + sniff_usage). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(s)
#endif

#include "config/config.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/sse.h"
#include "formats/format.h"
#include "formats/openai.h"
#include "meter/usage.h"
#include "providers/providers.h"

#define N_EVENTS 200
static int N_REQUEST = 2000, N_REPLY = 2000;
static int N_STREAM = 500; /* x 200 events = 100,000 chunks per round */

static int g_time = 1;
static volatile size_t g_sink; /* keeps results observable */

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "translate_bench: %s\n", what);
    exit(1);
}

/* ---- providers and models ---- */

static struct sl_provider_cfg prov[3];
static struct sl_model_cfg model[3];

static void setup_models(void)
{
    static const char *names[3] = {"openai", "anthropic", "gemini"};
    static const char *urls[3] = {"https://api.openai.com/v1", "https://api.anthropic.com",
                                  "https://generativelanguage.googleapis.com/v1beta"};
    static const char *models[3] = {"gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929",
                                    "gemini-2.5-flash"};
    for (int i = 0; i < 3; i++) {
        prov[i].name = (char *)names[i];
        prov[i].kind = (enum sl_wire)i; /* SL_WIRE_OPENAI, _ANTHROPIC, _GEMINI */
        prov[i].base_url = (char *)urls[i];
        prov[i].api_key = (char *)"sk-bench-0123456789abcdef";
        prov[i].enabled = 1;
        model[i].name = (char *)"bench-model";
        model[i].provider = (char *)names[i];
        model[i].model = (char *)models[i];
        model[i].p = &prov[i];
    }
}

/* ---- inputs ---- */

struct bytes {
    char *p;
    size_t n;
};

static struct bytes read_file(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "translate_bench: cannot open %s\n", path);
        exit(1);
    }
    struct bytes b = {0};
    fseek(f, 0, SEEK_END);
    b.n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc(b.n + 1);
    if (!b.p || fread(b.p, 1, b.n, f) != b.n)
        die("read failed");
    b.p[b.n] = 0;
    fclose(f);
    while (b.n && (b.p[b.n - 1] == '\n' || b.p[b.n - 1] == '\r'))
        b.p[--b.n] = 0; /* an SDK sends no trailing newline */
    return b;
}

/* A stream: N_EVENTS upstream events, each the bytes of one read. */
struct stream_bytes {
    struct bytes ev[N_EVENTS];
    int n;
    size_t total;
};

/* Text deltas: ~5 to 12 bytes each, like a model's tokens-per-chunk. */
static const char *const words[] = {
    "The rate", " right now", " is about", " 0.92", " euros", " per US", " dollar,", " so 500",
    " USD comes", " to roughly", " 460 EUR.", " The 4th", " is still", " a good", " museum day:",
    " showers", " are expected", " from late", " morning,", " so start", " at the Mus\xc3\xa9" "e",
    " d'Orsay", " at opening", " time and", " keep the", " Luxembourg", " walk for", " the 5th.",
    "\n\n- Take", " line 12", " to Solf\xc3\xa9rino", " (step-free", " exit on", " rue de",
    " Lille)", "\n- Book", " a timed", " ticket", " online", " to skip", " the queue",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))
/* Tool-call arguments, streamed in pieces. */
static const char *const arg_pieces[] = {
    "", "{\"", "amo", "unt\"", ":", "500", ",\"", "from", "\":\"", "US", "D\",\"", "to\"",
    ":\"E", "UR", "\"}",
};
#define NARGS (int)(sizeof(arg_pieces) / sizeof(arg_pieces[0])) /* 15 */

static char *quoted(const char *s)
{
    struct sl_buf b = SL_BUF_INIT(4096);
    if (sl_json_quote(&b, s, strlen(s)))
        die("quote");
    return b.ptr; /* leaked: inputs live for the whole run */
}

static void add_event(struct stream_bytes *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_event(struct stream_bytes *s, const char *fmt, ...)
{
    va_list ap;
    if (s->n >= N_EVENTS)
        die("too many events");
    va_start(ap, fmt);
    int n = vasprintf(&s->ev[s->n].p, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("oom");
    s->ev[s->n].n = (size_t)n;
    s->total += (size_t)n;
    s->n++;
}

/* OpenAI chat.completion.chunk stream: the envelope of tests/cases/172 (gpt-4.1, with
 * "obfuscation"), text then one tool call, finish chunk, usage chunk, [DONE]. */
static void make_openai_stream(struct stream_bytes *s)
{
#define OA_HEAD "data: {\"id\":\"chatcmpl-Cx3aCcR0uTeR2oPeNaI5tReAmXy\",\"object\":\"chat.completion.chunk\",\"created\":1767226700,\"model\":\"gpt-4.1-2025-04-14\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_b3f1157249\",\"choices\":"
    int ntext = N_EVENTS - 4 - NARGS; /* the tool-start chunk carries the first (empty) piece */
    add_event(s, OA_HEAD "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Zq2\"}\n\n");
    for (int i = 0; i < ntext; i++)
        add_event(s, OA_HEAD "[{\"index\":0,\"delta\":{\"content\":%s},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"p0\"}\n\n",
                  quoted(words[i % NWORDS]));
    add_event(s, OA_HEAD "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_Ls4LaQ9mB2xK7nR1vT5yW8zC\",\"type\":\"function\",\"function\":{\"name\":\"convert_currency\",\"arguments\":\"\"}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"Mm\"}\n\n");
    for (int i = 1; i < NARGS; i++)
        add_event(s, OA_HEAD "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":%s}}]},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null,\"obfuscation\":\"t\"}\n\n",
                  quoted(arg_pieces[i]));
    add_event(s, OA_HEAD "[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":null,\"obfuscation\":\"Qa9\"}\n\n");
    add_event(s, OA_HEAD "[],\"usage\":{\"prompt_tokens\":2450,\"completion_tokens\":231,\"total_tokens\":2681,\"prompt_tokens_details\":{\"cached_tokens\":2304,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},\"obfuscation\":\"k\"}\n\n");
    add_event(s, "data: [DONE]\n\n");
#undef OA_HEAD
}

/* Anthropic Messages stream: the events of tests/cases/102 (message_start, a ping,
 * text block, one tool_use block with input_json_delta pieces, message_delta, stop). */
static void make_anthropic_stream(struct stream_bytes *s)
{
    int ntext = N_EVENTS - 8 - NARGS;
    add_event(s, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5-20250929\",\"id\":\"msg_01Tools102\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":512,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":2304,\"output_tokens\":2}}}\n\n");
    add_event(s, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    add_event(s, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    for (int i = 0; i < ntext; i++)
        add_event(s, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%s}}\n\n",
                  quoted(words[i % NWORDS]));
    add_event(s, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    add_event(s, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01Paris\",\"name\":\"convert_currency\",\"input\":{},\"caller\":{\"type\":\"direct\"}}}\n\n");
    for (int i = 0; i < NARGS; i++)
        add_event(s, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":%s}}\n\n",
                  quoted(arg_pieces[i]));
    add_event(s, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n");
    add_event(s, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":512,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":2304,\"output_tokens\":231}}\n\n");
    add_event(s, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

/* Gemini streamGenerateContent?alt=sse: the chunks of tests/cases/142 (usageMetadata on
 * every chunk, CRLF as in 141); the function call arrives whole, with the finish. */
static void make_gemini_stream(struct stream_bytes *s)
{
    int ntext = N_EVENTS - 1;
    for (int i = 0; i < ntext; i++)
        add_event(s, "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": %s}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 2450,\"candidatesTokenCount\": %d,\"totalTokenCount\": %d},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r142\"}\r\n\r\n",
                  quoted(words[i % NWORDS]), i + 1, 2451 + i);
    add_event(s, "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"convert_currency\",\"args\": {\"amount\": 500,\"from\": \"USD\",\"to\": \"EUR\"}},\"thoughtSignature\": \"c2lnLTE0Mg==\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0,\"finishMessage\": \"Model generated function call(s).\"}],\"usageMetadata\": {\"promptTokenCount\": 2450,\"candidatesTokenCount\": 231,\"totalTokenCount\": 2721,\"thoughtsTokenCount\": 40},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r142\"}\r\n\r\n");
}

static struct bytes req_openai, req_anthropic;
static struct bytes reply_bytes[3];
static struct stream_bytes stream_up[3];

/* ---- a direction ---- */

struct dir {
    const char *name, *label;
    const struct sl_client_format *cf;
    const struct sl_upstream_format *uf; /* NULL on the fast path and the pass-through */
    int up;                              /* upstream wire index */
    int fast, pass;
    const struct bytes *req;
};

static struct dir dirs[5];
static int ndirs;

/* ---- the fast path's request and relay (copied from src/server/chat.c) ---- */

static int fast_request(const struct dir *d, struct sl_arena *a, struct sl_error *e, size_t *out)
{
    cJSON *root = sl_openai_client.decode_request(d->req->p, d->req->n, e);
    if (!root)
        return -1;
    int stream = sl_json_bool(root, "stream", 0);
    struct sl_json_edit edits[8];
    int n = sl_provider_edits(&model[d->up], root, stream, a, edits, 8);
    struct sl_buf b = SL_BUF_INIT(d->req->n + 4096);
    int rc = -1;
    if (n >= 0 && sl_json_apply_edits(d->req->p, d->req->n, edits, n, &b) == 0) {
        char *r = sl_arena_strndup(a, b.ptr, b.len);
        *out = r ? b.len : 0;
        rc = r ? 0 : -1;
    }
    sl_buf_release(&b);
    cJSON_Delete(root);
    return rc;
}

struct relay {
    struct sl_arena *a;
    struct sl_sse_reader sse;
    struct sl_buf out;
    struct sl_usage usage;
    int64_t est_completion;
    int client_usage, saw_done, saw_finish, usage_forwarded, broken;
    char *chunk_id, *chunk_model, *usage_json;
    int64_t chunk_created;
};

static void emit(struct relay *c, const char *prefix, const char *data, size_t len)
{
    sl_buf_puts(&c->out, prefix);
    sl_buf_append(&c->out, data, len);
    sl_buf_append(&c->out, "\n\n", 2);
}

static void remember_chunk(struct relay *c, const cJSON *obj)
{
    const char *id = sl_json_str(obj, "id", NULL), *m = sl_json_str(obj, "model", NULL);
    if (c->chunk_id || !id)
        return;
    c->chunk_id = sl_arena_strndup(c->a, id, strlen(id));
    c->chunk_model = m ? sl_arena_strndup(c->a, m, strlen(m)) : NULL;
    c->chunk_created = sl_json_int(obj, "created", 0);
}

static int has_finish(const cJSON *obj)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices"), *ch;
    cJSON_ArrayForEach(ch, choices)
    {
        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ch, "finish_reason")))
            return 1;
    }
    return 0;
}

static void on_data_event(struct relay *c, const struct sl_sse_event *ev)
{
    cJSON *obj = cJSON_ParseWithLength(ev->data, ev->data_len);
    if (!obj) {
        c->broken = 1;
        return;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(obj, "error");
    if (err && !cJSON_IsNull(err)) {
        c->broken = 1;
        cJSON_Delete(obj);
        return;
    }
    remember_chunk(c, obj);
    int had_usage = sl_openai_usage(obj, &c->usage);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices");
    int usage_only = had_usage && cJSON_IsArray(choices) && cJSON_GetArraySize(choices) == 0;
    c->saw_finish |= has_finish(obj);
    c->est_completion += sl_openai_estimate_output(obj);
    if (had_usage && !usage_only) {
        /* move_usage() in chat.c: DeepSeek/GLM/Moonshot only; not in this stream */
        char *printed = cJSON_PrintUnformatted(obj);
        if (printed)
            emit(c, "data: ", printed, strlen(printed));
        cJSON_free(printed);
    } else if (!usage_only || c->client_usage) {
        c->usage_forwarded |= usage_only;
        emit(c, "data: ", ev->data, ev->data_len);
    }
    cJSON_Delete(obj);
}

static int on_fast_event(void *arg, const struct sl_sse_event *ev)
{
    struct relay *c = arg;
    if (ev->comment) {
        emit(c, ": ", ev->data, ev->data_len);
        return 0;
    }
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        c->saw_done = 1;
        emit(c, "data: ", "[DONE]", 6);
        return 0;
    }
    if (c->saw_done)
        return 0;
    on_data_event(c, ev);
    return c->broken;
}

/* What messages.c does for a pass-through: the one "model" edit, every other byte kept. */
static char *splice_model(struct sl_arena *a, const char *body, size_t len, const char *m,
                          size_t *out_len)
{
    struct sl_buf quoted = SL_BUF_INIT(4096), b = SL_BUF_INIT(len + 1024);
    char *r = NULL;
    sl_json_quote(&quoted, m, strlen(m));
    struct sl_json_edit edit = {"model", quoted.ptr};
    if (quoted.ptr && sl_json_apply_edits(body, len, &edit, 1, &b) == 0) {
        r = sl_arena_strndup(a, b.ptr, b.len);
        *out_len = b.len;
    }
    sl_buf_release(&quoted);
    sl_buf_release(&b);
    return r;
}

struct pass {
    const struct sl_upstream_format *uf;
    struct sl_usage usage;
    int saw_stop;
};

static int on_pass_event(void *arg, const struct sl_sse_event *ev)
{
    struct pass *s = arg;
    if (ev->type_len == 12 && memcmp(ev->type, "message_stop", 12) == 0)
        s->saw_stop = 1;
    if (!ev->comment)
        s->uf->sniff_usage(ev, NULL, 0, &s->usage);
    return 0;
}

/* ---- the translation pipeline (as src/server/translate.c drives it) ---- */

struct tx {
    const struct dir *d;
    void *dec, *enc;
    struct sl_buf out;
    struct sl_usage usage;
    int64_t est_completion;
    int stop;
    struct sl_error stop_err;
};

static int on_chunk(void *arg, const cJSON *chunk)
{
    struct tx *t = arg;
    t->est_completion += sl_openai_estimate_output(chunk);
    return t->d->cf->stream_chunk(t->enc, chunk, &t->out);
}

static int on_tx_event(void *arg, const struct sl_sse_event *ev)
{
    struct tx *t = arg;
    t->stop = t->d->uf->stream_event(t->dec, ev, on_chunk, t, &t->usage, &t->stop_err);
    return t->stop != 0;
}

/* ---- one request / one reply / one stream ---- */

static size_t g_dump_len;
static const char *g_dump;

static int one_request(const struct dir *d)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_error e;
    size_t len = 0;
    int rc = -1;
    if (!a)
        die("oom");
    if (d->fast) {
        rc = fast_request(d, a, &e, &len);
    } else {
        cJSON *req = d->cf->decode_request(d->req->p, d->req->n, &e);
        if (req && d->pass) {
            char *body = splice_model(a, d->req->p, d->req->n, model[d->up].model, &len);
            rc = body ? 0 : -1;
            if (g_dump)
                g_dump = body, g_dump_len = len;
        } else if (req) {
            /* chat.c duplicates the validated tree for the pipeline; messages.c hands
             * its decoded request over as it is */
            cJSON *root = strcmp(d->cf->name, "openai") == 0 ? cJSON_Duplicate(req, 1) : req;
            struct sl_encoded enc = {0};
            rc = root && d->uf->encode(root, &model[d->up], sl_json_bool(root, "stream", 0), a, &enc, &e);
            len = enc.len;
            if (g_dump && rc == 0) {
                printf("    url: %s\n", enc.url);
                g_dump = enc.body, g_dump_len = enc.len;
            }
            if (root != req)
                cJSON_Delete(root);
        }
        cJSON_Delete(req);
    }
    if (g_dump) {
        if (rc)
            printf("    request failed: %d %s\n", e.status, e.message);
        else if (d->fast)
            printf("    (fast path) %zu bytes upstream\n", len);
        else
            printf("    %.*s\n", (int)g_dump_len, g_dump);
    }
    g_sink += len;
    sl_arena_free(a);
    return rc;
}

static int one_reply(const struct dir *d)
{
    const struct bytes *r = &reply_bytes[d->up];
    struct sl_usage u = {0};
    struct sl_error e;
    if (d->fast) {
        const char *p = r->p;
        size_t n = r->n;
        while (n && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++, n--;
        cJSON *obj = cJSON_ParseWithLength(p, n);
        if (!obj)
            return -1;
        sl_openai_usage(obj, &u);
        g_sink += (size_t)sl_openai_estimate_output(obj) + (size_t)u.prompt;
        cJSON_Delete(obj);
        if (g_dump)
            printf("    (relayed as is) usage %lld/%lld\n", (long long)u.prompt, (long long)u.completion);
        return 0;
    }
    if (d->pass) {
        d->uf->sniff_usage(NULL, r->p, r->n, &u);
        g_sink += (size_t)u.prompt;
        if (g_dump)
            printf("    (relayed as is) usage %lld/%lld\n", (long long)u.prompt, (long long)u.completion);
        return u.present ? 0 : -1;
    }
    cJSON *completion = d->uf->decode_reply(r->p, r->n, model[d->up].model, &u, &e);
    if (!completion)
        return -1;
    struct sl_buf b = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY * 2);
    g_sink += (size_t)sl_openai_estimate_output(completion);
    int rc = d->cf->encode_reply(completion, &u, &b);
    cJSON_Delete(completion);
    if (g_dump)
        printf("    %.*s\n", (int)b.len, b.ptr ? b.ptr : "");
    g_sink += b.len;
    sl_buf_release(&b);
    return rc;
}

/* Runs one whole stream. ev_ns (N_EVENTS slots) gets each event's time when timing. */
static int one_stream(const struct dir *d, uint64_t *ev_ns, size_t *out_total)
{
    const struct stream_bytes *s = &stream_up[d->up];
    size_t out = 0;
    int rc = 0;
    if (d->fast) {
        struct relay c = {.client_usage = 1};
        c.a = sl_arena_new();
        sl_sse_reader_init(&c.sse, SL_MAX_SSE_EVENT);
        sl_buf_init(&c.out, SL_MAX_SSE_EVENT * 2);
        for (int i = 0; i < s->n; i++) {
            uint64_t t0 = g_time ? now_ns() : 0;
            if (sl_sse_feed(&c.sse, s->ev[i].p, s->ev[i].n, on_fast_event, &c) || c.broken)
                rc = -1;
            if (g_dump)
                printf("%.*s", (int)c.out.len, c.out.ptr);
            out += c.out.len;
            sl_buf_reset(&c.out); /* flush_out(): sl_exchange_stream_write */
            if (g_time)
                ev_ns[i] = now_ns() - t0;
        }
        rc |= c.saw_done ? 0 : -1;
        sl_sse_reader_release(&c.sse);
        sl_buf_release(&c.out);
        sl_arena_free(c.a);
    } else if (d->pass) {
        struct pass p = {.uf = sl_upstream_format(SL_WIRE_ANTHROPIC)};
        struct sl_sse_reader sse;
        struct sl_buf o = SL_BUF_INIT(SL_MAX_SSE_EVENT * 2);
        void *enc = calloc(1, d->cf->stream_size ? d->cf->stream_size : 1);
        d->cf->stream_init(enc, "req-bench", model[d->up].model, 0);
        sl_sse_reader_init(&sse, SL_MAX_SSE_EVENT);
        for (int i = 0; i < s->n; i++) {
            uint64_t t0 = g_time ? now_ns() : 0;
            sl_buf_append(&o, s->ev[i].p, s->ev[i].n); /* sl_exchange_stream_write */
            sl_sse_feed(&sse, s->ev[i].p, s->ev[i].n, on_pass_event, &p);
            out += o.len;
            sl_buf_reset(&o);
            if (g_time)
                ev_ns[i] = now_ns() - t0;
        }
        rc = p.saw_stop && p.usage.present ? 0 : -1;
        if (g_dump)
            printf("    (relayed as is) usage %lld/%lld/%lld\n", (long long)p.usage.prompt,
                   (long long)p.usage.cached, (long long)p.usage.completion);
        sl_sse_reader_release(&sse);
        sl_buf_release(&o);
        d->cf->stream_release(enc);
        free(enc);
    } else {
        struct tx t = {.d = d};
        struct sl_sse_reader sse;
        t.dec = calloc(1, d->uf->stream_size ? d->uf->stream_size : 1);
        t.enc = calloc(1, d->cf->stream_size ? d->cf->stream_size : 1);
        d->uf->stream_init(t.dec, "req-bench", model[d->up].model);
        d->cf->stream_init(t.enc, "req-bench", model[d->up].model, 1);
        sl_sse_reader_init(&sse, SL_MAX_SSE_EVENT);
        sl_buf_init(&t.out, SL_MAX_SSE_EVENT * 2);
        int ended = 0;
        for (int i = 0; i < s->n; i++) {
            uint64_t t0 = g_time ? now_ns() : 0;
            if (!ended) {
                int frc = sl_sse_feed(&sse, s->ev[i].p, s->ev[i].n, on_tx_event, &t);
                if (frc == SL_SSE_TOO_BIG || t.stop < 0) {
                    rc = -1;
                    ended = 1;
                } else if (t.stop) {
                    d->cf->stream_end(t.enc, &t.usage, &t.out);
                    ended = 1;
                }
            }
            if (g_dump)
                printf("%.*s", (int)t.out.len, t.out.ptr ? t.out.ptr : "");
            out += t.out.len;
            sl_buf_reset(&t.out);
            if (g_time)
                ev_ns[i] = now_ns() - t0;
        }
        if (!ended) { /* the upstream closed the connection (Gemini has no terminator) */
            if (d->uf->stream_end(t.dec, on_chunk, &t, &t.usage))
                d->cf->stream_end(t.enc, &t.usage, &t.out);
            else
                rc = -1;
            if (g_dump)
                printf("%.*s", (int)t.out.len, t.out.ptr ? t.out.ptr : "");
            out += t.out.len;
        }
        if (g_dump)
            printf("    usage %lld/%lld/%lld est %lld\n", (long long)t.usage.prompt,
                   (long long)t.usage.cached, (long long)t.usage.completion,
                   (long long)t.est_completion);
        sl_sse_reader_release(&sse);
        sl_buf_release(&t.out);
        d->uf->stream_release(t.dec);
        d->cf->stream_release(t.enc);
        free(t.dec);
        free(t.enc);
    }
    *out_total = out;
    g_sink += out;
    return rc;
}

/* ---- loops (callgrind: --toggle-collect='loop_*') ---- */

static uint64_t *g_samples; /* per-iteration (request, reply) or per-event (stream) ns */
static uint64_t *g_stream_ns; /* per whole stream */

__attribute__((noinline)) void loop_request(const struct dir *d, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t t0 = g_time ? now_ns() : 0;
        if (one_request(d))
            die("a request failed");
        if (g_time)
            g_samples[i] = now_ns() - t0;
    }
}

__attribute__((noinline)) void loop_reply(const struct dir *d, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t t0 = g_time ? now_ns() : 0;
        if (one_reply(d))
            die("a reply failed");
        if (g_time)
            g_samples[i] = now_ns() - t0;
    }
}

__attribute__((noinline)) void loop_stream(const struct dir *d, int n)
{
    size_t out;
    for (int i = 0; i < n; i++) {
        uint64_t t0 = g_time ? now_ns() : 0;
        if (one_stream(d, g_samples + (size_t)i * N_EVENTS, &out))
            die("a stream failed");
        if (g_time)
            g_stream_ns[i] = now_ns() - t0;
    }
}

/* callgrind (--no-time): collect only inside a loop, one profile per loop */
#define CG_BEGIN()                                                                           \
    do {                                                                                     \
        if (!g_time)                                                                         \
            CALLGRIND_TOGGLE_COLLECT;                                                        \
    } while (0)
#define CG_END(what, d)                                                                      \
    do {                                                                                     \
        if (!g_time) {                                                                       \
            char cg_name[64];                                                                \
            CALLGRIND_TOGGLE_COLLECT;                                                        \
            snprintf(cg_name, sizeof(cg_name), "%s:%s", what, (d)->name);                    \
            CALLGRIND_DUMP_STATS_AT(cg_name);                                                \
            (void)cg_name;                                                                   \
        }                                                                                    \
    } while (0)

/* ---- statistics ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct stat {
    double med, p99, mean; /* microseconds */
};

static struct stat stats(uint64_t *v, size_t n)
{
    struct stat s;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    qsort(v, n, sizeof(*v), cmp_u64);
    s.med = (double)v[n / 2] / 1000.0;
    s.p99 = (double)v[(size_t)((double)n * 0.99)] / 1000.0;
    s.mean = sum / (double)n / 1000.0;
    return s;
}

static int cmp_stat(const void *a, const void *b)
{
    double x = ((const struct stat *)a)->med, y = ((const struct stat *)b)->med;
    return x < y ? -1 : x > y;
}

/* the round whose median is the median of the rounds' medians */
static struct stat median_round(struct stat *r, int n)
{
    qsort(r, (size_t)n, sizeof(*r), cmp_stat);
    return r[n / 2];
}

/* ---- main ---- */

static void add_dir(const char *name, const char *label, const char *client, int up, int fast,
                    int pass, const struct bytes *req)
{
    struct dir *d = &dirs[ndirs++];
    d->name = name;
    d->label = label;
    d->cf = sl_client_format(client);
    d->up = up;
    d->fast = fast;
    d->pass = pass;
    d->uf = sl_upstream_format((enum sl_wire)up);
    d->req = req;
    if (!d->cf || !d->uf)
        die("a format is missing from this build");
}

int main(int argc, char **argv)
{
    const char *data = "bench/translate/data", *only = NULL, *part = NULL;
    int rounds = 5, dump = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--part") && i + 1 < argc)
            part = argv[++i];
        else if (!strcmp(argv[i], "--scale") && i + 1 < argc) {
            int k = atoi(argv[++i]);
            if (k < 1 || k > 100)
                die("--scale: 1 to 100");
            N_REQUEST /= k;
            N_REPLY /= k;
            N_STREAM /= k;
        } else if (!strcmp(argv[i], "--no-time"))
            g_time = 0;
        else if (!strcmp(argv[i], "--dump"))
            dump = 1;
        else {
            fprintf(stderr, "usage: %s [--data DIR] [--rounds N] [--only NAME] "
                            "[--part request|reply|stream] [--no-time] [--dump]\n", argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > 99)
        die("--rounds: 1 to 99");
    setup_models();
    req_openai = read_file(data, "openai_request.json");
    req_anthropic = read_file(data, "anthropic_request.json");
    reply_bytes[SL_WIRE_OPENAI] = read_file(data, "openai_reply.json");
    reply_bytes[SL_WIRE_ANTHROPIC] = read_file(data, "anthropic_reply.json");
    reply_bytes[SL_WIRE_GEMINI] = read_file(data, "gemini_reply.json");
    make_openai_stream(&stream_up[SL_WIRE_OPENAI]);
    make_anthropic_stream(&stream_up[SL_WIRE_ANTHROPIC]);
    make_gemini_stream(&stream_up[SL_WIRE_GEMINI]);
    for (int w = 0; w < 3; w++)
        if (stream_up[w].n != N_EVENTS)
            die("a stream does not have N_EVENTS events");

    add_dir("oa-oa", "1. OpenAI client -> OpenAI upstream (fast path)", "openai", SL_WIRE_OPENAI, 1, 0, &req_openai);
    add_dir("oa-an", "2. OpenAI client -> Anthropic upstream", "openai", SL_WIRE_ANTHROPIC, 0, 0, &req_openai);
    add_dir("oa-ge", "3. OpenAI client -> Gemini upstream", "openai", SL_WIRE_GEMINI, 0, 0, &req_openai);
    add_dir("an-oa", "4. Anthropic client -> OpenAI upstream", "anthropic", SL_WIRE_OPENAI, 0, 0, &req_anthropic);
    add_dir("an-an", "5. Anthropic client -> Anthropic upstream (pass-through)", "anthropic", SL_WIRE_ANTHROPIC, 0, 1, &req_anthropic);

    if (dump) {
        for (int i = 0; i < ndirs; i++) {
            struct dir *d = &dirs[i];
            size_t out;
            if (only && strcmp(only, d->name))
                continue;
            g_time = 0;
            printf("== %s\n  request:\n", d->label);
            g_dump = "";
            int rc = one_request(d);
            printf("  reply:\n");
            rc |= one_reply(d);
            printf("  stream:\n");
            rc |= one_stream(d, NULL, &out);
            g_dump = NULL;
            printf("  -> %s\n", rc ? "FAILED" : "ok");
        }
        return 0;
    }

    size_t cap = (size_t)N_STREAM * N_EVENTS;
    if (cap < (size_t)N_REQUEST)
        cap = N_REQUEST;
    g_samples = malloc(cap * sizeof(*g_samples));
    g_stream_ns = malloc(N_STREAM * sizeof(*g_stream_ns));
    if (!g_samples || !g_stream_ns)
        die("oom");

    printf("# inputs: request %zu B (openai) / %zu B (anthropic); replies %zu / %zu / %zu B "
           "(openai/anthropic/gemini); streams of %d events, %zu / %zu / %zu B\n",
           req_openai.n, req_anthropic.n, reply_bytes[0].n, reply_bytes[1].n, reply_bytes[2].n,
           N_EVENTS, stream_up[0].total, stream_up[1].total, stream_up[2].total);
    printf("# per round: %d requests, %d replies, %d streams (%d chunks); %d rounds; "
           "the median round is reported\n",
           N_REQUEST, N_REPLY, N_STREAM, N_STREAM * N_EVENTS, rounds);
    if (g_time)
        printf("dir\treq_med\treq_p99\treply_med\treply_p99\tchunk_med\tchunk_p99\tchunk_mean\tstream_med\n");

    for (int i = 0; i < ndirs; i++) {
        struct dir *d = &dirs[i];
        if (only && strcmp(only, d->name))
            continue;
        struct stat rq[99], rp[99], ch[99], st[99];
        for (int r = 0; r < rounds; r++) {
            if (!part || !strcmp(part, "request")) {
                CG_BEGIN();
                loop_request(d, N_REQUEST);
                CG_END("request", d);
                if (g_time)
                    rq[r] = stats(g_samples, N_REQUEST);
            }
            if (!part || !strcmp(part, "reply")) {
                CG_BEGIN();
                loop_reply(d, N_REPLY);
                CG_END("reply", d);
                if (g_time)
                    rp[r] = stats(g_samples, N_REPLY);
            }
            if (!part || !strcmp(part, "stream")) {
                CG_BEGIN();
                loop_stream(d, N_STREAM);
                CG_END("stream", d);
                if (g_time) {
                    ch[r] = stats(g_samples, (size_t)N_STREAM * N_EVENTS);
                    st[r] = stats(g_stream_ns, N_STREAM);
                    ch[r].mean = st[r].mean / N_EVENTS; /* a whole stream's time per chunk */
                }
            }
        }
        if (!g_time) {
            printf("%s\tdone: %d x (%d requests, %d replies, %d streams)\n", d->name, rounds,
                   N_REQUEST, N_REPLY, N_STREAM);
            continue;
        }
        struct stat z = {0, 0, 0};
        struct stat a = part && strcmp(part, "request") ? z : median_round(rq, rounds);
        struct stat b = part && strcmp(part, "reply") ? z : median_round(rp, rounds);
        struct stat c = part && strcmp(part, "stream") ? z : median_round(ch, rounds);
        struct stat s = part && strcmp(part, "stream") ? z : median_round(st, rounds);
        printf("%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f\t%.3f\t%.3f\t%.1f\n", d->name, a.med, a.p99,
               b.med, b.p99, c.med, c.p99, c.mean, s.med);
        fflush(stdout);
    }
    return (int)(g_sink == 42); /* never: keeps g_sink alive */
}
