/* What the simulated model answers: directives, the deterministic reply text, reasoning,
 * tool calls built from JSON schemas, and exact usage. Knows no wire format. */
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/buf.h"
#include "sim/sim_internal.h"

#define DIRECTIVE_PREFIX "@sim:"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int sl_sim_words(const char *s, size_t n)
{
    int words = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_space(s[i]) && (i == 0 || is_space(s[i - 1])))
            words++;
    return words;
}

size_t sl_sim_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    /* Back up over continuation bytes so the cut lands before a lead byte. */
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

const struct sim_msg *sl_sim_last_user(const struct sim_request *rq)
{
    for (int i = rq->n_msgs - 1; i >= 0; i--)
        if (strcmp(rq->msgs[i].role, "user") == 0)
            return &rq->msgs[i];
    return NULL;
}

/* ---- directives ---- */

/* To add a directive: a row here, a field in struct sim_directives, its effect where
 * the field is read, a test and a row in docs/sim.md's table. */
static const struct directive {
    const char *name;
    size_t field;
    int max; /* 0: a flag that takes no value */
} directives[] = {
    {"status", offsetof(struct sim_directives, status), 599},
    {"retry_after", offsetof(struct sim_directives, retry_after), 86400},
    {"fail_times", offsetof(struct sim_directives, fail_times), INT_MAX},
    {"reset", offsetof(struct sim_directives, reset), 0},
    {"reset_after", offsetof(struct sim_directives, reset_after), INT_MAX},
    {"stall", offsetof(struct sim_directives, stall_ms), SIM_MAX_MS},
    {"stall_after", offsetof(struct sim_directives, stall_after), INT_MAX},
    {"stall_ms", offsetof(struct sim_directives, stall_after_ms), SIM_MAX_MS},
    {"malformed_after", offsetof(struct sim_directives, malformed_after), INT_MAX},
    {"error_after", offsetof(struct sim_directives, error_after), INT_MAX},
    {"keepalive", offsetof(struct sim_directives, keepalive), 10000},
    {"no_usage", offsetof(struct sim_directives, no_usage), 0},
    {"parallel_tools", offsetof(struct sim_directives, parallel_tools), 0},
    {"ttft", offsetof(struct sim_directives, ttft_ms), SIM_MAX_MS},
    {"delay", offsetof(struct sim_directives, delay_ms), SIM_MAX_MS},
    {"words", offsetof(struct sim_directives, words), SIM_MAX_WORDS},
    {"stamp", offsetof(struct sim_directives, stamp), 0},
    {"cached", offsetof(struct sim_directives, cached), INT_MAX},
};

/* Parses a decimal value, clamped to max. Returns -1 when it is not a number. */
static int parse_value(const char *s, size_t n, int max)
{
    if (n == 0 || n > 12)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v > max ? max : (int)v;
}

static void apply_directive(const char *tok, size_t n, struct sim_directives *d)
{
    const char *eq = memchr(tok, '=', n);
    size_t name_len = eq ? (size_t)(eq - tok) : n;
    for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]); i++) {
        const struct directive *dv = &directives[i];
        if (strlen(dv->name) != name_len || memcmp(dv->name, tok, name_len) != 0)
            continue;
        int *field = (int *)((char *)d + dv->field);
        int v = dv->max == 0 ? 1 : eq ? parse_value(eq + 1, n - name_len - 1, dv->max) : -1;
        if (v >= 0)
            *field = v;
        return;
    }
}

static int is_directive(const char *tok, size_t n)
{
    size_t plen = sizeof(DIRECTIVE_PREFIX) - 1;
    return n >= plen && memcmp(tok, DIRECTIVE_PREFIX, plen) == 0;
}

/* Calls fn for each whitespace-separated token of s. */
static void each_token(const char *s, void (*fn)(const char *, size_t, void *), void *arg)
{
    while (*s) {
        while (is_space(*s))
            s++;
        const char *start = s;
        while (*s && !is_space(*s))
            s++;
        if (s > start)
            fn(start, (size_t)(s - start), arg);
    }
}

static void on_directive_token(const char *tok, size_t n, void *arg)
{
    size_t plen = sizeof(DIRECTIVE_PREFIX) - 1;
    if (is_directive(tok, n))
        apply_directive(tok + plen, n - plen, arg);
}

_Static_assert(sizeof(struct sim_directives) % sizeof(int) == 0, "only int fields");

void sl_sim_directives_parse(const char *text, struct sim_directives *d)
{
    /* Every field is an int whose "absent" value is -1, flags aside. */
    for (size_t i = 0; i < sizeof(*d) / sizeof(int); i++)
        ((int *)d)[i] = -1;
    d->reset = d->no_usage = d->parallel_tools = d->stamp = 0;
    if (text)
        each_token(text, on_directive_token, d);
}

/* ---- reply text ---- */

static void on_plain_token(const char *tok, size_t n, void *arg)
{
    struct sl_buf *b = arg;
    if (is_directive(tok, n))
        return;
    if (b->len)
        sl_buf_append(b, " ", 1);
    sl_buf_append(b, tok, n);
}

/* The user's text as the reply echoes it: directives out, whitespace collapsed, cut. */
static char *echo_text(const char *text, struct sl_arena *a)
{
    struct sl_buf b = SL_BUF_INIT((size_t)SIM_MAX_WORDS * 16);
    each_token(text ? text : "", on_plain_token, &b);
    size_t n = b.ptr ? sl_sim_utf8_cut(b.ptr, b.len, SIM_TEXT_CUT) : 0;
    while (n > 0 && b.ptr[n - 1] == ' ')
        n--;
    char *out = sl_arena_strndup(a, b.ptr ? b.ptr : "", n);
    sl_buf_release(&b);
    return out;
}

struct repeat {
    struct sl_buf *out;
    int left;
};

static void on_repeat_token(const char *tok, size_t n, void *arg)
{
    struct repeat *r = arg;
    if (r->left <= 0)
        return;
    if (r->out->len)
        sl_buf_append(r->out, " ", 1);
    sl_buf_append(r->out, tok, n);
    r->left--;
}

/* The first `words` words of text, cycling through it as often as needed. */
static char *repeat_words(const char *text, int words, struct sl_arena *a)
{
    struct sl_buf b = SL_BUF_INIT((size_t)SIM_MAX_WORDS * 64);
    struct repeat r = {&b, words};
    int have = sl_sim_words(text, strlen(text));
    while (r.left > 0 && have > 0)
        each_token(text, on_repeat_token, &r);
    char *out = sl_arena_strndup(a, b.ptr ? b.ptr : "", b.len);
    sl_buf_release(&b);
    return out;
}

static char *base_text(const struct sim_request *rq, const char *echo, struct sl_arena *a)
{
    const struct sim_msg *last = &rq->msgs[rq->n_msgs - 1];
    if (strcmp(last->role, "tool") == 0)
        return sl_arena_sprintf(a, "Tool result received: %.*s",
                                (int)sl_sim_utf8_cut(last->text, strlen(last->text),
                                                     SIM_TEXT_CUT),
                                last->text);
    return sl_arena_sprintf(a, "This is a simulated reply to: %s", echo);
}

/* ---- values built from JSON schemas ---- */

static const char *schema_type(const cJSON *schema)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(schema, "type");
    if (cJSON_IsString(t))
        return t->valuestring;
    const cJSON *e;
    cJSON_ArrayForEach(e, t) if (cJSON_IsString(e) && strcasecmp(e->valuestring, "null") != 0)
        return e->valuestring;
    if (cJSON_GetObjectItemCaseSensitive(schema, "properties"))
        return "object";
    return "null";
}

static cJSON *schema_value(const cJSON *schema, int depth);

static int is_required(const cJSON *required, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, required) if (cJSON_IsString(r) && strcmp(r->valuestring, name) == 0)
        return 1;
    return 0;
}

static cJSON *schema_object(const cJSON *schema, int depth)
{
    cJSON *obj = cJSON_CreateObject();
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *required = cJSON_GetObjectItemCaseSensitive(schema, "required");
    const cJSON *p;
    cJSON_ArrayForEach(p, props)
    {
        if (!obj || !p->string || (cJSON_IsArray(required) && !is_required(required, p->string)))
            continue;
        cJSON_AddItemToObject(obj, p->string, schema_value(p, depth + 1));
    }
    return obj;
}

static cJSON *schema_value(const cJSON *schema, int depth)
{
    if (!cJSON_IsObject(schema) || depth > SIM_SCHEMA_DEPTH)
        return cJSON_CreateNull();
    const cJSON *fixed = cJSON_GetObjectItemCaseSensitive(schema, "const");
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(schema, "enum");
    if (!fixed && cJSON_IsArray(choices))
        fixed = cJSON_GetArrayItem(choices, 0);
    if (fixed)
        return cJSON_Duplicate(fixed, 1);
    const char *type = schema_type(schema);
    if (strcasecmp(type, "string") == 0)
        return cJSON_CreateString("sim");
    if (strcasecmp(type, "number") == 0 || strcasecmp(type, "integer") == 0)
        return cJSON_CreateNumber(1);
    if (strcasecmp(type, "boolean") == 0)
        return cJSON_CreateTrue();
    if (strcasecmp(type, "array") == 0)
        return cJSON_CreateArray();
    if (strcasecmp(type, "object") == 0)
        return schema_object(schema, depth);
    return cJSON_CreateNull();
}

/* Prints v into the arena and deletes it; NULL when out of memory. */
static char *print_into(cJSON *v, struct sl_arena *a)
{
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    char *out = s ? sl_arena_strndup(a, s, strlen(s)) : NULL;
    free(s);
    cJSON_Delete(v);
    return out;
}

/* Arguments for a tool with this schema; a missing schema gives {}. */
static char *schema_json(const cJSON *schema, struct sl_arena *a)
{
    return print_into(schema ? schema_value(schema, 0) : cJSON_CreateObject(), a);
}

/* ---- tool calls ---- */

static int wants_tools(const struct sim_request *rq)
{
    return rq->n_tools > 0 && !rq->tools_off &&
           strcmp(rq->msgs[rq->n_msgs - 1].role, "user") == 0;
}

static const cJSON *tool_schema(const struct sim_request *rq, const char *name)
{
    for (int i = 0; i < rq->n_tools; i++)
        if (strcmp(rq->tools[i].name, name) == 0)
            return rq->tools[i].schema;
    return NULL;
}

static int tool_calls(const struct sim_request *rq, const struct sim_directives *d,
                      struct sl_arena *a, struct sim_answer *out)
{
    int n = rq->forced_tool || !d->parallel_tools ? 1 : rq->n_tools;
    struct sim_tool_call *calls = sl_arena_alloc(a, sizeof(*calls) * (size_t)n);
    if (!calls)
        return -1;
    for (int i = 0; i < n; i++) {
        calls[i].name = rq->forced_tool ? rq->forced_tool : rq->tools[i].name;
        calls[i].arguments = schema_json(tool_schema(rq, calls[i].name), a);
        if (!calls[i].arguments)
            return -1;
    }
    out->calls = calls;
    out->n_calls = n;
    out->tool_forced = rq->forced_tool != NULL;
    return 0;
}

/* ---- the answer ---- */

static char *json_reply(const char *text, struct sl_arena *a)
{
    cJSON *obj = cJSON_CreateObject();
    if (obj && !cJSON_AddStringToObject(obj, "reply", text)) {
        cJSON_Delete(obj);
        obj = NULL;
    }
    return print_into(obj, a);
}

static int text_content(const struct sim_request *rq, const struct sim_directives *d,
                        const char *echo, struct sl_arena *a, struct sim_answer *out)
{
    const char *text = base_text(rq, echo, a);
    if (text && d->words >= 0)
        text = repeat_words(text, d->words, a);
    if (text && rq->format == SIM_FORMAT_JSON_OBJECT)
        text = json_reply(text, a);
    else if (text && rq->format == SIM_FORMAT_JSON_SCHEMA)
        text = schema_json(rq->format_schema, a);
    out->content = text;
    return text ? 0 : -1;
}

static int count_words(const char *s)
{
    return s ? sl_sim_words(s, strlen(s)) : 0;
}

/* Length of the first `words` words of s, with the whitespace between them. */
static size_t words_prefix(const char *s, int words)
{
    size_t i = 0;
    for (int w = 0; w < words && s[i]; w++) {
        while (s[i] && is_space(s[i]))
            i++;
        while (s[i] && !is_space(s[i]))
            i++;
    }
    return i;
}

/* Cuts the reasoning, then the reply text, to the request's max_tokens (tool calls are
 * never cut). */
static int apply_max_tokens(const struct sim_request *rq, struct sl_arena *a,
                            struct sim_answer *ans)
{
    int left = rq->max_tokens, r = count_words(ans->reasoning), c = count_words(ans->content);
    if (left <= 0 || r + c <= left)
        return 0;
    ans->truncated = 1;
    if (r > left) {
        ans->reasoning = sl_arena_strndup(a, ans->reasoning, words_prefix(ans->reasoning, left));
        r = left;
    }
    if (ans->content)
        ans->content = sl_arena_strndup(a, ans->content, words_prefix(ans->content, left - r));
    return (ans->reasoning || r == 0) && (ans->content || c == 0) ? 0 : -1;
}

static void count_usage(const struct sim_request *rq, struct sim_answer *ans)
{
    ans->prompt_tokens = 0;
    for (int i = 0; i < rq->n_msgs; i++)
        ans->prompt_tokens += count_words(rq->msgs[i].text) + 3;
    ans->reasoning_tokens = count_words(ans->reasoning);
    ans->completion_tokens = ans->reasoning_tokens + count_words(ans->content);
    for (int i = 0; i < ans->n_calls; i++)
        ans->completion_tokens +=
            count_words(ans->calls[i].name) + count_words(ans->calls[i].arguments);
}

int sl_sim_answer(const struct sim_request *rq, const struct sim_directives *d,
                  struct sl_arena *a, struct sim_answer *out)
{
    memset(out, 0, sizeof(*out));
    const struct sim_msg *user = sl_sim_last_user(rq);
    const char *echo = echo_text(user ? user->text : "", a);
    if (!echo)
        return -1;
    if (strstr(rq->model, "reasoner")) {
        out->reasoning = sl_arena_sprintf(a, "Thinking about: %s", echo);
        if (!out->reasoning)
            return -1;
    }
    int result = wants_tools(rq) ? tool_calls(rq, d, a, out) : text_content(rq, d, echo, a, out);
    if (result || (result = apply_max_tokens(rq, a, out)) != 0)
        return result;
    count_usage(rq, out);
    if (d->cached > 0)
        out->cached_tokens = d->cached < out->prompt_tokens ? d->cached : out->prompt_tokens;
    return 0;
}
