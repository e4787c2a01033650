/* Shared by the extractors: a Markdown writer that collapses whitespace and blank lines,
 * and one extractor per document kind. */
#ifndef SL_KB_EXTRACT_INTERNAL_H
#define SL_KB_EXTRACT_INTERNAL_H

#include <stddef.h>

#include "core/buf.h"

struct sl_md {
    struct sl_buf *out;
    int pending; /* what separates the next text from the last: 0 nothing, 1 space, 2 line, 3 blank line */
    int failed;  /* the output grew past its maximum */
    int pre;     /* inside preformatted text: keep whitespace as it is */
    int glue;    /* a list marker was written: no break before the item's text */
};

void sl_md_init(struct sl_md *m, struct sl_buf *out);
/* Text, its whitespace collapsed to single spaces (kept as is inside pre). */
void sl_md_text(struct sl_md *m, const char *s, size_t n);
/* Bytes written as they are, after any pending break. */
void sl_md_raw(struct sl_md *m, const char *s, size_t n);
/* Asks for at least this break (1 space, 2 line, 3 blank line) before the next text;
 * ignored right after sl_md_marker(). */
void sl_md_break(struct sl_md *m, int level);
/* Writes a list marker ("- ") that the item's first text follows on the same line. */
void sl_md_marker(struct sl_md *m, const char *s, size_t n);

int sl_extract_html(const char *data, size_t len, struct sl_buf *out, char *err, size_t errlen);
int sl_extract_pdf(const char *data, size_t len, struct sl_buf *out, char *err, size_t errlen);
int sl_extract_docx(const char *data, size_t len, struct sl_buf *out, char *err, size_t errlen);

/* True when [s, s+n) is valid UTF-8. */
int sl_utf8_valid(const char *s, size_t n);

#endif
