/*
 * track - what the hooks call: records allocations and frees, keeps the totals, owns the
 * shim's lifecycle (lazy initialisation, fork, exit snapshot).
 *
 * The hooks stay thin: lkd_track_enter() is the inline gate (guard, state), everything
 * else is out of line. Never calls the tracked malloc.
 */
#ifndef LKD_TRACK_H
#define LKD_TRACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "leakdiff/format.h"
#include "table.h"

enum lkd_state { LKD_ST_UNINIT, LKD_ST_INIT, LKD_ST_READY, LKD_ST_INERT };

/* Per-thread re-entrancy guard: set while the shim works, so allocations made by the
 * unwinder, the loader or libc on the shim's behalf pass straight through. */
extern __thread int lkd_guard __attribute__((tls_model("initial-exec")));
extern atomic_int lkd_state;

bool lkd_track_init(void);

/* True when the calling hook should record: not re-entered, and the tracker is ready
 * (initialising it on first use). */
static inline bool lkd_track_enter(void)
{
    if (__builtin_expect(lkd_guard, 0))
        return false;
    int st = atomic_load_explicit(&lkd_state, memory_order_acquire);
    if (__builtin_expect(st == LKD_ST_READY, 1))
        return true;
    return st == LKD_ST_UNINIT && lkd_track_init();
}

/* Records a successful allocation of size bytes at ptr (ptr != NULL); elem is calloc's
 * element size, 0 for the other functions; fp is the hook's frame (its
 * __builtin_frame_address(0)), where the stack walk starts. */
void lkd_track_alloc(void *ptr, size_t size, size_t elem, uintptr_t fp);
/* Forgets ptr before it is released; unknown pointers are counted (except in sampled mode,
 * where most pointers were never recorded) and ignored. */
void lkd_track_free(void *ptr);
/* For realloc: forgets ptr and returns its record (true) so a failed realloc can put it
 * back with lkd_track_restore. */
bool lkd_track_take(void *ptr, lkd_block_t *out);
void lkd_track_restore(void *ptr, const lkd_block_t *block);
/* Starts or stops recording new allocations (frees of recorded blocks are always
 * processed). */
void lkd_track_set_recording(bool on);
bool lkd_track_recording(void);
/* Writes a snapshot now (serialized with every other writer); 0 or -errno. Sets the guard
 * itself. flags: enum lkd_fmt_process_flag. */
int lkd_track_snapshot(const char *label, uint32_t flags);
/* The program is about to send itself sig with kill(2): when that will end the process
 * (default disposition, terminating, not blocked), the exit snapshot is written now, since
 * the destructor will never run. CPython ends this way after a KeyboardInterrupt. */
void lkd_track_before_self_kill(int sig);
/* Current traced bytes and peak, for the program API. */
void lkd_track_memory(uint64_t *current, uint64_t *peak);
void lkd_track_reset_peak(void);
/* Records the loader's module list before a dlclose, so the module stays in the map. */
void lkd_track_before_dlclose(void);

/* Current totals (bytes and blocks are filled in by the snapshot from its block copy). */
void lkd_track_totals(lkd_fmt_totals_t *out);
/* Marks the data incomplete (internal failure); warns once. */
void lkd_track_lost(const char *why);

#endif
