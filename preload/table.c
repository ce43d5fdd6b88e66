/*
 * table - live blocks in a radix directory of 64 KiB regions, each an open-addressing
 * hash table of 16-byte slots under its own spinlock.
 *
 * Invariants:
 * - A region (leaf_t) is created once, published with a release store, and never freed,
 *   so a lookup needs no lock until it reaches the region.
 * - Slots hold blocks whose address is 16-byte aligned, size < SIZE_BIG and birth < 2^48;
 *   any other block goes to the overflow table (uthash, rare).
 * - A region's slots come in groups of 8: their 2-byte keys (granule in the region + 1, 13
 *   bits; 0 = empty), the births' high 16 bits, then 12 bytes each of size, stack and birth,
 *   so that a block's key and record are near each other (three separate arrays, three cache
 *   lines per block, cost python3 6%). Keys are probed a group at a time: one 16-byte vector
 *   compare finds the key or an empty slot in a group. A key lives in the first group from
 *   its home group that had room; each full group it went past counts it (the group's
 *   overflow count, in the spare top bits of its first two keys), and a lookup stops at the
 *   first group whose count is zero. A deletion only counts down the groups its key went
 *   past: no key moves, no tombstones (the idea is F14's, folly's hash table).
 *   Per-slot probing (Robin Hood, before) ran a few slots on every insert and remove, in
 *   loops whose lengths the branch predictor could not guess: the table was 38% of a
 *   deep-stack malloc loop's time (perf), and 30% less with the load kept under 1/4.
 * - A region's capacity is an arena size class (8, 16, 24, 32, 48, ... slots): it grows to the
 *   next class at 3/4 load (x1.5 or x1.33, so the load after growing is at least 1/2) and
 *   shrinks only when a snapshot copies it (below 1/16 load, to the class holding its blocks at
 *   1/2 load), never on free. Shrinking on free below 1/4 thrashed: python3's heap fills and
 *   empties the same regions over and over, and they moved 19M slots in 154k resizes for 8M
 *   allocator calls (3% of its time under the shim, perf); without it 8.7M slots in 49k
 *   growths, and the arena's high-water mark fell from 108 to 88 MiB (fewer sizes to
 *   fragment it). Snapshots bound what regions emptied since keep. Doubling instead
 *   left regions at 3/8 load after a growth, and measured 38 B per live block on a heap
 *   with holes; now slots cost 21-32 B per block while growing, before the directory's
 *   share (8 B per 64 KiB region).
 * Never calls malloc; all memory is from the arena.
 */
#include "table.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "arena.h"
#include "uthash_arena.h"

#define REGION_SHIFT 16 /* 64 KiB regions */
#define L2_BITS 16      /* address bits 16..31 */
#define L1_BITS 15      /* address bits 32..46: the 47-bit user address space */
#define GRANULE_SHIFT 4
#define MIN_CLASS 6   /* arena class of 128 bytes: regions start with 8 slots */
#define SLOT_BYTES 16 /* key 2 + birth_hi 2 + val 12 */
#define SIZE_BIG UINT32_MAX
#define BIRTH_MAX ((uint64_t)1 << 48)

#define GROUP 8     /* keys per probe group: 16 bytes */
#define KEY_BITS 13 /* granule + 1: 1 .. 4096 */
#define KEY_MASK ((1u << KEY_BITS) - 1)
#define OVF_MAX 63 /* 3 spare bits in each of 2 keys */

/* A slot's record; its key and the birth's high bits are in its group's arrays. */
typedef struct slot_val {
    uint32_t size;
    uint32_t stack;
    uint32_t birth_lo;
} slot_val_t;

typedef struct group {
    uint16_t keys[GROUP];
    uint16_t birth_hi[GROUP];
    slot_val_t vals[GROUP];
} group_t;
_Static_assert(sizeof(group_t) == GROUP * 16, "16 bytes per slot");

typedef struct leaf {
    atomic_uint lock;
    uint32_t count;
    uint16_t cls; /* arena size class of the slots' memory: 16 bytes per slot */
    uint16_t pad;
    uint32_t cap;    /* slots: lkd_arena_class_size(cls) / 16, a multiple of GROUP */
    group_t *groups; /* cap / GROUP */
} leaf_t;

typedef struct overflow {
    uintptr_t addr;
    lkd_block_t block;
    UT_hash_handle hh;
} overflow_t;

typedef _Atomic(leaf_t *) leaf_ptr;
static _Atomic(leaf_ptr *) *dir; /* L1: 1 << L1_BITS pointers to L2 arrays */
static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_size_t leaf_bytes; /* slots + leaves, for lkd_table_memory */
static size_t l2_count;

static pthread_mutex_t overflow_lock = PTHREAD_MUTEX_INITIALIZER;
static overflow_t *overflow;
static atomic_size_t overflow_count;

/* lkd_table_init - reserves the directory. False when the address space is refused. */
bool lkd_table_init(void)
{
    dir = lkd_arena_reserve(sizeof(*dir) << L1_BITS);
    return dir != NULL;
}

/* The wait for a region lock another thread holds: out of line, so that the uncontended
 * lock on the hot path keeps its registers. */
__attribute__((noinline, cold)) static void spin_wait(atomic_uint *l)
{
    unsigned spins = 0;
    do {
        while (atomic_load_explicit(l, memory_order_relaxed)) {
            if (++spins < 64)
                __builtin_ia32_pause();
            else
                sched_yield();
        }
    } while (atomic_exchange_explicit(l, 1, memory_order_acquire));
}

static inline void spin_lock(atomic_uint *l)
{
    if (__builtin_expect(atomic_exchange_explicit(l, 1, memory_order_acquire), 0))
        spin_wait(l);
}

static inline void spin_unlock(atomic_uint *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}

/* One test, no branch per condition: 16-byte aligned, in the 47-bit address space, size and
 * birth within the slot's 32 and 48 bits. */
static inline bool fits_slot(uintptr_t addr, const lkd_block_t *b)
{
    _Static_assert(BIRTH_MAX == (uint64_t)1 << 48, "fits_slot's test");
    return ((addr & ((1u << GRANULE_SHIFT) - 1)) | (addr >> (L1_BITS + 32)) |
            (uint64_t)(b->size >= SIZE_BIG) | (b->birth >> 48)) == 0;
}

static inline uint16_t key_of(uintptr_t addr)
{
    return (uint16_t)(((addr >> GRANULE_SHIFT) & ((1u << (REGION_SHIFT - GRANULE_SHIFT)) - 1)) + 1);
}

/* Home group: Fibonacci hashing, so strided heaps (1 KiB blocks...) do not pile up, scaled
 * to any number of groups by a multiply-shift instead of a mask. */
static inline uint32_t home_of(uint16_t key, uint32_t cap)
{
    return (uint32_t)(((uint64_t)((uint32_t)key * 0x9e3779b1u) * (cap / GROUP)) >> 32);
}

static inline uint32_t next_group(uint32_t g, uint32_t cap)
{
    return (g + 1) * GROUP == cap ? 0 : g + 1;
}

static size_t slots_bytes(unsigned cls)
{
    return lkd_arena_class_size(cls);
}

/* The smallest class from cls up whose slots fill whole groups (the 12-slot one does not). */
static unsigned group_class(unsigned cls)
{
    while (slots_bytes(cls) / SLOT_BYTES % GROUP)
        cls++;
    return cls;
}

/* Slot i's key (0: empty). */
static inline uint16_t key_at(const leaf_t *leaf, uint32_t i)
{
    return leaf->groups[i / GROUP].keys[i % GROUP] & KEY_MASK;
}

#if defined(__SSE2__)
/* Group g's keys, their overflow bits masked off. */
static inline __m128i group_keys(const group_t *groups, uint32_t g)
{
    return _mm_and_si128(_mm_loadu_si128((const __m128i *)groups[g].keys),
                         _mm_set1_epi16(KEY_MASK));
}

static inline unsigned keys_match(__m128i keys, uint16_t key)
{
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi16(keys, _mm_set1_epi16((short)key)));
}
#endif

/* Bits 2i and 2i + 1 set when group g's key i == key: one vector compare (a loop where SSE2
 * is missing). The first match is slot 8g + ctz(mask) / 2. */
static inline unsigned group_match(const group_t *groups, uint32_t g, uint16_t key)
{
#if defined(__SSE2__)
    return keys_match(group_keys(groups, g), key);
#else
    unsigned m = 0;
    for (unsigned i = 0; i < GROUP; i++)
        m |= ((groups[g].keys[i] & KEY_MASK) == key ? 3u : 0u) << 2 * i;
    return m;
#endif
}

/* group_match's masks for key and for the empty slots in *empty: one load, two compares. */
static inline unsigned group_match_empty(const group_t *groups, uint32_t g, uint16_t key,
                                         unsigned *empty)
{
#if defined(__SSE2__)
    __m128i keys = group_keys(groups, g);
    *empty = keys_match(keys, 0);
    return keys_match(keys, key);
#else
    *empty = group_match(groups, g, 0);
    return group_match(groups, g, key);
#endif
}

/* A group's overflow count: how many keys went on past it because it was full. It lives in
 * the spare top bits of the group's first two keys, and saturates: a count that reached
 * OVF_MAX stays there (probes then go on past the group) until the region is rehashed. */
static inline unsigned ovf_get(const group_t *g)
{
    return (unsigned)(g->keys[0] >> KEY_BITS) | (unsigned)(g->keys[1] >> KEY_BITS) << 3;
}

static inline void ovf_add(group_t *g, int delta)
{
    unsigned n = ovf_get(g);
    if (n == OVF_MAX)
        return;
    n += (unsigned)delta;
    g->keys[0] = (uint16_t)((g->keys[0] & KEY_MASK) | (n & 7) << KEY_BITS);
    g->keys[1] = (uint16_t)((g->keys[1] & KEY_MASK) | (n >> 3) << KEY_BITS);
}

static inline uint32_t first_of(uint32_t g, unsigned mask)
{
    return g * GROUP + (unsigned)__builtin_ctz(mask) / 2;
}

/* Region of addr, or NULL when none was created. Lock-free. */
static inline leaf_t *leaf_find(uintptr_t addr)
{
    leaf_ptr *l2 = atomic_load_explicit(&dir[addr >> 32], memory_order_acquire);
    if (!l2)
        return NULL;
    return atomic_load_explicit(&l2[(addr >> REGION_SHIFT) & ((1u << L2_BITS) - 1)],
                                memory_order_acquire);
}

/* Region of any address: NULL also past the 47-bit space the directory covers. */
static inline leaf_t *leaf_of(uintptr_t addr)
{
    return (addr >> (L1_BITS + 32)) ? NULL : leaf_find(addr);
}

/* Creates the region of addr (and its L2 array) under the directory lock. */
__attribute__((noinline, cold)) static leaf_t *leaf_create(uintptr_t addr)
{
    leaf_t *leaf = NULL;
    pthread_mutex_lock(&dir_lock);
    leaf_ptr *l2 = atomic_load_explicit(&dir[addr >> 32], memory_order_acquire);
    if (!l2) {
        l2 = lkd_arena_reserve(sizeof(*l2) << L2_BITS);
        if (!l2)
            goto out;
        l2_count++;
        atomic_store_explicit(&dir[addr >> 32], l2, memory_order_release);
    }
    leaf_ptr *pl = &l2[(addr >> REGION_SHIFT) & ((1u << L2_BITS) - 1)];
    leaf = atomic_load_explicit(pl, memory_order_acquire);
    if (leaf)
        goto out;
    /* written on every malloc and free of its blocks: on lines of its own (arena.h) */
    group_t *groups = lkd_arena_alloc(slots_bytes(MIN_CLASS));
    if (groups)
        leaf = lkd_arena_alloc_lines(sizeof *leaf);
    if (!leaf) {
        lkd_arena_free(groups, slots_bytes(MIN_CLASS));
        goto out;
    }
    leaf->cls = MIN_CLASS;
    leaf->cap = (uint32_t)(slots_bytes(MIN_CLASS) / SLOT_BYTES);
    leaf->groups = groups;
    atomic_fetch_add_explicit(&leaf_bytes,
                              lkd_arena_lines_size(sizeof *leaf) + slots_bytes(MIN_CLASS),
                              memory_order_relaxed);
    atomic_store_explicit(pl, leaf, memory_order_release);
out:
    pthread_mutex_unlock(&dir_lock);
    return leaf;
}

/* Takes a slot for key, not in the table, which has room: the first empty slot from its home
 * group on; each full group passed on the way counts one more key gone past it. */
static inline uint32_t slot_take(group_t *groups, uint32_t cap, uint32_t home)
{
    uint32_t g = home;
    unsigned e;
    while (!(e = group_match(groups, g, 0))) {
        ovf_add(&groups[g], 1);
        g = next_group(g, cap);
    }
    return first_of(g, e);
}

/* Rehashes a region into the slots of arena class cls; false when out of memory (the region
 * keeps its table). Region lock held. */
__attribute__((noinline, cold)) static bool leaf_resize(leaf_t *leaf, unsigned cls)
{
    cls = group_class(cls);
    group_t *groups = lkd_arena_alloc_raw(slots_bytes(cls));
    if (!groups)
        return false;
    uint32_t cap = (uint32_t)(slots_bytes(cls) / SLOT_BYTES);
    /* only the keys tell a slot's state: the rest of an empty slot is never read */
    for (uint32_t g = 0; g < cap / GROUP; g++)
        memset(groups[g].keys, 0, sizeof groups[g].keys);
    /* a group's keys at a time: one vector compare finds its blocks (python3 moves 1.5M
     * slots in 8,300 growths, 20k records: one slot at a time that was 61 instructions per
     * allocation) */
    for (uint32_t g = 0; g < leaf->cap / GROUP; g++) {
        const group_t *from = &leaf->groups[g];
        for (unsigned full = ~group_match(leaf->groups, g, 0) & 0x5555u; full; full &= full - 1) {
            unsigned i = (unsigned)__builtin_ctz(full) / 2;
            uint16_t key = from->keys[i] & KEY_MASK;
            uint32_t j = slot_take(groups, cap, home_of(key, cap));
            group_t *to = &groups[j / GROUP];
            to->keys[j % GROUP] |= key;
            to->birth_hi[j % GROUP] = from->birth_hi[i];
            to->vals[j % GROUP] = from->vals[i];
        }
    }
    lkd_arena_free(leaf->groups, slots_bytes(leaf->cls));
    atomic_fetch_add_explicit(&leaf_bytes, slots_bytes(cls) - slots_bytes(leaf->cls),
                              memory_order_relaxed);
    /* atomic stores: lkd_table_prefetch reads these two without the lock */
    __atomic_store_n(&leaf->groups, groups, __ATOMIC_RELAXED);
    leaf->cls = (uint16_t)cls;
    __atomic_store_n(&leaf->cap, cap, __ATOMIC_RELAXED);
    return true;
}

/* Probes for key, whose home group is home: true with its slot in *at when present. A group
 * no key went past ends the probe, and so does coming back to the home group: every group
 * can have keys gone past it at once (each was full when some key came, and had room later),
 * and a probe for an absent key would then go round for ever. Region lock held. */
static inline bool slot_probe(const leaf_t *leaf, uint16_t key, uint32_t home, uint32_t *at)
{
    uint32_t cap = leaf->cap, g = home;
    for (;;) {
        unsigned m = group_match(leaf->groups, g, key);
        if (m) {
            *at = first_of(g, m);
            return true;
        }
        if (!ovf_get(&leaf->groups[g]))
            return false;
        if ((g = next_group(g, cap)) == home)
            return false;
    }
}

static inline void slot_read(const leaf_t *leaf, uint32_t i, lkd_block_t *out)
{
    const group_t *g = &leaf->groups[i / GROUP];
    const slot_val_t *v = &g->vals[i % GROUP];
    out->size = v->size;
    out->stack = v->stack;
    out->birth = v->birth_lo | ((uint64_t)g->birth_hi[i % GROUP] << 32);
}

static inline void slot_write(leaf_t *leaf, uint32_t i, uint16_t key, const lkd_block_t *b)
{
    group_t *g = &leaf->groups[i / GROUP];
    g->keys[i % GROUP] = (uint16_t)((g->keys[i % GROUP] & ~KEY_MASK) | key);
    g->birth_hi[i % GROUP] = (uint16_t)(b->birth >> 32);
    g->vals[i % GROUP] = (slot_val_t){(uint32_t)b->size, b->stack, (uint32_t)b->birth};
}

/* Empties slot i: the groups its key went past, from its home group g on, count one key
 * fewer. */
static void slot_delete(leaf_t *leaf, uint32_t i, uint32_t g)
{
    uint32_t cap = leaf->cap, at = i / GROUP;
    leaf->groups[at].keys[i % GROUP] &= (uint16_t)~KEY_MASK;
    for (; g != at; g = next_group(g, cap))
        ovf_add(&leaf->groups[g], -1);
}

static bool overflow_insert(uintptr_t addr, const lkd_block_t *b, lkd_block_t *stale,
                            bool *replaced)
{
    overflow_t *o;
    bool ok = true;
    pthread_mutex_lock(&overflow_lock);
    HASH_FIND(hh, overflow, &addr, sizeof addr, o);
    if (o) {
        *stale = o->block;
        *replaced = true;
        o->block = *b;
    } else if ((o = lkd_arena_alloc(sizeof *o))) {
        o->addr = addr;
        o->block = *b;
        HASH_ADD(hh, overflow, addr, sizeof addr, o);
        if (!o->hh.tbl) /* uthash ran out of memory: HASH_NONFATAL_OOM left it out */
            ok = false;
        else
            atomic_fetch_add_explicit(&overflow_count, 1, memory_order_relaxed);
    } else {
        ok = false;
    }
    pthread_mutex_unlock(&overflow_lock);
    return ok;
}

static bool overflow_remove(uintptr_t addr, lkd_block_t *out)
{
    overflow_t *o;
    if (!atomic_load_explicit(&overflow_count, memory_order_relaxed))
        return false;
    pthread_mutex_lock(&overflow_lock);
    HASH_FIND(hh, overflow, &addr, sizeof addr, o);
    if (o) {
        *out = o->block;
        HASH_DEL(overflow, o);
        atomic_fetch_sub_explicit(&overflow_count, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&overflow_lock);
    lkd_arena_free(o, sizeof *o);
    return o != NULL;
}

/* True when one more block would take the region past 3/4 load: it grows first. */
static inline bool growth_due(const leaf_t *leaf)
{
    return (leaf->count + 1) * 4 > leaf->cap * 3;
}

/* lkd_table_insert - records a block; see table.h. Takes the region lock. */
bool lkd_table_insert(uintptr_t addr, const lkd_block_t *b, lkd_block_t *stale, bool *replaced)
{
    *replaced = false;
    if (__builtin_expect(!fits_slot(addr, b), 0))
        return overflow_insert(addr, b, stale, replaced);
    leaf_t *leaf = leaf_find(addr);
    if (__builtin_expect(!leaf, 0) && !(leaf = leaf_create(addr)))
        return false;
    uint16_t key = key_of(addr);
    bool ok = true;
    uint32_t i;
    spin_lock(&leaf->lock);
    uint32_t home = home_of(key, leaf->cap);
    unsigned empty, hit = group_match_empty(leaf->groups, home, key, &empty);
    /* The usual insertion, decided on one load of the home group's keys: key not there and
     * gone past no group (so absent), room there, no growth due. */
    if (__builtin_expect(!hit && empty && !ovf_get(&leaf->groups[home]) && !growth_due(leaf), 1)) {
        slot_write(leaf, first_of(home, empty), key, b);
        leaf->count++;
    } else if (slot_probe(leaf, key, home, &i)) {
        slot_read(leaf, i, stale);
        *replaced = true;
        slot_write(leaf, i, key, b);
    } else {
        if (__builtin_expect(growth_due(leaf), 0)) {
            ok = leaf_resize(leaf, leaf->cls + 1u); /* failure keeps the table as it was */
            home = home_of(key, leaf->cap);
        }
        if (ok) {
            slot_write(leaf, slot_take(leaf->groups, leaf->cap, home), key, b);
            leaf->count++;
        }
    }
    spin_unlock(&leaf->lock);
    return ok;
}

/* Starts loading the home group of key, without the region's lock: a resize in between
 * only makes the hint useless (a prefetch never faults, wherever it points). A group is 128
 * bytes, on up to three cache lines. */
static inline void prefetch_home(const leaf_t *leaf, uint16_t key)
{
    const group_t *groups = __atomic_load_n(&leaf->groups, __ATOMIC_RELAXED);
    uint32_t cap = __atomic_load_n(&leaf->cap, __ATOMIC_RELAXED);
    const char *g = (const char *)&groups[home_of(key, cap)];
    __builtin_prefetch(g, 1);
    __builtin_prefetch(g + 64, 1);
    __builtin_prefetch(g + sizeof(group_t) - 1, 1);
}

/* lkd_table_prefetch - see table.h. */
void lkd_table_prefetch(uintptr_t addr)
{
    leaf_t *leaf = leaf_of(addr);
    if (leaf)
        prefetch_home(leaf, key_of(addr));
}

/* lkd_table_remove - forgets a block; true and its record when it was recorded. */
bool lkd_table_remove(uintptr_t addr, lkd_block_t *out)
{
    leaf_t *leaf = leaf_of(addr);
    if (!leaf || (addr & ((1u << GRANULE_SHIFT) - 1)))
        return overflow_remove(addr, out);
    uint32_t i;
    uint16_t key = key_of(addr);
    prefetch_home(leaf, key); /* loads while the lock is taken */
    spin_lock(&leaf->lock);
    uint32_t home = home_of(key, leaf->cap);
    bool found = slot_probe(leaf, key, home, &i);
    if (found) {
        slot_read(leaf, i, out);
        slot_delete(leaf, i, home);
        leaf->count--;
    }
    spin_unlock(&leaf->lock);
    if (!found)
        return overflow_remove(addr, out); /* a large block may live in the overflow */
    return true;
}

/* Calls fn on every region in ascending address order. Directory lock held. */
static void leaf_each(void (*fn)(leaf_t *, uintptr_t, void *), void *ctx)
{
    for (uintptr_t i = 0; i < ((uintptr_t)1 << L1_BITS); i++) {
        leaf_ptr *l2 = atomic_load_explicit(&dir[i], memory_order_acquire);
        if (!l2)
            continue;
        for (uintptr_t j = 0; j < ((uintptr_t)1 << L2_BITS); j++) {
            leaf_t *leaf = atomic_load_explicit(&l2[j], memory_order_acquire);
            if (leaf)
                fn(leaf, (i << 32) | (j << REGION_SHIFT), ctx);
        }
    }
}

static void leaf_lock_fn(leaf_t *leaf, uintptr_t base, void *ctx)
{
    (void)base, (void)ctx;
    spin_lock(&leaf->lock);
}

static void leaf_unlock_fn(leaf_t *leaf, uintptr_t base, void *ctx)
{
    (void)base, (void)ctx;
    spin_unlock(&leaf->lock);
}

static void leaf_count_fn(leaf_t *leaf, uintptr_t base, void *ctx)
{
    (void)base;
    *(size_t *)ctx += leaf->count;
}

/* lkd_table_lock_all - takes the directory lock, every region lock, the overflow lock. */
void lkd_table_lock_all(void)
{
    pthread_mutex_lock(&dir_lock);
    leaf_each(leaf_lock_fn, NULL);
    pthread_mutex_lock(&overflow_lock);
}

/* lkd_table_unlock_all - releases what lkd_table_lock_all took. */
void lkd_table_unlock_all(void)
{
    pthread_mutex_unlock(&overflow_lock);
    leaf_each(leaf_unlock_fn, NULL);
    pthread_mutex_unlock(&dir_lock);
}

/* lkd_table_count - live blocks recorded. Table frozen by lkd_table_lock_all. */
size_t lkd_table_count(void)
{
    size_t n = HASH_COUNT(overflow);
    leaf_each(leaf_count_fn, &n);
    return n;
}

typedef struct copy_ctx {
    lkd_fmt_block_t *out;
    size_t n, max;
} copy_ctx_t;

/* Insertion sort by address, for regions with few blocks (qsort may call malloc). */
static void sort_blocks(lkd_fmt_block_t *b, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        lkd_fmt_block_t t = b[i];
        size_t j = i;
        for (; j > 0 && b[j - 1].address > t.address; j--)
            b[j] = b[j - 1];
        b[j] = t;
    }
}

static void copy_block(copy_ctx_t *c, uintptr_t addr, const lkd_block_t *b)
{
    if (c->n < c->max)
        c->out[c->n++] = (lkd_fmt_block_t){
            .address = addr, .size = b->size, .birth = b->birth, .stack = b->stack};
}

static void copy_slot(copy_ctx_t *c, uintptr_t base, const leaf_t *leaf, uint32_t i)
{
    lkd_block_t b;
    slot_read(leaf, i, &b);
    copy_block(c, base + ((uintptr_t)(key_at(leaf, i) - 1) << GRANULE_SHIFT), &b);
}

/* Copies a region's blocks in address order. Keys are granule offsets below KEYS, so a
 * dense region is ordered by direct indexing in O(KEYS + n) instead of a comparison sort,
 * which profiling showed as the largest cost of a 1M-block snapshot. The index is static:
 * copies run under the directory lock, one at a time, and leave it all zero. */
#define KEYS (1u << (REGION_SHIFT - GRANULE_SHIFT))
static void leaf_copy_region(leaf_t *leaf, uintptr_t base, copy_ctx_t *c)
{
    static uint16_t order[KEYS];
    size_t first = c->n;
    uint32_t cap = leaf->cap;
    if (leaf->count <= 32) {
        for (uint32_t i = 0; i < cap; i++)
            if (key_at(leaf, i))
                copy_slot(c, base, leaf, i);
        sort_blocks(c->out + first, c->n - first);
        return;
    }
    for (uint32_t i = 0; i < cap; i++) {
        uint16_t key = key_at(leaf, i);
        if (key)
            order[key - 1] = (uint16_t)(i + 1);
    }
    for (uint32_t k = 0; k < KEYS; k++) {
        if (order[k]) {
            copy_slot(c, base, leaf, order[k] - 1u);
            order[k] = 0;
        }
    }
}

/* The class a region of count blocks shrinks to: the smallest holding them at half load. */
static unsigned shrunk_class(uint32_t count)
{
    unsigned cls = MIN_CLASS;
    while (lkd_arena_class_size(cls) / SLOT_BYTES < 2 * (size_t)count)
        cls++;
    return cls;
}

/* Copies a region, then shrinks it when mostly empty (the only place regions shrink). */
static void leaf_copy_fn(leaf_t *leaf, uintptr_t base, void *ctx)
{
    leaf_copy_region(leaf, base, ctx);
    if (leaf->count * 16 < leaf->cap && leaf->cls > MIN_CLASS)
        leaf_resize(leaf, shrunk_class(leaf->count)); /* failure keeps the larger table */
}

/* lkd_table_copy - copies the live blocks, ascending by address. Table frozen.
 * Overflow blocks are merged in order (they are few). */
size_t lkd_table_copy(lkd_fmt_block_t *out, size_t max)
{
    copy_ctx_t c = {out, 0, max};
    leaf_each(leaf_copy_fn, &c);
    size_t regular = c.n;
    for (overflow_t *o = overflow; o; o = o->hh.next)
        copy_block(&c, o->addr, &o->block);
    if (c.n > regular) { /* merge: insertion of the few overflow blocks */
        for (size_t i = regular; i < c.n; i++) {
            lkd_fmt_block_t t = out[i];
            size_t j = i;
            for (; j > 0 && out[j - 1].address > t.address; j--)
                out[j] = out[j - 1];
            out[j] = t;
        }
    }
    return c.n;
}

/* lkd_table_memory - tracker bytes used by the table (regions, slots, L2 pages in use). */
size_t lkd_table_memory(void)
{
    return atomic_load_explicit(&leaf_bytes, memory_order_relaxed) + l2_count * 4096 +
           HASH_COUNT(overflow) * sizeof(overflow_t);
}
