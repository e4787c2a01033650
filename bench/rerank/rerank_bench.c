/* The rerank microbenchmark: CPU time of what sluice does per rerank request besides
 * waiting: read the client's JSON, build the upstream body, parse the provider's reply,
 * merge and sort the hits, build the client's reply; for 50 and 1,000 documents of a
 * retrieval chunk's size (~1.4 KB). Process CPU time, so other load matters little. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "core/buf.h"
#include "formats/rerank.h"

static double cpu_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static char *make_request(int ndocs)
{
    static const char *words[] = {"contract", "liability", "payment", "term", "notice", "party",
                                  "breach", "delivery", "warranty", "clause", "违约", "责任"};
    struct sl_buf b = SL_BUF_INIT(1u << 30);
    sl_buf_puts(&b, "{\"model\":\"m\",\"query\":\"liability for breach of the payment term\","
                    "\"top_n\":5,\"return_documents\":true,\"documents\":[");
    for (int i = 0; i < ndocs; i++) {
        sl_buf_printf(&b, "%s\"Section %d:", i ? "," : "", i);
        for (int k = 0; k < 190; k++)
            sl_buf_printf(&b, " %s", words[(i * 7 + k * 13) % 12]);
        sl_buf_puts(&b, "\"");
    }
    sl_buf_puts(&b, "]}");
    return b.ptr;
}

static char *make_reply(int ndocs)
{
    struct sl_buf b = SL_BUF_INIT(1u << 30);
    sl_buf_puts(&b, "{\"results\":[");
    for (int i = 0; i < ndocs; i++)
        sl_buf_printf(&b, "%s{\"index\":%d,\"relevance_score\":%.17g}", i ? "," : "", i,
                      (double)((i * 7919) % 1000) / 1000);
    sl_buf_puts(&b, "],\"usage\":{\"total_tokens\":12345}}");
    return b.ptr;
}

static void run(int ndocs, int iters)
{
    char *req = make_request(ndocs), *rep = make_reply(ndocs);
    struct sl_provider_cfg p = {.name = "p", .kind = SL_WIRE_OPENAI, .base_url = "http://h/v1", .api_key = "k"};
    struct sl_model_cfg m = {.name = "m", .provider = "p", .model = "up", .p = &p};
    double t_read = 0, t_enc = 0, t_parse = 0, t_reply = 0;
    size_t out_len = 0;
    for (int it = 0; it < iters; it++) {
        struct sl_arena *a = sl_arena_new();
        struct sl_rerank_req r;
        struct sl_error e;
        struct sl_encoded enc;
        struct sl_rerank_parsed u;
        double t0 = cpu_us();
        cJSON *root = cJSON_Parse(req);
        if (sl_rerank_request_read(root, a, &r, &e))
            abort();
        double t1 = cpu_us();
        if (sl_rerank_encode(SL_RERANK_JINA, &r, &m, 0, r.ndocs, a, &enc))
            abort();
        double t2 = cpu_us();
        struct sl_rerank_hit *hits = sl_arena_alloc(a, (size_t)ndocs * sizeof(*hits));
        if (sl_rerank_parse_reply(SL_RERANK_JINA, rep, strlen(rep), 0, ndocs, hits, &u, &e))
            abort();
        sl_rerank_sort(hits, u.nhits);
        double t3 = cpu_us();
        struct sl_buf out = SL_BUF_INIT(1u << 30);
        if (sl_rerank_reply(&r, hits, u.nhits, "id", "up", u.tokens, 1, &out))
            abort();
        double t4 = cpu_us();
        out_len = out.len;
        sl_buf_release(&out);
        cJSON_Delete(root);
        sl_arena_free(a);
        t_read += t1 - t0, t_enc += t2 - t1, t_parse += t3 - t2, t_reply += t4 - t3;
    }
    printf("| %d docs (%zu KB request) | %.1f | %.1f | %.1f | %.1f | %.1f |\n", ndocs,
           strlen(req) / 1024, t_read / iters, t_enc / iters, t_parse / iters, t_reply / iters,
           (t_read + t_enc + t_parse + t_reply) / iters);
    (void)out_len;
    free(req);
    free(rep);
}

int main(void)
{
    printf("| request | read µs | encode µs | parse + sort µs | reply µs | total µs |\n");
    printf("|---|---|---|---|---|---|\n");
    run(50, 2000);
    run(1000, 100);
    return 0;
}
