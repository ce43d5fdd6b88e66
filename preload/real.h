/*
 * real - the allocator the hooks forward to, called without recursion.
 *
 * glibc exports __libc_malloc and friends; calling them directly avoids the dlsym ->
 * calloc bootstrap loop. posix_memalign and aligned_alloc have no __libc_ alias and are
 * implemented on __libc_memalign with glibc 2.36's own argument checks.
 */
#ifndef LKD_REAL_H
#define LKD_REAL_H

#include <stddef.h>

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void __libc_free(void *ptr);
void *__libc_memalign(size_t alignment, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);

#define lkd_real_malloc __libc_malloc
#define lkd_real_calloc __libc_calloc
#define lkd_real_realloc __libc_realloc
#define lkd_real_free __libc_free
#define lkd_real_memalign __libc_memalign
#define lkd_real_valloc __libc_valloc
#define lkd_real_pvalloc __libc_pvalloc

int lkd_real_posix_memalign(void **out, size_t alignment, size_t size);
void *lkd_real_aligned_alloc(size_t alignment, size_t size);

#endif
