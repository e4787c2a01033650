/* Private to src/config: what the YAML walker (load.c) and the directive tables
 * (directives.c) share. Nothing outside src/config includes this. */
#ifndef SL_CONFIG_LOADER_H
#define SL_CONFIG_LOADER_H

#include <stddef.h>

#include "config/config.h"

struct loader {
    const char *name;      /* file name used in error lines */
    struct sl_buf *errors; /* may be NULL */
    int nerrors;
    struct sl_config *cfg;
    char path[96]; /* where the walk is, for messages: "server", "providers[2]" */
};

/* A scalar value, substituted and ready to be typed. */
struct scalar {
    const char *key;   /* directive name, for messages */
    const char *s;     /* NUL-terminated */
    size_t len;
    int line;          /* 1-based; 0 for a built-in default */
    const char *unset; /* a ${VAR} in it that came out empty, or NULL */
};

struct directive;

/* Types v into the field d names in base. On a bad value, reports it with
 * sl_config_bad and returns -1; the field is then left as it was. */
typedef int (*scalar_fn)(struct loader *ld, const struct scalar *v, void *base,
                         const struct directive *d);

/* Types a list of scalars (items[0..n), each substituted, with its own line) into the
 * field d names in base. Reports problems like scalar_fn and returns -1. */
typedef int (*seq_fn)(struct loader *ld, const struct scalar *items, size_t n, int line,
                      void *base, const struct directive *d);

struct table {
    const char *what; /* for "missing key" and "expected a mapping" messages */
    const struct directive *rows;
    size_t n; /* at most 64: the walker keeps one bit per row */
};

#define TABLE(what, rows) {what, rows, sizeof(rows) / sizeof(rows[0])}

/* A sequence of mappings that becomes an array of structs in the config. */
struct list {
    const struct table *item;
    size_t size;      /* of one struct */
    size_t max;       /* entries allowed */
    size_t arr_off;   /* the array pointer in the block's struct */
    size_t count_off; /* its size_t count */
    void (*init)(void *item, int line); /* prepares an item before its keys are read */
};

enum { D_REQUIRED = 1, D_EMPTY_OK = 2 };

/* One configuration key. Exactly one of scalar, map, list and seq is set. */
struct directive {
    const char *key;
    scalar_fn scalar;        /* the value is a scalar typed by this function, */
    const struct table *map; /* or a mapping of these directives, */
    const struct list *list; /* or a sequence of such mappings */
    size_t off;              /* the field (for map: the sub-struct) in the block's struct */
    const char *def;         /* default, written as in the file; NULL for none */
    unsigned flags;
    seq_fn seq;              /* or a list of scalars ([a, b] or lines of '- a') */
};

#define FIELD(type, base, d) ((type *)(void *)((char *)(base) + (d)->off))

/* govern: (backend, on_error, lease), in govern.c. */
extern const struct table sl_config_govern_table;

/* The whole file, starting at its top level. */
extern const struct table sl_config_top_table;

/* Reports a problem with key (NULL: with the block being walked), prefixed by where
 * it is: "FILE:LINE: server.listen: ...", "FILE:LINE: providers[1]: ...". */
void sl_config_bad(struct loader *ld, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void sl_config_oom(struct loader *ld, int line);

/* groups.c: checks every group against the models once the whole file is read
 * (names, strategy-specific keys) and resolves names to indexes. */
void sl_config_check_groups(struct loader *ld);
void sl_config_release_groups(struct sl_config *cfg);

/* govern.c: limits: of a model or group, budgets:, budget_alert: and retention:. */
extern const struct table sl_config_limits_table;
extern const struct list sl_config_budgets_list;
int sl_config_parse_percent(struct loader *ld, const struct scalar *v, void *base,
                            const struct directive *d);
int sl_config_parse_retention(struct loader *ld, const struct scalar *v, void *base,
                              const struct directive *d);
/* chunking.c: the chunking: list, and its checks once the file is read. */
extern const struct list sl_config_chunking_list;
void sl_config_check_chunking(struct loader *ld);

#define SL_MAX_SEQ_ITEMS 256 /* items in one list of scalars */

#endif
