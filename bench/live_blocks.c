/*
 * live_blocks - holds N small heap blocks live at once, to measure what a tracker costs per
 * live block and how large and fast its snapshot of them is.
 *
 * Usage: live_blocks N
 *
 * Allocates N + N/4 blocks of 16 to 96 bytes from four call sites in a pseudo-random but
 * fixed order, frees N/4 of them picked the same way (so the heap has holes, as real heaps
 * do), then prints two numbers and exits without freeing the N that are left:
 *   rss_kb=<VmRSS of this process, from /proc/self/status, with the N blocks live>
 *   exit_ns=<CLOCK_MONOTONIC just before main returns>
 * bench.py subtracts the bare RSS from the RSS under a tracker (tracker bytes per block), and
 * takes the time from exit_ns to the process's end as the cost of the exit snapshot.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* noipa and a store after the call: each site stays a frame of its own (no tail call). */
#define NOIPA __attribute__((noipa))

static void **blocks;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

NOIPA static void site_small(size_t i, uint64_t r) { blocks[i] = malloc(16 + r % 16); }
NOIPA static void site_medium(size_t i, uint64_t r) { blocks[i] = malloc(32 + r % 32); }
NOIPA static void site_large(size_t i, uint64_t r) { blocks[i] = malloc(64 + r % 33); }
NOIPA static void site_zeroed(size_t i, uint64_t r) { blocks[i] = calloc(1, 24 + r % 8); }

static long rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    size_t total = n + n / 4, to_free = n / 4;
    void (*const sites[4])(size_t, uint64_t) = {site_small, site_medium, site_large,
                                                site_zeroed};
    struct timespec ts;

    blocks = malloc(total * sizeof *blocks);
    if (!blocks)
        return 1;
    for (size_t i = 0; i < total; i++) {
        uint64_t r = rng();
        sites[r % 4](i, r >> 8);
        if (!blocks[i])
            return 1;
        memset(blocks[i], 1, 16);
    }
    /* Free N/4 blocks: every one the generator picks (1 in 5) until enough are gone. */
    for (size_t i = 0; i < total && to_free; i++) {
        if (rng() % 5 == 0) {
            free(blocks[i]);
            blocks[i] = NULL;
            to_free--;
        }
    }
    for (size_t i = total; i-- > 0 && to_free;) {
        if (blocks[i]) {
            free(blocks[i]);
            blocks[i] = NULL;
            to_free--;
        }
    }
    printf("rss_kb=%ld\n", rss_kb());
    fflush(stdout);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    printf("exit_ns=%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    return 0;
}
