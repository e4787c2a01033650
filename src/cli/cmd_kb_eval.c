/* sluice kb eval NAME --questions FILE.jsonl: retrieval quality over a question set,
 * with and without stage 2 and BM25. A line: {"question": "...", "document": "NAME",
 * "start": N, "end": M}, the gold passage as character offsets in that document. A
 * retrieved chunk is relevant when it is from that document and overlaps the passage. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_kb.h"
#include "cli/commands.h"
#include "cli/kb_remote.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: sluice kb eval NAME --questions FILE.jsonl [--format table|json] [--per-query]\n"
            "                      [--url URL | --config FILE]\n\n"
            "Each line of FILE: {\"question\", \"document\", \"start\", \"end\"} (character offsets\n"
            "of the gold passage). Reports recall@5, recall@50, MRR@5, nDCG@5, latency and the\n"
            "stages' tokens and cost per query, for the full pipeline, stage 1 alone and\n"
            "without BM25; and what the two-stage pipeline costs against the strong (stage 2)\n"
            "model alone, per question (--per-query in the table; always in json) and in total.\n\n%s",
            kb_cli_common_help);
}

struct question {
    char *q, *doc;
    int64_t start, end;
    int bytes; /* start and end are byte offsets (byte_start, byte_end) */
};

struct variant {
    const char *name;
    int rerank, bm25;
    double recall5, recall50, mrr5, ndcg5;
    double *lat_ms;
    double tokens, cost;
    char currency[8];
    int priced;
};

/* One question's costs, two stages against the strong model alone (the search reply's
 * "compare", micro-units; -1 unpriced). */
struct compare {
    int64_t two_query, strong_query;
};

struct eval {
    const char *kb;
    struct question *qs;
    size_t n;
    struct variant v[3];
    int json, per_query;
    struct compare *cmp;  /* per question, from the two-stage run */
    int have_cmp;         /* the knowledge base has a stage 2 */
    int64_t two_ingest, strong_ingest, chunks, chunk_tokens;
    char mode[8], strong_model[SL_MAX_NAME], currency[8];
};

/* A cost string of the reply ("0.000123") as micro-units, -1 for null. */
static int64_t micros(const cJSON *o, const char *key)
{
    const char *s = sl_json_str(o, key, NULL);
    return s ? (int64_t)llround(atof(s) * 1e6) : -1;
}

static void read_compare(struct eval *e, size_t i, const cJSON *reply)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(reply, "compare");
    if (!c)
        return;
    const cJSON *two = cJSON_GetObjectItemCaseSensitive(c, "two_stage"),
                *strong = cJSON_GetObjectItemCaseSensitive(c, "strong_only");
    e->have_cmp = 1;
    e->cmp[i] = (struct compare){micros(two, "query"), micros(strong, "query")};
    e->two_ingest = micros(two, "ingest");
    e->strong_ingest = micros(strong, "ingest");
    e->chunks = sl_json_int(c, "chunks", 0);
    e->chunk_tokens = sl_json_int(c, "chunk_tokens", 0);
    snprintf(e->mode, sizeof(e->mode), "%s", sl_json_str(c, "mode", ""));
    snprintf(e->strong_model, sizeof(e->strong_model), "%s", sl_json_str(c, "strong_model", ""));
    snprintf(e->currency, sizeof(e->currency), "%s", sl_json_str(c, "currency", ""));
}

static void money(char *out, size_t cap, int64_t m)
{
    if (m < 0)
        snprintf(out, cap, "unpriced");
    else
        snprintf(out, cap, "%lld.%06lld", (long long)(m / 1000000), (long long)(m % 1000000));
}

static void money_json(char *out, size_t cap, int64_t m)
{
    if (m < 0)
        snprintf(out, cap, "null");
    else
        money(out, cap, m);
}

static int64_t add(int64_t a, int64_t b)
{
    return a < 0 || b < 0 ? -1 : a + b;
}

/* The saving of the two stages over the question set: per question and in total. */
static void report_compare(struct eval *e)
{
    int64_t two = 0, strong = 0;
    char a[32], b[32], c[32], d[32];
    for (size_t i = 0; i < e->n; i++) {
        two = add(two, e->cmp[i].two_query);
        strong = add(strong, e->cmp[i].strong_query);
    }
    int64_t two_total = add(two, e->two_ingest), strong_total = add(strong, e->strong_ingest);
    int64_t saved = two_total < 0 || strong_total < 0 ? -1 : strong_total - two_total;
    if (e->json) {
        money_json(a, sizeof(a), e->two_ingest);
        money_json(b, sizeof(b), e->strong_ingest);
        printf(",\"compare\":{\"mode\":\"%s\",\"strong_model\":\"%s\",\"currency\":\"%s\",\"chunks\":%lld,"
               "\"chunk_tokens\":%lld,\"two_stage_ingest\":%s,\"strong_only_ingest\":%s,",
               e->mode, e->strong_model, e->currency, (long long)e->chunks, (long long)e->chunk_tokens, a, b);
        money_json(a, sizeof(a), two);
        money_json(b, sizeof(b), strong);
        money_json(c, sizeof(c), two_total);
        money_json(d, sizeof(d), strong_total);
        printf("\"two_stage_queries\":%s,\"strong_only_queries\":%s,\"two_stage_total\":%s,"
               "\"strong_only_total\":%s,",
               a, b, c, d);
        money_json(a, sizeof(a), saved);
        printf("\"saved\":%s,\"per_query\":[", a);
        for (size_t i = 0; i < e->n; i++) {
            money_json(a, sizeof(a), e->cmp[i].two_query);
            money_json(b, sizeof(b), e->cmp[i].strong_query);
            printf("%s{\"two_stage\":%s,\"strong_only\":%s}", i ? "," : "", a, b);
        }
        printf("]}");
        return;
    }
    printf("\ntwo stages against %s alone (%s; %lld chunks, %lld tokens), %s:\n", e->strong_model,
           strcmp(e->mode, "embed") == 0 ? "it embeds every chunk and each question"
                                         : "it reranks every chunk for each question",
           (long long)e->chunks, (long long)e->chunk_tokens, e->currency);
    printf("%-22s %16s %16s\n", "", "TWO-STAGE", "STRONG ALONE");
    money(a, sizeof(a), e->two_ingest);
    money(b, sizeof(b), e->strong_ingest);
    printf("%-22s %16s %16s\n", "ingest (once)", a, b);
    for (size_t i = 0; e->per_query && i < e->n; i++) {
        char label[32];
        snprintf(label, sizeof(label), "question %zu", i + 1);
        money(a, sizeof(a), e->cmp[i].two_query);
        money(b, sizeof(b), e->cmp[i].strong_query);
        printf("%-22s %16s %16s\n", label, a, b);
    }
    money(a, sizeof(a), two < 0 ? -1 : two / (int64_t)e->n);
    money(b, sizeof(b), strong < 0 ? -1 : strong / (int64_t)e->n);
    printf("%-22s %16s %16s\n", "per question (mean)", a, b);
    char label[48];
    snprintf(label, sizeof(label), "%zu questions", e->n);
    money(a, sizeof(a), two);
    money(b, sizeof(b), strong);
    printf("%-22s %16s %16s\n", label, a, b);
    money(a, sizeof(a), two_total);
    money(b, sizeof(b), strong_total);
    printf("%-22s %16s %16s\n", "ingest + questions", a, b);
    money(a, sizeof(a), saved);
    if (saved >= 0 && strong_total > 0)
        printf("saved: %s (%.1f%%)\n", a, 100.0 * (double)saved / (double)strong_total);
    else
        printf("saved: %s\n", a);
}

static int relevant(const cJSON *h, const struct question *q)
{
    const char *s = q->bytes ? "byte_start" : "start", *e = q->bytes ? "byte_end" : "end";
    return strcmp(sl_json_str(h, "document", ""), q->doc) == 0 && sl_json_int(h, s, 0) < q->end &&
           sl_json_int(h, e, 0) > q->start;
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void score(struct variant *v, const cJSON *reply, const struct question *q)
{
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(reply, "data");
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(reply, "candidates"), *h;
    int rank = 0, first = 0, nrel = 0, in50 = 0;
    double dcg = 0;
    cJSON_ArrayForEach(h, top)
    {
        if (++rank > 5)
            break;
        if (relevant(h, q)) {
            dcg += 1.0 / log2(rank + 1.0);
            if (!first)
                first = rank;
        }
    }
    cJSON_ArrayForEach(h, cands)
    {
        if (relevant(h, q)) {
            nrel++;
            in50 = 1;
        }
    }
    /* the ideal list puts every relevant candidate first (at most 5 count) */
    double idcg = 0;
    for (int i = 1; i <= (nrel < 5 ? nrel : 5); i++)
        idcg += 1.0 / log2(i + 1.0);
    v->recall5 += first > 0;
    v->recall50 += in50 || first > 0;
    v->mrr5 += first ? 1.0 / first : 0;
    v->ndcg5 += idcg > 0 ? dcg / idcg : 0;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(reply, "usage"), *st;
    cJSON_ArrayForEach(st, u)
    {
        v->tokens += (double)sl_json_int(st, "tokens", 0);
        const char *cost = sl_json_str(st, "cost", NULL);
        if (cost) {
            v->cost += atof(cost);
            v->priced = 1;
            snprintf(v->currency, sizeof(v->currency), "%s", sl_json_str(st, "currency", ""));
        }
    }
}

static int run_variant(struct sl_kb_client *c, struct eval *e, struct variant *v)
{
    char path[SL_MAX_NAME + 32];
    snprintf(path, sizeof(path), "/v1/kb/%s/search", e->kb);
    for (size_t i = 0; i < e->n; i++) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "query", e->qs[i].q);
        cJSON_AddNumberToObject(body, "top_k", 5);
        cJSON_AddNumberToObject(body, "recall_k", 50);
        cJSON_AddBoolToObject(body, "rerank", v->rerank);
        cJSON_AddBoolToObject(body, "bm25", v->bm25);
        cJSON_AddTrueToObject(body, "candidates");
        if (v == &e->v[0])
            cJSON_AddTrueToObject(body, "compare");
        char *printed = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        int64_t t0 = sl_now_us();
        cJSON *reply = printed ? kb_cli_call(c, "eval", "POST", path, printed) : NULL;
        v->lat_ms[i] = (double)(sl_now_us() - t0) / 1000.0;
        cJSON_free(printed);
        if (!reply)
            return 1;
        score(v, reply, &e->qs[i]);
        if (v == &e->v[0])
            read_compare(e, i, reply);
        cJSON_Delete(reply);
    }
    return 0;
}

static double pct(double *ms, size_t n, double p)
{
    qsort(ms, n, sizeof(double), by_double);
    size_t i = (size_t)ceil(p * (double)n);
    return n ? ms[i ? i - 1 : 0] : 0;
}

static void report(struct eval *e)
{
    double n = (double)e->n;
    if (!e->json)
        printf("%zu questions\n%-16s %9s %9s %7s %7s %9s %9s %12s %12s\n", e->n, "PIPELINE", "RECALL@5",
               "RECALL@50", "MRR@5", "NDCG@5", "P50 MS", "P99 MS", "TOKENS/Q", "COST/Q");
    else
        printf("{\"questions\":%zu,\"results\":[", e->n);
    for (int i = 0; i < 3; i++) {
        struct variant *v = &e->v[i];
        double p50 = pct(v->lat_ms, e->n, 0.5), p99 = pct(v->lat_ms, e->n, 0.99);
        char cost[48];
        if (v->priced)
            snprintf(cost, sizeof(cost), "%.8f %s", v->cost / n, v->currency);
        else
            snprintf(cost, sizeof(cost), "unpriced");
        if (!e->json)
            printf("%-16s %9.3f %9.3f %7.3f %7.3f %9.1f %9.1f %12.1f %12s\n", v->name, v->recall5 / n,
                   v->recall50 / n, v->mrr5 / n, v->ndcg5 / n, p50, p99, v->tokens / n, cost);
        else {
            if (v->priced)
                snprintf(cost, sizeof(cost), "%.8f", v->cost / n);
            else
                snprintf(cost, sizeof(cost), "null");
            printf("%s{\"pipeline\":\"%s\",\"recall@5\":%.4f,\"recall@50\":%.4f,\"mrr@5\":%.4f,"
                   "\"ndcg@5\":%.4f,\"latency_p50_ms\":%.2f,\"latency_p99_ms\":%.2f,"
                   "\"tokens_per_query\":%.2f,\"cost_per_query\":%s,\"currency\":\"%s\"}",
                   i ? "," : "", v->name, v->recall5 / n, v->recall50 / n, v->mrr5 / n, v->ndcg5 / n,
                   p50, p99, v->tokens / n, cost, v->currency);
        }
    }
    if (e->json)
        printf("]");
    if (e->have_cmp)
        report_compare(e);
    if (e->json)
        printf("}\n");
}

static int eval(struct sl_kb_client *c, void *arg)
{
    struct eval *e = arg;
    for (int i = 0; i < 3; i++)
        if (run_variant(c, e, &e->v[i]))
            return 1;
    report(e);
    return 0;
}

static int load(const char *path, struct eval *e)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, lineno = 0, room = 0;
    ssize_t len;
    if (!f) {
        fprintf(stderr, "sluice kb eval: cannot open %s\n", path);
        return -1;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)len);
        const char *q = sl_json_str(o, "question", NULL), *doc = sl_json_str(o, "document", NULL);
        if (!o && strspn(line, " \t\r\n") == (size_t)len)
            continue;
        int bytes = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "byte_start"));
        if (!q || !doc || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, bytes ? "byte_start" : "start")) ||
            !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, bytes ? "byte_end" : "end"))) {
            fprintf(stderr, "sluice kb eval: %s:%zu: a line needs question, document, and start, end "
                            "(characters) or byte_start, byte_end\n",
                    path, lineno);
            cJSON_Delete(o);
            free(line);
            fclose(f);
            return -1;
        }
        if (e->n == room) {
            room = room ? room * 2 : 64;
            e->qs = realloc(e->qs, room * sizeof(*e->qs));
        }
        e->qs[e->n++] = (struct question){strdup(q), strdup(doc),
                                          sl_json_int(o, bytes ? "byte_start" : "start", 0),
                                          sl_json_int(o, bytes ? "byte_end" : "end", 0), bytes};
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (!e->n)
        fprintf(stderr, "sluice kb eval: %s holds no question\n", path);
    return e->n ? 0 : -1;
}

int cmd_kb_eval(int argc, char **argv)
{
    struct kb_cli_opts o = {0};
    struct eval e = {.v = {{.name = "two-stage", .rerank = 1, .bm25 = 1},
                           {.name = "stage-1-only", .rerank = 0, .bm25 = 1},
                           {.name = "no-bm25", .rerank = 1, .bm25 = 0}}};
    const char *file = NULL;
    int rc = 0;
    if (sl_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    for (int i = 1; i < argc && !rc; i++) {
        if (kb_cli_common_opt(argc, argv, &i, &o))
            continue;
        if (strcmp(argv[i], "--questions") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (strcmp(argv[i], "--per-query") == 0)
            e.per_query = 1;
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            e.json = strcmp(argv[++i], "json") == 0;
        else if (argv[i][0] != '-' && !e.kb)
            e.kb = argv[i];
        else
            rc = 2;
    }
    if (rc || !e.kb || !file) {
        help(stderr);
        return 2;
    }
    if (load(file, &e))
        rc = 1;
    for (int i = 0; i < 3 && !rc; i++)
        e.v[i].lat_ms = calloc(e.n, sizeof(double));
    if (!rc)
        e.cmp = calloc(e.n, sizeof(*e.cmp));
    if (!rc)
        rc = kb_cli_run(&o, eval, &e);
    for (size_t i = 0; i < e.n; i++) {
        free(e.qs[i].q);
        free(e.qs[i].doc);
    }
    for (int i = 0; i < 3; i++)
        free(e.v[i].lat_ms);
    free(e.qs);
    free(e.cmp);
    return rc;
}
