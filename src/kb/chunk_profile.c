/* Chunking profiles (a table row each), their registry, "auto" detection, the heading lines
 * that open sections, and the two length units. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kb/chunk_internal.h"
#include "meter/estimate.h"

/* To add a built-in profile: a separators list and a row in builtins[], a test in
 * tests/unit/test_chunk.c, and a line in docs/kb.md's profile table. */
static const char *const contract_seps[] = {
    "\n第", "\n条款", "\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ",
    "：", "，", "、", ", ", " ", ""};
static const char *const techdoc_seps[] = {
    "\n#", "\n##", "\n###", "\n####", "\n\n", "\n", ". ", "。", "! ", "? ", "！", "？",
    "; ", "；", ", ", "，", " ", ""};
static const char *const default_seps[] = {
    "\n#", "\n##", "\n###", "\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ",
    "，", ", ", " ", ""};
static const char *const langchain_seps[] = {"\n\n", "\n", " ", ""};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct sl_chunk_profile builtins[] = {
    {"contract", contract_seps, N(contract_seps), 800, 100, SL_CHUNK_TOKENS, 0,
     SL_HEADINGS_CLAUSE | SL_HEADINGS_MARKDOWN},
    {"techdoc", techdoc_seps, N(techdoc_seps), 600, 80, SL_CHUNK_TOKENS, 0, SL_HEADINGS_MARKDOWN},
    {"default", default_seps, N(default_seps), 500, 50, SL_CHUNK_TOKENS, 0, SL_HEADINGS_MARKDOWN},
    {"langchain", langchain_seps, N(langchain_seps), 1000, 200, SL_CHUNK_CHARS, 1, 0},
};

/* Profiles registered from config: owned copies. */
struct owned {
    struct sl_chunk_profile p;
    char *strings[SL_CHUNK_MAX_SEPARATORS + 1];
    const char *seps[SL_CHUNK_MAX_SEPARATORS];
};
static struct owned *registered[SL_CHUNK_MAX_PROFILES];
static int nregistered;

const struct sl_chunk_profile *sl_chunk_profile(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < N(builtins); i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    for (int i = 0; i < nregistered; i++)
        if (strcmp(registered[i]->p.name, name) == 0)
            return &registered[i]->p;
    return NULL;
}

int sl_chunk_profile_check(const struct sl_chunk_profile *p, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!p->name || !p->name[0])
        why = "a profile needs a name";
    else if (p->size < 1 || p->size > 1000000)
        why = "size must be between 1 and 1000000";
    else if (p->overlap < 0 || p->overlap >= p->size)
        why = "overlap must be at least 0 and smaller than size";
    else if (p->nseparators < 0 || p->nseparators > SL_CHUNK_MAX_SEPARATORS)
        why = "too many separators (at most 32)";
    else if (p->unit != SL_CHUNK_TOKENS && p->unit != SL_CHUNK_CHARS)
        why = "unit must be tokens or chars";
    for (int i = 0; !why && i < p->nseparators; i++)
        if (!p->separators[i])
            why = "a separator is missing";
    if (why)
        snprintf(err, errlen, "chunking profile %s: %s", p->name ? p->name : "?", why);
    return why ? -1 : 0;
}

static void owned_free(struct owned *o)
{
    if (!o)
        return;
    for (int i = 0; i <= SL_CHUNK_MAX_SEPARATORS; i++)
        free(o->strings[i]);
    free(o);
}

int sl_chunk_profile_register(const struct sl_chunk_profile *p, char *err, size_t errlen)
{
    if (sl_chunk_profile_check(p, err, errlen))
        return -1;
    for (int i = 0; i < N(builtins); i++)
        if (strcmp(builtins[i].name, p->name) == 0) {
            snprintf(err, errlen, "chunking profile %s: a built-in profile has that name", p->name);
            return -1;
        }
    struct owned *o = calloc(1, sizeof(*o));
    if (!o || !(o->strings[0] = strdup(p->name)))
        goto oom;
    o->p = *p;
    o->p.name = o->strings[0];
    for (int i = 0; i < p->nseparators; i++) {
        if (!(o->strings[i + 1] = strdup(p->separators[i])))
            goto oom;
        o->seps[i] = o->strings[i + 1];
    }
    o->p.separators = o->seps;
    for (int i = 0; i < nregistered; i++)
        if (strcmp(registered[i]->p.name, p->name) == 0) {
            owned_free(registered[i]);
            registered[i] = o;
            return 0;
        }
    if (nregistered == SL_CHUNK_MAX_PROFILES) {
        owned_free(o);
        snprintf(err, errlen, "chunking profile %s: too many profiles (at most %d)", p->name,
                 SL_CHUNK_MAX_PROFILES);
        return -1;
    }
    registered[nregistered++] = o;
    return 0;
oom:
    owned_free(o);
    snprintf(err, errlen, "chunking profile: out of memory");
    return -1;
}

int64_t sl_chunk_cost(enum sl_chunk_unit unit, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    int64_t sum = 0;
    if (unit == SL_CHUNK_CHARS) {
        for (; p < end; p++)
            sum += (*p & 0xC0) != 0x80;
        return sum;
    }
    while (p < end) { /* the walk of sl_estimate_text, in tenths */
        unsigned c = *p;
        if (c < 0x80) {
            sum += (c == ' ' || c == '\n' || c == '\t') ? 1 : 3;
            p++;
        } else if ((c & 0xE0) == 0xC0) {
            sum += 4;
            p += 2;
        } else if ((c & 0xF0) == 0xE0) {
            sum += 6;
            p += 3;
        } else {
            sum += 10;
            p += 4;
        }
    }
    return sum;
}

/* Per-byte weights: code points, and tenths of a token as sl_estimate_text counts them. */
static uint8_t weights[2][256];
static pthread_once_t weights_once = PTHREAD_ONCE_INIT;

static void init_weights(void)
{
    for (int c = 0; c < 256; c++) {
        weights[SL_CHUNK_CHARS][c] = (c & 0xC0) != 0x80;
        weights[SL_CHUNK_TOKENS][c] = c < 0x80 ? ((c == ' ' || c == '\n' || c == '\t') ? 1 : 3)
                                      : c < 0xC0 ? 0 : c < 0xE0 ? 4 : c < 0xF0 ? 6 : 10;
    }
}

/* The weight of one block, written so that the compiler vectorises it. */
#if !defined(__SSE2__) || SL_COST_BLOCK != 16
static uint32_t block_chars(const unsigned char *p)
{
    uint32_t n = 0;
    for (int k = 0; k < SL_COST_BLOCK; k++)
        n += (p[k] & 0xC0) != 0x80;
    return n;
}

static uint32_t block_tenths(const unsigned char *p)
{
    uint32_t n = 0; /* branch-free so that it vectorises: ASCII 1 or 3, leads 4/6/10 */
    for (int k = 0; k < SL_COST_BLOCK; k++) {
        uint8_t c = p[k];
        uint8_t ascii = c < 0x80, ws = (c == ' ') | (c == '\n') | (c == '\t');
        uint8_t lead = c >= 0xC0, e = c >= 0xE0, f = c >= 0xF0;
        n += (uint8_t)(ascii * (3 - 2 * ws) + lead * (4 + 2 * e + 4 * f));
    }
    return n;
}
#endif

void sl_cost_bytes_init(struct sl_cost_index *x, enum sl_chunk_unit unit, const char *t,
                        size_t len)
{
    pthread_once(&weights_once, init_weights);
    int chars = unit == SL_CHUNK_CHARS;
    x->t = (const unsigned char *)t;
    x->len = len;
    x->w = weights[chars ? SL_CHUNK_CHARS : SL_CHUNK_TOKENS];
    x->chars = chars;
    x->blocks = NULL;
}

int sl_cost_index_init(struct sl_cost_index *x, enum sl_chunk_unit unit, const char *t,
                       size_t len)
{
    sl_cost_bytes_init(x, unit, t, len);
    int chars = x->chars;
    x->blocks = malloc((len / SL_COST_BLOCK + 1) * sizeof(*x->blocks));
    if (!x->blocks)
        return -1;
    uint32_t sum = 0;
    size_t full = len / SL_COST_BLOCK;
#if defined(__SSE2__) && SL_COST_BLOCK == 16
    if (chars)
        for (size_t b = 0; b < full; b++) {
            x->blocks[b] = sum;
            sum += (uint32_t)sl_cost_blocks16(1, x->t + b * SL_COST_BLOCK, 1);
        }
    else
        for (size_t b = 0; b < full; b++) {
            x->blocks[b] = sum;
            sum += (uint32_t)sl_cost_blocks16(0, x->t + b * SL_COST_BLOCK, 1);
        }
#else
    for (size_t b = 0; b < full; b++) {
        x->blocks[b] = sum;
        sum += chars ? block_chars(x->t + b * SL_COST_BLOCK) : block_tenths(x->t + b * SL_COST_BLOCK);
    }
#endif
    x->blocks[full] = sum;
    return 0;
}

void sl_cost_index_release(struct sl_cost_index *x)
{
    free(x->blocks);
    x->blocks = NULL;
}

int64_t sl_chunk_measure(enum sl_chunk_unit unit, const char *s, size_t n)
{
    return unit == SL_CHUNK_CHARS ? sl_chunk_cost(unit, s, n) : sl_estimate_text(s, n);
}

/* ---- heading lines ---- */

static int has_prefix(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

/* Bytes of one numeral character at p: ASCII or full-width digit, or a Chinese numeral. */
static size_t numeral(const char *p, const char *end)
{
    static const char *const zh[] = {"〇", "零", "一", "二", "三", "四", "五", "六", "七",
                                     "八", "九", "十", "百", "千", "两", "０", "１", "２",
                                     "３", "４", "５", "６", "７", "８", "９"};
    if (p < end && *p >= '0' && *p <= '9')
        return 1;
    if (end - p < 3 || (unsigned char)*p < 0xE3)
        return 0;
    for (size_t i = 0; i < sizeof(zh) / sizeof(zh[0]); i++) /* all three bytes long */
        if (memcmp(p, zh[i], 3) == 0)
            return 3;
    return 0;
}

/* After 第N条 the line must go on with a delimiter, so "第五条约定的" (a cross-reference
 * that a wrapped line put first) is not a clause; after 章/节 any title may follow, except
 * words that make it a reference. */
static int clause_follows(const char *p, const char *end, int level)
{
    static const char *const delim[] = {" ", "\t", "\n", "\r", "　", "：", ":", "、", ".",
                                        "．", "【", "[", "（", "(", "《", "—", "-"};
    static const char *const refer[] = {"的", "所", "约", "规", "中", "之", "项", "款", "内",
                                        "和", "或", "及", "，", ",", "、", "。", "；"};
    if (p >= end)
        return 1;
    if (level == 3) {
        for (size_t i = 0; i < sizeof(delim) / sizeof(delim[0]); i++)
            if (has_prefix(p, end, delim[i]))
                return 1;
        return 0;
    }
    for (size_t i = 0; i < sizeof(refer) / sizeof(refer[0]); i++)
        if (has_prefix(p, end, refer[i]))
            return 0;
    return 1;
}

size_t sl_chunk_clause_marker(const char *p, const char *end, int *level)
{
    const char *q = p;
    if (has_prefix(q, end, "条款")) {
        q += strlen("条款");
        size_t k = numeral(q, end);
        if (k || clause_follows(q, end, 3)) {
            *level = 3;
            return (size_t)(q - p);
        }
        return 0;
    }
    if (!has_prefix(q, end, "第"))
        return 0;
    q += strlen("第");
    size_t digits = 0, k;
    while ((k = numeral(q, end)) > 0 && digits < 12) {
        q += k;
        digits++;
    }
    if (!digits)
        return 0;
    int lv = has_prefix(q, end, "章") ? 1 : has_prefix(q, end, "节") ? 2
             : has_prefix(q, end, "条") ? 3 : 0;
    if (!lv)
        return 0;
    q += strlen("章"); /* 章 节 条 are all three bytes */
    if (!clause_follows(q, end, lv))
        return 0;
    *level = lv;
    return (size_t)(q - p);
}

/* Trims blanks (ASCII and U+3000) off the start of [*s, e). */
static void trim_blank_start(const char *t, size_t *s, size_t e)
{
    for (;;) {
        if (*s < e && (t[*s] == ' ' || t[*s] == '\t' || t[*s] == '\r'))
            (*s)++;
        else if (e - *s >= 3 && memcmp(t + *s, "　", 3) == 0)
            *s += 3;
        else
            break;
    }
}

/* Trims blanks (ASCII and U+3000) off both ends of [*s, *e). */
static void trim_blank(const char *t, size_t *s, size_t *e)
{
    trim_blank_start(t, s, *e);
    for (;;) {
        if (*e > *s && (t[*e - 1] == ' ' || t[*e - 1] == '\t' || t[*e - 1] == '\r'))
            (*e)--;
        else if (*e - *s >= 3 && memcmp(t + *e - 3, "　", 3) == 0)
            *e -= 3;
        else
            break;
    }
}

/* Title bytes of a heading at most this long (cut on a code point). */
#define TITLE_MAX 120

static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Is the line [s, e) a heading? Fills level, kind and the title span. */
static int heading_of(const char *t, size_t s, size_t e, unsigned flags, int *level,
                      unsigned *kind, size_t *ts, size_t *te)
{
    if ((flags & SL_HEADINGS_MARKDOWN) && t[s] == '#') {
        size_t h = s;
        while (h < e && t[h] == '#')
            h++;
        if (h - s <= 6 && (h == e || t[h] == ' ' || t[h] == '\t')) {
            *level = (int)(h - s);
            *kind = SL_HEADINGS_MARKDOWN;
            *ts = h;
            *te = e;
            trim_blank(t, ts, te);
            while (*te > *ts && t[*te - 1] == '#')
                (*te)--;
            trim_blank(t, ts, te);
            return 1;
        }
    }
    int lv;
    size_t m;
    if ((flags & SL_HEADINGS_CLAUSE) && (m = sl_chunk_clause_marker(t + s, t + e, &lv)) > 0) {
        *level = lv;
        *kind = SL_HEADINGS_CLAUSE;
        *ts = s;
        *te = lv == 3 ? s + m : e;
        trim_blank(t, ts, te);
        return 1;
    }
    return 0;
}

#define PATH_DEPTH 8

/* Can a line starting with byte c be a fence or a heading? Blanks (ASCII, U+3000 E3 80 80),
 * '#', '`', '~', and the lead bytes of 第 (E7) and 条款 (E6); everything else is not. */
static inline int may_open(char c)
{
    switch ((unsigned char)c) {
    case ' ': case '\t': case '\r': case '#': case '`': case '~': case 0xE3: case 0xE6: case 0xE7:
        return 1;
    default:
        return 0;
    }
}

long sl_chunk_headings(const char *t, size_t len, unsigned flags, struct sl_arena *a,
                       struct sl_heading **out)
{
    struct sl_heading *v = NULL;
    size_t n = 0, cap = 0;
    const char *stack[PATH_DEPTH];
    int levels[PATH_DEPTH], depth = 0, fence = 0;
    *out = NULL;
    for (size_t s = 0; s < len && flags;) {
        const char *nl = memchr(t + s, '\n', len - s);
        size_t e = nl ? (size_t)(nl - t) : len, b = s, be = e;
        if (may_open(t[s])) /* else neither a fence nor a heading */
            trim_blank_start(t, &b, be);
        if (b == be || !may_open(t[b])) {
            s = nl ? e + 1 : len; /* a blank line, or one that opens nothing */
            continue;
        }
        trim_blank(t, &b, &be);
        if (be - b >= 3 && (memcmp(t + b, "```", 3) == 0 || memcmp(t + b, "~~~", 3) == 0))
            fence = !fence;
        int level;
        unsigned kind;
        size_t ts, te;
        if (!fence && b < be && heading_of(t, b, be, flags, &level, &kind, &ts, &te)) {
            while (depth > 0 && levels[depth - 1] >= level)
                depth--;
            if (depth == PATH_DEPTH)
                depth--;
            size_t tl = utf8_cut(t + ts, te - ts, TITLE_MAX);
            stack[depth] = sl_arena_strndup(a, t + ts, tl);
            levels[depth++] = level;
            if (!stack[depth - 1])
                goto oom;
            size_t plen = 0;
            for (int i = 0; i < depth; i++)
                plen += strlen(stack[i]) + 3;
            char *path = sl_arena_alloc(a, plen + 1);
            if (!path)
                goto oom;
            for (int i = 0; i < depth; i++) {
                if (i)
                    strcat(path, " > ");
                strcat(path, stack[i]);
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 32;
                struct sl_heading *nv = realloc(v, cap * sizeof(*v));
                if (!nv)
                    goto oom;
                v = nv;
            }
            /* A clause's body may go on after 第N条 on the same line. */
            size_t hend = kind == SL_HEADINGS_CLAUSE && level == 3 ? te : be;
            v[n++] = (struct sl_heading){b, hend, level, kind, path};
        }
        s = nl ? e + 1 : len;
    }
    *out = v;
    return (long)n;
oom:
    free(v);
    return -1;
}

const char *sl_chunk_detect(const char *text, size_t len)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_heading *h = NULL;
    long clauses = 0, marks = 0, fences = 0;
    if (!a)
        return "default";
    long n = sl_chunk_headings(text, len, SL_HEADINGS_CLAUSE | SL_HEADINGS_MARKDOWN, a, &h);
    for (long i = 0; i < n; i++) {
        if (h[i].kind == SL_HEADINGS_CLAUSE)
            clauses++;
        else if (h[i].kind == SL_HEADINGS_MARKDOWN) {
            /* "# 第一章 总则" from a converted contract names a clause too. */
            const char *p = text + h[i].line, *end = text + h[i].eol;
            int lv;
            while (p < end && (*p == '#' || *p == ' '))
                p++;
            if (sl_chunk_clause_marker(p, end, &lv))
                clauses++;
            else
                marks++;
        }
    }
    free(h);
    sl_arena_free(a);
    for (const char *p = text, *end = text + len; p && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (end - p >= 3 && (memcmp(p, "```", 3) == 0 || memcmp(p, "~~~", 3) == 0))
            fences++;
        p = nl ? nl + 1 : NULL;
    }
    if (clauses >= 2)
        return "contract";
    if (marks >= 2 || fences >= 2)
        return "techdoc";
    return "default";
}
