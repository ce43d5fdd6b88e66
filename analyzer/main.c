/*
 * main - the leakdiff command line: parses options, runs top/diff/trend/survivors/info/run,
 * and maps every error to the exit codes of DESIGN.md §6: 0 fine, 2 usage, 3 unreadable or
 * invalid input; `run` exits with CMD's status (125 when leakdiff itself cannot run it).
 * `survivors` of two snapshots that are not an earlier and a later one of one process is a
 * usage error (2): the files are fine, the pairing is not.
 *
 * Options may come before or after the positional arguments of top/diff/info; for run,
 * everything after `--` or after the first non-option argument is the command.
 * Reports go to stdout, except `run`'s text report, which goes to stderr so that CMD's own
 * stdout stays clean. `snap` prints only the new snapshot's path on stdout; it exits 1 when
 * no snapshot came in time and 3 when it refused to signal the process. The pipeline is: read
 * snapshot -> symbolizer -> lkd_group_build -> sort -> render -> write; each stage owns its memory
 * and is freed here. `check` and `run --check` (the CI gate, exit 1 / 23 on leaks) live in
 * check_cli.c: this file only adds their options to the table and hands them the rest.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../preload/parse.h"
#include "check_cli.h"
#include "group.h"
#include "report.h"
#include "run.h"
#include "snap.h"
#include "snapshot.h"
#include "symbols.h"
#include "util.h"

#ifndef LKD_VERSION
#define LKD_VERSION "0.1.0"
#endif

enum { EXIT_USAGE = 2, EXIT_INPUT = 3, EXIT_RUN_FAILED = 125 };

/* The parsed command line. */
typedef struct cli {
    const char *command;
    lkd_format_t format;
    size_t limit;
    lkd_group_opts_t group;
    const char **skip_functions; /* argv pointers; the arrays are owned */
    const char **skip_modules;
    const char **skip_files;
    const char **includes; /* --include / --exclude globs (argv pointers); arrays owned */
    const char **excludes;
    const char *output_dir; /* run -o */
    const char *label;      /* snap --label */
    double timeout;         /* snap --timeout, seconds */
    char **args;            /* positional arguments (for run: CMD ARGS) */
    int nargs;
    lkd_check_cli_t check; /* check and run --check options (check_cli.h) */
} cli_t;

typedef struct command {
    const char *name;
    int min_args, max_args; /* max -1: no limit */
    const char *operands;   /* for messages */
    int (*fn)(const cli_t *cli);
} command_t;

static const char usage_text[] = "usage: leakdiff run [-o DIR] [OPTIONS] [--] CMD [ARGS...]\n"
                                 "       leakdiff top [OPTIONS] SNAP\n"
                                 "       leakdiff diff [OPTIONS] OLD NEW\n"
                                 "       leakdiff trend [OPTIONS] SNAP SNAP...\n"
                                 "       leakdiff survivors [OPTIONS] OLD [MID] NEW\n"
                                 "       leakdiff check [OPTIONS] SNAP...\n"
                                 "       leakdiff info [--format F] SNAP\n"
                                 "       leakdiff snap [--label L] [--timeout S] PID\n"
                                 "       leakdiff --help | --version\n";

static const char help_text[] =
    "\n"
    "  run        run CMD with the leakdiff shim preloaded; report what it left allocated\n"
    "  top        live memory of a snapshot by group, largest first\n"
    "  diff       growth from snapshot OLD to snapshot NEW by group, largest growth first\n"
    "  trend      live bytes of each group across snapshots; steady growers first\n"
    "  survivors  blocks born after snapshot OLD (and before MID) still live in NEW\n"
    "  check      the CI gate: leaks at exit, growth, or steady growth beyond the limits\n"
    "  info       process facts, totals and modules of a snapshot\n"
    "  snap       ask the running traced process PID for a snapshot; print its path\n"
    "\n"
    "options:\n"
    "  --by KEY              group by function (default), line, file, module, traceback\n"
    "  -n N                  show the N first groups (default 10; 0 = all)\n"
    "  --format F            text (default), json, or collapsed (folded stacks for flame graphs)\n"
    "  --cumulative          count a block in every location of its stack (not with traceback)\n"
    "  --include GLOB        keep only blocks with a frame whose function, file or module\n"
    "                        matches GLOB (repeatable: any of them)\n"
    "  --exclude GLOB        drop blocks with a frame matching GLOB (repeatable)\n"
    "  --min-bytes N         drop groups below N bytes (diff, trend: below N bytes of change);\n"
    "                        N may end in K, M, G or T (KiB, MiB, GiB, TiB)\n"
    "  --skip-function GLOB  also treat functions matching GLOB as allocator plumbing\n"
    "  --skip-module GLOB    also treat modules whose path matches GLOB as plumbing\n"
    "  --skip-file GLOB      also treat frames whose source file matches GLOB as plumbing\n"
    "  --python              skip CPython's interpreter frames, so that a C extension's\n"
    "                        function is the site (automatic for snapshots of CPython);\n"
    "                        run: also sets PYTHONMALLOC=malloc for CMD\n"
    "  --no-python           attribute snapshots of CPython like any other program\n"
    "  -o, --output DIR      run: where snapshots go (default $LEAKDIFF_OUTPUT or .)\n"
    "  --label L             snap: label of the snapshot (default: signal)\n"
    "  --timeout S           snap: seconds to wait for the file (default 10)\n"
    "  -h, --help            this help\n"
    "\n" LKD_CHECK_HELP "\n"
    "exit status: 0 ok, 2 usage error (also: survivors of snapshots that are not an older\n"
    "and a newer one of the same process), 3 unreadable or invalid input;\n"
    "snap exits 1 when no snapshot came in time, 3 when it refused to signal PID;\n"
    "run exits with CMD's status (128+N when killed by signal N, 127 not found,\n"
    "126 not executable, 125 when leakdiff could not run it).\n"
    "check exits 1 when a limit is exceeded; run --check exits 23 (--leak-exitcode) when CMD\n"
    "succeeded but leaked, 125 when it wrote no exit snapshot to check.\n";

static int usage_error(const char *command, const char *fmt, const char *arg)
{
    fprintf(stderr, "leakdiff: %s%s", command ? command : "", command ? ": " : "");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%sTry 'leakdiff --help' for more.\n", usage_text);
    return EXIT_USAGE;
}

static int print_help(void)
{
    printf("leakdiff %s - tracemalloc for native code\n\n%s%s", LKD_VERSION, usage_text, help_text);
    return 0;
}

/* Parses -n's value: a plain decimal count. */
static bool parse_limit(const char *s, size_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > SIZE_MAX)
        return false;
    *out = (size_t)v;
    return true;
}

static const struct option long_options[] = {
    {"format", required_argument, NULL, 'f'},
    {"by", required_argument, NULL, 'b'},
    {"skip-function", required_argument, NULL, 'F'},
    {"skip-module", required_argument, NULL, 'M'},
    {"skip-file", required_argument, NULL, 'S'},
    {"python", no_argument, NULL, 'P'},
    {"no-python", no_argument, NULL, 'N'},
    {"cumulative", no_argument, NULL, 'C'},
    {"include", required_argument, NULL, 'I'},
    {"exclude", required_argument, NULL, 'X'},
    {"min-bytes", required_argument, NULL, 'm'},
    {"output", required_argument, NULL, 'o'},
    {"label", required_argument, NULL, 'l'},
    {"timeout", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    LKD_CHECK_LONG_OPTIONS,
    {NULL, 0, NULL, 0},
};

/* Parses --timeout's value: seconds, a positive decimal number up to a day. */
static bool parse_timeout(const char *s, double *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v > 0) || v > 86400)
        return false;
    *out = v;
    return true;
}

/* Applies one option; returns 0, or EXIT_USAGE after saying what is wrong. */
static int apply_option(cli_t *c, int opt, const char *arg, const char *text)
{
    switch (opt) {
    case 'n':
        return parse_limit(arg, &c->limit)
                   ? 0
                   : usage_error(c->command, "bad -n '%s' (want a count)", arg);
    case 'f':
        return lkd_format_parse(arg, &c->format) == 0
                   ? 0
                   : usage_error(c->command,
                                 "unknown --format '%s' (text, json or collapsed; check also "
                                 "sarif, junit or github)",
                                 arg);
    case 'b':
        return lkd_group_by_parse(arg, &c->group.by) == 0
                   ? 0
                   : usage_error(c->command,
                                 "unknown --by '%s' (function, line, file, module, traceback)",
                                 arg);
    case 'F': c->skip_functions[c->group.skip_function_count++] = arg; return 0;
    case 'M': c->skip_modules[c->group.skip_module_count++] = arg; return 0;
    case 'S': c->skip_files[c->group.skip_file_count++] = arg; return 0;
    case 'P': c->group.python = LKD_PYTHON_ON; return 0;
    case 'N': c->group.python = LKD_PYTHON_OFF; return 0;
    case 'C': c->group.cumulative = true; return 0;
    case 'I': c->includes[c->group.include_count++] = arg; return 0;
    case 'X': c->excludes[c->group.exclude_count++] = arg; return 0;
    case 'm':
        return lkd_parse_size(arg, UINT64_MAX, &c->group.min_bytes)
                   ? 0
                   : usage_error(c->command, "bad --min-bytes '%s' (want bytes, e.g. 512 or 4K)",
                                 arg);
    case 'o': c->output_dir = arg; return 0;
    case 'l': c->label = arg; return 0;
    case 't':
        return parse_timeout(arg, &c->timeout)
                   ? 0
                   : usage_error(c->command, "bad --timeout '%s' (want seconds > 0)", arg);
    case ':': return usage_error(c->command, "option '%s' needs an argument", text);
    default:
        if (lkd_check_is_option(opt)) {
            const char *why = lkd_check_option(&c->check, opt, arg);
            return why ? usage_error(c->command, why, arg) : 0;
        }
        return usage_error(c->command, "unknown option '%s'", text);
    }
}

/*
 * Parses argv (argv[0] is the command name) into c. Returns 0, -1 after --help was
 * printed, or EXIT_USAGE after a message.
 */
static int parse_options(cli_t *c, int argc, char **argv, bool run)
{
    c->skip_functions = calloc((size_t)argc, sizeof *c->skip_functions);
    c->skip_modules = calloc((size_t)argc, sizeof *c->skip_modules);
    c->skip_files = calloc((size_t)argc, sizeof *c->skip_files);
    c->includes = calloc((size_t)argc, sizeof *c->includes);
    c->excludes = calloc((size_t)argc, sizeof *c->excludes);
    if (!c->skip_functions || !c->skip_modules || !c->skip_files || !c->includes || !c->excludes) {
        fprintf(stderr, "leakdiff: out of memory\n");
        return EXIT_INPUT;
    }
    c->group.skip_functions = c->skip_functions;
    c->group.skip_modules = c->skip_modules;
    c->group.skip_files = c->skip_files;
    c->group.includes = c->includes;
    c->group.excludes = c->excludes;
    opterr = 0;
    optind = 0; /* glibc: full re-initialisation */
    for (int opt;
         (opt = getopt_long(argc, argv, run ? "+:n:o:h" : ":n:h", long_options, NULL)) != -1;) {
        if (opt == 'h')
            return print_help(), -1;
        bool snap = !strcmp(c->command, "snap");
        char text[64]; /* the offending option as typed, for messages */
        if ((opt == 'o' && !run) || ((opt == 'l' || opt == 't') && !snap)) {
            /* valid for another command only: name it, not its argument */
            snprintf(text, sizeof text, "%s",
                     opt == 'o'   ? "-o"
                     : opt == 'l' ? "--label"
                                  : "--timeout");
            opt = '?';
        } else if (opt == '?' && optopt)
            snprintf(text, sizeof text, "-%c", optopt);
        else
            snprintf(text, sizeof text, "%s", argv[optind - 1]);
        int rc = apply_option(c, opt, optarg, text);
        if (rc)
            return rc;
    }
    c->args = argv + optind;
    c->nargs = argc - optind;
    return 0;
}

/* ---- the pipeline --------------------------------------------------------------------- */

/* A snapshot with what was derived from it. */
typedef struct loaded {
    lkd_snapshot_t snap;
    lkd_symbolizer_t *sym;
    lkd_group_set_t set;
} loaded_t;

static void resolve_symbol(void *ctx, uint64_t address, const lkd_frame_t **frames, size_t *count)
{
    lkd_symbolize(ctx, address, frames, count);
}

/* Symbolizes the snapshot read into l and groups it by opts. Says what failed on stderr. */
static int group_loaded(loaded_t *l, const lkd_group_opts_t *opts)
{
    int rc = -ENOMEM;
    if (!(l->sym = lkd_symbolizer_open(&l->snap)))
        goto fail;
    lkd_resolver_t res = {resolve_symbol, l->sym};
    rc = lkd_group_build(&l->snap, &res, opts, &l->set);
    lkd_print_warnings(lkd_symbolizer_warnings(l->sym));
    if (!rc)
        return 0;
fail:
    fprintf(stderr, "leakdiff: %s: %s\n", l->snap.path, strerror(-rc));
    return rc;
}

/* Reads path; unless info_only, symbolizes and groups it. Says what failed on stderr. */
static int load(loaded_t *l, const char *path, const cli_t *c, bool info_only)
{
    char err[512];
    int rc = lkd_snapshot_read(path, &l->snap, err, sizeof err);
    if (rc) {
        fprintf(stderr, "leakdiff: %s\n", err);
        return rc;
    }
    return info_only ? 0 : group_loaded(l, &c->group);
}

/* One note on stderr for each --include/--exclude glob that matched no frame of the n
 * loaded snapshots: not an error, but likely a typo. */
static void note_unmatched_globs(const cli_t *c, const loaded_t *l, size_t n)
{
    const lkd_group_opts_t *o = &c->group;
    for (size_t i = 0; i < o->include_count + o->exclude_count; i++) {
        bool hit = false;
        for (size_t k = 0; k < n; k++)
            hit |= l[k].set.glob_matched && l[k].set.glob_matched[i];
        if (hit)
            continue;
        bool inc = i < o->include_count;
        fprintf(stderr, "leakdiff: note: %s '%s' matches no frame of %s\n",
                inc ? "--include" : "--exclude",
                inc ? o->includes[i] : o->excludes[i - o->include_count],
                n == 1 ? "the snapshot" : "any snapshot");
    }
}

/* Applies --min-bytes and sorts set; 0, or EXIT_INPUT after a message. */
static int finish(const cli_t *c, lkd_group_set_t *set, lkd_group_order_t order)
{
    lkd_group_drop_small(set, c->group.min_bytes);
    if (lkd_group_sort(set, order) == 0)
        return 0;
    fprintf(stderr, "leakdiff: out of memory\n");
    return EXIT_INPUT;
}

static void unload(loaded_t *l)
{
    lkd_group_set_free(&l->set);
    if (l->sym)
        lkd_symbolizer_close(l->sym);
    lkd_snapshot_free(&l->snap);
}

/* Writes the rendered buffer to f; 0 or EXIT_INPUT after a message. */
static int emit(FILE *f, const lkd_buf_t *b)
{
    if (b->err) {
        fprintf(stderr, "leakdiff: out of memory while rendering the report\n");
        return EXIT_INPUT;
    }
    if (fwrite(lkd_buf_str(b), 1, b->len, f) != b->len || fflush(f) != 0) {
        fprintf(stderr, "leakdiff: cannot write the report: %s\n", strerror(errno));
        return EXIT_INPUT;
    }
    return 0;
}

/* Renders report r (its snapshots and sorted set filled in; format, limit and filters from
 * c) to f. Collapsed stacks have no room for the sampled-mode note: it goes to stderr. */
static int render(FILE *f, const cli_t *c, lkd_report_t *r)
{
    lkd_buf_t out = LKD_BUF_INIT;
    r->format = c->format;
    r->limit = c->limit;
    r->opts = &c->group;
    if (r->format == LKD_FORMAT_COLLAPSED && !lkd_report_sampled_note(&out, r) && out.len)
        fputs(lkd_buf_str(&out), stderr);
    lkd_buf_reset(&out);
    lkd_report_groups(&out, r);
    int rc = emit(f, &out);
    lkd_buf_free(&out);
    return rc;
}

/* Top report of path to f; 0, or EXIT_INPUT after a message. */
static int top_report(FILE *f, const cli_t *c, const char *command, const char *path)
{
    loaded_t l = {0};
    int rc = load(&l, path, c, false) ? EXIT_INPUT : 0;
    if (!rc) {
        note_unmatched_globs(c, &l, 1);
        rc = finish(c, &l.set, LKD_ORDER_SIZE);
    }
    if (!rc) {
        lkd_report_t r = {.command = command, .snap = &l.snap, .set = &l.set};
        rc = render(f, c, &r);
    }
    unload(&l);
    return rc;
}

static int cmd_top(const cli_t *c)
{
    return top_report(stdout, c, "top", c->args[0]);
}

static int cmd_diff(const cli_t *c)
{
    loaded_t l[2] = {0};
    int rc =
        load(&l[0], c->args[0], c, false) || load(&l[1], c->args[1], c, false) ? EXIT_INPUT : 0;
    if (!rc && lkd_group_diff(&l[1].set, &l[0].set)) {
        fprintf(stderr, "leakdiff: out of memory\n");
        rc = EXIT_INPUT;
    }
    if (!rc) {
        note_unmatched_globs(c, l, 2);
        rc = finish(c, &l[1].set, LKD_ORDER_DIFF);
    }
    if (!rc) {
        lkd_report_t r = {
            .command = "diff", .old = &l[0].snap, .snap = &l[1].snap, .set = &l[1].set};
        rc = render(stdout, c, &r);
    }
    unload(&l[1]);
    unload(&l[0]);
    return rc;
}

/* Merges the group sets of l[0..n) into a trend in l[n-1].set. 0 or -ENOMEM. */
static int trend_merge(loaded_t *l, size_t n)
{
    const lkd_group_set_t **earlier = calloc(n, sizeof *earlier);
    if (!earlier)
        return -ENOMEM;
    for (size_t i = 0; i + 1 < n; i++)
        earlier[i] = &l[i].set;
    int rc = lkd_group_trend(&l[n - 1].set, earlier, n - 1);
    free(earlier);
    return rc;
}

/* Renders the trend of the n loaded snapshots (merged in l[n-1].set). */
static int trend_render(const cli_t *c, loaded_t *l, size_t n)
{
    const lkd_snapshot_t **snaps = calloc(n, sizeof *snaps);
    if (!snaps) {
        fprintf(stderr, "leakdiff: out of memory\n");
        return EXIT_INPUT;
    }
    for (size_t i = 0; i < n; i++)
        snaps[i] = &l[i].snap;
    lkd_report_t r = {.command = "trend",
                      .old = snaps[0],
                      .snap = snaps[n - 1],
                      .set = &l[n - 1].set,
                      .snaps = snaps,
                      .snap_count = n};
    int rc = render(stdout, c, &r);
    free(snaps);
    return rc;
}

static int cmd_trend(const cli_t *c)
{
    size_t n = (size_t)c->nargs;
    loaded_t *l = calloc(n, sizeof *l);
    int rc = l ? 0 : EXIT_INPUT;
    for (size_t i = 0; !rc && i < n; i++)
        rc = load(&l[i], c->args[i], c, false) ? EXIT_INPUT : 0;
    if (!rc && trend_merge(l, n)) {
        fprintf(stderr, "leakdiff: out of memory\n");
        rc = EXIT_INPUT;
    }
    if (!rc) {
        note_unmatched_globs(c, l, n);
        rc = finish(c, &l[n - 1].set, LKD_ORDER_TREND);
    }
    if (!rc)
        rc = trend_render(c, l, n);
    for (size_t i = 0; l && i < n; i++)
        unload(&l[i]);
    free(l);
    return rc;
}

/*
 * Refuses survivors snapshots i and i + 1 unless they are an older and a newer snapshot of
 * one process (same pid and tracking start time, the older written first): birth numbers
 * compare only within one process. 0, or EXIT_USAGE after a message.
 */
static int check_survivors_order(const cli_t *c, const loaded_t *l, int i)
{
    static const char *const roles[2][3] = {{"OLD", "NEW"}, {"OLD", "MID", "NEW"}};
    const char *const *role = roles[c->nargs == 3];
    const lkd_fmt_process_t *a = &l[i].snap.process, *b = &l[i + 1].snap.process;
    if (a->pid != b->pid || a->start_mono_ns != b->start_mono_ns) {
        fprintf(stderr,
                "leakdiff: survivors: %s (pid %" PRIu32 ") and %s (pid %" PRIu32
                ") are snapshots of different processes; birth numbers compare only within "
                "one process\n",
                c->args[i], a->pid, c->args[i + 1], b->pid);
        return EXIT_USAGE;
    }
    if (a->seq >= b->seq || l[i].snap.totals.birth_next > l[i + 1].snap.totals.birth_next) {
        fprintf(stderr,
                "leakdiff: survivors: %s %s (seq %" PRIu32 ") was not written before %s %s "
                "(seq %" PRIu32 "); give the snapshots oldest first\n",
                role[i], c->args[i], a->seq, role[i + 1], c->args[i + 1], b->seq);
        return EXIT_USAGE;
    }
    return 0;
}

/* Groups the blocks of the last snapshot born after the first one (and, with three, before
 * the middle one) into l[n - 1].set. */
static int survivors_group(const cli_t *c, loaded_t *l, int n)
{
    lkd_group_opts_t opts = c->group;
    /* births start at 1: min_birth 0 would mean "every block", max_birth 0 "no bound" */
    opts.min_birth = l[0].snap.totals.birth_next ? l[0].snap.totals.birth_next : 1;
    if (n == 3)
        opts.max_birth = l[1].snap.totals.birth_next ? l[1].snap.totals.birth_next : 1;
    if (group_loaded(&l[n - 1], &opts))
        return EXIT_INPUT;
    note_unmatched_globs(c, &l[n - 1], 1);
    return finish(c, &l[n - 1].set, LKD_ORDER_SIZE);
}

static int cmd_survivors(const cli_t *c)
{
    loaded_t l[3] = {0};
    int n = c->nargs, rc = 0;
    for (int i = 0; !rc && i < n; i++)
        rc = load(&l[i], c->args[i], c, true) ? EXIT_INPUT : 0;
    for (int i = 0; !rc && i + 1 < n; i++)
        rc = check_survivors_order(c, l, i);
    if (!rc)
        rc = survivors_group(c, l, n);
    if (!rc) {
        lkd_report_t r = {.command = "survivors",
                          .old = &l[0].snap,
                          .mid = n == 3 ? &l[1].snap : NULL,
                          .snap = &l[n - 1].snap,
                          .set = &l[n - 1].set,
                          .survivors = true};
        rc = render(stdout, c, &r);
    }
    for (int i = 0; i < n; i++)
        unload(&l[i]);
    return rc;
}

static int cmd_info(const cli_t *c)
{
    loaded_t l = {0};
    lkd_buf_t out = LKD_BUF_INIT;
    int rc = load(&l, c->args[0], c, true) ? EXIT_INPUT : 0;
    if (!rc) {
        lkd_report_info(&out, c->format, &l.snap);
        rc = emit(stdout, &out);
    }
    lkd_buf_free(&out);
    unload(&l);
    return rc;
}

/* ---- run ---------------------------------------------------------------------------- */

static void explain_exec_failure(const char *cmd, int e)
{
    if (e == ENOENT && !strchr(cmd, '/'))
        fprintf(stderr, "leakdiff: %s: command not found\n", cmd);
    else
        fprintf(stderr, "leakdiff: %s: %s\n", cmd, strerror(e));
}

/* Says why no exit snapshot may have appeared. */
static void explain_no_snapshot(const lkd_run_result_t *r, const char *cmd)
{
    const char *at_exit = getenv("LEAKDIFF_AT_EXIT");
    fprintf(stderr, "leakdiff: no exit snapshot from %s (pid %d) in %s: ", cmd, (int)r->pid,
            r->dir);
    if (r->term_signal)
        fprintf(stderr, "it was killed by signal %d (%s) before it could write one\n",
                r->term_signal, strsignal(r->term_signal));
    else if (at_exit && strcmp(at_exit, "0") == 0)
        fprintf(stderr, "LEAKDIFF_AT_EXIT=0 is set\n");
    else
        fprintf(stderr, "it may have ended with _exit() or been killed, the directory may not "
                        "be writable, or it is statically linked or setuid (not traceable)\n");
}

/*
 * Lists every snapshot CMD's process tree wrote (pid, label, path; at most SHOWN lines, file
 * names sanitized for the terminal) to stderr.
 */
static void list_written(const lkd_run_result_t *r)
{
    enum { SHOWN = 40 };
    const lkd_snap_list_t *w = &r->written;
    lkd_buf_t b = LKD_BUF_INIT;
    lkd_buf_printf(&b, "leakdiff: %zu snapshot%s written during the run (pid, label, file):\n",
                   w->n, w->n == 1 ? "" : "s");
    for (size_t i = 0; i < w->n && i < SHOWN; i++)
        lkd_buf_printf(&b, "leakdiff:   %-7d %-10s %s/%s\n", (int)w->v[i].pid, w->v[i].label,
                       r->dir, w->v[i].name);
    if (w->n > SHOWN)
        lkd_buf_printf(&b, "leakdiff:   ... and %zu more in %s\n", w->n - SHOWN, r->dir);
    lkd_text_sanitize(&b, 0);
    fputs(lkd_buf_str(&b), stderr);
    lkd_buf_free(&b);
}

/*
 * Prints what `leakdiff run` found: the list of every snapshot the process tree wrote (when
 * there is more than CMD's exit snapshot), then the report of each exit snapshot of CMD
 * (text to stderr, its header naming the file; JSON to stdout, the path on stderr). Never
 * changes the exit code.
 */
static void report_run(const cli_t *c, const lkd_run_result_t *r)
{
    bool json = c->format != LKD_FORMAT_TEXT; /* json or collapsed: for programs, on stdout */
    if (r->term_signal && r->snapshot_count == 0)
        fprintf(stderr, "leakdiff: %s was killed by signal %d (%s)\n", c->args[0], r->term_signal,
                strsignal(r->term_signal));
    if (r->written.n > r->snapshot_count)
        list_written(r);
    if (r->snapshot_count == 0)
        explain_no_snapshot(r, c->args[0]);
    for (size_t i = 0; i < r->snapshot_count; i++) {
        if (json)
            fprintf(stderr, "leakdiff: exit snapshot: %s\n", r->snapshots[i]);
        top_report(json ? stdout : stderr, c, "run", r->snapshots[i]);
    }
}

/* The shared settings a check needs (check_cli.h). */
static lkd_check_env_t check_env(const cli_t *c)
{
    lkd_check_env_t env = {c->command, c->format, c->limit, &c->group, LKD_VERSION};
    return env;
}

static int cmd_run(const cli_t *c)
{
    lkd_run_opts_t o = {
        .output_dir = c->output_dir, .argv = c->args, .python = c->group.python == LKD_PYTHON_ON};
    lkd_run_result_t r;
    lkd_check_session_t *check = NULL;
    char err[1024];
    /* --check: suppression files and the baseline are read before CMD runs */
    int rc = c->check.check ? lkd_check_prepare(&c->check, &check) : 0;
    if (rc)
        return rc;
    fflush(NULL); /* nothing buffered may be written twice by the child */
    rc = lkd_run(&o, &r, err, sizeof err);
    if (rc) {
        fprintf(stderr, "leakdiff: %s\n", err);
    } else if (r.exec_errno) {
        explain_exec_failure(c->args[0], r.exec_errno);
    } else if (check) {
        lkd_check_env_t env = check_env(c);
        r.status = lkd_check_finish(check, &env, &r, c->args[0]); /* frees check */
        check = NULL;
    } else {
        report_run(c, &r);
    }
    lkd_check_session_free(check);
    int status = rc && !r.pid ? EXIT_RUN_FAILED : r.status; /* once CMD ran: its status */
    lkd_run_result_free(&r);
    return status;
}

/* ---- check --------------------------------------------------------------------------- */

static int cmd_check(const cli_t *c)
{
    lkd_check_env_t env = check_env(c);
    return lkd_check_main(&c->check, &env, c->args, (size_t)c->nargs);
}

/* ---- snap ---------------------------------------------------------------------------- */

static int cmd_snap(const cli_t *c)
{
    unsigned long long pid;
    char *end, *path = NULL, err[1024];
    errno = 0;
    pid = strtoull(c->args[0], &end, 10);
    if (c->args[0][0] < '0' || c->args[0][0] > '9' || *end || errno || pid == 0 || pid > INT_MAX)
        return usage_error("snap", "bad PID '%s' (want a process id)", c->args[0]);
    lkd_snap_opts_t o = {(pid_t)pid, c->label, c->timeout};
    int rc = lkd_snap_request(&o, &path, err, sizeof err);
    if (rc) {
        fprintf(stderr, "leakdiff: %s\n", err);
        return rc == -ETIMEDOUT || rc == -ECHILD ? 1 : EXIT_INPUT;
    }
    printf("%s\n", path);
    free(path);
    return fflush(stdout) == 0 ? 0 : EXIT_INPUT;
}

/* ---- dispatch ----------------------------------------------------------------------- */

static const command_t commands[] = {
    {"run", 1, -1, "CMD [ARGS...]", cmd_run},
    {"top", 1, 1, "SNAP", cmd_top},
    {"diff", 2, 2, "OLD NEW", cmd_diff},
    {"info", 1, 1, "SNAP", cmd_info},
    {"snap", 1, 1, "PID", cmd_snap},
    {"trend", 2, -1, "at least two snapshots", cmd_trend},
    {"survivors", 2, 3, "OLD [MID] NEW", cmd_survivors},
    {"check", 0, -1, "SNAP...", cmd_check},
};

static const command_t *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Checks the positional argument count of cmd. */
static int check_args(const command_t *cmd, const cli_t *c)
{
    if (c->nargs < cmd->min_args)
        return usage_error(cmd->name, "missing argument (want %s)", cmd->operands);
    if (cmd->max_args >= 0 && c->nargs > cmd->max_args)
        return usage_error(cmd->name, "unexpected argument '%s'", c->args[cmd->max_args]);
    return 0;
}

/* Refuses options that do not go together; collapsed output groups by whole stacks. */
static int check_combination(const command_t *cmd, cli_t *c)
{
    bool collapsed = c->format == LKD_FORMAT_COLLAPSED;
    const char *misuse = lkd_check_misuse(&c->check, cmd->name, c->format, c->group.cumulative);
    if (misuse)
        return usage_error(cmd->name, "%s", misuse);
    if (c->group.cumulative && c->group.by == LKD_BY_TRACEBACK)
        return usage_error(cmd->name, "%s", "--cumulative does not go with --by traceback");
    if (c->group.cumulative && collapsed)
        return usage_error(cmd->name, "%s",
                           "--cumulative does not go with --format collapsed (whole stacks)");
    if (collapsed && cmd->fn == cmd_info)
        return usage_error(cmd->name, "%s", "--format collapsed is for reports of groups");
    c->group.folded = collapsed;
    return 0;
}

static int run_command(const command_t *cmd, int argc, char **argv)
{
    cli_t c = {.command = cmd->name, .limit = 10, .timeout = 10};
    int rc = parse_options(&c, argc, argv, cmd->fn == cmd_run);
    if (rc == 0)
        rc = check_args(cmd, &c);
    if (rc == 0)
        rc = check_combination(cmd, &c);
    if (rc == 0)
        rc = cmd->fn(&c);
    free(c.skip_functions);
    free(c.skip_modules);
    free(c.skip_files);
    free(c.includes);
    free(c.excludes);
    lkd_check_cli_free(&c.check);
    return rc < 0 ? 0 : rc;
}

/* Dispatches `leakdiff COMMAND ...`; returns the documented exit code. */
int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error(NULL, "%s", "missing command");
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help"))
        return print_help();
    if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
        printf("leakdiff %s\n", LKD_VERSION);
        return 0;
    }
    const command_t *cmd = find_command(name);
    if (!cmd)
        return usage_error(NULL, name[0] == '-' ? "unknown option '%s'" : "unknown command '%s'",
                           name);
    return run_command(cmd, argc - 1, argv + 1);
}
