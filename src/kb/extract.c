/* Document extraction: file reading, kind by extension, plain text and Markdown, and the
 * Markdown writer the HTML and DOCX extractors share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "kb/extract.h"
#include "kb/extract_internal.h"

static const struct {
    const char *ext;
    enum sl_doc_kind kind;
} exts[] = {
    {".txt", SL_DOC_TEXT},     {".text", SL_DOC_TEXT}, {".md", SL_DOC_MARKDOWN},
    {".markdown", SL_DOC_MARKDOWN}, {".html", SL_DOC_HTML}, {".htm", SL_DOC_HTML},
    {".xhtml", SL_DOC_HTML},   {".pdf", SL_DOC_PDF},   {".docx", SL_DOC_DOCX},
};

int sl_doc_kind_of(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot || strchr(dot, '/'))
        return -1;
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
        if (strcasecmp(dot, exts[i].ext) == 0)
            return (int)exts[i].kind;
    return -1;
}

const char *sl_doc_kind_name(enum sl_doc_kind kind)
{
    static const char *const names[] = {"text", "markdown", "html", "pdf", "docx"};
    return (unsigned)kind < 5 ? names[kind] : "unknown";
}

static size_t utf8_seq(const unsigned char *p, const unsigned char *end);

int sl_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t k;
    while (p < end) {
        if (!(k = utf8_seq(p, end)))
            return 0;
        p += k;
    }
    return 1;
}

/* UTF-8 text as it is, without a BOM, with CRLF and CR as LF, without NUL bytes. */
static int extract_text(const char *data, size_t len, struct sl_buf *out, char *err,
                        size_t errlen)
{
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
        data += 3;
        len -= 3;
    }
    if (!sl_utf8_valid(data, len)) {
        snprintf(err, errlen, "not UTF-8 text (convert it first, e.g. with iconv)");
        return -1;
    }
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\r' && data[i] != '\0')
            continue;
        if (sl_buf_append(out, data + from, i - from))
            goto big;
        if (data[i] == '\r' && sl_buf_append(out, "\n", 1))
            goto big;
        if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
            i++;
        from = i + 1;
    }
    if (sl_buf_append(out, data + from, len - from) == 0)
        return 0;
big:
    snprintf(err, errlen, "the text is larger than %zu bytes", out->max);
    return -1;
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = *p;
    size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
             : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!k || (size_t)(end - p) < k || (k == 2 && c < 0xC2) || (k == 4 && c > 0xF4))
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if (k == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)))
        return 0;
    if (k == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)))
        return 0;
    return k;
}

/* Parsers pass some undecodable bytes through: make out[from..] valid UTF-8, each bad
 * byte becoming U+FFFD. */
static int repair_utf8(struct sl_buf *out, size_t from)
{
    if (!out->ptr || sl_utf8_valid(out->ptr + from, out->len - from))
        return 0;
    struct sl_buf fixed = SL_BUF_INIT(out->max);
    const unsigned char *p = (const unsigned char *)out->ptr + from,
                        *end = (const unsigned char *)out->ptr + out->len;
    int result = sl_buf_append(&fixed, out->ptr, from);
    while (p < end && !result) {
        size_t k = utf8_seq(p, end);
        result = k ? sl_buf_append(&fixed, p, k) : sl_buf_append(&fixed, "\xEF\xBF\xBD", 3);
        p += k ? k : 1;
    }
    if (result) {
        sl_buf_release(&fixed);
        return -1;
    }
    sl_buf_release(out);
    *out = fixed;
    return 0;
}

int sl_extract_mem(enum sl_doc_kind kind, const char *data, size_t len, struct sl_buf *out,
                   char *err, size_t errlen)
{
    size_t from = out->len;
    int result;
    switch (kind) {
    case SL_DOC_TEXT:
    case SL_DOC_MARKDOWN:
        return extract_text(data, len, out, err, errlen);
    case SL_DOC_HTML:
        result = sl_extract_html(data, len, out, err, errlen);
        break;
    case SL_DOC_PDF:
        result = sl_extract_pdf(data, len, out, err, errlen);
        break;
    case SL_DOC_DOCX:
        result = sl_extract_docx(data, len, out, err, errlen);
        break;
    default:
        snprintf(err, errlen, "unknown document kind");
        return -1;
    }
    if (!result && repair_utf8(out, from)) {
        snprintf(err, errlen, "the text is larger than %zu bytes", out->max);
        return -1;
    }
    return result;
}

int sl_extract_file(const char *path, struct sl_buf *out, char *err, size_t errlen)
{
    int kind = sl_doc_kind_of(path);
    if (kind < 0) {
        snprintf(err, errlen, "%s: unknown document type (use .txt .md .html .pdf .docx)", path);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s", path, f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    if ((unsigned long long)st.st_size > SL_MAX_DOC_FILE) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, SL_MAX_DOC_FILE);
        fclose(f);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    char *data = malloc(len + 1);
    if (!data || fread(data, 1, len, f) != len) {
        snprintf(err, errlen, "%s: %s", path, data ? "read failed" : "out of memory");
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    data[len] = '\0';
    char why[256];
    int result = sl_extract_mem((enum sl_doc_kind)kind, data, len, out, why, sizeof(why));
    if (result)
        snprintf(err, errlen, "%s: %s", path, why);
    free(data);
    return result;
}

/* ---- the Markdown writer ---- */

void sl_md_init(struct sl_md *m, struct sl_buf *out)
{
    memset(m, 0, sizeof(*m));
    m->out = out;
}

void sl_md_break(struct sl_md *m, int level)
{
    if (m->glue)
        return;
    if (level > m->pending)
        m->pending = level;
}

static void put(struct sl_md *m, const char *s, size_t n)
{
    if (!m->failed && sl_buf_append(m->out, s, n))
        m->failed = 1;
}

static void flush_break(struct sl_md *m)
{
    if (m->out->len > 0 && m->pending) {
        /* Count the newlines the text already ends with, so breaks never stack. */
        size_t have = 0;
        while (have < m->out->len && have < 2 && m->out->ptr[m->out->len - 1 - have] == '\n')
            have++;
        if (m->pending == 1 && have == 0 && m->out->ptr[m->out->len - 1] != ' ')
            put(m, " ", 1);
        for (size_t need = m->pending == 3 ? 2 : m->pending == 2 ? 1 : 0; have < need; have++)
            put(m, "\n", 1);
    }
    m->pending = 0;
}

void sl_md_raw(struct sl_md *m, const char *s, size_t n)
{
    if (n == 0)
        return;
    flush_break(m);
    put(m, s, n);
    m->glue = 0;
}

void sl_md_text(struct sl_md *m, const char *s, size_t n)
{
    if (m->pre) {
        sl_md_raw(m, s, n);
        return;
    }
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && !strchr(" \t\r\n\f\v", s[j]))
            j++;
        if (j > i)
            sl_md_raw(m, s + i, j - i);
        if (j < n) {
            sl_md_break(m, 1);
            while (j < n && strchr(" \t\r\n\f\v", s[j]))
                j++;
        }
        i = j;
    }
}

void sl_md_marker(struct sl_md *m, const char *s, size_t n)
{
    sl_md_raw(m, s, n);
    m->glue = 1;
}
