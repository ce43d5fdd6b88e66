/*
 * count_allocs - a tiny LD_PRELOAD library that counts allocator calls, used by bench.py to
 * report (and tune) how many calls each workload makes. Not part of leakdiff.
 *
 * Forwards to glibc's __libc_* entry points (no dlsym, so no bootstrap recursion) and counts
 * with relaxed atomics. At exit it appends one line to $COUNT_ALLOCS_OUTPUT:
 *   "<allocs> <frees>"  where allocs = malloc + calloc + realloc + aligned allocations
 * (realloc counts as one call) and frees = free calls with a non-NULL pointer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
extern void __libc_free(void *);

static atomic_ulong allocs, frees;

#define COUNT(c) atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)

void *malloc(size_t n) { COUNT(allocs); return __libc_malloc(n); }
void *calloc(size_t n, size_t s) { COUNT(allocs); return __libc_calloc(n, s); }
void *realloc(void *p, size_t n) { COUNT(allocs); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { COUNT(allocs); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { COUNT(allocs); return __libc_memalign(a, n); }
void *valloc(size_t n) { COUNT(allocs); return __libc_valloc(n); }
void *pvalloc(size_t n) { COUNT(allocs); return __libc_pvalloc(n); }

int posix_memalign(void **out, size_t a, size_t n)
{
    void *p;
    if (a % sizeof(void *) != 0 || (a & (a - 1)) != 0)
        return EINVAL;
    COUNT(allocs);
    p = __libc_memalign(a, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void free(void *p)
{
    if (p)
        COUNT(frees);
    __libc_free(p);
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("COUNT_ALLOCS_OUTPUT");
    char line[64];
    int fd, n;
    if (!path)
        return;
    n = snprintf(line, sizeof line, "%lu %lu\n", atomic_load(&allocs), atomic_load(&frees));
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (write(fd, line, (size_t)n) < 0) {
            /* nothing to do: the count is lost */
        }
        close(fd);
    }
}
