/* HTTP calls from the knowledge base to sluice's own /v1/embeddings and /v1/rerank. */
#include "kb/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "core/json.h"
#include "core/limits.h"

void sl_kbc_release(struct sl_kb_client *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    c->curl = NULL;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
    return sl_buf_append(arg, p, size * n) ? 0 : size * n;
}

/* The error message of an OpenAI-shaped error body, else the start of the body. */
static void describe_error(struct sl_kb_client *c, const char *path, const struct sl_buf *b)
{
    cJSON *root = b->ptr ? cJSON_Parse(b->ptr) : NULL;
    const char *msg = sl_json_str(cJSON_GetObjectItemCaseSensitive(root, "error"), "message", NULL);
    snprintf(c->err, sizeof(c->err), "%s answered HTTP %d: %.300s", path, c->status,
             msg ? msg : b->ptr ? b->ptr : "");
    cJSON_Delete(root);
}

int sl_kbc_post(struct sl_kb_client *c, const char *path, const char *stage, const char *body,
                size_t len, struct sl_buf *out)
{
    return sl_kbc_request(c, "POST", path, stage, body, len, out);
}

int sl_kbc_request(struct sl_kb_client *c, const char *method, const char *path,
                   const char *stage, const char *body, size_t len, struct sl_buf *out)
{
    char url[SL_MAX_URL], auth[256], tag[SL_MAX_NAME + 1200], key[SL_MAX_NAME + 32];
    struct curl_slist *h = NULL;
    if (!c->curl && !(c->curl = curl_easy_init())) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return -1;
    }
    snprintf(url, sizeof(url), "%s%s", c->base_url, path);
    const char *extra = c->extra_tags ? c->extra_tags : "";
    if (stage)
        snprintf(tag, sizeof(tag), "x-sluice-tag: kb=%s,stage=%s%s%s", c->kb ? c->kb : "", stage,
                 extra[0] ? "," : "", extra);
    else
        snprintf(tag, sizeof(tag), "x-sluice-tag: %s", extra);
    h = curl_slist_append(h, "Content-Type: application/json");
    if (stage || extra[0])
        h = curl_slist_append(h, tag);
    if (c->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, auth);
    }
    if (c->key && c->key[0]) {
        snprintf(key, sizeof(key), "x-sluice-kb-key: %s", c->key);
        h = curl_slist_append(h, key);
    }
    CURL *e = c->curl;
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 300L);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    c->calls++;
    c->status = (int)status;
    if (rc != CURLE_OK) {
        snprintf(c->err, sizeof(c->err), "%s: %s", path, curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        describe_error(c, path, out);
        return -1;
    }
    return 0;
}

/* The JSON body of one embeddings batch. */
static char *embed_body(const char *model, const char *const *texts, const size_t *lens, size_t n)
{
    struct sl_buf b = SL_BUF_INIT(SL_MAX_REQUEST_BODY);
    int bad = sl_buf_puts(&b, "{\"model\":") || sl_json_quote(&b, model, strlen(model)) ||
              sl_buf_puts(&b, ",\"input\":[");
    for (size_t i = 0; i < n && !bad; i++)
        bad = (i && sl_buf_puts(&b, ",")) || sl_json_quote(&b, texts[i], lens[i]);
    bad = bad || sl_buf_puts(&b, "]}");
    if (bad) {
        sl_buf_release(&b);
        return NULL;
    }
    return b.ptr;
}

static void count_tokens(struct sl_kb_client *c, const char *stage, const cJSON *root)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    int64_t t = sl_json_int(u, "total_tokens", sl_json_int(u, "prompt_tokens", 0));
    if (!stage)
        return;
    if (strcmp(stage, "recall") == 0)
        c->recall_tokens += t;
    else if (strcmp(stage, "rerank") == 0)
        c->rerank_tokens += t;
    else
        c->ingest_tokens += t;
}

static int read_vectors(struct sl_kb_client *c, const char *stage, const char *reply, size_t n,
                        float *out, int *dim)
{
    cJSON *root = cJSON_Parse(reply);
    count_tokens(c, stage, root);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data"), *item;
    size_t got = 0;
    int rc = cJSON_GetArraySize(data) == (int)n ? 0 : -1;
    cJSON_ArrayForEach(item, data)
    {
        const cJSON *emb = cJSON_GetObjectItemCaseSensitive(item, "embedding"), *v;
        int64_t index = sl_json_int(item, "index", (int64_t)got);
        int d = cJSON_GetArraySize(emb);
        if (rc || !cJSON_IsArray(emb) || d == 0 || d > SL_KB_MAX_DIM || (*dim && d != *dim) || index < 0 ||
            (size_t)index >= n) {
            rc = -1;
            break;
        }
        *dim = d;
        int j = 0;
        cJSON_ArrayForEach(v, emb) out[(size_t)index * (size_t)d + (size_t)j++] = (float)v->valuedouble;
        got++;
    }
    if (rc)
        snprintf(c->err, sizeof(c->err),
                 "the embeddings reply does not hold %zu vectors of one dimension%s", n,
                 *dim ? " (the knowledge base's)" : "");
    cJSON_Delete(root);
    return rc;
}

int sl_kbc_embed(struct sl_kb_client *c, const char *model, const char *stage,
                 const char *const *texts, const size_t *lens, size_t n, size_t batch,
                 float **out, int *dim)
{
    *out = NULL;
    float *all = NULL;
    for (size_t off = 0; off < n; off += batch) {
        size_t cnt = n - off < batch ? n - off : batch;
        char *body = embed_body(model, texts + off, lens + off, cnt);
        struct sl_buf reply = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
        int rc = body ? sl_kbc_post(c, "/v1/embeddings", stage, body, strlen(body), &reply) : -1;
        if (!body)
            snprintf(c->err, sizeof(c->err), "an embeddings batch is too large");
        float *part = rc ? NULL : malloc(cnt * SL_KB_MAX_DIM * sizeof(float));
        int d = *dim;
        rc = rc || !part || read_vectors(c, stage, reply.ptr ? reply.ptr : "", cnt, part, &d) ? -1 : 0;
        if (!rc && !all) {
            *dim = d;
            all = malloc(n * (size_t)d * sizeof(float));
            rc = all ? 0 : -1;
        }
        if (!rc)
            memcpy(all + off * (size_t)d, part, cnt * (size_t)d * sizeof(float));
        free(part);
        free(body);
        sl_buf_release(&reply);
        if (rc) {
            free(all);
            return -1;
        }
    }
    *out = all;
    return 0;
}

int sl_kbc_rerank(struct sl_kb_client *c, const char *model, const char *query,
                  const char *const *docs, size_t n, double *scores)
{
    struct sl_buf b = SL_BUF_INIT(SL_MAX_REQUEST_BODY);
    int bad = sl_buf_puts(&b, "{\"model\":") || sl_json_quote(&b, model, strlen(model)) ||
              sl_buf_puts(&b, ",\"query\":") || sl_json_quote(&b, query, strlen(query)) ||
              sl_buf_puts(&b, ",\"documents\":[");
    for (size_t i = 0; i < n && !bad; i++)
        bad = (i && sl_buf_puts(&b, ",")) || sl_json_quote(&b, docs[i], strlen(docs[i]));
    bad = bad || sl_buf_printf(&b, "],\"top_n\":%zu}", n);
    struct sl_buf reply = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    int rc = bad ? -1 : sl_kbc_post(c, "/v1/rerank", "rerank", b.ptr, b.len, &reply);
    sl_buf_release(&b);
    if (bad)
        snprintf(c->err, sizeof(c->err), "the rerank request is too large");
    cJSON *root = rc ? NULL : cJSON_Parse(reply.ptr ? reply.ptr : "");
    count_tokens(c, "rerank", root);
    const cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "results"), *r;
    for (size_t i = 0; i < n; i++)
        scores[i] = -1;
    if (!rc && !cJSON_IsArray(results)) {
        snprintf(c->err, sizeof(c->err), "the rerank reply has no results array");
        rc = -1;
    }
    const cJSON *list = rc ? NULL : results;
    cJSON_ArrayForEach(r, list)
    {
        int64_t index = sl_json_int(r, "index", -1);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "relevance_score");
        if (index >= 0 && (size_t)index < n && cJSON_IsNumber(s))
            scores[index] = s->valuedouble;
    }
    cJSON_Delete(root);
    sl_buf_release(&reply);
    return rc;
}
