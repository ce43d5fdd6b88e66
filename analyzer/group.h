/*
 * group - attributes each stack of a snapshot to its site and groups live memory by a
 * symbolic key (optionally cumulative, filtered, or only the blocks born after a point);
 * merges two group sets into a diff, or a series of them into a trend.
 *
 * Pure logic: no I/O. Addresses are turned into frames through an lkd_resolver_t, so the
 * unit tests drive this with a fake resolver and synthetic snapshots; the CLI plugs in the
 * elfutils symbolizer. Groups are keyed by symbol strings (never raw addresses), so group
 * sets of two runs with different ASLR match key by key.
 *
 * Ownership: a group set owns its groups, keys and frame arrays. The strings inside the
 * frames are borrowed from the resolver(s) that produced them, which must outlive the set
 * (for a diff: both the old and the new resolver).
 */
#ifndef LKD_GROUP_H
#define LKD_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Analyzer tables survive out-of-memory: a failed add leaves hh.tbl NULL (checked). */
#ifndef HASH_NONFATAL_OOM
#define HASH_NONFATAL_OOM 1
#endif
#include <uthash.h>

#include "snapshot.h"
#include "symbols.h"

/* What a group is keyed by (--by). */
typedef enum lkd_group_by {
    LKD_BY_FUNCTION,  /* the site's function name (default) */
    LKD_BY_LINE,      /* "file:line" of the site; its function name without line info */
    LKD_BY_FILE,      /* the site's source file; its module without one */
    LKD_BY_MODULE,    /* path of the site's object file */
    LKD_BY_TRACEBACK, /* frames from the site outward, "function (file:line)" joined " <- " */
} lkd_group_by_t;

/* Resolves one return address to >= 1 frames (innermost inline frame first). The frames
 * stay valid as long as the resolver does. */
typedef struct lkd_resolver {
    void (*resolve)(void *ctx, uint64_t address, const lkd_frame_t **frames, size_t *count);
    void *ctx;
} lkd_resolver_t;

/* Python attribution (--python): CPython's interpreter frames are plumbing, so that a C
 * extension's own function is the site; an all-interpreter stack gets the interpreter's
 * allocating function as its site (see group.c). */
typedef enum lkd_python {
    LKD_PYTHON_AUTO, /* on when the snapshot is of a CPython process (lkd_group_is_python) */
    LKD_PYTHON_ON,   /* --python */
    LKD_PYTHON_OFF,  /* --no-python */
} lkd_python_t;

/* How to attribute and group. The glob arrays are borrowed (typically from argv). */
typedef struct lkd_group_opts {
    lkd_group_by_t by;
    const char *const *skip_functions; /* fnmatch globs added to the default plumbing */
    size_t skip_function_count;
    const char *const *skip_modules; /* fnmatch globs on the module path */
    size_t skip_module_count;
    const char *const *skip_files; /* fnmatch globs on the source file path */
    size_t skip_file_count;
    lkd_python_t python; /* python attribution; AUTO (0) by default */
    /* Filters (lkd_group_build): a stack is kept when some frame matches an include glob (or
     * none is given) and no frame matches an exclude glob; see lkd_group_frame_matches. */
    const char *const *includes;
    size_t include_count;
    const char *const *excludes;
    size_t exclude_count;
    uint64_t min_bytes; /* --min-bytes, applied by lkd_group_drop_small; 0 = off */
    uint64_t min_birth; /* survivors: only blocks with birth >= this count; 0 = every block */
    uint64_t max_birth; /* survivors: ... and birth < this; 0 = no upper bound */
    bool cumulative;    /* every location from the site outward counts, once per stack */
    bool folded;        /* key: the whole stack, root first, ';'-joined (collapsed output) */
} lkd_group_opts_t;

typedef struct lkd_group {
    char *key;                       /* owned, NUL-terminated */
    uint64_t bytes, blocks;          /* live in the (new) snapshot */
    uint64_t old_bytes, old_blocks;  /* live in the old snapshot (after lkd_group_diff) */
    int64_t bytes_diff, blocks_diff; /* new - old (after lkd_group_diff) */
    size_t stacks;                   /* distinct stacks that fell into this group */
    lkd_frame_t *frames;             /* representative: the largest stack, site outward; owned */
    size_t frame_count;
    uint64_t rep_bytes;      /* bytes of the stack that supplied frames */
    size_t stamp;            /* cumulative: 1 + id of the last stack counted here */
    uint64_t *series;        /* trend: live bytes per snapshot, oldest first; owned */
    uint64_t *blocks_series; /* trend: live blocks per snapshot; owned */
    bool growing;            /* trend: bytes rose in every interval */
    UT_hash_handle hh;
} lkd_group_t;

typedef struct lkd_group_set {
    lkd_group_by_t by;
    lkd_group_t *table;             /* uthash head, by key */
    lkd_group_t **sorted;           /* every group, after lkd_group_sort; owned */
    size_t count;                   /* groups in table */
    uint64_t bytes, blocks;         /* sums over all groups (new snapshot) */
    uint64_t old_bytes, old_blocks; /* sums over the old snapshot, after lkd_group_diff */
    bool diffed;                    /* lkd_group_diff or lkd_group_trend ran */
    bool cumulative;                /* built with opts->cumulative */
    size_t series_len;              /* trend: snapshots in each group's series; else 0 */
    size_t dropped;                 /* groups lkd_group_drop_small removed */
    bool *glob_matched;             /* per include, then exclude glob: matched a frame */
    size_t glob_count;
} lkd_group_set_t;

/* Sort orders for lkd_group_sort. */
typedef enum lkd_group_order {
    LKD_ORDER_SIZE,  /* bytes desc, then key */
    LKD_ORDER_DIFF,  /* bytes_diff desc, then bytes desc, then key */
    LKD_ORDER_TREND, /* growing first, then as LKD_ORDER_DIFF */
} lkd_group_order_t;

int lkd_group_by_parse(const char *name, lkd_group_by_t *by);
const char *lkd_group_by_name(lkd_group_by_t by);

uint64_t lkd_group_sample_rate(const lkd_snapshot_t *snap);
bool lkd_group_is_plumbing(const lkd_frame_t *frame, const lkd_group_opts_t *opts);
bool lkd_group_is_python(const lkd_snapshot_t *snap);
bool lkd_group_python_on(const lkd_snapshot_t *snap, const lkd_group_opts_t *opts);
int lkd_group_build(const lkd_snapshot_t *snap, const lkd_resolver_t *res,
                    const lkd_group_opts_t *opts, lkd_group_set_t *set);
int lkd_group_diff(lkd_group_set_t *set, const lkd_group_set_t *old);
int lkd_group_trend(lkd_group_set_t *set, const lkd_group_set_t *const *earlier, size_t count);
void lkd_group_drop_small(lkd_group_set_t *set, uint64_t min_bytes);
bool lkd_group_frame_matches(const char *glob, const lkd_frame_t *frame);
int lkd_group_sort(lkd_group_set_t *set, lkd_group_order_t order);
lkd_group_t *lkd_group_find(const lkd_group_set_t *set, const char *key);
void lkd_group_set_free(lkd_group_set_t *set);

size_t lkd_function_base_len(const lkd_frame_t *frame);
/* A test of one name of a frame: its function (is_path false) or its file or module. */
typedef bool lkd_frame_test_fn(const void *ctx, const char *name, bool is_path);
/* True when test accepts frame's function (as shown, or without a "+0x1a" offset suffix),
 * its source file or its module: what --include/--exclude and suppressions look at. */
bool lkd_frame_matches(const lkd_frame_t *frame, lkd_frame_test_fn *test, const void *ctx);

#endif
