/*
 * thread - per-thread counters, so the hot path performs no shared atomic operations.
 *
 * A global atomic counter on every malloc and free cost most of the tracker's time on two
 * threads (perf: the lock xadd on the birth counter was 86% of lkd_track_alloc), because
 * its cache line bounces between cores. Instead each thread owns a record: births come in
 * batches from the global counter, cumulative counts are the thread's own and summed when a
 * snapshot is written, and live bytes reach the global current/peak counter in
 * LKD_THREAD_FLUSH steps. Between steps the thread keeps its delta and the highest value the
 * delta reached, and readers add both in: the peak is exact while the process has one thread
 * (flushing on every change cost two atomic operations per malloc and free there) and off by
 * at most LKD_THREAD_FLUSH per thread once it has several.
 *
 * Records come from the arena, are never freed, and are recycled when their thread exits,
 * so sums over all records stay right. Never calls malloc.
 */
#ifndef LKD_THREAD_H
#define LKD_THREAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "leakdiff/format.h"
#include "stack.h"

#define LKD_THREAD_BIRTHS 64         /* births taken from the global counter at once */
#define LKD_THREAD_FLUSH (64 * 1024) /* bytes a thread may hold back with others alive */

typedef struct lkd_thread {
    uint64_t birth_next, birth_end; /* the thread's current batch of births */
    unsigned epoch;                 /* the snapshot epoch the batch belongs to */
    /* Live bytes not yet added to the global counter, and the highest that delta reached
     * since the last flush: written by the owner only, read by lkd_thread_memory and
     * lkd_thread_totals (relaxed atomics, plain moves on x86). */
    atomic_int_fast64_t bytes_delta, delta_peak;
    /* Written by the owner only, read by snapshots: relaxed atomics, plain moves on x86. */
    atomic_uint_fast64_t allocs, frees, unknown_frees, total_bytes;
    lkd_stack_local_t stack; /* the thread's stack tables (kept when recycled) */
    struct lkd_thread *next;
    atomic_bool free; /* its thread has exited; may be adopted by a new thread */
} lkd_thread_t;

extern __thread lkd_thread_t *lkd_thread_self __attribute__((tls_model("initial-exec")));

/* Creates the key whose destructor recycles records; call once at initialisation. */
void lkd_thread_init(void);
/* The calling thread's record, created on first use; NULL when out of memory. Set the
 * guard around it: registering may allocate (pthread_setspecific). */
lkd_thread_t *lkd_thread_get_slow(void);

static inline lkd_thread_t *lkd_thread_get(void)
{
    lkd_thread_t *t = lkd_thread_self;
    return __builtin_expect(t != NULL, 1) ? t : lkd_thread_get_slow();
}

/* Next birth number for the calling thread (1, 2, ... across the process, unique). */
uint64_t lkd_thread_birth_refill(lkd_thread_t *t);
extern atomic_uint lkd_thread_epoch;
static inline uint64_t lkd_thread_birth(lkd_thread_t *t)
{
    if (__builtin_expect(t->birth_next == t->birth_end ||
                             t->epoch !=
                                 atomic_load_explicit(&lkd_thread_epoch, memory_order_relaxed),
                         0))
        return lkd_thread_birth_refill(t);
    return t->birth_next++;
}

/* Adds delta to the thread's live bytes, flushing to the global current and peak. */
void lkd_thread_flush(lkd_thread_t *t);
static inline void lkd_thread_bytes(lkd_thread_t *t, int64_t delta)
{
    int64_t d = atomic_load_explicit(&t->bytes_delta, memory_order_relaxed) + delta;
    atomic_store_explicit(&t->bytes_delta, d, memory_order_relaxed);
    if (d > atomic_load_explicit(&t->delta_peak, memory_order_relaxed))
        atomic_store_explicit(&t->delta_peak, d, memory_order_relaxed);
    if (d >= LKD_THREAD_FLUSH || d <= -LKD_THREAD_FLUSH)
        lkd_thread_flush(t);
}

static inline void lkd_thread_count_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Starts a new birth epoch: every allocation from now on gets a birth >= the returned
 * value, which is what the snapshot records as birth_next. */
uint64_t lkd_thread_new_epoch(void);
/* Fills the cumulative counters and peak of *t from all records. */
void lkd_thread_totals(lkd_fmt_totals_t *t);
/* Live bytes now and their peak (program API: traced_memory). */
void lkd_thread_memory(uint64_t *current, uint64_t *peak);
/* Sets the peak to the current live bytes (program API: reset_peak). */
void lkd_thread_reset_peak(void);
/* Fork handlers: hold the registry lock across fork. */
void lkd_thread_lock(void);
void lkd_thread_unlock(void);
void lkd_thread_forked(void);

#endif
