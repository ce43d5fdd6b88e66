/* aligned: every aligned-allocation function of glibc, each from its own function; each
 * keeps one block and frees a second one, and each result is checked for its alignment.
 *
 * The size recorded for a block is the size the program asked for - also for pvalloc,
 * which hands out whole pages (pvalloc(5000) returns 8,192 usable bytes; we count 5,000).
 * valgrind 3.19 records requested sizes too, but aborts the program at any call to pvalloc;
 * so under valgrind (only) use_pvalloc calls memalign(page, n) instead, which valgrind records
 * identically (n bytes, 1 block): the totals below equal its "in use at exit".
 *
 *   use_posix_memalign   posix_memalign(&p, 64, 100)      100 B; alignment 3 -> EINVAL
 *   use_aligned_alloc    aligned_alloc(256, 512)           512 B
 *   use_memalign         memalign(4096, 1000)            1,000 B
 *   use_valloc           valloc(3000)                    3,000 B  (page aligned)
 *   use_pvalloc          pvalloc(5000)                   5,000 B  (page aligned, 2 pages)
 *
 * It exits 0 when every result is aligned as asked and the invalid alignment is refused.
 *
 * EXPECT total bytes=9612 blocks=5
 * EXPECT site function=use_posix_memalign bytes=100 blocks=1
 * EXPECT site function=use_aligned_alloc bytes=512 blocks=1
 * EXPECT site function=use_memalign bytes=1000 blocks=1
 * EXPECT site function=use_valloc bytes=3000 blocks=1
 * EXPECT site function=use_pvalloc bytes=5000 blocks=1
 * EXPECT other bytes=0 blocks=0
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h> /* RUNNING_ON_VALGRIND: a no-op instruction sequence natively */
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define SITE __attribute__((noipa))

static void *volatile kept[5];
static int failures;
static size_t page;

/* Counts a misaligned (or NULL) result; main exits 1 if there was any. */
static void *aligned_or_count(void *p, size_t alignment)
{
    if (!p || (uintptr_t)p % alignment != 0)
        failures++;
    return p;
}

SITE static void use_posix_memalign(void)
{
    void *p = NULL, *q = NULL;
    if (posix_memalign(&p, 64, 100) != 0)
        failures++;
    kept[0] = aligned_or_count(p, 64);
    if (posix_memalign(&q, 64, 300) != 0)
        failures++;
    free(aligned_or_count(q, 64));
    q = NULL;
    if (posix_memalign(&q, 3, 100) != EINVAL || q != NULL)
        failures++;
}

SITE static void use_aligned_alloc(void)
{
    kept[1] = aligned_or_count(aligned_alloc(256, 512), 256);
    free(aligned_or_count(aligned_alloc(1024, 1024), 1024));
}

SITE static void use_memalign(void)
{
    kept[2] = aligned_or_count(memalign(4096, 1000), 4096);
    free(aligned_or_count(memalign(32, 77), 32));
}

SITE static void use_valloc(void)
{
    kept[3] = aligned_or_count(valloc(3000), page);
    free(aligned_or_count(valloc(10), page));
}

/* Under valgrind, which aborts on pvalloc, memalign(page, n): the block it records for it. */
SITE static void use_pvalloc(void)
{
    int vg = RUNNING_ON_VALGRIND;
    kept[4] = aligned_or_count(vg ? memalign(page, 5000) : pvalloc(5000), page);
    free(aligned_or_count(vg ? memalign(page, 1) : pvalloc(1), page));
}

int main(void)
{
    page = (size_t)sysconf(_SC_PAGESIZE);
    use_posix_memalign();
    use_aligned_alloc();
    use_memalign();
    use_valloc();
    use_pvalloc();
    return failures ? 1 : 0;
}
