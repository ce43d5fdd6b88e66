/*
 * The reachability scan's classification (preload/reach.c) on synthetic memory: blocks are
 * real buffers, the roots a local array, so every verdict and leader is known exactly.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reach.h"

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
