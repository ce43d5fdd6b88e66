/*
 * sample - the sampled mode's countdown, its PRNG and the free filter (see sample.h).
 *
 * Invariants:
 * - A thread's countdown is only touched by that thread; a new thread (and the thread that
 *   forked, in the child) starts unseeded and draws a fresh countdown on its first
 *   allocation, which the memorylessness of the exponential distribution makes exact.
 * - Every recorded block's filter counter is nonzero from before its address can reach
 *   free until after it left the table (track.c raises it after the insert, which precedes
 *   malloc's return, and lowers it after the remove, which precedes the real free).
 * Never calls malloc; no locks; log() from libm allocates nothing.
 */
#include "sample.h"

#include <math.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

__thread lkd_sample_thread_t lkd_sample_self __attribute__((tls_model("initial-exec")));
_Atomic(uint16_t) lkd_sample_filter[1u << LKD_SAMPLE_FILTER_BITS];

static atomic_uint_fast64_t thread_serial; /* seeds differ per thread, also across fork */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators"):
 * 64 bits of state, never 0, ample quality for drawing countdowns. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* lkd_sample_seed - seeds t from seed and a per-thread serial number (any values; the state
 * is never 0). Same arguments, same countdowns: that is what LEAKDIFF_SAMPLE_SEED repeats. */
void lkd_sample_seed(lkd_sample_thread_t *t, uint64_t seed, uint64_t serial)
{
    t->rng = splitmix64(seed ^ splitmix64(serial));
    if (!t->rng)
        t->rng = 0x9e3779b97f4a7c15ull;
}

/*
 * lkd_sample_draw - the next countdown of t: bytes to the next sample, drawn from the
 * exponential distribution with mean rate and rounded up, so that an allocation of s bytes
 * (s whole) is reached with probability exactly P(X <= s) = 1 - exp(-s/rate). At least 1.
 * t must be seeded.
 */
int64_t lkd_sample_draw(lkd_sample_thread_t *t, uint64_t rate)
{
    double u = (double)((next_random(&t->rng) >> 11) + 1) * 0x1p-53; /* (0, 1] */
    double x = -log(u) * (double)rate; /* at most 36.8 * rate: far below INT64_MAX */
    int64_t n = (int64_t)x;
    if ((double)n < x)
        n++;
    return n > 0 ? n : 1;
}

/* A seed for this process: LEAKDIFF_SAMPLE_SEED when given, else the kernel's random bytes
 * for this process (AT_RANDOM) mixed with the time and the pid. */
static uint64_t process_seed(void)
{
    if (lkd_config.sample_seeded)
        return lkd_config.sample_seed;
    uint64_t seed = 0;
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    for (int i = 0; r && i < 8; i++)
        seed |= (uint64_t)r[i] << (8 * i);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return seed ^ splitmix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30)) ^
           ((uint64_t)getpid() << 40);
}

/*
 * lkd_sample_fire - the slow path of lkd_sample_pick: the countdown of the calling thread
 * ran out on an allocation of size bytes (true: record it, and a new countdown starts), or
 * the thread has no countdown yet (it is seeded, draws one and subtracts size from it).
 */
__attribute__((noinline)) bool lkd_sample_fire(size_t size)
{
    lkd_sample_thread_t *t = &lkd_sample_self;
    uint64_t rate = lkd_config.sample;
    if (__builtin_expect(!t->rng, 0)) {
        lkd_sample_seed(t, process_seed(), atomic_fetch_add(&thread_serial, 1));
        int64_t left = lkd_sample_draw(t, rate) - (int64_t)size;
        if (left > 0) {
            t->left = left;
            return false;
        }
    }
    t->left = lkd_sample_draw(t, rate);
    return true;
}

/* lkd_sample_added - a recorded block at addr entered the live table. */
void lkd_sample_added(uintptr_t addr)
{
    _Atomic(uint16_t) *c = &lkd_sample_filter[lkd_sample_slot(addr)];
    uint16_t v = atomic_load_explicit(c, memory_order_relaxed);
    while (v != UINT16_MAX &&
           !atomic_compare_exchange_weak_explicit(c, &v, (uint16_t)(v + 1), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* lkd_sample_removed - a recorded block at addr left the live table. A saturated counter
 * stays saturated (it no longer knows how many blocks it stands for). */
void lkd_sample_removed(uintptr_t addr)
{
    _Atomic(uint16_t) *c = &lkd_sample_filter[lkd_sample_slot(addr)];
    uint16_t v = atomic_load_explicit(c, memory_order_relaxed);
    while (v != UINT16_MAX && v != 0 &&
           !atomic_compare_exchange_weak_explicit(c, &v, (uint16_t)(v - 1), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* lkd_sample_forked - in a fork child: the one thread reseeds on its next allocation, so the
 * child does not repeat the parent's draws (with LEAKDIFF_SAMPLE_SEED it draws the next
 * serial's sequence, still reproducibly). */
void lkd_sample_forked(void)
{
    lkd_sample_self.rng = 0;
}
