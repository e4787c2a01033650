/* LangChain-compatible splitting: RecursiveCharacterTextSplitter from @langchain/textsplitters
 * with keepSeparator (its default), trim, and the profile's length function, reproduced step for
 * step over byte spans so that the chunks are the same strings LangChain returns. */
#include <stdlib.h>
#include <string.h>

#include "kb/chunk_internal.h"

struct lc {
    const struct sl_chunk_profile *p;
    const char *text;
    int64_t size, overlap;
    struct sl_cost_index x; /* weights only (no blocks): pieces are weighed directly */
};

int sl_kb_spans_push(struct sl_kb_spans *v, size_t s, size_t e, int64_t w)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        struct sl_kb_span *nv = realloc(v->v, cap * sizeof(*nv));
        if (!nv)
            return -1;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n].s = s;
    v->v[v->n].e = e;
    v->v[v->n].w = w;
    v->n++;
    return 0;
}

void sl_kb_spans_release(struct sl_kb_spans *v)
{
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

/* Bytes of the JavaScript whitespace (String.prototype.trim) at p, or 0. */
static size_t js_space(const unsigned char *p, const unsigned char *end)
{
    if (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        return 1;
    if (end - p >= 2 && p[0] == 0xC2 && p[1] == 0xA0)
        return 2;
    if (end - p < 3)
        return 0;
    unsigned cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    if ((p[0] & 0xF0) != 0xE0)
        return 0;
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
        cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF)
        return 3;
    return 0;
}

/* Trims JavaScript whitespace off both ends of [*s, *e). */
static void js_trim(const char *text, size_t *s, size_t *e)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t n;
    while (*s < *e && (n = js_space(t + *s, t + *e)) > 0)
        *s += n;
    while (*s < *e) {
        size_t k = *e - 1, back = 0;
        while (k > *s && (t[k] & 0xC0) == 0x80 && back < 3) {
            k--;
            back++;
        }
        if (js_space(t + k, t + *e) != *e - k)
            break;
        *e = k;
    }
}

/* Pushes the chunk sp[head, tail) trimmed, with its cost: the pieces' minus the trimmed ends'. */
static int emit(const struct lc *c, const struct sl_kb_span *sp, size_t head, size_t tail,
                int64_t raw, struct sl_kb_spans *out)
{
    size_t s = sp[head].s, e = sp[tail - 1].e;
    js_trim(c->text, &s, &e);
    if (e <= s)
        return 0;
    raw -= sl_cost_weigh_span(&c->x, sp[head].s, s) + sl_cost_weigh_span(&c->x, e, sp[tail - 1].e);
    return sl_kb_spans_push(out, s, e, raw);
}

/* mergeSplits(splits, "") followed by joinDocs' trim. */
static int merge(const struct lc *c, const struct sl_kb_span *sp, const int64_t *lens, size_t n,
                 struct sl_kb_spans *out)
{
    size_t head = 0, tail = 0; /* currentDoc = sp[head, tail) */
    int64_t total = 0, raw = 0; /* its length, and its cost in weights */
    for (size_t i = 0; i < n; i++) {
        int64_t len = lens[i];
        if (total + len > c->size && tail > head) {
            if (emit(c, sp, head, tail, raw, out))
                return -1;
            while (head < tail && (total > c->overlap || (total + len > c->size && total > 0))) {
                total -= lens[head];
                raw -= sp[head].w;
                head++;
            }
        }
        tail = i + 1;
        total += len;
        raw += sp[i].w;
    }
    if (tail > head && emit(c, sp, head, tail, raw, out))
        return -1;
    return 0;
}

/* text.split(/(?=sep)/) without the empty strings: a cut before every occurrence of sep
 * after the first byte; sep "" cuts between code points. */
static int split_on(const struct lc *c, size_t s, size_t e, const char *sep,
                    struct sl_kb_spans *pieces)
{
    size_t sl = strlen(sep), from = s;
    if (sl == 0) {
        for (size_t i = s; i < e;) {
            size_t k = sl_utf8_len((unsigned char)c->text[i]);
            if (k > e - i)
                k = e - i;
            if (sl_kb_spans_push(pieces, i, i + k, sl_cost_weigh_span(&c->x, i, i + k)))
                return -1;
            i += k;
        }
        return 0;
    }
    for (size_t i = s + 1; i + sl <= e; i++) {
        const char *hit = sl_chunk_find(c->text + i, e - i, sep, sl);
        if (!hit)
            break;
        i = (size_t)(hit - c->text);
        if (sl_kb_spans_push(pieces, from, i, sl_cost_weigh_span(&c->x, from, i)))
            return -1;
        from = i;
    }
    return sl_kb_spans_push(pieces, from, e, sl_cost_weigh_span(&c->x, from, e));
}

/* _splitText(text[s, e), separators[from..]). */
static int split_text(const struct lc *c, size_t s, size_t e, int from, struct sl_kb_spans *out)
{
    const struct sl_chunk_profile *p = c->p;
    const char *sep = from < p->nseparators ? p->separators[p->nseparators - 1] : "";
    int next = -1; /* -1: no newSeparators */
    for (int i = from; i < p->nseparators; i++) {
        const char *cand = p->separators[i];
        if (cand[0] == '\0') {
            sep = cand;
            break;
        }
        if (sl_chunk_find(c->text + s, e - s, cand, strlen(cand))) {
            sep = cand;
            next = i + 1;
            break;
        }
    }
    struct sl_kb_spans pieces = {0};
    int64_t *lens = NULL;
    int result = split_on(c, s, e, sep, &pieces);
    if (result)
        goto out;
    lens = malloc((pieces.n ? pieces.n : 1) * sizeof(*lens));
    if (!lens) {
        result = -1;
        goto out;
    }
    size_t good = 0; /* pieces[good_from, i) are the pending good splits */
    size_t good_from = 0;
    for (size_t i = 0; i < pieces.n && !result; i++) {
        struct sl_kb_span *sp = &pieces.v[i];
        int64_t w = sp->w; /* weighed by split_on while the bytes were in cache */
        lens[i] = c->p->unit == SL_CHUNK_CHARS ? w : (w + 9) / 10;
        if (lens[i] < c->size) {
            if (good == 0)
                good_from = i;
            good++;
            continue;
        }
        if (good) {
            result = merge(c, pieces.v + good_from, lens + good_from, good, out);
            good = 0;
        }
        if (result)
            break;
        if (next < 0)
            result = sl_kb_spans_push(out, sp->s, sp->e, w);
        else
            result = split_text(c, sp->s, sp->e, next, out);
    }
    if (!result && good)
        result = merge(c, pieces.v + good_from, lens + good_from, good, out);
out:
    free(lens);
    sl_kb_spans_release(&pieces);
    return result;
}

int sl_chunk_langchain(const struct sl_chunk_profile *p, const char *text, size_t len,
                       struct sl_kb_spans *out)
{
    struct lc c = {p, text, p->size, p->overlap, {0}};
    sl_cost_bytes_init(&c.x, p->unit, text, len);
    if (len == 0)
        return 0;
    return split_text(&c, 0, len, 0, out);
}
