/* Terms for the FTS5 index: CJK bigrams and lower-cased words, built in C before insert
 * so that SQLite's stock unicode61 tokenizer (which keeps a term whole) can index them. */
#include "kb/lexical.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One code point at s (n bytes left): its value and byte length; -1 for a bad byte. */
static int32_t next_cp(const unsigned char *s, size_t n, size_t *adv)
{
    *adv = 1;
    if (s[0] < 0x80)
        return s[0];
    int len = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || (size_t)len > n)
        return -1;
    int32_t cp = s[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *adv = (size_t)len;
    return cp;
}

static int is_cjk(int32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FA1F) ||
           (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0xAC00 && cp <= 0xD7AF);
}

/* Letters and digits of other scripts: ASCII alphanumerics and every non-ASCII code
 * point that is neither CJK nor punctuation or a space. */
static int is_word(int32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
    if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
        (cp >= 0xFF00 && cp <= 0xFF20) || (cp >= 0xFE30 && cp <= 0xFE4F) || cp == 0xA0 ||
        (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65))
        return 0;
    return !is_cjk(cp);
}

struct emitter {
    struct sl_buf *out;
    int count;
    int err;
};

static void emit(struct emitter *e, const char *p, size_t n, int lower)
{
    if (e->count++ && sl_buf_append(e->out, " ", 1))
        e->err = 1;
    size_t at = e->out->len;
    if (sl_buf_append(e->out, p, n)) {
        e->err = 1;
        return;
    }
    for (size_t i = 0; lower && i < n; i++)
        if (e->out->ptr[at + i] >= 'A' && e->out->ptr[at + i] <= 'Z')
            e->out->ptr[at + i] += 'a' - 'A';
}

/* Calls emit for every term of text. */
static void terms(const char *text, size_t len, struct emitter *e)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, word_start = 0, adv;
    int in_word = 0;
    size_t prev_cjk = SIZE_MAX, run = 0; /* start of the previous CJK character */
    while (i < len && !e->err) {
        int32_t cp = next_cp(s + i, len - i, &adv);
        int cjk = cp >= 0 && is_cjk(cp), word = cp >= 0 && !cjk && is_word(cp);
        if (in_word && !word) {
            emit(e, text + word_start, i - word_start, 1);
            in_word = 0;
        }
        if (cjk) {
            if (prev_cjk != SIZE_MAX)
                emit(e, text + prev_cjk, i + adv - prev_cjk, 0);
            prev_cjk = i;
            run++;
        } else {
            if (run == 1)
                emit(e, text + prev_cjk, i - prev_cjk, 0);
            prev_cjk = SIZE_MAX;
            run = 0;
        }
        if (word && !in_word) {
            in_word = 1;
            word_start = i;
        }
        i += adv;
    }
    if (in_word && !e->err)
        emit(e, text + word_start, len - word_start, 1);
    if (run == 1 && !e->err)
        emit(e, text + prev_cjk, len - prev_cjk, 0);
}

int sl_kb_terms(const char *text, size_t len, struct sl_buf *out)
{
    struct emitter e = {out, 0, 0};
    terms(text, len, &e);
    if (!e.err && sl_buf_append(out, "", 0))
        e.err = 1;
    return e.err ? -1 : 0;
}

static int seen(const char *list, size_t list_len, const char *t, size_t n)
{
    for (const char *p = list; p && p < list + list_len;) {
        const char *sp = memchr(p, ' ', (size_t)(list + list_len - p));
        size_t len = sp ? (size_t)(sp - p) : (size_t)(list + list_len - p);
        if (len == n && memcmp(p, t, n) == 0)
            return 1;
        p = sp ? sp + 1 : NULL;
    }
    return 0;
}

int sl_kb_distinct_terms(const char *text, size_t len, int max, struct sl_buf *out, size_t *off,
                         size_t *lens)
{
    if (sl_kb_terms(text, len, out))
        return -1;
    int n = 0;
    const char *p = out->ptr;
    size_t total = out->len;
    for (size_t i = 0; p && i < total && n < max;) {
        const char *sp = memchr(p + i, ' ', total - i);
        size_t tl = sp ? (size_t)(sp - (p + i)) : total - i;
        if (tl && !seen(p, i ? i - 1 : 0, p + i, tl)) {
            off[n] = i;
            lens[n++] = tl;
        }
        i += tl + 1;
    }
    return n;
}

int sl_kb_fts_query(const char *text, size_t len, int max_terms, struct sl_buf *out)
{
    struct sl_buf all = SL_BUF_INIT(len * 4 + 64);
    size_t *off = malloc((size_t)(max_terms > 0 ? max_terms : 1) * sizeof(size_t));
    size_t *lens = malloc((size_t)(max_terms > 0 ? max_terms : 1) * sizeof(size_t));
    int n = off && lens ? sl_kb_distinct_terms(text, len, max_terms, &all, off, lens) : -1;
    for (int i = 0; i < n; i++)
        if ((i && sl_buf_puts(out, " OR ")) || sl_buf_puts(out, "\"") ||
            sl_buf_append(out, all.ptr + off[i], lens[i]) || sl_buf_puts(out, "\"")) {
            n = -1;
            break;
        }
    free(off);
    free(lens);
    sl_buf_release(&all);
    return n;
}
