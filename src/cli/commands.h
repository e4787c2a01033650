/* The subcommands of the sluice binary; the table itself is in main.c.
 * Each returns the process exit status (0 ok, 1 runtime failure, 2 usage error). */
#ifndef SL_COMMANDS_H
#define SL_COMMANDS_H

#include <stdint.h>

int cmd_serve(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_usage(int argc, char **argv);
int cmd_cost(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_kb(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* Report output formats, shared by the reporting commands. */
enum sl_cli_format { SL_FORMAT_TABLE, SL_FORMAT_JSON, SL_FORMAT_CSV };

/* "table" | "json" | "csv" (NULL = table). Returns 0 or -1. */
int sl_cli_parse_format(const char *s, enum sl_cli_format *f);

/* A --since value, "45s", "15m", "24h", "30d", into milliseconds (at most ~100 years,
 * so no overflow). Returns 0 or -1. */
int sl_cli_parse_age(const char *s, int64_t *ms);

/* True when argv holds -h or --help. */
int sl_cli_wants_help(int argc, char **argv);

/* The store URL of a command's --store or --config FILE (its store: key), else
 * SL_CLI_DEFAULT_STORE. 0, or -1 after printing why the config did not load. */
#define SL_CLI_DEFAULT_STORE "sqlite://./sluice.db"
int sl_cli_store_url(const char *store, const char *config, const char *cmd, char *url, size_t n);

#endif
