/* How the kb commands reach a sluice: a running one (--url, or $SLUICE_URL), or one
 * started in this process on a loopback port from --config (or the defaults) for the
 * length of the command. Every command is then an HTTP client of /v1/kb. */
#ifndef SL_CLI_KB_REMOTE_H
#define SL_CLI_KB_REMOTE_H

#include <cjson/cJSON.h>

#include "kb/client.h"

struct kb_cli_opts {
    const char *url;    /* NULL: start a server in-process */
    const char *config; /* that server's config (NULL: the defaults) */
    int write;          /* the command changes a knowledge base (sends the master key) */
};

/* Consumes --url URL or --config FILE at argv[*i]: 1 when it did (and moved *i), 0 when
 * argv[*i] is neither. */
int kb_cli_common_opt(int argc, char **argv, int *i, struct kb_cli_opts *o);

/* Runs fn with a client connected as o says. Returns fn's status, or 1 when no server
 * could be reached or started. */
int kb_cli_run(struct kb_cli_opts *o, int (*fn)(struct sl_kb_client *c, void *arg), void *arg);

/* Sends one request and parses the JSON reply. NULL on failure, with the message printed
 * to stderr as "sluice kb WHAT: ...". */
cJSON *kb_cli_call(struct sl_kb_client *c, const char *what, const char *method, const char *path,
                   const char *body);

/* "--url URL, --config FILE" lines for the commands' help. */
extern const char kb_cli_common_help[];

#endif
