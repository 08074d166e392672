/* buf.h - growable byte buffer with a ceiling fixed at init.
 *
 * An append that would pass the ceiling fails with -1 and leaves the buffer
 * as it was (unlike curl's dynbuf it does not free: callers decide). The
 * contents are always NUL-terminated when len > 0 or cap > 0. */
#ifndef MF_BUF_H
#define MF_BUF_H

#include <stddef.h>
#include <stdint.h>

struct mf_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;     /* ceiling for len; 0 means SIZE_MAX */
};

void mf_buf_init(struct mf_buf *b, size_t max);
void mf_buf_fini(struct mf_buf *b);
/* Make room for n more bytes; 0 / -1 (ceiling). */
int mf_buf_reserve(struct mf_buf *b, size_t n);
/* An empty buffer's first allocation, exactly n bytes of room (for one
 * that is filled once and kept, e.g. a queued frame); 0 / -1 (ceiling). */
int mf_buf_reserve_exact(struct mf_buf *b, size_t n);
int mf_buf_append(struct mf_buf *b, const void *p, size_t n);
int mf_buf_appends(struct mf_buf *b, const char *s);
int mf_buf_appendc(struct mf_buf *b, char c);
int mf_buf_printf(struct mf_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drop the first n bytes, moving the rest to the front. */
void mf_buf_consume(struct mf_buf *b, size_t n);
static inline void mf_buf_reset(struct mf_buf *b) { b->len = 0; if (b->data) b->data[0] = '\0'; }
/* Append the whole file at path (it must fit under the ceiling). 0, or -1
 * with errno set (EFBIG when over the ceiling); b keeps what it had. */
int mf_buf_read_file(struct mf_buf *b, const char *path);
/* Free memory above keep bytes of capacity (used between records so a
 * several-MB record does not pin its buffer for the rest of the run). */
void mf_buf_shrink(struct mf_buf *b, size_t keep);

#endif
