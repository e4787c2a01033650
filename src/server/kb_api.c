/* The knowledge-base API on the worker: parses the path, checks who may write, hands
 * the work to a KB thread, and answers when it comes back; a chat's answer then runs
 * through the normal plan (routing, retries, streaming) like any chat request, with the
 * sources added to the reply.
 *
 *   POST/GET /v1/kb                     create (admin) / list knowledge bases
 *   GET/DELETE /v1/kb/NAME              one knowledge base / delete it (admin)
 *   GET/POST /v1/kb/NAME/documents      list / add a document (admin)
 *   DELETE /v1/kb/NAME/documents/DOC    delete a document (admin)
 *   POST /v1/kb/NAME/search             ranked chunks with each stage's scores
 *   POST /v1/kb/NAME/chat               Chat Completions with sources
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/clock.h"
#include "core/json.h"
#include "formats/openai.h"
#include "meter/keys.h"
#include "server/internal.h"
#include "server/kb_api.h"
#include "server/plan.h"

static void on_req_free(void *p)
{
    struct kb_req *r = p;
    sl_buf_release(&r->out);
    sl_arena_free(r->a);
}

/* Writes need the master key when one is configured (or the process's own credential);
 * with no master key they are open only while no virtual key exists (loopback mode). */
static int may_write(struct sl_exchange *x)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(x->req);
    const char *bearer = sl_keys_presented(evhttp_find_header(in, "Authorization"), NULL);
    const char *master = x->snap->cfg->master_key;
    if (sl_keys_secret_equal(bearer, x->w->srv->kb_token))
        return 1;
    if (master[0]) {
        if (sl_keys_secret_equal(bearer, master))
            return 1;
        sl_exchange_error(x, 401, "invalid_request_error",
                          "changing a knowledge base needs 'Authorization: Bearer <master key>'",
                          NULL, "invalid_api_key");
        return 0;
    }
    if (!x->keyset || sl_keys_ever(x->keyset->keys) == 0)
        return 1;
    sl_exchange_error(x, 403, "permission_error",
                      "changing a knowledge base needs the master key, and none is configured "
                      "(set SLUICE_MASTER_KEY)", NULL, "admin_disabled");
    return 0;
}

/* The row's tags ["a=b",...] as "a=b,..." for the stage calls. */
static void tags_list(const char *json, char *out, size_t cap)
{
    cJSON *arr = json[0] ? cJSON_Parse(json) : NULL, *t;
    size_t n = 0;
    out[0] = '\0';
    cJSON_ArrayForEach(t, arr)
    {
        if (cJSON_IsString(t) && n + strlen(t->valuestring) + 2 < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", t->valuestring);
    }
    cJSON_Delete(arr);
}

/* Adds kb=NAME and stage=answer to the row's tags (the answer's ledger row). */
static void tag_answer(struct sl_exchange *x, const char *kb)
{
    char add[SL_MAX_NAME + 40], *t = x->row.tags;
    size_t n = strlen(t), cap = sizeof(x->row.tags);
    snprintf(add, sizeof(add), "\"kb=%.60s\",\"stage=answer\"", kb);
    if (n < 2)
        snprintf(t, cap, "[%s]", add);
    else if (n + strlen(add) + 2 < cap) {
        t[n - 1] = '\0'; /* drop the ']' */
        snprintf(t + n - 1, cap - (n - 1), ",%s]", add);
    }
}

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

static struct kb_req *req_new(struct sl_exchange *x, enum kb_op op, const char *kb, size_t kblen)
{
    struct kb_req *r = sl_arena_alloc(x->arena, sizeof(*r));
    if (!r)
        return NULL;
    r->a = sl_arena_new();
    if (!r->a || sl_arena_cleanup(x->arena, on_req_free, r)) {
        sl_arena_free(r->a);
        return NULL;
    }
    sl_buf_init(&r->out, 64u * 1024 * 1024);
    r->x = x;
    r->op = op;
    snprintf(r->kb, sizeof(r->kb), "%.*s", (int)kblen, kb);
    size_t len;
    const char *body = sl_exchange_body(x, &len);
    r->body = sl_arena_strndup(r->a, body ? body : "", body ? len : 0);
    r->len = len;
    snprintf(r->key, sizeof(r->key), "%s", x->key_id); /* its calls are billed to this key */
    tags_list(x->row.tags, r->tags, sizeof(r->tags));
    snprintf(r->self_url, sizeof(r->self_url), "%s", x->w->srv->self_url);
    snprintf(r->token, sizeof(r->token), "%s", x->w->srv->kb_token);
    r->cfg = x->snap->cfg;
    r->catalog = x->snap->catalog;
    return r->body ? r : NULL;
}

static void on_kb_gone(struct sl_exchange *x)
{
    /* The KB thread still holds the request: the exchange ends when it comes back. */
}

static void start_answer(struct sl_exchange *x, struct kb_req *r);

static void on_kb_done(struct sl_kb_job *j)
{
    struct kb_req *r = j->arg;
    struct sl_exchange *x = r->x;
    sl_exchange_overhead_begin(x);
    x->on_gone = NULL;
    if (x->client_gone)
        sl_exchange_client_left(x);
    else if (r->e.status)
        sl_exchange_send_error(x, &sl_openai_client, &r->e);
    else if (r->op == KB_CHAT)
        start_answer(x, r);
    else
        sl_exchange_reply(x, r->status ? r->status : 200, "application/json",
                          r->out.ptr ? r->out.ptr : "{}", r->out.len);
}

static void submit(struct sl_exchange *x, struct kb_req *r)
{
    struct sl_kb_pool *pool = x->w->srv->kb_pool;
    r->job.w = x->w;
    r->job.store_url = x->snap->cfg->store;
    r->job.run = sl_kb_run;
    r->job.done = on_kb_done;
    r->job.arg = r;
    if (!pool || sl_kb_pool_submit(pool, &r->job)) {
        sl_exchange_error(x, 503, "api_error", "the knowledge base is not available (shutting down)",
                          NULL, NULL);
        return;
    }
    x->on_gone = on_kb_gone;
    sl_exchange_overhead_end(x);
}

/* ---- the answer, through the plan ---- */

static char *sources_chunk(struct sl_exchange *x, const char *kb, const char *sources)
{
    return sl_arena_sprintf(x->arena,
                            "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%lld,"
                            "\"model\":\"kb:%s\",\"choices\":[],\"sources\":%s}\n\n",
                            x->id, (long long)(sl_wall_ms() / 1000), kb, sources);
}

static void start_answer(struct sl_exchange *x, struct kb_req *r)
{
    size_t len = strlen(r->answer);
    char *raw = sl_arena_strndup(x->arena, r->answer, len);
    cJSON *req = raw ? cJSON_ParseWithLength(raw, len) : NULL;
    struct sl_plan *p = req ? sl_plan_new(x, &sl_openai_client, req, raw, len) : NULL;
    if (!p) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return;
    }
    x->reply_extra = sl_arena_sprintf(x->arena, "\"sources\":%s", r->sources);
    x->stream_prelude = sources_chunk(x, r->kb, r->sources);
    tag_answer(x, r->kb);
    if (sl_plan_resolve(x, p, r->answer_model)) {
        char msg[SL_MAX_NAME * 2 + 96];
        snprintf(msg, sizeof(msg), "the answer model '%s' of knowledge base %s is not served by this gateway",
                 r->answer_model, r->kb);
        sl_exchange_error(x, 404, "invalid_request_error", msg, "model", "model_not_found");
        return;
    }
    sl_plan_start(x, p);
}

/* /v1/kb/NAME/chat needs no model: the knowledge base names its answer model. */
static char *with_model(struct sl_exchange *x, const char *body, size_t *len, const char *model)
{
    cJSON *o = cJSON_ParseWithLength(body, *len);
    char *out = NULL;
    if (cJSON_IsObject(o) && !cJSON_GetObjectItemCaseSensitive(o, "model") &&
        cJSON_AddStringToObject(o, "model", model)) {
        char *printed = cJSON_PrintUnformatted(o);
        if (printed) {
            *len = strlen(printed);
            out = sl_arena_strndup(x->arena, printed, *len);
        }
        cJSON_free(printed);
    }
    cJSON_Delete(o);
    return out;
}

static void start_chat(struct sl_exchange *x, const char *kb, size_t kblen)
{
    size_t len;
    const char *body = sl_exchange_body(x, &len);
    struct sl_error e;
    snprintf(x->row.model, sizeof(x->row.model), "kb:%.*s", (int)kblen, kb);
    char *filled = with_model(x, body ? body : "", &len, x->row.model);
    body = filled ? filled : body ? body : "";
    cJSON *req = sl_openai_client.decode_request(body, len, &e);
    if (!req) {
        sl_exchange_send_error(x, &sl_openai_client, &e);
        return;
    }
    cJSON_Delete(req); /* checked here; the KB thread reads its own copy */
    struct kb_req *r = req_new(x, KB_CHAT, kb, kblen);
    if (!r) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return;
    }
    r->body = sl_arena_strndup(r->a, body, len);
    r->len = len;
    if (!r->body) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return;
    }
    submit(x, r);
}

void sl_kb_model_chat(struct sl_exchange *x, cJSON *req, const char *name)
{
    cJSON_Delete(req);
    if (!valid_name(name, strlen(name))) {
        sl_exchange_error(x, 404, "invalid_request_error", "no such knowledge base", "model",
                          "model_not_found");
        return;
    }
    start_chat(x, name, strlen(name));
}

/* ---- routing under /v1/kb ---- */

/* Decodes %XX in a path segment into out. -1 for a bad escape or overflow. */
static int unescape(const char *s, size_t n, char *out, size_t cap)
{
    char *tmp = malloc(n + 1);
    if (!tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    size_t dl = 0;
    char *dec = evhttp_uridecode(tmp, 0, &dl);
    free(tmp);
    int rc = dec && dl > 0 && dl < cap && !memchr(dec, '\0', dl) ? 0 : -1;
    if (!rc)
        memcpy(out, dec, dl + 1);
    free(dec);
    return rc;
}

static void route_kb(struct sl_exchange *x, enum evhttp_cmd_type m, const char *rest)
{
    const char *slash = strchr(rest, '/');
    size_t kblen = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *sub = slash ? slash + 1 : "";
    enum kb_op op;
    int write = 0;
    if (!valid_name(rest, kblen)) {
        sl_exchange_error(x, 404, "invalid_request_error", "no such knowledge base (names are "
                          "1-64 of A-Z a-z 0-9 . _ -)", NULL, "kb_not_found");
        return;
    }
    if (!*sub && m == EVHTTP_REQ_GET)
        op = KB_GET;
    else if (!*sub && m == EVHTTP_REQ_DELETE)
        op = KB_DELETE, write = 1;
    else if (strcmp(sub, "documents") == 0 && m == EVHTTP_REQ_GET)
        op = KB_DOC_LIST;
    else if (strcmp(sub, "documents") == 0 && m == EVHTTP_REQ_POST)
        op = KB_DOC_ADD, write = 1;
    else if (strncmp(sub, "documents/", 10) == 0 && sub[10] && m == EVHTTP_REQ_DELETE)
        op = KB_DOC_DELETE, write = 1;
    else if (strcmp(sub, "search") == 0 && m == EVHTTP_REQ_POST)
        op = KB_SEARCH;
    else if ((strcmp(sub, "chat") == 0 || strcmp(sub, "chat/completions") == 0) &&
             m == EVHTTP_REQ_POST) { /* the second: an SDK with baseURL .../v1/kb/NAME */
        start_chat(x, rest, kblen);
        return;
    } else {
        sl_exchange_error(x, 404, "invalid_request_error", "no such knowledge-base endpoint", NULL,
                          "unknown_url");
        return;
    }
    if (write && !may_write(x))
        return;
    struct kb_req *r = req_new(x, op, rest, kblen);
    if (!r) {
        sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        return;
    }
    if (op == KB_DOC_DELETE && unescape(sub + 10, strlen(sub + 10), r->doc, sizeof(r->doc))) {
        sl_exchange_error(x, 400, "invalid_request_error", "bad document name in the path", NULL, NULL);
        return;
    }
    submit(x, r);
}

void sl_kb_handle(struct sl_exchange *x)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(x->req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    path = path ? path : "/";
    enum evhttp_cmd_type m = evhttp_request_get_command(x->req);
    size_t len;
    sl_exchange_body(x, &len);
    if (len > x->snap->cfg->server.max_body) {
        sl_exchange_error(x, 413, "invalid_request_error",
                          "the request body is larger than server.max_body", NULL,
                          "request_too_large");
        return;
    }
    if (strcmp(path, "/v1/kb") == 0) {
        enum kb_op op = m == EVHTTP_REQ_POST ? KB_CREATE : KB_LIST;
        if (op == KB_CREATE && !may_write(x))
            return;
        struct kb_req *r = req_new(x, op, "", 0);
        if (!r)
            sl_exchange_error(x, 503, "api_error", "out of memory", NULL, NULL);
        else
            submit(x, r);
        return;
    }
    if (strncmp(path, "/v1/kb/", 7) != 0) {
        sl_exchange_error(x, 404, "invalid_request_error", "no such endpoint", NULL, "unknown_url");
        return;
    }
    route_kb(x, m, path + 7);
}
