/* The knowledge-base API on a KB thread: each operation against the store, with the
 * model calls made back to sluice (kb/client.h). Results go into the request for the
 * worker to send (kb_api.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "core/json.h"
#include "kb/answer.h"
#include "kb/client.h"
#include "kb/extract.h"
#include "kb/ingest.h"
#include "kb/retrieve.h"
#include "kb/store.h"
#include "meter/cost.h"
#include "meter/ledger.h"
#include "server/internal.h"
#include "server/kb_api.h"
#include "server/kb_compare.h"

#define DEFAULT_ANSWER_MODEL "deepseek-chat"

static void fail(struct kb_req *r, int status, const char *type, const char *code, const char *fmt,
                 const char *arg)
{
    sl_error_set(&r->e, status, type, fmt, arg);
    snprintf(r->e.code, sizeof(r->e.code), "%s", code ? code : "");
}

static void fail_store(struct kb_req *r, const char *err)
{
    fail(r, 500, "api_error", "store_error", "%s", err);
}

static void put_str(struct sl_buf *b, const char *key, const char *v, int first)
{
    sl_buf_printf(b, "%s\"%s\":", first ? "" : ",", key);
    sl_json_quote(b, v, strlen(v));
}

static const char *rerank_name(enum sl_kb_rerank r)
{
    return r == SL_KB_RERANK_MODEL ? "model" : r == SL_KB_RERANK_EMBED ? "embed" : "none";
}

static void kb_json(struct sl_buf *b, const struct sl_kb *kb, int counts)
{
    sl_buf_puts(b, "{\"object\":\"knowledge_base\"");
    put_str(b, "name", kb->name, 0);
    put_str(b, "embed_model", kb->embed_model, 0);
    sl_buf_printf(b, ",\"dimensions\":%d", kb->dim);
    put_str(b, "rerank", rerank_name(kb->rerank), 0);
    put_str(b, "rerank_model", kb->rerank_model, 0);
    put_str(b, "answer_model", kb->answer_model, 0);
    sl_buf_printf(b, ",\"temperature\":%g,\"recall_k\":%d,\"top_k\":%d,\"recall_threshold\":%g,"
                     "\"rerank_threshold\":%g,\"context_tokens\":%d",
                  kb->temperature, kb->recall_k, kb->top_k, kb->recall_threshold,
                  kb->rerank_threshold, kb->context_tokens);
    put_str(b, "profile", kb->profile, 0);
    sl_buf_printf(b, ",\"created\":%lld", (long long)(kb->created_ms / 1000));
    if (counts)
        sl_buf_printf(b, ",\"documents\":%lld,\"chunks\":%lld", (long long)kb->documents,
                      (long long)kb->chunks);
    sl_buf_puts(b, "}");
}

/* The knowledge base named in the path, or an error in r. */
static int load_kb(struct kb_req *r, sqlite3 *db, struct sl_kb *kb)
{
    char err[512];
    int rc = sl_kbs_get(db, r->kb, kb, err, sizeof(err));
    if (rc == SL_KB_NOT_FOUND)
        fail(r, 404, "invalid_request_error", "kb_not_found", "no knowledge base named '%s'", r->kb);
    else if (rc)
        fail_store(r, err);
    return rc ? -1 : 0;
}

static void client_init(struct kb_req *r, struct sl_kb_client *c)
{
    memset(c, 0, sizeof(*c));
    c->base_url = r->self_url;
    c->token = r->token;
    c->kb = r->kb;
    c->key = r->key;
    c->extra_tags = r->tags;
}

/* ---- knowledge bases ---- */

static int served(struct kb_req *r, const char *what, const char *model)
{
    if (sl_config_find_model(r->cfg, model) || sl_config_find_group(r->cfg, model))
        return 1;
    char msg[400];
    snprintf(msg, sizeof(msg), "%s '%.128s' is not served by this gateway", what, model);
    fail(r, 400, "invalid_request_error", NULL, "%s", msg);
    return 0;
}

static int read_settings(struct kb_req *r, const cJSON *o, struct sl_kb *kb)
{
    const char *name = sl_json_str(o, "name", ""), *embed = sl_json_str(o, "embed_model", "");
    const char *rerank_model = sl_json_str(o, "rerank_model", "");
    const char *mode = sl_json_str(o, "rerank", rerank_model[0] ? "model" : "none");
    snprintf(kb->name, sizeof(kb->name), "%s", name);
    snprintf(kb->embed_model, sizeof(kb->embed_model), "%s", embed);
    snprintf(kb->rerank_model, sizeof(kb->rerank_model), "%s", rerank_model);
    snprintf(kb->answer_model, sizeof(kb->answer_model), "%s",
             sl_json_str(o, "answer_model", DEFAULT_ANSWER_MODEL));
    snprintf(kb->profile, sizeof(kb->profile), "%s", sl_json_str(o, "profile", "auto"));
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "temperature");
    kb->temperature = cJSON_IsNumber(t) ? t->valuedouble : 0.1;
    kb->recall_k = (int)sl_json_int(o, "recall_k", 50);
    kb->top_k = (int)sl_json_int(o, "top_k", 5);
    t = cJSON_GetObjectItemCaseSensitive(o, "recall_threshold");
    kb->recall_threshold = cJSON_IsNumber(t) ? t->valuedouble : -1;
    t = cJSON_GetObjectItemCaseSensitive(o, "rerank_threshold");
    kb->rerank_threshold = cJSON_IsNumber(t) ? t->valuedouble : -1e9;
    kb->context_tokens = (int)sl_json_int(o, "context_tokens", 3000);
    kb->rerank = strcmp(mode, "model") == 0 ? SL_KB_RERANK_MODEL
                 : strcmp(mode, "embed") == 0 ? SL_KB_RERANK_EMBED
                                              : SL_KB_RERANK_NONE;
    if (!name[0] || strlen(name) > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(name)) {
        fail(r, 400, "invalid_request_error", NULL, "%s", "'name' must be 1-64 of A-Z a-z 0-9 . _ -");
        return -1;
    }
    if (!embed[0]) {
        fail(r, 400, "invalid_request_error", NULL, "%s", "'embed_model' is required");
        return -1;
    }
    if (strcmp(mode, "model") && strcmp(mode, "embed") && strcmp(mode, "none")) {
        fail(r, 400, "invalid_request_error", NULL, "%s", "'rerank' is model, embed or none");
        return -1;
    }
    if (kb->rerank != SL_KB_RERANK_NONE && !rerank_model[0]) {
        fail(r, 400, "invalid_request_error", NULL, "%s", "'rerank_model' is required for that rerank mode");
        return -1;
    }
    if (kb->recall_k < 1 || kb->recall_k > SL_KB_MAX_RECALL || kb->top_k < 1 ||
        kb->top_k > SL_KB_MAX_TOP || kb->context_tokens < 100) {
        fail(r, 400, "invalid_request_error", NULL, "%s",
             "recall_k is 1..1000, top_k 1..100, context_tokens at least 100");
        return -1;
    }
    return served(r, "embed_model", kb->embed_model) && served(r, "answer_model", kb->answer_model) &&
                   (kb->rerank == SL_KB_RERANK_NONE || served(r, "rerank_model", kb->rerank_model))
               ? 0
               : -1;
}

static void do_create(struct kb_req *r, sqlite3 *db)
{
    cJSON *o = cJSON_ParseWithLength(r->body, r->len);
    struct sl_kb kb = {0};
    char err[512];
    if (!cJSON_IsObject(o))
        fail(r, 400, "invalid_request_error", NULL, "%s", "the body must be a JSON object");
    else if (read_settings(r, o, &kb) == 0) {
        if (sl_kbs_create(db, &kb, err, sizeof(err)))
            fail(r, strstr(err, "exists already") ? 409 : 500, "invalid_request_error", NULL, "%s", err);
        else {
            kb_json(&r->out, &kb, 0);
            r->status = 201;
        }
    }
    cJSON_Delete(o);
}

static void do_list(struct kb_req *r, sqlite3 *db)
{
    struct sl_kb *all = NULL;
    size_t n = 0;
    char err[512];
    if (sl_kbs_list(db, &all, &n, err, sizeof(err))) {
        fail_store(r, err);
        return;
    }
    sl_buf_puts(&r->out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sl_buf_puts(&r->out, ",");
        kb_json(&r->out, &all[i], 1);
    }
    sl_buf_puts(&r->out, "]}");
    free(all);
}

static void do_get(struct kb_req *r, sqlite3 *db)
{
    struct sl_kb *all = NULL;
    size_t n = 0;
    char err[512];
    if (sl_kbs_list(db, &all, &n, err, sizeof(err))) {
        fail_store(r, err);
        return;
    }
    size_t i = 0;
    while (i < n && strcmp(all[i].name, r->kb) != 0)
        i++;
    if (i == n)
        fail(r, 404, "invalid_request_error", "kb_not_found", "no knowledge base named '%s'", r->kb);
    else
        kb_json(&r->out, &all[i], 1);
    free(all);
}

static void do_delete(struct kb_req *r, sqlite3 *db)
{
    char err[512];
    int rc = sl_kbs_delete(db, r->kb, err, sizeof(err));
    if (rc == SL_KB_NOT_FOUND)
        fail(r, 404, "invalid_request_error", "kb_not_found", "no knowledge base named '%s'", r->kb);
    else if (rc)
        fail_store(r, err);
    else {
        sl_buf_puts(&r->out, "{\"object\":\"knowledge_base.deleted\",\"deleted\":true");
        put_str(&r->out, "name", r->kb, 0);
        sl_buf_puts(&r->out, "}");
    }
}

/* ---- documents ---- */

static void doc_json(struct sl_buf *b, const struct sl_kb_doc *d)
{
    sl_buf_printf(b, "{\"object\":\"kb.document\",\"id\":%lld", (long long)d->id);
    put_str(b, "name", d->name, 0);
    put_str(b, "type", d->type, 0);
    put_str(b, "profile", d->profile, 0);
    put_str(b, "sha256", d->hash, 0);
    sl_buf_printf(b, ",\"bytes\":%lld,\"chunks\":%lld,\"added\":%lld}", (long long)d->bytes,
                  (long long)d->chunks, (long long)(d->added_ms / 1000));
}

static void do_doc_list(struct kb_req *r, sqlite3 *db)
{
    struct sl_kb kb;
    struct sl_kb_doc *docs = NULL;
    size_t n = 0;
    char err[512];
    if (load_kb(r, db, &kb))
        return;
    if (sl_kbs_doc_list(db, kb.id, &docs, &n, err, sizeof(err))) {
        fail_store(r, err);
        return;
    }
    sl_buf_puts(&r->out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sl_buf_puts(&r->out, ",");
        doc_json(&r->out, &docs[i]);
    }
    sl_buf_puts(&r->out, "]}");
    free(docs);
}

/* The document's bytes: "text" as is, or "content" in base64. NULL with r->e set. */
static char *doc_bytes(struct kb_req *r, const cJSON *o, size_t *len)
{
    const char *text = sl_json_str(o, "text", NULL), *b64 = sl_json_str(o, "content", NULL);
    if (text) {
        *len = strlen(text);
        return sl_arena_strndup(r->a, text, *len);
    }
    if (!b64) {
        fail(r, 400, "invalid_request_error", NULL, "%s", "a document needs 'text' or 'content' (base64)");
        return NULL;
    }
    size_t n = strlen(b64);
    unsigned char *out = sl_arena_alloc(r->a, n / 4 * 3 + 4);
    int got = out && n % 4 == 0 ? EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n) : -1;
    if (got < 0) {
        fail(r, 400, "invalid_request_error", NULL, "%s", "'content' is not valid base64");
        return NULL;
    }
    for (size_t i = n; i > 0 && b64[i - 1] == '='; i--)
        got--; /* EVP_DecodeBlock counts the padding as zero bytes */
    *len = (size_t)got;
    return (char *)out;
}

static void do_doc_add(struct kb_req *r, sqlite3 *db)
{
    cJSON *o = cJSON_ParseWithLength(r->body, r->len);
    struct sl_kb kb;
    struct sl_kb_client c;
    struct sl_kb_ingest_result res;
    char err[512];
    size_t len = 0;
    const char *name = sl_json_str(o, "name", "");
    int kind = sl_doc_kind_of(name);
    if (!cJSON_IsObject(o) || !name[0] || strlen(name) >= 512) {
        fail(r, 400, "invalid_request_error", NULL, "%s", "a document needs a 'name' (its file name)");
    } else if (load_kb(r, db, &kb) == 0) {
        char *data = doc_bytes(r, o, &len);
        if (kind < 0 && sl_json_str(o, "text", NULL))
            kind = SL_DOC_TEXT;
        if (data && kind < 0)
            fail(r, 400, "invalid_request_error", NULL,
                 "cannot tell the type of '%s': use .txt .md .html .pdf or .docx", name);
        else if (data) {
            client_init(r, &c);
            if (sl_kb_ingest(db, &c, &kb, name, kind, data, len, sl_json_str(o, "type", NULL), &res,
                             err, sizeof(err)))
                fail(r, c.status >= 400 ? 502 : 400, c.status >= 400 ? "upstream_error" : "invalid_request_error",
                     NULL, "%s", err);
            else {
                struct sl_kb_doc d;
                if (sl_kbs_doc_get(db, kb.id, name, &d, err, sizeof(err)) == 0) {
                    sl_buf_printf(&r->out, "{\"status\":\"%s\",\"chunks\":%zu,\"embedded\":%zu,"
                                           "\"cached\":%zu,\"document\":",
                                  sl_kb_added_name(res.what), res.chunks, res.embedded, res.cached);
                    doc_json(&r->out, &d);
                    sl_buf_puts(&r->out, "}");
                    r->status = res.what == SL_KB_ADDED ? 201 : 200;
                } else
                    fail_store(r, err);
            }
            sl_kbc_release(&c);
        }
    }
    cJSON_Delete(o);
}

static void do_doc_delete(struct kb_req *r, sqlite3 *db)
{
    struct sl_kb kb;
    struct sl_kb_doc d;
    char err[512];
    if (load_kb(r, db, &kb))
        return;
    int rc = sl_kbs_doc_get(db, kb.id, r->doc, &d, err, sizeof(err));
    if (rc == SL_KB_NOT_FOUND) {
        fail(r, 404, "invalid_request_error", "document_not_found", "no document named '%s'", r->doc);
        return;
    }
    if (rc || sl_kbs_begin(db)) {
        fail_store(r, rc ? err : "cannot begin a transaction");
        return;
    }
    if (sl_kbs_doc_delete(db, kb.id, d.id, err, sizeof(err)) || sl_kbs_commit(db)) {
        sl_kbs_rollback(db);
        fail_store(r, err);
        return;
    }
    sl_buf_puts(&r->out, "{\"object\":\"kb.document.deleted\",\"deleted\":true");
    put_str(&r->out, "name", d.name, 0);
    sl_buf_puts(&r->out, "}");
}

/* ---- search and chat ---- */

static void search_opts(const cJSON *o, const struct sl_kb *kb, struct sl_kb_search_opts *so)
{
    sl_kb_search_defaults(kb, so);
    so->recall_k = (int)sl_json_int(o, "recall_k", so->recall_k);
    so->top_k = (int)sl_json_int(o, "top_k", so->top_k);
    so->vectors = sl_json_bool(o, "vectors", 1);
    so->bm25 = sl_json_bool(o, "bm25", 1);
    so->rerank = sl_json_bool(o, "rerank", so->rerank);
}

/* ,"STAGE":{"model":..,"tokens":N,"cost":"0.000123","currency":"USD"} by the catalog's
 * price of the model (a group's deployment is not known here: cost null). */
static void stage_usage(struct kb_req *r, const char *stage, const char *model, int64_t tokens)
{
    const struct sl_model_cfg *m = model[0] ? sl_config_find_model(r->cfg, model) : NULL;
    struct sl_usage_row row = {.prompt_tokens = tokens};
    char cost[32] = "null";
    if (m) {
        sl_cost_row(r->catalog, m, &row);
        if (row.price_known) {
            cost[0] = '"';
            sl_cost_format(row.cost_micros, cost + 1, sizeof(cost) - 2);
            strcat(cost, "\"");
        }
    }
    sl_buf_printf(&r->out, "%s\"%s\":{\"tokens\":%lld,\"cost\":%s,\"currency\":\"%s\"}",
                  strcmp(stage, "recall") ? "," : "", stage, (long long)tokens, cost,
                  m && row.price_known ? row.currency : "");
}

static int run_search(struct kb_req *r, sqlite3 *db, const struct sl_kb *kb, const char *q,
                      const cJSON *o, struct sl_kb_results *res)
{
    struct sl_kb_client c;
    struct sl_kb_search_opts so;
    char err[512];
    client_init(r, &c);
    search_opts(o, kb, &so);
    int rc = sl_kb_search(db, &c, kb, q, &so, r->a, res, err, sizeof(err));
    if (rc)
        fail(r, c.status >= 400 || c.status == 0 ? 502 : 400, "upstream_error", NULL, "%s", err);
    r->recall_tokens = c.recall_tokens;
    r->rerank_tokens = c.rerank_tokens;
    sl_kbc_release(&c);
    return rc;
}

static void do_search(struct kb_req *r, sqlite3 *db)
{
    cJSON *o = cJSON_ParseWithLength(r->body, r->len);
    const char *q = sl_json_str(o, "query", "");
    struct sl_kb kb;
    struct sl_kb_results res;
    if (!q[0])
        fail(r, 400, "invalid_request_error", NULL, "%s", "'query' must be a non-empty string");
    else if (load_kb(r, db, &kb) == 0 && run_search(r, db, &kb, q, o, &res) == 0) {
        sl_buf_puts(&r->out, "{\"object\":\"kb.search\"");
        put_str(&r->out, "kb", kb.name, 0);
        put_str(&r->out, "query", q, 0);
        sl_buf_printf(&r->out, ",\"reranked\":%s,\"timing\":{\"recall_ms\":%.3f,\"rerank_ms\":%.3f},"
                               "\"data\":",
                      res.reranked ? "true" : "false", res.recall_ms, res.rerank_ms);
        sl_kb_sources_json(res.top, res.ntop, &r->out);
        sl_buf_puts(&r->out, ",\"usage\":{");
        stage_usage(r, "recall", kb.embed_model, r->recall_tokens);
        stage_usage(r, "rerank", res.reranked ? kb.rerank_model : "",
                    r->rerank_tokens);
        sl_buf_puts(&r->out, "}");
        char err[512];
        if (sl_json_bool(o, "compare", 0) &&
            sl_kb_compare_json(&r->out, r->cfg, r->catalog, db, &kb, q, r->recall_tokens,
                               r->rerank_tokens, res.reranked, err, sizeof(err)))
            fail_store(r, err);
        if (sl_json_bool(o, "candidates", 0)) {
            sl_buf_puts(&r->out, ",\"candidates\":");
            sl_kb_sources_json(res.candidates, res.ncandidates, &r->out);
        }
        sl_buf_puts(&r->out, "}");
    }
    cJSON_Delete(o);
}

static void do_chat(struct kb_req *r, sqlite3 *db)
{
    cJSON *o = cJSON_ParseWithLength(r->body, r->len);
    const char *q = sl_kb_question(o);
    struct sl_kb kb;
    struct sl_kb_results res;
    if (!q) {
        fail(r, 400, "invalid_request_error", NULL, "%s", "the messages hold no user question");
    } else if (load_kb(r, db, &kb) == 0 && run_search(r, db, &kb, q, o, &res) == 0) {
        struct sl_buf ctx = SL_BUF_INIT(16u * 1024 * 1024), src = SL_BUF_INIT(32u * 1024 * 1024);
        size_t used = sl_kb_context(res.top, res.ntop, kb.context_tokens, &ctx);
        if (!used)
            sl_buf_puts(&ctx, "(no source matched the question)\n");
        cJSON *kb_opts[] = {cJSON_DetachItemFromObjectCaseSensitive(o, "recall_k"),
                            cJSON_DetachItemFromObjectCaseSensitive(o, "top_k"),
                            cJSON_DetachItemFromObjectCaseSensitive(o, "rerank"),
                            cJSON_DetachItemFromObjectCaseSensitive(o, "bm25"),
                            cJSON_DetachItemFromObjectCaseSensitive(o, "vectors")};
        for (size_t i = 0; i < sizeof(kb_opts) / sizeof(kb_opts[0]); i++)
            cJSON_Delete(kb_opts[i]); /* ours, not the answer model's */
        cJSON *req = sl_kb_answer_request(&kb, o, ctx.ptr ? ctx.ptr : "");
        char *printed = req ? cJSON_PrintUnformatted(req) : NULL;
        if (!printed || sl_kb_sources_json(res.top, used, &src))
            fail(r, 503, "api_error", NULL, "%s", "out of memory");
        else {
            r->answer = sl_arena_strndup(r->a, printed, strlen(printed));
            r->sources = sl_arena_strndup(r->a, src.ptr, src.len);
            snprintf(r->answer_model, sizeof(r->answer_model), "%s", kb.answer_model);
        }
        cJSON_free(printed);
        cJSON_Delete(req);
        sl_buf_release(&ctx);
        sl_buf_release(&src);
    }
    cJSON_Delete(o);
}

void sl_kb_run(struct sl_kb_job *j, sqlite3 *db, const char *open_err)
{
    struct kb_req *r = j->arg;
    static void (*const ops[])(struct kb_req *, sqlite3 *) = {
        [KB_CREATE] = do_create,     [KB_LIST] = do_list,         [KB_GET] = do_get,
        [KB_DELETE] = do_delete,     [KB_DOC_LIST] = do_doc_list, [KB_DOC_ADD] = do_doc_add,
        [KB_DOC_DELETE] = do_doc_delete, [KB_SEARCH] = do_search, [KB_CHAT] = do_chat,
    };
    if (!db) {
        fail_store(r, open_err ? open_err : "no store");
        return;
    }
    ops[r->op](r, db);
}
