/* ${VAR}, ${VAR:-default} and $$ substitution, applied to every configuration scalar
 * before it is typed. */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"

static int is_name_char(char c, int first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

/* Expands the reference that starts at s[0] == '$', s[1] == '{'. Returns how many
 * input bytes it used, or 0 with *why set when it is malformed. */
static size_t expand_ref(const char *s, size_t len, struct sl_buf *out, char *unset,
                         size_t unset_size, const char **why)
{
    const char *end = memchr(s, '}', len);
    if (!end) {
        *why = "unterminated ${";
        return 0;
    }
    const char *name = s + 2, *p = name;
    while (p < end && is_name_char(*p, p == name))
        p++;
    size_t nlen = (size_t)(p - name);
    int has_default = end - p >= 2 && p[0] == ':' && p[1] == '-';
    if (nlen == 0 || nlen >= SL_MAX_NAME || (p != end && !has_default)) {
        *why = "bad variable reference: expected ${NAME} or ${NAME:-default}";
        return 0;
    }
    char var[SL_MAX_NAME];
    memcpy(var, name, nlen);
    var[nlen] = '\0';
    const char *val = getenv(var);
    int r = 0;
    /* As in the shell, ":-" also covers a variable that is set but empty. */
    if (val && *val)
        r = sl_buf_puts(out, val);
    else if (has_default)
        r = sl_buf_append(out, p + 2, (size_t)(end - p - 2));
    else if (unset && unset_size && !unset[0])
        snprintf(unset, unset_size, "%s", var);
    if (r) {
        *why = "value too long after substitution";
        return 0;
    }
    return (size_t)(end - s) + 1;
}

int sl_config_expand_env(const char *s, size_t len, struct sl_buf *out, char *unset,
                         size_t unset_size, const char **why)
{
    size_t i = 0;
    if (unset && unset_size)
        unset[0] = '\0';
    /* Start the buffer so that an empty result is "" rather than NULL. */
    if (sl_buf_append(out, "", 0))
        goto too_long;
    while (i < len) {
        const char *dollar = memchr(s + i, '$', len - i);
        size_t lit = dollar ? (size_t)(dollar - (s + i)) : len - i;
        if (sl_buf_append(out, s + i, lit))
            goto too_long;
        i += lit;
        if (i >= len)
            break;
        if (i + 1 < len && s[i + 1] == '$') {
            if (sl_buf_append(out, "$", 1))
                goto too_long;
            i += 2;
        } else if (i + 1 < len && s[i + 1] == '{') {
            size_t used = expand_ref(s + i, len - i, out, unset, unset_size, why);
            if (!used)
                return -1;
            i += used;
        } else {
            /* A lone '$' is kept: "pa$sword" needs no escaping. */
            if (sl_buf_append(out, "$", 1))
                goto too_long;
            i++;
        }
    }
    return 0;
too_long:
    *why = "value too long after substitution";
    return -1;
}
