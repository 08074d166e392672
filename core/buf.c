#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

void
mf_buf_init(struct mf_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : SIZE_MAX - 1;
}

void
mf_buf_fini(struct mf_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int
mf_buf_reserve(struct mf_buf *b, size_t n)
{
    size_t need, ncap;

    if (n > b->max || b->len > b->max - n)
        return -1;
    need = b->len + n + 1;          /* room for the terminating NUL */
    if (need <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    b->data = mf_xrealloc(b->data, ncap);
    b->cap = ncap;
    return 0;
}

int
mf_buf_reserve_exact(struct mf_buf *b, size_t n)
{
    if (b->cap)
        return mf_buf_reserve(b, n);
    if (n > b->max)
        return -1;
    b->data = mf_xmalloc(n + 1);   /* and the terminating NUL */
    b->cap = n + 1;
    b->data[0] = '\0';
    return 0;
}

int
mf_buf_append(struct mf_buf *b, const void *p, size_t n)
{
    if (mf_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
mf_buf_appends(struct mf_buf *b, const char *s)
{
    return mf_buf_append(b, s, strlen(s));
}

int
mf_buf_appendc(struct mf_buf *b, char c)
{
    if (b->len + 1 < b->cap && b->len < b->max) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return mf_buf_append(b, &c, 1);
}

int
mf_buf_printf(struct mf_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || mf_buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void
mf_buf_consume(struct mf_buf *b, size_t n)
{
    if (n >= b->len) {
        mf_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void
mf_buf_shrink(struct mf_buf *b, size_t keep)
{
    if (b->cap <= keep || b->len + 1 > keep)
        return;
    b->data = mf_xrealloc(b->data, keep);
    b->cap = keep;
}

int
mf_buf_read_file(struct mf_buf *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t mark = b->len, r;
    int saved;

    if (!f)
        return -1;
    for (;;) {
        if (mf_buf_reserve(b, 65536) != 0 && mf_buf_reserve(b, 1) != 0) {
            errno = EFBIG;
            goto fail;
        }
        r = fread(b->data + b->len, 1, b->cap - b->len - 1, f);
        if (r == 0)
            break;
        b->len += r;
        if (b->len > b->max) {
            errno = EFBIG;
            goto fail;
        }
    }
    if (ferror(f)) {
        errno = EIO;
        goto fail;
    }
    fclose(f);
    b->data[b->len] = '\0';
    return 0;
fail:
    saved = errno;
    fclose(f);
    b->len = mark;
    if (b->data)
        b->data[b->len] = '\0';
    errno = saved;
    return -1;
}
