/*
 * arena - the tracker's own memory, from mmap, never from the malloc it intercepts.
 *
 * Size classes (powers of two and 1.5 times them) with free lists for small requests, direct
 * mappings for large ones. Callers pass the size back on free (like C++ sized delete), so no header
 * is stored. Thread-safe (one lock; only cold paths allocate). Never calls malloc.
 */
#ifndef LKD_ARENA_H
#define LKD_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returns size bytes aligned to 8 (to 64 when the size class is whole cache lines: 64, 128,
 * 192... bytes; to the page for large requests), or NULL when the kernel refuses memory.
 * The memory is zeroed. */
void *lkd_arena_alloc(size_t size);
/* Like lkd_arena_alloc, for memory the caller is about to fill: a large allocation is
 * mapped with its pages already present (MAP_POPULATE), one system call instead of a page
 * fault per 4 KiB - a quarter of the time of copying a million blocks for a snapshot. */
void *lkd_arena_alloc_filled(size_t size);
/* Like lkd_arena_alloc, but not zeroed: for memory the caller writes whole, or clears only
 * in part (the live table clears a new table's keys, an eighth of its bytes: the zeroing of
 * reused blocks was 21 instructions per allocation under python3, callgrind). */
void *lkd_arena_alloc_raw(size_t size);
/* Like lkd_arena_alloc, on cache lines of its own: for records that a thread writes on every
 * malloc and free, which must not share a line with another thread's (false sharing: two
 * threads' first regions and counter records were allocated next to each other). On this
 * machine's 2 vCPUs the deep-stack loop on 2 threads gained 4%, within noise (11 rounds).
 * Never freed. */
void *lkd_arena_alloc_lines(size_t size);
#define LKD_ARENA_LINE 64
/* The arena memory lkd_arena_alloc_lines(size) takes: whole lines. */
static inline size_t lkd_arena_lines_size(size_t size)
{
    return (size + LKD_ARENA_LINE - 1) / LKD_ARENA_LINE * LKD_ARENA_LINE;
}
/* Returns memory from lkd_arena_alloc(size) with the same size. NULL is ignored. */
void lkd_arena_free(void *ptr, size_t size);
/* Grows or shrinks an arena allocation, keeping min(old, new) bytes; NULL on failure (the
 * old allocation is then untouched). */
void *lkd_arena_realloc(void *ptr, size_t old_size, size_t new_size);
/* Reserves size bytes of zero-filled address space that costs memory only once touched. */
void *lkd_arena_reserve(size_t size);
/* Bytes currently mapped by the arena (including reservations' touched pages: no). */
size_t lkd_arena_mapped(void);
/* Size classes (16, 24, 32, 48, ... 1 MiB): a request of lkd_arena_class_size(c) bytes
 * wastes nothing. */
size_t lkd_arena_class_size(unsigned c);
unsigned lkd_arena_class_of(size_t size);
/* Copies up to max [lo, hi) ranges of the arena's mappings (all of them: allocations and
 * reservations) into out; *complete is false when some are missing. */
size_t lkd_arena_ranges(uintptr_t (*out)[2], size_t max, bool *complete);
/* For pthread_atfork: hold the arena lock across fork; reset it in the child. */
void lkd_arena_lock(void);
void lkd_arena_unlock(void);

#endif
