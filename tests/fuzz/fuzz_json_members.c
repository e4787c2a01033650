/* libFuzzer: the raw top-level member scan the fast path rewrites bodies with. For every
 * object cJSON accepts, each member's key and value span must match what cJSON parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sl_json_raw_control((const char *)data, size) >= 0)
        return 0; /* refused before any scan (see sl_json_raw_control) */
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)data, size, NULL, 0);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return 0;
    }
    struct sl_json_member m[SL_MAX_TOP_KEYS];
    int n = sl_json_members((const char *)data, size, m, SL_MAX_TOP_KEYS);
    if (n < 0 && cJSON_GetArraySize(root) <= SL_MAX_TOP_KEYS)
        abort();
    const cJSON *item = root->child;
    for (int i = 0; i < n; i++, item = item->next) {
        if (!item)
            abort();
        /* Printed forms, not cJSON_Compare: that one finds only the first of two
         * equal keys in a nested object, so it is not reflexive on such input. */
        cJSON *v = cJSON_ParseWithLength(m[i].value.ptr, m[i].value.len);
        char *got = v ? cJSON_PrintUnformatted(v) : NULL, *want = cJSON_PrintUnformatted(item);
        if (!got || !want || strcmp(got, want) != 0)
            abort();
        cJSON_free(got);
        cJSON_free(want);
        cJSON_Delete(v);
        if (!memchr(m[i].key.ptr, '\\', m[i].key.len) &&
            (strlen(item->string) != m[i].key.len || memcmp(item->string, m[i].key.ptr, m[i].key.len)))
            abort();
    }
    if (n >= 0 && item)
        abort();
    cJSON_Delete(root);
    return 0;
}
