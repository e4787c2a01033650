/* Shared between the chunker's files: spans, UTF-8 steps, measuring, heading lines. */
#ifndef SL_KB_CHUNK_INTERNAL_H
#define SL_KB_CHUNK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/arena.h"
#include "kb/chunk.h"

/* A growable array of byte spans (malloc'd; released by the caller). */
struct sl_kb_span {
    size_t s, e;
    int64_t w; /* cost of [s, e) where the user keeps it (sl_cost_index weights) */
};
struct sl_kb_spans {
    struct sl_kb_span *v;
    size_t n, cap;
};
int sl_kb_spans_push(struct sl_kb_spans *v, size_t s, size_t e, int64_t w);
void sl_kb_spans_release(struct sl_kb_spans *v);

/* Length in bytes of the UTF-8 sequence starting with byte c (1 for stray bytes). */
static inline size_t sl_utf8_len(unsigned char c)
{
    return c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Additive cost: code points, or tenths of a token (sl_estimate_text's walk, so that
 * ceil(sum / 10) is exactly the estimate of the concatenation). */
int64_t sl_chunk_cost(enum sl_chunk_unit unit, const char *s, size_t n);

/* Constant-time cost of any span of one text: per-byte weights (a code point's weight on
 * its lead byte, 0 on continuation bytes; the same sums as sl_chunk_cost on UTF-8) summed
 * in blocks of SL_COST_BLOCK bytes, so a span costs two short scans and a subtraction. */
#define SL_COST_BLOCK 16
struct sl_cost_index {
    const unsigned char *t;
    size_t len;
    const uint8_t *w;  /* weight of each byte value */
    int chars;         /* the unit is code points */
    uint32_t *blocks;  /* blocks[k]: weight of bytes [0, k * SL_COST_BLOCK) */
};
int sl_cost_index_init(struct sl_cost_index *x, enum sl_chunk_unit unit, const char *t,
                       size_t len);
/* The same without blocks: for sl_cost_weigh_span only. */
void sl_cost_bytes_init(struct sl_cost_index *x, enum sl_chunk_unit unit, const char *t,
                        size_t len);
void sl_cost_index_release(struct sl_cost_index *x);
#if defined(__SSE2__)
/* The weight of each byte of v (the per-byte weights below). */
static inline __m128i sl_cost_bytes16(int chars, __m128i v)
{
    const __m128i cont_max = _mm_set1_epi8((char)0xBF);
    if (chars) /* above 0xBF as signed: not a continuation byte */
        return _mm_and_si128(_mm_cmpgt_epi8(v, cont_max), _mm_set1_epi8(1));
    __m128i ascii = _mm_cmpgt_epi8(v, _mm_set1_epi8(-1)); /* ASCII 3 (blank 1), leads 4/6/10 */
    __m128i ws = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
                                           _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))),
                              _mm_cmpeq_epi8(v, _mm_set1_epi8('\t')));
    __m128i lead = _mm_andnot_si128(ascii, _mm_cmpgt_epi8(v, cont_max));
    __m128i k = _mm_sub_epi8(_mm_and_si128(ascii, _mm_set1_epi8(3)),
                             _mm_and_si128(ws, _mm_set1_epi8(2)));
    k = _mm_add_epi8(k, _mm_and_si128(lead, _mm_set1_epi8(4)));
    k = _mm_add_epi8(k, _mm_and_si128(_mm_and_si128(lead, _mm_cmpgt_epi8(v, _mm_set1_epi8((char)0xDF))),
                                      _mm_set1_epi8(2)));
    return _mm_add_epi8(k, _mm_and_si128(_mm_and_si128(lead, _mm_cmpgt_epi8(v, _mm_set1_epi8((char)0xEF))),
                                         _mm_set1_epi8(4)));
}

static inline int64_t sl_cost_sum16(__m128i acc)
{
    return _mm_cvtsi128_si64(acc) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc));
}

/* The weight of nblocks whole 16-byte blocks at t, summed by SAD. */
static inline int64_t sl_cost_blocks16(int chars, const unsigned char *t, size_t nblocks)
{
    const __m128i zero = _mm_setzero_si128();
    __m128i acc = zero;
    for (size_t b = 0; b < nblocks; b++)
        acc = _mm_add_epi64(acc, _mm_sad_epu8(sl_cost_bytes16(chars, _mm_loadu_si128(
                                                  (const __m128i *)(const void *)(t + 16 * b))),
                                              zero));
    return sl_cost_sum16(acc);
}

/* The weight of bytes [a, b) of v (0 <= a <= b <= 16). */
static inline int64_t sl_cost_masked(int chars, __m128i v, size_t a, size_t b)
{
    static const unsigned char ones[32] = {255, 255, 255, 255, 255, 255, 255, 255,
                                           255, 255, 255, 255, 255, 255, 255, 255};
    __m128i keep = _mm_andnot_si128(_mm_loadu_si128((const __m128i *)(const void *)(ones + 16 - a)),
                                    _mm_loadu_si128((const __m128i *)(const void *)(ones + 16 - b)));
    return sl_cost_sum16(_mm_sad_epu8(_mm_and_si128(sl_cost_bytes16(chars, v), keep),
                                      _mm_setzero_si128()));
}
#endif

static inline int64_t sl_cost_prefix(const struct sl_cost_index *x, size_t i)
{
    size_t b = i / SL_COST_BLOCK, from = b * SL_COST_BLOCK;
    int64_t sum = x->blocks[b];
    if (i == from)
        return sum;
#if defined(__SSE2__) && SL_COST_BLOCK == 16
    if (from + 16 <= x->len) /* the bytes [from, i) by masks and popcounts */
        return sum + sl_cost_masked(x->chars, _mm_loadu_si128((const __m128i *)(const void *)(x->t + from)),
                                    0, i - from);
#endif
    for (size_t k = from; k < i; k++)
        sum += x->w[x->t[k]];
    return sum;
}

/* The cost of [s, e) weighed directly, without the block index (x->blocks may be NULL):
 * whole 16-byte blocks summed by SIMD, the rest by one masked block inside the text. */
static inline int64_t sl_cost_weigh_span(const struct sl_cost_index *x, size_t s, size_t e)
{
    size_t i = s;
    int64_t sum = 0;
#if defined(__SSE2__)
    sum = sl_cost_blocks16(x->chars, x->t + s, (e - s) / 16);
    i = s + ((e - s) & ~(size_t)15);
    if (i < e && x->len >= 16) {
        size_t from = e >= 16 ? e - 16 : 0; /* a block inside the text that holds [i, e) */
        return sum + sl_cost_masked(x->chars,
                                    _mm_loadu_si128((const __m128i *)(const void *)(x->t + from)),
                                    i - from, e - from);
    }
#endif
    for (; i < e; i++)
        sum += x->w[x->t[i]];
    return sum;
}

static inline int64_t sl_cost_span(const struct sl_cost_index *x, size_t s, size_t e)
{
    return sl_cost_prefix(x, e) - sl_cost_prefix(x, s);
}

/* memmem, faster for separators: one byte by memchr, longer ones by comparing their first
 * and last bytes 16 positions at a time (the rest only where both match). */
static inline const char *sl_chunk_find(const char *h, size_t hn, const char *n, size_t nn)
{
    if (nn == 0 || nn > hn)
        return NULL;
    if (nn == 1)
        return memchr(h, n[0], hn);
    const char *p = h, *end = h + hn - nn + 1; /* candidates are [h, end) */
#if defined(__SSE2__)
    const __m128i a = _mm_set1_epi8(n[0]), b = _mm_set1_epi8(n[nn - 1]);
    for (; p + 16 <= end; p += 16) { /* p + nn - 1 + 16 <= h + hn */
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(p + nn - 1));
        unsigned m = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(x, a), _mm_cmpeq_epi8(y, b)));
        while (m) {
            const char *q = p + __builtin_ctz(m);
            if (nn == 2 || memcmp(q + 1, n + 1, nn - 2) == 0)
                return q;
            m &= m - 1;
        }
    }
#endif
    for (; p < end; p++) {
        p = memchr(p, n[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (p[nn - 1] == n[nn - 1] && memcmp(p + 1, n + 1, nn - 2) == 0)
            return p;
    }
    return NULL;
}

/* One heading line of the text (see SL_HEADINGS_*). */
struct sl_heading {
    size_t line, eol;   /* offset of the line's first non-blank byte, and of the heading's
                           end: the line's, or the marker's for 第N条 with its body after */
    int level;          /* 1.. (Markdown #count; 章 1, 节 2, 条 3) */
    unsigned kind;      /* SL_HEADINGS_MARKDOWN or SL_HEADINGS_CLAUSE */
    const char *path;   /* "A > B > C" (arena) */
};

/* Finds the heading lines of text that flags asks for, with their paths, in order.
 * *out is malloc'd (free it). Returns the count, or -1 when out of memory. */
long sl_chunk_headings(const char *text, size_t len, unsigned flags, struct sl_arena *a,
                       struct sl_heading **out);

/* Length of a clause marker (第 + number + 条/章/节) at p, or 0; *level gets its level. */
size_t sl_chunk_clause_marker(const char *p, const char *end, int *level);

/* LangChain's RecursiveCharacterTextSplitter (keepSeparator true), over spans of text. */
int sl_chunk_langchain(const struct sl_chunk_profile *p, const char *text, size_t len,
                       struct sl_kb_spans *out);

#endif
