/* sampled_mix: many blocks of known sizes from four sites, for the sampled mode
 * (LEAKDIFF_SAMPLE; tests/e2e/test_sample.py checks its estimates against these figures).
 *
 * keep_small keeps 20,000 blocks of 32 bytes (malloc): 640,000 B. keep_medium keeps 2,000
 * blocks of 1,000 bytes (calloc(10, 100)): 2,000,000 B. keep_large keeps 50 blocks of
 * 100,000 bytes (malloc): 5,000,000 B. grow_buffers keeps 1,000 blocks that each start as
 * malloc(16) and are realloc'd to 256 and then to 4,096 bytes: 4,096,000 B (a realloc is a
 * new allocation, so the blocks belong to grow_buffers). churn allocates and frees 100,000
 * blocks of 64 bytes, so that a sampled run has many frees of blocks it never recorded.
 * Every kept block stays reachable from a global array (no leaks, for valgrind either).
 * The program uses no stdio, so "other" is empty.
 *
 * EXPECT total bytes=11736000 blocks=23050
 * EXPECT site function=keep_small bytes=640000 blocks=20000
 * EXPECT site function=keep_medium bytes=2000000 blocks=2000
 * EXPECT site function=keep_large bytes=5000000 blocks=50
 * EXPECT site function=grow_buffers bytes=4096000 blocks=1000
 * EXPECT other bytes=0 blocks=0
 */
#include <stdlib.h>

/* noipa: keeps each site a real frame with its own name (see simple_leak.c). */
#define SITE __attribute__((noipa))

#define SMALL 20000
#define MEDIUM 2000
#define LARGE 50
#define GROWN 1000
#define CHURN 100000

/* volatile, so that the compiler keeps every allocation and store */
static void *volatile kept[SMALL + MEDIUM + LARGE + GROWN];
static void *volatile scratch;

SITE static void keep_small(size_t at)
{
    for (size_t i = 0; i < SMALL; i++)
        kept[at + i] = malloc(32);
}

SITE static void keep_medium(size_t at)
{
    for (size_t i = 0; i < MEDIUM; i++)
        kept[at + i] = calloc(10, 100);
}

SITE static void keep_large(size_t at)
{
    for (size_t i = 0; i < LARGE; i++)
        kept[at + i] = malloc(100000);
}

SITE static void grow_buffers(size_t at)
{
    for (size_t i = 0; i < GROWN; i++) {
        char *p = malloc(16), *q = p ? realloc(p, 256) : NULL, *r = q ? realloc(q, 4096) : NULL;
        if (!r)
            abort();
        kept[at + i] = r;
    }
}

SITE static void churn(void)
{
    for (size_t i = 0; i < CHURN; i++) {
        scratch = malloc(64);
        free(scratch);
    }
}

int main(void)
{
    keep_small(0);
    churn();
    keep_medium(SMALL);
    keep_large(SMALL + MEDIUM);
    grow_buffers(SMALL + MEDIUM + LARGE);
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        if (!kept[i])
            return 1;
    return 0;
}
