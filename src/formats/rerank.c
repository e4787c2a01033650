/* Rerank in three wire shapes: the client's request read and checked, upstream
 * requests built for the Jina-style, Cohere v2 and DashScope-native APIs, their replies
 * read into (index, score) hits, and the client reply built from the merged hits. */
#include "formats/rerank.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/limits.h"
#include "formats/openai.h"
#include "meter/estimate.h"
#include "providers/providers.h"

/* ---- the client's request ---------------------------------------------------- */

static int bad(struct sl_error *e, const char *param, const char *msg)
{
    sl_error_set(e, 400, "invalid_request_error", "%s", msg);
    snprintf(e->param, sizeof(e->param), "%s", param);
    return -1;
}

/* A document: a non-empty string, or an object whose "text" is one. */
static const char *doc_text(const cJSON *d)
{
    if (cJSON_IsObject(d))
        d = cJSON_GetObjectItemCaseSensitive(d, "text");
    return cJSON_IsString(d) && d->valuestring[0] ? d->valuestring : NULL;
}

static int read_documents(const cJSON *docs, struct sl_arena *a, struct sl_rerank_req *r,
                          struct sl_error *e)
{
    const cJSON *d;
    int i = 0;
    if (!docs)
        return bad(e, "documents", "'documents' is required");
    if (!cJSON_IsArray(docs))
        return bad(e, "documents", "'documents' must be an array of strings or {\"text\"} objects");
    r->ndocs = cJSON_GetArraySize(docs);
    if (r->ndocs == 0)
        return bad(e, "documents", "'documents' must not be empty");
    if (r->ndocs > SL_RERANK_MAX_DOCS)
        return bad(e, "documents", "'documents' may hold at most 10000 items");
    r->docs = sl_arena_alloc(a, (size_t)r->ndocs * sizeof(*r->docs));
    if (!r->docs) {
        sl_error_set(e, 503, "api_error", "out of memory");
        return -1;
    }
    cJSON_ArrayForEach(d, docs)
    {
        if (!(r->docs[i++] = doc_text(d)))
            return bad(e, "documents", "each item of 'documents' must be a non-empty string or "
                                       "an object with a non-empty string 'text'");
    }
    return 0;
}

static int read_options(const cJSON *root, struct sl_rerank_req *r, struct sl_error *e)
{
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(root, "top_n");
    const cJSON *ret = cJSON_GetObjectItemCaseSensitive(root, "return_documents");
    r->top_n = r->ndocs;
    r->return_documents = -1;
    if (top && !cJSON_IsNull(top)) {
        if (!sl_json_is_int(top) || top->valuedouble < 1)
            return bad(e, "top_n", "'top_n' must be a positive integer");
        r->top_n_given = 1;
        if (top->valuedouble < r->ndocs)
            r->top_n = (int)top->valuedouble;
    }
    if (ret && !cJSON_IsNull(ret)) {
        if (!cJSON_IsBool(ret))
            return bad(e, "return_documents", "'return_documents' must be a boolean");
        r->return_documents = cJSON_IsTrue(ret);
    }
    return 0;
}

int sl_rerank_request_read(const cJSON *root, struct sl_arena *a, struct sl_rerank_req *r,
                           struct sl_error *e)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "query");
    memset(r, 0, sizeof(*r));
    r->root = root;
    if (!q)
        return bad(e, "query", "'query' is required");
    if (!cJSON_IsString(q))
        return bad(e, "query", "'query' must be a string");
    if (!q->valuestring[0])
        return bad(e, "query", "'query' must not be empty");
    r->query = q->valuestring;
    if (read_documents(cJSON_GetObjectItemCaseSensitive(root, "documents"), a, r, e))
        return -1;
    return read_options(root, r, e);
}

/* ---- routing facts ------------------------------------------------------------ */

enum sl_rerank_wire sl_rerank_wire_of(const struct sl_provider_cfg *p)
{
    const char *preset = sl_provider_preset(p)->name;
    if (p->rerank != SL_RERANK_AUTO)
        return p->rerank;
    if (strcmp(preset, "cohere") == 0)
        return SL_RERANK_COHERE;
    if (strcmp(preset, "dashscope") == 0)
        return SL_RERANK_DASHSCOPE;
    return p->kind == SL_WIRE_OPENAI ? SL_RERANK_JINA : SL_RERANK_AUTO;
}

int sl_rerank_batch_limit(enum sl_rerank_wire w, const struct sl_model_cfg *m)
{
    if (m->max_batch > 0)
        return m->max_batch;
    /* DashScope: 500 documents per request (text-rerank API page); Cohere advises at
     * most 1,000; the Jina-style servers differ, 1024 is within each we know. */
    return w == SL_RERANK_DASHSCOPE ? 500 : w == SL_RERANK_COHERE ? 1000 : 1024;
}

int64_t sl_rerank_token_limit(enum sl_rerank_wire w)
{
    /* DashScope: "the total number of tokens for the query and all documents in a request
     * cannot exceed 30,000", counted as query tokens x documents + document tokens. */
    return w == SL_RERANK_DASHSCOPE ? 30000 * 8 / 10 : 0;
}

int sl_rerank_plan(const struct sl_rerank_req *r, int max_docs, int64_t max_tokens, int *starts)
{
    int64_t q = sl_estimate_text(r->query, strlen(r->query)), used = 0;
    int n = 0, in_part = 0;
    for (int i = 0; i < r->ndocs; i++) {
        int64_t t = q + sl_estimate_text(r->docs[i], strlen(r->docs[i]));
        if (in_part && (in_part == max_docs || (max_tokens > 0 && used + t > max_tokens)))
            in_part = 0;
        if (!in_part) {
            starts[n++] = i;
            used = 0;
        }
        in_part++;
        used += t;
    }
    starts[n] = r->ndocs;
    return n;
}

/* "https://host:port" of a URL (its scheme and authority). */
static size_t origin_len(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    return (size_t)(h - url) + strcspn(h, "/");
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

const char *sl_rerank_url(enum sl_rerank_wire w, const struct sl_model_cfg *m, struct sl_arena *a)
{
    const char *base = m->p->base_url;
    if (m->p->rerank_url)
        return m->p->rerank_url;
    if (w == SL_RERANK_DASHSCOPE)
        return sl_arena_sprintf(a, "%.*s%s", (int)origin_len(base), base, SL_RERANK_DASHSCOPE_PATH);
    if (w == SL_RERANK_COHERE) {
        size_t n = strlen(base);
        if (ends_with(base, "/v1") || ends_with(base, "/v2"))
            n -= 3;
        return sl_arena_sprintf(a, "%.*s/v2/rerank", (int)n, base);
    }
    return sl_arena_sprintf(a, "%s/rerank", base);
}

/* ---- upstream requests -------------------------------------------------------- */

static int quote(struct sl_buf *b, const char *s)
{
    return sl_json_quote(b, s, strlen(s));
}

static int put_docs(struct sl_buf *b, const struct sl_rerank_req *r, int off, int cnt)
{
    int rc = sl_buf_puts(b, "[");
    for (int i = 0; i < cnt && !rc; i++) {
        if (i)
            rc |= sl_buf_puts(b, ",");
        rc |= quote(b, r->docs[off + i]);
    }
    return rc | sl_buf_puts(b, "]");
}

static int part_top_n(const struct sl_rerank_req *r, int cnt)
{
    return r->top_n < cnt ? r->top_n : cnt;
}

static int known_field(const char *k)
{
    static const char *const known[] = {"model", "query", "documents", "top_n", "return_documents"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(k, known[i]) == 0)
            return 1;
    return 0;
}

/* The client's other top-level fields, as ",key:value" pairs. */
static int put_extra(struct sl_buf *b, const cJSON *root)
{
    const cJSON *f;
    int rc = 0;
    cJSON_ArrayForEach(f, root)
    {
        if (!f->string || known_field(f->string))
            continue;
        char *v = cJSON_PrintUnformatted(f);
        rc |= !v || sl_buf_puts(b, ",") || quote(b, f->string) || sl_buf_puts(b, ":") ||
              sl_buf_puts(b, v);
        cJSON_free(v);
    }
    return rc;
}

/* Jina, SiliconFlow, vLLM: {model, query, documents, top_n, return_documents}. Cohere
 * v2: the same without return_documents (v2 never returns the documents). */
static int flat_body(enum sl_rerank_wire w, const struct sl_rerank_req *r, const char *model,
                     int off, int cnt, struct sl_buf *b)
{
    int rc = sl_buf_puts(b, "{\"model\":") | quote(b, model);
    rc |= sl_buf_puts(b, ",\"query\":") | quote(b, r->query);
    rc |= sl_buf_puts(b, ",\"documents\":") | put_docs(b, r, off, cnt);
    if (r->top_n_given || cnt < r->ndocs)
        rc |= sl_buf_printf(b, ",\"top_n\":%d", part_top_n(r, cnt));
    if (w == SL_RERANK_JINA && r->return_documents >= 0)
        rc |= sl_buf_printf(b, ",\"return_documents\":%s", r->return_documents ? "true" : "false");
    if (r->root)
        rc |= put_extra(b, r->root);
    return rc | sl_buf_puts(b, "}");
}

/* {"model","input":{"query","documents"},"parameters":{"top_n","return_documents"}}:
 * sluice has the texts, so DashScope is never asked to send them back. */
static int dashscope_body(const struct sl_rerank_req *r, const char *model, int off, int cnt,
                          struct sl_buf *b)
{
    int rc = sl_buf_puts(b, "{\"model\":") | quote(b, model);
    rc |= sl_buf_puts(b, ",\"input\":{\"query\":") | quote(b, r->query);
    rc |= sl_buf_puts(b, ",\"documents\":") | put_docs(b, r, off, cnt);
    rc |= sl_buf_printf(b, "},\"parameters\":{\"top_n\":%d,\"return_documents\":false}}",
                        part_top_n(r, cnt));
    return rc;
}

int sl_rerank_encode(enum sl_rerank_wire w, const struct sl_rerank_req *r,
                     const struct sl_model_cfg *m, int off, int cnt, struct sl_arena *a,
                     struct sl_encoded *out)
{
    struct sl_buf b = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    const char *key = m->p->api_key;
    int rc = w == SL_RERANK_DASHSCOPE ? dashscope_body(r, m->model, off, cnt, &b)
                                      : flat_body(w, r, m->model, off, cnt, &b);
    memset(out, 0, sizeof(*out));
    if (!rc && b.ptr) {
        out->body = sl_arena_strndup(a, b.ptr, b.len);
        out->len = b.len;
    }
    sl_buf_release(&b);
    out->url = sl_rerank_url(w, m, a);
    out->headers[out->nheaders++] = "Content-Type: application/json";
    out->headers[out->nheaders++] = "Accept: application/json";
    if (key)
        out->headers[out->nheaders++] = sl_arena_sprintf(a, "Authorization: Bearer %s", key);
    for (int i = 0; i < out->nheaders; i++)
        if (!out->headers[i])
            return -1;
    return out->body && out->url ? 0 : -1;
}

/* ---- replies ------------------------------------------------------------------ */

static int malformed(struct sl_error *e, const char *what)
{
    sl_error_set(e, 502, "upstream_error", "the upstream rerank reply is malformed: %s", what);
    return -1;
}

static const cJSON *child(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int read_hits(const cJSON *list, int off, int cnt, struct sl_rerank_hit *hits,
                     struct sl_rerank_parsed *out, struct sl_error *e)
{
    const cJSON *it;
    char *seen = calloc((size_t)cnt + 1, 1);
    int rc = seen ? 0 : malformed(e, "out of memory");
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *idx = child(it, "index"), *score = child(it, "relevance_score");
        if (rc)
            break;
        if (!sl_json_is_int(idx) || idx->valuedouble < 0 || idx->valuedouble >= cnt)
            rc = malformed(e, "an index is missing or out of range");
        else if (!cJSON_IsNumber(score) || !isfinite(score->valuedouble))
            rc = malformed(e, "a relevance_score is missing");
        else if (seen[idx->valueint]++)
            rc = malformed(e, "an index appears twice");
        else
            hits[out->nhits++] = (struct sl_rerank_hit){off + idx->valueint, score->valuedouble};
    }
    free(seen);
    return rc;
}

static int64_t tokens_at(const cJSON *o, const char *key, struct sl_rerank_parsed *out)
{
    const cJSON *v = child(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0)
        return 0;
    out->usage_present = 1;
    return sl_json_clamp_int(v->valuedouble);
}

/* usage.total_tokens (Jina, DashScope), usage.prompt_tokens (vLLM), meta.tokens or
 * meta.billed_units input_tokens (SiliconFlow, Cohere when it reports them). */
static void read_usage(const cJSON *root, struct sl_rerank_parsed *out)
{
    const cJSON *usage = child(root, "usage"), *meta = child(root, "meta");
    const cJSON *billed = child(meta, "billed_units");
    out->tokens = tokens_at(usage, "total_tokens", out);
    if (!out->usage_present)
        out->tokens = tokens_at(usage, "prompt_tokens", out);
    if (!out->usage_present)
        out->tokens = tokens_at(child(meta, "tokens"), "input_tokens", out);
    if (!out->usage_present)
        out->tokens = tokens_at(billed, "input_tokens", out);
    const cJSON *su = child(billed, "search_units");
    if (cJSON_IsNumber(su) && su->valuedouble > 0)
        out->search_units = sl_json_clamp_int(su->valuedouble);
}

int sl_rerank_parse_reply(enum sl_rerank_wire w, const char *body, size_t len, int off, int cnt,
                          struct sl_rerank_hit *hits, struct sl_rerank_parsed *out,
                          struct sl_error *e)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    int rc;
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return malformed(e, "not a JSON object");
    }
    const cJSON *list = w == SL_RERANK_DASHSCOPE ? child(child(root, "output"), "results")
                                                 : child(root, "results");
    if (!cJSON_IsArray(list))
        rc = malformed(e, "no list of results");
    else if (cJSON_GetArraySize(list) > cnt)
        rc = malformed(e, "more results than documents");
    else
        rc = read_hits(list, off, cnt, hits, out, e);
    read_usage(root, out);
    cJSON_Delete(root);
    return rc;
}

void sl_rerank_parse_error(int status, const char *body, size_t len, struct sl_error *e)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *err = child(root, "error");
    const cJSON *src = cJSON_IsObject(err) ? err : root;
    const char *message = cJSON_IsString(err) ? err->valuestring
                                              : sl_json_str(src, "message",
                                                            sl_json_str(src, "detail", ""));
    const cJSON *code = child(src, "code");
    sl_error_set(e, status, sl_json_str(src, "type", sl_openai_error_type(status)), "%s", message);
    if (cJSON_IsString(code))
        snprintf(e->code, sizeof(e->code), "%s", code->valuestring);
    else if (sl_json_is_int(code))
        snprintf(e->code, sizeof(e->code), "%lld", (long long)sl_json_clamp_int(code->valuedouble));
    else
        e->code[0] = 0;
    cJSON_Delete(root);
}

/* ---- merging and the client's reply ------------------------------------------- */

static int by_score(const void *pa, const void *pb)
{
    const struct sl_rerank_hit *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

void sl_rerank_sort(struct sl_rerank_hit *hits, int n)
{
    if (n > 1)
        qsort(hits, (size_t)n, sizeof(*hits), by_score);
}

/* The shortest of %.15g and %.17g that reads back as the same double. */
static int put_double(struct sl_buf *b, double d)
{
    char s[40];
    int n = snprintf(s, sizeof(s), "%.15g", d);
    if (strtod(s, NULL) != d)
        n = snprintf(s, sizeof(s), "%.17g", d);
    return sl_buf_append(b, s, (size_t)n);
}

int sl_rerank_reply(const struct sl_rerank_req *r, const struct sl_rerank_hit *hits, int n,
                    const char *id, const char *model, int64_t tokens, int64_t search_units,
                    struct sl_buf *out)
{
    int rc = sl_buf_puts(out, "{\"id\":") | quote(out, id);
    rc |= sl_buf_puts(out, ",\"model\":") | quote(out, model);
    rc |= sl_buf_puts(out, ",\"results\":[");
    for (int i = 0; i < n && i < r->top_n && !rc; i++) {
        rc |= sl_buf_printf(out, "%s{\"index\":%d,\"relevance_score\":", i ? "," : "", hits[i].index);
        rc |= put_double(out, hits[i].score);
        if (r->return_documents == 1)
            rc |= sl_buf_puts(out, ",\"document\":{\"text\":") | quote(out, r->docs[hits[i].index]) |
                  sl_buf_puts(out, "}");
        rc |= sl_buf_puts(out, "}");
    }
    rc |= sl_buf_printf(out, "],\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}",
                        (long long)tokens, (long long)tokens);
    rc |= sl_buf_printf(out, ",\"meta\":{\"api_version\":{\"version\":\"2\"},"
                             "\"billed_units\":{\"search_units\":%lld}}}",
                        (long long)search_units);
    return rc ? -1 : 0;
}
