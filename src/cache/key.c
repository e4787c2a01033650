/* What makes two requests the same for the cache: the exact key (SHA-256 over a
 * canonical walk of the request), the semantic text and scope, and the rule that says
 * whether a request is cached at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cache/cache.h"
#include "core/json.h"

/* Top-level fields that never change the answer. */
static const char *const ignored[] = {"model", "stream", "stream_options", "user", "metadata",
                                      "store"};

static int is_ignored(const char *k)
{
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        if (strcmp(k, ignored[i]) == 0)
            return 1;
    return 0;
}

/* Each value is written as a tag, a length where one is needed, and its bytes, so no
 * two different trees hash the same input. */
static void put(EVP_MD_CTX *h, char tag, const void *p, size_t n)
{
    uint64_t len = n;
    EVP_DigestUpdate(h, &tag, 1);
    EVP_DigestUpdate(h, &len, sizeof(len));
    EVP_DigestUpdate(h, p, n);
}

static int by_name(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static int walk(EVP_MD_CTX *h, const cJSON *v, int top)
{
    char num[40];
    int n, result = 0;
    if (cJSON_IsObject(v)) {
        const cJSON *it;
        n = 0;
        cJSON_ArrayForEach(it, v) n++;
        const cJSON **kids = malloc((size_t)(n ? n : 1) * sizeof(*kids));
        if (!kids)
            return -1;
        n = 0;
        cJSON_ArrayForEach(it, v)
        {
            if (!(top && is_ignored(it->string)))
                kids[n++] = it;
        }
        qsort(kids, (size_t)n, sizeof(*kids), by_name);
        put(h, '{', &n, sizeof(n));
        for (int i = 0; i < n && !result; i++) {
            put(h, 'k', kids[i]->string, strlen(kids[i]->string));
            result = walk(h, kids[i], 0);
        }
        free(kids);
        return result;
    }
    if (cJSON_IsArray(v)) {
        n = cJSON_GetArraySize(v);
        put(h, '[', &n, sizeof(n));
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            if (walk(h, it, 0))
                return -1;
        }
        return 0;
    }
    if (cJSON_IsString(v))
        put(h, 's', v->valuestring, strlen(v->valuestring));
    else if (cJSON_IsNumber(v)) {
        n = snprintf(num, sizeof(num), "%.17g", v->valuedouble == 0 ? 0.0 : v->valuedouble);
        put(h, 'n', num, (size_t)n);
    } else if (cJSON_IsTrue(v))
        put(h, 't', "", 0);
    else if (cJSON_IsFalse(v))
        put(h, 'f', "", 0);
    else
        put(h, 'z', "", 0);
    return 0;
}

int sl_cache_key(const cJSON *req, const char *name, const char *tenant,
                 uint8_t key[SL_CACHE_KEY_LEN])
{
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    unsigned int len = 0;
    int result = -1;
    if (!h || !EVP_DigestInit_ex(h, EVP_sha256(), NULL))
        goto out;
    put(h, 'T', tenant, strlen(tenant));
    put(h, 'M', name, strlen(name));
    if (walk(h, req, 1) == 0 && EVP_DigestFinal_ex(h, key, &len) && len == SL_CACHE_KEY_LEN)
        result = 0;
out:
    EVP_MD_CTX_free(h);
    return result;
}

/* ---- the semantic side ---- */

static int has_image_or_tool(const cJSON *messages)
{
    const cJSON *m, *part;
    cJSON_ArrayForEach(m, messages)
    {
        const char *role = sl_json_str(m, "role", "");
        if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0 ||
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "tool_calls")) > 0)
            return 1;
        cJSON_ArrayForEach(part, cJSON_GetObjectItemCaseSensitive(m, "content"))
        {
            const char *type = cJSON_IsObject(part) ? sl_json_str(part, "type", "text") : "text";
            if (strcmp(type, "text") != 0)
                return 1; /* image_url, input_audio, file: not text to compare by meaning */
        }
    }
    return 0;
}

const char *sl_cache_semantic_text(const cJSON *req)
{
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    const cJSON *functions = cJSON_GetObjectItemCaseSensitive(req, "functions");
    if (cJSON_GetArraySize(tools) > 0 || cJSON_GetArraySize(functions) > 0 ||
        has_image_or_tool(messages))
        return NULL;
    const cJSON *last = cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1);
    if (!last || strcmp(sl_json_str(last, "role", ""), "user") != 0)
        return NULL;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(last, "content");
    if (cJSON_IsString(content))
        return content->valuestring[0] ? content->valuestring : NULL;
    /* One text part is the common case of a parts list; several are not joined. */
    if (cJSON_GetArraySize(content) == 1)
        return sl_json_str(cJSON_GetArrayItem(content, 0), "text", NULL);
    return NULL;
}

uint64_t sl_cache_semantic_scope(const cJSON *req, const char *name, const char *tenant)
{
    uint8_t digest[SL_CACHE_KEY_LEN] = {0};
    unsigned int len = 0;
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (h && EVP_DigestInit_ex(h, EVP_sha256(), NULL)) {
        put(h, 'T', tenant, strlen(tenant));
        put(h, 'M', name, strlen(name));
        walk(h, cJSON_GetObjectItemCaseSensitive(req, "response_format"), 0);
        int n = cJSON_GetArraySize(messages);
        for (int i = 0; i + 1 < n; i++)
            walk(h, cJSON_GetArrayItem(messages, i), 0);
        EVP_DigestFinal_ex(h, digest, &len);
    }
    EVP_MD_CTX_free(h);
    uint64_t scope;
    memcpy(&scope, digest, sizeof(scope));
    return scope;
}

/* ---- whether to cache ---- */

void sl_cache_policy_of(const struct sl_cache_cfg *cfg, const struct sl_cache_rule *rule,
                        struct sl_cache_policy *out)
{
    const struct sl_cache_rule *g = &cfg->rule;
    const struct sl_cache_rule none = {0};
    if (!rule)
        rule = &none;
    out->when = rule->enabled != SL_CACHE_UNSET ? rule->enabled : g->enabled;
    out->ttl_ms = rule->ttl_ms ? rule->ttl_ms : g->ttl_ms;
    out->semantic = (rule->semantic ? rule->semantic : g->semantic) == SL_FLAG_YES;
    out->threshold = rule->threshold > 0 ? rule->threshold : g->threshold;
    out->stale_on_error =
        (rule->stale_on_error ? rule->stale_on_error : g->stale_on_error) == SL_FLAG_YES;
    if (out->when == SL_CACHE_UNSET)
        out->when = SL_CACHE_OFF; /* a config built in code without cache: defaults */
}

int sl_cache_wanted(const struct sl_cache_policy *p, const cJSON *req, const char *header)
{
    if (p->when == SL_CACHE_OFF || (header && strcmp(header, "skip") == 0))
        return 0;
    if (sl_json_int(req, "n", 1) != 1 || sl_json_bool(req, "logprobs", 0))
        return 0;
    if (p->when == SL_CACHE_ALWAYS || (header && strcmp(header, "force") == 0))
        return 1;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(req, "temperature");
    return cJSON_IsNumber(t) && t->valuedouble == 0;
}
