/* libFuzzer: the chunker. Three leading bytes choose the profile, unit, size and overlap; the
 * rest is the text. Any bytes must be safe; on valid UTF-8 (what extraction yields) every
 * chunk must fit the size, start and end on code points, and the chunks must cover the
 * text's non-blank bytes in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "kb/chunk.h"

static const char *const names[] = {"contract", "techdoc", "default", "langchain"};

/* Replaces the bytes of invalid UTF-8 sequences with '?'. */
static void make_utf8(char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
        int ok = k > 0 && k <= n - i;
        for (size_t j = 1; ok && j < k; j++)
            ok = ((unsigned char)s[i + j] & 0xC0) == 0x80;
        if (ok && k == 3)
            ok = !(c == 0xE0 && (unsigned char)s[i + 1] < 0xA0) &&
                 !(c == 0xED && (unsigned char)s[i + 1] >= 0xA0);
        if (ok && k == 4)
            ok = !(c == 0xF0 && (unsigned char)s[i + 1] < 0x90) &&
                 !(c == 0xF4 && (unsigned char)s[i + 1] >= 0x90);
        if (!ok) {
            s[i++] = '?';
            continue;
        }
        i += k;
    }
}

static int blank(const char *t, size_t i, size_t n)
{
    unsigned char c = (unsigned char)t[i];
    return c == ' ' || (c >= '\t' && c <= '\r') ||
           (n - i >= 3 && memcmp(t + i, "\xE3\x80\x80", 3) == 0) ||
           (i >= 1 && n - i >= 2 && memcmp(t + i - 1, "\xE3\x80\x80", 3) == 0) ||
           (i >= 2 && memcmp(t + i - 2, "\xE3\x80\x80", 3) == 0);
}

static void check(const struct sl_chunk_profile *p, const char *t, size_t n,
                  const struct sl_chunk *c, size_t nc)
{
    char *covered = calloc(n + 1, 1);
    for (size_t i = 0; i < nc; i++) {
        if (c[i].size > p->size || c[i].size != (int)sl_chunk_measure(p->unit, c[i].text, c[i].len))
            abort();
        if (c[i].start >= c[i].end || c[i].end > n || c[i].len == 0)
            abort();
        if (c[i].text == t + c[i].start ? c[i].len != c[i].end - c[i].start
                                        : strlen(c[i].text) > c[i].len)
            abort();
        if (((unsigned char)t[c[i].start] & 0xC0) == 0x80 ||
            (c[i].end < n && ((unsigned char)t[c[i].end] & 0xC0) == 0x80))
            abort();
        if (i > 0 && c[i].start < c[i - 1].start)
            abort();
        memset(covered + c[i].start, 1, c[i].end - c[i].start);
    }
    for (size_t i = 0; i < n; i++)
        if (!covered[i] && t[i] != '\0' && !blank(t, i, n))
            abort();
    free(covered);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    struct sl_chunk_profile p = *sl_chunk_profile(names[data[0] & 3]);
    p.unit = (data[0] >> 2) & 1 ? SL_CHUNK_CHARS : SL_CHUNK_TOKENS;
    p.size = 1 + data[1];
    p.overlap = data[2] % p.size;
    size_t n = size - 3;
    char *t = malloc(n + 1);
    memcpy(t, data + 3, n);
    t[n] = '\0';
    struct sl_arena *a = sl_arena_new();
    struct sl_chunk *c;
    size_t nc;
    if (sl_chunk_text(&p, t, n, a, &c, &nc)) /* raw bytes: only safety */
        abort();
    sl_arena_free(a);
    make_utf8(t, n);
    a = sl_arena_new();
    if (sl_chunk_text(&p, t, n, a, &c, &nc))
        abort();
    if (!p.langchain)
        check(&p, t, n, c, nc);
    sl_arena_free(a);
    free(t);
    return 0;
}
