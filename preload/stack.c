/*
 * stack - stack capture and the stack table.
 *
 * Invariants:
 * - A stack record is immutable once its id is published; ids index a chunked array whose
 *   chunks never move, so readers need no lock to go from id to frames.
 * - The per-thread cache (from the arena, reached through the thread's record) maps a
 *   stack's 64-bit hash to its record; behind it, the shared index does for all threads
 *   without a lock. Every hit is verified against the record's frames, so a hash collision
 *   can never merge two different stacks.
 * - Records are added under the lock only; an index slot, once written, never changes, and
 *   an index outgrown is replaced whole and kept (a reader may still be in it).
 * Never calls malloc: records and index tables come from the arena.
 */
#include "stack.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cfi.h"
#include "fp_walk.h"
#include "leakdiff/format.h"
#include "log.h"
#include "arena.h"
#include "stack_hash.h"

#define CHUNK_BITS 12
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 4096 /* 16M distinct stacks */
/* Per-thread cache entries, in sets of two: fp mode interns every stack through it (the
 * malloc loop's 256 stacks per thread in 128 entries missed 87% of the time, and went to the
 * shared index: 10% of the run, perf; direct-mapped in 1,024 entries, 25%: 34 instructions
 * per allocation in the shared index, callgrind); the default mode only the stacks its
 * transitions miss. */
#define CACHE_BITS_FP 10     /* 16 KiB per thread */
#define CACHE_BITS_DEFAULT 8 /* 4 KiB per thread */
#define INDEX_FIRST 4096
#define SHIM_FRAMES_MAX 8

typedef struct stack_rec {
    uint64_t hash;
    uint32_t id;
    uint32_t depth;
    uint64_t frames[];
} stack_rec_t;

/* A hit reads the record itself, not the id's chunk: one dependent load fewer. */
typedef struct cache_entry {
    uint64_t hash;
    const stack_rec_t *rec;
} cache_entry_t;

typedef struct stack_cache {
    uint64_t mask;
    uint64_t pad;
    cache_entry_t entries[];
} stack_cache_t;

static int (*backtrace_fn)(void **buffer, int size);
static int mode;
static uintptr_t shim_start, shim_end;

/* The shared index: open addressing from a stack's hash to its record, read without a
 * lock. Hand-written rather than uthash, whose lookups need the lock: with more call sites
 * than the per-thread cache holds, two threads queued on it for most allocations. */
typedef struct index_slot {
    _Atomic uint64_t hash; /* 0: empty (a hash of 0 is stored as 1) */
    _Atomic(const stack_rec_t *) rec;
} index_slot_t;

typedef struct stack_index {
    uint64_t mask;
    uint64_t used;
    index_slot_t slots[];
} stack_index_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* adding records */
static _Atomic(stack_index_t *) shared;
static _Atomic(stack_rec_t **) chunks[MAX_CHUNKS];
static atomic_uint count;
static atomic_size_t memory;

/* Static TLS, like all the shim's thread-local data: glibc puts it on every thread's stack
 * and refuses a stack smaller than it plus 2 KiB, so it must stay small (the stack cache
 * there, at 512 entries, 8 KiB, made 16 KiB stacks fail: samples/small_stack_thread.c; it is
 * now in the arena). */
static __thread uintptr_t stack_lo, stack_hi; /* this thread's stack */

static int find_shim(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    uintptr_t self = (uintptr_t)ctx, lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr;
        lo = s < lo ? s : lo;
        hi = s + ph->p_memsz > hi ? s + ph->p_memsz : hi;
    }
    if (self >= lo && self < hi) {
        shim_start = lo;
        shim_end = hi;
        return 1;
    }
    return 0;
}

/* lkd_stack_init - loads libunwind privately (or selects fp mode). Guard held. False when
 * libunwind cannot be loaded: cfi.c still walks what it can, the rest is empty. */
bool lkd_stack_init(int unwind_mode)
{
    mode = unwind_mode;
    dl_iterate_phdr(find_shim, (void *)(uintptr_t)&lkd_stack_init);
    lkd_cfi_init(shim_start, shim_end);
    if (mode == LKD_FMT_UNWIND_FP)
        return true;
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (h)
        *(void **)&backtrace_fn = dlsym(h, "unw_backtrace");
    if (!backtrace_fn) {
        lkd_log_warn("cannot load libunwind.so.8 (%s); stacks through signal handlers or code "
                     "without unwind tables will be empty",
                     dlerror());
        return false;
    }
    return true;
}

/* lkd_stack_in_shim - true for addresses inside the shim's own mapping. */
bool lkd_stack_in_shim(uint64_t addr)
{
    return addr >= shim_start && addr < shim_end;
}

/* fp mode's hash: the chain from the innermost frame out, computed frame by frame during the
 * walk, where it runs alongside the walk's own chain of dependent loads. The default mode's
 * runs from the outermost frame in (stack_hash.h), so that cfi.c hashes only the frames a
 * stack does not share with the last one. */
static uint64_t hash_chain(const uint64_t *f, uint32_t depth)
{
    uint64_t h = LKD_HASH_SEED;
    for (uint32_t i = 0; i < depth; i++)
        h = lkd_hash_step(h, f[i]);
    return lkd_hash_end(h ^ depth);
}

/* lkd_stack_hash - the hash lkd_stack_capture gives for these frames (it depends on the
 * unwinding mode, fixed for the process). */
uint64_t lkd_stack_hash(const uint64_t *frames, uint32_t depth)
{
    return mode == LKD_FMT_UNWIND_FP ? hash_chain(frames, depth)
                                     : lkd_hash_outer_first(frames, depth);
}

/* What fp_capture's walk keeps: the program's frames, and their hash. */
typedef struct fp_keep {
    uint64_t *at, *end, h;
    uintptr_t shim_lo, shim_len;
} fp_keep_t;

/* A shim frame below the hooks is rare (main() returns into one, exit and dlclose are hooks):
 * a branch skips it, where a branch-free form (written, then overwritten, a conditional hash)
 * cost twice the instructions per frame. */
static inline __attribute__((always_inline)) bool fp_keep(void *ctx, uintptr_t ret)
{
    fp_keep_t *k = ctx;
    if (__builtin_expect(ret - k->shim_lo < k->shim_len, 0))
        return true;
    *k->at++ = ret;
    k->h = lkd_hash_step(k->h, ret);
    return k->at != k->end;
}

/* fp mode in one pass: walks the chain (fp_walk.h), drops the shim's frames and hashes the
 * kept ones as it goes, with no buffer between the three (they were 40% of the tracker's
 * instructions on a deep-stack loop as separate passes). The thread's stack bounds are
 * learned once. Stopping at the first frame that does not look like one is the fp mode's
 * documented fallback. */
static inline __attribute__((always_inline)) uint32_t fp_capture(uintptr_t fp, uint64_t *frames,
                                                                 uint32_t max, uint64_t *hash)
{
    fp_keep_t k = {frames, frames + max, LKD_HASH_SEED, shim_start, shim_end - shim_start};
    if (__builtin_expect(!stack_hi, 0))
        lkd_fp_bounds(&stack_lo, &stack_hi);
    if (max)
        lkd_fp_visit(fp, stack_lo, stack_hi, fp_keep, &k);
    uint32_t depth = (uint32_t)(k.at - frames);
    *hash = lkd_hash_end(k.h ^ depth);
    return depth;
}

/* libunwind's unw_backtrace into a buffer, then the shim's frames dropped and the rest
 * hashed. Out of line, so that the other captures do not set up its buffer. */
__attribute__((noinline)) static uint32_t libunwind_capture(uint64_t *frames, uint32_t max,
                                                            uint64_t *hash)
{
    void *buf[LKD_FMT_MAX_DEPTH + SHIM_FRAMES_MAX];
    uint32_t want = max + SHIM_FRAMES_MAX, n = 0;
    if (backtrace_fn) {
        int got = backtrace_fn(buf, (int)want);
        n = got > 0 ? (uint32_t)got : 0;
    }
    /* The shim's frames go: the hooks at the top, and the frame main() returns to
     * (intercept.c's __libc_start_main) near the bottom. */
    uint32_t depth = 0, i = 0;
    uintptr_t lo = shim_start, len = shim_end - shim_start; /* not reloaded after each store */
    while (i < n && (uintptr_t)buf[i] - lo < len)
        i++;
    /* Branch-free below the hooks: a shim frame is written, then overwritten. */
    for (; i < n && depth < max; i++) {
        frames[depth] = (uintptr_t)buf[i];
        depth += (uintptr_t)buf[i] - lo >= len;
    }
    *hash = lkd_hash_outer_first(frames, depth);
    return depth;
}

#ifdef LKD_CFI_CHECK
/* The check build (tests/e2e): every stack cfi.c gives is compared with the one libunwind
 * gives at the same point (unw_backtrace, as without cfi.c); a difference is reported on
 * stderr, and the counts at exit. (A cursor walk with unw_step from the first program frame
 * agreed as well, on python3, sqlite3 and deep_stacks.) */
#include <stdio.h>
static atomic_ulong checked, differ, same_count, left, from_memo;

static void check_report(void)
{
    fprintf(stderr,
            "leakdiff cfi check: %lu stacks, %lu differ, %lu same as the last, %lu left to "
            "libunwind, %lu from the memo\n",
            atomic_load(&checked), atomic_load(&differ), atomic_load(&same_count),
            atomic_load(&left), atomic_load(&from_memo));
}

static void check_start(void)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&once))
        atexit(check_report);
}

static __attribute__((noinline)) void check_cfi(const uint64_t *frames, uint32_t n, uint32_t max,
                                                bool same)
{
    check_start();
    uint64_t ref[LKD_FMT_MAX_DEPTH];
    uint64_t h;
    uint32_t m = libunwind_capture(ref, max, &h);
    atomic_fetch_add(&checked, 1);
    atomic_fetch_add(&same_count, same);
    if (n == m && !memcmp(frames, ref, n * 8))
        return;
    if (atomic_fetch_add(&differ, 1) < 5) {
        fprintf(stderr, "leakdiff cfi check: cfi %u frames, libunwind %u:\n", n, m);
        for (uint32_t i = 0; i < n || i < m; i++)
            fprintf(stderr, "  %2u %16lx %16lx\n", i, i < n ? (unsigned long)frames[i] : 0ul,
                    i < m ? (unsigned long)ref[i] : 0ul);
    }
}
#endif

/* The default mode's frames, written out: the shim's own reading of the unwind tables
 * (cfi.c), libunwind for what it leaves. (The shim itself goes through unwind_id, where the
 * check build's comparisons are.) */
__attribute__((noinline)) static uint32_t unwind_capture(uint64_t *frames, uint32_t max,
                                                         uint64_t *hash)
{
    if (__builtin_expect(!stack_hi, 0))
        lkd_fp_bounds(&stack_lo, &stack_hi);
    bool same;
    int n = lkd_cfi_capture((uintptr_t)__builtin_frame_address(0), stack_lo, stack_hi, frames, max,
                            hash, &same);
    return n < 0 ? libunwind_capture(frames, max, hash) : (uint32_t)n;
}

/* lkd_stack_capture_libunwind - see stack.h. */
uint32_t lkd_stack_capture_libunwind(uint64_t *frames, uint32_t max, uint64_t *hash)
{
    return libunwind_capture(frames, max, hash);
}

/* lkd_stack_capture - up to max return addresses, innermost first, the shim's dropped, and
 * their hash (lkd_stack_hash). */
uint32_t lkd_stack_capture(uint64_t *frames, uint32_t max, uint64_t *hash)
{
    if (mode == LKD_FMT_UNWIND_FP)
        return fp_capture((uintptr_t)__builtin_frame_address(0), frames, max, hash);
    return unwind_capture(frames, max, hash);
}

static stack_rec_t *rec_of(uint32_t id)
{
    stack_rec_t **chunk = atomic_load_explicit(&chunks[id >> CHUNK_BITS], memory_order_acquire);
    return chunk ? chunk[id & (CHUNK_SIZE - 1)] : NULL;
}

/* Inline rather than memcmp: stacks are a few dozen words, and the library call with its
 * size dispatch showed in profiles of the per-thread cache's hits. Two frames at a time
 * (SSE2, in every x86-64): fp mode compares every stack it interns, and one frame at a time
 * that was 110 of the 1,099 instructions it added per malloc/free pair on a deep-stack loop
 * (callgrind). */
static bool same(const stack_rec_t *r, const uint64_t *frames, uint32_t depth)
{
    if (!r || r->depth != depth)
        return false;
    const uint64_t *a = r->frames;
    uint64_t diff = depth & 1 ? a[depth - 1] ^ frames[depth - 1] : 0;
#if defined(__SSE2__)
    /* from the last pair down, by byte offset: one counter, two loads, xor, or per pair */
    const char *pa = (const char *)a, *pb = (const char *)frames;
    __m128i d = _mm_cvtsi64_si128((long long)diff);
#pragma GCC unroll 2
    for (intptr_t off = (intptr_t)(depth & ~1u) * 8 - 16; off >= 0; off -= 16)
        d = _mm_or_si128(d, _mm_xor_si128(_mm_loadu_si128((const __m128i *)(pa + off)),
                                          _mm_loadu_si128((const __m128i *)(pb + off))));
    diff = (uint64_t)_mm_cvtsi128_si64(_mm_or_si128(d, _mm_unpackhi_epi64(d, d)));
#else
    for (uint32_t i = 0; i < (depth & ~1u); i++)
        diff |= a[i] ^ frames[i];
#endif
    return diff == 0;
}

static inline uint64_t index_key(uint64_t h)
{
    return h ? h : 1;
}

/* The record of this stack in the index, or NULL. Lock-free: a slot's record is stored
 * before its hash, which is stored with release. */
static const stack_rec_t *index_find(const stack_index_t *x, const uint64_t *frames, uint32_t depth,
                                     uint64_t h)
{
    uint64_t key = index_key(h);
    for (uint64_t i = (h >> 9) & x->mask;; i = (i + 1) & x->mask) {
        uint64_t k = atomic_load_explicit(&x->slots[i].hash, memory_order_acquire);
        if (!k)
            return NULL;
        if (k == key) {
            const stack_rec_t *r = atomic_load_explicit(&x->slots[i].rec, memory_order_relaxed);
            if (same(r, frames, depth))
                return r;
        }
    }
}

static void index_put(stack_index_t *x, const stack_rec_t *r)
{
    uint64_t i = (r->hash >> 9) & x->mask;
    while (atomic_load_explicit(&x->slots[i].hash, memory_order_relaxed))
        i = (i + 1) & x->mask;
    atomic_store_explicit(&x->slots[i].rec, r, memory_order_relaxed);
    atomic_store_explicit(&x->slots[i].hash, index_key(r->hash), memory_order_release);
    x->used++;
}

/* The index with room for one more record (at most half full), grown into a new table when
 * needed; NULL when out of memory and full. Lock held. */
static stack_index_t *index_room(void)
{
    stack_index_t *x = atomic_load_explicit(&shared, memory_order_relaxed);
    if (x && (x->used + 1) * 2 <= x->mask + 1)
        return x;
    uint64_t slots = x ? (x->mask + 1) * 2 : INDEX_FIRST;
    size_t bytes = sizeof(stack_index_t) + slots * sizeof(index_slot_t);
    stack_index_t *n = lkd_arena_alloc(bytes);
    if (!n) /* keep filling the old one, up to 7/8 */
        return x && (x->used + 1) * 8 <= (x->mask + 1) * 7 ? x : NULL;
    n->mask = slots - 1;
    for (uint64_t i = 0; x && i <= x->mask; i++) {
        const stack_rec_t *r = atomic_load_explicit(&x->slots[i].rec, memory_order_relaxed);
        if (atomic_load_explicit(&x->slots[i].hash, memory_order_relaxed))
            index_put(n, r);
    }
    atomic_fetch_add_explicit(&memory, bytes, memory_order_relaxed);
    atomic_store_explicit(&shared, n, memory_order_release);
    return n;
}

/* Adds a new record under the lock; NULL when out of memory. */
__attribute__((noinline)) static const stack_rec_t *insert_locked(const uint64_t *frames,
                                                                  uint32_t depth, uint64_t h)
{
    uint32_t id = atomic_load_explicit(&count, memory_order_relaxed);
    stack_index_t *x = index_room();
    if (id >= MAX_CHUNKS * CHUNK_SIZE || !x)
        return NULL;
    stack_rec_t **chunk = atomic_load_explicit(&chunks[id >> CHUNK_BITS], memory_order_relaxed);
    if (!chunk) {
        if (!(chunk = lkd_arena_alloc(CHUNK_SIZE * sizeof *chunk)))
            return NULL;
        atomic_store_explicit(&chunks[id >> CHUNK_BITS], chunk, memory_order_release);
        atomic_fetch_add_explicit(&memory, CHUNK_SIZE * sizeof *chunk, memory_order_relaxed);
    }
    size_t size = sizeof(stack_rec_t) + depth * sizeof *frames;
    stack_rec_t *r = lkd_arena_alloc(size);
    if (!r)
        return NULL;
    if (depth)
        memcpy(r->frames, frames, depth * sizeof *frames);
    r->hash = h;
    r->id = id;
    r->depth = depth;
    atomic_fetch_add_explicit(&memory, size, memory_order_relaxed);
    chunk[id & (CHUNK_SIZE - 1)] = r;
    atomic_store_explicit(&count, id + 1, memory_order_release);
    index_put(x, r);
    return r;
}

/* The shared index's record of a stack the thread's cache set c (NULL: none) did not
 * have; it then has it; NULL when out of memory. The lock only to add a stack never seen. Out
 * of line, so that a hit saves no registers for it. */
__attribute__((noinline)) static const stack_rec_t *
intern_shared(const uint64_t *frames, uint32_t depth, uint64_t h, cache_entry_t *c)
{
    const stack_index_t *x = atomic_load_explicit(&shared, memory_order_acquire);
    const stack_rec_t *r = x ? index_find(x, frames, depth, h) : NULL;
    if (!r) {
        pthread_mutex_lock(&lock);
        x = atomic_load_explicit(&shared, memory_order_relaxed);
        r = x ? index_find(x, frames, depth, h) : NULL;
        if (!r)
            r = insert_locked(frames, depth, h);
        pthread_mutex_unlock(&lock);
        if (!r)
            return NULL;
    }
    if (c) { /* in front of its set; the other entry goes */
        c[1] = c[0];
        c[0] = (cache_entry_t){h, r};
    }
    return r;
}

/* One of a thread's tables (lkd_stack_local_t), zeroed, into *slot and counted in the stack
 * table's memory; NULL when out of memory. */
__attribute__((noinline, cold)) static void *local_new(void **slot, size_t bytes)
{
    if ((*slot = lkd_arena_alloc(bytes)))
        atomic_fetch_add_explicit(&memory, bytes, memory_order_relaxed);
    return *slot;
}

/* One of a thread's tables that needs nothing but zeroes, allocated on first use; NULL when
 * out of memory. */
static inline void *local_get(void **slot, size_t bytes)
{
    if (__builtin_expect(*slot != NULL, 1))
        return *slot;
    return local_new(slot, bytes);
}

/* The thread's cache, allocated on first use; NULL when out of memory. */
static stack_cache_t *cache_new(void **slot)
{
    unsigned bits = mode == LKD_FMT_UNWIND_FP ? CACHE_BITS_FP : CACHE_BITS_DEFAULT;
    stack_cache_t *c = local_new(slot, sizeof(stack_cache_t) + (sizeof(cache_entry_t) << bits));
    if (c)
        c->mask = (1u << (bits - 1)) - 1; /* sets */
    return c;
}

/* The record of this stack, whose hash is h, added when new; NULL when out of memory.
 * local: the thread's tables (NULL: none, the shared index alone). */
static inline const stack_rec_t *intern_rec(lkd_stack_local_t *local, const uint64_t *frames,
                                            uint32_t depth, uint64_t h)
{
    cache_entry_t *c = NULL;
    if (__builtin_expect(local != NULL, 1)) {
        stack_cache_t *tab = local->cache;
        if (__builtin_expect(!tab, 0))
            tab = cache_new(&local->cache);
        if (__builtin_expect(tab != NULL, 1)) {
            c = &tab->entries[2 * (h & tab->mask)];
            if (__builtin_expect(c[0].hash == h && same(c[0].rec, frames, depth), 1))
                return c[0].rec;
            if (c[1].hash == h && same(c[1].rec, frames, depth))
                return c[1].rec;
        }
    }
    return intern_shared(frames, depth, h, c);
}

/* lkd_stack_intern - id of this stack, whose hash is h (lkd_stack_hash), adding it when
 * new; LKD_STACK_NONE on OOM. */
uint32_t lkd_stack_intern(lkd_stack_local_t *local, const uint64_t *frames, uint32_t depth,
                          uint64_t h)
{
    const stack_rec_t *r = intern_rec(local, frames, depth, h);
    return r ? r->id : LKD_STACK_NONE;
}

/* Transitions, the default mode's shortcut past lkd_cfi_output and lkd_stack_intern: a
 * thread's walk says its stack is the previous stack's record prev, cut to its outermost
 * `keep` frames, with the walked frames below them (cfi.h). That stack is a function of
 * (prev, keep, walked frames), and records never change, so a table maps such a key to the
 * record it gave before; a hit compares only the walked frames with the record's innermost
 * ones (2.8 of python3's 20 frames per allocation) instead of writing out and comparing all
 * of them. Per thread, from the arena through the thread's record (recycled with it), not
 * static TLS (see stack_lo). Sets of two entries, a new one in front, the other one
 * dropped. Misses of the malloc loop (deep_stacks, whose rbp holds data, so its walks stop
 * at varying frames: more transitions than stacks): direct-mapped in 512 entries about a
 * third; in sets of two, 256 sets 30%, 512 sets 10%, 1024 sets 3.6%. python3: 4%
 * direct-mapped, 1% in sets. */
#ifndef LKD_TRANS_BITS
#define LKD_TRANS_BITS 9 /* 512 sets, 1024 entries, 24 KiB per thread (the unit tests: 2 sets) */
#endif
#define TRANS_BITS LKD_TRANS_BITS

typedef struct trans {
    const stack_rec_t *prev, *next;
    uint32_t keep;
} trans_t;

static trans_t *trans_table(void **slot)
{
    return local_get(slot, 2 * sizeof(trans_t) << TRANS_BITS);
}

static inline bool trans_hit(const trans_t *e, const lkd_cfi_walk_t *w, uint32_t depth)
{
    const stack_rec_t *r = e->next;
    if (e->prev != w->prev || e->keep != w->keep || r->depth != depth)
        return false;
    uint64_t diff = 0;
    for (uint32_t i = 0; i < w->added; i++)
        diff |= r->frames[i] ^ w->innermost[-(intptr_t)i];
    return diff == 0;
}

/* The thread's memo (cfi.h), allocated once the thread has captured LKD_MEMO_AFTER stacks:
 * a thread that allocates little does without its 40 KiB. NULL until then, while it rests,
 * or when out of memory. */
#ifndef LKD_MEMO_AFTER
#define LKD_MEMO_AFTER 1000 /* the unit tests: 10 */
#endif
static inline void *memo_get(lkd_stack_local_t *local)
{
    void *memo = local->memo;
    if (__builtin_expect(memo != NULL, 1))
        return lkd_cfi_memo_rests(memo) ? NULL : memo;
    if (local->memo_wait < LKD_MEMO_AFTER) {
        local->memo_wait++;
        return NULL;
    }
    local->memo_wait = 0; /* out of memory: tried again as many captures later */
    return local_new(&local->memo, LKD_CFI_MEMO_BYTES);
}

/* The default mode's capture and interning in one, when the memo did not have the stack
 * (memo: the thread's, or NULL): a transition when the table has it, else the frames written
 * out, interned, and the transition added. */
__attribute__((noinline)) static uint32_t unwind_id(lkd_stack_local_t *local, uint32_t max,
                                                    uintptr_t fp, uint64_t *inner, void *memo)
{
    uint64_t frames[LKD_FMT_MAX_DEPTH], hash;
    uint32_t depth;
    const stack_rec_t *r;
    trans_t *e = NULL;
    void *rules = local ? local_get(&local->rules, LKD_CFI_CACHE_BYTES) : NULL;
    lkd_cfi_walk_t w;
    int n = max ? lkd_cfi_walk(fp, stack_lo, stack_hi, max, rules, &w) : -1;
    if (__builtin_expect(n < 0, 0)) {
#ifdef LKD_CFI_CHECK
        check_start();
        atomic_fetch_add(&left, max != 0);
#endif
        depth = libunwind_capture(frames, max, &hash);
        goto intern;
    }
    if (w.prev && local) {
        trans_t *tab = trans_table(&local->trans);
        if (__builtin_expect(tab != NULL, 1)) {
            e = &tab[2 * (((w.hash ^ (uintptr_t)w.prev) * LKD_HASH_K) >> 40 &
                          ((1u << TRANS_BITS) - 1))];
            r = w.same                              ? w.prev
                : trans_hit(&e[0], &w, (uint32_t)n) ? e[0].next
                : trans_hit(&e[1], &w, (uint32_t)n) ? e[1].next
                                                    : NULL;
            if (r) {
#ifdef LKD_CFI_CHECK
                depth = lkd_cfi_output(frames, max, &hash);
                check_cfi(frames, depth, max, w.same);
                if (depth != r->depth || memcmp(frames, r->frames, depth * 8))
                    atomic_fetch_add(&differ, 1);
#endif
                lkd_cfi_set_rec(r, memo, max);
                *inner = r->depth ? r->frames[0] : 0;
                return r->id;
            }
        }
    }
    depth = lkd_cfi_output(frames, max, &hash);
#ifdef LKD_CFI_CHECK
    check_cfi(frames, depth, max, w.same);
#endif
intern:
    *inner = depth ? frames[0] : 0;
    r = intern_rec(local, frames, depth, hash);
    if (!r)
        return LKD_STACK_NONE;
    if (n >= 0) {
        if (e) {
            e[1] = e[0];
            e[0] = (trans_t){w.prev, r, w.keep};
        }
        lkd_cfi_set_rec(r, memo, max);
    }
    return r->id;
}

/* fp mode's capture and interning. */
__attribute__((noinline)) static uint32_t fp_id(lkd_stack_local_t *local, uint32_t max,
                                                uintptr_t fp, uint64_t *inner)
{
    uint64_t frames[LKD_FMT_MAX_DEPTH], hash;
    uint32_t depth = fp_capture(fp, frames, max, &hash);
    *inner = depth ? frames[0] : 0;
    const stack_rec_t *r = intern_rec(local, frames, depth, hash);
    return r ? r->id : LKD_STACK_NONE;
}

/* The default mode: the memo's record when it has the stack, else unwind_id. Apart from
 * unwind_id, whose frame holds a stack's frames and a walk's state: a hit needs neither, and
 * in unwind_id it paid for that frame's registers and spills (12 instructions per python3
 * allocation, callgrind). */
static inline uint32_t default_id(lkd_stack_local_t *local, uint32_t max, uintptr_t fp,
                                  uint64_t *inner)
{
    if (__builtin_expect(!stack_hi, 0))
        lkd_fp_bounds(&stack_lo, &stack_hi);
    void *memo = NULL;
    if (__builtin_expect(local && max, 1) && (memo = memo_get(local)) && local->rules) {
        const stack_rec_t *r = lkd_cfi_memo_find(memo, local->rules, fp, stack_lo, stack_hi, max);
        if (r) {
#ifdef LKD_CFI_CHECK
            check_cfi(r->frames, r->depth, max, false);
            atomic_fetch_add(&from_memo, 1);
#endif
            *inner = r->depth ? r->frames[0] : 0;
            return r->id;
        }
    }
    return unwind_id(local, max, fp, inner, memo);
}

/* lkd_stack_capture_id - see stack.h. */
uint32_t lkd_stack_capture_id(lkd_stack_local_t *local, uint32_t max, uintptr_t fp, uint64_t *inner)
{
    if (mode != LKD_FMT_UNWIND_FP)
        return default_id(local, max, fp, inner);
    return fp_id(local, max, fp, inner);
}

/* lkd_stack_frames - the frames of id and its depth; NULL (depth 0) for ids never handed
 * out. */
const uint64_t *lkd_stack_frames(uint32_t id, uint32_t *depth)
{
    if (id >= atomic_load_explicit(&count, memory_order_acquire)) {
        *depth = 0;
        return NULL;
    }
    stack_rec_t *r = rec_of(id);
    *depth = r->depth;
    return r->frames;
}

/* lkd_stack_count - stacks interned so far. */
uint32_t lkd_stack_count(void)
{
    return atomic_load_explicit(&count, memory_order_acquire);
}

/* lkd_stack_lock - the lock that adds stacks (order: after the live table, before the
 * arena). */
void lkd_stack_lock(void)
{
    pthread_mutex_lock(&lock);
}

/* lkd_stack_unlock - releases lkd_stack_lock. */
void lkd_stack_unlock(void)
{
    pthread_mutex_unlock(&lock);
}

/* lkd_stack_memory - tracker bytes used by stack records, the id chunks, the index and the
 * threads' caches and transitions. */
size_t lkd_stack_memory(void)
{
    return atomic_load_explicit(&memory, memory_order_relaxed);
}
