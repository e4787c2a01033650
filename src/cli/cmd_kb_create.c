/* sluice kb create NAME --embed MODEL [...]: a new knowledge base. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_kb.h"
#include "cli/commands.h"
#include "cli/kb_remote.h"
#include "core/json.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: sluice kb create NAME --embed MODEL [--rerank MODEL | --strong-embed MODEL]\n"
            "                        [--answer MODEL] [--type PROFILE] [--recall-k N] [--top-k N]\n"
            "                        [--recall-threshold X] [--rerank-threshold X]\n"
            "                        [--temperature T] [--context-tokens N] [--url URL | --config FILE]\n\n"
            "Creates a knowledge base. Its vectors all come from the --embed model (stage 1).\n"
            "Stage 2 reranks with a rerank model (--rerank, through /v1/rerank) or with a\n"
            "strong embedding model over the candidates (--strong-embed); neither: stage 1's\n"
            "order is final. Answers come from --answer (default deepseek-chat, temperature 0.1).\n\n"
            "  --type PROFILE        default chunking profile of added documents (auto)\n"
            "  --recall-k N, --top-k N  candidates of stage 1 (50) and sources kept (5)\n\n%s",
            kb_cli_common_help);
}

static int create(struct sl_kb_client *c, void *arg)
{
    cJSON *reply = kb_cli_call(c, "create", "POST", "/v1/kb", arg);
    if (!reply)
        return 1;
    printf("created knowledge base %s (embed %s, rerank %s %s, answer %s)\n",
           sl_json_str(reply, "name", ""), sl_json_str(reply, "embed_model", ""),
           sl_json_str(reply, "rerank", ""), sl_json_str(reply, "rerank_model", ""),
           sl_json_str(reply, "answer_model", ""));
    cJSON_Delete(reply);
    return 0;
}

static const struct { const char *flag, *key; int number; } flags[] = {
    {"--embed", "embed_model", 0},         {"--answer", "answer_model", 0},
    {"--type", "profile", 0},              {"--recall-k", "recall_k", 1},
    {"--top-k", "top_k", 1},               {"--recall-threshold", "recall_threshold", 1},
    {"--rerank-threshold", "rerank_threshold", 1}, {"--temperature", "temperature", 1},
    {"--context-tokens", "context_tokens", 1},
};

int cmd_kb_create(int argc, char **argv)
{
    struct kb_cli_opts o = {.write = 1};
    if (sl_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    cJSON *body = cJSON_CreateObject();
    int bad = !body || argc < 2 || argv[1][0] == '-';
    if (!bad)
        cJSON_AddStringToObject(body, "name", argv[1]);
    for (int i = 2; i < argc && !bad; i++) {
        size_t f = 0;
        while (f < sizeof(flags) / sizeof(flags[0]) && strcmp(argv[i], flags[f].flag) != 0)
            f++;
        if (kb_cli_common_opt(argc, argv, &i, &o))
            continue;
        if ((strcmp(argv[i], "--rerank") == 0 || strcmp(argv[i], "--strong-embed") == 0) && i + 1 < argc) {
            cJSON_AddStringToObject(body, "rerank", argv[i][2] == 'r' ? "model" : "embed");
            cJSON_AddStringToObject(body, "rerank_model", argv[++i]);
        } else if (f < sizeof(flags) / sizeof(flags[0]) && i + 1 < argc) {
            char *end;
            double v = strtod(argv[i + 1], &end);
            if (flags[f].number && (*end || end == argv[i + 1]))
                bad = 1;
            else if (flags[f].number)
                cJSON_AddNumberToObject(body, flags[f].key, v);
            else
                cJSON_AddStringToObject(body, flags[f].key, argv[i + 1]);
            i++;
        } else {
            bad = 1;
        }
    }
    if (bad || !cJSON_GetObjectItemCaseSensitive(body, "embed_model")) {
        cJSON_Delete(body);
        help(stderr);
        return 2;
    }
    char *printed = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    int rc = printed ? kb_cli_run(&o, create, printed) : 1;
    cJSON_free(printed);
    return rc;
}
