/* The in-memory BM25 index: terms in an open-addressing hash table, postings in one
 * contiguous array per field (chunk row, term frequency), grouped by term and in chunk
 * order; a search adds each posting's weight into a per-chunk accumulator and keeps the
 * best k with a small heap. */
#include "kb/bm25.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct vec { /* a growable array of elem-byte items */
    void *p;
    size_t n, cap, elem;
};

static int vec_push(struct vec *v, const void *item)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        void *p = realloc(v->p, cap * v->elem);
        if (!p)
            return -1;
        v->p = p;
        v->cap = cap;
    }
    memcpy((char *)v->p + v->n++ * v->elem, item, v->elem);
    return 0;
}

struct terms { /* the vocabulary: hash slots and the term strings */
    uint32_t *slot; /* term index + 1; 0 = empty */
    size_t cap;     /* a power of two */
    struct vec off, len, df; /* uint64_t, uint32_t, uint32_t per term */
    struct vec pool;         /* the term bytes */
};

struct sl_bm25_builder {
    struct terms t;
    struct vec ids, lens;           /* int64_t, uint32_t per chunk */
    struct vec pair_term, pair_tf;  /* uint32_t: each chunk's distinct terms and counts */
    struct vec pair_start;          /* uint64_t per chunk */
    uint32_t *scratch;
    size_t scratch_cap;
    uint64_t tokens;
};

struct sl_bm25 {
    struct terms t;
    size_t ndocs;
    int64_t *ids;
    double *norm;          /* k1 * (1 - b + b * len / avgdl) per chunk */
    uint64_t *post_start;  /* nterms + 1 */
    uint32_t *post_doc;
    uint16_t *post_tf;     /* saturates at 65535 */
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static size_t nterms(const struct terms *t)
{
    return t->len.n;
}

/* The slot of term s (holding it, or the empty one where it would go). */
static size_t find(const struct terms *t, const char *s, size_t n)
{
    size_t i = (size_t)hash(s, n) & (t->cap - 1);
    for (;; i = (i + 1) & (t->cap - 1)) {
        uint32_t e = t->slot[i];
        if (!e)
            return i;
        e--;
        if (((uint32_t *)t->len.p)[e] == n &&
            memcmp((char *)t->pool.p + ((uint64_t *)t->off.p)[e], s, n) == 0)
            return i;
    }
}

static int grow(struct terms *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1 << 14;
    uint32_t *old = t->slot;
    size_t old_cap = t->cap;
    t->slot = calloc(cap, sizeof(uint32_t));
    if (!t->slot) {
        t->slot = old;
        return -1;
    }
    t->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i]) {
            uint32_t e = old[i] - 1;
            size_t at = find(t, (char *)t->pool.p + ((uint64_t *)t->off.p)[e], ((uint32_t *)t->len.p)[e]);
            t->slot[at] = old[i];
        }
    free(old);
    return 0;
}

/* The index of term s, added when new; UINT32_MAX when out of memory. */
static uint32_t intern(struct terms *t, const char *s, size_t n)
{
    if ((nterms(t) + 1) * 2 > t->cap && grow(t))
        return UINT32_MAX;
    size_t at = find(t, s, n);
    if (t->slot[at])
        return t->slot[at] - 1;
    uint64_t off = t->pool.n;
    uint32_t len = (uint32_t)n, zero = 0;
    for (size_t i = 0; i < n; i++)
        if (vec_push(&t->pool, s + i))
            return UINT32_MAX;
    if (vec_push(&t->off, &off) || vec_push(&t->len, &len) || vec_push(&t->df, &zero))
        return UINT32_MAX;
    t->slot[at] = (uint32_t)nterms(t);
    return (uint32_t)nterms(t) - 1;
}

static void terms_free(struct terms *t)
{
    free(t->slot);
    free(t->off.p);
    free(t->len.p);
    free(t->df.p);
    free(t->pool.p);
}

struct sl_bm25_builder *sl_bm25_builder_new(void)
{
    struct sl_bm25_builder *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->t.off.elem = b->pair_start.elem = sizeof(uint64_t);
    b->t.len.elem = b->t.df.elem = b->lens.elem = b->pair_term.elem = b->pair_tf.elem = sizeof(uint32_t);
    b->t.pool.elem = 1;
    b->ids.elem = sizeof(int64_t);
    return b;
}

void sl_bm25_builder_free(struct sl_bm25_builder *b)
{
    if (!b)
        return;
    terms_free(&b->t);
    free(b->ids.p);
    free(b->lens.p);
    free(b->pair_term.p);
    free(b->pair_tf.p);
    free(b->pair_start.p);
    free(b->scratch);
    free(b);
}

static int by_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int sl_bm25_add(struct sl_bm25_builder *b, int64_t id, const char *terms, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *sp = memchr(terms + i, ' ', len - i);
        size_t tl = sp ? (size_t)(sp - (terms + i)) : len - i;
        if (tl) {
            if (n == b->scratch_cap) {
                size_t cap = b->scratch_cap ? b->scratch_cap * 2 : 512;
                uint32_t *s = realloc(b->scratch, cap * sizeof(uint32_t));
                if (!s)
                    return -1;
                b->scratch = s;
                b->scratch_cap = cap;
            }
            uint32_t t = intern(&b->t, terms + i, tl);
            if (t == UINT32_MAX)
                return -1;
            b->scratch[n++] = t;
        }
        i += tl + 1;
    }
    uint32_t dl = (uint32_t)n;
    uint64_t start = b->pair_term.n;
    if (vec_push(&b->ids, &id) || vec_push(&b->lens, &dl) || vec_push(&b->pair_start, &start))
        return -1;
    b->tokens += n;
    qsort(b->scratch, n, sizeof(uint32_t), by_u32);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && b->scratch[j] == b->scratch[i])
            j++;
        uint32_t tf = (uint32_t)(j - i);
        if (vec_push(&b->pair_term, &b->scratch[i]) || vec_push(&b->pair_tf, &tf))
            return -1;
        ((uint32_t *)b->t.df.p)[b->scratch[i]]++;
        i = j;
    }
    return 0;
}

struct sl_bm25 *sl_bm25_finish(struct sl_bm25_builder *b)
{
    struct sl_bm25 *ix = b ? calloc(1, sizeof(*ix)) : NULL;
    size_t nd = b ? b->ids.n : 0, nt = b ? nterms(&b->t) : 0, np = b ? b->pair_term.n : 0;
    if (ix) {
        ix->ndocs = nd;
        ix->ids = malloc((nd ? nd : 1) * sizeof(int64_t));
        ix->norm = malloc((nd ? nd : 1) * sizeof(double));
        ix->post_start = calloc(nt + 1, sizeof(uint64_t));
        ix->post_doc = malloc((np ? np : 1) * sizeof(uint32_t));
        ix->post_tf = malloc((np ? np : 1) * sizeof(uint16_t));
    }
    if (!ix || !ix->ids || !ix->norm || !ix->post_start || !ix->post_doc || !ix->post_tf) {
        sl_bm25_free(ix);
        sl_bm25_builder_free(b);
        return NULL;
    }
    /* FTS5: avgdl = tokens / rows (at least 1) */
    double avgdl = nd ? (double)b->tokens / (double)nd : 1;
    if (avgdl < 1)
        avgdl = 1;
    const uint32_t *df = b->t.df.p, *lens = b->lens.p, *pt = b->pair_term.p, *ptf = b->pair_tf.p;
    const uint64_t *ps = b->pair_start.p;
    for (size_t t = 0; t < nt; t++)
        ix->post_start[t + 1] = ix->post_start[t] + df[t];
    uint64_t *fill = malloc((nt ? nt : 1) * sizeof(uint64_t));
    if (!fill) {
        sl_bm25_free(ix);
        sl_bm25_builder_free(b);
        return NULL;
    }
    memcpy(fill, ix->post_start, nt * sizeof(uint64_t));
    for (size_t d = 0; d < nd; d++) {
        ix->ids[d] = ((int64_t *)b->ids.p)[d];
        ix->norm[d] = SL_BM25_K1 * (1 - SL_BM25_B + SL_BM25_B * (double)lens[d] / avgdl);
        uint64_t end = d + 1 < nd ? ps[d + 1] : np;
        for (uint64_t p = ps[d]; p < end; p++) {
            uint64_t at = fill[pt[p]]++;
            ix->post_doc[at] = (uint32_t)d;
            ix->post_tf[at] = (uint16_t)(ptf[p] > 65535 ? 65535 : ptf[p]);
        }
    }
    free(fill);
    ix->t = b->t; /* the vocabulary moves over */
    memset(&b->t, 0, sizeof(b->t));
    sl_bm25_builder_free(b);
    return ix;
}

void sl_bm25_free(struct sl_bm25 *ix)
{
    if (!ix)
        return;
    terms_free(&ix->t);
    free(ix->ids);
    free(ix->norm);
    free(ix->post_start);
    free(ix->post_doc);
    free(ix->post_tf);
    free(ix);
}

void sl_bm25_stats(const struct sl_bm25 *ix, size_t *docs, size_t *terms, size_t *postings,
                   size_t *bytes)
{
    size_t nt = nterms(&ix->t), np = ix->post_start[nt];
    *docs = ix->ndocs;
    *terms = nt;
    *postings = np;
    *bytes = ix->ndocs * (sizeof(int64_t) + sizeof(double)) + (nt + 1) * sizeof(uint64_t) +
             np * (sizeof(uint32_t) + sizeof(uint16_t)) + ix->t.cap * sizeof(uint32_t) +
             nt * (sizeof(uint64_t) + 2 * sizeof(uint32_t)) + ix->t.pool.n;
}

/* Adds term t's weight into acc for every chunk holding it; new chunks go to touched. */
static void score_term(const struct sl_bm25 *ix, size_t t, double *acc, uint32_t *touched,
                       size_t *ntouched)
{
    uint64_t a = ix->post_start[t], e = ix->post_start[t + 1];
    double df = (double)(e - a), idf = log(((double)ix->ndocs - df + 0.5) / (df + 0.5));
    if (idf <= 0)
        idf = 1e-6;
    for (uint64_t p = a; p < e; p++) {
        uint32_t d = ix->post_doc[p];
        double tf = ix->post_tf[p];
        if (acc[d] == 0)
            touched[(*ntouched)++] = d;
        acc[d] += idf * tf * (SL_BM25_K1 + 1) / (tf + ix->norm[d]);
    }
}

/* a ranks below b: lower score, or the same score and a larger id */
static int worse(const struct sl_bm25 *ix, const double *acc, uint32_t a, uint32_t b)
{
    return acc[a] < acc[b] || (acc[a] == acc[b] && ix->ids[a] > ix->ids[b]);
}

static void sift_down(const struct sl_bm25 *ix, const double *acc, uint32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(ix, acc, h[l], h[m]))
            m = l;
        if (r < n && worse(ix, acc, h[r], h[m]))
            m = r;
        if (m == i)
            return;
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

size_t sl_bm25_search(const struct sl_bm25 *ix, const char *const *terms, const size_t *lens,
                      int n, size_t k, int64_t *ids, double *scores)
{
    if (!ix || !ix->ndocs || !k || n <= 0)
        return 0;
    size_t nt = nterms(&ix->t), floor_terms[64], nfloor = 0, ntouched = 0;
    double *acc = calloc(ix->ndocs, sizeof(double));
    uint32_t *touched = malloc(ix->ndocs * sizeof(uint32_t)), *heap = malloc(k * sizeof(uint32_t));
    if (!acc || !touched || !heap) {
        free(acc);
        free(touched);
        free(heap);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = nt ? ix->t.slot[find(&ix->t, terms[i], lens[i])] : 0;
        if (!e)
            continue; /* in no chunk */
        size_t t = e - 1, df = ix->post_start[t + 1] - ix->post_start[t];
        if (2 * df + 1 > ix->ndocs && nfloor < 64) /* ln(...) <= 0: FTS5's 1e-6 floor */
            floor_terms[nfloor++] = t;
        else
            score_term(ix, t, acc, touched, &ntouched);
    }
    if (ntouched < k) /* too few matches without them: exact OR semantics */
        for (size_t i = 0; i < nfloor; i++)
            score_term(ix, floor_terms[i], acc, touched, &ntouched);
    /* top k: a heap whose root is the worst kept */
    size_t m = 0;
    for (size_t i = 0; i < ntouched; i++) {
        uint32_t d = touched[i];
        if (m < k) {
            heap[m++] = d;
            if (m == k)
                for (size_t j = k / 2 + 1; j-- > 0;)
                    sift_down(ix, acc, heap, m, j);
        } else if (worse(ix, acc, heap[0], d)) {
            heap[0] = d;
            sift_down(ix, acc, heap, m, 0);
        }
    }
    if (m < k)
        for (size_t j = m / 2 + 1; j-- > 0;)
            sift_down(ix, acc, heap, m, j);
    for (size_t out = m; out-- > 0;) { /* pop the worst to the back */
        ids[out] = ix->ids[heap[0]];
        scores[out] = -acc[heap[0]];
        heap[0] = heap[out];
        sift_down(ix, acc, heap, out, 0);
    }
    free(acc);
    free(touched);
    free(heap);
    return m;
}
