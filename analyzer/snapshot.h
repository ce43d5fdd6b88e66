/*
 * snapshot - reads and validates one snapshot file (include/leakdiff/format.h).
 *
 * Every file is untrusted input: sizes, offsets, counts, string offsets, stack ids and
 * depths are all checked before use. On success the whole file is decoded into plain
 * arrays owned by lkd_snapshot_t.
 */
#ifndef LKD_SNAPSHOT_H
#define LKD_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "leakdiff/format.h"

typedef struct lkd_snapshot {
    char *path; /* as given to lkd_snapshot_read */
    uint16_t major, minor;
    lkd_fmt_process_t process;
    lkd_fmt_totals_t totals;
    char *strings; /* always NUL-terminated at strings[strings_len] */
    size_t strings_len;
    lkd_fmt_module_t *modules;
    size_t module_count;
    uint32_t *stack_depths;  /* stack_count entries */
    uint64_t *stack_offsets; /* index of each stack's first frame in frames[] */
    size_t stack_count;
    uint64_t *frames;
    size_t frame_count;
    lkd_fmt_stack_stat_t *stack_stats;
    size_t stack_stat_count;
    lkd_fmt_block_t *blocks; /* ascending address; absolute addresses (deltas undone) */
    size_t block_count;
} lkd_snapshot_t;

/*
 * Reads path into *snap. Returns 0, or -errno with a one-line message in err naming the file
 * and the problem (-ENOENT missing, -EINVAL not a snapshot / corrupt / truncated,
 * -EPROTONOSUPPORT newer major version, -ENOMEM). *snap is zeroed on failure.
 */
int lkd_snapshot_read(const char *path, lkd_snapshot_t *snap, char *err, size_t errlen);
void lkd_snapshot_free(lkd_snapshot_t *snap);
/* String at a STRINGS offset; "" for an offset out of range (already validated on read). */
const char *lkd_snapshot_string(const lkd_snapshot_t *snap, uint32_t offset);

#endif
