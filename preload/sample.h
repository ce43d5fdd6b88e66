/*
 * sample - the sampled mode (LEAKDIFF_SAMPLE=BYTES): which allocations are recorded.
 *
 * Poisson sampling on bytes, as tcmalloc and jemalloc do: each thread counts down the bytes
 * to its next sample, a number drawn from the exponential distribution with mean BYTES; an
 * allocation of size s that takes the countdown to zero or below is recorded and a new
 * countdown is drawn. Since the exponential distribution has no memory, every allocation is
 * recorded with probability 1 - exp(-s/BYTES), independently of all others (estimate.h
 * turns that into unbiased figures). Unrecorded allocations cost one subtraction.
 *
 * Frees: most blocks of a sampled run were never recorded, so a free must find out cheaply
 * that its block is not in the live table. A counting filter answers that: one 16-bit
 * counter per 4 KiB page of address (page number modulo 65536, so a counter stands for one
 * page in every 256 MiB), raised when a recorded block that starts in the page goes into the
 * table and lowered when it leaves; a free whose counter is 0 skips the table. Mapping pages
 * directly, not by a hash, keeps the filter in cache: a program's hot heap pages share a few
 * cache lines of counters (a hashed filter measured one cache miss per free). A free in a
 * page that holds a recorded block looks in the table in vain: with one recorded block per
 * 512 KiB allocated, that is well under 1% of the frees. A counter that reaches its maximum
 * stays there (then frees in its pages always look in the table).
 *
 * Never calls malloc; no locks. With LEAKDIFF_SAMPLE unset or 0 every check below is one
 * predictable branch and every allocation is recorded.
 */
#ifndef LKD_SAMPLE_H
#define LKD_SAMPLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define LKD_SAMPLE_FILTER_BITS 16
#define LKD_SAMPLE_PAGE_SHIFT 12

/* The calling thread's sampler: bytes left to the next sample, and its PRNG (0 = not seeded
 * yet: the first allocation seeds it and draws the first countdown). */
typedef struct lkd_sample_thread {
    int64_t left;
    uint64_t rng;
} lkd_sample_thread_t;

extern __thread lkd_sample_thread_t lkd_sample_self __attribute__((tls_model("initial-exec")));
extern _Atomic(uint16_t) lkd_sample_filter[1u << LKD_SAMPLE_FILTER_BITS];

bool lkd_sample_fire(size_t size);

/* True when an allocation of size bytes (that succeeded) is to be recorded: always without
 * sampling; otherwise when it brings the thread's countdown to zero or below. */
static inline bool lkd_sample_pick(size_t size)
{
    if (__builtin_expect(!lkd_config.sample, 1))
        return true;
    int64_t left = lkd_sample_self.left - (int64_t)size;
    if (__builtin_expect(left > 0, 1)) {
        lkd_sample_self.left = left;
        return false;
    }
    return lkd_sample_fire(size);
}

/* The same decision, taken before the allocation is made: true when sampling passes over an
 * allocation of size bytes (nothing to record); false without sampling and when it is
 * picked. Allocations the tracker would not record anyway (the guard is set) may go through
 * it too: the countdown they consume changes nothing, the exponential having no memory. */
static inline bool lkd_sample_skip(size_t size)
{
    if (__builtin_expect(!lkd_config.sample, 1))
        return false;
    int64_t left = lkd_sample_self.left - (int64_t)size;
    if (__builtin_expect(left > 0, 1)) {
        lkd_sample_self.left = left;
        return true;
    }
    return !lkd_sample_fire(size);
}

/* The filter counter of the page of addr. */
static inline size_t lkd_sample_slot(uintptr_t addr)
{
    return (size_t)(addr >> LKD_SAMPLE_PAGE_SHIFT) & ((1u << LKD_SAMPLE_FILTER_BITS) - 1);
}

/* False when the block at ptr is surely not in the live table (sampled mode: never recorded),
 * so that its free can skip the table; true otherwise. */
static inline bool lkd_sample_may_hold(const void *ptr)
{
    if (__builtin_expect(!lkd_config.sample, 1))
        return true;
    return atomic_load_explicit(&lkd_sample_filter[lkd_sample_slot((uintptr_t)ptr)],
                                memory_order_relaxed) != 0;
}

void lkd_sample_added(uintptr_t addr);
void lkd_sample_removed(uintptr_t addr);
void lkd_sample_seed(lkd_sample_thread_t *t, uint64_t seed, uint64_t serial);
int64_t lkd_sample_draw(lkd_sample_thread_t *t, uint64_t rate);
void lkd_sample_forked(void);

#endif
