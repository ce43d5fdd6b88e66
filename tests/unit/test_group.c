/*
 * test_group - unit tests of the analyzer's pure logic: site attribution, grouping by every
 * key, diff arithmetic and order, ASLR independence, human sizes, JSON escaping, report
 * text, snapshot file names.
 *
 * Snapshots are synthetic lkd_snapshot_t values and addresses resolve through a fake
 * resolver (a fixed table), so no binary, symbolizer or file is involved.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "report.h"
#include "run.h"
#include "util.h"

#include "synthetic.h"

/* ---- fake symbols ----------------------------------------------------------------- */

#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"
#define CXX "/lib/x86_64-linux-gnu/libstdc++.so.6"
#define SHIM "/opt/leakdiff/lib/leakdiff/libleakdiff.so"
#define APP "/app/bin/app"

static const lkd_frame_t f_shim[] = {{"track_alloc", NULL, 0, SHIM, 0, 0, false}};
static const lkd_frame_t f_strdup[] = {{"__strdup+0x1a", NULL, 0, LIBC, 0, 0, false}};
static const lkd_frame_t f_new[] = {
    {"operator new(unsigned long)+0x1c", NULL, 0, CXX, 0, 0, false}};
static const lkd_frame_t f_record[] = {{"make_record", "/app/src/rec.c", 31, APP, 0, 0, false}};
static const lkd_frame_t f_record2[] = {{"make_record", "/app/src/rec.c", 35, APP, 0, 0, false}};
static const lkd_frame_t f_main[] = {{"main", "/app/src/main.c", 50, APP, 0, 0, false}};
static const lkd_frame_t f_inline[] = {{"helper", "/app/src/util.h", 10, APP, 0, 0, true},
                                       {"load_config", "/app/src/config.c", 20, APP, 0, 0, false}};
static const lkd_frame_t f_pool[] = {{"pool_alloc", "/app/src/pool.c", 5, APP, 0, 0, false}};
static const lkd_frame_t f_nodebug[] = {
    {"parse+0x40", NULL, 0, "/usr/lib/libparse.so", 0, 0, false}};
static const lkd_frame_t f_nosym[] = {
    {"libparse.so+0x1234", NULL, 0, "/usr/lib/libparse.so", 0, 0, false}};

/* Two address spaces (two runs, different ASLR) mapping to the same symbols. */
enum {
    A_SHIM = 1,
    A_STRDUP,
    A_NEW,
    A_RECORD,
    A_RECORD2,
    A_MAIN,
    A_INLINE,
    A_POOL,
    A_NODEBUG,
    A_NOSYM
};
#define RUN2 0x7f0000000000ull

static const fake_sym_t fake_syms[] = {
    [A_SHIM] = {f_shim, 1},     [A_STRDUP] = {f_strdup, 1},   [A_NEW] = {f_new, 1},
    [A_RECORD] = {f_record, 1}, [A_RECORD2] = {f_record2, 1}, [A_MAIN] = {f_main, 1},
    [A_INLINE] = {f_inline, 2}, [A_POOL] = {f_pool, 1},       [A_NODEBUG] = {f_nodebug, 1},
    [A_NOSYM] = {f_nosym, 1},
};

static size_t resolve_calls;

static void fake_resolve(void *ctx, uint64_t address, const lkd_frame_t **frames, size_t *count)
{
    (void)ctx;
    resolve_calls++;
    synth_resolve(fake_syms, address, frames, count);
}

static const lkd_resolver_t resolver = {fake_resolve, NULL};

/* ---- synthetic snapshots ------------------------------------------------------------ */

static char strings[] = "\0/app/bin/app\0exit\0/app\0";

/* Fills s with the stacks (stack id = index), live figures as per-stack aggregates;
 * base is added to every address. Free with synth_free. */
static void make_snap(lkd_snapshot_t *s, const fake_stack_t *st, size_t n, uint64_t base)
{
    memset(s, 0, sizeof *s);
    s->path = "synthetic.snap";
    s->strings = strings;
    s->strings_len = sizeof strings - 1;
    s->process.exe = 1;
    s->process.label = 14;
    s->process.cwd = 19;
    synth_stacks(s, st, n, base);
    synth_totals(s);
}

static lkd_group_set_t build(const fake_stack_t *st, size_t n, lkd_group_by_t by)
{
    lkd_snapshot_t s;
    lkd_group_set_t set;
    lkd_group_opts_t o = {.by = by};
    make_snap(&s, st, n, 0);
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    synth_free(&s);
    return set;
}

/* A program: strdup'd and new'd records, a config loader with an inlined helper, a pool. */
static const fake_stack_t program[] = {
    {{A_STRDUP, A_RECORD, A_MAIN}, 3, 100, 2},
    {{A_SHIM, A_NEW, A_RECORD, A_MAIN}, 4, 200, 3},
    {{A_RECORD2, A_MAIN}, 2, 40, 1},
    {{A_INLINE, A_MAIN}, 2, 64, 4},
    {{A_POOL, A_MAIN}, 2, 1000, 10},
    {{A_SHIM, A_STRDUP}, 2, 7, 1},
    {{A_MAIN}, 1, 0, 0},
};
#define PROGRAM_N (sizeof program / sizeof program[0])

/* ---- attribution -------------------------------------------------------------------- */

Test(group, plumbing_defaults)
{
    lkd_frame_t f = {"malloc", NULL, 0, LIBC, 0, 0, false};
    cr_expect(lkd_group_is_plumbing(&f, NULL));
    f.function = "malloc+0x10";
    cr_expect(lkd_group_is_plumbing(&f, NULL));
    f.function = "__libc_calloc";
    cr_expect(lkd_group_is_plumbing(&f, NULL));
    f.function = "mallocator";
    cr_expect(!lkd_group_is_plumbing(&f, NULL));
    cr_expect(lkd_group_is_plumbing(&f_strdup[0], NULL));
    cr_expect(lkd_group_is_plumbing(&f_new[0], NULL));
    cr_expect(lkd_group_is_plumbing(&f_shim[0], NULL));
    f.function = "std::allocator<int>::allocate(unsigned long)";
    cr_expect(lkd_group_is_plumbing(&f, NULL));
    f.function = "__gnu_cxx::new_allocator<char>::allocate(unsigned long, void const*)";
    cr_expect(lkd_group_is_plumbing(&f, NULL));
    cr_expect(!lkd_group_is_plumbing(&f_record[0], NULL));
    cr_expect(!lkd_group_is_plumbing(&f_main[0], NULL));
}

Test(group, plumbing_cxx_library)
{
    /* std::vector's internals inlined into the user's binary from the headers */
    lkd_frame_t f = {"std::_Vector_base<int, std::allocator<int> >::_M_allocate(unsigned long)",
                     "/usr/include/c++/12/bits/stl_vector.h",
                     378,
                     APP,
                     0,
                     0,
                     true};
    cr_expect(lkd_group_is_plumbing(&f, NULL));
    f.file = "/usr/lib/llvm-14/bin/../include/c++/v1/vector";
    cr_expect(lkd_group_is_plumbing(&f, NULL));
    /* code in libstdc++ itself */
    f = (lkd_frame_t){"libstdc++.so.6+0xa57ba", NULL, 0, CXX, 0, 0, false};
    cr_expect(lkd_group_is_plumbing(&f, NULL));
    /* a user's function taking std types is not */
    f = (lkd_frame_t){
        "Widget::Widget(std::string const&)", "/app/src/widget.cc", 9, APP, 0, 0, false};
    cr_expect(!lkd_group_is_plumbing(&f, NULL));
    const char *files[] = {"/app/src/*.cc"};
    lkd_group_opts_t o = {.skip_files = files, .skip_file_count = 1};
    cr_expect(lkd_group_is_plumbing(&f, &o));
}

Test(group, function_base_strips_offset_not_module)
{
    cr_expect_eq(lkd_function_base_len(&f_nodebug[0]), strlen("parse"));
    cr_expect_eq(lkd_function_base_len(&f_nosym[0]), strlen(f_nosym[0].function));
    lkd_frame_t f = {"operator+(a, b)", NULL, 0, NULL, 0, 0, false};
    cr_expect_eq(lkd_function_base_len(&f), strlen(f.function));
    f.function = "x+0xZZ";
    cr_expect_eq(lkd_function_base_len(&f), strlen(f.function));
}

Test(group, site_skips_strdup_operator_new_and_shim)
{
    lkd_group_set_t set = build(program, PROGRAM_N, LKD_BY_FUNCTION);
    expect_group(&set, "make_record", 340, 6);
    lkd_group_t *g = lkd_group_find(&set, "make_record");
    cr_expect_eq(g->stacks, 3);
    cr_expect_str_eq(g->frames[0].function, "make_record"); /* largest stack: via new */
    cr_expect_eq(g->frames[0].line, 31);
    cr_expect_eq(g->frame_count, 2);
    cr_expect_eq(g->rep_bytes, 200);
    expect_group(&set, "helper", 64, 4); /* the inlined callee is the site */
    expect_group(&set, "pool_alloc", 1000, 10);
    /* every frame plumbing: the outermost frame is the site */
    expect_group(&set, "__strdup", 7, 1);
    cr_expect_null(lkd_group_find(&set, "main")); /* the empty stack holds nothing */
    cr_expect_eq(set.count, 4);
    cr_expect_eq(set.bytes, 1411);
    cr_expect_eq(set.blocks, 21);
    lkd_group_set_free(&set);
}

Test(group, skip_function_and_module_extend_the_list)
{
    const char *funcs[] = {"pool_*"}, *mods[] = {"*/bin/app"};
    lkd_snapshot_t s;
    lkd_group_set_t set;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION, .skip_functions = funcs, .skip_function_count = 1};
    make_snap(&s, program, PROGRAM_N, 0);
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    expect_group(&set, "main", 1000, 10);
    cr_expect_null(lkd_group_find(&set, "pool_alloc"));
    lkd_group_set_free(&set);
    o = (lkd_group_opts_t){.by = LKD_BY_FUNCTION, .skip_modules = mods, .skip_module_count = 1};
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    expect_group(&set, "main", 1404, 20); /* all app frames skipped: outermost = main */
    lkd_group_set_free(&set);
    synth_free(&s);
}

Test(group, each_address_resolved_once)
{
    resolve_calls = 0;
    lkd_group_set_t set = build(program, PROGRAM_N, LKD_BY_TRACEBACK);
    cr_expect_eq(resolve_calls, 8); /* distinct addresses in stacks with live memory */
    lkd_group_set_free(&set);
}

/* ---- keys ------------------------------------------------------------------------------ */

Test(group, by_line)
{
    lkd_group_set_t set = build(program, PROGRAM_N, LKD_BY_LINE);
    expect_group(&set, "/app/src/rec.c:31", 300, 5);
    expect_group(&set, "/app/src/rec.c:35", 40, 1);
    expect_group(&set, "/app/src/util.h:10", 64, 4);
    expect_group(&set, "/app/src/pool.c:5", 1000, 10);
    expect_group(&set, "__strdup+0x1a", 7, 1); /* no line info: the function string */
    cr_expect_eq(set.count, 5);
    lkd_group_set_free(&set);
}

Test(group, by_file)
{
    lkd_group_set_t set = build(program, PROGRAM_N, LKD_BY_FILE);
    expect_group(&set, "/app/src/rec.c", 340, 6);
    expect_group(&set, "/app/src/util.h", 64, 4);
    expect_group(&set, "/app/src/pool.c", 1000, 10);
    expect_group(&set, LIBC, 7, 1); /* no file: the module */
    cr_expect_eq(set.count, 4);
    lkd_group_set_free(&set);
}

Test(group, by_module)
{
    lkd_group_set_t set = build(program, PROGRAM_N, LKD_BY_MODULE);
    expect_group(&set, APP, 1404, 20);
    expect_group(&set, LIBC, 7, 1);
    cr_expect_eq(set.count, 2);
    lkd_group_set_free(&set);
}

Test(group, by_traceback)
{
    lkd_group_set_t set = build(program, PROGRAM_N, LKD_BY_TRACEBACK);
    expect_group(&set, "make_record (/app/src/rec.c:31) <- main (/app/src/main.c:50)", 300, 5);
    expect_group(&set, "make_record (/app/src/rec.c:35) <- main (/app/src/main.c:50)", 40, 1);
    expect_group(&set,
                 "helper (/app/src/util.h:10) <- load_config (/app/src/config.c:20) <- "
                 "main (/app/src/main.c:50)",
                 64, 4);
    expect_group(&set, "__strdup+0x1a (libc.so.6)", 7, 1);
    lkd_group_t *g =
        lkd_group_find(&set, "pool_alloc (/app/src/pool.c:5) <- main (/app/src/main.c:50)");
    cr_assert_not_null(g);
    cr_expect_eq(g->frame_count, 2);
    cr_expect_str_eq(g->frames[1].function, "main");
    cr_expect_eq(set.count, 5);
    lkd_group_set_free(&set);
}

Test(group, by_function_without_debug_info)
{
    static const fake_stack_t st[] = {
        {{A_NODEBUG}, 1, 10, 1},
        {{A_NOSYM}, 1, 20, 2},
    };
    lkd_group_set_t set = build(st, 2, LKD_BY_FUNCTION);
    expect_group(&set, "parse", 10, 1);
    expect_group(&set, "libparse.so+0x1234", 20, 2);
    lkd_group_set_free(&set);
}

Test(group, blocks_used_without_stack_stats)
{
    lkd_snapshot_t s;
    lkd_group_set_t set;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION};
    make_snap(&s, program, PROGRAM_N, 0);
    s.stack_stat_count = 0;
    s.blocks = calloc(3, sizeof *s.blocks);
    s.block_count = 3;
    s.blocks[0] = (lkd_fmt_block_t){.address = 0x10, .size = 5, .stack = 0};
    s.blocks[1] = (lkd_fmt_block_t){.address = 0x20, .size = 6, .stack = 1};
    s.blocks[2] = (lkd_fmt_block_t){.address = 0x30, .size = 7, .stack = 4};
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    expect_group(&set, "make_record", 11, 2);
    expect_group(&set, "pool_alloc", 7, 1);
    cr_expect_eq(set.count, 2);
    lkd_group_set_free(&set);
    synth_free(&s);
}

Test(group, by_names_parse)
{
    lkd_group_by_t by;
    const char *names[] = {"function", "line", "file", "module", "traceback"};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(lkd_group_by_parse(names[i], &by), 0);
        cr_expect_eq((int)by, i);
        cr_expect_str_eq(lkd_group_by_name(by), names[i]);
    }
    cr_expect_eq(lkd_group_by_parse("Function", &by), -EINVAL);
    cr_expect_eq(lkd_group_by_parse("", &by), -EINVAL);
}

/* ---- sort and diff --------------------------------------------------------------------- */

Test(group, top_sorted_by_size_then_key)
{
    static const fake_stack_t st[] = {
        {{A_RECORD}, 1, 50, 1},
        {{A_POOL}, 1, 50, 9},
        {{A_MAIN}, 1, 70, 1},
        {{A_INLINE}, 1, 1, 1},
    };
    lkd_group_set_t set = build(st, 4, LKD_BY_FUNCTION);
    cr_assert_eq(lkd_group_sort(&set, LKD_ORDER_SIZE), 0);
    cr_expect_str_eq(set.sorted[0]->key, "main");
    cr_expect_str_eq(set.sorted[1]->key, "make_record");
    cr_expect_str_eq(set.sorted[2]->key, "pool_alloc");
    cr_expect_str_eq(set.sorted[3]->key, "helper");
    lkd_group_set_free(&set);
}

Test(group, diff_new_grown_shrunk_vanished)
{
    static const fake_stack_t old_st[] = {
        {{A_RECORD}, 1, 100, 2}, /* grows */
        {{A_MAIN}, 1, 50, 1},    /* shrinks */
        {{A_POOL}, 1, 30, 3},    /* vanishes */
        {{A_NODEBUG}, 1, 8, 1},  /* unchanged */
    };
    static const fake_stack_t new_st[] = {
        {{A_RECORD}, 1, 300, 5},
        {{A_MAIN}, 1, 20, 1},
        {{A_INLINE}, 1, 40, 4}, /* new */
        {{A_NODEBUG}, 1, 8, 1},
    };
    lkd_group_set_t old = build(old_st, 4, LKD_BY_FUNCTION);
    lkd_group_set_t set = build(new_st, 4, LKD_BY_FUNCTION);
    cr_assert_eq(lkd_group_diff(&set, &old), 0);
    cr_assert_eq(lkd_group_sort(&set, LKD_ORDER_DIFF), 0);
    cr_assert_eq(set.count, 5);
    const char *order[] = {"make_record", "helper", "parse", "main", "pool_alloc"};
    const int64_t bd[] = {200, 40, 0, -30, -30}, kd[] = {3, 4, 0, 0, -3};
    const uint64_t bytes[] = {300, 40, 8, 20, 0};
    for (int i = 0; i < 5; i++) {
        const lkd_group_t *g = set.sorted[i];
        cr_expect_str_eq(g->key, order[i]);
        cr_expect_eq(g->bytes_diff, bd[i], "%s bytes_diff %lld", g->key, (long long)g->bytes_diff);
        cr_expect_eq(g->blocks_diff, kd[i], "%s blocks_diff", g->key);
        cr_expect_eq(g->bytes, bytes[i], "%s bytes", g->key);
    }
    const lkd_group_t *gone = set.sorted[4];
    cr_expect_eq(gone->old_bytes, 30);
    cr_expect_eq(gone->old_blocks, 3);
    cr_expect_eq(gone->frame_count, 1); /* frames kept from the old snapshot */
    cr_expect_str_eq(gone->frames[0].function, "pool_alloc");
    cr_expect_eq(set.old_bytes, 188);
    cr_expect_eq(set.bytes, 368);
    cr_expect_eq(lkd_group_diff(&set, &old), -EINVAL); /* only once */
    lkd_group_set_free(&set);
    lkd_group_set_free(&old);
}

Test(group, diff_refuses_different_keys)
{
    lkd_group_set_t a = build(program, PROGRAM_N, LKD_BY_FUNCTION);
    lkd_group_set_t b = build(program, PROGRAM_N, LKD_BY_LINE);
    cr_expect_eq(lkd_group_diff(&b, &a), -EINVAL);
    lkd_group_set_free(&a);
    lkd_group_set_free(&b);
}

Test(group, different_aslr_same_keys)
{
    lkd_snapshot_t s1, s2;
    lkd_group_set_t g1, g2;
    for (int by = LKD_BY_FUNCTION; by <= LKD_BY_TRACEBACK; by++) {
        lkd_group_opts_t o = {.by = (lkd_group_by_t)by};
        make_snap(&s1, program, PROGRAM_N, 0x555500000000ull);
        make_snap(&s2, program, PROGRAM_N, RUN2);
        cr_assert_eq(lkd_group_build(&s1, &resolver, &o, &g1), 0);
        cr_assert_eq(lkd_group_build(&s2, &resolver, &o, &g2), 0);
        cr_assert_eq(lkd_group_diff(&g2, &g1), 0);
        cr_expect_eq(g2.count, g1.count, "by %s: keys differ", lkd_group_by_name(o.by));
        for (lkd_group_t *g = g2.table; g; g = g->hh.next) {
            cr_expect_eq(g->bytes_diff, 0, "by %s: %s", lkd_group_by_name(o.by), g->key);
            cr_expect_eq(g->blocks_diff, 0);
            cr_expect_eq(g->frames[0].address & ~0xffull, RUN2);
        }
        lkd_group_set_free(&g1);
        lkd_group_set_free(&g2);
        synth_free(&s1);
        synth_free(&s2);
    }
}

/* ---- report text -------------------------------------------------------------------- */

Test(group, report_text_top_and_diff)
{
    lkd_snapshot_t s1, s2;
    lkd_group_set_t g1, g2;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION};
    lkd_buf_t out = LKD_BUF_INIT;
    make_snap(&s1, program, 2, 0);
    make_snap(&s2, program, PROGRAM_N, 0);
    cr_assert_eq(lkd_group_build(&s1, &resolver, &o, &g1), 0);
    cr_assert_eq(lkd_group_build(&s2, &resolver, &o, &g2), 0);
    cr_assert_eq(lkd_group_sort(&g2, LKD_ORDER_SIZE), 0);
    lkd_report_t r = {.format = LKD_FORMAT_TEXT,
                      .command = "top",
                      .old = NULL,
                      .snap = &s2,
                      .set = &g2,
                      .limit = 2};
    cr_assert_eq(lkd_report_groups(&out, &r), 0);
    cr_expect(strstr(out.data, "  live: 1.4 KiB in 21 blocks, peak 1.4 KiB\n"), "%s", out.data);
    cr_expect(strstr(out.data, "Top 2 by function:\n#1 pool_alloc (src/pool.c:5): "
                               "size=1000 B, count=10, average=100 B\n"),
              "%s", out.data);
    cr_expect(strstr(out.data, "#2 make_record (src/rec.c:31): size=340 B, count=6, "
                               "average=56 B\n2 other groups: size=71 B, count=5\n"),
              "%s", out.data);
    lkd_buf_reset(&out);
    cr_assert_eq(lkd_group_diff(&g2, &g1), 0);
    cr_assert_eq(lkd_group_sort(&g2, LKD_ORDER_DIFF), 0);
    r = (lkd_report_t){.format = LKD_FORMAT_TEXT,
                       .command = "diff",
                       .old = &s1,
                       .snap = &s2,
                       .set = &g2,
                       .limit = 0};
    cr_assert_eq(lkd_report_groups(&out, &r), 0);
    cr_expect(strstr(out.data, "live: 1.4 KiB (+1.1 KiB) in 21 blocks (+16)"), "%s", out.data);
    cr_expect(strstr(out.data, "#3 make_record (src/rec.c:31): size=340 B (+40 B), "
                               "count=6 (+1), average=56 B\n"),
              "%s", out.data);
    lkd_buf_free(&out);
    lkd_group_set_free(&g1);
    lkd_group_set_free(&g2);
    synth_free(&s1);
    synth_free(&s2);
}

/* ---- util ----------------------------------------------------------------------------- */

static void expect_size(uint64_t bytes, const char *want)
{
    char h[LKD_HUMAN_SIZE_LEN];
    lkd_human_size(h, bytes);
    cr_expect_str_eq(h, want, "%llu B", (unsigned long long)bytes);
}

static void expect_size_diff(int64_t diff, const char *want)
{
    char h[LKD_HUMAN_SIZE_LEN];
    lkd_human_size_diff(h, diff);
    cr_expect_str_eq(h, want, "%lld B", (long long)diff);
}

Test(group, human_size)
{
    expect_size(0, "0 B");
    expect_size(100, "100 B");
    expect_size(1023, "1023 B");
    expect_size(1024, "1.0 KiB");
    expect_size(1536, "1.5 KiB");
    expect_size(32768, "32.0 KiB");
    expect_size(1048524, "1023.9 KiB");
    expect_size(1048575, "1.0 MiB"); /* never "1024.0 KiB" */
    expect_size(10u << 20, "10.0 MiB");
    expect_size(3ull << 30, "3.0 GiB");
    expect_size(UINT64_MAX, "16.0 EiB");
    expect_size_diff(0, "+0 B");
    expect_size_diff(-100, "-100 B");
    expect_size_diff(16384, "+16.0 KiB");
    expect_size_diff(-1536, "-1.5 KiB");
    expect_size_diff(INT64_MIN, "-8.0 EiB");
}

static void expect_json(const char *in, const char *want)
{
    lkd_buf_t b = LKD_BUF_INIT;
    cr_assert_eq(lkd_json_string(&b, in), 0);
    cr_expect_str_eq(b.data, want);
    lkd_buf_free(&b);
}

Test(group, json_escaping)
{
    expect_json(NULL, "null");
    expect_json("", "\"\"");
    expect_json("plain", "\"plain\"");
    expect_json("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
    expect_json("\n\t\r\b\f", "\"\\n\\t\\r\\b\\f\"");
    expect_json("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
    expect_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    expect_json("bad\xff", "\"bad\\ufffd\"");
    expect_json("\xc3", "\"\\ufffd\"");                                  /* cut short */
    expect_json("\xc0\xaf", "\"\\ufffd\\ufffd\"");                       /* overlong */
    expect_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");            /* surrogate */
    expect_json("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    expect_json("\xe2\x82", "\"\\ufffd\\ufffd\"");
}

static void expect_sanitized(const char *in, const char *want)
{
    lkd_buf_t b = LKD_BUF_INIT;
    lkd_buf_puts(&b, "keep\x1b");
    lkd_buf_puts(&b, in);
    lkd_text_sanitize(&b, 5);
    cr_expect_str_eq(b.data + 5, want);
    cr_expect_eq(b.data[4], '\x1b'); /* before `from`: untouched */
    cr_expect_eq(b.len, strlen(b.data));
    lkd_buf_free(&b);
}

Test(group, text_sanitize)
{
    expect_sanitized("plain\ttext\n", "plain\ttext\n");
    expect_sanitized("\x1b[2J\r\x7f", "?[2J??");
    expect_sanitized("caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac");
    expect_sanitized("\xc2\x9b"
                     "31m \x9b \xff",
                     "?31m ? ?");
}

Test(group, buf_grows)
{
    lkd_buf_t b = LKD_BUF_INIT;
    cr_expect_str_eq(lkd_buf_str(&b), "");
    for (int i = 0; i < 1000; i++)
        lkd_buf_printf(&b, "%04d", i);
    cr_expect_eq(b.len, 4000);
    cr_expect_eq(strncmp(b.data + 3996, "0999", 4), 0);
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    lkd_buf_reset(&b);
    lkd_buf_printf(&b, "<%s>", big);
    cr_expect_eq(b.len, 601);
    lkd_buf_free(&b);
}

/* ---- snapshot names (run) ---------------------------------------------------------- */

Test(group, snapshot_name_parse)
{
    pid_t pid;
    unsigned seq;
    cr_expect(lkd_run_parse_name("growing_leak.12345.0001.exit.snap", "exit", &pid, &seq));
    cr_expect_eq(pid, 12345);
    cr_expect_eq(seq, 1);
    cr_expect(lkd_run_parse_name("python3.11.77.12345.exit.snap", "exit", &pid, &seq));
    cr_expect_eq(pid, 77);
    cr_expect_eq(seq, 12345);
    cr_expect(!lkd_run_parse_name("a.1.0001.exit.snap.tmp", "exit", &pid, &seq));
    cr_expect(!lkd_run_parse_name("a.1.0001.manual.snap", "exit", &pid, &seq));
    cr_expect(!lkd_run_parse_name(".1.0001.exit.snap", "exit", &pid, &seq));
    cr_expect(!lkd_run_parse_name("a.x.0001.exit.snap", "exit", &pid, &seq));
    cr_expect(!lkd_run_parse_name("a.1..exit.snap", "exit", &pid, &seq));
    cr_expect(!lkd_run_parse_name("exit.snap", "exit", &pid, &seq));
    cr_expect(!lkd_run_parse_name("a.99999999999999999999.0001.exit.snap", "exit", &pid, &seq));
}
