/* bloom.c - see bloom.h. */
#include "bloom.h"

#include <stdlib.h>

#include "mem.h"

#define BITS_PER_KEY 10
#define PROBES       7

void
mf_bloom_init(struct mf_bloom *b, size_t cap)
{
    uint64_t nbits = 64;

    if (cap < 1024)
        cap = 1024;
    while (nbits < (uint64_t)cap * BITS_PER_KEY)
        nbits <<= 1;
    b->bits = mf_xcalloc((size_t)(nbits / 64), sizeof(uint64_t));
    b->mask = nbits - 1;
    b->n = 0;
    b->cap = cap;
}

void
mf_bloom_fini(struct mf_bloom *b)
{
    free(b->bits);
    b->bits = NULL;
    b->n = b->cap = 0;
}

/* The second probe hash: a mix of the first, odd so that the probes
 * h1 + i*h2 never repeat within a power-of-two table. */
static uint64_t
mix(uint64_t x)
{
    return mf_mix64(x) | 1;
}

void
mf_bloom_add(struct mf_bloom *b, uint64_t h)
{
    uint64_t h2 = mix(h);

    for (int i = 0; i < PROBES; i++, h += h2)
        b->bits[(h & b->mask) >> 6] |= 1ULL << (h & 63);
    b->n++;
}

bool
mf_bloom_test(const struct mf_bloom *b, uint64_t h)
{
    uint64_t h2 = mix(h);

    for (int i = 0; i < PROBES; i++, h += h2)
        if (!(b->bits[(h & b->mask) >> 6] & (1ULL << (h & 63))))
            return false;
    return true;
}
