/* libFuzzer: the rerank parsers. The first byte picks the target: a client request
 * (read, then encoded for every shape in parts and answered), a 2xx reply of each
 * upstream shape, an error body, or the sim's score of "query\0document". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "formats/rerank.h"
#include "sim/sim.h"

static void fuzz_request(const char *p, size_t n)
{
    struct sl_arena *a = sl_arena_new();
    cJSON *root = cJSON_ParseWithLength(p, n);
    struct sl_rerank_req r;
    struct sl_error e;
    if (a && cJSON_IsObject(root) && sl_rerank_request_read(root, a, &r, &e) == 0) {
        struct sl_provider_cfg prov = {.name = "p", .base_url = "http://h/v1", .api_key = "k"};
        struct sl_model_cfg m = {.name = "m", .provider = "p", .model = "up", .p = &prov};
        struct sl_encoded enc;
        for (int w = SL_RERANK_JINA; w <= SL_RERANK_DASHSCOPE; w++)
            for (int off = 0; off < r.ndocs; off += 3)
                sl_rerank_encode(w, &r, &m, off, r.ndocs - off < 3 ? r.ndocs - off : 3, a, &enc);
        struct sl_rerank_hit *hits = calloc((size_t)r.ndocs, sizeof(*hits));
        for (int i = 0; hits && i < r.ndocs; i++)
            hits[i] = (struct sl_rerank_hit){r.ndocs - 1 - i, (double)(i % 5) / 4};
        if (hits) {
            sl_rerank_sort(hits, r.ndocs);
            struct sl_buf out = SL_BUF_INIT(1 << 24);
            sl_rerank_reply(&r, hits, r.ndocs, "id", "up", 1, 1, &out);
            sl_buf_release(&out);
        }
        free(hits);
    }
    cJSON_Delete(root);
    sl_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sl_rerank_hit hits[64];
    struct sl_rerank_parsed u;
    struct sl_error e;
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 6) {
    case 0:
        fuzz_request(p, n);
        break;
    case 1:
    case 2:
    case 3:
        sl_rerank_parse_reply((enum sl_rerank_wire)(data[0] % 6), p, n, 5, 64, hits, &u, &e);
        break;
    case 4:
        sl_rerank_parse_error(400, p, n, &e);
        break;
    default: {
        char *s = malloc(n + 2);
        if (!s)
            return 0;
        memcpy(s, p, n);
        s[n] = s[n + 1] = 0;
        double v = sl_sim_rerank_score(s, s + strlen(s) + (strlen(s) < n ? 1 : 0));
        if (!(v >= 0 && v <= 1))
            abort();
        free(s);
    }
    }
    return 0;
}
