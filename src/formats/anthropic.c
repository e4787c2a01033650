/* Anthropic Messages facts both sides of sluice need: stop reasons, error types and
 * their statuses, usage in OpenAI's meaning. */
#include "formats/anthropic.h"

#include <stdio.h>
#include <string.h>

#include "core/json.h"

struct reason_map {
    const char *anthropic, *openai;
};

/* FORMATS.md §4.1. pause_turn (a server-tool turn paused) has no OpenAI counterpart;
 * "stop" lets the client resend, which is what Anthropic asks for. */
static const struct reason_map stop_reasons[] = {
    {"end_turn", "stop"},
    {"stop_sequence", "stop"},
    {"max_tokens", "length"},
    {"model_context_window_exceeded", "length"},
    {"tool_use", "tool_calls"},
    {"refusal", "content_filter"},
    {"pause_turn", "stop"},
};

/* The reverse direction picks one Anthropic reason per OpenAI reason. */
static const struct reason_map finish_reasons[] = {
    {"end_turn", "stop"},
    {"max_tokens", "length"},
    {"tool_use", "tool_calls"},
    {"refusal", "content_filter"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *sl_anthropic_finish_reason(const char *stop_reason)
{
    for (size_t i = 0; stop_reason && i < COUNT(stop_reasons); i++)
        if (strcmp(stop_reasons[i].anthropic, stop_reason) == 0)
            return stop_reasons[i].openai;
    return "stop";
}

const char *sl_anthropic_stop_reason(const char *finish_reason)
{
    for (size_t i = 0; finish_reason && i < COUNT(finish_reasons); i++)
        if (strcmp(finish_reasons[i].openai, finish_reason) == 0)
            return finish_reasons[i].anthropic;
    return "end_turn";
}

struct error_row {
    int status;
    const char *type;
};

/* docs.claude.com/en/api/errors. billing_error's 402 and timeout_error's 504 are
 * inferred from the SDKs' names (FORMATS.md §2.5, §9). */
static const struct error_row errors[] = {
    {400, "invalid_request_error"},
    {401, "authentication_error"},
    {402, "billing_error"},
    {403, "permission_error"},
    {404, "not_found_error"},
    {413, "request_too_large"},
    {429, "rate_limit_error"},
    {500, "api_error"},
    {504, "timeout_error"},
    {529, "overloaded_error"},
};

const char *sl_anthropic_error_type(int status)
{
    for (size_t i = 0; i < COUNT(errors); i++)
        if (errors[i].status == status)
            return errors[i].type;
    return status >= 500 ? "api_error" : "invalid_request_error";
}

int sl_anthropic_error_status(const char *type)
{
    for (size_t i = 0; type && i < COUNT(errors); i++)
        if (strcmp(errors[i].type, type) == 0)
            return errors[i].status;
    return 0;
}

static int count(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return 0;
    *out = v->valuedouble > 0 ? sl_json_clamp_int(v->valuedouble) : 0;
    return 1;
}

int sl_anthropic_usage(const cJSON *usage, struct sl_usage *u)
{
    int64_t in = 0, written = 0, read = 0, out = 0, thinking = 0;
    if (!cJSON_IsObject(usage))
        return 0;
    /* Stream deltas may carry output_tokens alone (older API versions), so the
     * input side is only replaced when this object states it. */
    if (count(usage, "input_tokens", &in)) {
        count(usage, "cache_creation_input_tokens", &written);
        count(usage, "cache_read_input_tokens", &read);
        u->prompt = in + written + read;
        u->cached = read;
    }
    if (count(usage, "output_tokens", &out))
        u->completion = out;
    if (count(cJSON_GetObjectItemCaseSensitive(usage, "output_tokens_details"), "thinking_tokens",
              &thinking))
        u->reasoning = thinking;
    u->present = 1;
    return 1;
}

void sl_anthropic_error_from(const cJSON *err, int status, struct sl_error *e)
{
    const char *type = sl_json_str(err, "type", NULL);
    const char *message = sl_json_str(err, "message", NULL);
    if (!status)
        status = sl_anthropic_error_status(type);
    if (!status)
        status = 502;
    /* Anthropic's type names are kept as they are: most equal OpenAI's, and the rest
     * (overloaded_error, billing_error) say more than a generic one would. */
    if (!type || !type[0])
        type = sl_anthropic_error_type(status);
    sl_error_set(e, status, type, "%s", message ? message : "Anthropic reported an error");
}
