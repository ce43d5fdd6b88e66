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

/* A walk up the frame-pointer chain. It stops at the first frame that does not look like
 * one (code built without frame pointers): outside the stack, misaligned, a zero return
 * address, or not moving up the stack. */
typedef struct lkd_fp_cursor {
    uintptr_t fp, prev; /* the next frame, and the one before it (0 at the start) */
    uintptr_t lo, span; /* fp is in the stack when lo <= fp && fp + 16 <= hi */
} lkd_fp_cursor_t;

/* Starts at frame fp of a stack [lo, hi); false when the bounds leave no frame to walk. */
static inline bool lkd_fp_start(lkd_fp_cursor_t *c, uintptr_t fp, uintptr_t lo, uintptr_t hi)
{
    if (hi - lo < 16)
        return false;
    c->fp = fp;
    c->prev = 0;
    c->lo = lo;
    c->span = hi - lo - 16;
    return true;
}

/* The next return address up the chain, or 0 when the walk is over. One unsigned
 * comparison checks lo <= fp && fp + 16 <= hi, so that a wild rbp such as -16 cannot wrap
 * around it (fp + 16 would); a frame that does not move up the stack is not followed. The
 * checks are branches, off the chain of loads: choosing the next frame with a conditional
 * move put two cycles per frame on it (perf: a fifth of the fp loop's time was the walk). */
static inline uintptr_t lkd_fp_next(lkd_fp_cursor_t *c)
{
    uintptr_t fp = c->fp;
    if (fp <= c->prev || fp - c->lo > c->span || (fp & 7))
        return 0;
    c->prev = fp;
    c->fp = ((uintptr_t *)fp)[0];
    return ((uintptr_t *)fp)[1];
}

/* Up to max return addresses from the frame fp up the chain. */
static inline uint32_t lkd_fp_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, void **buf,
                                   uint32_t max)
{
    lkd_fp_cursor_t c;
    uint32_t n = 0;
    uintptr_t ret;
    if (!lkd_fp_start(&c, fp, lo, hi))
        return 0;
    while (n < max && (ret = lkd_fp_next(&c)))
        buf[n++] = (void *)ret;
    return n;
}

#endif
