/* The subcommands of "sluice kb"; the table is in cmd_kb.c. Each takes argv from the
 * subcommand's name on and returns the exit status (0 ok, 1 failure, 2 usage error). */
#ifndef SL_CMD_KB_H
#define SL_CMD_KB_H

int cmd_kb_chunk(int argc, char **argv);

#endif
