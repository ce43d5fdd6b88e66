/*
 * stack - captures the caller's stack and interns it as a small integer id.
 *
 * Capture reads the unwind tables itself (cfi.c, with caches of rules and of the thread's
 * last stack) and leaves what it cannot walk to libunwind's unw_backtrace, loaded privately
 * with dlopen(RTLD_LOCAL) so its _Unwind_* exports never replace the C++ runtime's exception
 * handling in the target (PITFALLS: "Unwinding"). LEAKDIFF_UNWIND=fp walks frame pointers
 * instead. The shim's own frames are dropped by address range, not by count.
 *
 * Interning: identical stacks get the same id. A per-thread cache of recent stacks (in the
 * default mode behind the thread's transitions), then a shared index read without a lock;
 * the lock only adds a stack never seen.
 * Never calls malloc (guard held by callers; memory from the arena).
 */
#ifndef LKD_STACK_H
#define LKD_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LKD_STACK_NONE UINT32_MAX

/* Loads libunwind and finds the shim's address range; false when libunwind could not be
 * loaded (the stacks that need it are then empty). */
bool lkd_stack_init(int unwind_mode);
/* Captures up to max return addresses of the current thread, shim frames removed, and
 * their hash (the one lkd_stack_hash gives). The frames written out, for tests; the hooks
 * use lkd_stack_capture_id. */
uint32_t lkd_stack_capture(uint64_t *frames, uint32_t max, uint64_t *hash);
/* A thread's own tables: its cache of recent stacks, and in the default mode its
 * transitions, which spare most captures writing their frames out, and its unwinder's rule
 * cache (cfi.h). Allocated from the arena on first use (NULL: not yet), kept with the
 * thread's record (thread.h). */
typedef struct lkd_stack_local {
    void *cache, *trans, *rules, *memo;
    uint32_t memo_wait; /* captures before the memo is allocated */
} lkd_stack_local_t;
/* Captures up to max frames of the current thread, as lkd_stack_capture, and interns them:
 * the stack's id (LKD_STACK_NONE when out of memory) and its innermost frame in *inner (0
 * for an empty stack). local: the calling thread's tables (NULL: none). The walk starts at
 * fp, a frame of the shim's on the calling thread's stack (a frame-pointer chain leads from
 * it to the program's frames). */
uint32_t lkd_stack_capture_id(lkd_stack_local_t *local, uint32_t max, uintptr_t fp,
                              uint64_t *inner);
/* The default mode's fallback alone: libunwind's unw_backtrace (for tests; lkd_stack_capture
 * takes it when cfi.c cannot walk a stack). */
uint32_t lkd_stack_capture_libunwind(uint64_t *frames, uint32_t max, uint64_t *hash);
/* The hash of a stack, as lkd_stack_capture computes it. */
uint64_t lkd_stack_hash(const uint64_t *frames, uint32_t depth);
/* Interns a stack whose hash is hash, through the thread's tables local (NULL: none);
 * returns its id, or LKD_STACK_NONE when out of memory. */
uint32_t lkd_stack_intern(lkd_stack_local_t *local, const uint64_t *frames, uint32_t depth,
                          uint64_t hash);
/* Frames of a stack id (immutable once interned); NULL for an unknown id. */
const uint64_t *lkd_stack_frames(uint32_t id, uint32_t *depth);
/* Number of interned stacks (ids are 0 .. count-1). */
uint32_t lkd_stack_count(void);
/* True when addr is inside the shim itself. */
bool lkd_stack_in_shim(uint64_t addr);
/* Stack table lock, for fork and for consistent snapshots. */
void lkd_stack_lock(void);
void lkd_stack_unlock(void);
/* Tracker bytes used by interned stacks. */
size_t lkd_stack_memory(void);

#endif
