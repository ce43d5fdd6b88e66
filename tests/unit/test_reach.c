/*
 * The reachability scan's classification (preload/reach.c) on synthetic memory: blocks are
 * real buffers, the roots a local array, so every verdict and leader is known exactly.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reach.h"
#include "table.h"

#define N 9

static uintptr_t mem[N][8]; /* nine 64-byte "blocks", in address order */

static void blocks_init(lkd_fmt_block_t *b)
{
    memset(mem, 0, sizeof mem);
    for (int i = 0; i < N; i++)
        b[i] = (lkd_fmt_block_t){.address = (uintptr_t)mem[i], .size = 64, .stack = 0};
}

static unsigned verdict(const lkd_fmt_block_t *b)
{
    return b->flags & LKD_FMT_BLK_VERDICT_MASK;
}

Test(reach, verdicts_and_leaders)
{
    lkd_fmt_block_t b[N];
    blocks_init(b);
    uintptr_t roots[2] = {(uintptr_t)mem[0], 0};
    mem[0][3] = (uintptr_t)&mem[1][5]; /* 0 -> 1 through an interior pointer */
    /* a lost tree: 2 -> 3 -> 4 */
    mem[2][0] = (uintptr_t)mem[3];
    mem[3][7] = (uintptr_t)mem[4];
    /* a lost cycle: 5 <-> 6 */
    mem[5][1] = (uintptr_t)mem[6];
    mem[6][1] = (uintptr_t)mem[5];
    /* 8 points at 7, which comes first: 7 starts a clique, then joins 8's */
    mem[8][2] = (uintptr_t)mem[7];
    const uintptr_t ranges[1][2] = {{(uintptr_t)roots, (uintptr_t)(roots + 2)}};
    lkd_reach_classify_ranges(b, N, ranges, 1);
    unsigned want[N] = {LKD_FMT_BLK_REACHABLE, LKD_FMT_BLK_REACHABLE, LKD_FMT_BLK_DIRECT,
                        LKD_FMT_BLK_INDIRECT,  LKD_FMT_BLK_INDIRECT,  LKD_FMT_BLK_DIRECT,
                        LKD_FMT_BLK_INDIRECT,  LKD_FMT_BLK_INDIRECT,  LKD_FMT_BLK_DIRECT};
    uint32_t leader[N] = {0, 0, 0, 3, 3, 0, 6, 9, 0};
    for (int i = 0; i < N; i++) {
        cr_expect_eq(verdict(&b[i]), want[i], "block %d: verdict %u, want %u", i, verdict(&b[i]),
                     want[i]);
        cr_expect_eq(b[i].leader, leader[i], "block %d: leader %u, want %u", i, b[i].leader,
                     leader[i]);
    }
}

Test(reach, pointer_past_the_end_and_zero_sized_blocks)
{
    lkd_fmt_block_t b[N];
    blocks_init(b);
    b[1].size = 0; /* malloc(0): a pointer to it keeps it */
    b[2].size = 8; /* a pointer just past its end does not */
    uintptr_t roots[3] = {(uintptr_t)mem[1], (uintptr_t)mem[2] + 8, (uintptr_t)mem[0] + 63};
    const uintptr_t ranges[1][2] = {{(uintptr_t)roots, (uintptr_t)(roots + 3)}};
    lkd_reach_classify_ranges(b, 3, ranges, 1);
    cr_expect_eq(verdict(&b[0]), LKD_FMT_BLK_REACHABLE, "last byte of a block");
    cr_expect_eq(verdict(&b[1]), LKD_FMT_BLK_REACHABLE, "malloc(0)");
    cr_expect_eq(verdict(&b[2]), LKD_FMT_BLK_DIRECT, "one past the end is not inside");
}

Test(reach, self_pointer_is_a_leak)
{
    lkd_fmt_block_t b[N];
    blocks_init(b);
    mem[0][0] = (uintptr_t)mem[0];
    const uintptr_t ranges[1][2] = {{0, 0}};
    lkd_reach_classify_ranges(b, 1, ranges, 1);
    cr_expect_eq(verdict(&b[0]), LKD_FMT_BLK_DIRECT);
    cr_expect_eq(b[0].leader, 0);
}

/* Lookups across pages: in 4 pages of memory, page 0 holds 64 blocks of 48 bytes (dense,
 * the in-page guess must step to the right one), its last block runs into page 1, where the
 * next block starts at offset 1024, and a 5000-byte block starts in page 2 and covers page 3,
 * in which no block starts. Pointers: into every dense block's last byte, into the spanning
 * block from page 1 (before that page's first block), into the gap after it (nothing), into
 * the big block from page 3; none else. */
Test(reach, lookups_across_pages)
{
    static _Alignas(4096) unsigned char heap[4 * 4096];
    enum { DENSE = 64, SPAN = DENSE, MID = DENSE + 1, BIG = DENSE + 2, COUNT = DENSE + 3 };
    lkd_fmt_block_t b[COUNT];
    uintptr_t base = (uintptr_t)heap, roots[DENSE + 4];
    for (int i = 0; i < DENSE; i++) {
        b[i] = (lkd_fmt_block_t){.address = base + 16 + (uintptr_t)i * 48, .size = 40};
        roots[i] = b[i].address + 39;
    }
    /* block SPAN: the last 4096 - 3088 bytes of page 0 and 200 bytes into page 1 */
    b[SPAN] =
        (lkd_fmt_block_t){.address = base + 16 + DENSE * 48, .size = 4096 - 16 - DENSE * 48 + 200};
    b[MID] = (lkd_fmt_block_t){.address = base + 4096 + 1024, .size = 16};
    b[BIG] = (lkd_fmt_block_t){.address = base + 2 * 4096 + 64, .size = 5000};
    roots[DENSE] = base + 4096 + 100;       /* inside SPAN, before page 1's first block */
    roots[DENSE + 1] = base + 4096 + 500;   /* the gap between SPAN and MID */
    roots[DENSE + 2] = base + 3 * 4096 + 8; /* inside BIG, in a page where no block starts */
    roots[DENSE + 3] = base + 2 * 4096 + 8; /* before BIG, in its page: nothing */
    memset(heap, 0, sizeof heap);
    const uintptr_t ranges[1][2] = {{(uintptr_t)roots, (uintptr_t)(roots + DENSE + 4)}};
    lkd_reach_classify_ranges(b, COUNT, ranges, 1);
    for (int i = 0; i < DENSE; i++)
        cr_expect_eq(verdict(&b[i]), LKD_FMT_BLK_REACHABLE, "dense block %d", i);
    cr_expect_eq(verdict(&b[SPAN]), LKD_FMT_BLK_REACHABLE, "block running into the next page");
    cr_expect_eq(verdict(&b[MID]), LKD_FMT_BLK_DIRECT, "nothing points into it");
    cr_expect_eq(verdict(&b[BIG]), LKD_FMT_BLK_REACHABLE, "pointed to from a page it covers");
}

/* Lookups across clusters: blocks whose pages are more than 16 apart are indexed in separate
 * clusters. In 64 pages: BIG starts in page 0 and covers 30 pages, LONE starts in page 40,
 * NEXT in page 41 and MISS in page 42 (the same cluster), LAST in page 63 (a third one).
 * Pointers, in an order that sends the lookups back and forth between clusters and twice
 * in a row to the same one: into LAST, into BIG from page 20 (past its cluster's last page),
 * into NEXT, into LONE's last byte, before LONE in its page and into the gap after BIG
 * (nothing: the block before them, BIG, ended), into LAST again. None into MISS. */
Test(reach, lookups_across_clusters)
{
    static _Alignas(4096) unsigned char heap[64 * 4096];
    enum { BIG, LONE, NEXT, MISS, LAST, COUNT };
    uintptr_t base = (uintptr_t)heap;
    lkd_fmt_block_t b[COUNT] = {
        [BIG] = {.address = base + 64, .size = 30 * 4096},
        [LONE] = {.address = base + 40 * 4096 + 256, .size = 64},
        [NEXT] = {.address = base + 41 * 4096 + 16, .size = 16},
        [MISS] = {.address = base + 42 * 4096, .size = 16},
        [LAST] = {.address = base + 63 * 4096, .size = 32},
    };
    uintptr_t roots[] = {
        b[LAST].address + 31,  base + 20 * 4096 + 8, b[NEXT].address + 8, b[LONE].address + 63,
        base + 40 * 4096 + 8, base + 35 * 4096,     b[LAST].address,
    };
    enum { ROOTS = sizeof roots / sizeof *roots };
    memset(heap, 0, sizeof heap);
    const uintptr_t ranges[1][2] = {{(uintptr_t)roots, (uintptr_t)(roots + ROOTS)}};
    lkd_reach_classify_ranges(b, COUNT, ranges, 1);
    cr_expect_eq(verdict(&b[BIG]), LKD_FMT_BLK_REACHABLE, "pointed to past its cluster");
    cr_expect_eq(verdict(&b[LONE]), LKD_FMT_BLK_REACHABLE, "first block of a cluster");
    cr_expect_eq(verdict(&b[NEXT]), LKD_FMT_BLK_REACHABLE, "second block of a cluster");
    cr_expect_eq(verdict(&b[MISS]), LKD_FMT_BLK_DIRECT, "nothing points into it");
    cr_expect_eq(verdict(&b[LAST]), LKD_FMT_BLK_REACHABLE, "a cluster of its own");
}

/* The drain shared with a helper thread (the exit snapshot's writer): 20,000 blocks of 64
 * bytes and an array of pointers to the even ones (160,000 bytes: scanned in three pieces,
 * which the threads share). Among the odd ones, each of the form 4k + 1 points to the next
 * odd one: 4k + 1 is a direct leak, 4k + 3 an indirect one under it. The verdicts must be
 * the same with the helper (which joins before the scan starts, so the shared path is
 * taken whatever the timing) and without. */
#define MANY 20000
static uintptr_t many[MANY][8];
static uintptr_t *pointers[MANY];
static pthread_t helper;
static bool helped;

static void *run_helper(void *claimed)
{
    lkd_reach_help(claimed);
    return NULL;
}

static void wake_helper(void)
{
    void *claimed = lkd_reach_claim();
    cr_assert_not_null(claimed, "the offer was open");
    cr_assert_eq(pthread_create(&helper, NULL, run_helper, claimed), 0);
    helped = true;
}

static int by_address(const void *a, const void *b)
{
    uint64_t x = ((const lkd_fmt_block_t *)a)->address, y = ((const lkd_fmt_block_t *)b)->address;
    return x < y ? -1 : x > y;
}

static size_t index_of(const lkd_fmt_block_t *b, size_t n, uintptr_t address)
{
    lkd_fmt_block_t key = {.address = address};
    const lkd_fmt_block_t *k = bsearch(&key, b, n, sizeof *b, by_address);
    cr_assert_not_null(k, "no block at %#lx", (unsigned long)address);
    return (size_t)(k - b);
}

static void classify_many(bool with_helper)
{
    static lkd_fmt_block_t b[MANY + 1];
    memset(many, 0, sizeof many);
    for (int i = 0; i < MANY; i++) {
        pointers[i] = i % 2 == 0 ? many[i] : NULL;
        if (i % 4 == 1)
            many[i][5] = (uintptr_t)many[i + 2];
        b[i] = (lkd_fmt_block_t){.address = (uintptr_t)many[i], .size = sizeof many[i]};
    }
    b[MANY] = (lkd_fmt_block_t){.address = (uintptr_t)pointers, .size = sizeof pointers};
    qsort(b, MANY + 1, sizeof *b, by_address);
    uintptr_t roots[1] = {(uintptr_t)pointers};
    const uintptr_t ranges[1][2] = {{(uintptr_t)roots, (uintptr_t)(roots + 1)}};
    helped = false;
    lkd_reach_set_helper(with_helper ? wake_helper : NULL, 0);
    lkd_reach_classify_ranges(b, MANY + 1, ranges, 1);
    lkd_reach_set_helper(NULL, 0);
    if (helped)
        pthread_join(helper, NULL);
    cr_assert_eq(helped, with_helper);
    size_t wrong = 0;
    for (int i = 0; i < MANY; i++) {
        const lkd_fmt_block_t *k = &b[index_of(b, MANY + 1, (uintptr_t)many[i])];
        unsigned want = i % 2 == 0   ? LKD_FMT_BLK_REACHABLE
                        : i % 4 == 1 ? LKD_FMT_BLK_DIRECT
                                     : LKD_FMT_BLK_INDIRECT;
        uint32_t leader = i % 4 == 3 ? 1 + (uint32_t)index_of(b, MANY + 1, (uintptr_t)many[i - 2])
                                     : 0;
        if (verdict(k) != want || k->leader != leader) {
            if (wrong++ < 5)
                cr_log_error("block %d: verdict %u leader %u, want %u and %u", i, verdict(k),
                             k->leader, want, leader);
        }
    }
    cr_expect_eq(wrong, 0, "%zu of %d blocks misjudged", wrong, MANY);
    cr_expect_eq(verdict(&b[index_of(b, MANY + 1, (uintptr_t)pointers)]), LKD_FMT_BLK_REACHABLE);
}

Test(reach, shared_with_a_helper)
{
    classify_many(true);
}

Test(reach, same_verdicts_alone)
{
    classify_many(false);
}

/* The world stopped by one thread is "stopped" for it alone: another thread (the writer)
 * sees it stopped by someone else, and must not write a snapshot of its own until resume. */
static void *ask_other(void *out)
{
    *(bool *)out = lkd_reach_stopped_by_other() && !lkd_reach_stopped();
    return NULL;
}

Test(reach, stopped_for_the_stopper_only)
{
    pthread_t t;
    bool other = false;
    cr_assert(lkd_table_init()); /* the stop takes every lock of the shim, the table's too */
    cr_assert(lkd_reach_stop(0), "no other thread to stop: stopping succeeds");
    cr_expect(lkd_reach_stopped());
    cr_expect(!lkd_reach_stopped_by_other());
    cr_assert_eq(pthread_create(&t, NULL, ask_other, &other), 0);
    pthread_join(t, NULL);
    cr_expect(other, "another thread sees the world stopped by someone else");
    lkd_reach_resume();
    cr_expect(!lkd_reach_stopped());
    cr_assert_eq(pthread_create(&t, NULL, ask_other, &other), 0);
    pthread_join(t, NULL);
    cr_expect(!other, "nothing stopped after resume");
}
