/*
 * real - allocator entry points without a __libc_ alias, built on __libc_memalign.
 *
 * The argument checks are glibc 2.36's (malloc/malloc.c), so a program sees the same
 * errors with and without the shim.
 */
#include "real.h"

#include <errno.h>
#include <stdint.h>

/* lkd_real_posix_memalign - as posix_memalign(3): 0, EINVAL or ENOMEM; errno untouched. */
int lkd_real_posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0)
        return EINVAL;
    int saved = errno;
    void *p = __libc_memalign(alignment, size);
    errno = saved;
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

/* lkd_real_aligned_alloc - as aligned_alloc(3) in glibc 2.36, which accepts any alignment
 * (memalign rounds it up to a power of two). */
void *lkd_real_aligned_alloc(size_t alignment, size_t size)
{
    return __libc_memalign(alignment, size);
}
