/* The format registries and the format-neutral error helper. */
#include "formats/format.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern const struct sl_upstream_format sl_anthropic_upstream;
extern const struct sl_upstream_format sl_gemini_upstream;
extern const struct sl_client_format sl_anthropic_client;

/* To add a format: its vtable in its own file, a row here, wire cases in tests/cases/,
 * and a section in docs/providers.md. */
static const struct sl_upstream_format *const upstream_formats[] = {
    &sl_openai_upstream,
    &sl_anthropic_upstream,
    &sl_gemini_upstream,
};

static const struct sl_client_format *const client_formats[] = {
    &sl_openai_client,
    &sl_anthropic_client,
};

const struct sl_upstream_format *sl_upstream_format(enum sl_wire w)
{
    for (size_t i = 0; i < sizeof(upstream_formats) / sizeof(upstream_formats[0]); i++)
        if (upstream_formats[i]->wire == w)
            return upstream_formats[i];
    return NULL;
}

const struct sl_client_format *sl_client_format(const char *name)
{
    for (size_t i = 0; i < sizeof(client_formats) / sizeof(client_formats[0]); i++)
        if (strcmp(client_formats[i]->name, name) == 0)
            return client_formats[i];
    return NULL;
}

void sl_error_set(struct sl_error *e, int status, const char *type, const char *fmt, ...)
{
    va_list ap;
    memset(e, 0, sizeof(*e));
    e->status = status;
    snprintf(e->type, sizeof(e->type), "%s", type ? type : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}
