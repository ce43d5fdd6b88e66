/*
 * unwind_floor - the floor under leakdiff's full mode, used by bench.py: an LD_PRELOAD
 * library that does on each allocation only what no stack-recording tracker can skip, and
 * nothing else: interpose the allocator and walk the stack (into a buffer that is thrown
 * away, or in the default mode cfi.c's walk alone: the shim writes a stack out only when its
 * transitions do not know it). No table, no stack interning, no counters, no snapshot. Not
 * part of leakdiff.
 *
 *   UNWIND_FLOOR_DEPTH=N  frames of the program to capture, 0 to 256 (default 64, leakdiff's
 *                         default LEAKDIFF_DEPTH); 0 measures the interposition alone
 *   UNWIND_FLOOR_FP=1     walk the frame-pointer chain as LEAKDIFF_UNWIND=fp does (the
 *                         shim's own walk, preload/fp_walk.h)
 *   UNWIND_FLOOR_LIBUNWIND=1  libunwind's unw_backtrace alone, instead of the default mode's
 *                         unwinder (preload/cfi.c, compiled in, with unw_backtrace for what it
 *                         leaves, as in the shim)
 *
 * Hooks what the shim hooks to see allocations (preload/intercept.c), valloc and pvalloc
 * included (glibc does not route them through malloc), but reallocarray, which glibc builds
 * on the realloc hook. Forwards to glibc's __libc_* entry points (no dlsym, so no bootstrap
 * recursion). Like the shim, it initialises on first use and loads libunwind privately
 * (dlopen, RTLD_LOCAL); allocations made on its behalf (by the loader, libunwind,
 * pthread_getattr_np) and those of other threads meanwhile pass straight through. The fp
 * and cfi.c walks start at the hook's frame, as the shim's do, and walk depth frames of the
 * program; libunwind walks this library's frames as well, as in the shim. A bad
 * variable or a missing libunwind ends the process with a message (exit status 127), so the
 * bench cannot report a floor that was not measured.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../preload/cfi.h"
#include "../preload/fp_walk.h"

#define MAX_DEPTH 256 /* LKD_FMT_MAX_DEPTH */
/* Frames of this library unw_backtrace sees (it starts from its caller): capture() and the
 * hook. */
#define OWN_FRAMES 2
#define TLS __thread __attribute__((tls_model("initial-exec"))) /* never allocates */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
extern void __libc_free(void *);

enum { ST_UNINIT, ST_INIT, ST_READY };

static atomic_int state;
static int depth, fp_mode, libunwind_mode; /* written before state turns ST_READY */
static int (*backtrace_fn)(void **, int);
static TLS int busy;
static TLS uintptr_t stack_lo, stack_hi; /* this thread's stack, for the fp walk */
/* The rule cache the shim gives cfi.c's walk per thread (static TLS here: the bench's
 * threads have the default stacks) */
static TLS _Alignas(64) unsigned char rule_cache[LKD_CFI_CACHE_BYTES];

__attribute__((noreturn)) static void fail(const char *what, const char *value)
{
    const char *parts[] = {"unwind_floor: ", what, value, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (write(2, parts[i], strlen(parts[i])) < 0)
            break;
    _exit(127);
}

/* This library's address range, for cfi.c (which walks out of it, as out of the shim). */
static int find_self(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    uintptr_t self = (uintptr_t)ctx, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t s = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD) {
            lo = s < lo ? s : lo;
            hi = s + ph->p_memsz > hi ? s + ph->p_memsz : hi;
        }
    }
    if (self < lo || self >= hi)
        return 0;
    lkd_cfi_init(lo, hi);
    return 1;
}

/* First use: reads the variables and loads libunwind. The first thread to come does it;
 * false for the others while it works. */
__attribute__((noinline, cold)) static int init(void)
{
    int expected = ST_UNINIT;
    if (!atomic_compare_exchange_strong(&state, &expected, ST_INIT))
        return expected == ST_READY;
    busy = 1;
    const char *s = getenv("UNWIND_FLOOR_DEPTH"), *f = getenv("UNWIND_FLOOR_FP"),
               *u = getenv("UNWIND_FLOOR_LIBUNWIND");
    depth = 64;
    if (s) {
        char *end;
        errno = 0;
        long d = strtol(s, &end, 10);
        if (errno || end == s || *end || d < 0 || d > MAX_DEPTH)
            fail("UNWIND_FLOOR_DEPTH is not a number from 0 to 256: ", s);
        depth = (int)d;
    }
    fp_mode = f && *f && strcmp(f, "0") != 0;
    libunwind_mode = u && *u && strcmp(u, "0") != 0;
    dl_iterate_phdr(find_self, (void *)(uintptr_t)&init);
    if (depth && !fp_mode) {
        void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
        if (h)
            *(void **)&backtrace_fn = dlsym(h, "unw_backtrace");
        if (!backtrace_fn) {
            const char *err = dlerror();
            fail("cannot load unw_backtrace from libunwind.so.8: ", err ? err : "?");
        }
    }
    atomic_store_explicit(&state, ST_READY, memory_order_release);
    busy = 0;
    return 1;
}

/* The frame-pointer walk preload/stack.c's fp_capture makes (preload/fp_walk.h's
 * lkd_fp_visit) from the hook's frame fp, into a buffer; bounds learned once
 * (pthread_getattr_np may allocate: the caller holds busy). */
__attribute__((noinline)) static int fp_walk(uintptr_t fp, void **buf, int max)
{
    if (__builtin_expect(!stack_hi, 0))
        lkd_fp_bounds(&stack_lo, &stack_hi);
    return (int)lkd_fp_walk(fp, stack_lo, stack_hi, buf, (uint32_t)max);
}

/* The default mode's walk from the hook's frame fp, as preload/stack.c's: cfi.c, or
 * unw_backtrace when it cannot. */
__attribute__((noinline)) static void cfi_walk(uintptr_t fp, void **buf, int max)
{
    lkd_cfi_walk_t w;
    if (__builtin_expect(!stack_hi, 0))
        lkd_fp_bounds(&stack_lo, &stack_hi);
    if (lkd_cfi_walk(fp, stack_lo, stack_hi, (uint32_t)depth, rule_cache, &w) < 0)
        backtrace_fn(buf, max);
}

/* The stack of the allocation, thrown away, from the hook's frame fp (as the shim's walks
 * start: preload/intercept.c). Out of line, as the shim's recording is. */
__attribute__((noinline)) static void capture(uintptr_t fp)
{
    void *buf[MAX_DEPTH + OWN_FRAMES];
    if (busy)
        return;
    int st = atomic_load_explicit(&state, memory_order_acquire);
    if (__builtin_expect(st != ST_READY, 0) && !(st == ST_UNINIT && init()))
        return;
    if (!depth)
        return;
    busy = 1;
    if (fp_mode)
        fp_walk(fp, buf, depth);
    else if (libunwind_mode || depth > LKD_CFI_MAX_DEPTH)
        backtrace_fn(buf, depth + OWN_FRAMES);
    else
        cfi_walk(fp, buf, depth + OWN_FRAMES);
    busy = 0;
}

/* Inlined into every hook, so that capture() is always called from the hook's own frame,
 * and given it. */
static inline __attribute__((always_inline)) void *done(void *p)
{
    if (__builtin_expect(p != NULL, 1))
        capture((uintptr_t)__builtin_frame_address(0));
    return p;
}

void *malloc(size_t n)
{
    return done(__libc_malloc(n));
}

void *calloc(size_t n, size_t s)
{
    return done(__libc_calloc(n, s));
}

/* realloc(p, 0) frees p and returns NULL: nothing to capture. */
void *realloc(void *p, size_t n)
{
    return done(__libc_realloc(p, n));
}

void *memalign(size_t a, size_t n)
{
    return done(__libc_memalign(a, n));
}

/* glibc 2.36's aligned_alloc is memalign. */
void *aligned_alloc(size_t a, size_t n)
{
    return done(__libc_memalign(a, n));
}

void *valloc(size_t n)
{
    return done(__libc_valloc(n));
}

void *pvalloc(size_t n)
{
    return done(__libc_pvalloc(n));
}

/* glibc's checks: a power of two, a multiple of sizeof(void *); *out untouched on failure. */
int posix_memalign(void **out, size_t a, size_t n)
{
    if (a == 0 || a % sizeof(void *) != 0 || (a & (a - 1)) != 0)
        return EINVAL;
    void *p = done(__libc_memalign(a, n));
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    __libc_free(p);
}
