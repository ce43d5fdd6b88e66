/*
 * leakdiff.h - the program API of leakdiff: take snapshots, pause and resume tracing, and
 * read the traced memory from inside a program, like Python's tracemalloc.
 *
 * Every call works whether or not the leakdiff shim is loaded. These are static inline
 * wrappers that look the shim's functions up at run time (dlsym, once per call site's
 * translation unit), so a program compiled against this header links and runs unchanged
 * without leakdiff: the calls then do nothing and say so by their return value (-ENOSYS,
 * or 0 for leakdiff_is_tracing). No library to link; glibc >= 2.34 has dlsym in libc
 * (older glibc: link with -ldl).
 *
 * Snapshots are written to $LEAKDIFF_OUTPUT as <exe>.<pid>.<seq>.<label>.snap and read with
 * the `leakdiff` command (top, diff, info). From Python (under the shim), the same functions
 * are reachable through ctypes: ctypes.CDLL(None).leakdiff_snapshot(b"label").
 */
#ifndef LEAKDIFF_H
#define LEAKDIFF_H

#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*leakdiff_label_fn_)(const char *);
typedef int (*leakdiff_void_fn_)(void);
typedef int (*leakdiff_memory_fn_)(size_t *, size_t *);

/* The shim's exported function name, looked up once per call site's translation unit;
 * NULL when the shim is not loaded. */
static inline void *leakdiff_lookup_(const char *name, void **slot, int *done)
{
    if (!*done) {
        *slot = dlsym(RTLD_DEFAULT, name);
        *done = 1;
    }
    return *slot;
}

#define LEAKDIFF_RESOLVE_(type, name)                                                              \
    static void *slot_;                                                                            \
    static int done_;                                                                              \
    void *sym_ = leakdiff_lookup_(name, &slot_, &done_);                                           \
    type fn_;                                                                                      \
    __builtin_memcpy(&fn_, &sym_, sizeof fn_); /* POSIX: dlsym's result is callable */

/*
 * leakdiff_snapshot - writes a snapshot of every live traced block now.
 *
 * label names the file (<exe>.<pid>.<seq>.<label>.snap); characters other than letters,
 * digits, '.', '-' and '_' become '_', it is cut to 63 characters, and NULL or "" become
 * "snapshot", so a label can never name a path outside the output directory.
 * Returns 0, or -errno (-ENOSYS without the shim; the write's error otherwise, e.g.
 * -ENOSPC, in which case no partial file is left behind).
 */
static inline int leakdiff_snapshot(const char *label)
{
    LEAKDIFF_RESOLVE_(leakdiff_label_fn_, "leakdiff_snapshot")
    return fn_ ? fn_(label) : -ENOSYS;
}

/*
 * leakdiff_start - records new allocations from now on (the default unless the process
 * started with LEAKDIFF_START=0). Returns 0, or -ENOSYS without the shim.
 */
static inline int leakdiff_start(void)
{
    LEAKDIFF_RESOLVE_(leakdiff_void_fn_, "leakdiff_start")
    return fn_ ? fn_() : -ENOSYS;
}

/*
 * leakdiff_stop - stops recording new allocations. Unlike tracemalloc.stop(), which clears
 * its traces, the blocks already recorded are kept, and their frees are still processed,
 * so every figure stays right: a later snapshot shows what was allocated while tracing
 * and is still alive. Returns 0, or -ENOSYS without the shim.
 */
static inline int leakdiff_stop(void)
{
    LEAKDIFF_RESOLVE_(leakdiff_void_fn_, "leakdiff_stop")
    return fn_ ? fn_() : -ENOSYS;
}

/* leakdiff_is_tracing - 1 while new allocations are recorded; 0 when stopped or without
 * the shim. */
static inline int leakdiff_is_tracing(void)
{
    LEAKDIFF_RESOLVE_(leakdiff_void_fn_, "leakdiff_is_tracing")
    return fn_ ? fn_() : 0;
}

/*
 * leakdiff_traced_memory - bytes in traced blocks now, and the highest value since start
 * or leakdiff_reset_peak (as tracemalloc.get_traced_memory). With several threads, each
 * thread may hold back up to 64 KiB of its changes, so both may be low by that much per
 * thread; with one thread they are exact. Either pointer may be NULL.
 * Returns 0, or -ENOSYS without the shim (then both are set to 0).
 */
static inline int leakdiff_traced_memory(size_t *current, size_t *peak)
{
    LEAKDIFF_RESOLVE_(leakdiff_memory_fn_, "leakdiff_traced_memory")
    if (fn_)
        return fn_(current, peak);
    if (current)
        *current = 0;
    if (peak)
        *peak = 0;
    return -ENOSYS;
}

/* leakdiff_reset_peak - sets the peak to the current traced bytes (as
 * tracemalloc.reset_peak). Returns 0, or -ENOSYS without the shim. */
static inline int leakdiff_reset_peak(void)
{
    LEAKDIFF_RESOLVE_(leakdiff_void_fn_, "leakdiff_reset_peak")
    return fn_ ? fn_() : -ENOSYS;
}

#undef LEAKDIFF_RESOLVE_

#ifdef __cplusplus
}
#endif

#endif /* LEAKDIFF_H */
