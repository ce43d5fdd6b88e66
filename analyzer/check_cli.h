/*
 * check_cli - the command-line side of the leak gate: the options of `leakdiff check` and
 * `leakdiff run --check`, reading suppression files and snapshots, running the checks
 * (check.h), writing the report (check_report.h), and the exit codes.
 *
 * main.c owns the shared options (--format, -n, --by, filters, attribution) and passes them
 * in an lkd_check_env_t; the options below are parsed through lkd_check_option, from the
 * entries LKD_CHECK_LONG_OPTIONS adds to main.c's getopt_long table.
 *
 * Exit codes of check: 0 passed, 1 a limit was exceeded, 2 usage (bad option, malformed or
 * unreadable suppression file, --baseline with a series), 3 unreadable or invalid input (a
 * snapshot that cannot be read, or has no leak verdicts when the check needs them).
 * run --check: CMD's status when it is not 0; else 23 (--leak-exitcode) when a process
 * leaked beyond the limits, 125 when there was nothing to check (no exit snapshot of CMD,
 * no verdicts), 0 when every exit snapshot of the process tree passed. A bad suppression
 * file (2) or baseline (3) stops run --check before CMD runs.
 */
#ifndef LKD_CHECK_CLI_H
#define LKD_CHECK_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "group.h"
#include "report.h"
#include "run.h"

#define LKD_CHECK_LEAK_EXITCODE 23 /* run --check: leaks found (LeakSanitizer's code) */

/* getopt_long values of the check options (above every short option character). */
enum lkd_check_opt {
    LKD_CHECK_OPT_CHECK = 0x400,
    LKD_CHECK_OPT_MAX_LEAKED,
    LKD_CHECK_OPT_MAX_GROWTH,
    LKD_CHECK_OPT_SUPPRESSIONS,
    LKD_CHECK_OPT_NO_DEFAULTS,
    LKD_CHECK_OPT_PRINT_DEFAULTS,
    LKD_CHECK_OPT_BASELINE,
    LKD_CHECK_OPT_EACH,
    LKD_CHECK_OPT_LEAK_EXITCODE,
    LKD_CHECK_OPT_REPORT_FILE,
    LKD_CHECK_OPT_END,
};

/* Entries for main.c's struct option table. */
// clang-format off
#define LKD_CHECK_LONG_OPTIONS                                                                  \
    {"check", no_argument, NULL, LKD_CHECK_OPT_CHECK},                                          \
    {"max-leaked", required_argument, NULL, LKD_CHECK_OPT_MAX_LEAKED},                          \
    {"max-growth", required_argument, NULL, LKD_CHECK_OPT_MAX_GROWTH},                          \
    {"suppressions", required_argument, NULL, LKD_CHECK_OPT_SUPPRESSIONS},                      \
    {"no-default-suppressions", no_argument, NULL, LKD_CHECK_OPT_NO_DEFAULTS},                  \
    {"print-default-suppressions", no_argument, NULL, LKD_CHECK_OPT_PRINT_DEFAULTS},            \
    {"baseline", required_argument, NULL, LKD_CHECK_OPT_BASELINE},                              \
    {"each", no_argument, NULL, LKD_CHECK_OPT_EACH},                                            \
    {"leak-exitcode", required_argument, NULL, LKD_CHECK_OPT_LEAK_EXITCODE},                    \
    {"report-file", required_argument, NULL, LKD_CHECK_OPT_REPORT_FILE}
// clang-format on

/* Help lines for the options above. */
#define LKD_CHECK_HELP                                                                             \
    "check options (check, and run --check):\n"                                                    \
    "  --check               run: check CMD's process tree for leaks at exit; exit 23 when\n"      \
    "                        one leaked beyond the limits (CMD's own status when it failed)\n"     \
    "  --max-leaked N        one exit snapshot: fail above N leaked bytes (default 0)\n"           \
    "  --max-growth N        two snapshots: fail when memory grew by more than N bytes;\n"         \
    "                        three or more: on groups that grew by more than N in every\n"         \
    "                        interval (default 0)\n"                                               \
    "  --suppressions FILE   LeakSanitizer suppressions (leak:PATTERN; repeatable)\n"              \
    "  --no-default-suppressions  drop the built-in list of the C runtime's one-time\n"            \
    "                        allocations (--print-default-suppressions shows it)\n"                \
    "  --baseline SNAP       fail only on leak groups new or larger than in SNAP\n"                \
    "  --each                check: check every snapshot on its own (a process tree)\n"            \
    "  --leak-exitcode N     run --check: exit status when leaks fail the check (default 23)\n"    \
    "  --report-file FILE    write the check report to FILE instead of stdout/stderr\n"            \
    "  --format F            check also: sarif, junit, github\n"

/* The check options as given. */
typedef struct lkd_check_cli {
    bool check;          /* run --check */
    bool each;           /* check --each */
    bool no_defaults;    /* --no-default-suppressions */
    bool print_defaults; /* --print-default-suppressions */
    uint64_t max_leaked, max_growth;
    const char **supp_files; /* --suppressions (argv pointers; the array is owned) */
    size_t supp_file_count;
    const char *baseline;    /* --baseline SNAP */
    const char *report_file; /* --report-file FILE */
    int leak_exitcode;       /* --leak-exitcode; LKD_CHECK_LEAK_EXITCODE by default */
    unsigned given;          /* bit (opt - LKD_CHECK_OPT_CHECK) per option given */
} lkd_check_cli_t;

/* The shared settings main.c parsed. */
typedef struct lkd_check_env {
    const char *command; /* "check" or "run" */
    lkd_format_t format;
    size_t limit; /* -n */
    const lkd_group_opts_t *group;
    const char *version;
} lkd_check_env_t;

typedef struct lkd_check_session lkd_check_session_t;

bool lkd_check_is_option(int opt);
const char *lkd_check_option(lkd_check_cli_t *c, int opt, const char *arg);
const char *lkd_check_misuse(const lkd_check_cli_t *c, const char *command, lkd_format_t format,
                             bool cumulative);
int lkd_check_main(const lkd_check_cli_t *c, const lkd_check_env_t *env, char *const *paths,
                   size_t n);
int lkd_check_prepare(const lkd_check_cli_t *c, lkd_check_session_t **out);
int lkd_check_finish(lkd_check_session_t *s, const lkd_check_env_t *env, const lkd_run_result_t *r,
                     const char *cmd);
void lkd_check_session_free(lkd_check_session_t *s);
void lkd_check_cli_free(lkd_check_cli_t *c);

#endif
