/*
 * test_check - unit tests of the leak gate: suppression files (parsing, malformed lines,
 * matching with anchors and wildcards, the built-in list), the rule that a suppressed DIRECT
 * block hides its INDIRECT blocks, the three check modes, the baseline comparison, filters,
 * the check options, and the exact shape of every report format.
 *
 * Snapshots are synthetic lkd_snapshot_t values with per-block verdicts; addresses resolve
 * through a fake resolver (the low byte of an address names its frames), so no binary,
 * symbolizer or file is involved. Figures are exact.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "check_cli.h"
#include "check_report.h"
#include "suppress.h"
#include "util.h"

/* ---- fake symbols ----------------------------------------------------------------- */

#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"
#define LDSO "/lib64/ld-linux-x86-64.so.2"
#define APP "/app/bin/app"
#define PLUGIN "/app/lib/libplugin.so"

enum { A_MALLOC = 1, A_NODE, A_CHILD, A_MAIN, A_CACHE, A_DLOBJ, A_DLINIT, A_CTOR, A_PARSE };

static const lkd_frame_t fake_frames[][1] = {
    [A_MALLOC] = {{"malloc", NULL, 0, LIBC, 0, 0, false}},
    [A_NODE] = {{"make_node", "/app/src/tree.c", 10, APP, 0, 0, false}},
    [A_CHILD] = {{"make_child", "/app/src/tree.c", 20, APP, 0, 0, false}},
    [A_MAIN] = {{"main", "/app/src/main.c", 5, APP, 0, 0, false}},
    [A_CACHE] = {{"cache_put", "/app/src/cache.c", 7, APP, 0, 0, false}},
    [A_DLOBJ] = {{"_dl_new_object", "elf/dl-object.c", 50, LDSO, 0, 0, false}},
    [A_DLINIT] = {{"_dl_init", "elf/dl-init.c", 100, LDSO, 0, 0, false}},
    [A_CTOR] = {{"plugin_ctor", "/app/src/plugin.c", 3, PLUGIN, 0, 0, false}},
    [A_PARSE] = {{"parse+0x40", NULL, 0, "/usr/lib/libparse.so", 0, 0, false}},
};

/* Resolves address (low byte: the frame) into a per-call copy with the address filled in. */
static void fake_resolve(void *ctx, uint64_t address, const lkd_frame_t **frames, size_t *count)
{
    static lkd_frame_t out[256];
    static size_t used;
    (void)ctx;
    lkd_frame_t *f = &out[used++ % 256];
    *f = fake_frames[address & 0xff][0];
    f->address = address;
    *frames = f;
    *count = 1;
}

/* ---- synthetic snapshots ------------------------------------------------------------ */

typedef struct fake_stack {
    uint64_t addrs[4];
    uint32_t depth;
} fake_stack_t;

/* A program: a lost tree (root from make_node, children from make_child), a reachable
 * cache, the loader's own block and its child, a plugin constructor's leak (run by the
 * loader), and a leak from a function without line info. */
static const fake_stack_t stacks[] = {
    {{A_MALLOC, A_NODE, A_MAIN}, 3},          /* 0: tree root */
    {{A_MALLOC, A_CHILD, A_NODE, A_MAIN}, 4}, /* 1: tree children */
    {{A_MALLOC, A_CACHE, A_MAIN}, 3},         /* 2: cache */
    {{A_MALLOC, A_DLOBJ, A_DLINIT}, 3},       /* 3: the loader's */
    {{A_MALLOC, A_CTOR, A_DLINIT}, 3},        /* 4: a constructor's leak */
    {{A_MALLOC, A_PARSE, A_MAIN}, 3},         /* 5: no line info */
};
#define STACK_N (sizeof stacks / sizeof stacks[0])

typedef struct fake_block {
    uint64_t size;
    uint32_t stack, verdict, leader;
} fake_block_t;

enum { R = LKD_FMT_BLK_REACHABLE, I = LKD_FMT_BLK_INDIRECT, D = LKD_FMT_BLK_DIRECT };

/* Leaked: direct 100 + 64 + 48 + 7 = 219 B in 4, indirect 30 + 20 + 16 = 66 B in 3. */
static const fake_block_t program[] = {
    {100, 0, D, 0},                 /* b0: the tree's root */
    {30, 1, I, 1},                  /* b1, b2: its children */
    {20, 1, I, 1},  {500, 2, R, 0}, /* b3: reachable */
    {64, 3, D, 0},                  /* b4: the loader's */
    {16, 3, I, 5},                  /* b5: hangs from b4 */
    {48, 4, D, 0},                  /* b6: the constructor's */
    {7, 5, D, 0},                   /* b7 */
};
#define PROGRAM_N (sizeof program / sizeof program[0])

static char strings[] = "\0/app/bin/app\0exit\0/app\0";

/* Fills s: the stacks above, blocks b[0..n) at addresses 0x1000, 0x2000, ...; verdicts:
 * the exit-snapshot flags with LKD_FMT_F_REACHABILITY. Free with free_snap. */
static void make_snap(lkd_snapshot_t *s, const fake_block_t *b, size_t n, bool verdicts,
                      const char *path, uint32_t pid)
{
    size_t nframes = 0;
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < STACK_N; i++)
        nframes += stacks[i].depth;
    s->path = (char *)path;
    s->strings = strings;
    s->strings_len = sizeof strings - 1;
    s->process.pid = pid;
    s->process.exe = 1;
    s->process.label = 14;
    s->process.cwd = 19;
    s->process.flags = LKD_FMT_F_EXIT | (verdicts ? LKD_FMT_F_REACHABILITY : 0);
    s->stack_depths = calloc(STACK_N, sizeof *s->stack_depths);
    s->stack_offsets = calloc(STACK_N, sizeof *s->stack_offsets);
    s->frames = calloc(nframes, sizeof *s->frames);
    s->stack_stats = calloc(STACK_N, sizeof *s->stack_stats);
    s->stack_count = s->stack_stat_count = STACK_N;
    s->frame_count = nframes;
    for (size_t i = 0, f = 0; i < STACK_N; i++) {
        s->stack_depths[i] = stacks[i].depth;
        s->stack_offsets[i] = f;
        s->stack_stats[i].stack = (uint32_t)i;
        for (uint32_t d = 0; d < stacks[i].depth; d++)
            s->frames[f++] = (0x55000000ull + 0x100 * i) | stacks[i].addrs[d];
    }
    s->blocks = calloc(n ? n : 1, sizeof *s->blocks);
    s->block_count = n;
    for (size_t i = 0; i < n; i++) {
        s->blocks[i] = (lkd_fmt_block_t){
            0x1000 * (i + 1),           b[i].size, i + 1, b[i].stack, verdicts ? b[i].verdict : 0,
            verdicts ? b[i].leader : 0, 0};
        s->stack_stats[b[i].stack].bytes += b[i].size;
        s->stack_stats[b[i].stack].blocks++;
        s->totals.bytes += b[i].size;
        s->totals.blocks++;
    }
}

static void free_snap(lkd_snapshot_t *s)
{
    free(s->stack_depths);
    free(s->stack_offsets);
    free(s->frames);
    free(s->stack_stats);
    free(s->blocks);
}

static lkd_check_input_t input(const lkd_snapshot_t *s)
{
    lkd_check_input_t in = {s, {fake_resolve, NULL}};
    return in;
}

static lkd_supp_list_t rules(const char *text)
{
    lkd_supp_list_t l = {NULL, 0};
    char err[256];
    cr_assert_eq(lkd_supp_parse(&l, text, strlen(text), "t.supp", false, err, sizeof err), 0, "%s",
                 err);
    return l;
}

/* The group of kind and key among u's reported groups, or NULL. */
static const lkd_check_group_t *find(const lkd_check_unit_t *u, lkd_leak_kind_t kind,
                                     const char *key)
{
    for (size_t i = 0; i < u->group_count; i++)
        if (u->groups[i].kind == kind && !strcmp(u->groups[i].group->key, key))
            return &u->groups[i];
    return NULL;
}

static void expect_group(const lkd_check_unit_t *u, lkd_leak_kind_t kind, const char *key,
                         uint64_t bytes, uint64_t blocks)
{
    const lkd_check_group_t *e = find(u, kind, key);
    cr_assert_not_null(e, "no %s group '%s'", lkd_leak_kind_name(kind), key);
    cr_expect_eq(e->group->bytes, bytes, "%s '%s' bytes %llu, want %llu", lkd_leak_kind_name(kind),
                 key, (unsigned long long)e->group->bytes, (unsigned long long)bytes);
    cr_expect_eq(e->group->blocks, blocks, "%s '%s' blocks", lkd_leak_kind_name(kind), key);
}

static const lkd_group_opts_t by_function = {.by = LKD_BY_FUNCTION};

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- suppression files -------------------------------------------------------------- */

Test(suppress, parse_comments_blanks_crlf)
{
    const char text[] = "# a comment\n"
                        "\n"
                        "   leak:alpha  \r\n"
                        "\t# indented comment\n"
                        "leak_site:^beta$\n"
                        "leak: gamma*delta\n"
                        "leak:last-no-newline";
    lkd_supp_list_t l = rules(text);
    cr_assert_eq(l.n, 4);
    cr_expect_str_eq(l.v[0].pattern, "alpha");
    cr_expect_eq(l.v[0].line, 3);
    cr_expect(!l.v[0].site_only);
    cr_expect_str_eq(l.v[1].pattern, "^beta$");
    cr_expect_eq(l.v[1].line, 5);
    cr_expect(l.v[1].site_only);
    cr_expect_str_eq(l.v[2].pattern, "gamma*delta");
    cr_expect_str_eq(l.v[3].pattern, "last-no-newline");
    cr_expect_eq(l.v[3].line, 7);
    cr_expect_str_eq(l.v[3].source, "t.supp");
    cr_expect(!l.v[3].builtin);
    lkd_supp_list_free(&l);
    cr_expect_eq(l.n, 0);
}

/* Parses text, which must fail; returns the message. */
static const char *malformed(const char *text, size_t len)
{
    static char err[256];
    lkd_supp_list_t l = {NULL, 0};
    cr_expect_eq(lkd_supp_parse(&l, text, len, "x.supp", false, err, sizeof err), -EINVAL);
    lkd_supp_list_free(&l);
    return err;
}

Test(suppress, malformed_lines_name_file_and_line)
{
    cr_expect_str_eq(malformed("leak:a\n\nfoo\n", 12),
                     "x.supp:3: 'foo' is not a suppression (want leak:PATTERN)");
    cr_expect_str_eq(malformed("# tsan\nrace:foo\n", 16),
                     "x.supp:2: unknown suppression type 'race' (leakdiff knows leak:PATTERN and "
                     "leak_site:PATTERN)");
    cr_expect_str_eq(malformed("leak:   \n", 9), "x.supp:1: empty pattern after 'leak:'");
    cr_expect_str_eq(malformed("LEAK:x\n", 7),
                     "x.supp:1: unknown suppression type 'LEAK' (leakdiff knows leak:PATTERN "
                     "and leak_site:PATTERN)");
    cr_expect_str_eq(malformed("leak:a\nleak:b\0c\n", 15),
                     "x.supp:2: a NUL byte in the line (not a text file?)");
}

Test(suppress, rules_before_an_error_are_kept)
{
    lkd_supp_list_t l = {NULL, 0};
    char err[256];
    const char text[] = "leak:one\nleak:two\nbad\nleak:three\n";
    cr_expect_eq(lkd_supp_parse(&l, text, strlen(text), "y", false, err, sizeof err), -EINVAL);
    cr_expect_eq(l.n, 2);
    lkd_supp_list_free(&l);
}

/* Whether pattern matches s. */
static bool pm(const char *pattern, const char *s)
{
    lkd_supp_list_t l = {NULL, 0};
    char err[256], line[256];
    snprintf(line, sizeof line, "leak:%s", pattern);
    cr_assert_eq(lkd_supp_parse(&l, line, strlen(line), "p", false, err, sizeof err), 0, "%s", err);
    bool m = lkd_supp_pattern_matches(&l.v[0], s);
    lkd_supp_list_free(&l);
    return m;
}

Test(suppress, substring_anchors_and_wildcards)
{
    cr_expect(pm("foo", "foo"));
    cr_expect(pm("foo", "my_foo_bar")); /* unanchored: anywhere */
    cr_expect(!pm("foo", "fo"));
    cr_expect(pm("^foo", "foobar"));
    cr_expect(!pm("^foo", "xfoo"));
    cr_expect(pm("foo$", "xfoo"));
    cr_expect(!pm("foo$", "foox"));
    cr_expect(pm("foo$", "foofoo")); /* the anchor means the end, whatever came before */
    cr_expect(pm("^foo$", "foo"));
    cr_expect(!pm("^foo$", "foofoo"));
    cr_expect(pm("f*o", "fxyzo"));
    cr_expect(pm("^a*b*c$", "aXbYbZc"));
    cr_expect(!pm("^a*b*c$", "aXbYc!"));
    cr_expect(pm("^*", "anything"));
    cr_expect(pm("*", "x"));
    cr_expect(!pm("*", "")); /* empty strings never match, as in LeakSanitizer */
    cr_expect(pm("lib*.so", "/usr/lib/libfoo.so.1"));
    cr_expect(pm("a$b", "xa$by")); /* '$' inside is a plain character */
    cr_expect(pm("x^y", "x^y"));
    cr_expect(pm("operator new", "operator new(unsigned long)"));
    cr_expect(!pm("^std::vector", "foo<std::vector<int>>"));
}

Test(suppress, frame_function_file_module_and_offset)
{
    lkd_supp_list_t l = rules("leak:^parse$\nleak:tree.c\nleak:libparse\nleak:^/app/src/\n");
    const lkd_frame_t *parse = &fake_frames[A_PARSE][0], *node = &fake_frames[A_NODE][0];
    cr_expect(lkd_supp_frame_matches(&l.v[0], parse)); /* "parse+0x40" as "parse" */
    cr_expect(!lkd_supp_frame_matches(&l.v[0], node));
    cr_expect(lkd_supp_frame_matches(&l.v[1], node)); /* file */
    cr_expect(!lkd_supp_frame_matches(&l.v[1], parse));
    cr_expect(lkd_supp_frame_matches(&l.v[2], parse)); /* module */
    cr_expect(lkd_supp_frame_matches(&l.v[3], node));  /* anchored full path */
    cr_expect(!lkd_supp_frame_matches(&l.v[3], parse));
    lkd_supp_list_free(&l);
}

Test(suppress, builtin_list_parses)
{
    lkd_supp_list_t l = {NULL, 0};
    cr_assert_eq(lkd_supp_add_builtin(&l), 0);
    cr_expect_geq(l.n, 10);
    for (size_t i = 0; i < l.n; i++) {
        cr_expect(l.v[i].builtin);
        cr_expect_str_eq(l.v[i].source, LKD_SUPP_BUILTIN_SOURCE);
    }
    cr_expect_str_eq(l.v[0].pattern, "^_dl_");
    cr_expect(l.v[0].site_only);
    lkd_supp_list_free(&l);
}

/* ---- which blocks rules hide -------------------------------------------------------- */

/* The per-block rules of the program snapshot under text. */
static uint32_t *hidden(const char *text, bool builtin, bool leaked_only)
{
    lkd_snapshot_t s;
    lkd_supp_list_t l = rules(text);
    uint32_t *r;
    if (builtin)
        cr_assert_eq(lkd_supp_add_builtin(&l), 0);
    make_snap(&s, program, PROGRAM_N, true, "p.snap", 1);
    lkd_check_input_t in = input(&s);
    cr_assert_eq(lkd_check_suppress(&in, &by_function, &l, leaked_only, &r), 0);
    free_snap(&s);
    lkd_supp_list_free(&l);
    return r;
}

Test(suppress, suppressed_parent_hides_its_children)
{
    /* make_node is in the root's stack and in the children's (outer frame): all three */
    uint32_t *r = hidden("leak:^make_node$\n", false, true);
    uint32_t want[PROGRAM_N] = {1, 1, 1, 0, 0, 0, 0, 0};
    cr_expect_arr_eq(r, want, sizeof want);
    free(r);
    /* a leak_site rule on the root's site: the children's site is make_child, yet the
     * children hang from the root, so they are hidden with it */
    r = hidden("leak_site:^make_node$\n", false, true);
    cr_expect_arr_eq(r, want, sizeof want);
    free(r);
    /* a rule on the children only leaves the root */
    r = hidden("leak:make_child\n", false, true);
    uint32_t want2[PROGRAM_N] = {0, 1, 1, 0, 0, 0, 0, 0};
    cr_expect_arr_eq(r, want2, sizeof want2);
    free(r);
}

Test(suppress, first_matching_rule_wins_and_reachable_is_untouched)
{
    uint32_t *r = hidden("leak:nothing\nleak:main\nleak:tree.c\n", false, true);
    /* every leaked stack but the loader's and the constructor's has main; b3 is reachable */
    uint32_t want[PROGRAM_N] = {2, 2, 2, 0, 0, 0, 0, 2};
    cr_expect_arr_eq(r, want, sizeof want);
    free(r);
    r = hidden("leak:cache_put\n", false, false); /* all blocks considered: b3 too */
    uint32_t want2[PROGRAM_N] = {0, 0, 0, 1, 0, 0, 0, 0};
    cr_expect_arr_eq(r, want2, sizeof want2);
    free(r);
}

Test(suppress, builtin_hides_the_loader_not_a_constructor_it_runs)
{
    uint32_t *r = hidden("", true, true);
    /* b4 (site _dl_new_object) and b5 (hangs from b4); b6's site is plugin_ctor, although
     * _dl_init is further out in its stack */
    cr_expect_eq(r[4], 1);
    cr_expect_eq(r[5], 1);
    cr_expect_eq(r[6], 0);
    cr_expect_eq(r[0] + r[1] + r[2] + r[3] + r[7], 0);
    free(r);
    /* the same pattern as an any-frame rule would hide the constructor's leak too */
    r = hidden("leak:^_dl_\n", false, true);
    cr_expect_eq(r[6], 1);
    free(r);
}

/* ---- LEAKS: one exit snapshot -------------------------------------------------------- */

typedef struct fixture {
    lkd_snapshot_t snap, base;
    lkd_supp_list_t supps;
    lkd_check_unit_t unit;
    char err[512];
} fixture_t;

static int check_one(fixture_t *f, const char *supp_text, bool builtin, uint64_t max_leaked,
                     const lkd_group_opts_t *g)
{
    memset(f, 0, sizeof *f);
    make_snap(&f->snap, program, PROGRAM_N, true, "p.snap", 42);
    f->supps = rules(supp_text);
    if (builtin)
        cr_assert_eq(lkd_supp_add_builtin(&f->supps), 0);
    lkd_check_input_t in = input(&f->snap);
    lkd_check_opts_t o = {g ? g : &by_function, &f->supps, max_leaked, 0};
    return lkd_check_leaks(&f->unit, &in, NULL, &o, f->err, sizeof f->err);
}

static void fixture_free(fixture_t *f)
{
    lkd_check_unit_free(&f->unit);
    lkd_supp_list_free(&f->supps);
    free_snap(&f->snap);
    if (f->base.blocks)
        free_snap(&f->base);
}

Test(check, leaks_exact_without_suppressions)
{
    fixture_t f;
    cr_assert_eq(check_one(&f, "", false, 0, NULL), 0, "%s", f.err);
    lkd_check_unit_t *u = &f.unit;
    cr_expect_eq(u->mode, LKD_CHECK_LEAKS);
    cr_expect_eq(u->bytes, 285);
    cr_expect_eq(u->blocks, 7);
    cr_expect_eq(u->direct_bytes, 219);
    cr_expect_eq(u->direct_blocks, 4);
    cr_expect_eq(u->indirect_bytes, 66);
    cr_expect_eq(u->indirect_blocks, 3);
    cr_expect_eq(u->suppressed_blocks, 0);
    cr_expect_eq(u->measured, 285);
    cr_expect(!u->passed);
    cr_expect_eq(u->group_count, 6);
    cr_expect_eq(u->failing_groups, 6);
    expect_group(u, LKD_LEAK_DIRECT, "make_node", 100, 1);
    expect_group(u, LKD_LEAK_DIRECT, "_dl_new_object", 64, 1);
    expect_group(u, LKD_LEAK_DIRECT, "plugin_ctor", 48, 1);
    expect_group(u, LKD_LEAK_DIRECT, "parse", 7, 1);
    expect_group(u, LKD_LEAK_INDIRECT, "make_child", 50, 2);
    expect_group(u, LKD_LEAK_INDIRECT, "_dl_new_object", 16, 1);
    cr_expect_null(find(u, LKD_LEAK_DIRECT, "cache_put")); /* reachable */
    /* order: largest first, direct before indirect */
    cr_expect_str_eq(u->groups[0].group->key, "make_node");
    cr_expect_str_eq(u->groups[1].group->key, "_dl_new_object");
    cr_expect_eq(u->groups[1].kind, LKD_LEAK_DIRECT);
    cr_expect_str_eq(u->groups[2].group->key, "make_child");
    cr_expect_str_eq(u->groups[5].group->key, "parse");
    fixture_free(&f);
}

Test(check, limit_is_inclusive)
{
    fixture_t f;
    cr_assert_eq(check_one(&f, "", false, 285, NULL), 0);
    cr_expect(f.unit.passed);
    cr_expect_eq(f.unit.failing_groups, 0);
    fixture_free(&f);
    cr_assert_eq(check_one(&f, "", false, 284, NULL), 0);
    cr_expect(!f.unit.passed);
    fixture_free(&f);
}

Test(check, builtin_and_user_suppressions_with_counts)
{
    fixture_t f;
    cr_assert_eq(check_one(&f, "leak:^make_node$\nleak:unused\n", true, 0, NULL), 0);
    lkd_check_unit_t *u = &f.unit;
    /* make_node hides b0, b1, b2 (150 B); the built-in list b4, b5 (80 B) */
    cr_expect_eq(u->bytes, 55);
    cr_expect_eq(u->blocks, 2);
    cr_expect_eq(u->direct_bytes, 55);
    cr_expect_eq(u->indirect_bytes, 0);
    cr_expect_eq(u->suppressed_bytes, 230);
    cr_expect_eq(u->suppressed_blocks, 5);
    cr_expect_eq(f.supps.v[0].blocks, 3);
    cr_expect_eq(f.supps.v[0].bytes, 150);
    cr_expect_eq(f.supps.v[1].blocks, 0);
    cr_expect_eq(f.supps.v[2].blocks + f.supps.v[3].blocks, 2); /* ^_dl_ or the module */
    cr_expect_eq(f.supps.v[2].bytes, 80);
    expect_group(u, LKD_LEAK_DIRECT, "plugin_ctor", 48, 1);
    expect_group(u, LKD_LEAK_DIRECT, "parse", 7, 1);
    lkd_buf_t w = LKD_BUF_INIT;
    lkd_check_unused_warnings(&w, &f.supps);
    cr_expect_str_eq(lkd_buf_str(&w),
                     "leakdiff: warning: t.supp:2: suppression leak:unused matched no leak\n");
    lkd_buf_free(&w);
    fixture_free(&f);
}

Test(check, filters_apply)
{
    fixture_t f;
    const char *inc[] = {"*tree.c"}, *exc[] = {"make_child"};
    lkd_group_opts_t g = {.by = LKD_BY_FUNCTION, .includes = inc, .include_count = 1};
    cr_assert_eq(check_one(&f, "", false, 0, &g), 0);
    cr_expect_eq(f.unit.bytes, 150); /* the tree only */
    cr_expect_eq(f.unit.group_count, 2);
    fixture_free(&f);
    g = (lkd_group_opts_t){.by = LKD_BY_FUNCTION, .excludes = exc, .exclude_count = 1};
    cr_assert_eq(check_one(&f, "", false, 0, &g), 0);
    cr_expect_eq(f.unit.bytes, 235);
    fixture_free(&f);
    g = (lkd_group_opts_t){.by = LKD_BY_FUNCTION, .min_bytes = 50};
    cr_assert_eq(check_one(&f, "", false, 0, &g), 0);
    cr_expect_eq(f.unit.bytes, 214); /* 100 + 64 + 50 */
    cr_expect_eq(f.unit.group_count, 3);
    fixture_free(&f);
}

Test(check, by_traceback_keys)
{
    fixture_t f;
    lkd_group_opts_t g = {.by = LKD_BY_TRACEBACK};
    cr_assert_eq(check_one(&f, "", false, 0, &g), 0);
    expect_group(&f.unit, LKD_LEAK_INDIRECT,
                 "make_child (/app/src/tree.c:20) <- make_node (/app/src/tree.c:10) <- main "
                 "(/app/src/main.c:5)",
                 50, 2);
    fixture_free(&f);
}

Test(check, no_verdicts_is_refused_with_a_hint)
{
    lkd_snapshot_t s;
    lkd_check_unit_t u;
    char err[512];
    lkd_check_opts_t o = {&by_function, NULL, 0, 0};
    make_snap(&s, program, PROGRAM_N, false, "nv.snap", 1);
    lkd_check_input_t in = input(&s);
    cr_expect_eq(lkd_check_leaks(&u, &in, NULL, &o, err, sizeof err), -ENODATA);
    cr_expect(strstr(err, "nv.snap: no leak verdicts in this exit snapshot") == err, "%s", err);
    cr_expect(strstr(err, "LEAKDIFF_REACHABILITY=0") != NULL);
    lkd_check_unit_free(&u);
    s.process.flags = 0; /* not an exit snapshot */
    cr_expect_eq(lkd_check_leaks(&u, &in, NULL, &o, err, sizeof err), -ENODATA);
    cr_expect(strstr(err, "nv.snap: not an exit snapshot (label 'exit')") == err, "%s", err);
    lkd_check_unit_free(&u);
    free_snap(&s);
}

/* ---- baseline ------------------------------------------------------------------------ */

Test(check, baseline_new_larger_known)
{
    /* the baseline leaked a smaller tree (root 100, one child 30), the same parse leak,
     * a larger constructor leak, and nothing from the loader */
    static const fake_block_t old[] = {{100, 0, D, 0}, {30, 1, I, 1}, {7, 5, D, 0}, {60, 4, D, 0}};
    fixture_t f;
    memset(&f, 0, sizeof f);
    make_snap(&f.snap, program, PROGRAM_N, true, "new.snap", 2);
    make_snap(&f.base, old, 4, true, "old.snap", 1);
    f.base.stack_stat_count = 0;
    lkd_check_input_t in = input(&f.snap), base = input(&f.base);
    lkd_check_opts_t o = {&by_function, &f.supps, 0, 0};
    cr_assert_eq(lkd_check_leaks(&f.unit, &in, &base, &o, f.err, sizeof f.err), 0);
    lkd_check_unit_t *u = &f.unit;
    cr_expect(u->baseline);
    const lkd_check_group_t *e = find(u, LKD_LEAK_INDIRECT, "make_child");
    cr_expect_eq(e->baseline, LKD_BASELINE_LARGER);
    cr_expect_eq(e->baseline_bytes, 30);
    cr_expect_eq(e->key_bytes, 50);
    cr_expect_eq(find(u, LKD_LEAK_DIRECT, "make_node")->baseline, LKD_BASELINE_KNOWN);
    cr_expect_eq(find(u, LKD_LEAK_DIRECT, "parse")->baseline, LKD_BASELINE_KNOWN);
    cr_expect_eq(find(u, LKD_LEAK_DIRECT, "plugin_ctor")->baseline, LKD_BASELINE_KNOWN);
    cr_expect_eq(find(u, LKD_LEAK_DIRECT, "_dl_new_object")->baseline, LKD_BASELINE_NEW);
    cr_expect_eq(find(u, LKD_LEAK_INDIRECT, "_dl_new_object")->baseline, LKD_BASELINE_NEW);
    /* beyond the baseline: make_child +20, _dl_new_object +80 (both kinds, one key) */
    cr_expect_eq(u->measured, 100);
    cr_expect_eq(u->known_bytes, 185);
    cr_expect(!u->passed);
    cr_expect_eq(u->failing_groups, 3);
    cr_expect(!find(u, LKD_LEAK_DIRECT, "make_node")->failing);
    fixture_free(&f);
}

Test(check, baseline_kind_change_is_still_known)
{
    /* the same 64 bytes from the loader: indirect in the baseline, direct now */
    static const fake_block_t old[] = {{100, 0, D, 0}, {64, 3, I, 1}};
    static const fake_block_t now[] = {{64, 3, D, 0}};
    fixture_t f;
    memset(&f, 0, sizeof f);
    make_snap(&f.snap, now, 1, true, "new.snap", 2);
    make_snap(&f.base, old, 2, true, "old.snap", 1);
    lkd_check_input_t in = input(&f.snap), base = input(&f.base);
    lkd_check_opts_t o = {&by_function, NULL, 0, 0};
    cr_assert_eq(lkd_check_leaks(&f.unit, &in, &base, &o, f.err, sizeof f.err), 0);
    cr_expect(f.unit.passed);
    cr_expect_eq(f.unit.measured, 0);
    cr_expect_eq(f.unit.groups[0].baseline, LKD_BASELINE_KNOWN);
    fixture_free(&f);
}

/* ---- GROWTH and TREND ---------------------------------------------------------------- */

/* A series of n snapshots of the program where the tree's root block grows by step bytes
 * per snapshot (and, with verdicts off, everything counts). */
static int check_series(lkd_check_unit_t *u, lkd_snapshot_t *s, size_t n, const uint64_t *root,
                        bool verdicts, uint64_t max_growth, lkd_supp_list_t *supps)
{
    lkd_check_input_t in[8];
    fake_block_t b[PROGRAM_N];
    char err[512];
    for (size_t i = 0; i < n; i++) {
        memcpy(b, program, sizeof b);
        b[0].size = root[i];
        make_snap(&s[i], b, PROGRAM_N, verdicts, "s.snap", (uint32_t)(10 + i));
        in[i] = input(&s[i]);
    }
    lkd_check_opts_t o = {&by_function, supps, 0, max_growth};
    int rc = lkd_check_series(u, in, n, &o, err, sizeof err);
    cr_expect_eq(rc, 0, "%s", err);
    return rc;
}

static void free_series(lkd_check_unit_t *u, lkd_snapshot_t *s, size_t n)
{
    lkd_check_unit_free(u);
    for (size_t i = 0; i < n; i++)
        free_snap(&s[i]);
}

Test(check, growth_two_snapshots)
{
    lkd_snapshot_t s[2];
    lkd_check_unit_t u;
    const uint64_t root[] = {100, 1100};
    check_series(&u, s, 2, root, true, 999, NULL);
    cr_expect_eq(u.mode, LKD_CHECK_GROWTH);
    cr_expect(u.leaked_only);
    cr_expect_eq(u.growth, 1000);
    cr_expect_eq(u.measured, 1000);
    cr_expect(!u.passed);
    cr_expect_eq(u.group_count, 1);
    cr_expect_str_eq(u.groups[0].group->key, "make_node");
    cr_expect_eq(u.groups[0].growth, 1000);
    cr_expect(u.groups[0].failing);
    cr_expect_eq(u.groups[0].group->old_bytes, 100);
    free_series(&u, s, 2);
    check_series(&u, s, 2, root, true, 1000, NULL);
    cr_expect(u.passed);
    free_series(&u, s, 2);
}

Test(check, growth_of_live_memory_without_verdicts)
{
    lkd_snapshot_t s[2];
    lkd_check_unit_t u;
    const uint64_t root[] = {100, 40};
    lkd_supp_list_t l = rules("leak:cache_put\n");
    check_series(&u, s, 2, root, false, 0, &l);
    cr_expect(!u.leaked_only);
    cr_expect_eq(u.growth, -60);
    cr_expect_eq(u.measured, 0);
    cr_expect(u.passed);
    cr_expect_eq(u.group_count, 0);
    cr_expect_eq(u.suppressed_bytes, 500); /* the cache, in the newest snapshot */
    cr_expect_eq(l.v[0].bytes, 500);
    free_series(&u, s, 2);
    lkd_supp_list_free(&l);
}

Test(check, trend_fails_on_steady_growth_only)
{
    lkd_snapshot_t s[4];
    lkd_check_unit_t u;
    const uint64_t steady[] = {100, 200, 300, 400}, once[] = {100, 500, 500, 500};
    check_series(&u, s, 4, steady, true, 99, NULL);
    cr_expect_eq(u.mode, LKD_CHECK_TREND);
    cr_expect(!u.passed);
    cr_expect_eq(u.failing_groups, 1);
    cr_expect_eq(u.groups[0].growth, 100); /* the smallest interval */
    cr_expect_eq(u.measured, 300);
    cr_expect_eq(u.group_count, 1);
    free_series(&u, s, 4);
    check_series(&u, s, 4, steady, true, 100, NULL); /* by more than the limit: not 100 */
    cr_expect(u.passed);
    cr_expect_eq(u.group_count, 1); /* still listed: it grew in every interval */
    cr_expect(!u.groups[0].failing);
    free_series(&u, s, 4);
    check_series(&u, s, 4, once, true, 0, NULL); /* a cache that filled once */
    cr_expect(u.passed);
    cr_expect_eq(u.group_count, 0);
    free_series(&u, s, 4);
}

Test(check, series_needs_two)
{
    lkd_check_unit_t u;
    char err[128];
    lkd_check_opts_t o = {&by_function, NULL, 0, 0};
    cr_expect_eq(lkd_check_series(&u, NULL, 1, &o, err, sizeof err), -EINVAL);
    lkd_check_unit_free(&u);
}

/* ---- options --------------------------------------------------------------------------- */

Test(check_cli, options_and_misuse)
{
    lkd_check_cli_t c = {0};
    cr_expect_null(lkd_check_option(&c, LKD_CHECK_OPT_MAX_LEAKED, "4K"));
    cr_expect_eq(c.max_leaked, 4096);
    cr_expect_not_null(lkd_check_option(&c, LKD_CHECK_OPT_MAX_LEAKED, "-1"));
    cr_expect_not_null(lkd_check_option(&c, LKD_CHECK_OPT_MAX_GROWTH, "1X"));
    cr_expect_null(lkd_check_option(&c, LKD_CHECK_OPT_MAX_GROWTH, "2M"));
    cr_expect_eq(c.max_growth, 2u << 20);
    cr_expect_null(lkd_check_option(&c, LKD_CHECK_OPT_SUPPRESSIONS, "a.supp"));
    cr_expect_null(lkd_check_option(&c, LKD_CHECK_OPT_SUPPRESSIONS, "b.supp"));
    cr_expect_eq(c.supp_file_count, 2);
    cr_expect_str_eq(c.supp_files[1], "b.supp");
    cr_expect_not_null(lkd_check_option(&c, LKD_CHECK_OPT_LEAK_EXITCODE, "0"));
    cr_expect_not_null(lkd_check_option(&c, LKD_CHECK_OPT_LEAK_EXITCODE, "256"));
    cr_expect_null(lkd_check_option(&c, LKD_CHECK_OPT_LEAK_EXITCODE, "42"));
    cr_expect_eq(c.leak_exitcode, 42);
    cr_expect(lkd_check_is_option(LKD_CHECK_OPT_CHECK));
    cr_expect(!lkd_check_is_option('f'));
    /* --suppressions on top, --leak-exitcode on check, without --check on run */
    cr_expect_str_eq(lkd_check_misuse(&c, "top", LKD_FORMAT_TEXT, false),
                     "--max-leaked is an option of check and run --check");
    cr_expect_str_eq(lkd_check_misuse(&c, "check", LKD_FORMAT_TEXT, false),
                     "--leak-exitcode is an option of run --check");
    cr_expect_str_eq(lkd_check_misuse(&c, "run", LKD_FORMAT_TEXT, false),
                     "--max-leaked needs --check");
    lkd_check_cli_free(&c);
    lkd_check_cli_t d = {0};
    cr_expect_null(lkd_check_misuse(&d, "top", LKD_FORMAT_JSON, false));
    cr_expect_str_eq(lkd_check_misuse(&d, "diff", LKD_FORMAT_SARIF, false),
                     "--format sarif is for check and run --check");
    cr_expect_str_eq(lkd_check_misuse(&d, "run", LKD_FORMAT_JUNIT, false),
                     "--format junit is for check and run --check");
    cr_expect_null(lkd_check_misuse(&d, "check", LKD_FORMAT_GITHUB, false));
    cr_expect_not_null(lkd_check_misuse(&d, "check", LKD_FORMAT_COLLAPSED, false));
    cr_expect_not_null(lkd_check_misuse(&d, "check", LKD_FORMAT_TEXT, true));
    cr_expect_null(lkd_check_option(&d, LKD_CHECK_OPT_EACH, NULL));
    cr_expect_str_eq(lkd_check_misuse(&d, "run", LKD_FORMAT_TEXT, false),
                     "--each is an option of check");
    lkd_check_cli_t e = {0};
    cr_expect_null(lkd_check_option(&e, LKD_CHECK_OPT_CHECK, NULL));
    cr_expect_null(lkd_check_misuse(&e, "run", LKD_FORMAT_SARIF, false));
}

/* ---- report formats ------------------------------------------------------------------- */

/* A small failing check: the tree (direct root, two indirect children) and a
 * user-suppressed leak; one unused rule. */
typedef struct small {
    lkd_snapshot_t snap;
    lkd_supp_list_t supps;
    lkd_check_unit_t unit;
    lkd_check_report_t r;
    lkd_buf_t out;
} small_t;

static void small_check(small_t *t, lkd_format_t format)
{
    static const fake_block_t blocks[] = {
        {100, 0, D, 0}, {30, 1, I, 1}, {20, 1, I, 1}, {7, 5, D, 0}};
    char err[256];
    memset(t, 0, sizeof t[0]);
    make_snap(&t->snap, blocks, 4, true, "/tmp/app.42.0001.exit.snap", 42);
    t->supps = rules("leak:libparse\nleak:never\n");
    lkd_check_input_t in = input(&t->snap);
    lkd_check_opts_t o = {&by_function, &t->supps, 0, 0};
    cr_assert_eq(lkd_check_leaks(&t->unit, &in, NULL, &o, err, sizeof err), 0);
    t->r = (lkd_check_report_t){format,       "check", &t->unit, 1, &t->supps, NULL,
                                &by_function, 10,      0,        0, "9.9"};
    cr_assert_eq(lkd_check_report(&t->out, &t->r), 0);
}

static void small_free(small_t *t)
{
    lkd_buf_free(&t->out);
    lkd_check_unit_free(&t->unit);
    lkd_supp_list_free(&t->supps);
    free_snap(&t->snap);
}

Test(check_report, text_like_leak_sanitizer)
{
    small_t t;
    small_check(&t, LKD_FORMAT_TEXT);
    cr_expect_str_eq(lkd_buf_str(&t.out),
                     "==42==ERROR: leakdiff: detected memory leaks in process 42 (/app/bin/app)\n"
                     "  snapshot /tmp/app.42.0001.exit.snap\n"
                     "\n"
                     "Direct leak of 100 byte(s) in 1 object(s) allocated from:\n"
                     "    #0 0x55000002 in make_node src/tree.c:10\n"
                     "    #1 0x55000004 in main src/main.c:5\n"
                     "\n"
                     "Indirect leak of 50 byte(s) in 2 object(s) allocated from:\n"
                     "    #0 0x55000103 in make_child src/tree.c:20\n"
                     "    #1 0x55000102 in make_node src/tree.c:10\n"
                     "    #2 0x55000104 in main src/main.c:5\n"
                     "\n"
                     "SUMMARY: leakdiff: 150 byte(s) leaked in 3 allocation(s).\n"
                     "leakdiff: FAIL: 150 byte(s) leaked, more than --max-leaked 0; 1 "
                     "allocation(s) (7 byte(s)) suppressed\n"
                     "-----------------------------------------------------\n"
                     "Suppressions used:\n"
                     "  count      bytes template\n"
                     "      1          7 leak:libparse (t.supp:1)\n"
                     "-----------------------------------------------------\n");
    cr_expect(!lkd_check_report_passed(&t.r));
    small_free(&t);
}

Test(check_report, text_clean_and_limit)
{
    small_t t;
    small_check(&t, LKD_FORMAT_TEXT);
    lkd_buf_reset(&t.out);
    t.r.limit = 1;
    lkd_check_report(&t.out, &t.r);
    cr_expect(strstr(lkd_buf_str(&t.out), "\n... and 1 more group(s) (-n 0 shows all)\n"));
    cr_expect(!strstr(lkd_buf_str(&t.out), "Indirect leak"));
    small_free(&t);
    /* nothing leaked */
    lkd_snapshot_t s;
    lkd_check_unit_t u;
    char err[128];
    static const fake_block_t none[] = {{500, 2, R, 0}};
    make_snap(&s, none, 1, true, "/tmp/ok.snap", 7);
    lkd_check_input_t in = input(&s);
    lkd_check_opts_t o = {&by_function, NULL, 0, 0};
    cr_assert_eq(lkd_check_leaks(&u, &in, NULL, &o, err, sizeof err), 0);
    cr_expect(u.passed);
    lkd_check_report_t r = {LKD_FORMAT_TEXT, "check", &u, 1, NULL, NULL, NULL, 10, 0, 0, NULL};
    lkd_buf_t out = LKD_BUF_INIT;
    lkd_check_report(&out, &r);
    cr_expect_str_eq(lkd_buf_str(&out), "leakdiff: no leaks in process 7 (/app/bin/app)\n"
                                        "  snapshot /tmp/ok.snap\n"
                                        "SUMMARY: leakdiff: 0 byte(s) leaked in 0 "
                                        "allocation(s).\n");
    lkd_buf_free(&out);
    lkd_check_unit_free(&u);
    free_snap(&s);
}

Test(check_report, json_shape)
{
    small_t t;
    small_check(&t, LKD_FORMAT_JSON);
    const char *j = lkd_buf_str(&t.out);
    cr_expect(
        starts_with(j, "{\"version\":1,\"command\":\"check\",\"by\":\"function\",\"passed\":false,"
                       "\"mode\":\"leaks\",\"max_leaked\":0,\"max_growth\":0,\n\"snapshots\":[{"
                       "\"path\":\"/tmp/app.42.0001.exit.snap\",\"pid\":42,\"label\":\"exit\""),
        "%s", j);
    cr_expect(strstr(j, "\n\"baseline\":null,\n\"leaks\":{\"bytes\":150,\"blocks\":3,"
                        "\"direct_bytes\":100,\"direct_blocks\":1,\"indirect_bytes\":50,"
                        "\"indirect_blocks\":2,\"suppressed_bytes\":7,\"suppressed_blocks\":1,"
                        "\"measured\":150},\n\"groups\":[\n{\"key\":\"make_node\",\"kind\":"
                        "\"direct\",\"bytes\":100,\"blocks\":1,\"failing\":true,\"pid\":42,"
                        "\"snapshot\":\"/tmp/app.42.0001.exit.snap\",\"frames\":[{\"function\":"
                        "\"make_node\",\"file\":\"/app/src/tree.c\",\"line\":10,\"module\":"
                        "\"/app/bin/app\",\"address\":\"0x55000002\",\"inlined\":false},"),
              "%s", j);
    cr_expect(strstr(j, "{\"key\":\"make_child\",\"kind\":\"indirect\",\"bytes\":50,"
                        "\"blocks\":2,"),
              "%s", j);
    cr_expect(strstr(j, "\"suppressed\":[\n{\"type\":\"leak\",\"pattern\":\"libparse\","
                        "\"source\":\"t.supp\",\"line\":1,\"builtin\":false,\"used\":true,"
                        "\"blocks\":1,\"bytes\":7},\n{\"type\":\"leak\",\"pattern\":\"never\","
                        "\"source\":\"t.supp\",\"line\":2,\"builtin\":false,\"used\":false,"
                        "\"blocks\":0,\"bytes\":0}],\n\"processes\":[\n{\"pid\":42,\"exe\":"
                        "\"/app/bin/app\",\"snapshot\":\"/tmp/app.42.0001.exit.snap\",\"mode\":"
                        "\"leaks\",\"measure\":\"leaked\",\"passed\":false,\"limit\":0,"
                        "\"measured\":150,\"growth\":0,\"failing_groups\":2,\"leaks\":{"),
              "%s", j);
    cr_expect(strcmp(j + strlen(j) - 4, "}]}\n") == 0, "%s", j);
    small_free(&t);
}

Test(check_report, sarif_shape)
{
    small_t t;
    small_check(&t, LKD_FORMAT_SARIF);
    const char *j = lkd_buf_str(&t.out);
    cr_expect(starts_with(j, "{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\","
                             "\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":"
                             "\"leakdiff\",\"version\":\"9.9\",\"rules\":[{\"id\":"
                             "\"leakdiff/direct-leak\""),
              "%s", j);
    cr_expect(strstr(j, ",\"originalUriBaseIds\":{\"SRCROOT\":{\"uri\":\"file:///app/\"}},"
                        "\"results\":[\n{\"ruleId\":\"leakdiff/direct-leak\",\"ruleIndex\":0,"
                        "\"level\":\"error\",\"message\":{\"text\":\"Direct leak of 100 byte(s) "
                        "in 1 object(s) allocated from make_node (src/tree.c:10) in process 42 "
                        "(/app/bin/app)\"},\"locations\":[{\"physicalLocation\":{"
                        "\"artifactLocation\":{\"uri\":\"src/tree.c\",\"uriBaseId\":\"SRCROOT\"},"
                        "\"region\":{\"startLine\":10}},\"logicalLocations\":[{"
                        "\"fullyQualifiedName\":\"make_node\",\"kind\":\"function\"}]}],"),
              "%s", j);
    cr_expect(strstr(j, "{\"ruleId\":\"leakdiff/indirect-leak\",\"ruleIndex\":1,"), "%s", j);
    cr_expect(strstr(j, "\"properties\":{\"bytes\":50,\"blocks\":2,\"pid\":42,"), "%s", j);
    cr_expect(strcmp(j + strlen(j) - 5, "]}]}\n") == 0, "%s", j);
    small_free(&t);
}

Test(check_report, junit_shape)
{
    small_t t;
    small_check(&t, LKD_FORMAT_JUNIT);
    const char *x = lkd_buf_str(&t.out);
    cr_expect(starts_with(x,
                          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                          "<testsuites name=\"leakdiff\" tests=\"1\" failures=\"1\" errors=\"0\">\n"
                          "  <testsuite name=\"leakdiff check\" tests=\"1\" failures=\"1\" "
                          "errors=\"0\" skipped=\"0\">\n"
                          "    <testcase classname=\"leakdiff.check\" name=\"app (pid 42)\" "
                          "file=\"/tmp/app.42.0001.exit.snap\">\n"
                          "      <failure type=\"leak\" message=\"150 byte(s) leaked in 3 "
                          "allocation(s), limit --max-leaked 0\">==42==ERROR: leakdiff: detected "
                          "memory leaks in process 42 (/app/bin/app)\n"),
              "%s", x);
    cr_expect(strstr(x, "SUMMARY: leakdiff: 150 byte(s) leaked in 3 allocation(s).\n"
                        "leakdiff: FAIL: 150 byte(s) leaked, more than --max-leaked 0; 1 "
                        "allocation(s) (7 byte(s)) suppressed\n</failure>\n    </testcase>\n"
                        "  </testsuite>\n</testsuites>\n"),
              "%s", x);
    small_free(&t);
}

Test(check_report, junit_escapes_and_passes)
{
    lkd_snapshot_t s;
    lkd_check_unit_t u;
    char err[128];
    static const fake_block_t none[] = {{500, 2, R, 0}};
    make_snap(&s, none, 1, true, "/tmp/a<b>&\"c\".snap", 7);
    lkd_check_input_t in = input(&s);
    lkd_check_opts_t o = {&by_function, NULL, 0, 0};
    cr_assert_eq(lkd_check_leaks(&u, &in, NULL, &o, err, sizeof err), 0);
    lkd_check_report_t r = {LKD_FORMAT_JUNIT, "run", &u, 1, NULL, NULL, NULL, 10, 0, 0, NULL};
    lkd_buf_t out = LKD_BUF_INIT;
    lkd_check_report(&out, &r);
    cr_expect(strstr(lkd_buf_str(&out), "failures=\"0\""));
    cr_expect(strstr(lkd_buf_str(&out), "file=\"/tmp/a&lt;b&gt;&amp;&quot;c&quot;.snap\">\n"
                                        "      <system-out>leakdiff: no leaks in process 7"),
              "%s", lkd_buf_str(&out));
    cr_expect(strstr(lkd_buf_str(&out), "<testsuite name=\"leakdiff run\""));
    lkd_buf_free(&out);
    lkd_check_unit_free(&u);
    free_snap(&s);
}

Test(check_report, github_annotations)
{
    small_t t;
    small_check(&t, LKD_FORMAT_GITHUB);
    cr_expect_str_eq(lkd_buf_str(&t.out),
                     "::error file=src/tree.c,line=10,title=leakdiff direct leak::Direct leak of "
                     "100 byte(s) in 1 object(s) allocated from make_node (src/tree.c:10) in "
                     "process 42 (/app/bin/app)%0A    #0 0x55000002 in make_node "
                     "src/tree.c:10%0A    #1 0x55000004 in main src/main.c:5\n"
                     "::error file=src/tree.c,line=20,title=leakdiff indirect leak::Indirect "
                     "leak of 50 byte(s) in 2 object(s) allocated from make_child "
                     "(src/tree.c:20) in process 42 (/app/bin/app)%0A    #0 0x55000103 in "
                     "make_child src/tree.c:20%0A    #1 0x55000102 in make_node "
                     "src/tree.c:10%0A    #2 0x55000104 in main src/main.c:5\n"
                     "::error title=leakdiff check failed::process 42 (/app/bin/app): 150 "
                     "byte(s) leaked in 3 allocation(s), limit --max-leaked 0\n"
                     "\n"
                     "SUMMARY: leakdiff: 150 byte(s) leaked in 3 allocation(s).\n"
                     "leakdiff: FAIL: 150 byte(s) leaked, more than --max-leaked 0; 1 "
                     "allocation(s) (7 byte(s)) suppressed\n");
    small_free(&t);
}

Test(check_report, growth_text)
{
    lkd_snapshot_t s[3];
    lkd_check_unit_t u;
    const uint64_t root[] = {100, 200, 300};
    check_series(&u, s, 3, root, true, 0, NULL);
    lkd_check_report_t r = {LKD_FORMAT_TEXT, "check", &u, 1, NULL, NULL, NULL, 10, 0, 0, NULL};
    lkd_buf_t out = LKD_BUF_INIT;
    lkd_check_report(&out, &r);
    const char *t = lkd_buf_str(&out);
    cr_expect(
        starts_with(t, "==12==ERROR: leakdiff: memory grew across 3 snapshots\n  1: s.snap\n"),
        "%s", t);
    cr_expect(strstr(t, "  measured: leaked memory (every snapshot has leak verdicts)\n\n"
                        "Growth in every interval, by at least 100 byte(s) (100 -> 200 -> 300 "
                        "bytes) allocated from:\n    #0 0x55000002 in make_node src/tree.c:10\n"),
              "%s", t);
    cr_expect(strstr(t, "SUMMARY: leakdiff: memory grew by 200 byte(s) in 0 allocation(s).\n"
                        "leakdiff: FAIL: 1 group(s) grew in every interval by more than 0 "
                        "byte(s)\n"),
              "%s", t);
    lkd_buf_free(&out);
    free_series(&u, s, 3);
}
