/*
 * thread - the registry of per-thread counter records.
 *
 * Invariants: records are appended to one list under the registry lock and never removed;
 * a record's counters only grow, so a snapshot's sum over the list is the process's total
 * whichever threads lived or died. The global birth counter only hands out batches, and
 * every batch is tagged with the epoch it was taken in. Never calls malloc.
 */
#include "thread.h"

#include <pthread.h>

#include "arena.h"

__thread lkd_thread_t *lkd_thread_self __attribute__((tls_model("initial-exec")));
atomic_uint lkd_thread_epoch;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static lkd_thread_t *head;
static pthread_key_t key;
static bool key_ok;
static struct {
    _Alignas(64) atomic_uint_fast64_t birth_next;
    _Alignas(64) atomic_int_fast64_t bytes;
    atomic_int_fast64_t peak;
} global = {.birth_next = 1};

/* At thread exit: hand the live-byte delta over and let a new thread adopt the record. A
 * thread that allocates after this registers again (pthread retries destructors). */
static void thread_exit(void *arg)
{
    lkd_thread_t *t = arg;
    lkd_thread_flush(t);
    lkd_thread_self = NULL;
    atomic_store(&t->free, true);
}

/* lkd_thread_init - creates the recycling key; call once, guard held. */
void lkd_thread_init(void)
{
    key_ok = pthread_key_create(&key, thread_exit) == 0;
}

/* lkd_thread_get_slow - adopts a free record or creates one; NULL when out of memory.
 * Guard held by the caller (pthread_setspecific may allocate). */
__attribute__((noinline, cold)) lkd_thread_t *lkd_thread_get_slow(void)
{
    lkd_thread_t *t = NULL;
    pthread_mutex_lock(&lock);
    for (lkd_thread_t *r = head; r && !t; r = r->next)
        if (atomic_load(&r->free))
            t = r;
    if (t) {
        atomic_store(&t->free, false);
    } else if ((t = lkd_arena_alloc_lines(sizeof *t))) {
        t->next = head;
        head = t;
    }
    pthread_mutex_unlock(&lock);
    if (!t)
        return NULL;
    t->birth_next = t->birth_end = 0;
    lkd_thread_self = t;
    if (key_ok)
        pthread_setspecific(key, t);
    return t;
}

/* lkd_thread_birth_refill - takes a new batch of births (batch used up or epoch moved). */
uint64_t lkd_thread_birth_refill(lkd_thread_t *t)
{
    t->epoch = atomic_load_explicit(&lkd_thread_epoch, memory_order_acquire);
    t->birth_next =
        atomic_fetch_add_explicit(&global.birth_next, LKD_THREAD_BIRTHS, memory_order_relaxed);
    t->birth_end = t->birth_next + LKD_THREAD_BIRTHS;
    return t->birth_next++;
}

static void raise_peak(int64_t value)
{
    int64_t peak = atomic_load_explicit(&global.peak, memory_order_relaxed);
    while (value > peak &&
           !atomic_compare_exchange_weak_explicit(&global.peak, &peak, value, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* lkd_thread_flush - moves the thread's byte delta into the global counter and the highest
 * point it reached into the peak. The delta is cleared first, so a reader in between sees
 * too little (as the peak's bound says), never the delta twice. Owner only. */
void lkd_thread_flush(lkd_thread_t *t)
{
    int64_t d = atomic_load_explicit(&t->bytes_delta, memory_order_relaxed);
    int64_t high = atomic_load_explicit(&t->delta_peak, memory_order_relaxed);
    atomic_store_explicit(&t->bytes_delta, 0, memory_order_relaxed);
    atomic_store_explicit(&t->delta_peak, 0, memory_order_relaxed);
    int64_t base = atomic_fetch_add_explicit(&global.bytes, d, memory_order_relaxed);
    raise_peak(base + high);
}

/* Live bytes now (the global counter plus every thread's delta) and the peak: the global
 * peak, or now plus the most any one thread's delta stands below its own high point.
 * Registry lock held. */
static void current_and_peak(int64_t *current, int64_t *peak)
{
    int64_t bytes = atomic_load_explicit(&global.bytes, memory_order_relaxed), above = 0;
    for (lkd_thread_t *t = head; t; t = t->next) {
        int64_t d = atomic_load_explicit(&t->bytes_delta, memory_order_relaxed);
        int64_t high = atomic_load_explicit(&t->delta_peak, memory_order_relaxed);
        bytes += d;
        above = high - d > above ? high - d : above;
    }
    int64_t p = atomic_load_explicit(&global.peak, memory_order_relaxed);
    *current = bytes;
    *peak = p > bytes + above ? p : bytes + above;
}

/* lkd_thread_new_epoch - see thread.h. Threads see the new epoch on their next birth. */
uint64_t lkd_thread_new_epoch(void)
{
    atomic_fetch_add_explicit(&lkd_thread_epoch, 1, memory_order_acq_rel);
    return atomic_load_explicit(&global.birth_next, memory_order_acquire);
}

/* lkd_thread_totals - sums the records' counters; peak from the global counter. */
void lkd_thread_totals(lkd_fmt_totals_t *out)
{
    pthread_mutex_lock(&lock);
    for (lkd_thread_t *t = head; t; t = t->next) {
        out->total_allocs += atomic_load_explicit(&t->allocs, memory_order_relaxed);
        out->total_frees += atomic_load_explicit(&t->frees, memory_order_relaxed);
        out->unknown_frees += atomic_load_explicit(&t->unknown_frees, memory_order_relaxed);
        out->total_bytes += atomic_load_explicit(&t->total_bytes, memory_order_relaxed);
    }
    int64_t current, peak;
    current_and_peak(&current, &peak);
    pthread_mutex_unlock(&lock);
    out->peak_bytes = peak > 0 ? (uint64_t)peak : 0;
}

/* lkd_thread_memory - live bytes (the global counter plus every thread's held-back delta,
 * read without locks) and the peak. */
void lkd_thread_memory(uint64_t *current, uint64_t *peak)
{
    int64_t bytes, p;
    pthread_mutex_lock(&lock);
    current_and_peak(&bytes, &p);
    pthread_mutex_unlock(&lock);
    *current = bytes > 0 ? (uint64_t)bytes : 0;
    *peak = p > 0 ? (uint64_t)p : 0;
}

/* lkd_thread_reset_peak - the peak restarts from the current live bytes: the caller's own
 * high point restarts from its delta; another thread's restarts at its next flush (so right
 * after a reset, the peak may stand above the current bytes by that thread's bound). */
void lkd_thread_reset_peak(void)
{
    lkd_thread_t *self = lkd_thread_self;
    pthread_mutex_lock(&lock);
    if (self)
        atomic_store_explicit(&self->delta_peak,
                              atomic_load_explicit(&self->bytes_delta, memory_order_relaxed),
                              memory_order_relaxed);
    int64_t bytes, peak;
    current_and_peak(&bytes, &peak);
    atomic_store_explicit(&global.peak, bytes, memory_order_relaxed);
    pthread_mutex_unlock(&lock);
}

/* lkd_thread_lock - registry lock, held across fork (order: after the stack table). */
void lkd_thread_lock(void)
{
    pthread_mutex_lock(&lock);
}

/* lkd_thread_unlock - releases lkd_thread_lock. */
void lkd_thread_unlock(void)
{
    pthread_mutex_unlock(&lock);
}

/* lkd_thread_forked - in a fork child, only the calling thread exists: the other records
 * hand over their byte deltas and become free. Registry lock held (fork handler). */
void lkd_thread_forked(void)
{
    for (lkd_thread_t *t = head; t; t = t->next) {
        if (t == lkd_thread_self)
            continue;
        atomic_fetch_add(&global.bytes, atomic_load(&t->bytes_delta));
        atomic_store(&t->bytes_delta, 0);
        atomic_store(&t->delta_peak, 0);
        atomic_store(&t->free, true);
    }
}
