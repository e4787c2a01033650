/* The table of provider presets. */
#include "providers/providers.h"

#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"

/* To add a provider: a row here (most specific hosts first), a wire case for each quirk
 * in tests/cases/, and its section in docs/providers.md. */
static const struct sl_preset presets[] = {
    {"deepseek", "deepseek.com", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", 0, 0},
    {"dashscope", "dashscope", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
     "DASHSCOPE_API_KEY", 0, 1},
    {"moonshot", "moonshot", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY", 10, 0},
    {"zhipu", "bigmodel.cn", "https://open.bigmodel.cn/api/paas/v4", "ZHIPUAI_API_KEY", 0, 0},
    {"zai", "z.ai", "https://api.z.ai/api/paas/v4", "ZAI_API_KEY", 0, 0},
    {"siliconflow", "siliconflow", "https://api.siliconflow.cn/v1", "SILICONFLOW_API_KEY", 0, 0},
    {"openrouter", "openrouter.ai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", 0, 0},
    {"openai", "api.openai.com", "https://api.openai.com/v1", "OPENAI_API_KEY", 0, 0},
    {"anthropic", "anthropic.com", "https://api.anthropic.com", "ANTHROPIC_API_KEY", 0, 0},
    {"gemini", "googleapis.com", "https://generativelanguage.googleapis.com/v1beta",
     "GEMINI_API_KEY", 0, 0},
    {"jina", "jina.ai", "https://api.jina.ai/v1", "JINA_API_KEY", 0, 0},
    {"cohere", "cohere.", "https://api.cohere.com", "COHERE_API_KEY", 0, 0},
    {"ollama", ":11434", "http://127.0.0.1:11434/v1", NULL, 0, 0},
    {"vllm", ":8000", "http://127.0.0.1:8000/v1", NULL, 0, 0},
};

static const struct sl_preset generic = {"generic", "", "", NULL, 0, 0};

const struct sl_preset *sl_preset_find(const char *name)
{
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
        if (strcmp(presets[i].name, name) == 0)
            return &presets[i];
    return NULL;
}

/* The host part of a URL: between "://" and the next '/'. */
static int host_has(const char *url, const char *needle)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/"), k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(h + i, needle, k) == 0)
            return 1;
    return 0;
}

const struct sl_preset *sl_provider_preset(const struct sl_provider_cfg *p)
{
    const struct sl_preset *named = p->preset[0] ? sl_preset_find(p->preset) : NULL;
    if (named)
        return named;
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
        if (host_has(p->base_url, presets[i].host))
            return &presets[i];
    return &generic;
}

static const char *quoted(struct sl_arena *a, const char *s)
{
    struct sl_buf b = SL_BUF_INIT(4096);
    sl_json_quote(&b, s, strlen(s));
    const char *r = b.ptr ? sl_arena_strndup(a, b.ptr, b.len) : NULL;
    sl_buf_release(&b);
    return r;
}

/* The client's stream_options with include_usage on: sluice needs usage for the ledger. */
static const char *stream_options(struct sl_arena *a, const cJSON *req)
{
    cJSON *so = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(req, "stream_options"), 1);
    if (!cJSON_IsObject(so)) {
        cJSON_Delete(so);
        so = cJSON_CreateObject();
    }
    cJSON_DeleteItemFromObjectCaseSensitive(so, "include_usage");
    cJSON_AddTrueToObject(so, "include_usage");
    char *printed = cJSON_PrintUnformatted(so);
    const char *r = printed ? sl_arena_strndup(a, printed, strlen(printed)) : NULL;
    cJSON_free(printed);
    cJSON_Delete(so);
    return r;
}

int sl_provider_edits(const struct sl_model_cfg *m, const cJSON *req, int stream,
                      struct sl_arena *a, struct sl_json_edit *out, int max)
{
    const struct sl_preset *pre = sl_provider_preset(m->p);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(req, "temperature");
    int n = 0;
    if (max < 4)
        return -1;
    out[n++] = (struct sl_json_edit){"model", quoted(a, m->model)};
    if (stream)
        out[n++] = (struct sl_json_edit){"stream_options", stream_options(a, req)};
    if (pre->max_temperature_x10 && cJSON_IsNumber(t) &&
        t->valuedouble * 10 > pre->max_temperature_x10)
        out[n++] = (struct sl_json_edit){"temperature",
                                         sl_arena_sprintf(a, "%g", pre->max_temperature_x10 / 10.0)};
    if (pre->nonstream_thinking_off && !stream &&
        !cJSON_GetObjectItemCaseSensitive(req, "enable_thinking"))
        out[n++] = (struct sl_json_edit){"enable_thinking", "false"};
    for (int i = 0; i < n; i++)
        if (!out[i].value)
            return -1;
    return n;
}
