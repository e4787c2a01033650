/* PDF text with poppler (glib API): the text of each page, pages apart by a blank line. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <poppler.h>

#include "kb/extract_internal.h"

int sl_extract_pdf(const char *data, size_t len, struct sl_buf *out, char *err, size_t errlen)
{
    if (len < 5 || memcmp(data, "%PDF-", 5) != 0) {
        snprintf(err, errlen, "not a PDF file (no %%PDF- header)");
        return -1;
    }
    GError *gerr = NULL;
    GBytes *bytes = g_bytes_new_static(data, len);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    if (!doc) {
        snprintf(err, errlen, "corrupt or encrypted PDF: %s", gerr ? gerr->message : "unreadable");
        if (gerr)
            g_error_free(gerr);
        g_bytes_unref(bytes);
        return -1;
    }
    int pages = poppler_document_get_n_pages(doc), result = 0;
    for (int i = 0; i < pages && !result; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        char *text = page ? poppler_page_get_text(page) : NULL;
        if (text && text[0]) {
            size_t n = strlen(text);
            while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
                n--;
            if ((out->len && sl_buf_append(out, "\n\n", 2)) || sl_buf_append(out, text, n))
                result = -1;
        }
        g_free(text);
        if (page)
            g_object_unref(page);
    }
    g_object_unref(doc);
    g_bytes_unref(bytes);
    if (!result && out->len && sl_buf_append(out, "\n", 1))
        result = -1;
    if (result)
        snprintf(err, errlen, "the text is larger than %zu bytes", out->max);
    return result;
}
