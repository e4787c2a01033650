/* The subcommands of "sluice kb"; the table is in cmd_kb.c. Each takes argv from the
 * subcommand's name on and returns the exit status (0 ok, 1 failure, 2 usage error). */
#ifndef SL_CMD_KB_H
#define SL_CMD_KB_H

int cmd_kb_chunk(int argc, char **argv);
int cmd_kb_create(int argc, char **argv);
int cmd_kb_add(int argc, char **argv);
int cmd_kb_list(int argc, char **argv);
int cmd_kb_rm(int argc, char **argv);
int cmd_kb_search(int argc, char **argv);
int cmd_kb_eval(int argc, char **argv);

#endif
