/*
 * fp_walk - the frame-pointer walk of LEAKDIFF_UNWIND=fp, header-only so that the shim
 * (stack.c) and the benchmark's floor (bench/unwind_floor.c, which must not link the shim)
 * run the very same walk. Never calls malloc, except pthread_getattr_np in lkd_fp_bounds
 * (it reads /proc/self/maps for the main thread): callers hold their reentrancy guard.
 */
#ifndef LKD_FP_WALK_H
#define LKD_FP_WALK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* The calling thread's stack as [*lo, *hi); *hi = 1 when unknown, so nothing is walked
 * rather than guessed. */
static inline void lkd_fp_bounds(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t attr;
    void *base;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &base, &size) == 0) {
            *lo = (uintptr_t)base;
            *hi = (uintptr_t)base + size;
        }
        pthread_attr_destroy(&attr);
    }
    if (!*hi)
        *hi = 1;
}

/* Walks up the frame-pointer chain from frame fp of the stack [lo, hi), calling
 * visit(ctx, ret) with each return address, innermost first, until it returns false. The
 * walk stops at the first frame that does not look like one (code built without frame
 * pointers): outside the stack (its two words must fit below hi), misaligned, a zero return
 * address, or a next frame that does not move up the stack. Since every frame is above the
 * one before, only the first is checked against lo: a wild rbp such as -16 fails the upper
 * bound, where fp + 16 would wrap around it. Every check is a branch, off the chain of loads
 * (choosing the next frame with a conditional move put two cycles per frame on it). Always
 * inlined, visit with it: the loop runs once per frame of every allocation, and its
 * instruction count, not its loads, bounded it (perf). */
static inline __attribute__((always_inline)) void
lkd_fp_visit(uintptr_t fp, uintptr_t lo, uintptr_t hi, bool (*visit)(void *ctx, uintptr_t ret),
             void *ctx)
{
    if (hi - lo < 16)
        return;
    const uintptr_t top = hi - 16; /* the highest frame address with room for its words */
    if (fp < lo || fp > top || (fp & 7))
        return;
    for (;;) {
        uintptr_t next = ((uintptr_t *)fp)[0], ret = ((uintptr_t *)fp)[1];
        if (!ret || !visit(ctx, ret) || next <= fp || next > top || (next & 7))
            break;
        fp = next;
    }
}

typedef struct lkd_fp_buf {
    void **at, **end;
} lkd_fp_buf_t;

static inline __attribute__((always_inline)) bool lkd_fp_store(void *ctx, uintptr_t ret)
{
    lkd_fp_buf_t *b = ctx;
    *b->at++ = (void *)ret;
    return b->at != b->end;
}

/* Up to max return addresses from the frame fp up the chain. */
static inline uint32_t lkd_fp_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, void **buf,
                                   uint32_t max)
{
    lkd_fp_buf_t b = {buf, buf + max};
    if (max)
        lkd_fp_visit(fp, lo, hi, lkd_fp_store, &b);
    return (uint32_t)(b.at - buf);
}

#endif
