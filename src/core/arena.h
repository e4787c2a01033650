/* Per-request arena: everything a request allocates dies with it in one call. */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>

struct sl_arena;

typedef void (*sl_cleanup_cb)(void *arg);

/* Returns a new arena, or NULL when out of memory. Free with sl_arena_free(). */
struct sl_arena *sl_arena_new(void);

/* Returns zeroed memory owned by the arena (8-byte aligned); NULL when out of memory. */
void *sl_arena_alloc(struct sl_arena *a, size_t n);

/* Copies n bytes and adds a NUL; owned by the arena. */
char *sl_arena_strndup(struct sl_arena *a, const char *s, size_t n);
char *sl_arena_sprintf(struct sl_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Registers fn(arg) to run when the arena is freed (last registered runs first).
 * Returns 0, or -1 when out of memory (then fn is not registered). */
int sl_arena_cleanup(struct sl_arena *a, sl_cleanup_cb fn, void *arg);

/* Runs the cleanups, then frees every block. NULL is allowed. */
void sl_arena_free(struct sl_arena *a);

#endif
