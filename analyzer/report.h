/*
 * report - renders group sets and snapshot facts as text (for people, in the manner of
 * Python's tracemalloc) or JSON (for scripts; keys per DESIGN.md §6, only ever added).
 *
 * Renders into an lkd_buf_t; never writes to a file itself, so the caller picks the
 * stream and the unit tests inspect the result.
 */
#ifndef LKD_REPORT_H
#define LKD_REPORT_H

#include <stddef.h>

#include "group.h"
#include "snapshot.h"
#include "util.h"

typedef enum lkd_format { LKD_FORMAT_TEXT, LKD_FORMAT_JSON } lkd_format_t;

/* One top or diff report. */
typedef struct lkd_report {
    lkd_format_t format;
    const char *command;        /* "top", "diff", "run" (text header "leakdiff: exit snapshot: P"):
                                   the header and the JSON "command" */
    const lkd_snapshot_t *old;  /* NULL for a top report */
    const lkd_snapshot_t *snap; /* the (new) snapshot */
    const lkd_group_set_t *set; /* sorted (lkd_group_sort); diffed when old is set */
    size_t limit;               /* groups to show; 0 = all */
} lkd_report_t;

int lkd_format_parse(const char *name, lkd_format_t *format);
int lkd_report_groups(lkd_buf_t *out, const lkd_report_t *r);
int lkd_report_info(lkd_buf_t *out, lkd_format_t format, const lkd_snapshot_t *snap);

#endif
