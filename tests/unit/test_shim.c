/*
 * Unit tests for the shim's core: the arena, the live-block table (alone and under
 * concurrent use), and stack interning. Linked without the hooks (intercept.c) and
 * without the lifecycle (track.c), so nothing here is traced.
 */
#include <alloca.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "stack.h"
#include "table.h"

Test(arena, zeroed_reused_and_large)
{
    size_t before = lkd_arena_mapped();
    unsigned char *a = lkd_arena_alloc(100);
    cr_assert_not_null(a);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(a[i], 0);
    memset(a, 0xab, 100);
    lkd_arena_free(a, 100);
    unsigned char *b = lkd_arena_alloc(120); /* same 128-byte class: reused, zeroed again */
    cr_assert_eq(b, a);
    for (int i = 0; i < 120; i++)
        cr_assert_eq(b[i], 0);
    size_t big = (size_t)3 << 20;
    unsigned char *c = lkd_arena_alloc(big);
    cr_assert_not_null(c);
    cr_assert_eq(c[big - 1], 0);
    cr_assert_geq(lkd_arena_mapped(), before + big);
    lkd_arena_free(c, big);
    unsigned char *d = lkd_arena_realloc(b, 120, 5000);
    cr_assert_not_null(d);
    cr_assert_eq(d[4999], 0);
}

Test(arena, size_classes_are_tight)
{
    cr_assert_eq(lkd_arena_class_size(0), 16);
    cr_assert_eq(lkd_arena_class_size(1), 24);
    cr_assert_eq(lkd_arena_class_size(2), 32);
    cr_assert_eq(lkd_arena_class_size(3), 48);
    for (size_t s = 1; s <= ((size_t)1 << 20); s += (s < 4096 ? 1 : 977)) {
        unsigned c = lkd_arena_class_of(s);
        cr_assert_geq(lkd_arena_class_size(c), s, "class of %zu too small", s);
        if (c)
            cr_assert_lt(lkd_arena_class_size(c - 1), s, "class of %zu not the smallest", s);
    }
    cr_assert_eq(lkd_arena_class_size(lkd_arena_class_of((size_t)1 << 20)), (size_t)1 << 20);
}

/* Blocks of whole cache lines start on one, carved after odd sizes, across the 4 MiB chunks
 * (whose tails go to the free lists) and reused from the free lists; so do
 * lkd_arena_alloc_lines' records. */
Test(arena, line_classes_on_lines)
{
    static void *kept[60000];
    const size_t odd[] = {24, 96, 16, 40}, lines[] = {64, 128, 192, 256, 384};
    for (size_t i = 0; i < 60000; i++) {
        cr_assert_not_null(lkd_arena_alloc(odd[i % 4]));
        size_t size = lines[i % 5];
        kept[i] = lkd_arena_alloc(size);
        cr_assert_not_null(kept[i]);
        cr_assert_eq((uintptr_t)kept[i] % 64, 0, "%zu bytes at %p", size, kept[i]);
    }
    for (size_t i = 0; i < 60000; i += 2)
        lkd_arena_free(kept[i], lines[i % 5]);
    for (size_t i = 0; i < 60000; i += 2)
        cr_assert_eq((uintptr_t)lkd_arena_alloc(lines[i % 5]) % 64, 0);
    for (size_t size = 1; size < 300; size += 23)
        cr_assert_eq((uintptr_t)lkd_arena_alloc_lines(size) % 64, 0, "%zu bytes", size);
}

/* The tail of a 4 MiB chunk (arena.c's CHUNK_SIZE), when a request of 96 bytes leaves it
 * with 88 bytes at an address off a line, goes to the free lists as a 64-byte piece only if
 * that piece starts on a line (here it does not: it is split smaller). */
Test(arena, chunk_tail_pieces_on_lines)
{
    cr_assert_not_null(lkd_arena_alloc(24)); /* a fresh arena: 24 bytes into its chunk */
    for (size_t k = 0; k < 87379; k++)       /* 4 MiB - 24 - 48k = 88 bytes left, off a line */
        cr_assert_not_null(lkd_arena_alloc(48));
    cr_assert_not_null(lkd_arena_alloc(96)); /* does not fit: a new chunk, the tail freed */
    for (int i = 0; i < 4; i++) {
        void *p = lkd_arena_alloc(64);
        cr_assert_eq((uintptr_t)p % 64, 0, "64 bytes at %p", p);
    }
}

static lkd_block_t blk(uint64_t size, uint32_t stack, uint64_t birth)
{
    return (lkd_block_t){size, birth, stack};
}

Test(table, insert_remove_replace)
{
    cr_assert(lkd_table_init());
    lkd_block_t b = blk(24, 7, 1), out, stale;
    bool replaced;
    uintptr_t addr = 0x5555aaaa0010;
    cr_assert(lkd_table_insert(addr, &b, &stale, &replaced));
    cr_assert_not(replaced);
    cr_assert_not(lkd_table_remove(addr + 16, &out), "a neighbour is not the block");
    lkd_block_t b2 = blk(48, 9, 2);
    cr_assert(lkd_table_insert(addr, &b2, &stale, &replaced));
    cr_assert(replaced, "re-inserting an address reports the stale record");
    cr_assert_eq(stale.size, 24);
    cr_assert(lkd_table_remove(addr, &out));
    cr_assert_eq(out.size, 48);
    cr_assert_eq(out.stack, 9);
    cr_assert_eq(out.birth, 2);
    cr_assert_not(lkd_table_remove(addr, &out), "removed twice");
}

Test(table, overflow_records)
{
    cr_assert(lkd_table_init());
    lkd_block_t huge = blk((uint64_t)5 << 32, 1, 3), odd = blk(10, 2, 4),
                late = blk(1, 3, (uint64_t)1 << 50);
    lkd_block_t out, stale;
    bool replaced;
    cr_assert(lkd_table_insert(0x7f0000001000, &huge, &stale, &replaced));
    cr_assert(lkd_table_insert(0x7f0000002008, &odd, &stale, &replaced)); /* not 16-aligned */
    cr_assert(lkd_table_insert(0x7f0000003000, &late, &stale, &replaced));
    lkd_table_lock_all();
    cr_assert_eq(lkd_table_count(), 3);
    lkd_fmt_block_t copy[3];
    cr_assert_eq(lkd_table_copy(copy, 3), 3);
    lkd_table_unlock_all();
    cr_assert_eq(copy[0].size, (uint64_t)5 << 32);
    cr_assert_eq(copy[1].address, 0x7f0000002008);
    cr_assert_eq(copy[2].birth, (uint64_t)1 << 50);
    cr_assert(lkd_table_remove(0x7f0000001000, &out));
    cr_assert_eq(out.size, (uint64_t)5 << 32);
    cr_assert(lkd_table_remove(0x7f0000002008, &out));
    cr_assert(lkd_table_remove(0x7f0000003000, &out));
}

/* Dense and strided heaps: 1 KiB strides collide on a naive hash; growth and shrinking. */
Test(table, many_blocks_sorted_copy)
{
    cr_assert(lkd_table_init());
    const size_t n = 200000;
    lkd_block_t stale, out;
    bool replaced;
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = 0x560000000000 + (i % 2 ? i * 32 : i * 1024 + 0x40000000);
        lkd_block_t b = blk(i, (uint32_t)(i % 77), i + 1);
        cr_assert(lkd_table_insert(a, &b, &stale, &replaced));
    }
    for (size_t i = 0; i < n; i += 4) {
        uintptr_t a = 0x560000000000 + (i % 2 ? i * 32 : i * 1024 + 0x40000000);
        cr_assert(lkd_table_remove(a, &out));
        cr_assert_eq(out.size, i);
        cr_assert_eq(out.birth, i + 1);
    }
    lkd_table_lock_all();
    size_t count = lkd_table_count();
    lkd_fmt_block_t *copy = lkd_arena_alloc(count * sizeof *copy);
    size_t got = lkd_table_copy(copy, count);
    lkd_table_unlock_all();
    cr_assert_eq(count, n - n / 4);
    cr_assert_eq(got, count);
    for (size_t i = 1; i < got; i++)
        cr_assert_gt(copy[i].address, copy[i - 1].address, "copy is sorted by address");
    cr_assert_lt(lkd_table_memory() / count, 48, "table memory per block: %zu B",
                 lkd_table_memory() / count);
}

/* A region that empties out keeps its slots until a snapshot copies it (no shrinking on
 * free: it thrashed), then shrinks to what its blocks need. */
Test(table, regions_shrink_when_copied)
{
    cr_assert(lkd_table_init());
    const uintptr_t base = 0x570000000000; /* one 64 KiB region: 4000 blocks of 16 bytes */
    lkd_block_t stale, out;
    bool replaced;
    size_t before = lkd_table_memory();
    for (uintptr_t i = 0; i < 4000; i++) {
        lkd_block_t b = blk(16, 1, i + 1);
        cr_assert(lkd_table_insert(base + i * 16, &b, &stale, &replaced));
    }
    size_t full = lkd_table_memory() - before;
    cr_assert_geq(full, 4000 * 16, "4000 slots of 16 bytes: %zu", full);
    for (uintptr_t i = 10; i < 4000; i++)
        cr_assert(lkd_table_remove(base + i * 16, &out));
    cr_assert_eq(lkd_table_memory() - before, full, "no shrinking on free");
    lkd_fmt_block_t copy[10];
    lkd_table_lock_all();
    cr_assert_eq(lkd_table_copy(copy, 10), 10);
    lkd_table_unlock_all();
    size_t after = lkd_table_memory() - before;
    cr_assert_leq(after, full - 4000 * 16 + 512, "shrunk when copied: %zu of %zu", after, full);
    for (uintptr_t i = 0; i < 10; i++) {
        cr_assert_eq(copy[i].address, base + i * 16);
        cr_assert(lkd_table_remove(base + i * 16, &out), "block %zu survives the shrink", i);
        cr_assert_eq(out.birth, i + 1);
    }
}

/* Random churn over every granule of one region, against a model: the region's table runs
 * near its 3/4 load and through its growths, with insertions, replacements and deletions. */
Test(table, full_region_churn_matches_model)
{
    cr_assert(lkd_table_init());
    enum { GRANULES = 4096 };
    const uintptr_t base = 0x580000000000;
    static uint64_t model[GRANULES]; /* birth of the block recorded there, 0 = none */
    lkd_block_t stale, out;
    bool replaced;
    uint64_t x = 88172645463325252ull, birth = 0;
    for (int op = 0; op < 400000; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned g = (unsigned)(x % GRANULES);
        uintptr_t a = base + (uintptr_t)g * 16;
        if ((x >> 32) % 8 < 5) { /* inserts outnumber removals: the region fills up */
            lkd_block_t b = blk(g, g, ++birth);
            cr_assert(lkd_table_insert(a, &b, &stale, &replaced));
            cr_assert_eq(replaced, model[g] != 0, "granule %u", g);
            if (replaced)
                cr_assert_eq(stale.birth, model[g]);
            model[g] = birth;
        } else {
            bool found = lkd_table_remove(a, &out);
            cr_assert_eq(found, model[g] != 0, "granule %u, op %d", g, op);
            if (found)
                cr_assert_eq(out.birth, model[g]);
            model[g] = 0;
        }
    }
    static lkd_fmt_block_t copy[GRANULES];
    lkd_table_lock_all();
    size_t got = lkd_table_copy(copy, GRANULES);
    lkd_table_unlock_all();
    size_t j = 0;
    for (unsigned g = 0; g < GRANULES; g++) {
        if (!model[g])
            continue;
        cr_assert_lt(j, got);
        cr_assert_eq(copy[j].address, base + (uintptr_t)g * 16);
        cr_assert_eq(copy[j].birth, model[g]);
        j++;
    }
    cr_assert_eq(j, got);
}

/* Granules whose home slots coincide at any small capacity: the n consecutive ones, in
 * the order of table.c's Fibonacci hash of granule + 1, with the narrowest spread. */
static int by_hash(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void colliding_granules(unsigned *out, unsigned n)
{
    static uint32_t h[4096];
    for (uint32_t g = 0; g < 4096; g++)
        h[g] = (g + 1) * 0x9e3779b1u;
    qsort(h, 4096, sizeof *h, by_hash);
    unsigned best = 0;
    for (unsigned i = 1; i + n <= 4096; i++)
        if (h[i + n - 1] - h[i] < h[best + n - 1] - h[best])
            best = i;
    for (unsigned i = 0; i < n; i++)
        for (uint32_t g = 0; g < 4096; g++)
            if ((g + 1) * 0x9e3779b1u == h[best + i])
                out[i] = g;
}

/* 24 blocks with one home: three groups of the region's table, the first two counting keys
 * gone past them, through insertion, lookups and every deletion. */
Test(table, long_probe_runs)
{
    cr_assert(lkd_table_init());
    enum { N = 24 };
    const uintptr_t base = 0x590000000000;
    unsigned g[N];
    lkd_block_t stale, out;
    bool replaced;
    colliding_granules(g, N);
    for (unsigned i = 0; i < N; i++) {
        lkd_block_t b = blk(g[i], i, i + 1);
        cr_assert(lkd_table_insert(base + g[i] * 16, &b, &stale, &replaced));
        cr_assert_not(replaced);
    }
    for (unsigned i = 0; i < N; i++) { /* from the middle of the run outwards */
        unsigned k = (i * 7 + 5) % N;
        cr_assert(lkd_table_remove(base + g[k] * 16, &out), "granule %u", g[k]);
        cr_assert_eq(out.birth, k + 1);
        for (unsigned j = 0; j < N; j++) {
            bool gone = false;
            for (unsigned m = 0; m <= i; m++)
                gone |= (m * 7 + 5) % N == j;
            if (gone)
                continue;
            lkd_block_t b = blk(g[j], j, j + 1); /* lookup by replacing with the same */
            cr_assert(lkd_table_insert(base + g[j] * 16, &b, &stale, &replaced));
            cr_assert(replaced, "granule %u lost after %u removals", g[j], i + 1);
            cr_assert_eq(stale.birth, j + 1);
        }
    }
}

/* The home group of granule g in a region of cap slots, as table.c's home_of computes it. */
static unsigned home_group(unsigned g, unsigned cap)
{
    return (unsigned)(((uint64_t)((g + 1) * 0x9e3779b1u) * (cap / 8)) >> 32);
}

/* Every group of a region can count keys gone past it at once: each was full when one came
 * and had room later. A probe for an absent key must still end (it went round for ever). */
Test(table, probe_ends_when_every_group_was_passed, .timeout = 20)
{
    cr_assert(lkd_table_init());
    const uintptr_t base = 0x5a0000000000;
    enum { CAP = 24, PER = 24 }; /* 3 groups: a region grown by 13 to 18 blocks */
    unsigned home[3][PER], n[3] = {0};
    for (unsigned g = 0; g < 4096; g++) {
        unsigned h = home_group(g, CAP);
        if (n[h] < PER)
            home[h][n[h]++] = g;
    }
    cr_assert(n[0] == PER && n[1] == PER && n[2] == PER);
    lkd_block_t stale, out;
    bool replaced;
#define PUT(g)                                                                                 \
    cr_assert(lkd_table_insert(base + (g) * 16u, &(lkd_block_t){.size = 1, .birth = (g) + 1u},    \
                               &stale, &replaced))
#define TAKE(g) cr_assert(lkd_table_remove(base + (g) * 16u, &out), "granule %u", (g))
    for (unsigned i = 0; i < 18; i++) /* grows the region to 24 slots, then empties it */
        PUT(home[i % 3][PER - 1 - i / 3]);
    for (unsigned i = 0; i < 18; i++)
        TAKE(home[i % 3][PER - 1 - i / 3]);
    for (unsigned i = 0; i < 9; i++) /* group 0 full, the ninth goes past it */
        PUT(home[0][i]);
    for (unsigned i = 0; i < 8; i++) /* group 1 full with seven, the eighth goes past it */
        PUT(home[1][i]);
    for (unsigned i = 0; i < 6; i++) /* room in group 0 */
        TAKE(home[0][i]);
    for (unsigned i = 0; i < 7; i++) /* group 2 full */
        PUT(home[2][i]);
    TAKE(home[1][0]); /* stays under the 3/4 load that would grow the region */
    PUT(home[2][7]);  /* past group 2, into group 0: every group now counts one */
    for (unsigned h = 0; h < 3; h++)
        cr_assert_not(lkd_table_remove(base + home[h][10] * 16u, &out), "absent, home %u", h);
    unsigned live[][2] = {{0, 6}, {0, 7}, {0, 8}, {1, 1}, {1, 2}, {1, 3}, {1, 4},
                          {1, 5}, {1, 6}, {1, 7}, {2, 0}, {2, 1}, {2, 2}, {2, 3},
                          {2, 4}, {2, 5}, {2, 6}, {2, 7}};
    for (unsigned i = 0; i < sizeof live / sizeof *live; i++) {
        TAKE(home[live[i][0]][live[i][1]]);
        cr_assert_eq(out.birth, home[live[i][0]][live[i][1]] + 1u);
    }
#undef PUT
#undef TAKE
}

#define THREADS 4
#define PER_THREAD 50000

static void *worker(void *arg)
{
    uintptr_t t = (uintptr_t)arg;
    lkd_block_t stale, out;
    bool replaced;
    /* Threads interleave in the same regions, so they contend for the same locks. */
    for (uintptr_t i = 0; i < PER_THREAD; i++) {
        uintptr_t a = 0x600000000000 + (i * THREADS + t) * 16;
        lkd_block_t b = blk(t + 1, (uint32_t)t, i + 1);
        lkd_table_insert(a, &b, &stale, &replaced);
        if (i % 2 && lkd_table_remove(a - THREADS * 16, &out) && out.size != t + 1)
            return (void *)1;
    }
    return NULL;
}

Test(table, concurrent_threads_exact)
{
    cr_assert(lkd_table_init());
    pthread_t th[THREADS];
    for (uintptr_t t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)t);
    for (int t = 0; t < THREADS; t++) {
        void *ret;
        pthread_join(th[t], &ret);
        cr_assert_null(ret, "a thread read back another thread's record");
    }
    lkd_table_lock_all();
    size_t count = lkd_table_count();
    lkd_fmt_block_t *copy = lkd_arena_alloc(count * sizeof *copy);
    size_t got = lkd_table_copy(copy, count);
    lkd_table_unlock_all();
    cr_assert_eq(count, THREADS * PER_THREAD / 2);
    uint64_t bytes = 0;
    for (size_t i = 0; i < got; i++)
        bytes += copy[i].size;
    cr_assert_eq(bytes, (uint64_t)(PER_THREAD / 2) * (1 + 2 + 3 + 4));
}

static uint32_t intern(const uint64_t *frames, uint32_t depth)
{
    return lkd_stack_intern(NULL, frames, depth, lkd_stack_hash(frames, depth));
}

Test(stack, interning_dedups)
{
    uint64_t a[] = {0x401000, 0x401100, 0x401200}, b[] = {0x401000, 0x401100, 0x401300};
    uint32_t ia = intern(a, 3), ib = intern(b, 3);
    cr_assert_neq(ia, ib);
    cr_assert_eq(intern(a, 3), ia);
    cr_assert_eq(intern(a, 2), intern(b, 2), "same prefix stacks");
    cr_assert_neq(intern(a, 2), ia);
    uint32_t empty = intern(NULL, 0), depth;
    cr_assert_eq(intern(NULL, 0), empty);
    const uint64_t *f = lkd_stack_frames(ib, &depth);
    cr_assert_eq(depth, 3);
    cr_assert_eq(f[2], 0x401300);
    cr_assert_eq(lkd_stack_count(), 4);
    cr_assert_null(lkd_stack_frames(99, &depth));
}

static void *intern_worker(void *arg)
{
    uintptr_t *ids = arg;
    for (uint64_t i = 0; i < 2000; i++) {
        uint64_t frames[5] = {0x1000, 0x2000 + i % 500, 0x3000, 0x4000, i % 500};
        ids[i] = intern(frames, 5);
    }
    return NULL;
}

Test(stack, concurrent_interning_agrees)
{
    static uintptr_t ids[2][2000];
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        pthread_create(&th[t], NULL, intern_worker, ids[t]);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    cr_assert_eq(lkd_stack_count(), 500);
    for (int i = 0; i < 2000; i++) {
        cr_assert_eq(ids[0][i], ids[1][i]);
        cr_assert_eq(ids[0][i], ids[0][i % 500]);
    }
}

/* Stacks of 1 to 9 frames that differ from another of their depth in one frame alone, at
 * each position (the comparison goes two frames at a time, with an odd one apart), all
 * under one hash: one set of the thread's cache, whose two entries each must be compared
 * whole. */
Test(stack, one_frame_apart_under_one_hash)
{
    lkd_stack_local_t local = {0};
    uint32_t ids[10][10], n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t depth = 1; depth <= 9; depth++)
            for (uint32_t p = 0; p <= depth; p++) { /* p == depth: no frame changed */
                uint64_t frames[9];
                for (uint32_t i = 0; i < depth; i++)
                    frames[i] = 0x7000 + i + (i == p ? 0x100 : 0);
                uint32_t id = lkd_stack_intern(&local, frames, depth, 42);
                if (pass == 0) {
                    ids[depth][p] = id;
                    n++;
                } else {
                    cr_assert_eq(id, ids[depth][p], "depth %u, frame %u", depth, p);
                }
            }
    cr_assert_eq(lkd_stack_count(), n, "every stack its own id");
}

/* Stacks under one hash (0 included, stored as 1 in the index) stay apart, in each
 * thread's cache (where they share an entry), past it (other threads) and through the
 * index's growth. */
static void *collide_worker(void *arg)
{
    uint32_t *ids = arg;
    lkd_stack_local_t local = {0};
    for (uint64_t i = 0; i < 3; i++)
        for (uint64_t k = 0; k < 20000; k++) {
            uint64_t frames[2] = {0x5000 + k, k % 7};
            uint32_t id = lkd_stack_intern(&local, frames, 2, k % 3 ? k : 0);
            if (i == 0)
                ids[k] = id;
            else if (ids[k] != id)
                ids[k] = LKD_STACK_NONE;
        }
    return NULL;
}

Test(stack, index_grows_and_keeps_colliding_stacks_apart)
{
    static uint32_t ids[3][20000];
    pthread_t th[2];
    collide_worker(ids[0]);
    for (int t = 0; t < 2; t++)
        pthread_create(&th[t], NULL, collide_worker, ids[t + 1]);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    cr_assert_eq(lkd_stack_count(), 20000);
    for (int k = 0; k < 20000; k++) {
        cr_assert_eq(ids[1][k], ids[0][k], "stack %d", k);
        cr_assert_eq(ids[2][k], ids[0][k], "stack %d", k);
        uint32_t depth;
        const uint64_t *f = lkd_stack_frames(ids[0][k], &depth);
        cr_assert(depth == 2 && f[0] == 0x5000u + (uint64_t)k && f[1] == (uint64_t)k % 7,
                  "stack %d has its own frames", k);
    }
}

static __attribute__((noinline)) uint32_t capture_here(uint64_t *frames)
{
    uint64_t hash;
    uint32_t n = lkd_stack_capture(frames, 16, &hash);
    cr_assert_eq(hash, lkd_stack_hash(frames, n), "capture's hash is lkd_stack_hash's");
    return n;
}

Test(stack, capture_skips_own_module)
{
    cr_assert(lkd_stack_init(0));
    uint64_t frames[16];
    uint32_t n = capture_here(frames);
    /* In the test binary the "shim" is the binary itself: its leading frames (capture_here
     * and the test body) are dropped, so the stack starts in Criterion, which called it. */
    cr_assert_gt(n, 0);
    cr_assert_not(lkd_stack_in_shim(frames[0]));
}

/* The same in fp mode, whose walk drops the shim's frames and hashes as it goes. */
Test(stack, fp_capture_skips_own_module)
{
    cr_assert(lkd_stack_init(LKD_FMT_UNWIND_FP));
    uint64_t frames[16];
    uint32_t n = capture_here(frames);
    cr_assert_gt(n, 0);
    for (uint32_t i = 0; i < n; i++)
        cr_assert_not(lkd_stack_in_shim(frames[i]), "frame %u in the shim", i);
}

#include "cfi.h"
#include "fp_walk.h"

/* A function with a frame pointer (the unit tests are built with them): its return address'
 * rule is CFA = rbp + 16, the caller's rbp saved at CFA - 16. */
static __attribute__((noinline)) uintptr_t return_address(void)
{
    uintptr_t ra = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return ra;
}

Test(stack, cfi_rules_from_eh_frame)
{
    lkd_cfi_rule_t r = lkd_cfi_find_rule(return_address());
    cr_assert_eq(r.flags, LKD_CFI_OK | LKD_CFI_RBP);
    cr_assert_eq(r.cfa_off, 16);
    cr_assert_eq(r.rbp_slot, -2);
    static const char data[16] = "not code";
    cr_assert_eq(lkd_cfi_find_rule((uintptr_t)data + 1).flags, LKD_CFI_FAIL);
    cr_assert_eq(lkd_cfi_find_rule(1).flags, LKD_CFI_FAIL);
}

/* From inside libc's qsort (its merge sort recurses, so its comparator is called from frames
 * at several depths): the default mode's stacks against libunwind's. In the test binary the
 * "shim" is the binary itself, so the program's frames are qsort's, Criterion's and libc's,
 * built without frame pointers: cfi.c reads their rules from .eh_frame. */
static struct {
    int calls, differ, walked, same;
} cmp_stats;

static int cmp_capturing(const void *a, const void *b)
{
    uint64_t mine[64], ref[64], h1, h2;
    uint32_t n1 = lkd_stack_capture(mine, 64, &h1);
    uint32_t n2 = lkd_stack_capture_libunwind(ref, 64, &h2);
    cmp_stats.calls++;
    cmp_stats.differ += n1 != n2 || memcmp(mine, ref, n1 * 8) || n1 < 3 ||
                        h1 != lkd_stack_hash(mine, n1) || h1 != h2;
    /* cfi.c itself, to see that it walked and did not leave the stack to libunwind */
    uintptr_t lo = 0, hi = 0;
    uint64_t h3;
    bool same;
    lkd_fp_bounds(&lo, &hi);
    int n3 = lkd_cfi_capture((uintptr_t)__builtin_frame_address(0), lo, hi, mine, 64, &h3, &same);
    cmp_stats.walked += n3 == (int)n1 && h3 == h1;
    cmp_stats.same += same;
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

Test(stack, cfi_matches_libunwind)
{
    cr_assert(lkd_stack_init(LKD_FMT_UNWIND_LIBUNWIND));
    int v[300];
    for (int i = 0; i < 300; i++)
        v[i] = (i * 7919) % 1009;
    qsort(v, 300, sizeof *v, cmp_capturing);
    cr_assert_gt(cmp_stats.calls, 1000);
    cr_assert_eq(cmp_stats.differ, 0, "%d of %d stacks differ", cmp_stats.differ, cmp_stats.calls);
    cr_assert_eq(cmp_stats.walked, cmp_stats.calls, "cfi.c walked %d of %d", cmp_stats.walked,
                 cmp_stats.calls);
    /* its second call from each place is the stack its first call left */
    cr_assert_eq(cmp_stats.same, cmp_stats.calls);
}

/* Transitions (stack.c's shortcut past writing out and interning a stack): the ids
 * lkd_stack_capture_id gives against the ids of libunwind's stacks at the same points. The
 * stacks go through one of eight functions of a fixture library (build/fixtures/
 * libtrans_fixture.so), picked at random from one call site: eight stacks of one depth that
 * differ in that frame alone, each of which may follow each. The unit tests' build gives
 * the table 2 sets of 2 entries (LKD_TRANS_BITS=1 in the Makefile), so the seven stacks that
 * may follow a stack share entries, where only their frames tell them apart. */
static struct {
    int calls, differ;
} id_stats;
static lkd_stack_local_t local;

static void check_id(void)
{
    uint64_t ref[64], h, inner;
    uint32_t id =
        lkd_stack_capture_id(&local, 64, (uintptr_t)__builtin_frame_address(0), &inner);
    uint32_t n = lkd_stack_capture_libunwind(ref, 64, &h);
    id_stats.calls++;
    id_stats.differ += n < 2 || id != lkd_stack_intern(NULL, ref, n, h) || inner != ref[0];
}

/* The fixture library's lkd_trans_via_0 .. n - 1 (build/fixtures/libtrans_fixture.so, beside
 * the test binary): each calls its argument from a frame of its own. */
typedef void (*via_fn)(void (*)(void));
static void load_via(via_fn *via, int n)
{
    char path[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", path, sizeof path - 64);
    cr_assert_gt(len, 0);
    path[len] = '\0';
    snprintf(strrchr(path, '/') + 1, 64, "fixtures/libtrans_fixture.so");
    void *lib = dlopen(path, RTLD_NOW);
    cr_assert_not_null(lib, "%s", dlerror());
    for (int k = 0; k < n; k++) {
        char name[32];
        snprintf(name, sizeof name, "lkd_trans_via_%d", k);
        void *sym = dlsym(lib, name);
        cr_assert_not_null(sym, "%s", name);
        memcpy(&via[k], &sym, sizeof sym);
    }
}

Test(stack, transitions_give_the_ids_of_the_stacks)
{
    cr_assert(lkd_stack_init(LKD_FMT_UNWIND_LIBUNWIND));
    via_fn via[8];
    load_via(via, 8);
    uint32_t x = 1;
    for (int i = 0; i < 3000; i++) {
        x = x * 1103515245u + 12345u;
        via[(x >> 16) % 8](check_id);
    }
    cr_assert_eq(id_stats.calls, 3000);
    cr_assert(local.cache && local.trans && local.rules, "the thread's tables were allocated");
    cr_assert_eq(id_stats.differ, 0, "%d of %d ids differ", id_stats.differ, id_stats.calls);
}

/* The memo (cfi.h): a thread's whole stacks, found again by where they start and checked
 * by the words their walk read. Here the start is always lkd_trans_via_1's frame at one
 * stack pointer, under the same caller (memo_via_1, a frame of this binary, the "shim"), and
 * the stacks differ further out, in the lkd_trans_via_k that called memo_via_1: the entries
 * share a list, and only the words above tell them apart. The unit tests' build starts a
 * thread's memo after 10 captures (LKD_MEMO_AFTER in the Makefile). */
static via_fn memo_inner;

/* The empty asm after the call: a frame of its own, not a tail call. */
static __attribute__((noinline)) void memo_via_1(void)
{
    memo_inner(check_id);
    __asm__ volatile("" ::: "memory");
}

/* n calls through via[a], a picked at random among `outer` values other than 1. */
static void memo_calls(via_fn *via, int n, unsigned outer)
{
    static uint32_t x = 7;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        unsigned a = (x >> 16) % outer;
        via[a + (a >= 1)](memo_via_1);
    }
}

Test(stack, memo_tells_apart_stacks_that_start_alike)
{
    cr_assert(lkd_stack_init(LKD_FMT_UNWIND_LIBUNWIND));
    via_fn via[8];
    load_via(via, 8);
    memo_inner = via[1];
    memo_calls(via, 3000, 4);
    cr_assert_eq(id_stats.calls, 3000);
    cr_assert_eq(id_stats.differ, 0, "%d of %d ids differ", id_stats.differ, id_stats.calls);
    cr_assert_not_null(local.memo);
    /* 10 captures before the memo, then one walk for each of the four stacks */
    uint64_t hits = lkd_cfi_memo_hits(local.memo);
    cr_assert_eq(hits, 3000 - 10 - 4, "the memo answered %lu of 3000", (unsigned long)hits);
    /* seven stacks in one list: more than the memo checks in one lookup, all still right */
    memo_calls(via, 3000, 7);
    cr_assert_eq(id_stats.differ, 0, "%d of %d ids differ", id_stats.differ, id_stats.calls);
    cr_assert_gt(lkd_cfi_memo_hits(local.memo), hits + 1000);
}

Test(stack, memo_emptied_when_rules_are_forgotten)
{
    cr_assert(lkd_stack_init(LKD_FMT_UNWIND_LIBUNWIND));
    via_fn via[3];
    load_via(via, 3);
    memo_inner = via[1];
    uint64_t hits[23];
    for (int i = 0; i < 23; i++) { /* one call site: one stack */
        if (i == 21)
            lkd_cfi_forget();
        via[2](memo_via_1);
        hits[i] = local.memo ? lkd_cfi_memo_hits(local.memo) : 0;
    }
    cr_assert_eq(hits[20], 21 - 10 - 1, "10 captures before the memo, then one walk");
    cr_assert_eq(hits[21], hits[20], "after lkd_cfi_forget, a walk");
    cr_assert_eq(hits[22], hits[21] + 1, "and the memo again");
    cr_assert_eq(id_stats.differ, 0, "%d of %d ids differ", id_stats.differ, id_stats.calls);
}

/* Stacks that do not come back: 300 starts (via_1 at 300 stack pointers, below as many
 * sizes of alloca), more than the memo holds, in turn. The memo misses every time, and rests
 * (its first word counts the captures it sits out, cfi.h). */
static __attribute__((noinline)) void memo_below(int k)
{
    volatile char *pad = alloca(64 * (size_t)(k + 1));
    pad[0] = 0;
    memo_via_1();
    __asm__ volatile("" ::: "memory");
}

Test(stack, memo_rests_when_it_misses)
{
    cr_assert(lkd_stack_init(LKD_FMT_UNWIND_LIBUNWIND));
    via_fn via[2];
    load_via(via, 2);
    memo_inner = via[1];
    for (int i = 0; i < 10 + 256; i++)
        memo_below(i % 300);
    cr_assert_eq(id_stats.differ, 0, "%d of %d ids differ", id_stats.differ, id_stats.calls);
    cr_assert_eq(lkd_cfi_memo_hits(local.memo), 0);
    cr_assert_gt(*(const uint32_t *)local.memo, 0, "resting after a window of misses");
}

/* The walk's rule cache (cfi.h's LKD_CFI_CACHE_BYTES, the thread's): entries it holds
 * answer before the shared table, and lkd_cfi_forget (a module unloaded, its addresses free
 * for another) must empty it. The walks start in the fixture library's lkd_trans_via_k,
 * whose frames are walked by rule (this binary's frames are the "shim's" here). */
static struct {
    unsigned char cache[LKD_CFI_CACHE_BYTES];
    int walked;   /* lkd_cfi_walk's count */
    uint32_t ref; /* libunwind's count */
    uint64_t frames[64], ref_frames[64];
} rc;

static void walk_with_cache(void)
{
    uintptr_t lo = 0, hi = 0;
    uint64_t h;
    lkd_cfi_walk_t w;
    lkd_fp_bounds(&lo, &hi);
    rc.walked = lkd_cfi_walk((uintptr_t)__builtin_frame_address(0), lo, hi, 64, rc.cache, &w);
    if (rc.walked > 0)
        lkd_cfi_output(rc.frames, 64, &h);
    rc.ref = lkd_stack_capture_libunwind(rc.ref_frames, 64, &h);
}

Test(stack, cfi_rule_cache_emptied_when_rules_are_forgotten)
{
    cr_assert(lkd_stack_init(LKD_FMT_UNWIND_LIBUNWIND));
    via_fn via[2];
    load_via(via, 2);
    via[0](walk_with_cache);
    cr_assert_geq(rc.ref, 3);
    cr_assert_eq((uint32_t)rc.walked, rc.ref);
    cr_assert_arr_eq(rc.frames, rc.ref_frames, rc.ref * 8);
    via[1](walk_with_cache); /* the last stack is now via_1's: via_0's frame needs a rule */
    cr_assert_eq((uint32_t)rc.walked, rc.ref);
    /* every rule cached claims its frame is the outermost (entries: return address, rule) */
    uint64_t(*e)[2] = (uint64_t(*)[2])rc.cache;
    int poisoned = 0;
    for (size_t i = 0; i < LKD_CFI_CACHE_BYTES / 16; i++) {
        if (!e[i][0])
            continue;
        lkd_cfi_rule_t end = {0, 0, LKD_CFI_END, (uint16_t)e[i][0]};
        memcpy(&e[i][1], &end, 8);
        poisoned++;
    }
    cr_assert_geq(poisoned, 2);
    via[0](walk_with_cache);
    cr_assert_lt(rc.walked, (int)rc.ref, "the cache answered: the walk stopped at via_0");
    lkd_cfi_forget();
    via[0](walk_with_cache);
    cr_assert_eq((uint32_t)rc.walked, rc.ref, "after lkd_cfi_forget: %d frames, not %u", rc.walked,
                 rc.ref);
    cr_assert_arr_eq(rc.frames, rc.ref_frames, rc.ref * 8);
}

#include "thread.h"

#define BIRTHS 5000
static uint64_t births[2][BIRTHS];

static void *birth_worker(void *arg)
{
    uint64_t *out = arg;
    lkd_thread_t *t = lkd_thread_get();
    for (int i = 0; i < BIRTHS; i++) {
        out[i] = lkd_thread_birth(t);
        lkd_thread_count_add(&t->allocs, 1);
        lkd_thread_bytes(t, 10);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(thread, births_unique_and_totals_exact)
{
    lkd_thread_init();
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        pthread_create(&th[t], NULL, birth_worker, births[t]);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    uint64_t *all = lkd_arena_alloc(sizeof births);
    memcpy(all, births, sizeof births);
    qsort(all, 2 * BIRTHS, sizeof *all, cmp_u64);
    for (int i = 1; i < 2 * BIRTHS; i++)
        cr_assert_neq(all[i], all[i - 1], "birth %lu handed out twice", (unsigned long)all[i]);
    cr_assert_geq(all[0], 1);
    lkd_fmt_totals_t tot = {0};
    lkd_thread_totals(&tot);
    cr_assert_eq(tot.total_allocs, 2 * BIRTHS);
    cr_assert_eq(tot.peak_bytes, 2 * BIRTHS * 10, "exited threads flushed their bytes");
}

Test(thread, epoch_orders_births_after_a_snapshot)
{
    lkd_thread_init();
    lkd_thread_t *t = lkd_thread_get();
    uint64_t before = lkd_thread_birth(t); /* takes a batch of LKD_THREAD_BIRTHS */
    uint64_t cut = lkd_thread_new_epoch();
    cr_assert_gt(cut, before);
    uint64_t after = lkd_thread_birth(t); /* the old batch is not used after the cut */
    cr_assert_geq(after, cut);
}
