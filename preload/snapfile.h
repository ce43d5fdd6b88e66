/*
 * snapfile - encodes one snapshot into the file format of include/leakdiff/format.h.
 *
 * Pure encoding plus write(2): no knowledge of the live tables, so the unit tests drive it
 * with synthetic data. Never calls the tracked malloc: scratch memory and zstd's working
 * memory come from the allocator passed in.
 */
#ifndef LKD_SNAPFILE_H
#define LKD_SNAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leakdiff/format.h"

/* Memory for the encoder; free gets the size that was asked for. */
typedef struct lkd_snapfile_mem {
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
    void *ctx;
} lkd_snapfile_mem_t;

/* Everything one snapshot holds. Arrays are read, never modified. */
typedef struct lkd_snapfile_input {
    lkd_fmt_process_t process;
    lkd_fmt_totals_t totals;
    const char *strings; /* NUL-terminated strings back to back; offsets index this */
    size_t strings_len;
    const lkd_fmt_module_t *modules;
    size_t module_count;
    const uint32_t *stack_depths; /* stack_count entries */
    size_t stack_count;
    const uint64_t *frames; /* sum(stack_depths) return addresses, innermost first */
    size_t frame_count;
    const lkd_fmt_stack_stat_t *stack_stats;
    size_t stack_stat_count;
    const lkd_fmt_block_t *blocks; /* sorted by ascending address */
    size_t block_count;
    int zstd_level; /* 0 = store sections raw */
} lkd_snapfile_input_t;

int lkd_snapfile_write(int fd, const lkd_snapfile_input_t *in, const lkd_snapfile_mem_t *mem);

#endif
