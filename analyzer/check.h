/*
 * check - the CI leak gate (`leakdiff check`, `leakdiff run --check`): decides whether
 * snapshots pass, and why not.
 *
 * Three modes, by the number of snapshots of one check:
 *   LEAKS  one exit snapshot with reachability verdicts: its leaked blocks (DIRECT and
 *          INDIRECT) after suppressions and filters, grouped per kind, against max_leaked;
 *          with a baseline, only what the baseline does not explain counts;
 *   GROWTH two snapshots: growth of memory from the first to the second against max_growth;
 *   TREND  three or more: fails on groups that grew in every interval by more than
 *          max_growth (the rule of CPython's -R refleak hunter).
 * GROWTH and TREND measure leaked blocks when every snapshot has verdicts (exit snapshots of
 * a short and a long run), else all live blocks (snapshots of a running process).
 *
 * Suppressions (suppress.h) hide a block whose stack a rule matches; a hidden DIRECT block
 * hides the INDIRECT blocks that hang from it (their leader) too, as in LeakSanitizer. What
 * each rule hid is added to its counters.
 *
 * Pure: no I/O. Snapshots and resolvers are the caller's and must outlive the unit (its
 * group sets borrow frame strings from the resolvers).
 */
#ifndef LKD_CHECK_H
#define LKD_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "group.h"
#include "snapshot.h"
#include "suppress.h"

typedef enum lkd_check_mode {
    LKD_CHECK_LEAKS,  /* one exit snapshot: leaked bytes against max_leaked */
    LKD_CHECK_GROWTH, /* two snapshots: growth from the first to the second against max_growth */
    LKD_CHECK_TREND,  /* three or more: groups that grew in every interval by > max_growth */
} lkd_check_mode_t;

/* What a reported group is. */
typedef enum lkd_leak_kind {
    LKD_LEAK_DIRECT,   /* no pointer to its blocks anywhere */
    LKD_LEAK_INDIRECT, /* pointed to only from leaked blocks */
    LKD_LEAK_GROWTH,   /* GROWTH / TREND: memory that grew */
} lkd_leak_kind_t;

/* A LEAKS group against the baseline. */
typedef enum lkd_baseline_status {
    LKD_BASELINE_NONE,   /* no baseline given */
    LKD_BASELINE_NEW,    /* its key leaks nothing in the baseline */
    LKD_BASELINE_LARGER, /* its key leaks more bytes than in the baseline */
    LKD_BASELINE_KNOWN,  /* its key leaks no more than in the baseline: never fails */
} lkd_baseline_status_t;

/* One snapshot to check, with the resolver of its addresses. */
typedef struct lkd_check_input {
    const lkd_snapshot_t *snap;
    lkd_resolver_t res;
} lkd_check_input_t;

typedef struct lkd_check_opts {
    const lkd_group_opts_t *group; /* key, attribution and filters (include, exclude, min_bytes) */
    lkd_supp_list_t *supps;        /* NULL: none; counters updated */
    uint64_t max_leaked;           /* LEAKS: bytes allowed to leak (beyond the baseline) */
    uint64_t max_growth;           /* GROWTH: total bytes; TREND: bytes per interval per group */
} lkd_check_opts_t;

typedef struct lkd_check_group {
    const lkd_group_t *group; /* borrowed from the unit's sets */
    lkd_leak_kind_t kind;
    lkd_baseline_status_t baseline;
    uint64_t baseline_bytes; /* LEAKS with a baseline: the key's leaked bytes there */
    uint64_t key_bytes;      /* LEAKS: the key's leaked bytes here, both kinds */
    int64_t growth;          /* GROWTH: bytes first -> last; TREND: the smallest interval's */
    bool failing;            /* one of the reasons the unit failed */
} lkd_check_group_t;

/* The outcome of one check: one snapshot (LEAKS) or one series (GROWTH, TREND). */
typedef struct lkd_check_unit {
    lkd_check_mode_t mode;
    const lkd_snapshot_t *snap;   /* the checked snapshot; the newest of a series */
    const lkd_snapshot_t *first;  /* the oldest of a series; NULL for LEAKS */
    const lkd_snapshot_t **snaps; /* series: every snapshot, oldest first (array owned) */
    size_t snap_count;
    bool leaked_only;  /* series: leaked blocks measured (all had verdicts), else live */
    bool baseline;     /* LEAKS: compared with a baseline */
    bool passed;       /* measured <= limit (TREND: no failing group) */
    uint64_t limit;    /* max_leaked or max_growth */
    uint64_t measured; /* LEAKS: leaked bytes (beyond the baseline); GROWTH: growth (>= 0);
                          TREND: growth first -> last of the failing groups */
    /* LEAKS: what is reported, after suppressions and filters. Series: what grew (the sum of
     * the groups with a positive change), in bytes and blocks. */
    uint64_t bytes, blocks, direct_bytes, direct_blocks, indirect_bytes, indirect_blocks;
    uint64_t suppressed_bytes, suppressed_blocks; /* hidden by suppressions (newest snapshot) */
    uint64_t known_bytes;                         /* LEAKS: leaked bytes the baseline explains */
    int64_t growth;                               /* series: total change first -> last */
    lkd_group_set_t
        sets[2]; /* LEAKS: direct, indirect groups; series: sets[0], the diff or trend */
    lkd_check_group_t *groups; /* reported groups; failing first, then largest */
    size_t group_count;
    size_t failing_groups;
} lkd_check_unit_t;

bool lkd_check_has_verdicts(const lkd_snapshot_t *snap);
int lkd_check_need_verdicts(const lkd_snapshot_t *snap, char *err, size_t errlen);
int lkd_check_suppress(const lkd_check_input_t *in, const lkd_group_opts_t *gopts,
                       const lkd_supp_list_t *supps, bool leaked_only, uint32_t **rules);
int lkd_check_leaks(lkd_check_unit_t *u, const lkd_check_input_t *in,
                    const lkd_check_input_t *baseline, const lkd_check_opts_t *o, char *err,
                    size_t errlen);
int lkd_check_series(lkd_check_unit_t *u, const lkd_check_input_t *in, size_t n,
                     const lkd_check_opts_t *o, char *err, size_t errlen);
const char *lkd_leak_kind_name(lkd_leak_kind_t kind);
const char *lkd_baseline_status_name(lkd_baseline_status_t status);
void lkd_check_unit_free(lkd_check_unit_t *u);

#endif
