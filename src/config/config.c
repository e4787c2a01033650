/* The parts of a config that do not depend on YAML: building one up in code, lookups,
 * and freeing. The loader is in load.c. */
#include "config/config.h"
#include "config/loader.h"

#include <stdlib.h>
#include <string.h>

static const char *const wire_names[] = {
    [SL_WIRE_OPENAI] = "openai",
    [SL_WIRE_ANTHROPIC] = "anthropic",
    [SL_WIRE_GEMINI] = "gemini",
};

const char *sl_wire_name(enum sl_wire w)
{
    if ((size_t)w < sizeof(wire_names) / sizeof(wire_names[0]))
        return wire_names[w];
    return "unknown";
}

int sl_wire_parse(const char *s, enum sl_wire *out)
{
    for (size_t i = 0; i < sizeof(wire_names) / sizeof(wire_names[0]); i++) {
        if (strcmp(s, wire_names[i]) == 0) {
            *out = (enum sl_wire)i;
            return 0;
        }
    }
    return -1;
}

const struct sl_provider_cfg *sl_config_find_provider(const struct sl_config *cfg,
                                                      const char *name)
{
    for (size_t i = 0; name && i < cfg->nproviders; i++)
        if (cfg->providers[i].name && strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    return NULL;
}

const struct sl_model_cfg *sl_config_find_model(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->nmodels; i++) {
        const struct sl_model_cfg *m = &cfg->models[i];
        if (m->name && strcmp(m->name, name) == 0 && m->p && m->p->enabled)
            return m;
    }
    return NULL;
}

/* Models point into the providers array, so every model is re-pointed whenever that
 * array may have moved. */
static void resolve_models(struct sl_config *cfg)
{
    for (size_t i = 0; i < cfg->nmodels; i++)
        cfg->models[i].p = sl_config_find_provider(cfg, cfg->models[i].provider);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *failed = 1;
    return d;
}

static void release_provider(struct sl_provider_cfg *p)
{
    free(p->name);
    free(p->base_url);
    if (p->api_key) {
        /* Do not leave the secret behind in freed heap memory. */
        explicit_bzero(p->api_key, strlen(p->api_key));
        free(p->api_key);
    }
    free(p->disabled_reason);
    free(p->embeddings_url);
    free(p->rerank_url);
}

static void release_model(struct sl_model_cfg *m)
{
    free(m->name);
    free(m->provider);
    free(m->model);
}

int sl_config_add_provider(struct sl_config *cfg, const char *name, enum sl_wire kind,
                           const char *base_url, const char *api_key)
{
    struct sl_provider_cfg *arr =
        realloc(cfg->providers, (cfg->nproviders + 1) * sizeof(*cfg->providers));
    if (!arr)
        return -1;
    cfg->providers = arr;
    resolve_models(cfg); /* the array may have moved even if nothing is added below */

    struct sl_provider_cfg *p = &arr[cfg->nproviders];
    int failed = 0;
    memset(p, 0, sizeof(*p));
    p->name = dup_or_null(name, &failed);
    p->kind = kind;
    p->base_url = dup_or_null(base_url, &failed);
    p->api_key = dup_or_null(api_key, &failed);
    p->enabled = 1;
    p->timeouts = cfg->upstream;
    if (failed || !p->name || !p->base_url) {
        release_provider(p);
        return -1;
    }
    for (size_t n = strlen(p->base_url); n > 0 && p->base_url[n - 1] == '/'; n--)
        p->base_url[n - 1] = '\0';
    cfg->nproviders++;
    resolve_models(cfg);
    return 0;
}

int sl_config_add_model(struct sl_config *cfg, const char *name, const char *provider,
                        const char *model)
{
    struct sl_model_cfg *arr = realloc(cfg->models, (cfg->nmodels + 1) * sizeof(*cfg->models));
    if (!arr)
        return -1;
    cfg->models = arr;

    struct sl_model_cfg *m = &arr[cfg->nmodels];
    int failed = 0;
    memset(m, 0, sizeof(*m));
    m->name = dup_or_null(name, &failed);
    m->provider = dup_or_null(provider, &failed);
    m->model = dup_or_null(model ? model : name, &failed);
    if (failed || !m->name || !m->provider) {
        release_model(m);
        return -1;
    }
    m->p = sl_config_find_provider(cfg, m->provider);
    cfg->nmodels++;
    return 0;
}

void sl_config_free(struct sl_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nproviders; i++)
        release_provider(&cfg->providers[i]);
    for (size_t i = 0; i < cfg->nmodels; i++)
        release_model(&cfg->models[i]);
    sl_config_release_groups(cfg);
    sl_config_release_pricing(cfg);
    free(cfg->govern.budgets);
    sl_config_release_chunking(cfg);
    free(cfg->providers);
    free(cfg->models);
    free(cfg->path);
    free(cfg->server.listen);
    free(cfg->server.log_level);
    free(cfg->store);
    free(cfg);
}
