/*
 * intercept - the malloc-family entry points the target's calls bind to.
 *
 * Each hook is: gate (guard and state) -> real call -> record. No hashing, unwinding or
 * I/O here; track.c does the work out of line. A free is recorded before the real free
 * and an allocation only once it succeeded; a failed realloc puts the old record back.
 * valloc, pvalloc and the aligned functions are hooked because glibc does not route them
 * through malloc; reallocarray is implemented here on top of realloc, because glibc's own
 * calls realloc through the PLT and would be counted twice.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "control.h"
#include "real.h"
#include "track.h"

#define HOOK __attribute__((visibility("default")))

static inline void *record(void *p, size_t size)
{
    if (__builtin_expect(p != NULL, 1))
        lkd_track_alloc(p, size, 0);
    return p;
}

HOOK void *malloc(size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_malloc(size);
    return record(lkd_real_malloc(size), size);
}

HOOK void free(void *ptr)
{
    if (ptr && lkd_track_enter())
        lkd_track_free(ptr);
    lkd_real_free(ptr);
}

HOOK void *calloc(size_t n, size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_calloc(n, size);
    void *p = lkd_real_calloc(n, size);
    if (p) /* n * size cannot overflow: calloc would have failed */
        lkd_track_alloc(p, n * size, size);
    return p;
}

HOOK void *realloc(void *ptr, size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_realloc(ptr, size);
    if (!ptr)
        return record(lkd_real_realloc(NULL, size), size);
    lkd_block_t old;
    bool had = lkd_track_take(ptr, &old);
    void *p = lkd_real_realloc(ptr, size);
    if (!p && size) { /* failed: the old block is still the program's */
        if (had)
            lkd_track_restore(ptr, &old);
        return NULL;
    }
    return record(p, size); /* realloc(p, 0) freed p and returned NULL (glibc) */
}

HOOK void *reallocarray(void *ptr, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(ptr, total);
}

HOOK void *memalign(size_t alignment, size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_memalign(alignment, size);
    return record(lkd_real_memalign(alignment, size), size);
}

HOOK void *aligned_alloc(size_t alignment, size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_aligned_alloc(alignment, size);
    return record(lkd_real_aligned_alloc(alignment, size), size);
}

HOOK int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_posix_memalign(out, alignment, size);
    int err = lkd_real_posix_memalign(out, alignment, size);
    if (!err)
        record(*out, size);
    return err;
}

HOOK void *valloc(size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_valloc(size);
    return record(lkd_real_valloc(size), size);
}

/* pvalloc gives whole pages, but like every hook it records the size the program asked
 * for, as valgrind does, so figures compare one to one. */
HOOK void *pvalloc(size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_pvalloc(size);
    return record(lkd_real_pvalloc(size), size);
}

/* dlclose: the module map is brought up to date first, so a library that is about to be
 * unloaded is in it (with its path, bias and build-id) and its blocks still symbolize. */
HOOK int dlclose(void *handle)
{
    static int (*real_dlclose)(void *);
    if (!real_dlclose)
        *(void **)&real_dlclose = dlsym(RTLD_NEXT, "dlclose");
    if (atomic_load(&lkd_state) == LKD_ST_READY)
        lkd_track_before_dlclose();
    return real_dlclose ? real_dlclose(handle) : -1;
}

/* pthread_exit: when main() leaves this way, the process must still end with its last
 * thread, which the shim's writer thread would otherwise outlive (see control.c). */
HOOK void pthread_exit(void *ret)
{
    static void (*real_exit)(void *);
    if (!real_exit)
        *(void **)&real_exit = dlsym(RTLD_NEXT, "pthread_exit");
    if (getpid() == gettid() && atomic_load(&lkd_state) == LKD_ST_READY)
        lkd_control_main_exited();
    real_exit(ret);
    __builtin_unreachable();
}
