/*
 * fp_walk - the frame-pointer walk of LEAKDIFF_UNWIND=fp, header-only so that the shim
 * (stack.c) and the benchmark's floor (bench/unwind_floor.c, which must not link the shim)
 * run the very same walk. Never calls malloc, except pthread_getattr_np in lkd_fp_bounds
 * (it reads /proc/self/maps for the main thread): callers hold their reentrancy guard.
 */
#ifndef LKD_FP_WALK_H
#define LKD_FP_WALK_H

#include <pthread.h>
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

/* Up to max return addresses from the frame fp up the chain; stops at the first frame that
 * does not look like one (code built without frame pointers): outside [lo, hi), misaligned,
 * a zero return address, or not moving up the stack. */
static inline uint32_t lkd_fp_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, void **buf,
                                   uint32_t max)
{
    uint32_t n = 0;
    /* One unsigned comparison for lo <= fp && fp + 16 <= hi, so that a wild rbp such as -16
     * cannot wrap around it (fp + 16 would). */
    if (hi - lo < 16)
        return 0;
    uintptr_t span = hi - lo - 16;
    while (n < max && fp - lo <= span && !(fp & 7)) {
        uintptr_t next = ((uintptr_t *)fp)[0], ret = ((uintptr_t *)fp)[1];
        if (!ret)
            break;
        buf[n++] = (void *)ret;
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

#endif
