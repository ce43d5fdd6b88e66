/*
 * check_cli - `leakdiff check` and `leakdiff run --check`: options, files, exit codes.
 *
 * The pipeline: suppression files and the baseline are read BEFORE anything runs (so that a
 * malformed rule stops `run --check` before CMD starts), then each snapshot is read and
 * symbolized, checked (check.c), rendered (check_report.c) and written. Messages go to
 * stderr, one line each, naming the file; the report goes to stdout (check, and machine
 * formats of run --check), stderr (text of run --check, like run's report) or --report-file.
 */
#include "../preload/parse.h"
#include "check_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "check_report.h"
#include "snapshot.h"
#include "suppress.h"
#include "symbols.h"
#include "util.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_INPUT = 3, EXIT_NOT_CHECKED = 125 };

#define SUPP_FILE_MAX (16u << 20) /* a suppression file larger than this is refused */

/* A snapshot read from disk, with its symbolizer. */
typedef struct loaded {
    lkd_snapshot_t snap;
    lkd_symbolizer_t *sym;
} loaded_t;

struct lkd_check_session {
    const lkd_check_cli_t *cli;
    lkd_supp_list_t supps;
    loaded_t baseline; /* baseline.sym is NULL when there is none */
    loaded_t *loaded;  /* the snapshots checked */
    size_t n;
    lkd_check_unit_t *units;
    size_t unit_count;
};

static const char *const option_names[] = {
    "--check",
    "--max-leaked",
    "--max-growth",
    "--suppressions",
    "--no-default-suppressions",
    "--print-default-suppressions",
    "--baseline",
    "--each",
    "--leak-exitcode",
    "--report-file",
};

/* ---- options ------------------------------------------------------------------------- */

/* True when opt (a getopt_long value) is one of the check options. */
bool lkd_check_is_option(int opt)
{
    return opt >= LKD_CHECK_OPT_CHECK && opt < LKD_CHECK_OPT_END;
}

static bool parse_exitcode(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || errno || *end || v < 1 || v > 255)
        return false;
    *out = (int)v;
    return true;
}

/*
 * Applies check option opt (lkd_check_is_option) with its argument. Returns NULL, or a
 * usage message with one "%s" for the argument.
 */
const char *lkd_check_option(lkd_check_cli_t *c, int opt, const char *arg)
{
    const char **v;
    c->given |= 1u << (opt - LKD_CHECK_OPT_CHECK);
    switch (opt) {
    case LKD_CHECK_OPT_CHECK: c->check = true; return NULL;
    case LKD_CHECK_OPT_MAX_LEAKED:
        return lkd_parse_size(arg, UINT64_MAX, &c->max_leaked)
                   ? NULL
                   : "bad --max-leaked '%s' (want bytes, e.g. 0 or 4K)";
    case LKD_CHECK_OPT_MAX_GROWTH:
        return lkd_parse_size(arg, UINT64_MAX, &c->max_growth)
                   ? NULL
                   : "bad --max-growth '%s' (want bytes, e.g. 0 or 4K)";
    case LKD_CHECK_OPT_SUPPRESSIONS:
        if (!(v = realloc(c->supp_files, (c->supp_file_count + 1) * sizeof *v)))
            return "out of memory at '%s'";
        c->supp_files = v;
        c->supp_files[c->supp_file_count++] = arg;
        return NULL;
    case LKD_CHECK_OPT_NO_DEFAULTS: c->no_defaults = true; return NULL;
    case LKD_CHECK_OPT_PRINT_DEFAULTS: c->print_defaults = true; return NULL;
    case LKD_CHECK_OPT_BASELINE: c->baseline = arg; return NULL;
    case LKD_CHECK_OPT_EACH: c->each = true; return NULL;
    case LKD_CHECK_OPT_LEAK_EXITCODE:
        return parse_exitcode(arg, &c->leak_exitcode) ? NULL
                                                      : "bad --leak-exitcode '%s' (want 1 to 255)";
    case LKD_CHECK_OPT_REPORT_FILE: c->report_file = arg; return NULL;
    default: return "unknown option '%s'";
    }
}

static bool given(const lkd_check_cli_t *c, int opt)
{
    return c->given & (1u << (opt - LKD_CHECK_OPT_CHECK));
}

/* The first option given among opts[0..n), or NULL. */
static const char *first_given(const lkd_check_cli_t *c, const int *opts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (given(c, opts[i]))
            return option_names[opts[i] - LKD_CHECK_OPT_CHECK];
    return NULL;
}

static const char *format_name(lkd_format_t f)
{
    static const char *const names[] = {"text", "json", "collapsed", "sarif", "junit", "github"};
    return (size_t)f < sizeof names / sizeof names[0] ? names[f] : "?";
}

/*
 * Refuses check options and formats given to a command that does not take them, and
 * options that do not go with a check. Returns NULL, or a message (static storage).
 */
const char *lkd_check_misuse(const lkd_check_cli_t *c, const char *command, lkd_format_t format,
                             bool cumulative)
{
    static char msg[160];
    static const int all[] = {LKD_CHECK_OPT_CHECK,         LKD_CHECK_OPT_MAX_LEAKED,
                              LKD_CHECK_OPT_MAX_GROWTH,    LKD_CHECK_OPT_SUPPRESSIONS,
                              LKD_CHECK_OPT_NO_DEFAULTS,   LKD_CHECK_OPT_PRINT_DEFAULTS,
                              LKD_CHECK_OPT_BASELINE,      LKD_CHECK_OPT_EACH,
                              LKD_CHECK_OPT_LEAK_EXITCODE, LKD_CHECK_OPT_REPORT_FILE};
    static const int check_only[] = {LKD_CHECK_OPT_EACH, LKD_CHECK_OPT_PRINT_DEFAULTS};
    static const int run_only[] = {LKD_CHECK_OPT_CHECK, LKD_CHECK_OPT_LEAK_EXITCODE};
    bool is_check = !strcmp(command, "check"), is_run = !strcmp(command, "run");
    bool checking = is_check || (is_run && c->check);
    const char *o;
    if (!is_check && !is_run && (o = first_given(c, all, sizeof all / sizeof *all)))
        snprintf(msg, sizeof msg, "%s is an option of check and run --check", o);
    else if (is_run && (o = first_given(c, check_only, 2)))
        snprintf(msg, sizeof msg, "%s is an option of check", o);
    else if (is_check && (o = first_given(c, run_only, 2)))
        snprintf(msg, sizeof msg, "%s is an option of run --check", o);
    else if (is_run && !c->check && (o = first_given(c, all + 1, sizeof all / sizeof *all - 1)))
        snprintf(msg, sizeof msg, "%s needs --check", o);
    else if (!checking && format >= LKD_FORMAT_SARIF)
        snprintf(msg, sizeof msg, "--format %s is for check and run --check", format_name(format));
    else if (checking && format == LKD_FORMAT_COLLAPSED)
        snprintf(msg, sizeof msg,
                 "--format collapsed is not a check format (text, json, sarif, "
                 "junit, github)");
    else if (checking && cumulative)
        snprintf(msg, sizeof msg,
                 "--cumulative does not go with a check (a block would count in "
                 "several groups)");
    else
        return NULL;
    return msg;
}

/* ---- files --------------------------------------------------------------------------- */

/* Reads the whole of path (at most SUPP_FILE_MAX bytes) into *text (malloc'd, NUL-terminated).
 * Returns 0 or -errno (-EFBIG when too large). */
static int read_text(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "re");
    lkd_buf_t b = LKD_BUF_INIT;
    char chunk[8192];
    size_t n;
    if (!f)
        return -errno;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= SUPP_FILE_MAX)
        lkd_buf_append(&b, chunk, n);
    int rc = ferror(f) ? -EIO : b.err ? b.err : b.len > SUPP_FILE_MAX ? -EFBIG : 0;
    fclose(f);
    if (rc) {
        lkd_buf_free(&b);
        return rc;
    }
    *len = b.len;
    *text = b.data ? b.data : strdup("");
    return *text ? 0 : -ENOMEM;
}

/* Reads the suppression files and adds the built-in list. 0, or EXIT_USAGE after a
 * message naming the file (and line). */
static int load_suppressions(lkd_check_session_t *s)
{
    const lkd_check_cli_t *c = s->cli;
    char err[512];
    for (size_t i = 0; i < c->supp_file_count; i++) {
        char *text = NULL;
        size_t len = 0;
        int rc = read_text(c->supp_files[i], &text, &len);
        if (rc) {
            fprintf(stderr, "leakdiff: %s: cannot read suppressions: %s\n", c->supp_files[i],
                    strerror(-rc));
            return EXIT_USAGE;
        }
        rc = lkd_supp_parse(&s->supps, text, len, c->supp_files[i], false, err, sizeof err);
        free(text);
        if (rc) {
            fprintf(stderr, "leakdiff: %s\n", err);
            return EXIT_USAGE;
        }
    }
    if (!c->no_defaults && lkd_supp_add_builtin(&s->supps)) {
        fprintf(stderr, "leakdiff: out of memory\n");
        return EXIT_INPUT;
    }
    return 0;
}

static void resolve_symbol(void *ctx, uint64_t address, const lkd_frame_t **frames, size_t *count)
{
    lkd_symbolize(ctx, address, frames, count);
}

/* Reads and opens path into l. 0, or -errno after a message. */
static int load(loaded_t *l, const char *path)
{
    char err[512];
    int rc = lkd_snapshot_read(path, &l->snap, err, sizeof err);
    if (rc) {
        fprintf(stderr, "leakdiff: %s\n", err);
        return rc;
    }
    if (!(l->sym = lkd_symbolizer_open(&l->snap))) {
        fprintf(stderr, "leakdiff: %s: out of memory\n", path);
        return -ENOMEM;
    }
    return 0;
}

static void unload(loaded_t *l)
{
    if (l->sym)
        lkd_symbolizer_close(l->sym);
    lkd_snapshot_free(&l->snap);
    memset(l, 0, sizeof *l);
}

static lkd_check_input_t input_of(loaded_t *l)
{
    lkd_check_input_t in = {&l->snap, {resolve_symbol, l->sym}};
    return in;
}

/* ---- the session --------------------------------------------------------------------- */

/*
 * Starts a check: reads the suppression files (and the built-in list) and the baseline,
 * which must have verdicts. Returns 0 with *out set, or an exit code (EXIT_USAGE for a
 * suppression file, EXIT_INPUT for the baseline) after a message, *out NULL.
 */
int lkd_check_prepare(const lkd_check_cli_t *c, lkd_check_session_t **out)
{
    lkd_check_session_t *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s) {
        fprintf(stderr, "leakdiff: out of memory\n");
        return EXIT_INPUT;
    }
    s->cli = c;
    char err[1024];
    int rc = load_suppressions(s);
    if (!rc && c->baseline && load(&s->baseline, c->baseline))
        rc = EXIT_INPUT;
    if (!rc && c->baseline && lkd_check_need_verdicts(&s->baseline.snap, err, sizeof err)) {
        fprintf(stderr, "leakdiff: %s\n", err);
        rc = EXIT_INPUT;
    }
    if (rc) {
        lkd_check_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Reads paths[0..n) into s->loaded. 0, or EXIT_INPUT after a message. */
static int load_all(lkd_check_session_t *s, char *const *paths, size_t n)
{
    if (!(s->loaded = calloc(n, sizeof *s->loaded))) {
        fprintf(stderr, "leakdiff: out of memory\n");
        return EXIT_INPUT;
    }
    s->n = n;
    for (size_t i = 0; i < n; i++)
        if (load(&s->loaded[i], paths[i]))
            return EXIT_INPUT;
    return 0;
}

/* Runs the checks: each loaded snapshot on its own (LEAKS), or all of them as one series.
 * 0, or EXIT_INPUT after a message (no verdicts, out of memory). */
static int run_checks(lkd_check_session_t *s, const lkd_check_env_t *env, bool series)
{
    const lkd_check_cli_t *c = s->cli;
    lkd_check_opts_t o = {env->group, &s->supps, c->max_leaked, c->max_growth};
    lkd_check_input_t base = input_of(&s->baseline), *in = calloc(s->n, sizeof *in);
    char err[1024];
    int rc = in ? 0 : -ENOMEM;
    s->unit_count = series ? 1 : s->n;
    if (!rc && !(s->units = calloc(s->unit_count, sizeof *s->units)))
        rc = -ENOMEM;
    for (size_t i = 0; in && i < s->n; i++)
        in[i] = input_of(&s->loaded[i]);
    if (!rc && series)
        rc = lkd_check_series(&s->units[0], in, s->n, &o, err, sizeof err);
    for (size_t i = 0; !rc && !series && i < s->n; i++)
        rc = lkd_check_leaks(&s->units[i], &in[i], s->baseline.sym ? &base : NULL, &o, err,
                             sizeof err);
    free(in);
    for (size_t i = 0; i < s->n; i++)
        if (s->loaded[i].sym)
            lkd_print_warnings(lkd_symbolizer_warnings(s->loaded[i].sym));
    if (rc == -ENOMEM && !s->units)
        snprintf(err, sizeof err, "out of memory");
    if (rc)
        fprintf(stderr, "leakdiff: %s\n", err);
    return rc ? EXIT_INPUT : 0;
}

/* One note per --include/--exclude glob that matched no frame of any checked group set. */
static void note_unmatched_globs(const lkd_check_session_t *s, const lkd_group_opts_t *o)
{
    for (size_t i = 0; i < o->include_count + o->exclude_count; i++) {
        bool hit = false;
        for (size_t u = 0; u < s->unit_count; u++)
            for (int k = 0; k < 2; k++)
                hit |= s->units[u].sets[k].glob_matched && s->units[u].sets[k].glob_matched[i];
        bool inc = i < o->include_count;
        if (!hit)
            fprintf(stderr, "leakdiff: note: %s '%s' matches no frame of a checked leak\n",
                    inc ? "--include" : "--exclude",
                    inc ? o->includes[i] : o->excludes[i - o->include_count]);
    }
}

/* Renders the report and writes it to --report-file or to dflt; warnings to stderr.
 * 0, or EXIT_INPUT after a message. */
static int write_report(lkd_check_session_t *s, const lkd_check_env_t *env, FILE *dflt)
{
    const lkd_check_cli_t *c = s->cli;
    lkd_check_report_t r = {env->format,   env->command,  s->units,    s->unit_count,
                            &s->supps,     NULL,          env->group,  env->limit,
                            c->max_leaked, c->max_growth, env->version};
    lkd_buf_t b = LKD_BUF_INIT, w = LKD_BUF_INIT;
    r.baseline = s->baseline.sym ? &s->baseline.snap : NULL;
    lkd_check_report(&b, &r);
    lkd_check_unused_warnings(&w, &s->supps);
    FILE *f = c->report_file ? fopen(c->report_file, "we") : dflt;
    int rc = b.err ? b.err : !f ? -errno : 0;
    if (!rc && (fwrite(lkd_buf_str(&b), 1, b.len, f) != b.len || fflush(f) != 0))
        rc = errno ? -errno : -EIO;
    if (f && f != dflt && fclose(f) != 0 && !rc)
        rc = errno ? -errno : -EIO;
    if (rc)
        fprintf(stderr, "leakdiff: cannot write the report%s%s: %s\n", c->report_file ? " to " : "",
                c->report_file ? c->report_file : "", strerror(-rc));
    fputs(lkd_buf_str(&w), stderr); /* after the report: they read as its footnotes */
    note_unmatched_globs(s, env->group);
    lkd_buf_free(&b);
    lkd_buf_free(&w);
    return rc ? EXIT_INPUT : 0;
}

static bool all_passed(const lkd_check_session_t *s)
{
    for (size_t i = 0; i < s->unit_count; i++)
        if (!s->units[i].passed)
            return false;
    return true;
}

/* ---- leakdiff check -------------------------------------------------------------------- */

static int check_usage(const char *what)
{
    fprintf(stderr, "leakdiff: check: %s\nTry 'leakdiff --help' for more.\n", what);
    return EXIT_USAGE;
}

/*
 * `leakdiff check SNAP...`: one snapshot (or --each) is checked for leaks, two or more as a
 * series for growth. Returns the exit code: 0 passed, 1 failed, 2 usage, 3 bad input.
 */
int lkd_check_main(const lkd_check_cli_t *c, const lkd_check_env_t *env, char *const *paths,
                   size_t n)
{
    lkd_check_session_t *s;
    if (c->print_defaults)
        return fputs(lkd_supp_builtin_text, stdout) >= 0 && fflush(stdout) == 0 ? 0 : EXIT_INPUT;
    if (!n)
        return check_usage("missing argument (want SNAP...)");
    if (c->baseline && n > 1 && !c->each)
        return check_usage("--baseline compares one exit snapshot (or each, with --each), not "
                           "a series");
    int rc = lkd_check_prepare(c, &s);
    if (rc)
        return rc;
    rc = load_all(s, paths, n);
    if (!rc)
        rc = run_checks(s, env, n > 1 && !c->each);
    if (!rc)
        rc = write_report(s, env, stdout);
    if (!rc)
        rc = all_passed(s) ? 0 : EXIT_FAIL;
    lkd_check_session_free(s);
    return rc;
}

/* ---- leakdiff run --check -------------------------------------------------------------- */

/* Paths of every exit snapshot the run's process tree wrote, oldest first. */
static char **exit_snapshots(const lkd_run_result_t *r, size_t *n)
{
    char **v = calloc(r->written.n ? r->written.n : 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < r->written.n; i++) {
        if (strcmp(r->written.v[i].label, "exit") != 0)
            continue;
        if (asprintf(&v[*n], "%s/%s", r->dir, r->written.v[i].name) < 0)
            break;
        (*n)++;
    }
    return v;
}

static void free_paths(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* Why CMD could not be checked, one line. */
static void explain_unchecked(const lkd_run_result_t *r, const char *cmd, size_t found)
{
    if (found)
        fprintf(stderr,
                "leakdiff: --check: %s (pid %d) wrote no exit snapshot in %s; only the %zu "
                "other process(es) of its tree were checked\n",
                cmd, (int)r->pid, r->dir, found);
    else
        fprintf(stderr,
                "leakdiff: --check: no exit snapshot from %s (pid %d) or its children in %s: "
                "nothing to check (killed by a signal, ended with _exit(), LEAKDIFF_AT_EXIT=0, "
                "or not traceable)\n",
                cmd, (int)r->pid, r->dir);
}

/*
 * `run --check`, after CMD ended (r from lkd_run): checks every exit snapshot its process
 * tree wrote, each on its own, and prints the report (text to stderr). Returns the exit
 * status: CMD's when it is not 0; else 0 passed, --leak-exitcode (23) when a process leaked
 * beyond the limits, EXIT_NOT_CHECKED (125) when CMD's own exit snapshot is missing or a
 * snapshot could not be checked. Frees s.
 */
int lkd_check_finish(lkd_check_session_t *s, const lkd_check_env_t *env, const lkd_run_result_t *r,
                     const char *cmd)
{
    size_t n;
    char **paths = exit_snapshots(r, &n);
    int rc = paths ? 0 : EXIT_INPUT;
    if (!rc && (!n || !r->snapshot_count))
        explain_unchecked(r, cmd, n);
    if (!rc && n)
        rc = load_all(s, paths, n);
    if (!rc && n)
        rc = run_checks(s, env, false);
    if (!rc && n)
        rc = write_report(s, env, env->format == LKD_FORMAT_TEXT ? stderr : stdout);
    bool passed = !rc && n && r->snapshot_count && all_passed(s);
    bool checked = !rc && n && r->snapshot_count;
    free_paths(paths, n);
    int leak = s->cli->leak_exitcode ? s->cli->leak_exitcode : LKD_CHECK_LEAK_EXITCODE;
    lkd_check_session_free(s);
    if (r->status)
        return r->status;
    return !checked ? EXIT_NOT_CHECKED : passed ? 0 : leak;
}

/* Frees s (NULL is fine). */
void lkd_check_session_free(lkd_check_session_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->unit_count && s->units; i++)
        lkd_check_unit_free(&s->units[i]);
    free(s->units);
    for (size_t i = 0; i < s->n; i++)
        unload(&s->loaded[i]);
    free(s->loaded);
    unload(&s->baseline);
    lkd_supp_list_free(&s->supps);
    free(s);
}

/* Frees what c owns (the --suppressions array). */
void lkd_check_cli_free(lkd_check_cli_t *c)
{
    free(c->supp_files);
    c->supp_files = NULL;
    c->supp_file_count = 0;
}
