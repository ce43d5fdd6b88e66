/*
 * test_analysis - unit tests of the analyses beyond top and diff: --cumulative (with
 * recursion), the --include/--exclude/--min-bytes filters, trend series, survivors (births),
 * folded stacks for --format collapsed, and how the reports render them.
 *
 * Snapshots are synthetic lkd_snapshot_t values; addresses resolve through a fake resolver
 * (the low byte of an address names its frames), so every figure below is exact by
 * construction and no binary, symbolizer or file is involved.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "report.h"
#include "util.h"

#include "synthetic.h"

/* ---- fake symbols ----------------------------------------------------------------- */

#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"
#define APP "/app/bin/app"
#define LIBPARSE "/usr/lib/libparse.so"

static const lkd_frame_t f_malloc[] = {{"malloc", NULL, 0, LIBC, 0, 0, false}};
static const lkd_frame_t f_strdup[] = {{"__strdup+0x1a", NULL, 0, LIBC, 0, 0, false}};
static const lkd_frame_t f_walk[] = {{"walk", "/app/src/tree.c", 12, APP, 0, 0, false}};
static const lkd_frame_t f_walk2[] = {{"walk", "/app/src/tree.c", 14, APP, 0, 0, false}};
static const lkd_frame_t f_visit[] = {{"visit", "/app/src/tree.c", 30, APP, 0, 0, false}};
static const lkd_frame_t f_leaf[] = {{"leaf_alloc", "/app/src/leaf.c", 5, APP, 0, 0, false}};
static const lkd_frame_t f_main[] = {{"main", "/app/src/main.c", 50, APP, 0, 0, false}};
static const lkd_frame_t f_parse[] = {{"parse+0x40", NULL, 0, LIBPARSE, 0, 0, false}};
static const lkd_frame_t f_semi[] = {{"odd;name", "/app/src/odd.c", 1, APP, 0, 0, false}};
static const lkd_frame_t f_inline[] = {{"helper", "/app/src/util.h", 10, APP, 0, 0, true},
                                       {"load_config", "/app/src/config.c", 20, APP, 0, 0, false}};

enum {
    A_MALLOC = 1,
    A_STRDUP,
    A_WALK,
    A_WALK2,
    A_VISIT,
    A_LEAF,
    A_MAIN,
    A_PARSE,
    A_SEMI,
    A_INLINE
};

static const fake_sym_t fake_syms[] = {
    [A_MALLOC] = {f_malloc, 1}, [A_STRDUP] = {f_strdup, 1}, [A_WALK] = {f_walk, 1},
    [A_WALK2] = {f_walk2, 1},   [A_VISIT] = {f_visit, 1},   [A_LEAF] = {f_leaf, 1},
    [A_MAIN] = {f_main, 1},     [A_PARSE] = {f_parse, 1},   [A_SEMI] = {f_semi, 1},
    [A_INLINE] = {f_inline, 2},
};

static void fake_resolve(void *ctx, uint64_t address, const lkd_frame_t **frames, size_t *count)
{
    (void)ctx;
    synth_resolve(fake_syms, address, frames, count);
}

static const lkd_resolver_t resolver = {fake_resolve, NULL};

/* ---- synthetic snapshots ------------------------------------------------------------ */

/* exe at 1, label at 14, cwd at 19 ("/app"); the "other" table names another program. */
static char strings_app[] = "\0/app/bin/app\0exit\0/app\0";
static char strings_other[] = "\0/app/bin/xyz\0exit\0/app\0";

/* Fills s with the stacks (stack id = index) and their live figures as per-stack
 * aggregates. Free with synth_free. */
static void make_snap(lkd_snapshot_t *s, const fake_stack_t *st, size_t n)
{
    memset(s, 0, sizeof *s);
    s->path = "synthetic.snap";
    s->strings = strings_app;
    s->strings_len = sizeof strings_app - 1;
    s->process = (lkd_fmt_process_t){.pid = 42, .seq = 1, .exe = 1, .label = 14, .cwd = 19};
    synth_stacks(s, st, n, 0);
    synth_totals(s);
}

static lkd_group_set_t build_opts(const fake_stack_t *st, size_t n, const lkd_group_opts_t *o)
{
    lkd_snapshot_t s;
    lkd_group_set_t set;
    make_snap(&s, st, n);
    cr_assert_eq(lkd_group_build(&s, &resolver, o, &set), 0);
    synth_free(&s);
    return set;
}

static lkd_group_set_t build(const fake_stack_t *st, size_t n, lkd_group_by_t by, bool cumulative)
{
    lkd_group_opts_t o = {.by = by, .cumulative = cumulative};
    return build_opts(st, n, &o);
}

/* A recursive tree walk: walk() calls itself (through two lines of tree.c) and visit(). */
static const fake_stack_t tree[] = {
    /* malloc <- walk:12 <- walk:12 <- walk:12 <- main: recursion 3 deep, one line */
    {{A_MALLOC, A_WALK, A_WALK, A_WALK, A_MAIN}, 5, 100, 1},
    /* malloc <- leaf <- walk:14 <- walk:12 <- main: walk twice, at two lines */
    {{A_MALLOC, A_LEAF, A_WALK2, A_WALK, A_MAIN}, 5, 10, 2},
    /* malloc <- visit <- walk:12 <- main: visit and walk, both in tree.c */
    {{A_MALLOC, A_VISIT, A_WALK, A_MAIN}, 4, 1000, 4},
};
#define TREE_N (sizeof tree / sizeof tree[0])

/* ---- group keys and --cumulative ------------------------------------------------------- */

Test(analysis, keys_are_the_site_s_as_in_tracemalloc)
{
    lkd_group_set_t set = build(tree, TREE_N, LKD_BY_FUNCTION, false);
    expect_group(&set, "walk", 100, 1);
    expect_group(&set, "leaf_alloc", 10, 2);
    expect_group(&set, "visit", 1000, 4);
    cr_expect_eq(set.count, 3);
    lkd_group_set_free(&set);
    set = build(tree, TREE_N, LKD_BY_LINE, false); /* tracemalloc "lineno": frame 0 */
    expect_group(&set, "/app/src/tree.c:12", 100, 1);
    expect_group(&set, "/app/src/leaf.c:5", 10, 2);
    expect_group(&set, "/app/src/tree.c:30", 1000, 4);
    lkd_group_set_free(&set);
    set = build(tree, TREE_N, LKD_BY_FILE, false); /* tracemalloc "filename": frame 0 */
    expect_group(&set, "/app/src/tree.c", 1100, 5);
    expect_group(&set, "/app/src/leaf.c", 10, 2);
    cr_expect_eq(set.count, 2);
    lkd_group_set_free(&set);
}

Test(analysis, cumulative_by_function_counts_recursion_once)
{
    lkd_group_set_t set = build(tree, TREE_N, LKD_BY_FUNCTION, true);
    cr_expect(set.cumulative);
    expect_group(&set, "walk", 1110, 7); /* in every stack, 3x in the first: still once */
    expect_group(&set, "main", 1110, 7);
    expect_group(&set, "leaf_alloc", 10, 2);
    expect_group(&set, "visit", 1000, 4);
    cr_expect_null(lkd_group_find(&set, "malloc"), "plumbing below the site is no location");
    cr_expect_eq(set.count, 4);
    /* the totals count every block once, however many groups it is in */
    cr_expect_eq(set.bytes, 1110);
    cr_expect_eq(set.blocks, 7);
    lkd_group_t *g = lkd_group_find(&set, "walk");
    cr_expect_eq(g->stacks, 3);
    cr_expect_str_eq(g->frames[0].function, "walk", "frames start at the group's location");
    cr_expect_eq(g->frame_count, 2); /* largest stack (visit's): walk <- main */
    lkd_group_set_free(&set);
}

Test(analysis, cumulative_by_line_and_file)
{
    lkd_group_set_t set = build(tree, TREE_N, LKD_BY_LINE, true);
    expect_group(&set, "/app/src/tree.c:12", 1110, 7);
    expect_group(&set, "/app/src/tree.c:14", 10, 2);
    expect_group(&set, "/app/src/tree.c:30", 1000, 4);
    expect_group(&set, "/app/src/leaf.c:5", 10, 2);
    expect_group(&set, "/app/src/main.c:50", 1110, 7);
    cr_expect_eq(set.count, 5);
    lkd_group_set_free(&set);
    /* tree.c appears 2-4 times in each stack (walk, visit): each block counts once */
    set = build(tree, TREE_N, LKD_BY_FILE, true);
    expect_group(&set, "/app/src/tree.c", 1110, 7);
    expect_group(&set, "/app/src/leaf.c", 10, 2);
    expect_group(&set, "/app/src/main.c", 1110, 7);
    cr_expect_eq(set.count, 3);
    lkd_group_set_free(&set);
    set = build(tree, TREE_N, LKD_BY_MODULE, true);
    expect_group(&set, APP, 1110, 7);
    cr_expect_eq(set.count, 1);
    lkd_group_set_free(&set);
}

Test(analysis, cumulative_counts_inline_frames_as_locations)
{
    static const fake_stack_t st[] = {{{A_MALLOC, A_INLINE, A_MAIN}, 3, 64, 4}};
    lkd_group_set_t set = build(st, 1, LKD_BY_FUNCTION, true);
    expect_group(&set, "helper", 64, 4);
    expect_group(&set, "load_config", 64, 4);
    expect_group(&set, "main", 64, 4);
    cr_expect_eq(set.count, 3);
    lkd_group_set_free(&set);
}

Test(analysis, cumulative_diff_matches_keys)
{
    static const fake_stack_t old_st[] = {{{A_MALLOC, A_WALK, A_WALK, A_MAIN}, 4, 100, 1}};
    lkd_group_set_t old = build(old_st, 1, LKD_BY_FUNCTION, true);
    lkd_group_set_t set = build(tree, TREE_N, LKD_BY_FUNCTION, true);
    cr_assert_eq(lkd_group_diff(&set, &old), 0);
    lkd_group_t *walk = lkd_group_find(&set, "walk");
    cr_expect_eq(walk->bytes_diff, 1010);
    cr_expect_eq(walk->blocks_diff, 6);
    cr_expect_eq(lkd_group_find(&set, "visit")->bytes_diff, 1000);
    cr_expect_eq(set.old_bytes, 100);
    lkd_group_set_free(&set);
    lkd_group_set_free(&old);
}

/* ---- filters --------------------------------------------------------------------------- */

Test(analysis, frame_matches_function_file_module)
{
    cr_expect(lkd_group_frame_matches("walk", &f_walk[0]));
    cr_expect(lkd_group_frame_matches("w*k", &f_walk[0]));
    cr_expect(!lkd_group_frame_matches("wal", &f_walk[0]));
    cr_expect(lkd_group_frame_matches("tree.c", &f_walk[0]), "file base name");
    cr_expect(lkd_group_frame_matches("/app/src/*.c", &f_walk[0]), "file path");
    cr_expect(lkd_group_frame_matches("app", &f_walk[0]), "module base name");
    cr_expect(lkd_group_frame_matches("*/bin/app", &f_walk[0]), "module path");
    cr_expect(lkd_group_frame_matches("parse", &f_parse[0]), "without the +0x offset");
    cr_expect(lkd_group_frame_matches("parse+0x40", &f_parse[0]), "as shown");
    cr_expect(lkd_group_frame_matches("libparse.so", &f_parse[0]));
    cr_expect(!lkd_group_frame_matches("tree.c", &f_parse[0]), "no file: no match");
}

static lkd_group_set_t build_filtered(const char *const *inc, size_t ninc, const char *const *exc,
                                      size_t nexc)
{
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION,
                          .includes = inc,
                          .include_count = ninc,
                          .excludes = exc,
                          .exclude_count = nexc};
    return build_opts(tree, TREE_N, &o);
}

Test(analysis, include_matches_any_frame)
{
    const char *inc[] = {"leaf_alloc"};
    lkd_group_set_t set = build_filtered(inc, 1, NULL, 0);
    expect_group(&set, "leaf_alloc", 10, 2);
    cr_expect_eq(set.count, 1);
    cr_expect_eq(set.bytes, 10);
    cr_expect_eq(set.blocks, 2);
    cr_expect(set.glob_matched[0]);
    lkd_group_set_free(&set);
    /* an outer frame (main) keeps every stack; plumbing frames (malloc) count too */
    const char *outer[] = {"main"}, *plumbing[] = {"malloc"};
    set = build_filtered(outer, 1, NULL, 0);
    cr_expect_eq(set.bytes, 1110);
    lkd_group_set_free(&set);
    set = build_filtered(plumbing, 1, NULL, 0);
    cr_expect_eq(set.bytes, 1110);
    lkd_group_set_free(&set);
}

Test(analysis, includes_are_alternatives_exclude_wins)
{
    const char *inc[] = {"visit", "leaf.c"}, *exc[] = {"leaf_*"};
    lkd_group_set_t set = build_filtered(inc, 2, NULL, 0);
    expect_group(&set, "visit", 1000, 4);
    expect_group(&set, "leaf_alloc", 10, 2);
    cr_expect_eq(set.count, 2);
    lkd_group_set_free(&set);
    set = build_filtered(inc, 2, exc, 1);
    expect_group(&set, "visit", 1000, 4);
    cr_expect_eq(set.count, 1);
    cr_expect_eq(set.bytes, 1000);
    lkd_group_set_free(&set);
    /* exclude alone: everything else stays */
    const char *exc_main[] = {"main.c"};
    set = build_filtered(NULL, 0, exc, 1);
    cr_expect_eq(set.count, 2);
    cr_expect_eq(set.bytes, 1100);
    lkd_group_set_free(&set);
    set = build_filtered(NULL, 0, exc_main, 1);
    cr_expect_eq(set.count, 0);
    cr_expect_eq(set.bytes, 0);
    lkd_group_set_free(&set);
}

Test(analysis, glob_that_matches_nothing_is_reported)
{
    const char *inc[] = {"nothing*", "walk"}, *exc[] = {"zzz"};
    lkd_group_set_t set = build_filtered(inc, 2, exc, 1);
    cr_assert_eq(set.glob_count, 3);
    cr_expect(!set.glob_matched[0]);
    cr_expect(set.glob_matched[1]);
    cr_expect(!set.glob_matched[2]);
    cr_expect_eq(set.bytes, 1110, "a glob that matches nothing does not stop the others");
    lkd_group_set_free(&set);
}

Test(analysis, filters_with_cumulative)
{
    const char *inc[] = {"leaf_alloc"};
    lkd_group_opts_t o = {
        .by = LKD_BY_FUNCTION, .cumulative = true, .includes = inc, .include_count = 1};
    lkd_group_set_t set = build_opts(tree, TREE_N, &o);
    expect_group(&set, "walk", 10, 2);
    expect_group(&set, "main", 10, 2);
    expect_group(&set, "leaf_alloc", 10, 2);
    cr_expect_eq(set.count, 3);
    lkd_group_set_free(&set);
}

Test(analysis, min_bytes_top_keeps_groups_at_or_above)
{
    lkd_group_set_t set = build(tree, TREE_N, LKD_BY_FUNCTION, false);
    lkd_group_drop_small(&set, 100);
    cr_expect_eq(set.count, 2);
    cr_expect_eq(set.dropped, 1);
    cr_expect_not_null(lkd_group_find(&set, "walk"));
    cr_expect_null(lkd_group_find(&set, "leaf_alloc"));
    cr_assert_eq(lkd_group_sort(&set, LKD_ORDER_SIZE), 0);
    cr_expect_str_eq(set.sorted[0]->key, "visit");
    lkd_group_drop_small(&set, 0);
    cr_expect_eq(set.count, 2);
    lkd_group_set_free(&set);
}

Test(analysis, min_bytes_diff_uses_absolute_change)
{
    static const fake_stack_t old_st[] = {
        {{A_MALLOC, A_VISIT, A_MAIN}, 3, 5000, 9}, /* shrinks by 4000 */
        {{A_MALLOC, A_WALK, A_MAIN}, 2, 100, 1},   /* unchanged */
    };
    static const fake_stack_t new_st[] = {
        {{A_MALLOC, A_VISIT, A_MAIN}, 3, 1000, 4},
        {{A_MALLOC, A_WALK, A_MAIN}, 2, 100, 1},
        {{A_MALLOC, A_LEAF, A_MAIN}, 3, 60, 2}, /* grows by 60 */
    };
    lkd_group_set_t old = build(old_st, 2, LKD_BY_FUNCTION, false);
    lkd_group_set_t set = build(new_st, 3, LKD_BY_FUNCTION, false);
    cr_assert_eq(lkd_group_diff(&set, &old), 0);
    lkd_group_drop_small(&set, 60);
    cr_expect_eq(set.count, 2);
    cr_expect_not_null(lkd_group_find(&set, "visit"), "shrank by 4000: kept");
    cr_expect_not_null(lkd_group_find(&set, "leaf_alloc"), "grew by exactly 60: kept");
    cr_expect_null(lkd_group_find(&set, "walk"), "100 B that did not change: dropped");
    lkd_group_drop_small(&set, 61);
    cr_expect_eq(set.count, 1);
    cr_expect_eq(set.dropped, 2);
    lkd_group_set_free(&set);
    lkd_group_set_free(&old);
}

/* ---- trend ----------------------------------------------------------------------------- */

/* Four snapshots: leaf grows every time, visit grows once (a cache), walk goes up and down,
 * parse exists only in the second one. */
static const fake_stack_t t0[] = {
    {{A_MALLOC, A_LEAF, A_MAIN}, 3, 10, 1},
    {{A_MALLOC, A_VISIT, A_MAIN}, 3, 0, 0},
    {{A_MALLOC, A_WALK, A_MAIN}, 3, 50, 5},
};
static const fake_stack_t t1[] = {
    {{A_MALLOC, A_LEAF, A_MAIN}, 3, 20, 2},
    {{A_MALLOC, A_VISIT, A_MAIN}, 3, 4096, 1},
    {{A_MALLOC, A_WALK, A_MAIN}, 3, 70, 7},
    {{A_MALLOC, A_PARSE, A_MAIN}, 3, 8, 1},
};
static const fake_stack_t t2[] = {
    {{A_MALLOC, A_LEAF, A_MAIN}, 3, 30, 3},
    {{A_MALLOC, A_VISIT, A_MAIN}, 3, 4096, 1},
    {{A_MALLOC, A_WALK, A_MAIN}, 3, 40, 4},
};
static const fake_stack_t t3[] = {
    {{A_MALLOC, A_LEAF, A_MAIN}, 3, 45, 4},
    {{A_MALLOC, A_VISIT, A_MAIN}, 3, 4096, 1},
    {{A_MALLOC, A_WALK, A_MAIN}, 3, 80, 8},
};

typedef struct trend_fixture {
    lkd_snapshot_t snaps[4];
    lkd_group_set_t sets[4];
} trend_fixture_t;

static void trend_build(trend_fixture_t *t, lkd_group_by_t by)
{
    const fake_stack_t *st[] = {t0, t1, t2, t3};
    const size_t n[] = {3, 4, 3, 3};
    lkd_group_opts_t o = {.by = by};
    for (int i = 0; i < 4; i++) {
        make_snap(&t->snaps[i], st[i], n[i]);
        t->snaps[i].process.seq = (uint32_t)i + 1;
        cr_assert_eq(lkd_group_build(&t->snaps[i], &resolver, &o, &t->sets[i]), 0);
    }
    const lkd_group_set_t *earlier[] = {&t->sets[0], &t->sets[1], &t->sets[2]};
    cr_assert_eq(lkd_group_trend(&t->sets[3], earlier, 3), 0);
}

static void trend_free(trend_fixture_t *t)
{
    for (int i = 0; i < 4; i++) {
        lkd_group_set_free(&t->sets[i]);
        synth_free(&t->snaps[i]);
    }
}

static void expect_series(const lkd_group_set_t *set, const char *key, const uint64_t want[4],
                          bool growing)
{
    const lkd_group_t *g = lkd_group_find(set, key);
    cr_assert_not_null(g, "no group %s", key);
    cr_assert_not_null(g->series);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(g->series[i], want[i], "%s series[%d] = %llu, want %llu", key, i,
                     (unsigned long long)g->series[i], (unsigned long long)want[i]);
    cr_expect_eq(g->growing, growing, "%s growing", key);
    cr_expect_eq(g->bytes_diff, (int64_t)(want[3] - want[0]), "%s growth", key);
}

Test(analysis, trend_series_and_growing)
{
    trend_fixture_t t;
    trend_build(&t, LKD_BY_FUNCTION);
    lkd_group_set_t *set = &t.sets[3];
    cr_expect_eq(set->series_len, 4);
    cr_expect(set->diffed);
    expect_series(set, "leaf_alloc", (const uint64_t[]){10, 20, 30, 45}, true);
    expect_series(set, "visit", (const uint64_t[]){0, 4096, 4096, 4096}, false);
    expect_series(set, "walk", (const uint64_t[]){50, 70, 40, 80}, false);
    expect_series(set, "parse", (const uint64_t[]){0, 8, 0, 0}, false);
    const lkd_group_t *leaf = lkd_group_find(set, "leaf_alloc");
    cr_expect_eq(leaf->blocks_series[0], 1);
    cr_expect_eq(leaf->blocks_series[3], 4);
    cr_expect_eq(leaf->old_bytes, 10);
    cr_expect_eq(leaf->blocks_diff, 3);
    const lkd_group_t *parse = lkd_group_find(set, "parse");
    cr_expect_eq(parse->bytes, 0);
    cr_expect_eq(parse->frame_count, 2, "frames kept from the snapshot that had it");
    cr_expect_str_eq(parse->frames[0].function, "parse+0x40");
    cr_expect_eq(set->old_bytes, 60);
    cr_expect_eq(set->bytes, 4221);
    cr_expect_eq(set->count, 4);
    trend_free(&t);
}

Test(analysis, trend_sorted_growing_first_then_by_growth)
{
    trend_fixture_t t;
    trend_build(&t, LKD_BY_FUNCTION);
    cr_assert_eq(lkd_group_sort(&t.sets[3], LKD_ORDER_TREND), 0);
    const char *order[] = {"leaf_alloc", "visit", "walk", "parse"};
    for (int i = 0; i < 4; i++)
        cr_expect_str_eq(t.sets[3].sorted[i]->key, order[i]);
    /* --min-bytes on a trend: the change from the first to the last snapshot */
    lkd_group_drop_small(&t.sets[3], 31);
    cr_expect_eq(t.sets[3].count, 2); /* visit (+4096), leaf_alloc (+35) */
    cr_expect_null(lkd_group_find(&t.sets[3], "walk"));
    trend_free(&t);
}

Test(analysis, trend_refuses_bad_input)
{
    lkd_group_set_t a = build(t0, 3, LKD_BY_FUNCTION, false);
    lkd_group_set_t b = build(t1, 4, LKD_BY_LINE, false);
    const lkd_group_set_t *earlier[] = {&a};
    cr_expect_eq(lkd_group_trend(&b, earlier, 0), -EINVAL, "fewer than two snapshots");
    cr_expect_eq(lkd_group_trend(&b, earlier, 1), -EINVAL, "different keys");
    lkd_group_set_free(&b);
    b = build(t1, 4, LKD_BY_FUNCTION, false);
    cr_expect_eq(lkd_group_trend(&b, earlier, 1), 0);
    cr_expect_eq(lkd_group_trend(&b, earlier, 1), -EINVAL, "only once");
    const lkd_group_t *g = lkd_group_find(&b, "visit");
    cr_expect_eq(g->series[0], 0);
    cr_expect_eq(g->series[1], 4096);
    cr_expect(g->growing, "two snapshots: one interval, it grew");
    lkd_group_set_free(&a);
    lkd_group_set_free(&b);
}

/* ---- survivors (births) ------------------------------------------------------------------ */

/* tree's stacks, with blocks: births 1-3 before OLD (birth_next 10), 10-14 after. */
static void make_born_snap(lkd_snapshot_t *s)
{
    static const lkd_fmt_block_t blocks[] = {
        {.address = 0x1000, .size = 100, .birth = 1, .stack = 0}, /* walk: before */
        {.address = 0x2000, .size = 4, .birth = 2, .stack = 1},   /* leaf: before */
        {.address = 0x3000, .size = 6, .birth = 12, .stack = 1},  /* leaf: after */
        {.address = 0x4000, .size = 250, .birth = 3, .stack = 2}, /* visit: before */
        {.address = 0x5000, .size = 250, .birth = 10, .stack = 2},
        {.address = 0x6000, .size = 250, .birth = 11, .stack = 2},
        {.address = 0x7000, .size = 250, .birth = 14, .stack = 2},
    };
    make_snap(s, tree, TREE_N);
    s->blocks = malloc(sizeof blocks);
    memcpy(s->blocks, blocks, sizeof blocks);
    s->block_count = sizeof blocks / sizeof blocks[0];
    s->totals.birth_next = 15;
}

Test(analysis, survivors_count_blocks_born_at_or_after_min_birth)
{
    lkd_snapshot_t s;
    lkd_group_set_t set;
    make_born_snap(&s);
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION, .min_birth = 10};
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    expect_group(&set, "visit", 750, 3);
    expect_group(&set, "leaf_alloc", 6, 1);
    cr_expect_null(lkd_group_find(&set, "walk"), "born before OLD: not a survivor");
    cr_expect_eq(set.bytes, 756);
    cr_expect_eq(set.blocks, 4);
    lkd_group_set_free(&set);
    o.max_birth = 12; /* three snapshots: born in [10, 12) */
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    expect_group(&set, "visit", 500, 2);
    cr_expect_eq(set.count, 1);
    lkd_group_set_free(&set);
    o.max_birth = 0;
    o.min_birth = 15; /* NEW's own birth_next: nothing born after it */
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    cr_expect_eq(set.count, 0);
    lkd_group_set_free(&set);
    o.min_birth = 0; /* every block: the per-stack aggregates */
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    expect_group(&set, "visit", 1000, 4);
    lkd_group_set_free(&set);
    synth_free(&s);
}

/* ---- folded stacks (--format collapsed) ------------------------------------------------- */

Test(analysis, folded_keys_root_first)
{
    static const fake_stack_t st[] = {
        {{A_MALLOC, A_LEAF, A_WALK2, A_WALK, A_MAIN}, 5, 10, 2},
        {{A_STRDUP, A_SEMI, A_MAIN}, 3, 7, 1},
        {{A_MALLOC, A_INLINE, A_MAIN}, 3, 64, 4},
    };
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION, .folded = true};
    lkd_group_set_t set = build_opts(st, 3, &o);
    expect_group(&set, "main;walk;walk;leaf_alloc", 10, 2);
    expect_group(&set, "main;odd:name", 7, 1); /* ';' in a name cannot split a frame */
    expect_group(&set, "main;load_config;helper", 64, 4);
    lkd_group_set_free(&set);
    o.by = LKD_BY_LINE;
    set = build_opts(st, 1, &o);
    expect_group(&set, "/app/src/main.c:50;/app/src/tree.c:12;/app/src/tree.c:14;/app/src/leaf.c:5",
                 10, 2);
    lkd_group_set_free(&set);
}

/* ---- reports ------------------------------------------------------------------------------ */

static char *render(const lkd_report_t *r)
{
    lkd_buf_t out = LKD_BUF_INIT;
    cr_assert_eq(lkd_report_groups(&out, r), 0);
    return out.data;
}

Test(analysis, report_cumulative_and_filter_header)
{
    lkd_snapshot_t s;
    const char *inc[] = {"main"};
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION,
                          .cumulative = true,
                          .includes = inc,
                          .include_count = 1,
                          .min_bytes = 1000};
    lkd_group_set_t set;
    make_snap(&s, tree, TREE_N);
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    lkd_group_drop_small(&set, o.min_bytes);
    cr_assert_eq(lkd_group_sort(&set, LKD_ORDER_SIZE), 0);
    lkd_report_t r = {
        .format = LKD_FORMAT_TEXT, .command = "top", .snap = &s, .set = &set, .opts = &o};
    char *text = render(&r);
    cr_expect(strstr(text, "  filter: --include 'main' --min-bytes 1000: 1.1 KiB in 7 blocks "
                           "selected, 1 group below the minimum left out\n"
                           "Top 3 by function (cumulative):\n"
                           "#1 main (src/main.c:50): size=1.1 KiB, count=7, average=158 B\n"),
              "%s", text);
    free(text);
    r.format = LKD_FORMAT_JSON;
    text = render(&r);
    cr_expect(strstr(text, "\"cumulative\":true"), "%s", text);
    cr_expect(strstr(text, "\"filter\":{\"include\":[\"main\"],\"exclude\":[],\"min_bytes\":1000,"
                           "\"bytes\":1110,\"blocks\":7,\"dropped_groups\":1}"),
              "%s", text);
    free(text);
    lkd_group_set_free(&set);
    synth_free(&s);
}

Test(analysis, report_trend_text_and_json)
{
    trend_fixture_t t;
    trend_build(&t, LKD_BY_FUNCTION);
    cr_assert_eq(lkd_group_sort(&t.sets[3], LKD_ORDER_TREND), 0);
    const lkd_snapshot_t *snaps[] = {&t.snaps[0], &t.snaps[1], &t.snaps[2], &t.snaps[3]};
    lkd_report_t r = {.format = LKD_FORMAT_TEXT,
                      .command = "trend",
                      .old = snaps[0],
                      .snap = snaps[3],
                      .set = &t.sets[3],
                      .limit = 2,
                      .snaps = snaps,
                      .snap_count = 4};
    char *text = render(&r);
    cr_expect(strstr(text, "leakdiff trend: 4 snapshots, oldest first\n  1: synthetic.snap\n"),
              "%s", text);
    cr_expect(strstr(text, "  live: 60 B -> 4.1 KiB -> 4.1 KiB -> 4.1 KiB (+4.1 KiB) in 13 "
                           "blocks (+7), peak 4.1 KiB\n"
                           "Top 2 by function, growing first:\n"
                           "#1 leaf_alloc (src/leaf.c:5): size=45 B (+35 B), count=4 (+3), "
                           "average=11 B\n"
                           "    growing, +12 B per snapshot: 10 B -> 20 B -> 30 B -> 45 B\n"
                           "#2 visit (src/tree.c:30): size=4.0 KiB (+4.0 KiB), count=1 (+1), "
                           "average=4.0 KiB\n"
                           "    not growing, +1.3 KiB per snapshot: 0 B -> 4.0 KiB -> 4.0 KiB "
                           "-> 4.0 KiB\n"
                           "2 other groups: size=80 B (+30 B), count=8 (+3)\n"),
              "%s", text);
    free(text);
    r.format = LKD_FORMAT_JSON;
    text = render(&r);
    cr_expect(strstr(text, "\"series\":[60,4194,4166,4221],\"blocks_series\":[6,11,8,13]"), "%s",
              text);
    cr_expect(strstr(text, "\"key\":\"leaf_alloc\",\"bytes\":45,\"blocks\":4,\"average\":11,"
                           "\"series\":[10,20,30,45],\"blocks_series\":[1,2,3,4],"
                           "\"growing\":true,\"growth_per_snapshot\":11.7,\"bytes_diff\":35,"),
              "%s", text);
    cr_expect(strstr(text, "\"different_programs\":false"), "%s", text);
    free(text);
    trend_free(&t);
}

Test(analysis, report_survivors)
{
    lkd_snapshot_t old, cur;
    lkd_group_set_t set;
    make_born_snap(&cur);
    cur.process.seq = 2;
    make_snap(&old, tree, 1);
    old.totals.birth_next = 10;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION, .min_birth = 10};
    cr_assert_eq(lkd_group_build(&cur, &resolver, &o, &set), 0);
    cr_assert_eq(lkd_group_sort(&set, LKD_ORDER_SIZE), 0);
    lkd_report_t r = {.format = LKD_FORMAT_TEXT,
                      .command = "survivors",
                      .old = &old,
                      .snap = &cur,
                      .set = &set,
                      .survivors = true};
    char *text = render(&r);
    cr_expect(strstr(text, "  live: 1.1 KiB in 7 blocks, peak 1.1 KiB\n"
                           "  survivors: 756 B in 4 blocks born after OLD was written (birth >= "
                           "10) and live in NEW\n"
                           "Top 2 survivors by function:\n"
                           "#1 visit (src/tree.c:30): size=750 B, count=3, average=250 B\n"
                           "#2 leaf_alloc (src/leaf.c:5): size=6 B, count=1, average=6 B\n"),
              "%s", text);
    free(text);
    r.format = LKD_FORMAT_JSON;
    text = render(&r);
    cr_expect(strstr(text, "\"survivor_bytes\":756,\"survivor_blocks\":4,\"birth_from\":10"), "%s",
              text);
    cr_expect(!strstr(text, "bytes_diff"), "survivors carry no diff: %s", text);
    free(text);
    /* three snapshots: the middle one bounds the births (the groups are the caller's) */
    lkd_snapshot_t mid;
    make_snap(&mid, tree, 1);
    mid.path = "mid.snap";
    mid.totals.birth_next = 12;
    r.mid = &mid;
    r.format = LKD_FORMAT_TEXT;
    text = render(&r);
    cr_expect(strstr(text, "leakdiff survivors: synthetic.snap -> mid.snap -> synthetic.snap\n"
                           "  old: process 42 (/app/bin/app), label exit, "),
              "%s", text);
    cr_expect(strstr(text, "\n  mid: process 42 "), "%s", text);
    cr_expect(strstr(text, " born after OLD and before MID were written (births 10 to 11) and "
                           "live in NEW\n"),
              "%s", text);
    free(text);
    r.format = LKD_FORMAT_JSON;
    text = render(&r);
    cr_expect(strstr(text, "\"birth_from\":10,\"birth_to\":12"), "%s", text);
    cr_expect(strstr(text, "\"path\":\"mid.snap\""), "%s", text);
    free(text);
    synth_free(&mid);
    lkd_group_set_free(&set);
    synth_free(&old);
    synth_free(&cur);
}

Test(analysis, report_diff_flags_different_programs)
{
    lkd_snapshot_t a, b;
    lkd_group_set_t ga, gb;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION};
    make_snap(&a, tree, 1);
    make_snap(&b, tree, TREE_N);
    b.strings = strings_other;
    cr_assert_eq(lkd_group_build(&a, &resolver, &o, &ga), 0);
    cr_assert_eq(lkd_group_build(&b, &resolver, &o, &gb), 0);
    cr_assert_eq(lkd_group_diff(&gb, &ga), 0);
    cr_assert_eq(lkd_group_sort(&gb, LKD_ORDER_DIFF), 0);
    lkd_report_t r = {.format = LKD_FORMAT_TEXT,
                      .command = "diff",
                      .old = &a,
                      .snap = &b,
                      .set = &gb,
                      .limit = 0};
    char *text = render(&r);
    cr_expect(strstr(text, "  note: different executables: /app/bin/app and /app/bin/xyz\n"), "%s",
              text);
    free(text);
    r.format = LKD_FORMAT_JSON;
    text = render(&r);
    cr_expect(strstr(text, "\"different_programs\":true"), "%s", text);
    free(text);
    lkd_group_set_free(&ga);
    lkd_group_set_free(&gb);
    synth_free(&a);
    synth_free(&b);
}

Test(analysis, report_collapsed_top_and_diff)
{
    static const fake_stack_t old_st[] = {
        {{A_MALLOC, A_LEAF, A_MAIN}, 3, 40, 1},
        {{A_MALLOC, A_VISIT, A_MAIN}, 3, 500, 5},
    };
    static const fake_stack_t new_st[] = {
        {{A_MALLOC, A_LEAF, A_MAIN}, 3, 100, 3},  /* +60 */
        {{A_MALLOC, A_VISIT, A_MAIN}, 3, 200, 2}, /* -300: left out of a diff */
        {{A_MALLOC, A_WALK, A_MAIN}, 3, 0, 1},    /* 0 B: left out of a top */
        {{A_MALLOC, A_WALK, A_WALK, A_MAIN}, 4, 9, 1},
    };
    lkd_snapshot_t a, b;
    lkd_group_set_t ga, gb;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION, .folded = true};
    make_snap(&a, old_st, 2);
    make_snap(&b, new_st, 4);
    cr_assert_eq(lkd_group_build(&a, &resolver, &o, &ga), 0);
    cr_assert_eq(lkd_group_build(&b, &resolver, &o, &gb), 0);
    cr_assert_eq(lkd_group_sort(&gb, LKD_ORDER_SIZE), 0);
    lkd_report_t r = {.format = LKD_FORMAT_COLLAPSED,
                      .command = "top",
                      .old = NULL,
                      .snap = &b,
                      .set = &gb,
                      .limit = 1};
    char *text = render(&r);
    cr_expect_str_eq(text, "main;visit 200\nmain;leaf_alloc 100\nmain;walk;walk 9\n",
                     "every stack, whatever -n says");
    free(text);
    cr_assert_eq(lkd_group_diff(&gb, &ga), 0);
    cr_assert_eq(lkd_group_sort(&gb, LKD_ORDER_DIFF), 0);
    r = (lkd_report_t){.format = LKD_FORMAT_COLLAPSED,
                       .command = "diff",
                       .old = &a,
                       .snap = &b,
                       .set = &gb,
                       .limit = 0};
    text = render(&r);
    cr_expect_str_eq(text, "main;leaf_alloc 60\nmain;walk;walk 9\n");
    free(text);
    lkd_group_set_free(&ga);
    lkd_group_set_free(&gb);
    synth_free(&a);
    synth_free(&b);
}

Test(analysis, format_names)
{
    lkd_format_t f;
    cr_expect_eq(lkd_format_parse("collapsed", &f), 0);
    cr_expect_eq(f, LKD_FORMAT_COLLAPSED);
    cr_expect_eq(lkd_format_parse("folded", &f), -EINVAL);
}
