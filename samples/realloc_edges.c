/* realloc_edges: the corner cases of realloc and friends, each in its own function, with
 * glibc 2.36's semantics. A block that a realloc moved or resized belongs to the function
 * that called realloc last (as in valgrind and tracemalloc: realloc is a new allocation).
 *
 *   edge_realloc_null     realloc(NULL, 100) acts as malloc(100): kept      100 B, 1 block
 *   edge_realloc_zero     realloc(p, 0) frees p in glibc and returns NULL     0 B
 *   edge_grow_start       malloc(10), then handed to edge_grow_shrink         0 B
 *   edge_grow_shrink      realloc of that block to 100,000 (moves it), then
 *                         back down to 200, then to 200 again: kept         200 B, 1 block
 *   edge_failed_realloc   malloc(64), then realloc(p, 2^48-1) fails (ENOMEM)
 *                         and leaves the old block in place: kept            64 B, 1 block
 *   edge_reallocarray     reallocarray(NULL, 10, 24), grown to (20, 24); an
 *                         overflowing reallocarray(p, SIZE_MAX, 2) fails
 *                         and leaves it alone: kept                         480 B, 1 block
 *   edge_calloc           calloc(7, 9) kept; calloc(SIZE_MAX, 2) fails       63 B, 1 block
 *   edge_malloc_zero      malloc(0) kept alive: a block of 0 bytes            0 B, 1 block
 *   edge_free_null        free(NULL), realloc(NULL, 0) freed again            0 B
 *
 * It exits 0 when every call returned what glibc documents (NULL and errno ENOMEM for the
 * failures); a tool that clobbers errno or a result makes it exit 1.
 *
 * EXPECT total bytes=907 blocks=6
 * EXPECT site function=edge_realloc_null bytes=100 blocks=1
 * EXPECT site function=edge_grow_shrink bytes=200 blocks=1
 * EXPECT site function=edge_failed_realloc bytes=64 blocks=1
 * EXPECT site function=edge_reallocarray bytes=480 blocks=1
 * EXPECT site function=edge_calloc bytes=63 blocks=1
 * EXPECT site function=edge_malloc_zero bytes=0 blocks=1
 * EXPECT other bytes=0 blocks=0
 */
#define _GNU_SOURCE /* reallocarray */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SITE __attribute__((noipa))

static void *volatile kept[8];
/* Read at run time, so the compiler neither warns about nor folds the impossible sizes. */
static volatile size_t huge = SIZE_MAX;

static int failures;

/* Counts a case that did not behave as glibc documents; main then exits 1. It does not stop
 * the program, so the figures above hold either way (valgrind, for one, does not set errno
 * when its calloc fails). */
static void check(int ok)
{
    if (!ok)
        failures++;
}

SITE static void edge_realloc_null(void)
{
    kept[0] = realloc(NULL, 100);
    check(kept[0] != NULL);
}

SITE static void edge_realloc_zero(void)
{
    void *p = malloc(50);
    check(p != NULL);
    kept[1] = p;
    /* glibc frees p and returns NULL (REALLOC_ZERO_BYTES_FREES). */
    check(realloc(kept[1], 0) == NULL);
    kept[1] = NULL;
}

SITE static void *edge_grow_start(void)
{
    char *p = malloc(10);
    check(p != NULL);
    memcpy(p, "123456789", 10);
    kept[2] = p;
    return kept[2];
}

SITE static void edge_grow_shrink(void *p)
{
    p = realloc(p, 100000);
    check(p != NULL && memcmp(p, "123456789", 10) == 0);
    p = realloc(p, 200);
    check(p != NULL && memcmp(p, "123456789", 10) == 0);
    p = realloc(p, 200);
    check(p != NULL);
    kept[2] = p;
}

SITE static void edge_failed_realloc(void)
{
    void *p = malloc(64);
    check(p != NULL);
    kept[3] = p;
    errno = 0;
    check(realloc(kept[3], huge >> 16) == NULL && errno == ENOMEM);
}

SITE static void edge_reallocarray(void)
{
    void *p = reallocarray(NULL, 10, 24);
    check(p != NULL);
    p = reallocarray(p, 20, 24);
    check(p != NULL);
    kept[4] = p;
    errno = 0;
    check(reallocarray(kept[4], huge, 2) == NULL && errno == ENOMEM);
}

SITE static void edge_calloc(void)
{
    kept[5] = calloc(7, 9);
    check(kept[5] != NULL);
    errno = 0;
    check(calloc(huge, 2) == NULL && errno == ENOMEM);
}

SITE static void edge_malloc_zero(void)
{
    kept[6] = malloc(0);
    check(kept[6] != NULL);
}

SITE static void edge_free_null(void)
{
    free(NULL);
    /* realloc(NULL, 0) is malloc(0): a real block, freed here. */
    kept[7] = realloc(NULL, 0);
    check(kept[7] != NULL);
    free(kept[7]);
    kept[7] = NULL;
}

int main(void)
{
    edge_realloc_null();
    edge_realloc_zero();
    edge_grow_shrink(edge_grow_start());
    edge_failed_realloc();
    edge_reallocarray();
    edge_calloc();
    edge_malloc_zero();
    edge_free_null();
    return failures ? 1 : 0;
}
