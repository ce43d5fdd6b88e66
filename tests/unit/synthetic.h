/*
 * synthetic - snapshots built in memory, for the analyzer's unit tests: stacks of fake
 * return addresses (which each test's resolver turns into frames) with live figures per
 * stack, and the group assertion the tests share.
 */
#ifndef LKD_TEST_SYNTHETIC_H
#define LKD_TEST_SYNTHETIC_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "group.h"
#include "snapshot.h"

/* The frames a fake return address stands for: table[address & 0xff] of synth_resolve. */
typedef struct fake_sym {
    const lkd_frame_t *frames;
    size_t count;
} fake_sym_t;

/* Resolves address through table (its low byte names the frames) into per-address copies
 * holding the raw address, as the real symbolizer does; copies live in a ring of 64. */
static inline void synth_resolve(const fake_sym_t *table, uint64_t address,
                                 const lkd_frame_t **frames, size_t *count)
{
    static lkd_frame_t out[64][2];
    static size_t used;
    const fake_sym_t *s = &table[address & 0xff];
    lkd_frame_t *slot = out[used++ % 64];
    for (size_t i = 0; i < s->count && i < 2; i++) {
        slot[i] = s->frames[i];
        slot[i].address = address;
    }
    *frames = slot;
    *count = s->count;
}

typedef struct fake_stack {
    uint64_t addrs[8]; /* innermost first */
    uint32_t depth;
    uint64_t bytes, blocks;
} fake_stack_t;

/* Fills s's stacks from st (stack id = index; base added to every address) and their live
 * figures as per-stack aggregates. The rest of s is the caller's; free with synth_free. */
static inline void synth_stacks(lkd_snapshot_t *s, const fake_stack_t *st, size_t n, uint64_t base)
{
    size_t nframes = 0;
    for (size_t i = 0; i < n; i++)
        nframes += st[i].depth;
    s->stack_depths = calloc(n + 1, sizeof *s->stack_depths);
    s->stack_offsets = calloc(n + 1, sizeof *s->stack_offsets);
    s->frames = calloc(nframes + 1, sizeof *s->frames);
    s->stack_stats = calloc(n + 1, sizeof *s->stack_stats);
    s->stack_count = s->stack_stat_count = n;
    s->frame_count = nframes;
    for (size_t i = 0, f = 0; i < n; i++) {
        s->stack_depths[i] = st[i].depth;
        s->stack_offsets[i] = f;
        for (uint32_t d = 0; d < st[i].depth; d++)
            s->frames[f++] = base + st[i].addrs[d];
        s->stack_stats[i] = (lkd_fmt_stack_stat_t){(uint32_t)i, 0, st[i].bytes, st[i].blocks};
    }
}

/* Sets s's live totals (and peak) to the sum of its stacks' figures. */
static inline void synth_totals(lkd_snapshot_t *s)
{
    for (size_t i = 0; i < s->stack_stat_count; i++) {
        s->totals.bytes += s->stack_stats[i].bytes;
        s->totals.blocks += s->stack_stats[i].blocks;
    }
    s->totals.peak_bytes = s->totals.bytes;
}

/* Frees what synth_stacks allocated, and modules and blocks when a test gave s some. */
static inline void synth_free(lkd_snapshot_t *s)
{
    free(s->modules);
    free(s->stack_depths);
    free(s->stack_offsets);
    free(s->frames);
    free(s->stack_stats);
    free(s->blocks);
}

/* The group keyed key exists with exactly these figures. */
static inline void expect_group(const lkd_group_set_t *set, const char *key, uint64_t bytes,
                                uint64_t blocks)
{
    lkd_group_t *g = lkd_group_find(set, key);
    cr_assert_not_null(g, "no group '%s'", key);
    cr_expect_eq(g->bytes, bytes, "'%s' bytes %llu, want %llu", key, (unsigned long long)g->bytes,
                 (unsigned long long)bytes);
    cr_expect_eq(g->blocks, blocks, "'%s' blocks %llu, want %llu", key,
                 (unsigned long long)g->blocks, (unsigned long long)blocks);
}

#endif
