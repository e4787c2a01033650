/* libFuzzer: the knowledge base's FTS5 terms and query of arbitrary bytes. The terms hold
 * no quote or control byte and single spaces between non-empty terms; the query quotes
 * each of its terms once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "kb/lexical.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
    struct sl_buf terms = SL_BUF_INIT(n * 4 + 64), q = SL_BUF_INIT(n * 8 + 64);
    const char *s = (const char *)p;
    if (sl_kb_terms(s, n, &terms) == 0 && terms.ptr) {
        for (size_t i = 0; i < terms.len; i++) {
            unsigned char c = (unsigned char)terms.ptr[i];
            if (c < 0x20 || c == '"' || (c == ' ' && (i == 0 || i + 1 == terms.len || terms.ptr[i + 1] == ' ')))
                abort();
        }
    }
    int count = sl_kb_fts_query(s, n, 64, &q);
    if (count > 64)
        abort();
    size_t quotes = 0;
    for (size_t i = 0; q.ptr && i < q.len; i++)
        quotes += q.ptr[i] == '"';
    if (count >= 0 && quotes != (size_t)count * 2)
        abort();
    sl_buf_release(&terms);
    sl_buf_release(&q);
    return 0;
}
