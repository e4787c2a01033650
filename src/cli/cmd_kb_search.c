/* sluice kb search NAME "question": the ranked chunks, with each stage's scores. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_kb.h"
#include "cli/commands.h"
#include "cli/kb_remote.h"
#include "core/json.h"
#include "core/limits.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: sluice kb search NAME QUESTION [--top-k N] [--recall-k N] [--no-rerank]\n"
            "                        [--no-bm25] [--no-vectors] [--format table|json]\n"
            "                        [--url URL | --config FILE]\n\n"
            "Runs the retrieval stages and prints the chunks kept, best first.\n\n%s",
            kb_cli_common_help);
}

struct search {
    const char *kb;
    cJSON *body;
    int json;
};

static void print_hit(const cJSON *h)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(h, "scores");
    const cJSON *rr = cJSON_GetObjectItemCaseSensitive(s, "rerank");
    const char *text = sl_json_str(h, "text", "");
    printf("%2lld. %s", (long long)sl_json_int(h, "index", 0), sl_json_str(h, "document", ""));
    if (sl_json_str(h, "heading", "")[0])
        printf(" > %s", sl_json_str(h, "heading", ""));
    printf("  [chars %lld-%lld]\n    rrf %.4f  vector #%lld  bm25 #%lld", (long long)sl_json_int(h, "start", 0),
           (long long)sl_json_int(h, "end", 0),
           cJSON_GetObjectItemCaseSensitive(s, "rrf") ? cJSON_GetObjectItemCaseSensitive(s, "rrf")->valuedouble : 0,
           (long long)sl_json_int(s, "vector_rank", 0), (long long)sl_json_int(s, "bm25_rank", 0));
    if (cJSON_IsNumber(rr))
        printf("  rerank %.4f", rr->valuedouble);
    size_t n = strlen(text), cut = n > 160 ? 160 : n;
    while (cut < n && ((unsigned char)text[cut] & 0xC0) == 0x80)
        cut++;
    printf("\n    %.*s%s\n", (int)cut, text, cut < n ? "..." : "");
}

static int search(struct sl_kb_client *c, void *arg)
{
    struct search *s = arg;
    char path[SL_MAX_NAME + 32], *body = cJSON_PrintUnformatted(s->body);
    snprintf(path, sizeof(path), "/v1/kb/%s/search", s->kb);
    cJSON *reply = body ? kb_cli_call(c, "search", "POST", path, body) : NULL, *h;
    cJSON_free(body);
    if (!reply)
        return 1;
    if (s->json) {
        char *out = cJSON_Print(reply);
        printf("%s\n", out ? out : "{}");
        cJSON_free(out);
    } else {
        cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(reply, "data")) print_hit(h);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(reply, "timing");
        printf("stage 1 %.1f ms, stage 2 %.1f ms%s\n",
               cJSON_GetObjectItemCaseSensitive(t, "recall_ms") ? cJSON_GetObjectItemCaseSensitive(t, "recall_ms")->valuedouble : 0,
               cJSON_GetObjectItemCaseSensitive(t, "rerank_ms") ? cJSON_GetObjectItemCaseSensitive(t, "rerank_ms")->valuedouble : 0,
               sl_json_bool(reply, "reranked", 0) ? "" : " (not reranked)");
    }
    cJSON_Delete(reply);
    return 0;
}

int cmd_kb_search(int argc, char **argv)
{
    struct kb_cli_opts o = {0};
    struct search s = {0};
    const char *q = NULL;
    if (sl_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    s.body = cJSON_CreateObject();
    int bad = !s.body;
    for (int i = 1; i < argc && !bad; i++) {
        if (kb_cli_common_opt(argc, argv, &i, &o))
            continue;
        if ((strcmp(argv[i], "--top-k") == 0 || strcmp(argv[i], "--recall-k") == 0) && i + 1 < argc) {
            cJSON_AddNumberToObject(s.body, argv[i][2] == 't' ? "top_k" : "recall_k", atoi(argv[i + 1]));
            i++;
        } else if (strncmp(argv[i], "--no-", 5) == 0 &&
                   (strcmp(argv[i] + 5, "rerank") == 0 || strcmp(argv[i] + 5, "bm25") == 0 ||
                    strcmp(argv[i] + 5, "vectors") == 0)) {
            cJSON_AddFalseToObject(s.body, argv[i] + 5);
        } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
            s.json = strcmp(argv[++i], "json") == 0;
        } else if (argv[i][0] == '-') {
            bad = 1;
        } else if (!s.kb) {
            s.kb = argv[i];
        } else if (!q) {
            q = argv[i];
        } else {
            bad = 1;
        }
    }
    if (bad || !s.kb || !q) {
        cJSON_Delete(s.body);
        help(stderr);
        return 2;
    }
    cJSON_AddStringToObject(s.body, "query", q);
    int rc = kb_cli_run(&o, search, &s);
    cJSON_Delete(s.body);
    return rc;
}
