/* arena.h - bump allocator for per-record work.
 *
 * Everything built while normalizing one record (parsed input, view,
 * output tree) comes from one arena and is released at once by
 * mf_arena_reset(), which keeps the first block so steady-state
 * normalization does no malloc at all. Allocation failure aborts. */
#ifndef MF_ARENA_H
#define MF_ARENA_H

#include <stddef.h>

struct mf_arena_block;

struct mf_arena {
    struct mf_arena_block *head;   /* current block */
    struct mf_arena_block *first;  /* kept across resets */
    size_t block_size;             /* size of ordinary blocks */
    size_t total;                  /* bytes held, for tests and stats */
};

void mf_arena_init(struct mf_arena *a, size_t block_size);
void mf_arena_fini(struct mf_arena *a);
void mf_arena_reset(struct mf_arena *a);
void *mf_arena_alloc(struct mf_arena *a, size_t n);     /* 16-byte aligned */
void *mf_arena_calloc(struct mf_arena *a, size_t n);
char *mf_arena_strndup(struct mf_arena *a, const char *s, size_t n);
char *mf_arena_strdup(struct mf_arena *a, const char *s);
char *mf_arena_printf(struct mf_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
