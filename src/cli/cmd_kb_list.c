/* sluice kb list, and sluice kb rm NAME [DOCUMENT...]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "cli/cmd_kb.h"
#include "cli/commands.h"
#include "cli/kb_remote.h"
#include "core/json.h"

static int list(struct sl_kb_client *c, void *arg)
{
    cJSON *reply = kb_cli_call(c, "list", "GET", "/v1/kb", NULL), *kb;
    if (!reply)
        return 1;
    printf("%-20s %-16s %5s %-8s %-16s %-16s %6s %8s\n", "NAME", "EMBED", "DIM", "RERANK",
           "RERANK MODEL", "ANSWER", "DOCS", "CHUNKS");
    cJSON_ArrayForEach(kb, cJSON_GetObjectItemCaseSensitive(reply, "data"))
    {
        printf("%-20s %-16s %5lld %-8s %-16s %-16s %6lld %8lld\n", sl_json_str(kb, "name", ""),
               sl_json_str(kb, "embed_model", ""), (long long)sl_json_int(kb, "dimensions", 0),
               sl_json_str(kb, "rerank", ""), sl_json_str(kb, "rerank_model", "-"),
               sl_json_str(kb, "answer_model", ""), (long long)sl_json_int(kb, "documents", 0),
               (long long)sl_json_int(kb, "chunks", 0));
    }
    cJSON_Delete(reply);
    return 0;
}

int cmd_kb_list(int argc, char **argv)
{
    struct kb_cli_opts o = {0};
    if (sl_cli_wants_help(argc, argv)) {
        printf("usage: sluice kb list [--url URL | --config FILE]\n\nLists the knowledge bases "
               "with their models and counts.\n\n%s", kb_cli_common_help);
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (!kb_cli_common_opt(argc, argv, &i, &o)) {
            fprintf(stderr, "sluice kb list: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    return kb_cli_run(&o, list, NULL);
}

struct rm {
    const char *kb;
    char **docs;
    int ndocs;
};

static int rm(struct sl_kb_client *c, void *arg)
{
    struct rm *r = arg;
    char path[4096];
    int failed = 0;
    for (int i = 0; i < r->ndocs || (i == 0 && !r->ndocs); i++) {
        char *esc = r->ndocs ? evhttp_uriencode(r->docs[i], -1, 0) : NULL;
        if (r->ndocs)
            snprintf(path, sizeof(path), "/v1/kb/%s/documents/%s", r->kb, esc ? esc : "");
        else
            snprintf(path, sizeof(path), "/v1/kb/%s", r->kb);
        free(esc);
        cJSON *reply = kb_cli_call(c, "rm", "DELETE", path, NULL);
        if (reply)
            printf("deleted %s\n", r->ndocs ? r->docs[i] : r->kb);
        failed += !reply;
        cJSON_Delete(reply);
    }
    return failed ? 1 : 0;
}

int cmd_kb_rm(int argc, char **argv)
{
    struct kb_cli_opts o = {.write = 1};
    struct rm r = {0};
    char *docs[256];
    if (sl_cli_wants_help(argc, argv)) {
        printf("usage: sluice kb rm NAME [DOCUMENT...] [--url URL | --config FILE]\n\n"
               "Deletes a knowledge base with everything in it, or only the documents named.\n\n%s",
               kb_cli_common_help);
        return 0;
    }
    r.docs = docs;
    for (int i = 1; i < argc; i++) {
        if (kb_cli_common_opt(argc, argv, &i, &o))
            continue;
        if (argv[i][0] == '-' || (r.kb && r.ndocs == 256)) {
            fprintf(stderr, "sluice kb rm: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
        if (!r.kb)
            r.kb = argv[i];
        else
            docs[r.ndocs++] = argv[i];
    }
    if (!r.kb) {
        fprintf(stderr, "usage: sluice kb rm NAME [DOCUMENT...]\n");
        return 2;
    }
    return kb_cli_run(&o, rm, &r);
}
