/*
 * check_report - renders the outcome of a leak check (check.h) as text in LeakSanitizer's
 * manner, JSON, SARIF 2.1.0, JUnit XML, or GitHub Actions workflow commands.
 *
 * Renders into an lkd_buf_t; never writes to a file itself.
 */
#ifndef LKD_CHECK_REPORT_H
#define LKD_CHECK_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "check.h"
#include "report.h"
#include "suppress.h"
#include "util.h"

typedef struct lkd_check_report {
    lkd_format_t format;
    const char *command;           /* "check" or "run": JSON "command" */
    const lkd_check_unit_t *units; /* one per checked snapshot or series */
    size_t unit_count;
    const lkd_supp_list_t *supps;    /* every rule in force, with counters; may be NULL */
    const lkd_snapshot_t *baseline;  /* --baseline, or NULL */
    const lkd_group_opts_t *opts;    /* key and filters, for the header; may be NULL */
    size_t limit;                    /* text: groups shown per unit; 0 = all */
    uint64_t max_leaked, max_growth; /* the limits in force */
    const char *version;             /* leakdiff's version, for SARIF */
} lkd_check_report_t;

bool lkd_check_report_passed(const lkd_check_report_t *r);
int lkd_check_report(lkd_buf_t *out, const lkd_check_report_t *r);
void lkd_check_report_unit_text(lkd_buf_t *out, const lkd_check_report_t *r,
                                const lkd_check_unit_t *u);
void lkd_check_unused_warnings(lkd_buf_t *out, const lkd_supp_list_t *supps);

#endif
