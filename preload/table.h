/*
 * table - the live-block table: block address -> {size, stack id, birth}.
 *
 * Meets the per-block memory target (<= 32 B) with 16-byte slots, and keeps locality: a
 * two-level radix directory (like tcmalloc's page map) finds the 64 KiB region of an
 * address, and each region has its own small hash table and spinlock. Recent allocations
 * sit in few regions, so their metadata stays in cache, and threads whose malloc arenas
 * differ never share a lock. Never calls malloc.
 *
 * Lock order (one place, for the whole shim): snapshot writer -> table directory -> region
 * locks (ascending address) -> overflow lock -> stack table -> thread registry -> modules
 * -> arena.
 */
#ifndef LKD_TABLE_H
#define LKD_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leakdiff/format.h"

typedef struct lkd_block {
    uint64_t size;
    uint64_t birth;
    uint32_t stack;
} lkd_block_t;

bool lkd_table_init(void);
/* Records a block. If addr was already recorded (a free the shim did not see), the stale
 * record is replaced and returned in *stale with true in *replaced. False when out of
 * memory (the block is then not recorded). */
bool lkd_table_insert(uintptr_t addr, const lkd_block_t *block, lkd_block_t *stale, bool *replaced);
/* Removes addr; true and its record in *out when it was recorded. */
bool lkd_table_remove(uintptr_t addr, lkd_block_t *out);
/* Starts loading the group of slots where addr's record would go, so that an insertion
 * after some other work (the stack capture) finds it in the cache on a table too large for
 * it. */
void lkd_table_prefetch(uintptr_t addr);

/* Freezes the table (all locks, in the documented order) for a consistent copy or fork. */
void lkd_table_lock_all(void);
void lkd_table_unlock_all(void);
/* Blocks recorded now. Table frozen. */
size_t lkd_table_count(void);
/* Copies up to max records into out, ascending by address; returns how many. Table frozen. */
size_t lkd_table_copy(lkd_fmt_block_t *out, size_t max);
/* Bytes of tracker memory the table uses (slots, regions, directory pages in use). */
size_t lkd_table_memory(void);

#endif
