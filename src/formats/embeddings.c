/* Embeddings in three wire shapes: the OpenAI request read and checked, upstream
 * requests built for OpenAI, DashScope native and Gemini, their replies parsed into
 * vectors, and the one OpenAI reply encoded from them (floats or base64). */
#include "formats/embeddings.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/limits.h"
#include "formats/openai.h"

/* ---- the client's request ---------------------------------------------------- */

static int bad_input(struct sl_error *e, const char *param, const char *msg)
{
    sl_error_set(e, 400, "invalid_request_error", "%s", msg);
    snprintf(e->param, sizeof(e->param), "%s", param);
    return -1;
}

static int is_token(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble == floor(v->valuedouble) &&
           v->valuedouble < 4294967296.0;
}

/* A non-empty array of token ids (one tokenized input). */
static int is_token_array(const cJSON *v)
{
    const cJSON *t;
    if (!cJSON_IsArray(v) || !v->child)
        return 0;
    cJSON_ArrayForEach(t, v)
    {
        if (!is_token(t))
            return 0;
    }
    return 1;
}

/* A list of inputs: all non-empty strings, or all token arrays. */
static int read_list(const cJSON *input, struct sl_embed_req *r, struct sl_error *e)
{
    const cJSON *it;
    int strings = 0, arrays = 0;
    cJSON_ArrayForEach(it, input)
    {
        if (++r->ninputs > SL_EMBED_MAX_INPUTS)
            return bad_input(e, "input", "'input' may hold at most 2048 items");
        if (cJSON_IsString(it) && it->valuestring[0])
            strings++;
        else if (is_token_array(it))
            arrays++;
        else
            return bad_input(e, "input", "each item of 'input' must be a non-empty string or a "
                                         "non-empty array of token ids");
    }
    if (strings && arrays)
        return bad_input(e, "input", "'input' must not mix strings and token arrays");
    r->tokens = arrays > 0;
    return 0;
}

static int read_input(const cJSON *input, struct sl_embed_req *r, struct sl_error *e)
{
    if (!input)
        return bad_input(e, "input", "'input' is required");
    if (cJSON_IsString(input)) {
        if (!input->valuestring[0])
            return bad_input(e, "input", "'input' must not be an empty string");
        r->single = 1;
        r->ninputs = 1;
        return 0;
    }
    if (!cJSON_IsArray(input))
        return bad_input(e, "input", "'input' must be a string, an array of strings, or token "
                                     "arrays");
    if (!input->child)
        return bad_input(e, "input", "'input' must not be an empty array");
    if (is_token(input->child)) { /* one tokenized input: [id, id, ...] */
        if (!is_token_array(input))
            return bad_input(e, "input", "a token array must hold only token ids");
        r->single = r->tokens = 1;
        r->ninputs = 1;
        return 0;
    }
    return read_list(input, r, e);
}

static int read_options(const cJSON *root, struct sl_embed_req *r, struct sl_error *e)
{
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "encoding_format");
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(root, "user");
    if (fmt && !cJSON_IsNull(fmt)) {
        if (!cJSON_IsString(fmt) ||
            (strcmp(fmt->valuestring, "float") != 0 && strcmp(fmt->valuestring, "base64") != 0))
            return bad_input(e, "encoding_format", "'encoding_format' must be 'float' or 'base64'");
        r->base64 = strcmp(fmt->valuestring, "base64") == 0;
    }
    if (dims && !cJSON_IsNull(dims)) {
        if (!cJSON_IsNumber(dims) || dims->valuedouble < 1 || dims->valuedouble > 65536 ||
            dims->valuedouble != floor(dims->valuedouble))
            return bad_input(e, "dimensions", "'dimensions' must be a positive integer");
        r->dimensions = sl_json_clamp_int(dims->valuedouble);
    }
    if (user && !cJSON_IsNull(user) && !cJSON_IsString(user))
        return bad_input(e, "user", "'user' must be a string");
    return 0;
}

int sl_embed_request_read(const cJSON *root, const char *body, size_t len, struct sl_embed_req *r,
                          struct sl_error *e)
{
    memset(r, 0, sizeof(*r));
    r->root = root;
    r->body = body;
    r->len = len;
    r->input = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (read_input(r->input, r, e))
        return -1;
    return read_options(root, r, e);
}

const cJSON *sl_embed_input(const struct sl_embed_req *r, int i)
{
    return r->single ? r->input : cJSON_GetArrayItem(r->input, i);
}

/* ---- routing facts ------------------------------------------------------------ */

enum sl_embed_wire sl_embed_wire_of(const struct sl_provider_cfg *p)
{
    if (p->embeddings != SL_EMBED_AUTO)
        return p->embeddings;
    if (p->kind == SL_WIRE_OPENAI)
        return SL_EMBED_OPENAI;
    return p->kind == SL_WIRE_GEMINI ? SL_EMBED_GEMINI : SL_EMBED_AUTO;
}

/* Published inputs-per-request limits, by the provider's model name. DashScope's
 * "Synchronous API" page (help.aliyun.com/en/model-studio/text-embedding-synchronous-api):
 * v3 and v4 take 10 rows, v1 and v2 25; the same holds at its OpenAI-compatible endpoint. */
static const struct {
    const char *model;
    int limit;
} batch_limits[] = {
    {"text-embedding-v4", 10},
    {"text-embedding-v3", 10},
    {"text-embedding-v2", 25},
    {"text-embedding-v1", 25},
};

int sl_embed_batch_limit(enum sl_embed_wire w, const struct sl_model_cfg *m)
{
    if (m->max_batch > 0)
        return m->max_batch;
    for (size_t i = 0; i < sizeof(batch_limits) / sizeof(batch_limits[0]); i++)
        if (strcmp(m->model, batch_limits[i].model) == 0)
            return batch_limits[i].limit;
    /* Gemini's batchEmbedContents takes 100 requests; DashScope's newer models 10. */
    return w == SL_EMBED_GEMINI ? 100 : w == SL_EMBED_DASHSCOPE ? 10 : SL_EMBED_MAX_INPUTS;
}

int sl_embed_nparts(int n, int limit)
{
    return limit > 0 ? (n + limit - 1) / limit : 0;
}

void sl_embed_part(int n, int limit, int i, int *offset, int *count)
{
    *offset = i * limit;
    *count = n - *offset < limit ? n - *offset : limit;
}

/* ---- upstream requests -------------------------------------------------------- */

static int quote(struct sl_buf *b, const char *s)
{
    return sl_json_quote(b, s, strlen(s));
}

/* The client's bytes with only the value of `model` replaced: fields sluice does not
 * know reach the provider as they were sent. NULL when the keys need decoding. */
static char *splice_model(const struct sl_embed_req *r, const char *model, struct sl_arena *a,
                          size_t *out_len)
{
    struct sl_json_member members[SL_MAX_TOP_KEYS];
    int n = sl_json_members(r->body, r->len, members, SL_MAX_TOP_KEYS);
    struct sl_buf b = SL_BUF_INIT(r->len + 4096);
    const char *pos = r->body;
    char *result = NULL;
    for (int i = 0; i < n; i++) {
        const struct sl_json_member *m = &members[i];
        if (memchr(m->key.ptr, '\\', m->key.len))
            goto out;
        if (m->key.len != 5 || memcmp(m->key.ptr, "model", 5) != 0)
            continue;
        sl_buf_append(&b, pos, (size_t)(m->value.ptr - pos));
        quote(&b, model);
        pos = m->value.ptr + m->value.len;
    }
    if (n >= 0 && !sl_buf_append(&b, pos, (size_t)(r->body + r->len - pos)) && b.ptr) {
        result = sl_arena_strndup(a, b.ptr, b.len);
        *out_len = b.len;
    }
out:
    sl_buf_release(&b);
    return result;
}

/* The client's request re-printed with `model` and a slice of `input`. */
static char *openai_slice(const struct sl_embed_req *r, const char *model, int off, int cnt,
                          struct sl_arena *a, size_t *out_len)
{
    cJSON *copy = cJSON_Duplicate(r->root, 1);
    cJSON *slice = r->single ? cJSON_Duplicate(r->input, 1) : cJSON_CreateArray();
    const cJSON *it = r->single ? NULL : cJSON_GetArrayItem(r->input, off);
    char *printed = NULL, *result = NULL;
    for (int i = 0; it && i < cnt; i++, it = it->next)
        cJSON_AddItemToArray(slice, cJSON_Duplicate(it, 1));
    cJSON *name = cJSON_CreateString(model);
    if (copy && name && cJSON_ReplaceItemInObjectCaseSensitive(copy, "model", name))
        name = NULL;
    if (copy && slice && cJSON_ReplaceItemInObjectCaseSensitive(copy, "input", slice))
        slice = NULL;
    if (!name && !slice)
        printed = cJSON_PrintUnformatted(copy);
    if (printed) {
        *out_len = strlen(printed);
        result = sl_arena_strndup(a, printed, *out_len);
    }
    cJSON_free(printed);
    cJSON_Delete(name);
    cJSON_Delete(slice);
    cJSON_Delete(copy);
    return result;
}

/* {"model","input":{"texts":[...]},"parameters":{"dimension"}} */
static int dashscope_body(const struct sl_embed_req *r, const char *model, int off, int cnt,
                          struct sl_buf *b)
{
    const cJSON *it = sl_embed_input(r, off);
    int rc = sl_buf_puts(b, "{\"model\":");
    rc |= quote(b, model);
    rc |= sl_buf_puts(b, ",\"input\":{\"texts\":[");
    for (int i = 0; it && i < cnt; i++, it = it->next) {
        if (i)
            rc |= sl_buf_puts(b, ",");
        rc |= quote(b, it->valuestring);
    }
    rc |= sl_buf_puts(b, "]}");
    if (r->dimensions)
        rc |= sl_buf_printf(b, ",\"parameters\":{\"dimension\":%lld}", (long long)r->dimensions);
    rc |= sl_buf_puts(b, "}");
    return rc;
}

/* {"requests":[{"model":"models/M","content":{"parts":[{"text"}]},"outputDimensionality"}]} */
static int gemini_body(const struct sl_embed_req *r, const char *model, int off, int cnt,
                       struct sl_buf *b)
{
    const cJSON *it = sl_embed_input(r, off);
    char name[SL_MAX_NAME + 16];
    int rc = sl_buf_puts(b, "{\"requests\":[");
    snprintf(name, sizeof(name), "models/%s", model);
    for (int i = 0; it && i < cnt; i++, it = it->next) {
        rc |= sl_buf_puts(b, i ? ",{\"model\":" : "{\"model\":");
        rc |= quote(b, name);
        rc |= sl_buf_puts(b, ",\"content\":{\"parts\":[{\"text\":");
        rc |= quote(b, it->valuestring);
        rc |= sl_buf_puts(b, "}]}");
        if (r->dimensions)
            rc |= sl_buf_printf(b, ",\"outputDimensionality\":%lld", (long long)r->dimensions);
        rc |= sl_buf_puts(b, "}");
    }
    rc |= sl_buf_puts(b, "]}");
    return rc;
}

static char *native_body(enum sl_embed_wire w, const struct sl_embed_req *r, const char *model,
                         int off, int cnt, struct sl_arena *a, size_t *out_len)
{
    struct sl_buf b = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    char *result = NULL;
    int rc = w == SL_EMBED_GEMINI ? gemini_body(r, model, off, cnt, &b)
                                  : dashscope_body(r, model, off, cnt, &b);
    if (!rc && b.ptr) {
        result = sl_arena_strndup(a, b.ptr, b.len);
        *out_len = b.len;
    }
    sl_buf_release(&b);
    return result;
}

static const char *upstream_url(enum sl_embed_wire w, const struct sl_model_cfg *m,
                                struct sl_arena *a)
{
    const struct sl_provider_cfg *p = m->p;
    if (w == SL_EMBED_DASHSCOPE)
        return p->embeddings_url ? p->embeddings_url : SL_EMBED_DASHSCOPE_URL;
    if (w == SL_EMBED_GEMINI)
        return sl_arena_sprintf(a, "%s/models/%s:batchEmbedContents", p->base_url, m->model);
    return sl_arena_sprintf(a, "%s/embeddings", p->base_url);
}

int sl_embed_encode(enum sl_embed_wire w, const struct sl_embed_req *r,
                    const struct sl_model_cfg *m, int off, int cnt, struct sl_arena *a,
                    struct sl_encoded *out)
{
    const char *key = m->p->api_key;
    memset(out, 0, sizeof(*out));
    if (w != SL_EMBED_OPENAI)
        out->body = native_body(w, r, m->model, off, cnt, a, &out->len);
    else if (off == 0 && cnt == r->ninputs)
        out->body = splice_model(r, m->model, a, &out->len);
    if (!out->body && w == SL_EMBED_OPENAI)
        out->body = openai_slice(r, m->model, off, cnt, a, &out->len);
    out->url = upstream_url(w, m, a);
    out->headers[out->nheaders++] = "Content-Type: application/json";
    out->headers[out->nheaders++] = "Accept: application/json";
    if (key && w == SL_EMBED_GEMINI)
        out->headers[out->nheaders++] = sl_arena_sprintf(a, "x-goog-api-key: %s", key);
    else if (key)
        out->headers[out->nheaders++] = sl_arena_sprintf(a, "Authorization: Bearer %s", key);
    for (int i = 0; i < out->nheaders; i++)
        if (!out->headers[i])
            return -1;
    return out->body && out->url ? 0 : -1;
}

/* ---- base64 of little-endian float32 ------------------------------------------ */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void float_le(double d, unsigned char out[4])
{
    float f = (float)d;
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    out[0] = (unsigned char)u;
    out[1] = (unsigned char)(u >> 8);
    out[2] = (unsigned char)(u >> 16);
    out[3] = (unsigned char)(u >> 24);
}

static void b64_group(const unsigned char *in, size_t n, char out[4])
{
    uint32_t v = (uint32_t)in[0] << 16 | (n > 1 ? (uint32_t)in[1] << 8 : 0) | (n > 2 ? in[2] : 0);
    out[0] = b64_alphabet[v >> 18 & 63];
    out[1] = b64_alphabet[v >> 12 & 63];
    out[2] = n > 1 ? b64_alphabet[v >> 6 & 63] : '=';
    out[3] = n > 2 ? b64_alphabet[v & 63] : '=';
}

int sl_embed_base64(const double *v, int n, struct sl_buf *out)
{
    /* 192 floats = 768 bytes, a multiple of 3: only the last chunk is padded. */
    unsigned char bytes[768];
    char text[1024];
    int rc = 0;
    for (int i = 0; i < n && !rc; i += 192) {
        int k = n - i < 192 ? n - i : 192;
        size_t nb = (size_t)k * 4, nt = 0;
        for (int j = 0; j < k; j++)
            float_le(v[i + j], bytes + 4 * j);
        for (size_t j = 0; j < nb; j += 3, nt += 4)
            b64_group(bytes + j, nb - j < 3 ? nb - j : 3, text + nt);
        rc = sl_buf_append(out, text, nt);
    }
    return rc;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

/* Decodes OpenAI's base64 float32 (a split request whose client asked for base64). */
static int from_base64(const char *s, struct sl_arena *a, struct sl_embed_vec *out)
{
    size_t len = strlen(s), pad = 0;
    if (len % 4)
        return -1;
    while (pad < 2 && len > pad && s[len - 1 - pad] == '=')
        pad++;
    size_t nbytes = len / 4 * 3 - pad;
    if (nbytes % 4)
        return -1;
    unsigned char *bytes = sl_arena_alloc(a, nbytes + 3);
    out->dim = (int)(nbytes / 4);
    out->v = sl_arena_alloc(a, (size_t)out->dim * sizeof(double) + 1);
    if (!bytes || !out->v)
        return -1;
    for (size_t i = 0, o = 0; i < len; i += 4) {
        int q[4];
        for (int j = 0; j < 4; j++)
            q[j] = i + 4 == len && j >= 4 - (int)pad ? 0 : b64_value(s[i + j]);
        if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[3] < 0)
            return -1;
        uint32_t v = (uint32_t)q[0] << 18 | (uint32_t)q[1] << 12 | (uint32_t)q[2] << 6 | (uint32_t)q[3];
        bytes[o++] = (unsigned char)(v >> 16);
        bytes[o++] = (unsigned char)(v >> 8);
        bytes[o++] = (unsigned char)v;
    }
    for (int i = 0; i < out->dim; i++) {
        const unsigned char *b = bytes + 4 * i;
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        float f;
        memcpy(&f, &u, sizeof(f));
        out->v[i] = f;
    }
    return 0;
}

/* ---- replies ------------------------------------------------------------------ */

static int malformed(struct sl_error *e, const char *what)
{
    sl_error_set(e, 502, "upstream_error", "the upstream embeddings reply is malformed: %s", what);
    return -1;
}

static int from_numbers(const cJSON *arr, struct sl_arena *a, struct sl_embed_vec *out)
{
    const cJSON *x;
    int n = cJSON_GetArraySize(arr), i = 0;
    out->dim = n;
    out->v = sl_arena_alloc(a, (size_t)n * sizeof(double) + 1);
    if (!out->v)
        return -1;
    cJSON_ArrayForEach(x, arr)
    {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
            return -1;
        out->v[i++] = x->valuedouble;
    }
    return 0;
}

/* Stores one vector (numbers, or base64 from an OpenAI-format provider) at idx. */
static int put_vector(const cJSON *emb, int idx, int cnt, size_t *budget, struct sl_arena *a,
                      struct sl_embed_vec *vecs, struct sl_error *e)
{
    if (idx < 0 || idx >= cnt)
        return malformed(e, "an index is out of range");
    if (vecs[idx].v)
        return malformed(e, "an index appears twice");
    int rc = cJSON_IsArray(emb)    ? from_numbers(emb, a, &vecs[idx])
             : cJSON_IsString(emb) ? from_base64(emb->valuestring, a, &vecs[idx])
                                   : -1;
    if (rc)
        return malformed(e, "an embedding is not an array of numbers");
    if ((size_t)vecs[idx].dim > *budget)
        return malformed(e, "the embeddings are larger than sluice keeps for one reply");
    *budget -= (size_t)vecs[idx].dim;
    return 0;
}

static int64_t usage_tokens(const cJSON *usage, const char *key, struct sl_embed_parsed *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0)
        return 0;
    out->usage_present = 1;
    return sl_json_clamp_int(v->valuedouble);
}

/* Walks the shape's list of embeddings: each item's vector and index within the part. */
static int parse_items(enum sl_embed_wire w, const cJSON *root, int cnt, size_t max_values,
                       struct sl_arena *a, struct sl_embed_vec *vecs, struct sl_embed_parsed *out,
                       struct sl_error *e)
{
    const cJSON *list = w == SL_EMBED_OPENAI ? cJSON_GetObjectItemCaseSensitive(root, "data")
                        : w == SL_EMBED_GEMINI
                            ? cJSON_GetObjectItemCaseSensitive(root, "embeddings")
                            : cJSON_GetObjectItemCaseSensitive(
                                  cJSON_GetObjectItemCaseSensitive(root, "output"), "embeddings");
    const char *vkey = w == SL_EMBED_GEMINI ? "values" : "embedding";
    const char *ikey = w == SL_EMBED_DASHSCOPE ? "text_index" : "index";
    const cJSON *it;
    size_t budget = max_values;
    int pos = 0;
    if (!cJSON_IsArray(list))
        return malformed(e, "no list of embeddings");
    if (cJSON_GetArraySize(list) != cnt)
        return malformed(e, "not one embedding per input");
    cJSON_ArrayForEach(it, list)
    {
        int idx = (int)sl_json_int(it, ikey, pos++);
        if (put_vector(cJSON_GetObjectItemCaseSensitive(it, vkey), idx, cnt, &budget, a, vecs, e))
            return -1;
    }
    out->values = max_values - budget;
    return 0;
}

int sl_embed_parse_reply(enum sl_embed_wire w, const char *body, size_t len, int cnt,
                         size_t max_values, struct sl_arena *a, struct sl_embed_vec *vecs,
                         struct sl_embed_parsed *out, struct sl_error *e)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    int rc;
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return malformed(e, "not a JSON object");
    }
    rc = parse_items(w, root, cnt, max_values, a, vecs, out, e);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (w == SL_EMBED_OPENAI)
        out->tokens = usage_tokens(usage, "prompt_tokens", out);
    else if (w == SL_EMBED_DASHSCOPE)
        out->tokens = usage_tokens(usage, "total_tokens", out);
    cJSON_Delete(root);
    return rc;
}

int sl_embed_openai_usage(const char *body, size_t len, struct sl_embed_parsed *out)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return -1;
    }
    out->tokens = usage_tokens(cJSON_GetObjectItemCaseSensitive(root, "usage"), "prompt_tokens", out);
    cJSON_Delete(root);
    return 0;
}

/* OpenAI {"error":{message,type,code}}, DashScope {code,message,request_id} and Gemini
 * {"error":{code:400,message,status}} (sometimes inside a one-element array). */
void sl_embed_parse_error(enum sl_embed_wire w, int status, const char *body, size_t len,
                          struct sl_error *e)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *obj = cJSON_IsArray(root) ? cJSON_GetArrayItem(root, 0) : root;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(obj, "error");
    const cJSON *src = cJSON_IsObject(err) ? err : obj;
    const char *message = cJSON_IsString(err) ? err->valuestring : sl_json_str(src, "message", "");
    const char *code = sl_json_str(src, "code", NULL);
    if (!code && w == SL_EMBED_GEMINI)
        code = sl_json_str(src, "status", NULL);
    sl_error_set(e, status, sl_json_str(src, "type", sl_openai_error_type(status)), "%s", message);
    snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
    cJSON_Delete(root);
}

/* ---- the client's reply ------------------------------------------------------- */

/* The shortest of %.15g and %.17g that reads back as the same double (as cJSON does),
 * so the provider's numbers come out as it wrote them. */
static int put_double(struct sl_buf *b, double d)
{
    char s[40];
    int n = snprintf(s, sizeof(s), "%.15g", d);
    if (strtod(s, NULL) != d)
        n = snprintf(s, sizeof(s), "%.17g", d);
    return sl_buf_append(b, s, (size_t)n);
}

static int put_vector_json(const struct sl_embed_vec *v, int base64, struct sl_buf *out)
{
    int rc = sl_buf_puts(out, base64 ? "\"" : "[");
    if (base64)
        rc |= sl_embed_base64(v->v, v->dim, out);
    for (int i = 0; !base64 && i < v->dim && !rc; i++) {
        if (i)
            rc |= sl_buf_append(out, ",", 1);
        rc |= put_double(out, v->v[i]);
    }
    rc |= sl_buf_puts(out, base64 ? "\"" : "]");
    return rc;
}

int sl_embed_reply(const struct sl_embed_vec *vecs, int n, const char *model, int64_t tokens,
                   int base64, struct sl_buf *out)
{
    int rc = sl_buf_puts(out, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < n && !rc; i++) {
        rc |= sl_buf_printf(out, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":",
                            i ? "," : "", i);
        rc |= put_vector_json(&vecs[i], base64, out);
        rc |= sl_buf_puts(out, "}");
    }
    rc |= sl_buf_puts(out, "],\"model\":");
    rc |= quote(out, model);
    rc |= sl_buf_printf(out, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                        (long long)tokens, (long long)tokens);
    return rc ? -1 : 0;
}
