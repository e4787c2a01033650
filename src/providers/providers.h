/* Provider presets: what sluice knows about each vendor's OpenAI-compatible API
 * beyond the wire format, as data. A provider gets its preset from `preset:` in the
 * config or, when absent, from its base_url's host. */
#ifndef SL_PROVIDERS_H
#define SL_PROVIDERS_H

#include "config/config.h"

struct sl_preset {
    const char *name;
    const char *host;            /* a base_url whose host contains this picks the preset */
    const char *base_url;        /* the documented default */
    const char *key_env;         /* the conventional variable for its key */
    int max_temperature_x10;     /* 0: no limit; a higher temperature is lowered to it */
    int nonstream_thinking_off;  /* non-stream calls need enable_thinking:false (DashScope's
                                    open-source Qwen3 thinking models refuse them otherwise) */
};

/* The preset of p (never NULL: "generic" when nothing matches). */
const struct sl_preset *sl_provider_preset(const struct sl_provider_cfg *p);

/* Plans the top-level changes to a canonical (OpenAI) request on its way to the
 * OpenAI-compatible provider of model m: the provider's model name, include_usage
 * for streams, and the preset's quirks. Values are raw JSON in the arena. Returns the
 * number of edits written to out (at most max), or -1 when out of memory. */
struct sl_arena;
struct sl_json_edit;
typedef struct cJSON cJSON;
int sl_provider_edits(const struct sl_model_cfg *m, const cJSON *req, int stream,
                      struct sl_arena *a, struct sl_json_edit *out, int max);

/* The preset called name, or NULL. */
const struct sl_preset *sl_preset_find(const char *name);

#endif
