#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

struct mf_arena_block {
    struct mf_arena_block *next;   /* older block */
    size_t size;                   /* usable bytes in data */
    size_t used;
    _Alignas(16) unsigned char data[];
};

#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

static struct mf_arena_block *
block_new(size_t size)
{
    struct mf_arena_block *b = mf_xmalloc(sizeof(*b) + size);

    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void
mf_arena_init(struct mf_arena *a, size_t block_size)
{
    a->block_size = block_size ? block_size : 64 * 1024;
    a->first = block_new(a->block_size);
    a->head = a->first;
    a->total = a->block_size;
}

void
mf_arena_fini(struct mf_arena *a)
{
    struct mf_arena_block *b = a->head, *next;

    while (b) {
        next = b->next;
        free(b);
        b = next;
    }
    a->head = a->first = NULL;
    a->total = 0;
}

void
mf_arena_reset(struct mf_arena *a)
{
    struct mf_arena_block *b = a->head, *next;

    /* every block but the first goes, including big blocks linked below it */
    while (b) {
        next = b->next;
        if (b != a->first)
            free(b);
        b = next;
    }
    a->head = a->first;
    a->first->used = 0;
    a->first->next = NULL;
    a->total = a->first->size;
}

void *
mf_arena_alloc(struct mf_arena *a, size_t n)
{
    struct mf_arena_block *b = a->head;
    size_t need = ALIGN16(n ? n : 1);
    void *p;

    if (b->size - b->used < need) {
        size_t sz = a->block_size;

        if (need > sz / 4) {
            /* big object: its own block, linked below the current head so
             * the head keeps serving small allocations */
            struct mf_arena_block *big = block_new(need);

            big->used = need;
            big->next = b->next;
            b->next = big;
            a->total += need;
            return big->data;
        }
        b = block_new(sz);
        b->next = a->head;
        a->head = b;
        a->total += sz;
    }
    p = b->data + b->used;
    b->used += need;
    return p;
}

void *
mf_arena_calloc(struct mf_arena *a, size_t n)
{
    void *p = mf_arena_alloc(a, n);

    memset(p, 0, n);
    return p;
}

char *
mf_arena_strndup(struct mf_arena *a, const char *s, size_t n)
{
    char *d = mf_arena_alloc(a, n + 1);

    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *
mf_arena_strdup(struct mf_arena *a, const char *s)
{
    return mf_arena_strndup(a, s, strlen(s));
}

char *
mf_arena_printf(struct mf_arena *a, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *d;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    d = mf_arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}
