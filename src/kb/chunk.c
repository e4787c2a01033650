/* The chunker: splits text into atoms no larger than the size (recursively, on the profile's
 * separators, with Markdown tables split by rows), then packs atoms into chunks with overlap,
 * keeping headings with their bodies. The LangChain mode is in chunk_langchain.c. */
#include <stdlib.h>
#include <string.h>

#include "kb/chunk_internal.h"

#define A_SECTION 1u  /* begins with a heading line */
#define A_HEADONLY 2u /* holds nothing but that heading line */
#define A_TABLE 4u    /* rows of a table, with its header */

struct atom {
    size_t s, e;       /* source span */
    int64_t cost;      /* of text (or of the span when text is NULL) */
    const char *text;  /* own text (a table part with its header), or NULL */
    size_t tlen;
    unsigned flags;
    long section;      /* index of the heading the atom starts under, -1 before any */
};

struct ctx {
    const struct sl_chunk_profile *p;
    const char *t;
    size_t len;
    struct sl_arena *a;
    struct sl_cost_index x;
    int64_t limit, overlap, grain;
    struct sl_heading *h;
    long nh;
    struct atom *v;
    size_t n, cap;
    int64_t pending_head; /* cost of the trailing heading-only atoms */
    long hint;            /* section_at's last answer */
    int oom;
};

static int is_blank_at(const char *t, size_t i, size_t e, size_t *k)
{
    unsigned char c = (unsigned char)t[i];
    if (c == ' ' || (c >= '\t' && c <= '\r')) {
        *k = 1;
        return 1;
    }
    if (c == 0xE3 && e - i >= 3 && t[i + 1] == '\x80' && t[i + 2] == '\x80') { /* U+3000 */
        *k = 3;
        return 1;
    }
    return 0;
}

static void trim(const char *t, size_t *s, size_t *e)
{
    size_t k;
    while (*s < *e && is_blank_at(t, *s, *e, &k))
        *s += k;
    while (*e > *s) {
        if (t[*e - 1] == ' ' || (t[*e - 1] >= '\t' && t[*e - 1] <= '\r'))
            (*e)--;
        else if (*e - *s >= 3 && t[*e - 1] == '\x80' && t[*e - 2] == '\x80' &&
                 t[*e - 3] == '\xE3')
            *e -= 3;
        else
            break;
    }
}

/* Index of the last heading whose line starts at or before off, or -1. The offsets asked
 * mostly grow, so the last answer and the one after it are tried before a binary search. */
static long section_at(struct ctx *c, size_t off)
{
    for (long i = c->hint; i <= c->hint + 1 && i < c->nh; i++)
        if ((i < 0 || c->h[i].line <= off) && (i + 1 >= c->nh || c->h[i + 1].line > off))
            return c->hint = i;
    long lo = 0, hi = c->nh - 1, best = -1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        if (c->h[mid].line <= off) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return c->hint = best;
}

static long heading_at(struct ctx *c, size_t off)
{
    long i = section_at(c, off);
    return i >= 0 && c->h[i].line == off ? i : -1;
}

static void push_atom(struct ctx *c, size_t s, size_t e, int64_t cost, const char *text,
                      size_t tlen, unsigned flags)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        struct atom *nv = realloc(c->v, cap * sizeof(*nv));
        if (!nv) {
            c->oom = 1;
            return;
        }
        c->v = nv;
        c->cap = cap;
    }
    size_t b = s, be = e;
    trim(c->t, &b, &be);
    long sec = section_at(c, b < be ? b : s), hi = b < be && sec >= 0 && c->h[sec].line == b ? sec : -1;
    if (hi >= 0) {
        flags |= A_SECTION;
        if (be <= c->h[hi].eol)
            flags |= A_HEADONLY;
    }
    c->v[c->n++] = (struct atom){s, e, cost, text, tlen, flags, sec};
    c->pending_head = (flags & A_HEADONLY) ? c->pending_head + cost : 0;
}

/* Cuts [s, e) into pieces of at most grain (at least one code point each). */
static void hard_split(struct ctx *c, size_t s, size_t e, int64_t limit)
{
    int64_t grain = c->grain < limit ? c->grain : limit;
    size_t from = s;
    int64_t sum = 0;
    for (size_t i = s; i < e;) {
        size_t k = sl_utf8_len((unsigned char)c->t[i]);
        if (k > e - i)
            k = e - i;
        int64_t w = 0; /* the index's weights, byte by byte */
        for (size_t b = i; b < i + k; b++)
            w += c->x.w[(unsigned char)c->t[b]];
        if (sum + w > grain && i > from) {
            push_atom(c, from, i, sum, NULL, 0, 0);
            from = i;
            sum = 0;
        }
        sum += w;
        i += k;
    }
    if (e > from)
        push_atom(c, from, e, sum, NULL, 0, 0);
}

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
}

/* Does the match of sep at p count? Heading separators ("\n#", "\n第", "\n条款") only at a
 * heading line the profile recognises, "\n##" at headings of level 2 or less. */
static int valid_match(struct ctx *c, const char *sep, size_t wsl, size_t p)
{
    const char *rest = sep + wsl;
    if (rest[0] != '#' && strncmp(rest, "第", 3) != 0 && strncmp(rest, "条款", 6) != 0)
        return 1;
    long hi = heading_at(c, p + wsl);
    if (hi < 0)
        return 0;
    if (rest[0] == '#') {
        int hashes = 0;
        while (rest[hashes] == '#')
            hashes++;
        return c->h[hi].kind == SL_HEADINGS_MARKDOWN && c->h[hi].level <= hashes;
    }
    return c->h[hi].kind == SL_HEADINGS_CLAUSE;
}

/* Closing quotes and brackets stay with the sentence their punctuation ends. */
static size_t closers(const char *t, size_t i, size_t e)
{
    static const char *const close[] = {"”", "’", "」", "』", "）", "】", "》", ")", "\"", "'"};
    static const size_t closelen[] = {3, 3, 3, 3, 3, 3, 3, 1, 1, 1};
    for (int again = 1; again;) {
        unsigned char b = i < e ? (unsigned char)t[i] : 0; /* the closers' first bytes */
        if (b != 0xE2 && b != 0xE3 && b != 0xEF && b != ')' && b != '"' && b != '\'')
            break;
        again = 0;
        for (size_t k = 0; k < sizeof(close) / sizeof(close[0]); k++) {
            size_t n = closelen[k];
            if (e - i >= n && memcmp(t + i, close[k], n) == 0) {
                i += n;
                again = 1;
                break;
            }
        }
    }
    return i;
}

static void split_cost(struct ctx *c, size_t s, size_t e, int from, int64_t limit, int64_t cost);

/* split_cost for contiguous parts: each cut's prefix cost is looked up once. */
struct parts {
    size_t last;
    int64_t at; /* prefix cost at last */
};

static void part(struct ctx *c, struct parts *q, size_t cut, int from, int64_t limit)
{
    int64_t at = sl_cost_prefix(&c->x, cut);
    split_cost(c, q->last, cut, from, limit, at - q->at);
    q->last = cut;
    q->at = at;
}

/* Splits [s, e) at the valid matches of separator i; 0 when it has none inside. */
static int split_on(struct ctx *c, size_t s, size_t e, int i, int64_t limit)
{
    const char *sep = c->p->separators[i];
    size_t sl = strlen(sep), wsl = 0, last = s;
    struct parts q = {s, -1};
    while (wsl < sl && is_ws(sep[wsl]))
        wsl++;
    int cuts = 0;
    const char *rest = sep + wsl;
    if (wsl && (rest[0] == '#' || strncmp(rest, "第", 3) == 0 || strncmp(rest, "条款", 6) == 0)) {
        /* A heading separator matches only at heading lines: visit those, not the text. */
        long k = section_at(c, s);
        for (k = k < 0 ? 0 : k; k < c->nh && c->h[k].line < e; k++) {
            size_t line = c->h[k].line, at = line - wsl;
            if (line < s + wsl || at + sl > e || memcmp(c->t + at, sep, sl) != 0 ||
                !valid_match(c, sep, wsl, at) || line <= last)
                continue;
            if (q.at < 0)
                q.at = sl_cost_prefix(&c->x, s);
            part(c, &q, line, i + 1, limit);
            last = line;
            cuts++;
        }
        if (cuts)
            part(c, &q, e, i + 1, limit);
        return cuts;
    }
    for (size_t p = s; p < e;) {
        const char *hit = sl_chunk_find(c->t + p, e - p, sep, sl);
        if (!hit)
            break;
        size_t at = (size_t)(hit - c->t), cut;
        p = at + 1;
        if (!valid_match(c, sep, wsl, at))
            continue;
        /* A separator line ("\n---\n") closes the part before it; "\n第" opens the next. */
        cut = sep[sl - 1] == '\n' ? at + sl : wsl ? at + wsl : closers(c->t, at + sl, e);
        if (cut <= last || cut >= e)
            continue;
        if (q.at < 0)
            q.at = sl_cost_prefix(&c->x, s);
        part(c, &q, cut, i + 1, limit);
        last = cut;
        cuts++;
    }
    if (cuts)
        part(c, &q, e, i + 1, limit);
    return cuts;
}

/* Splits [s, e), whose cost is cost, into atoms of at most limit. */
static void split_cost(struct ctx *c, size_t s, size_t e, int from, int64_t limit, int64_t cost)
{
    if (c->oom || s >= e)
        return;
    if (cost <= limit) {
        /* A heading waits for this piece: make the piece small enough to join it. */
        int64_t room = c->limit - c->pending_head;
        if (c->pending_head > 0 && cost > room && room >= c->limit / 4 && room < limit) {
            split_cost(c, s, e, from, room, cost);
            return;
        }
        push_atom(c, s, e, cost, NULL, 0, 0);
        return;
    }
    for (int i = from; i < c->p->nseparators; i++) {
        if (c->p->separators[i][0] == '\0')
            break;
        if (split_on(c, s, e, i, limit))
            return;
    }
    hard_split(c, s, e, limit);
}

static void split(struct ctx *c, size_t s, size_t e, int from, int64_t limit)
{
    if (!c->oom && s < e)
        split_cost(c, s, e, from, limit, sl_cost_span(&c->x, s, e));
}

/* ---- Markdown tables ---- */

static size_t line_end(const char *t, size_t s, size_t len)
{
    const char *nl = memchr(t + s, '\n', len - s);
    return nl ? (size_t)(nl - t) + 1 : len;
}

static int table_line(const char *t, size_t s, size_t e)
{
    while (s < e && (t[s] == ' ' || t[s] == '\t'))
        s++;
    return s < e && t[s] == '|';
}

static int delimiter_line(const char *t, size_t s, size_t e)
{
    int dash = 0;
    if (!table_line(t, s, e))
        return 0;
    for (size_t i = s; i < e; i++) {
        if (t[i] == '-')
            dash = 1;
        else if (!strchr("|: \t\r\n", t[i]))
            return 0;
    }
    return dash;
}

/* One part of a split table: the first part is its source bytes, later ones get the header. */
static void push_rows(struct ctx *c, size_t s, size_t hdr, size_t gs, size_t ge, int64_t cost,
                      int first)
{
    if (first) {
        push_atom(c, s, ge, cost, NULL, 0, A_TABLE);
        return;
    }
    size_t tl = (hdr - s) + (ge - gs);
    char *txt = sl_arena_alloc(c->a, tl + 1);
    if (!txt) {
        c->oom = 1;
        return;
    }
    memcpy(txt, c->t + s, hdr - s);
    memcpy(txt + (hdr - s), c->t + gs, ge - gs);
    push_atom(c, gs, ge, cost, txt, tl, A_TABLE);
}

/* Splits the table [s, e) by rows; every part after the first repeats the header rows. */
static void split_table(struct ctx *c, size_t s, size_t e)
{
    size_t l1 = line_end(c->t, s, e), hdr = line_end(c->t, l1, e);
    int64_t hcost = sl_cost_span(&c->x, s, hdr);
    if (sl_cost_span(&c->x, s, e) <= c->limit || hcost > c->limit / 2) {
        split(c, s, e, 0, c->limit);
        return;
    }
    size_t gs = s, ge = hdr; /* the part being filled: rows [gs or hdr, ge) */
    int64_t gcost = hcost;
    int first = 1, rows = 0;
    for (size_t r = hdr; r < e && !c->oom;) {
        size_t re = line_end(c->t, r, e);
        int64_t rc = sl_cost_span(&c->x, r, re);
        if (gcost + rc > c->limit && rows) {
            push_rows(c, s, hdr, gs, ge, gcost, first);
            first = rows = 0;
            gs = ge = r;
            gcost = hcost;
        }
        if (hcost + rc > c->limit) { /* a row too long for any part: split it alone */
            if (first)
                push_atom(c, s, hdr, hcost, NULL, 0, A_TABLE);
            first = 0;
            split(c, r, re, 0, c->limit);
            gs = ge = r = re;
            continue;
        }
        ge = re;
        gcost += rc;
        rows++;
        r = re;
    }
    if (rows)
        push_rows(c, s, hdr, gs, ge, gcost, first);
}

/* Atoms of the whole text: tables by rows, the rest recursively. */
static void make_atoms(struct ctx *c)
{
    size_t text_from = 0;
    for (size_t s = 0; s < c->len && !c->oom;) {
        /* Only lines that start with "|" can open a table: jump from one to the next. */
        if (c->t[s] != '|' || (s > 0 && c->t[s - 1] != '\n')) {
            const char *hit = sl_chunk_find(c->t + s, c->len - s, "\n|", 2);
            if (!hit)
                break;
            s = (size_t)(hit - c->t) + 1;
        }
        size_t l0 = line_end(c->t, s, c->len);
        if (l0 < c->len && delimiter_line(c->t, l0, line_end(c->t, l0, c->len))) {
            size_t e = line_end(c->t, l0, c->len);
            while (e < c->len && table_line(c->t, e, line_end(c->t, e, c->len)))
                e = line_end(c->t, e, c->len);
            split(c, text_from, s, 0, c->limit);
            split_table(c, s, e);
            text_from = s = e;
            continue;
        }
        s = l0;
    }
    split(c, text_from, c->len, 0, c->limit);
}

/* ---- packing ---- */

static void add_chunk(struct ctx *c, struct sl_chunk **v, size_t *n, size_t *cap, size_t i,
                      size_t j)
{
    const struct atom *at = c->v;
    size_t s = at[i].s, e = at[j - 1].e, tl = 0;
    const char *txt;
    int own = 0;
    for (size_t k = i; k < j; k++)
        own |= at[k].text != NULL;
    if (!own) {
        trim(c->t, &s, &e);
        if (s >= e)
            return;
        tl = e - s;
        txt = c->t + s; /* the source bytes themselves (chunk.h) */
    } else {
        for (size_t k = i; k < j; k++)
            tl += at[k].text ? at[k].tlen : at[k].e - at[k].s;
        char *buf = sl_arena_alloc(c->a, tl + 1);
        txt = buf;
        if (buf) {
            size_t o = 0;
            for (size_t k = i; k < j; k++) {
                size_t kl = at[k].text ? at[k].tlen : at[k].e - at[k].s;
                memcpy(buf + o, at[k].text ? at[k].text : c->t + at[k].s, kl);
                o += kl;
            }
            size_t ts = 0, te = tl;
            trim(buf, &ts, &te);
            memmove(buf, buf + ts, te - ts);
            tl = te - ts;
            buf[tl] = '\0';
            trim(c->t, &s, &e);
        }
        if (txt && tl == 0)
            return;
    }
    if (!txt) {
        c->oom = 1;
        return;
    }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        struct sl_chunk *nv = realloc(*v, nc * sizeof(*nv));
        if (!nv) {
            c->oom = 1;
            return;
        }
        *v = nv;
        *cap = nc;
    }
    long sec = section_at(c, s);
    if (sec < 0 && c->nh > 0 && c->h[0].line < e)
        sec = 0; /* a chunk that starts before the first heading is named by it */
    int64_t size = own ? sl_chunk_measure(c->p->unit, txt, tl) : sl_cost_span(&c->x, s, e);
    if (!own && c->p->unit == SL_CHUNK_TOKENS)
        size = (size + 9) / 10; /* as sl_estimate_text rounds */
    (*v)[(*n)++] = (struct sl_chunk){s, e, txt, tl, sec >= 0 ? c->h[sec].path : "", (int)size};
}

/* Greedy packing. A chunk closes when the next atom would not fit, or before a section that
 * would not fit whole; trailing headings move to the next chunk; overlap is carried only
 * within a section. */
static void pack(struct ctx *c, struct sl_chunk **v, size_t *n, size_t *cap)
{
    struct atom *at = c->v;
    int64_t *secsum = malloc((c->n ? c->n : 1) * sizeof(*secsum)), run = 0;
    if (!secsum) {
        c->oom = 1;
        return;
    }
    for (size_t k = c->n; k-- > 0;) {
        run += at[k].cost;
        secsum[k] = run;
        if (at[k].flags & A_SECTION)
            run = 0;
    }
    size_t i = 0;
    int64_t cur = 0;
    for (size_t k = 0; k < c->n && !c->oom; k++) {
        const struct atom *a = &at[k];
        int brk = 0, carry = 0;
        if (k > i && cur + a->cost > c->limit)
            brk = carry = 1;
        else if (k > i && (a->flags & A_SECTION) && !(at[k - 1].flags & A_HEADONLY) &&
                 cur + secsum[k] > c->limit)
            brk = 1;
        if (brk) {
            size_t j = k;
            int64_t keep = 0;
            while (j > i && (at[j - 1].flags & A_HEADONLY) &&
                   keep + at[j - 1].cost + a->cost <= c->limit) {
                j--;
                keep += at[j].cost;
            }
            if (j == i) {
                j = k;
                keep = 0;
            }
            add_chunk(c, v, n, cap, i, j);
            size_t ni = j;
            if (j == k && carry && c->overlap > 0) {
                while (ni > i + 1 && at[ni - 1].section == a->section &&
                       !(a->flags & A_SECTION) && keep + at[ni - 1].cost <= c->overlap &&
                       keep + at[ni - 1].cost + a->cost <= c->limit) {
                    ni--;
                    keep += at[ni].cost;
                }
            }
            i = ni;
            cur = keep;
        }
        cur += a->cost;
    }
    if (i < c->n && !c->oom)
        add_chunk(c, v, n, cap, i, c->n);
    free(secsum);
}

static int finish(struct sl_arena *a, struct sl_chunk *v, size_t n, struct sl_chunk **out,
                  size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return 0;
    *out = sl_arena_alloc(a, n * sizeof(**out));
    if (!*out)
        return -1;
    memcpy(*out, v, n * sizeof(**out));
    *nout = n;
    return 0;
}

static int chunk_langchain(const struct sl_chunk_profile *p, const char *text, size_t len,
                           struct sl_arena *a, struct sl_chunk **out, size_t *n)
{
    struct sl_kb_spans sp = {0};
    int result = sl_chunk_langchain(p, text, len, &sp);
    *out = NULL;
    *n = 0;
    if (!result && sp.n && !(*out = sl_arena_alloc(a, sp.n * sizeof(**out))))
        result = -1;
    for (size_t i = 0; !result && i < sp.n; i++) {
        size_t s = sp.v[i].s, e = sp.v[i].e;
        int64_t size = sp.v[i].w;
        if (p->unit == SL_CHUNK_TOKENS)
            size = (size + 9) / 10;
        (*out)[i] = (struct sl_chunk){s, e, text + s, e - s, "", (int)size};
    }
    if (!result)
        *n = sp.n;
    sl_kb_spans_release(&sp);
    return result;
}

int sl_chunk_text(const struct sl_chunk_profile *p, const char *text, size_t len,
                  struct sl_arena *a, struct sl_chunk **out, size_t *n)
{
    char err[160];
    *out = NULL;
    *n = 0;
    if (!p || sl_chunk_profile_check(p, err, sizeof(err)))
        return -1;
    if (p->langchain)
        return chunk_langchain(p, text, len, a, out, n);
    struct ctx c = {.p = p, .t = text, .len = len, .a = a, .hint = -1};
    int64_t scale = p->unit == SL_CHUNK_TOKENS ? 10 : 1;
    c.limit = (int64_t)p->size * scale;
    c.overlap = (int64_t)p->overlap * scale;
    c.grain = c.overlap > 0 ? (c.overlap < c.limit / 4 ? c.overlap : c.limit / 4) : c.limit;
    if (c.grain < 1)
        c.grain = 1;
    if (sl_cost_index_init(&c.x, p->unit, text, len))
        return -1;
    c.nh = sl_chunk_headings(text, len, p->headings, a, &c.h);
    if (c.nh < 0) {
        sl_cost_index_release(&c.x);
        return -1;
    }
    struct sl_chunk *v = NULL;
    size_t nv = 0, cap = 0;
    make_atoms(&c);
    if (!c.oom)
        pack(&c, &v, &nv, &cap);
    int result = c.oom ? -1 : finish(a, v, nv, out, n);
    free(v);
    free(c.v);
    free(c.h);
    sl_cost_index_release(&c.x);
    return result;
}
