/* Bump allocator in chained blocks, with cleanup hooks for non-memory resources. */
#include "core/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE 8192

struct block {
    struct block *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    sl_cleanup_cb fn;
    void *arg;
};

struct sl_arena {
    struct block *head;
    struct cleanup *cleanups;
};

static struct block *block_new(size_t size)
{
    struct block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->used = 0;
    b->size = size;
    return b;
}

struct sl_arena *sl_arena_new(void)
{
    struct sl_arena *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->head = block_new(BLOCK_SIZE - sizeof(struct block));
    if (!a->head) {
        free(a);
        return NULL;
    }
    return a;
}

void *sl_arena_alloc(struct sl_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct block *b = a->head;
    if (b->size - b->used < n) {
        size_t size = BLOCK_SIZE - sizeof(struct block);
        if (n > size / 4) {
            /* Large allocations get their own block behind the head, so the
             * head's free space keeps serving small ones. */
            struct block *big = block_new(n);
            if (!big)
                return NULL;
            big->used = n;
            big->next = b->next;
            b->next = big;
            memset(big->data, 0, n);
            return big->data;
        }
        b = block_new(size);
        if (!b)
            return NULL;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *sl_arena_strndup(struct sl_arena *a, const char *s, size_t n)
{
    char *p = sl_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sl_arena_sprintf(struct sl_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = sl_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int sl_arena_cleanup(struct sl_arena *a, sl_cleanup_cb fn, void *arg)
{
    struct cleanup *c = sl_arena_alloc(a, sizeof(*c));
    if (!c)
        return -1;
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

void sl_arena_free(struct sl_arena *a)
{
    if (!a)
        return;
    for (struct cleanup *c = a->cleanups; c; c = c->next)
        c->fn(c->arg);
    struct block *b = a->head;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}
