/* The admin API for virtual keys: POST/GET /admin/keys and DELETE /admin/keys/ID,
 * each allowed only with the master key. Key rules live in src/meter/keys.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/json.h"
#include "meter/keys.h"
#include "server/internal.h"

#define ADMIN_KEYS_PATH "/admin/keys/"
#define MAX_LIST_REPLY  (64u * 1024 * 1024)

int sl_admin_authorized(struct sl_exchange *x)
{
    const char *master = x->snap->cfg->master_key;
    struct evkeyvalq *in = evhttp_request_get_input_headers(x->req);
    const char *auth = evhttp_find_header(in, "Authorization");
    if (!master[0]) {
        sl_exchange_error(x, 403, "permission_error",
                          "the admin API is off: no master_key is configured "
                          "(set SLUICE_MASTER_KEY)", NULL, "admin_disabled");
        return 0;
    }
    /* Only the Bearer form: x-api-key is how clients send virtual keys, never this one. */
    if (sl_keys_secret_equal(sl_keys_presented(auth, NULL), master))
        return 1;
    evhttp_add_header(evhttp_request_get_output_headers(x->req), "WWW-Authenticate", "Bearer");
    sl_exchange_error(x, 401, "invalid_request_error",
                      "the admin API needs 'Authorization: Bearer <master key>'", NULL,
                      "invalid_api_key");
    return 0;
}

/* A store failure as a reply: busy is worth a retry, anything else is ours. */
static void store_error(struct sl_exchange *x, int rc, const char *err)
{
    if (rc == SL_STORE_BUSY)
        sl_exchange_error(x, 503, "api_error", err, NULL, "store_busy");
    else
        sl_exchange_error(x, 500, "api_error", err, NULL, "store_error");
}

static void put_str(struct sl_buf *b, const char *name, const char *v)
{
    sl_buf_printf(b, ",\"%s\":", name);
    sl_json_quote(b, v, strlen(v));
}

/* One key as JSON; secret only in the reply to its creation. */
static void key_json(struct sl_buf *b, const struct sl_key *k, const char *secret)
{
    sl_buf_puts(b, "{\"id\":");
    sl_json_quote(b, k->id, strlen(k->id));
    sl_buf_puts(b, ",\"object\":\"key\"");
    put_str(b, "name", k->name);
    if (secret)
        put_str(b, "key", secret);
    put_str(b, "prefix", k->prefix);
    sl_buf_printf(b, ",\"created_ms\":%lld,\"expires_ms\":%lld,\"revoked_ms\":%lld",
                  (long long)k->created_ms, (long long)k->expires_ms, (long long)k->revoked_ms);
    put_str(b, "budget", k->budget);
    sl_buf_printf(b, ",\"rpm\":%lld,\"tpm\":%lld,\"concurrency\":%lld", (long long)k->rpm,
                  (long long)k->tpm, (long long)k->concurrency);
    put_str(b, "models", k->models);
    put_str(b, "tags", k->tags);
    sl_buf_puts(b, "}");
}

/* A member's value as the CLI would spell it: strings as they are, whole numbers in
 * decimal, lists of strings joined by commas. Returns 0, or -1 for another type. */
static int member_text(const cJSON *m, char *out, size_t n)
{
    size_t len = 0;
    const cJSON *item;
    if (cJSON_IsString(m))
        return snprintf(out, n, "%s", m->valuestring) < (int)n ? 0 : -1;
    if (sl_json_is_int(m))
        return snprintf(out, n, "%lld", (long long)sl_json_clamp_int(m->valuedouble)), 0;
    if (!cJSON_IsArray(m))
        return -1;
    out[0] = '\0';
    cJSON_ArrayForEach(item, m) {
        if (!cJSON_IsString(item))
            return -1;
        int w = snprintf(out + len, n - len, "%s%s", len ? "," : "", item->valuestring);
        if (w < 0 || (size_t)w >= n - len)
            return -1;
        len += (size_t)w;
    }
    return 0;
}

/* Reads the body into spec; on a problem replies 400 and returns -1. */
static int read_spec(struct sl_exchange *x, struct sl_key_spec *spec)
{
    size_t len;
    const char *body = sl_exchange_body(x, &len);
    cJSON *root = body ? cJSON_ParseWithLength(body, len) : NULL;
    char value[SL_KEY_LIST_SIZE + 1], err[256] = "";
    const char *param = NULL;
    const cJSON *m;
    if (!cJSON_IsObject(root) || sl_json_duplicate_key(root))
        snprintf(err, sizeof(err), "expected a JSON object without repeated keys, "
                                   "e.g. {\"name\":\"team-a\"}");
    const cJSON *members = err[0] ? NULL : root;
    cJSON_ArrayForEach(m, members) {
        param = m->string;
        if (member_text(m, value, sizeof(value)))
            snprintf(err, sizeof(err), "%.64s: expected a string, a whole number or a list of "
                     "strings", m->string);
        else
            sl_key_spec_set(spec, m->string, value, err, sizeof(err));
        if (err[0])
            break;
    }
    if (!err[0] && !spec->key.name[0])
        snprintf(err, sizeof(err), "name: a key needs a name (e.g. team-a)");
    if (err[0])
        sl_exchange_error(x, 400, "invalid_request_error", err, param, NULL);
    cJSON_Delete(root);
    return err[0] ? -1 : 0;
}

/* POST /admin/keys. Opening the store blocks this worker for a moment; admin calls
 * are rare, and the store is SQLite on local disk. */
void sl_admin_keys_create_handle(struct sl_exchange *x)
{
    struct sl_key_spec spec;
    struct sl_key k;
    char secret[SL_KEY_SECRET_SIZE], err[512] = "";
    struct sl_buf b = SL_BUF_INIT(64 * 1024);
    memset(&spec, 0, sizeof(spec));
    if (!sl_admin_authorized(x) || read_spec(x, &spec))
        return;
    int rc = sl_keys_create(x->snap->cfg->store, &spec, sl_wall_ms(), &k, secret, err,
                            sizeof(err));
    if (rc) {
        store_error(x, rc, err);
        return;
    }
    key_json(&b, &k, secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    sl_keyset_reload(x->w->srv, x->snap->cfg->store); /* the new key works at once */
    sl_exchange_reply(x, 201, "application/json", b.ptr ? b.ptr : "{}", b.len);
    if (b.ptr)
        OPENSSL_cleanse(b.ptr, b.len); /* the reply holds the only copy of the secret */
    sl_buf_release(&b);
}

/* GET /admin/keys: every key, revoked ones too; never a secret or a hash. */
void sl_admin_keys_list_handle(struct sl_exchange *x)
{
    struct sl_key *keys = NULL;
    size_t n = 0;
    char err[512] = "";
    struct sl_buf b = SL_BUF_INIT(MAX_LIST_REPLY);
    if (!sl_admin_authorized(x))
        return;
    int rc = sl_keys_list(x->snap->cfg->store, &keys, &n, err, sizeof(err));
    if (rc) {
        store_error(x, rc, err);
        return;
    }
    sl_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sl_buf_puts(&b, ",");
        key_json(&b, &keys[i], NULL);
    }
    sl_buf_puts(&b, "]}");
    sl_exchange_reply(x, 200, "application/json", b.ptr ? b.ptr : "{}", b.len);
    sl_buf_release(&b);
    free(keys);
}

/* DELETE /admin/keys/ID: revokes; the key stays listed with its revocation time. */
void sl_admin_keys_revoke_handle(struct sl_exchange *x)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(x->req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *id = path && strncmp(path, ADMIN_KEYS_PATH, strlen(ADMIN_KEYS_PATH)) == 0
                         ? path + strlen(ADMIN_KEYS_PATH) : "";
    char err[512] = "", body[128];
    if (!sl_admin_authorized(x))
        return;
    int rc = !id[0] || strlen(id) >= SL_KEY_ID_SIZE || strchr(id, '/')
                 ? SL_STORE_NOT_FOUND
                 : sl_keys_revoke(x->snap->cfg->store, id, sl_wall_ms(), err, sizeof(err));
    if (rc == SL_STORE_NOT_FOUND) {
        sl_exchange_error(x, 404, "invalid_request_error", "no key with that id", "id",
                          "key_not_found");
        return;
    }
    if (rc) {
        store_error(x, rc, err);
        return;
    }
    int n = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"object\":\"key\",\"deleted\":true}", id);
    sl_keyset_reload(x->w->srv, x->snap->cfg->store); /* revoked at once */
    sl_exchange_reply(x, 200, "application/json", body, (size_t)n);
}
