/* libFuzzer: the document extractors (HTML, DOCX, PDF, text), chosen by the first byte.
 * They must never crash, and on success yield valid UTF-8. */
#include <stdint.h>
#include <stdlib.h>

#include "kb/extract.h"
#include "kb/extract_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum sl_doc_kind kinds[] = {SL_DOC_HTML, SL_DOC_DOCX, SL_DOC_PDF, SL_DOC_TEXT};
    if (size < 1)
        return 0;
    struct sl_buf out = SL_BUF_INIT(1u << 24);
    char err[256];
    if (sl_extract_mem(kinds[data[0] & 3], (const char *)data + 1, size - 1, &out, err,
                       sizeof(err)) == 0 &&
        out.ptr && !sl_utf8_valid(out.ptr, out.len))
        abort();
    sl_buf_release(&out);
    return 0;
}
