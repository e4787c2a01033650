/* Growable byte buffer with a hard maximum (every input-driven buffer has one). */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>

struct sl_buf {
    char *ptr; /* always NUL-terminated when non-NULL */
    size_t len, cap, max;
};

#define SL_BUF_INIT(maxlen) { NULL, 0, 0, (maxlen) }

void sl_buf_init(struct sl_buf *b, size_t max);

/* Appends n bytes. Returns 0, or -1 when the result would exceed b->max or
 * memory ran out; the buffer is unchanged then. */
int sl_buf_append(struct sl_buf *b, const void *p, size_t n);
int sl_buf_puts(struct sl_buf *b, const char *s);
int sl_buf_printf(struct sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops the first n bytes. */
void sl_buf_consume(struct sl_buf *b, size_t n);
void sl_buf_reset(struct sl_buf *b);

/* Frees the memory; the buffer may be reused after sl_buf_init(). */
void sl_buf_release(struct sl_buf *b);

#endif
