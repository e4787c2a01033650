/* Document extraction: .txt .md .html .pdf .docx to UTF-8 text for the chunker.
 * HTML and DOCX structure is kept as Markdown: headings become "#" lines, tables
 * Markdown tables, list items "- " lines, so one chunker sees one structure. */
#ifndef SL_KB_EXTRACT_H
#define SL_KB_EXTRACT_H

#include <stddef.h>

#include "core/buf.h"

enum sl_doc_kind { SL_DOC_TEXT, SL_DOC_MARKDOWN, SL_DOC_HTML, SL_DOC_PDF, SL_DOC_DOCX };

/* Largest document file sluice reads, and the largest text it extracts. */
#define SL_MAX_DOC_FILE (256u * 1024 * 1024)
#define SL_MAX_DOC_TEXT (64u * 1024 * 1024)

/* The kind of a file by its extension, case-insensitive: .txt .text → TEXT, .md .markdown →
 * MARKDOWN, .html .htm .xhtml → HTML, .pdf → PDF, .docx → DOCX. -1 when unknown. */
int sl_doc_kind_of(const char *path);

/* "text" "markdown" "html" "pdf" "docx". */
const char *sl_doc_kind_name(enum sl_doc_kind kind);

/* Reads the file at path and extracts its text, appended to out (initialised by the caller,
 * e.g. SL_BUF_INIT(SL_MAX_DOC_TEXT); the caller releases it). Returns 0, or -1 with a message
 * in err naming the file (missing, unreadable, unknown extension, corrupt, too large). */
int sl_extract_file(const char *path, struct sl_buf *out, char *err, size_t errlen);

/* The same over bytes in memory. Text and Markdown must be UTF-8 (a leading BOM is dropped,
 * CRLF becomes LF); invalid UTF-8 is an error. Returns 0, or -1 with err filled. */
int sl_extract_mem(enum sl_doc_kind kind, const char *data, size_t len, struct sl_buf *out,
                   char *err, size_t errlen);

#endif
