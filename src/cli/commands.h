/* The subcommands of the sluice binary; the table itself is in main.c.
 * Each returns the process exit status (0 ok, 1 runtime failure, 2 usage error). */
#ifndef SL_COMMANDS_H
#define SL_COMMANDS_H

int cmd_serve(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_usage(int argc, char **argv);
int cmd_cost(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* True when argv holds -h or --help. */
int sl_cli_wants_help(int argc, char **argv);

#endif
