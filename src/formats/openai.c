/* OpenAI format: errors, usage normalisation, output estimation. */
#include "formats/openai.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "meter/estimate.h"

const char *sl_openai_error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 408: case 504: return "timeout_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static int opt_string(struct sl_buf *out, const char *s)
{
    return s ? sl_json_quote(out, s, strlen(s)) : sl_buf_puts(out, "null");
}

int sl_openai_error(struct sl_buf *out, int status, const char *type, const char *message,
                    const char *param, const char *code)
{
    if (!type)
        type = sl_openai_error_type(status);
    int rc = sl_buf_puts(out, "{\"error\":{\"message\":");
    rc |= sl_json_quote(out, message, strlen(message));
    rc |= sl_buf_puts(out, ",\"type\":");
    rc |= sl_json_quote(out, type, strlen(type));
    rc |= sl_buf_puts(out, ",\"param\":");
    rc |= opt_string(out, param);
    rc |= sl_buf_puts(out, ",\"code\":");
    rc |= opt_string(out, code);
    rc |= sl_buf_puts(out, "}}");
    return rc ? -1 : 0;
}

static int64_t num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? sl_json_clamp_int(v->valuedouble) : 0;
}

static int read_usage(const cJSON *usage, struct sl_usage *u)
{
    if (!cJSON_IsObject(usage))
        return 0;
    u->prompt = num(usage, "prompt_tokens");
    u->completion = num(usage, "completion_tokens");
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details");
    const cJSON *cd = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens_details");
    u->cached = num(pd, "cached_tokens");
    if (!u->cached)
        u->cached = num(usage, "prompt_cache_hit_tokens"); /* DeepSeek */
    if (!u->cached)
        u->cached = num(usage, "cached_tokens"); /* Moonshot */
    u->reasoning = num(cd, "reasoning_tokens");
    u->present = 1;
    return 1;
}

int sl_openai_usage_object(const cJSON *usage, struct sl_usage *u)
{
    return read_usage(usage, u);
}

int sl_openai_usage(const cJSON *obj, struct sl_usage *u)
{
    if (read_usage(cJSON_GetObjectItemCaseSensitive(obj, "usage"), u))
        return 1;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    return read_usage(cJSON_GetObjectItemCaseSensitive(c0, "usage"), u);
}

int sl_openai_has_finish(const cJSON *obj)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices"), *ch;
    cJSON_ArrayForEach(ch, choices)
    {
        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ch, "finish_reason")))
            return 1;
    }
    return 0;
}

int sl_openai_usage_json(struct sl_buf *out, const struct sl_usage *u)
{
    return sl_buf_printf(out,
                         "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                         "\"prompt_tokens_details\":{\"cached_tokens\":%lld},"
                         "\"completion_tokens_details\":{\"reasoning_tokens\":%lld}}",
                         (long long)u->prompt, (long long)u->completion,
                         (long long)(u->prompt + u->completion), (long long)u->cached,
                         (long long)u->reasoning);
}

static int64_t text_of(const cJSON *obj, const char *key)
{
    const char *s = sl_json_str(obj, key, NULL);
    return s ? sl_estimate_text(s, strlen(s)) : 0;
}

static int64_t estimate_part(const cJSON *part)
{
    int64_t n = text_of(part, "content") + text_of(part, "reasoning_content") +
                text_of(part, "reasoning") + text_of(part, "refusal");
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(part, "tool_calls"), *call;
    cJSON_ArrayForEach(call, calls)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        n += text_of(fn, "name") + text_of(fn, "arguments");
    }
    return n;
}

int64_t sl_openai_estimate_output(const cJSON *obj)
{
    int64_t n = 0;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices"), *c;
    cJSON_ArrayForEach(c, choices)
    {
        n += estimate_part(cJSON_GetObjectItemCaseSensitive(c, "delta"));
        n += estimate_part(cJSON_GetObjectItemCaseSensitive(c, "message"));
    }
    return n;
}

void sl_openai_error_from_upstream(const char *body, size_t len, cJSON **parsed,
                                   const char **message, const char **type, const char **code)
{
    *parsed = cJSON_ParseWithLength(body, len);
    *message = NULL;
    *type = NULL;
    *code = NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(*parsed, "error");
    const cJSON *src = cJSON_IsObject(err) ? err : *parsed;
    if (cJSON_IsString(err))
        *message = err->valuestring;
    if (!*message)
        *message = sl_json_str(src, "message", NULL);
    *type = sl_json_str(src, "type", NULL);
    *code = sl_json_str(src, "code", NULL);
}
