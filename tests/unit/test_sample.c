/*
 * test_sample - unit tests of the sampled mode (LEAKDIFF_SAMPLE): the shim's exponential
 * countdown and free filter (preload/sample.c), the weights (preload/estimate.c), the
 * analyzer's estimates on synthetic sampled snapshots (group.c, report.c) with exact expected
 * figures, and the parsing of LEAKDIFF_SAMPLE and LEAKDIFF_SAMPLE_SEED (config.c, parse.c).
 *
 * Statistical checks use fixed seeds, so they are deterministic, and a tolerance of five
 * standard deviations computed from the distribution, so that they would pass with any seed
 * but for a chance of about one in 1.7 million.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "estimate.h"
#include "group.h"
#include "parse.h"
#include "report.h"
#include "sample.h"

#include "synthetic.h"

/* ---- the countdown ------------------------------------------------------------------- */

/* Countdowns are exponential with mean rate, rounded up: mean rate + 1/2 (to within 1/(12
 * rate)), standard deviation rate, and P(countdown <= rate) = 1 - 1/e. */
Test(sample, countdown_is_exponential_with_the_mean_asked)
{
    const uint64_t rates[] = {1, 100, 4096, 524288, (uint64_t)1 << 30};
    const size_t n = 200000;
    for (size_t r = 0; r < sizeof rates / sizeof *rates; r++) {
        lkd_sample_thread_t t = {0, 0};
        lkd_sample_seed(&t, 12345, r);
        double rate = (double)rates[r], sum = 0;
        size_t below = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t d = lkd_sample_draw(&t, rates[r]);
            cr_assert_geq(d, 1);
            sum += (double)d;
            below += (double)d <= rate;
        }
        double mean = sum / (double)n, want = rate + 0.5;
        double sd = sqrt(rate * rate + 1.0 / 12) / sqrt((double)n);
        if (rates[r] == 1) /* ceil(Exp(1)): geometric, mean 1 / (1 - 1/e) */
            want = 1 / (1 - exp(-1.0));
        cr_expect_leq(fabs(mean - want), 5 * sd + 1e-9, "rate %g: mean %g, want %g +- %g", rate,
                      mean, want, 5 * sd);
        double p = 1 - exp(-1.0), frac = (double)below / (double)n;
        cr_expect_leq(fabs(frac - p), 5 * sqrt(p * (1 - p) / (double)n),
                      "rate %g: P(countdown <= rate) = %g, want %g", rate, frac, p);
    }
}

Test(sample, same_seed_same_countdowns)
{
    lkd_sample_thread_t a = {0, 0}, b = {0, 0}, c = {0, 0};
    lkd_sample_seed(&a, 7, 1);
    lkd_sample_seed(&b, 7, 1);
    lkd_sample_seed(&c, 7, 2);
    size_t same_c = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t x = lkd_sample_draw(&a, 4096), y = lkd_sample_draw(&b, 4096);
        cr_assert_eq(x, y, "draw %d", i);
        same_c += lkd_sample_draw(&c, 4096) == x;
    }
    cr_expect_lt(same_c, 10, "another thread serial draws another sequence");
}

/* Runs the hot-path check on n allocations of sizes[i % count] with a fresh, seeded thread
 * state; returns how many of each size were picked. */
static void pick_many(const size_t *sizes, size_t count, size_t n, uint64_t rate, uint64_t seed,
                      size_t *picked)
{
    lkd_config.sample = rate;
    lkd_config.sample_seed = seed;
    lkd_config.sample_seeded = true;
    lkd_sample_self = (lkd_sample_thread_t){0, 0};
    memset(picked, 0, count * sizeof *picked);
    for (size_t i = 0; i < n; i++)
        picked[i % count] += lkd_sample_pick(sizes[i % count]);
}

/* Through the real hot path: an allocation of s bytes is picked with probability
 * 1 - exp(-s/rate), whatever sizes come before and after it. */
Test(sample, allocations_are_picked_with_probability_one_minus_exp)
{
    const size_t sizes[] = {1, 16, 100, 1000, 4096, 20000, 100000};
    const size_t count = sizeof sizes / sizeof *sizes, rounds = 100000;
    size_t picked[sizeof sizes / sizeof *sizes];
    pick_many(sizes, count, count * rounds, 4096, 99, picked);
    for (size_t i = 0; i < count; i++) {
        double p = lkd_estimate_prob(sizes[i], 4096), frac = (double)picked[i] / (double)rounds;
        double tol = 5 * sqrt(p * (1 - p) / (double)rounds) + 1e-12;
        cr_expect_leq(fabs(frac - p), tol, "size %zu: picked %g, want %g +- %g", sizes[i], frac, p,
                      tol);
    }
}

Test(sample, zero_bytes_never_and_off_always)
{
    size_t zero = 0, picked;
    pick_many(&zero, 1, 100000, 1, 5, &picked);
    cr_expect_eq(picked, 0, "a zero-byte block covers no bytes: never picked");
    size_t one = 1;
    pick_many(&one, 1, 1000, 0, 5, &picked);
    cr_expect_eq(picked, 1000, "LEAKDIFF_SAMPLE=0: every allocation");
}

/* ---- the free filter ------------------------------------------------------------------ */

Test(sample, filter_knows_every_recorded_address)
{
    lkd_config.sample = 4096;
    static uintptr_t addrs[5000];
    /* one recorded block every 48 KiB from 0x7f0000000000: every 12th page */
    for (size_t i = 0; i < 5000; i++) {
        addrs[i] = 0x7f0000000000ull + i * 48 * 1024 + 16 * (i % 200);
        lkd_sample_added(addrs[i]);
    }
    for (size_t i = 0; i < 5000; i++)
        cr_assert(lkd_sample_may_hold((void *)addrs[i]), "recorded block %zu", i);
    /* frees in the pages between: all skip the table (counters by page, 256 MiB apart) */
    size_t maybe = 0;
    for (size_t i = 0; i < 5000; i++)
        for (size_t page = 1; page < 12; page++)
            maybe +=
                lkd_sample_may_hold((void *)(0x7f0000000000ull + i * 48 * 1024 + page * 4096 + 32));
    cr_expect_eq(maybe, 0, "no false positive outside the recorded blocks' pages");
    cr_expect(lkd_sample_may_hold((void *)(addrs[7] + 256)), "same page: looks in the table");
    cr_expect(lkd_sample_may_hold((void *)(addrs[7] + ((uintptr_t)1 << 28))),
              "a page 256 MiB away shares the counter");
    for (size_t i = 0; i < 5000; i++)
        lkd_sample_removed(addrs[i]);
    for (size_t i = 0; i < (1u << LKD_SAMPLE_FILTER_BITS); i++)
        cr_assert_eq(lkd_sample_filter[i], 0, "counter %zu back to 0", i);
    lkd_config.sample = 0;
    cr_expect(lkd_sample_may_hold((void *)0x1230), "not sampling: every free looks");
}

Test(sample, filter_counter_saturates_and_stays)
{
    lkd_config.sample = 4096;
    uintptr_t a = 0x7f0000001000ull;
    for (unsigned i = 0; i < 70000; i++)
        lkd_sample_added(a);
    cr_expect_eq(lkd_sample_filter[lkd_sample_slot(a)], UINT16_MAX);
    for (unsigned i = 0; i < 70000; i++)
        lkd_sample_removed(a);
    cr_expect(lkd_sample_may_hold((void *)a), "a saturated counter never says no");
}

/* ---- weights ------------------------------------------------------------------------- */

Test(estimate, weights)
{
    cr_expect_float_eq(lkd_estimate_prob(1000, 1000), 1 - exp(-1.0), 1e-15);
    cr_expect_float_eq(lkd_estimate_bytes(1000, 1000), 1000 / (1 - exp(-1.0)), 1e-9);
    cr_expect_float_eq(lkd_estimate_blocks(1000, 1000), 1 / (1 - exp(-1.0)), 1e-12);
    /* s << rate: s/p -> rate + s/2, stays exact thanks to expm1 */
    cr_expect_float_eq(lkd_estimate_bytes(1, (uint64_t)1 << 40), 1099511627776.5, 1e-3);
    cr_expect_eq(lkd_estimate_bytes(77, 0), 77.0);
    cr_expect_eq(lkd_estimate_blocks(77, 0), 1.0);
    cr_expect_eq(lkd_estimate_bytes(0, 4096), 0.0);
    cr_expect_eq(lkd_estimate_blocks(0, 4096), 1.0);
    cr_expect_eq(lkd_estimate_round(2.5), 3);
    cr_expect_eq(lkd_estimate_round(2.49), 2);
    cr_expect_eq(lkd_estimate_round(-1), 0);
    cr_expect_eq(lkd_estimate_round(NAN), 0);
    cr_expect_eq(lkd_estimate_round(1e30), UINT64_MAX);
}

/* ---- the analyzer's estimates on synthetic snapshots ------------------------------------ */

#define APP "/app/bin/app"
static const lkd_frame_t f_record[] = {{"make_record", "/app/src/rec.c", 31, APP, 0, 0, false}};
static const lkd_frame_t f_main[] = {{"main", "/app/src/main.c", 50, APP, 0, 0, false}};
static const lkd_frame_t f_pool[] = {{"pool_alloc", "/app/src/pool.c", 5, APP, 0, 0, false}};
static const lkd_frame_t f_late[] = {{"late_cache", "/app/src/cache.c", 9, APP, 0, 0, false}};
static const lkd_frame_t *const fake_frames[] = {f_record, f_main, f_pool, f_late};

/* Address k + 1 resolves to fake_frames[k]. */
static void fake_resolve(void *ctx, uint64_t address, const lkd_frame_t **frames, size_t *count)
{
    (void)ctx;
    *frames = fake_frames[(address - 1) % 4];
    *count = 1;
}

static const lkd_resolver_t resolver = {fake_resolve, NULL};
static char strings[] = "\0/app/bin/app\0exit\0/app\0";

/* Rate 1000. Stack 0 (make_record): 40 and 2000 bytes; stack 1 (main): 1000; stack 2
 * (pool_alloc): 5000; stack 3 (late_cache): 250 and 250, born last (birth 10, 11). With
 * p = 1 - exp(-s/1000), each group's estimate sum(s/p), sum(1/p), rounded (computed apart
 * in Python): make_record 3333.17 B 26.66 blocks; main 1581.98 B 1.58; pool_alloc 5033.92 B
 * 1.0068; late_cache 2260.41 B 9.04. */
static const struct {
    uint64_t size, birth;
    uint32_t stack;
} synthetic[] = {{40, 1, 0}, {1000, 2, 1}, {2000, 3, 0}, {5000, 4, 2}, {250, 10, 3}, {250, 11, 3}};
#define SYNTHETIC_N (sizeof synthetic / sizeof *synthetic)

static uint64_t stack_frames[4] = {1, 2, 3, 4};
static uint32_t stack_depths[4] = {1, 1, 1, 1};
static uint64_t stack_offsets[5] = {0, 1, 2, 3, 4};

/* A snapshot of the synthetic blocks, sampled at rate (0: unsampled). Its per-stack
 * aggregates hold the raw sums, as the writer stores them: a sampled snapshot must not use
 * them. */
static void make_sampled(lkd_snapshot_t *s, uint64_t rate, const char *path)
{
    memset(s, 0, sizeof *s);
    s->path = (char *)path;
    s->strings = strings;
    s->strings_len = sizeof strings - 1;
    s->process = (lkd_fmt_process_t){.pid = 7, .exe = 1, .label = 14, .cwd = 19};
    if (rate) {
        s->process.flags = LKD_FMT_F_SAMPLED;
        s->process.sample_rate = rate;
    }
    s->stack_count = s->frame_count = 4;
    s->frames = stack_frames;
    s->stack_depths = stack_depths;
    s->stack_offsets = stack_offsets;
    s->stack_stats = calloc(4, sizeof *s->stack_stats);
    s->stack_stat_count = 4;
    s->blocks = calloc(SYNTHETIC_N, sizeof *s->blocks);
    s->block_count = SYNTHETIC_N;
    for (size_t i = 0; i < SYNTHETIC_N; i++) {
        s->blocks[i] = (lkd_fmt_block_t){.address = 0x1000 + 0x10000 * i,
                                         .size = synthetic[i].size,
                                         .birth = synthetic[i].birth,
                                         .stack = synthetic[i].stack};
        s->stack_stats[synthetic[i].stack].stack = synthetic[i].stack;
        s->stack_stats[synthetic[i].stack].bytes += synthetic[i].size;
        s->stack_stats[synthetic[i].stack].blocks++;
        s->totals.bytes += synthetic[i].size;
        s->totals.blocks++;
    }
    if (rate) { /* what the writer puts in a sampled snapshot's totals */
        s->totals.bytes = 3333 + 1582 + 5034 + 2260;
        s->totals.blocks = 27 + 2 + 1 + 9;
    }
    s->totals.peak_bytes = s->totals.bytes;
    s->totals.birth_next = 12;
}

static void free_sampled(lkd_snapshot_t *s)
{
    free(s->stack_stats);
    free(s->blocks);
}

Test(estimate, top_of_a_sampled_snapshot)
{
    lkd_snapshot_t s;
    lkd_group_set_t set;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION};
    make_sampled(&s, 1000, "sampled.snap");
    cr_assert_eq(lkd_group_sample_rate(&s), 1000);
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    expect_group(&set, "make_record", 3333, 27);
    expect_group(&set, "main", 1582, 2);
    expect_group(&set, "pool_alloc", 5034, 1);
    expect_group(&set, "late_cache", 2260, 9);
    cr_expect_eq(set.bytes, s.totals.bytes, "groups add up to the writer's totals");
    cr_expect_eq(set.blocks, s.totals.blocks);
    lkd_group_set_free(&set);
    free_sampled(&s);
}

Test(estimate, survivors_and_diff_get_the_weights)
{
    lkd_snapshot_t s, plain;
    lkd_group_set_t set, old;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION, .min_birth = 3};
    make_sampled(&s, 1000, "sampled.snap");
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    /* born >= 3: make_record's 2000-byte block (2000 / (1 - e^-2) = 2313.03 B, 1.1565), both
     * late_cache blocks, pool_alloc */
    expect_group(&set, "make_record", 2313, 1);
    expect_group(&set, "late_cache", 2260, 9);
    expect_group(&set, "pool_alloc", 5034, 1);
    cr_expect_null(lkd_group_find(&set, "main"));
    lkd_group_set_free(&set);

    /* diff of an unsampled OLD and the sampled NEW: exact against estimate, by key */
    lkd_group_opts_t all = {.by = LKD_BY_FUNCTION};
    make_sampled(&plain, 0, "plain.snap");
    cr_assert_eq(lkd_group_sample_rate(&plain), 0);
    cr_assert_eq(lkd_group_build(&plain, &resolver, &all, &old), 0);
    expect_group(&old, "make_record", 2040, 2);
    cr_assert_eq(lkd_group_build(&s, &resolver, &all, &set), 0);
    cr_assert_eq(lkd_group_diff(&set, &old), 0);
    lkd_group_t *g = lkd_group_find(&set, "make_record");
    cr_expect_eq(g->bytes_diff, 3333 - 2040);
    cr_expect_eq(g->blocks_diff, 27 - 2);
    lkd_group_set_free(&set);
    lkd_group_set_free(&old);
    free_sampled(&plain);
    free_sampled(&s);
}

/* Renders the top (or, with old, diff) report of s in format into out. */
static void render(lkd_buf_t *out, lkd_format_t format, const lkd_snapshot_t *s,
                   const lkd_snapshot_t *old)
{
    lkd_group_set_t set, oset;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION};
    cr_assert_eq(lkd_group_build(s, &resolver, &o, &set), 0);
    if (old) {
        cr_assert_eq(lkd_group_build(old, &resolver, &o, &oset), 0);
        cr_assert_eq(lkd_group_diff(&set, &oset), 0);
    }
    cr_assert_eq(lkd_group_sort(&set, old ? LKD_ORDER_DIFF : LKD_ORDER_SIZE), 0);
    lkd_report_t r = {
        .format = format, .command = old ? "diff" : "top", .old = old, .snap = s, .set = &set};
    cr_assert_eq(lkd_report_groups(out, &r), 0);
    lkd_group_set_free(&set);
    if (old)
        lkd_group_set_free(&oset);
}

Test(estimate, every_output_says_sampled)
{
    lkd_snapshot_t s, plain;
    lkd_buf_t b = LKD_BUF_INIT;
    make_sampled(&s, 1000, "sampled.snap");
    make_sampled(&plain, 0, "plain.snap");

    render(&b, LKD_FORMAT_TEXT, &s, NULL);
    cr_expect_not_null(strstr(lkd_buf_str(&b), "note: sampled.snap: sampled (LEAKDIFF_SAMPLE=1000"),
                       "%s", lkd_buf_str(&b));
    cr_expect_not_null(strstr(lkd_buf_str(&b), "sizes and counts are estimates"));
    cr_expect_not_null(strstr(lkd_buf_str(&b), "live: 11.9 KiB in 39 blocks"), "%s",
                       lkd_buf_str(&b));
    cr_expect_not_null(strstr(lkd_buf_str(&b), "pool_alloc (src/pool.c:5): size=4.9 KiB, "
                                               "count=1, average=4.9 KiB"),
                       "%s", lkd_buf_str(&b));
    lkd_buf_reset(&b);
    render(&b, LKD_FORMAT_JSON, &s, NULL);
    cr_expect_not_null(strstr(lkd_buf_str(&b), "\"sampled\":{\"rate\":1000,\"mixed\":false}"), "%s",
                       lkd_buf_str(&b));
    cr_expect_not_null(strstr(lkd_buf_str(&b), "\"key\":\"main\",\"bytes\":1582,\"blocks\":2,"
                                               "\"average\":791"),
                       "%s", lkd_buf_str(&b));
    lkd_buf_reset(&b);
    render(&b, LKD_FORMAT_JSON, &plain, NULL);
    cr_expect_not_null(strstr(lkd_buf_str(&b), "\"sampled\":null"), "%s", lkd_buf_str(&b));
    lkd_buf_reset(&b);
    render(&b, LKD_FORMAT_TEXT, &plain, NULL);
    cr_expect_null(strstr(lkd_buf_str(&b), "sampled"), "%s", lkd_buf_str(&b));

    /* a diff of unsampled OLD and sampled NEW: allowed, and flagged */
    lkd_buf_reset(&b);
    render(&b, LKD_FORMAT_TEXT, &s, &plain);
    cr_expect_not_null(strstr(lkd_buf_str(&b), "note: sampled.snap is sampled and plain.snap is "
                                               "not: each change sets an estimate against an "
                                               "exact figure"),
                       "%s", lkd_buf_str(&b));
    lkd_buf_reset(&b);
    render(&b, LKD_FORMAT_JSON, &s, &plain);
    cr_expect_not_null(strstr(lkd_buf_str(&b), "\"sampled\":{\"rate\":1000,\"mixed\":true}"), "%s",
                       lkd_buf_str(&b));
    lkd_buf_reset(&b);
    render(&b, LKD_FORMAT_JSON, &plain, &s); /* sampled OLD, unsampled NEW */
    cr_expect_not_null(strstr(lkd_buf_str(&b), "\"sampled\":{\"rate\":1000,\"mixed\":true}"), "%s",
                       lkd_buf_str(&b));

    /* collapsed stacks: the note is rendered apart (the CLI prints it on stderr) */
    lkd_buf_reset(&b);
    lkd_group_set_t set;
    lkd_report_t r = {.format = LKD_FORMAT_COLLAPSED, .command = "top", .snap = &s, .set = &set};
    cr_assert_eq(lkd_report_sampled_note(&b, &r), 0);
    cr_expect_str_eq(lkd_buf_str(&b),
                     "leakdiff: note: sampled.snap is sampled (LEAKDIFF_SAMPLE=1000): its "
                     "figures are estimates\n");
    lkd_buf_reset(&b);
    r.snap = &plain;
    cr_assert_eq(lkd_report_sampled_note(&b, &r), 0);
    cr_expect_eq(b.len, 0);

    lkd_buf_reset(&b);
    cr_assert_eq(lkd_report_info(&b, LKD_FORMAT_TEXT, &s), 0);
    cr_expect_not_null(strstr(lkd_buf_str(&b), "totals (sampled: estimates of the whole heap)"),
                       "%s", lkd_buf_str(&b));
    cr_expect_not_null(strstr(lkd_buf_str(&b), "unknown frees not counted (sampled)"));
    lkd_buf_reset(&b);
    cr_assert_eq(lkd_report_info(&b, LKD_FORMAT_JSON, &s), 0);
    cr_expect_not_null(strstr(lkd_buf_str(&b), "\"sampled\":{\"rate\":1000}"), "%s",
                       lkd_buf_str(&b));
    lkd_buf_free(&b);
    free_sampled(&s);
    free_sampled(&plain);
}

/* ---- LEAKDIFF_SAMPLE and LEAKDIFF_SAMPLE_SEED ------------------------------------------- */

Test(parse, sizes)
{
    uint64_t v = 99;
    cr_expect(lkd_parse_size("0", 100, &v) && v == 0);
    cr_expect(lkd_parse_size("524288", LKD_SAMPLE_MAX, &v) && v == 524288);
    cr_expect(lkd_parse_size("512K", LKD_SAMPLE_MAX, &v) && v == 524288);
    cr_expect(lkd_parse_size("512k", LKD_SAMPLE_MAX, &v) && v == 524288);
    cr_expect(lkd_parse_size("3M", LKD_SAMPLE_MAX, &v) && v == 3u << 20);
    cr_expect(lkd_parse_size("2g", LKD_SAMPLE_MAX, &v) && v == (uint64_t)2 << 30);
    cr_expect(lkd_parse_size("1T", LKD_SAMPLE_MAX, &v) && v == LKD_SAMPLE_MAX);
    v = 99;
    const char *bad[] = {"",
                         "K",
                         "-1",
                         "1.5K",
                         "2T",
                         "12Q",
                         " 1",
                         "1 ",
                         "1KB",
                         "0x10",
                         "KK",
                         "99999999999999999999",
                         "17179869184G"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect(!lkd_parse_size(bad[i], LKD_SAMPLE_MAX, &v), "'%s' is refused", bad[i]);
    cr_expect_eq(v, 99, "a refused value leaves *out alone");
    cr_expect(!lkd_parse_size(NULL, 100, &v));
}

Test(config, sample_and_seed)
{
    setenv("LEAKDIFF_SAMPLE", "512K", 1);
    setenv("LEAKDIFF_SAMPLE_SEED", "12345678901234567890", 1);
    lkd_config_load();
    cr_expect_eq(lkd_config.sample, 524288);
    cr_expect(lkd_config.sample_seeded);
    cr_expect_eq(lkd_config.sample_seed, 12345678901234567890ull);
}

Test(config, sample_unset_records_everything)
{
    unsetenv("LEAKDIFF_SAMPLE");
    unsetenv("LEAKDIFF_SAMPLE_SEED");
    lkd_config_load();
    cr_expect_eq(lkd_config.sample, 0);
    cr_expect(!lkd_config.sample_seeded);
}

Test(config, bad_sample_warns_once_and_records_everything, .init = cr_redirect_stderr)
{
    setenv("LEAKDIFF_SAMPLE", "lots", 1);
    unsetenv("LEAKDIFF_SAMPLE_SEED");
    lkd_config_load();
    cr_expect_eq(lkd_config.sample, 0);
    cr_assert_stderr_eq_str("leakdiff: LEAKDIFF_SAMPLE=lots is not a number of bytes up to 1T "
                            "(e.g. 524288 or 512K); using 0 (every allocation recorded)\n");
}

Test(config, bad_seed_warns_once, .init = cr_redirect_stderr)
{
    setenv("LEAKDIFF_SAMPLE", "4096", 1);
    setenv("LEAKDIFF_SAMPLE_SEED", "-3", 1);
    lkd_config_load();
    cr_expect_eq(lkd_config.sample, 4096);
    cr_expect(!lkd_config.sample_seeded);
    cr_assert_stderr_eq_str(
        "leakdiff: LEAKDIFF_SAMPLE_SEED=-3 is not a whole number; using a random seed\n");
}
