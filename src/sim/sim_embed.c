/* Deterministic embeddings: the text -> vector function (hashed words and character
 * trigrams, L2-normalised) and the OpenAI, DashScope-native and Gemini embedding
 * endpoints that serve it, with their batch limits and error shapes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/limits.h"
#include "sim/sim.h"
#include "sim/sim_internal.h"

#define DIMS_DEFAULT        256
#define DIMS_LARGE          1024 /* models whose name contains "large" */
#define TRIGRAM_WEIGHT      0.3  /* all of a word's trigrams together, against 1 for the word */
#define SPREAD              4    /* dimensions each feature is hashed to */
#define SHARED_WEIGHT       0.5  /* the direction every text shares, against 1 for its own */
#define MAX_WORD            256  /* bytes of a word that count */
#define OPENAI_MAX_INPUTS   2048
#define DASHSCOPE_MAX_TEXTS 10
#define GEMINI_MAX_REQUESTS 100

/* ---- the vector ---- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Adds feature h with weight w, spread over SPREAD signed dimensions. */
static void add_feature(double *v, int dims, uint64_t h, double w)
{
    for (int k = 0; k < SPREAD; k++) {
        uint64_t r = splitmix(&h);
        v[(r >> 1) % (uint64_t)dims] += (r & 1 ? w : -w) / sqrt(SPREAD);
    }
}

static int word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* The word itself and the trigrams of "^word$"; w is lower-cased ASCII, n <= MAX_WORD. */
static void add_word(double *v, int dims, const char *w, size_t n)
{
    char padded[MAX_WORD + 2];
    padded[0] = '^';
    memcpy(padded + 1, w, n);
    padded[n + 1] = '$';
    add_feature(v, dims, fnv1a(fnv1a(1469598103934665603ull, "w", 1), w, n), 1.0);
    for (size_t j = 0; j < n; j++)
        add_feature(v, dims, fnv1a(fnv1a(1469598103934665603ull, "c", 1), padded + j, 3),
                    TRIGRAM_WEIGHT / sqrt((double)n));
}

static void normalise(double *v, int dims)
{
    double sum = 0;
    for (int i = 0; i < dims; i++)
        sum += v[i] * v[i];
    for (int i = 0; sum > 0 && i < dims; i++)
        v[i] /= sqrt(sum);
}

static void embed(const char *text, size_t len, double *v, int dims)
{
    char word[MAX_WORD];
    for (size_t i = 0; i < len;) {
        size_t n = 0;
        for (; i < len && word_byte((unsigned char)text[i]); i++)
            if (n < MAX_WORD)
                word[n++] = text[i] >= 'A' && text[i] <= 'Z' ? (char)(text[i] + 32) : text[i];
        if (n)
            add_word(v, dims, word, n);
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
    }
    normalise(v, dims);
    /* A direction all texts share lifts a one-word change in ten words above 0.9 while
     * unrelated texts stay near 0.2; it changes no ranking. */
    for (int i = 0; i < dims; i++)
        v[i] += SHARED_WEIGHT / sqrt((double)dims);
    normalise(v, dims);
}

void sl_sim_embed(const char *text, size_t len, float *out, int dims)
{
    if (dims <= 0)
        return;
    double *v = calloc((size_t)dims, sizeof(*v));
    if (v)
        embed(text ? text : "", text ? len : 0, v, dims);
    for (int i = 0; i < dims; i++)
        out[i] = v ? (float)v[i] : (float)(1.0 / sqrt((double)dims));
    free(v);
}

static int model_dims(const char *model)
{
    return strstr(model, "large") ? DIMS_LARGE : DIMS_DEFAULT;
}

/* ---- encoding vectors ---- */

static int append_floats(struct sl_buf *out, const float *v, int n)
{
    int result = sl_buf_puts(out, "[");
    for (int i = 0; i < n && !result; i++)
        result = sl_buf_printf(out, "%s%.8g", i ? "," : "", (double)v[i]);
    return result || sl_buf_puts(out, "]");
}

/* Byte i of the float32 values, little-endian whatever the host. */
static unsigned char byte_at(const float *v, size_t i)
{
    uint32_t bits;
    memcpy(&bits, &v[i / 4], sizeof(bits));
    return (unsigned char)(bits >> (8 * (i % 4)));
}

/* OpenAI's base64 form: the float32 values, little-endian, in standard base64. */
static int append_base64(struct sl_buf *out, const float *v, int n)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char bytes[3];
    size_t total = (size_t)n * 4;
    int result = sl_buf_puts(out, "\"");
    for (size_t i = 0; i < total && !result; i += 3) {
        for (size_t k = 0; k < 3; k++)
            bytes[k] = i + k < total ? byte_at(v, i + k) : 0;
        size_t have = total - i < 3 ? total - i : 3;
        char quad[4] = {digits[bytes[0] >> 2], digits[((bytes[0] & 3) << 4) | (bytes[1] >> 4)],
                        have > 1 ? digits[((bytes[1] & 15) << 2) | (bytes[2] >> 6)] : '=',
                        have > 2 ? digits[bytes[2] & 63] : '='};
        result = sl_buf_append(out, quad, 4);
    }
    return result || sl_buf_puts(out, "\"");
}

/* Appends text's vector for a model of `full` dimensions, cut to its first `keep`
 * and normalised again. */
static int append_vector(struct sl_buf *out, const char *text, int full, int keep, int base64)
{
    float *v = malloc(sizeof(*v) * (size_t)full);
    if (!v)
        return -1;
    sl_sim_embed(text, strlen(text), v, full);
    double sum = 0;
    for (int i = 0; i < keep; i++)
        sum += (double)v[i] * v[i];
    for (int i = 0; i < keep && sum > 0; i++)
        v[i] = (float)(v[i] / sqrt(sum));
    int result = base64 ? append_base64(out, v, keep) : append_floats(out, v, keep);
    free(v);
    return result;
}

/* ---- requests ---- */

/* One embeddings request, read from its wire shape. */
struct batch {
    const char *texts[OPENAI_MAX_INPUTS];
    int keep[OPENAI_MAX_INPUTS]; /* dimensions asked per text */
    int n, full, base64, tokens;
    const char *model;
    char request_id[32];
};

/* Sends wire's error for the batch's request. */
static void reject(struct evhttp_request *req, const struct sim_wire *wire, struct batch *b,
                   int status, const char *message, const char *param)
{
    struct sim_error e = {status, message, param, b->request_id, -1};
    sl_sim_send_error(req, wire, &e);
}

/* True, after sending the error, when the first text's @sim: directives inject a
 * failure (status, retry_after, fail_times; delays and resets do not apply here). */
static int injected(struct sim_loop *l, struct evhttp_request *req, const struct sim_wire *wire,
                    struct batch *b)
{
    struct sim_directives d;
    sl_sim_directives_parse(b->texts[0], &d);
    if (!sl_sim_failure_due(l->fails, &d, b->texts[0]))
        return 0;
    char msg[64];
    int status = d.status >= 400 ? d.status : 500;
    snprintf(msg, sizeof(msg), "Simulated HTTP %d error (@sim:status).", status);
    struct sim_error e = {status, msg, NULL, b->request_id, d.retry_after};
    sl_sim_send_error(req, wire, &e);
    return 1;
}

/* Checks a requested dimension count (0: not given) and records it for text i. */
static int set_keep(struct batch *b, int i, const cJSON *dims)
{
    if (!dims) {
        b->keep[i] = b->full;
        return 0;
    }
    if (!cJSON_IsNumber(dims) || dims->valuedouble < 1 || dims->valuedouble > b->full ||
        dims->valuedouble != (double)dims->valueint)
        return -1;
    b->keep[i] = dims->valueint;
    return 0;
}

/* Adds a text; -1 when it is not a non-empty string or the batch is full. */
static int add_text(struct batch *b, const cJSON *t)
{
    if (!cJSON_IsString(t)) {
        b->tokens = b->tokens || cJSON_IsNumber(t) || cJSON_IsArray(t);
        return -1;
    }
    if (!*t->valuestring || b->n >= OPENAI_MAX_INPUTS)
        return -1;
    b->texts[b->n++] = t->valuestring;
    return 0;
}

/* A string or an array of strings; the count is checked by the caller. */
static int add_texts(struct batch *b, const cJSON *input, int max)
{
    if (cJSON_IsString(input))
        return add_text(b, input);
    if (!cJSON_IsArray(input) || cJSON_GetArraySize(input) == 0 ||
        cJSON_GetArraySize(input) > max)
        return -1;
    const cJSON *t;
    cJSON_ArrayForEach(t, input)
    {
        if (add_text(b, t))
            return -1;
    }
    return 0;
}

static int words_total(const struct batch *b)
{
    int n = 0;
    for (int i = 0; i < b->n; i++)
        n += sl_sim_words(b->texts[i], strlen(b->texts[i])) + 1;
    return n;
}

static struct batch *batch_new(struct sim_loop *l, const char *model)
{
    struct batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    sl_sim_request_id(l, b->request_id);
    b->model = model;
    b->full = model_dims(model);
    return b;
}

static void send_reply(struct evhttp_request *req, struct sl_buf *out, int result,
                       const struct sim_wire *wire, struct batch *b)
{
    if (result)
        reject(req, wire, b, 500, "The embeddings reply is too large.", NULL);
    else
        sl_sim_send_body(req, 200, out, -1);
}

/* ---- OpenAI: POST /v1/embeddings ---- */

static int openai_read(const cJSON *body, struct batch *b, const char **err, const char **param)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
    const char *format = sl_json_str(body, "encoding_format", "float");
    *param = "input";
    if (add_texts(b, input, OPENAI_MAX_INPUTS)) {
        *err = b->tokens ? "The simulator embeds text only: token arrays are not supported."
                         : "'input' must be a non-empty string or an array of at most 2048 "
                           "non-empty strings.";
        return -1;
    }
    *param = "encoding_format";
    b->base64 = strcmp(format, "base64") == 0;
    if (!b->base64 && strcmp(format, "float") != 0) {
        *err = "'encoding_format' must be 'float' or 'base64'.";
        return -1;
    }
    *param = "dimensions";
    for (int i = 0; i < b->n; i++)
        if (set_keep(b, i, cJSON_GetObjectItemCaseSensitive(body, "dimensions"))) {
            *err = "'dimensions' must be an integer from 1 to the model's dimensions.";
            return -1;
        }
    return 0;
}

static int openai_reply(const struct batch *b, struct sl_buf *out)
{
    int result = sl_buf_puts(out, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < b->n && !result; i++)
        result = sl_buf_printf(out, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":",
                               i ? "," : "", i) ||
                 append_vector(out, b->texts[i], b->full, b->keep[i], b->base64) ||
                 sl_buf_puts(out, "}");
    int tokens = words_total(b);
    return result || sl_buf_puts(out, "],\"model\":") ||
           sl_json_quote(out, b->model, strlen(b->model)) ||
           sl_buf_printf(out, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}", tokens,
                         tokens);
}

void sl_sim_embed_openai(struct sim_loop *l, struct evhttp_request *req)
{
    cJSON *body = sl_sim_read_json(req);
    struct batch *b = batch_new(l, sl_json_str(body, "model", "sim-embed"));
    const char *err = "We could not parse the JSON body of your request.", *param = NULL;
    struct sl_buf out = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    if (!b)
        sl_sim_fail(l, req, &sl_sim_openai, 500, "Out of memory.", NULL);
    else if (!cJSON_IsObject(body) || openai_read(body, b, &err, &param))
        reject(req, &sl_sim_openai, b, 400, err, param);
    else if (!injected(l, req, &sl_sim_openai, b))
        send_reply(req, &out, openai_reply(b, &out), &sl_sim_openai, b);
    sl_buf_release(&out);
    free(b);
    cJSON_Delete(body);
}

/* ---- DashScope native: POST /api/v1/services/embeddings/text-embedding/text-embedding ---- */

static const char *dashscope_code(int status)
{
    switch (status) {
    case 400:
        return "InvalidParameter";
    case 401:
        return "InvalidApiKey";
    case 403:
        return "AccessDenied";
    case 404:
        return "ModelNotFound";
    case 429:
        return "Throttling.RateQuota";
    default:
        return status >= 500 ? "InternalError" : "InvalidParameter";
    }
}

/* The one place that writes DashScope's native error JSON. */
static int dashscope_error(const struct sim_error *e, struct sl_buf *out)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "code", dashscope_code(e->status));
    cJSON_AddStringToObject(body, "message", e->message);
    cJSON_AddStringToObject(body, "request_id", e->request_id ? e->request_id : "");
    return sl_sim_append_json(body, 0, out);
}

const struct sim_wire sl_sim_dashscope = {
    .id_prefix = "",
    .request_id_header = NULL,
    .retry_after_header = 1,
    .error = dashscope_error,
};

static int dashscope_read(const cJSON *body, struct batch *b, const char **err)
{
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(body, "input"), "texts");
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(body, "parameters"), "dimension");
    if (cJSON_GetArraySize(texts) > DASHSCOPE_MAX_TEXTS) {
        *err = "batch size is invalid, it should not be larger than 10.";
        return -1;
    }
    if (add_texts(b, texts, DASHSCOPE_MAX_TEXTS)) {
        *err = "input.texts should be a non-empty string or a list of non-empty strings.";
        return -1;
    }
    for (int i = 0; i < b->n; i++)
        if (set_keep(b, i, dims)) {
            *err = "parameters.dimension is invalid for this model.";
            return -1;
        }
    return 0;
}

static int dashscope_reply(const struct batch *b, struct sl_buf *out)
{
    int result = sl_buf_puts(out, "{\"output\":{\"embeddings\":[");
    for (int i = 0; i < b->n && !result; i++)
        result = sl_buf_printf(out, "%s{\"text_index\":%d,\"embedding\":", i ? "," : "", i) ||
                 append_vector(out, b->texts[i], b->full, b->keep[i], 0) ||
                 sl_buf_puts(out, "}");
    return result || sl_buf_printf(out, "]},\"usage\":{\"total_tokens\":%d},\"request_id\":\"%s\"}",
                                   words_total(b), b->request_id);
}

void sl_sim_embed_dashscope(struct sim_loop *l, struct evhttp_request *req)
{
    cJSON *body = sl_sim_read_json(req);
    struct batch *b = batch_new(l, sl_json_str(body, "model", "sim-embed"));
    const char *err = "The request body is not valid JSON.";
    struct sl_buf out = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    if (!b)
        sl_sim_fail(l, req, &sl_sim_dashscope, 500, "Out of memory.", NULL);
    else if (!cJSON_IsObject(body) || dashscope_read(body, b, &err))
        reject(req, &sl_sim_dashscope, b, 400, err, NULL);
    else if (!injected(l, req, &sl_sim_dashscope, b))
        send_reply(req, &out, dashscope_reply(b, &out), &sl_sim_dashscope, b);
    sl_buf_release(&out);
    free(b);
    cJSON_Delete(body);
}

/* ---- Gemini: POST /v1beta/models/{model}:embedContent and :batchEmbedContents ---- */

/* The text parts of an EmbedContentRequest's content, joined with a space, kept in keep. */
static const char *gemini_text(const cJSON *request, cJSON *keep)
{
    struct sl_buf t = SL_BUF_INIT(SL_MAX_REQUEST_BODY);
    const cJSON *part;
    cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(
                                 cJSON_GetObjectItemCaseSensitive(request, "content"), "parts"))
    {
        const char *s = sl_json_str(part, "text", NULL);
        if (s && ((t.len && sl_buf_append(&t, " ", 1)) || sl_buf_puts(&t, s)))
            break;
    }
    cJSON *text = cJSON_CreateString(t.ptr ? t.ptr : "");
    sl_buf_release(&t);
    cJSON_AddItemToArray(keep, text);
    return text ? text->valuestring : NULL;
}

static int gemini_add(struct batch *b, const cJSON *request, cJSON *keep)
{
    const char *text = gemini_text(request, keep);
    if (!text || !*text)
        return -1;
    b->texts[b->n] = text;
    return set_keep(b, b->n++,
                    cJSON_GetObjectItemCaseSensitive(request, "outputDimensionality"));
}

static int gemini_read(const cJSON *body, int batch, struct batch *b, cJSON *keep,
                       const char **err)
{
    const cJSON *requests = cJSON_GetObjectItemCaseSensitive(body, "requests"), *r;
    if (!batch) {
        *err = "* EmbedContentRequest: content with a non-empty text part is required, and "
               "outputDimensionality at most the model's dimensions.";
        return gemini_add(b, body, keep);
    }
    int n = cJSON_IsArray(requests) ? cJSON_GetArraySize(requests) : 0;
    *err = n > GEMINI_MAX_REQUESTS ? "* BatchEmbedContentsRequest.requests: at most 100 requests "
                                     "can be in one batch"
                                   : "* BatchEmbedContentsRequest.requests: each request needs "
                                     "content with a non-empty text part.";
    if (n == 0 || n > GEMINI_MAX_REQUESTS)
        return -1;
    cJSON_ArrayForEach(r, requests)
    {
        if (gemini_add(b, r, keep))
            return -1;
    }
    return 0;
}

static int gemini_reply(const struct batch *b, int batch, struct sl_buf *out)
{
    int result = sl_buf_puts(out, batch ? "{\"embeddings\":[" : "{\"embedding\":");
    for (int i = 0; i < b->n && !result; i++)
        result = sl_buf_printf(out, "%s{\"values\":", i ? "," : "") ||
                 append_vector(out, b->texts[i], b->full, b->keep[i], 0) ||
                 sl_buf_puts(out, "}");
    return result || sl_buf_puts(out, batch ? "]}\n" : "}\n");
}

void sl_sim_embed_gemini(struct sim_loop *l, struct evhttp_request *req, const char *model,
                         int batch)
{
    cJSON *body = sl_sim_read_json(req), *keep = cJSON_CreateArray();
    struct batch *b = batch_new(l, model);
    const char *err = "Invalid JSON payload received.";
    struct sl_buf out = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    if (!b || !keep)
        sl_sim_fail(l, req, &sl_sim_gemini, 500, "Out of memory.", NULL);
    else if (!cJSON_IsObject(body) || gemini_read(body, batch, b, keep, &err))
        reject(req, &sl_sim_gemini, b, 400, err, NULL);
    else if (!injected(l, req, &sl_sim_gemini, b))
        send_reply(req, &out, gemini_reply(b, batch, &out), &sl_sim_gemini, b);
    sl_buf_release(&out);
    free(b);
    cJSON_Delete(keep);
    cJSON_Delete(body);
}
