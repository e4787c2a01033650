/* Raw top-level member scan and cJSON accessors. */
#include "core/json.h"

#include <string.h>

#include "core/buf.h"
#include "core/limits.h"

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *end)
{
    /* p is just past the opening quote; returns the closing quote or end. */
    while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end)
            p++;
        p++;
    }
    return p;
}

static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = skip_string(p + 1, end);
            if (p == end)
                return end;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return p;
            depth--;
        } else if (c == ',' && depth == 0) {
            return p;
        }
        p++;
        if (depth == 0 && (c == '"' || c == '}' || c == ']'))
            return p;
    }
    return p;
}

int sl_json_members(const char *s, size_t n, struct sl_json_member *out, int max)
{
    const char *p = s, *end = s + n;
    p = skip_ws(p, end);
    if (p == end || *p != '{')
        return -1;
    p = skip_ws(p + 1, end);
    int count = 0;
    while (p < end && *p == '"') {
        const char *k = p + 1;
        const char *kq = skip_string(k, end);
        if (kq == end)
            return -1;
        p = skip_ws(kq + 1, end);
        if (p == end || *p != ':')
            return -1;
        p = skip_ws(p + 1, end);
        const char *v = p;
        const char *ve = skip_value(p, end);
        const char *vt = ve;
        while (vt > v && (vt[-1] == ' ' || vt[-1] == '\t' || vt[-1] == '\n' || vt[-1] == '\r'))
            vt--;
        if (count == max)
            return -1;
        out[count].key = (struct sl_span){k, (size_t)(kq - k)};
        out[count].value = (struct sl_span){v, (size_t)(vt - v)};
        count++;
        p = skip_ws(ve, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
    return count;
}

long sl_json_raw_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return (long)i;
    }
    return -1;
}

const char *sl_json_duplicate_key(const cJSON *obj)
{
    for (const cJSON *a = obj ? obj->child : NULL; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return a->string;
    return NULL;
}

static const struct sl_json_edit *edit_for(const struct sl_span *key, const struct sl_json_edit *e,
                                           int ne)
{
    for (int i = 0; i < ne; i++)
        if (strlen(e[i].key) == key->len && memcmp(e[i].key, key->ptr, key->len) == 0)
            return &e[i];
    return NULL;
}

int sl_json_apply_edits(const char *s, size_t n, const struct sl_json_edit *e, int ne,
                        struct sl_buf *out)
{
    struct sl_json_member m[SL_MAX_TOP_KEYS];
    int nm = sl_json_members(s, n, m, SL_MAX_TOP_KEYS);
    unsigned done = 0; /* bit i: edit i replaced a member */
    const char *pos = s;
    int rc = nm < 0 || ne > 32 ? -1 : 0;
    for (int i = 0; !rc && i < nm; i++) {
        if (memchr(m[i].key.ptr, '\\', m[i].key.len))
            return -1;
        const struct sl_json_edit *ed = edit_for(&m[i].key, e, ne);
        if (!ed)
            continue;
        rc |= sl_buf_append(out, pos, (size_t)(m[i].value.ptr - pos));
        rc |= sl_buf_puts(out, ed->value);
        pos = m[i].value.ptr + m[i].value.len;
        done |= 1u << (ed - e);
    }
    const char *brace = s + n; /* one past the object's closing brace */
    while (brace > pos && brace[-1] != '}')
        brace--;
    if (rc || brace == pos)
        return -1;
    rc |= sl_buf_append(out, pos, (size_t)(brace - 1 - pos));
    for (int i = 0; i < ne; i++) {
        if (done & (1u << i))
            continue;
        rc |= sl_buf_puts(out, nm > 0 || i > 0 ? ",\"" : "\"");
        rc |= sl_buf_puts(out, e[i].key);
        rc |= sl_buf_puts(out, "\":");
        rc |= sl_buf_puts(out, e[i].value);
    }
    rc |= sl_buf_append(out, brace - 1, (size_t)(s + n - (brace - 1)));
    return rc ? -1 : 0;
}

int sl_json_apply_edits_tree(cJSON *obj, const struct sl_json_edit *e, int ne)
{
    for (int i = 0; i < ne; i++) {
        cJSON *v = cJSON_Parse(e[i].value);
        if (!v)
            return -1;
        cJSON_DeleteItemFromObjectCaseSensitive(obj, e[i].key);
        cJSON_AddItemToObject(obj, e[i].key, v);
    }
    return 0;
}

#define INT_LIMIT 4611686018427387904.0 /* 2^62 */

int64_t sl_json_clamp_int(double d)
{
    if (!(d == d))
        return 0;
    if (d >= INT_LIMIT)
        return (int64_t)INT_LIMIT;
    if (d <= -INT_LIMIT)
        return -(int64_t)INT_LIMIT;
    return (int64_t)d;
}

int sl_json_is_int(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble > -INT_LIMIT && v->valuedouble < INT_LIMIT &&
           v->valuedouble == (double)(int64_t)v->valuedouble;
}

const char *sl_json_str(const cJSON *obj, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

int64_t sl_json_int(const cJSON *obj, const char *key, int64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? sl_json_clamp_int(v->valuedouble) : dflt;
}

int sl_json_bool(const cJSON *obj, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

int sl_json_quote(struct sl_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (sl_buf_append(b, "\"", 1))
        return -1;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (sl_buf_append(b, s + start, i - start))
            return -1;
        char esc[7] = {'\\', 0};
        size_t len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
            len = 6;
        }
        if (sl_buf_append(b, esc, len))
            return -1;
        start = i + 1;
    }
    if (sl_buf_append(b, s + start, n - start) || sl_buf_append(b, "\"", 1))
        return -1;
    return 0;
}
