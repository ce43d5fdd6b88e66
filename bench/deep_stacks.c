/*
 * deep_stacks - malloc/free microbenchmark with deep, varied call stacks, several threads.
 *
 * Usage: deep_stacks [THREADS [PAIRS_PER_THREAD]]   (default 2 threads x 4,000,000 pairs)
 *
 * Each iteration descends through a chain of 11 to 18 non-inlinable functions (alternating
 * between two of them according to the iteration number, so there are a few hundred
 * distinct stacks), mallocs 16-271 bytes at the bottom and frees the block allocated 256
 * iterations earlier on the same thread - short but not immediate lifetimes. Counting the
 * worker and the thread start-up frames, allocations happen 14 to 21 frames deep. Prints a
 * checksum so the work cannot be optimized away; the output is the same under any tracker.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NOIPA __attribute__((noipa))
#define RING 256

typedef struct worker {
    void *ring[RING];
    unsigned pos;
    unsigned long pairs;
    uint64_t sum;
} worker_t;

static uint64_t chain_a(worker_t *w, int depth, unsigned pattern, unsigned size);
static uint64_t chain_b(worker_t *w, int depth, unsigned pattern, unsigned size);

/* The bottom of the chain: one malloc, one free of a block from 256 iterations ago. */
NOIPA static uint64_t leaf(worker_t *w, unsigned size)
{
    unsigned char *p = malloc(size);
    if (!p)
        abort();
    p[0] = (unsigned char)size;
    free(w->ring[w->pos]);
    w->ring[w->pos] = p;
    w->pos = (w->pos + 1) % RING;
    return (uintptr_t)p[0];
}

/* One step down: which function comes next depends on the low bit of the pattern. The
 * addition after the call keeps it from being a tail call (a frame is a frame). */
static inline uint64_t step(worker_t *w, int depth, unsigned pattern, unsigned size)
{
    if (depth == 0)
        return leaf(w, size) + 1;
    return (pattern & 1) ? chain_a(w, depth - 1, pattern >> 1, size) + 1
                         : chain_b(w, depth - 1, pattern >> 1, size) + 2;
}

/* The empty asm hides the result from the compiler: without it GCC turns a function's calls
 * to itself (chain_a to chain_a) into a loop, multiplying as it goes (tail recursion with an
 * accumulator), and a run of one letter in the pattern was one frame, not many. */
#define OPAQUE(x) __asm__ volatile("" : "+r"(x))

NOIPA static uint64_t chain_a(worker_t *w, int depth, unsigned pattern, unsigned size)
{
    uint64_t r = step(w, depth, pattern, size);
    OPAQUE(r);
    return r * 3;
}

NOIPA static uint64_t chain_b(worker_t *w, int depth, unsigned pattern, unsigned size)
{
    uint64_t r = step(w, depth, pattern, size);
    OPAQUE(r);
    return r * 5;
}

NOIPA static void *run_worker(void *arg)
{
    worker_t *w = arg;
    for (unsigned long i = 0; i < w->pairs; i++) {
        unsigned depth = 10 + (unsigned)(i % 8);            /* 11..18 chain frames */
        unsigned pattern = (unsigned)((i / 8) % 32);        /* 32 shapes per depth */
        unsigned size = 16 + ((uint32_t)i * 2654435761u >> 24);   /* 16..271 bytes */
        w->sum += chain_a(w, (int)depth, pattern, size);
    }
    for (unsigned i = 0; i < RING; i++)
        free(w->ring[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    unsigned long pairs = argc > 2 ? strtoul(argv[2], NULL, 10) : 4000000;
    uint64_t sum = 0;

    if (threads < 1 || threads > 64)
        threads = 2;
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    worker_t *w = calloc((size_t)threads, sizeof *w);
    if (!tid || !w)
        return 1;
    for (int t = 0; t < threads; t++) {
        w[t].pairs = pairs;
        if (pthread_create(&tid[t], NULL, run_worker, &w[t]) != 0)
            return 1;
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        sum += w[t].sum;
    }
    printf("deep_stacks: %d threads x %lu malloc/free pairs, checksum %llu\n", threads, pairs,
           (unsigned long long)sum);
    free(w);
    free(tid);
    return 0;
}
