/* sluice serve: run the gateway. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "server/server.h"

static void help(FILE *out)
{
    fprintf(out, "usage: sluice serve [--config FILE] [--listen HOST:PORT]\n\n"
                 "Runs the gateway. Without --config it serves the built-in simulated provider\n"
                 "on the defaults (127.0.0.1:4000, sqlite://./sluice.db).\n\n"
                 "  --config FILE       YAML configuration (see docs/config.md)\n"
                 "  --listen HOST:PORT  overrides server.listen (port 0 picks a free port)\n\n"
                 "Signals: SIGHUP reloads the config; SIGTERM or SIGINT drains and exits.\n");
}

int cmd_serve(int argc, char **argv)
{
    struct sl_serve_opts opts = {0};
    if (sl_cli_wants_help(argc, argv)) {
        help(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            opts.config_path = argv[++i];
        } else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            opts.listen = argv[++i];
        } else {
            fprintf(stderr, "sluice serve: unexpected argument '%s'\n\n", argv[i]);
            help(stderr);
            return 2;
        }
    }
    return sl_server_run(&opts);
}
