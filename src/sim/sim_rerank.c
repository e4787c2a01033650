/* Deterministic rerank: the relevance score (overlap of lower-cased words and CJK
 * character bigrams between query and document) and the three rerank endpoints that
 * serve it: Jina-style /v1/rerank, Cohere's /v2/rerank and DashScope's native path,
 * each with its document limit, usage and error shape. */
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

#define JINA_MAX_DOCS      1024
#define COHERE_MAX_DOCS    1000
#define DASHSCOPE_MAX_DOCS 500
#define COHERE_DOCS_PER_SEARCH_UNIT 100
#define MAX_FEATURES       4096 /* distinct features of one text that count */

/* ---- the score ---- */

struct features {
    uint64_t h[MAX_FEATURES];
    int n;
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static void add(struct features *f, uint64_t h)
{
    if (f->n < MAX_FEATURES)
        f->h[f->n++] = h;
}

/* Decodes one UTF-8 code point at s[*i] (invalid bytes read as themselves). */
static uint32_t next_cp(const unsigned char *s, size_t n, size_t *i)
{
    uint32_t c = s[(*i)++];
    int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (c < 0x80 || c < 0xC0)
        return c;
    c &= 0x3Fu >> more;
    while (more-- && *i < n && (s[*i] & 0xC0) == 0x80)
        c = c << 6 | (s[(*i)++] & 0x3F);
    return c;
}

/* Letters of the CJK scripts: ideographs, kana, hangul (not their punctuation). */
static int is_cjk(uint32_t c)
{
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x9FFF) ||
           (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x2FFFF);
}

/* A word character outside CJK: ASCII letters and digits, and other letters (>= 0x80
 * but not CJK, not general or CJK punctuation, not full-width forms). */
static int is_word(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    return !is_cjk(c) && !(c >= 0x2000 && c <= 0x206F) && !(c >= 0x3000 && c <= 0x303F) &&
           !(c >= 0xFF00 && c <= 0xFFEF);
}

/* A run of CJK characters: each adjacent pair, or the character alone in a run of one. */
static void add_cjk_run(struct features *f, const uint32_t *run, int n)
{
    for (int i = 0; i + 1 < n; i++)
        add(f, fnv1a(fnv1a(2, "b", 1), &run[i], 2 * sizeof(*run)));
    if (n == 1)
        add(f, fnv1a(fnv1a(2, "u", 1), run, sizeof(*run)));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* True at the start of an "@sim:" token (whitespace-delimited): directives do not count. */
static int directive_at(const char *s, size_t i)
{
    return strncmp(s + i, "@sim:", 5) == 0 && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\n' ||
                                               s[i - 1] == '\t');
}

static void features_of(const char *text, struct features *f)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), i = 0;
    uint32_t run[64];
    int nrun = 0;
    char word[256];
    size_t nword = 0;
    f->n = 0;
    while (i <= n) {
        if (i < n && directive_at(text, i)) {
            while (i < n && s[i] != ' ' && s[i] != '\n' && s[i] != '\t')
                i++;
        }
        size_t start = i;
        uint32_t c = i < n ? next_cp(s, n, &i) : (i++, 0);
        if (c && is_word(c)) {
            for (size_t k = start; k < i && nword < sizeof(word); k++)
                word[nword++] = s[k] >= 'A' && s[k] <= 'Z' ? (char)(s[k] + 32) : (char)s[k];
        } else if (nword) {
            add(f, fnv1a(fnv1a(1, "w", 1), word, nword));
            nword = 0;
        }
        if (c && is_cjk(c) && nrun < 64) {
            run[nrun++] = c;
        } else if (nrun) {
            add_cjk_run(f, run, nrun);
            if (c && is_cjk(c)) { /* a run longer than 64: go on from its last character */
                run[0] = run[nrun - 1];
                run[1] = c;
                nrun = 2;
                continue;
            }
            nrun = 0;
        }
    }
    qsort(f->h, (size_t)f->n, sizeof(f->h[0]), cmp_u64);
    int k = 0;
    for (int j = 0; j < f->n; j++)
        if (k == 0 || f->h[k - 1] != f->h[j])
            f->h[k++] = f->h[j];
    f->n = k;
}

static int common(const struct features *a, const struct features *b)
{
    int i = 0, j = 0, c = 0;
    while (i < a->n && j < b->n) {
        if (a->h[i] == b->h[j])
            c++, i++, j++;
        else if (a->h[i] < b->h[j])
            i++;
        else
            j++;
    }
    return c;
}

static double score(const struct features *q, const struct features *d)
{
    if (q->n == 0 || d->n == 0)
        return 0;
    double c = common(q, d);
    return 0.9 * c / q->n + 0.1 * c / d->n;
}

double sl_sim_rerank_score(const char *query, const char *doc)
{
    struct features *q = malloc(sizeof(*q)), *d = malloc(sizeof(*d));
    double s = 0;
    if (q && d) {
        features_of(query, q);
        features_of(doc, d);
        s = score(q, d);
    }
    free(q);
    free(d);
    return s;
}

/* ---- one request ---- */

struct hit {
    int index;
    double score;
};

struct rerank {
    const char *query;
    const char **docs;
    int n, top_n, return_documents;
    struct hit *hits;
    int tokens;
    char request_id[32];
};

static int by_score(const void *pa, const void *pb)
{
    const struct hit *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* Scores, sorts and counts: tokens are the words of the query and of each document,
 * plus one per text. */
static int rank(struct rerank *r)
{
    struct features *q = malloc(sizeof(*q)), *d = malloc(sizeof(*d));
    r->hits = calloc((size_t)r->n, sizeof(*r->hits));
    if (!q || !d || !r->hits) {
        free(q);
        free(d);
        return -1;
    }
    features_of(r->query, q);
    r->tokens = sl_sim_words(r->query, strlen(r->query)) + 1;
    for (int i = 0; i < r->n; i++) {
        features_of(r->docs[i], d);
        r->hits[i] = (struct hit){i, score(q, d)};
        r->tokens += sl_sim_words(r->docs[i], strlen(r->docs[i])) + 1;
    }
    qsort(r->hits, (size_t)r->n, sizeof(*r->hits), by_score);
    free(q);
    free(d);
    return 0;
}

/* documents: strings, or {"text"} objects when objects_ok. */
static int read_docs(const cJSON *docs, int max, int objects_ok, struct rerank *r, const char **err)
{
    const cJSON *it;
    int n = cJSON_IsArray(docs) ? cJSON_GetArraySize(docs) : 0;
    if (n == 0 || n > max) {
        *err = n > max ? "too many documents in one request" : "documents must be a non-empty list";
        return -1;
    }
    r->docs = calloc((size_t)n, sizeof(*r->docs));
    if (!r->docs)
        return -1;
    cJSON_ArrayForEach(it, docs)
    {
        const cJSON *t = objects_ok && cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "text") : it;
        if (!cJSON_IsString(t) || !t->valuestring[0]) {
            *err = "each document must be a non-empty string";
            return -1;
        }
        r->docs[r->n++] = t->valuestring;
    }
    return 0;
}

static int read_common(const cJSON *query, const cJSON *top, const cJSON *ret, struct rerank *r,
                       const char **err)
{
    if (!cJSON_IsString(query) || !query->valuestring[0]) {
        *err = "query must be a non-empty string";
        return -1;
    }
    r->query = query->valuestring;
    r->top_n = r->n;
    if (top && !cJSON_IsNull(top)) {
        if (!sl_json_is_int(top) || top->valuedouble < 1) {
            *err = "top_n must be a positive integer";
            return -1;
        }
        if (top->valuedouble < r->n)
            r->top_n = (int)top->valuedouble;
    }
    r->return_documents = cJSON_IsTrue(ret);
    return 0;
}

/* True, after sending the error, when the query's @sim: directives inject a failure. */
static int injected(struct sim_loop *l, struct evhttp_request *req, const struct sim_wire *wire,
                    const struct rerank *r)
{
    struct sim_directives d;
    sl_sim_directives_parse(r->query, &d);
    if (!sl_sim_failure_due(l->fails, &d, r->query))
        return 0;
    char msg[64];
    int status = d.status >= 400 ? d.status : 500;
    snprintf(msg, sizeof(msg), "Simulated HTTP %d error (@sim:status).", status);
    struct sim_error e = {status, msg, NULL, r->request_id, d.retry_after};
    sl_sim_send_error(req, wire, &e);
    return 1;
}

static int put_results(const struct rerank *r, struct sl_buf *out)
{
    int rc = sl_buf_puts(out, "[");
    for (int i = 0; i < r->top_n && !rc; i++) {
        const struct hit *h = &r->hits[i];
        rc = sl_buf_printf(out, "%s{\"index\":%d,\"relevance_score\":%.17g", i ? "," : "", h->index,
                           h->score);
        if (!rc && r->return_documents)
            rc = sl_buf_puts(out, ",\"document\":{\"text\":") ||
                 sl_json_quote(out, r->docs[h->index], strlen(r->docs[h->index])) ||
                 sl_buf_puts(out, "}");
        rc = rc || sl_buf_puts(out, "}");
    }
    return rc || sl_buf_puts(out, "]");
}

/* ---- the three shapes ---- */

enum shape { JINA, COHERE, DASHSCOPE };

/* Cohere's errors: {"id", "message"}. */
static int cohere_error(const struct sim_error *e, struct sl_buf *out)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "id", e->request_id ? e->request_id : "");
    cJSON_AddStringToObject(body, "message", e->message);
    return sl_sim_append_json(body, 0, out);
}

static const struct sim_wire cohere_wire = {
    .id_prefix = "",
    .request_id_header = NULL,
    .retry_after_header = 1,
    .error = cohere_error,
};

static const struct sim_wire *wire_of(enum shape s)
{
    return s == COHERE ? &cohere_wire : s == DASHSCOPE ? &sl_sim_dashscope : &sl_sim_openai;
}

static int read_shape(enum shape s, const cJSON *body, struct rerank *r, const char **err)
{
    const cJSON *input = s == DASHSCOPE ? cJSON_GetObjectItemCaseSensitive(body, "input") : body;
    const cJSON *params = s == DASHSCOPE ? cJSON_GetObjectItemCaseSensitive(body, "parameters") : body;
    int max = s == COHERE ? COHERE_MAX_DOCS : s == DASHSCOPE ? DASHSCOPE_MAX_DOCS : JINA_MAX_DOCS;
    if (read_docs(cJSON_GetObjectItemCaseSensitive(input, "documents"), max, s == JINA, r, err))
        return -1;
    return read_common(cJSON_GetObjectItemCaseSensitive(input, "query"),
                       cJSON_GetObjectItemCaseSensitive(params, "top_n"),
                       s == COHERE ? NULL : cJSON_GetObjectItemCaseSensitive(params, "return_documents"),
                       r, err);
}

static int reply(enum shape s, const struct rerank *r, const char *model, struct sl_buf *out)
{
    int rc;
    if (s == DASHSCOPE) {
        rc = sl_buf_puts(out, "{\"output\":{\"results\":") || put_results(r, out) ||
             sl_buf_printf(out, "},\"usage\":{\"total_tokens\":%d},\"request_id\":\"%s\"}",
                           r->tokens, r->request_id);
    } else if (s == COHERE) {
        int units = (r->n + COHERE_DOCS_PER_SEARCH_UNIT - 1) / COHERE_DOCS_PER_SEARCH_UNIT;
        rc = sl_buf_printf(out, "{\"id\":\"%s\",\"results\":", r->request_id) || put_results(r, out) ||
             sl_buf_printf(out, ",\"meta\":{\"api_version\":{\"version\":\"2\"},"
                                "\"billed_units\":{\"search_units\":%d}}}", units);
    } else {
        rc = sl_buf_printf(out, "{\"id\":\"%s\",\"model\":", r->request_id) ||
             sl_json_quote(out, model, strlen(model)) || sl_buf_puts(out, ",\"results\":") ||
             put_results(r, out) ||
             sl_buf_printf(out, ",\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d}}", r->tokens,
                           r->tokens);
    }
    return rc ? -1 : 0;
}

static void serve(struct sim_loop *l, struct evhttp_request *req, enum shape s)
{
    const struct sim_wire *wire = wire_of(s);
    cJSON *body = sl_sim_read_json(req);
    struct rerank r = {0};
    const char *err = "The request body is not valid JSON.";
    struct sl_buf out = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    sl_sim_request_id(l, r.request_id);
    if (!cJSON_IsObject(body) || read_shape(s, body, &r, &err)) {
        struct sim_error e = {400, err, NULL, r.request_id, -1};
        sl_sim_send_error(req, wire, &e);
    } else if (!injected(l, req, wire, &r)) {
        if (rank(&r) || reply(s, &r, sl_json_str(body, "model", "sim-rerank"), &out)) {
            struct sim_error e = {500, "Out of memory.", NULL, r.request_id, -1};
            sl_sim_send_error(req, wire, &e);
        } else {
            sl_sim_send_body(req, 200, &out, -1);
        }
    }
    sl_buf_release(&out);
    free(r.docs);
    free(r.hits);
    cJSON_Delete(body);
}

void sl_sim_rerank_jina(struct sim_loop *l, struct evhttp_request *req)
{
    serve(l, req, JINA);
}

void sl_sim_rerank_cohere(struct sim_loop *l, struct evhttp_request *req)
{
    serve(l, req, COHERE);
}

void sl_sim_rerank_dashscope(struct sim_loop *l, struct evhttp_request *req)
{
    serve(l, req, DASHSCOPE);
}
