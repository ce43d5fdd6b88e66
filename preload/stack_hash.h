/*
 * stack_hash - the multiply chain that hashes stacks, shared by stack.c and cfi.c (which
 * keeps it frame by frame, so that a stack sharing its outer part with the last one is
 * hashed from where they part).
 */
#ifndef LKD_STACK_HASH_H
#define LKD_STACK_HASH_H

#include <stdint.h>

#define LKD_HASH_K 0x9e3779b97f4a7c15ull
#define LKD_HASH_SEED 0x243f6a8885a308d3ull

static inline uint64_t lkd_hash_step(uint64_t h, uint64_t frame)
{
    return (h ^ frame) * LKD_HASH_K;
}

/* The 64-bit mix that ends a hash; h is the chain's value xor the frame count. */
static inline uint64_t lkd_hash_end(uint64_t h)
{
    h = (h ^ (h >> 32)) * LKD_HASH_K;
    return h ^ (h >> 29);
}

/* The default mode's hash: the chain from the outermost frame in (frames[depth - 1] first). */
static inline uint64_t lkd_hash_outer_first(const uint64_t *frames, uint32_t depth)
{
    uint64_t h = LKD_HASH_SEED;
    for (uint32_t i = depth; i-- > 0;)
        h = lkd_hash_step(h, frames[i]);
    return lkd_hash_end(h ^ depth);
}

#endif
