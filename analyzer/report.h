/*
 * report - renders group sets and snapshot facts as text (for people, in the manner of
 * Python's tracemalloc), JSON (for scripts; keys per DESIGN.md §6, only ever added) or
 * collapsed stacks (for flame graph tools).
 *
 * Renders into an lkd_buf_t; never writes to a file itself, so the caller picks the
 * stream and the unit tests inspect the result.
 */
#ifndef LKD_REPORT_H
#define LKD_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "group.h"
#include "snapshot.h"
#include "util.h"

typedef enum lkd_format {
    LKD_FORMAT_TEXT,
    LKD_FORMAT_JSON,
    LKD_FORMAT_COLLAPSED, /* folded stacks "root;...;site VALUE", for flame graphs */
    LKD_FORMAT_SARIF,     /* check only: SARIF 2.1.0 (code scanning) */
    LKD_FORMAT_JUNIT,     /* check only: JUnit XML */
    LKD_FORMAT_GITHUB,    /* check only: GitHub Actions workflow commands (::error ...) */
} lkd_format_t;

/* One top, diff, trend or survivors report. Trend: snaps/snap_count (oldest first), old the
 * first and snap the last of them. Survivors: old, snap and optionally mid, survivors true. */
typedef struct lkd_report {
    lkd_format_t format;
    const char *command;        /* "top", "diff", "run" (text header "leakdiff: exit snapshot: P"):
                                   the header and the JSON "command" */
    const lkd_snapshot_t *old;  /* NULL for a top report */
    const lkd_snapshot_t *snap; /* the (new) snapshot */
    const lkd_group_set_t *set; /* sorted (lkd_group_sort); diffed when old is set */
    size_t limit;               /* groups to show; 0 = all */
    const lkd_snapshot_t *const *snaps; /* trend: every snapshot, oldest first; else NULL */
    size_t snap_count;
    bool survivors;               /* set: blocks of snap born after old (old->totals.birth_next) */
    const lkd_snapshot_t *mid;    /* survivors: ... and before mid; NULL: no upper bound */
    const lkd_group_opts_t *opts; /* the filters, for the report's header; may be NULL */
} lkd_report_t;

int lkd_format_parse(const char *name, lkd_format_t *format);
int lkd_report_groups(lkd_buf_t *out, const lkd_report_t *r);
int lkd_report_info(lkd_buf_t *out, lkd_format_t format, const lkd_snapshot_t *snap);
int lkd_report_sampled_note(lkd_buf_t *out, const lkd_report_t *r);

/* Pieces of the reports above, shared with the check reports (check_report.h). */
void lkd_report_json_snapshot(lkd_buf_t *out, const lkd_snapshot_t *s);
void lkd_report_json_frame(lkd_buf_t *out, const lkd_frame_t *f);
void lkd_report_text_process(lkd_buf_t *out, const char *prefix, const lkd_snapshot_t *s);
const char *lkd_report_short_path(const lkd_snapshot_t *s, const char *path);

#endif
