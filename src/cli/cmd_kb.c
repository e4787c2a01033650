/* sluice kb: the knowledge-base commands, one row each in kb_commands[]. */
#include <stdio.h>
#include <string.h>

#include "cli/cmd_kb.h"
#include "cli/commands.h"

/* To add a kb subcommand: a row here, src/cli/cmd_kb_<name>.c with its --help, its
 * declaration in cmd_kb.h, a test, and a line in docs/kb.md. */
static const struct kb_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} kb_commands[] = {
    {"chunk", cmd_kb_chunk, "preview how a document is chunked (stores nothing)"},
    {"create", cmd_kb_create, "create a knowledge base"},
    {"add", cmd_kb_add, "add documents (files or folders)"},
    {"list", cmd_kb_list, "list the knowledge bases"},
    {"rm", cmd_kb_rm, "delete a knowledge base, or documents of one"},
    {"search", cmd_kb_search, "ranked chunks for a question, with each stage's scores"},
    {"eval", cmd_kb_eval, "recall@5/@50, MRR@5, nDCG@5, latency and cost over a question set"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sluice kb <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(kb_commands) / sizeof(kb_commands[0]); i++)
        fprintf(out, "  %-10s %s\n", kb_commands[i].name, kb_commands[i].summary);
    fprintf(out, "\nRun 'sluice kb <command> --help' for a command's options.\n");
}

int cmd_kb(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(kb_commands) / sizeof(kb_commands[0]); i++)
        if (strcmp(argv[1], kb_commands[i].name) == 0)
            return kb_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sluice kb: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
