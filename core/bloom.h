/* bloom.h - a Bloom filter over 64-bit key hashes: a key is either
 * certainly absent or maybe present. Sized for a capacity: about 1% false
 * positives up to it (10 bits and 7 probes per key), more beyond, never a
 * false negative. The caller rebuilds a bigger one when mf_bloom_full(). */
#ifndef MF_BLOOM_H
#define MF_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mf_bloom {
    uint64_t *bits;
    uint64_t mask;               /* bit count - 1 (a power of two) */
    size_t n;                    /* keys added */
    size_t cap;
};

/* A 64-bit finalizer (splitmix64's): every input bit reaches every output
 * bit. For deriving hashes from hashes. */
static inline uint64_t
mf_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void mf_bloom_init(struct mf_bloom *b, size_t cap);
void mf_bloom_fini(struct mf_bloom *b);
void mf_bloom_add(struct mf_bloom *b, uint64_t h);
bool mf_bloom_test(const struct mf_bloom *b, uint64_t h);
static inline bool
mf_bloom_full(const struct mf_bloom *b)
{
    return b->n > b->cap;
}

#endif
