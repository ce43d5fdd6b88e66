/*
 * arena - mmap-backed allocator for the tracker's own data.
 *
 * Why not the intercepted malloc: the tracker runs inside every malloc call of the target;
 * allocating through it would recurse, and memray's users saw deadlocks and corruption from
 * doing so (memray #669, #1007). Why not a library: the ones Debian ships (e.g. talloc)
 * sit on top of malloc.
 *
 * Requests up to 1 MiB come from size classes 16, 24, 32, 48, 64, ... (powers of two and
 * 1.5 times them, so rounding wastes at most a third, and the live table can grow its
 * regions by 1.5x and 1.33x steps), carved from 4 MiB chunks; a freed block goes to its
 * class's free list and is reused, never unmapped.
 * Larger requests are mapped and unmapped directly. Invariant: every byte lkd_arena_alloc
 * returns is zero-filled, so callers can rely on calloc semantics (lkd_arena_alloc_raw's
 * callers clear what they read).
 */
#include "arena.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CLASS_COUNT 33 /* 16 B .. 1 MiB */
#define LARGE_MIN (((size_t)1 << 20) + 1)
#define CHUNK_SIZE ((size_t)4 << 20)

typedef struct free_block {
    struct free_block *next;
} free_block_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Every mapping the arena made, for the reachability scan, which must not take the
 * tracker's tables (they hold every block's address) for the program's memory. */
#define MAX_MAPS 8192
static uintptr_t maps[MAX_MAPS][2];
static size_t maps_n;
static bool maps_lost; /* more mappings than MAX_MAPS: the list is incomplete */
static free_block_t *free_lists[CLASS_COUNT];
static char *bump, *bump_end;
static atomic_size_t mapped;

static size_t page_round(size_t size)
{
    size_t page = 4096;
    return (size + page - 1) & ~(page - 1);
}

/* Maps size bytes and notes the range; the caller holds the lock. */
static void *map(size_t size, int extra)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (maps_n < MAX_MAPS) {
        maps[maps_n][0] = (uintptr_t)p;
        maps[maps_n++][1] = (uintptr_t)p + size;
    } else {
        maps_lost = true;
    }
    return p;
}

static void *map_locked(size_t size, int extra)
{
    pthread_mutex_lock(&lock);
    void *p = map(size, extra);
    pthread_mutex_unlock(&lock);
    return p;
}

/* Unmaps a large allocation and forgets its range. */
static void unmap(void *p, size_t size)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < maps_n; i++) {
        if (maps[i][0] == (uintptr_t)p) {
            maps[i][0] = maps[maps_n - 1][0];
            maps[i][1] = maps[--maps_n][1];
            break;
        }
    }
    munmap(p, size);
    pthread_mutex_unlock(&lock);
}

/* lkd_arena_ranges - see arena.h. */
size_t lkd_arena_ranges(uintptr_t (*out)[2], size_t max, bool *complete)
{
    pthread_mutex_lock(&lock);
    size_t n = maps_n < max ? maps_n : max;
    memcpy(out, maps, n * sizeof *out);
    *complete = !maps_lost && n == maps_n;
    pthread_mutex_unlock(&lock);
    return n;
}

/* lkd_arena_class_size - bytes of size class c: 16, 24, 32, 48, ... */
size_t lkd_arena_class_size(unsigned c)
{
    return (c & 1) ? (size_t)3 << (3 + c / 2) : (size_t)1 << (4 + c / 2);
}

/* lkd_arena_class_of - smallest class whose blocks hold size bytes (size <= 1 MiB). */
unsigned lkd_arena_class_of(size_t size)
{
    if (size <= 16)
        return 0;
    unsigned p = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1)); /* 2^p < size */
    return size <= ((size_t)3 << (p - 1)) ? 2 * (p - 4) + 1 : 2 * (p - 3);
}

/* Gives the bump chunk's bytes up to end to the free lists rather than wasting them (a
 * piece of whole cache lines only where it starts on one). */
static void give_up_to(char *end)
{
    while ((size_t)(end - bump) >= lkd_arena_class_size(0)) {
        unsigned tc = lkd_arena_class_of((size_t)(end - bump));
        if (lkd_arena_class_size(tc) > (size_t)(end - bump))
            tc--;
        while (lkd_arena_class_size(tc) % LKD_ARENA_LINE == 0 && (uintptr_t)bump % LKD_ARENA_LINE)
            tc--;
        free_block_t *b = (free_block_t *)bump;
        b->next = free_lists[tc];
        free_lists[tc] = b;
        bump += lkd_arena_class_size(tc);
    }
    bump = end;
}

/* Carves a new block of class c from the bump chunk; lock held. A block of whole cache
 * lines starts on one (the bytes skipped go to the free lists): the live table's groups of
 * slots are 128 bytes, two lines so aligned and three otherwise, and every malloc and free
 * touches one (deep-stack loop: 3.05 -> 2.79 s, 9 interleaved rounds). */
static void *carve(unsigned c)
{
    size_t size = lkd_arena_class_size(c);
    if (size % LKD_ARENA_LINE == 0) {
        char *line =
            (char *)(((uintptr_t)bump + LKD_ARENA_LINE - 1) & ~(uintptr_t)(LKD_ARENA_LINE - 1));
        give_up_to(line < bump_end ? line : bump_end);
    }
    if ((size_t)(bump_end - bump) < size) {
        char *chunk = map(CHUNK_SIZE, 0);
        if (!chunk)
            return NULL;
        atomic_fetch_add_explicit(&mapped, CHUNK_SIZE, memory_order_relaxed);
        give_up_to(bump_end);
        bump = chunk;
        bump_end = chunk + CHUNK_SIZE;
    }
    void *p = bump;
    bump += size;
    return p;
}

static void *alloc_large(size_t size, int extra)
{
    void *p = map_locked(page_round(size), extra);
    if (p)
        atomic_fetch_add_explicit(&mapped, page_round(size), memory_order_relaxed);
    return p;
}

/* lkd_arena_alloc_filled - see arena.h. */
void *lkd_arena_alloc_filled(size_t size)
{
    return size >= LARGE_MIN ? alloc_large(size, MAP_POPULATE) : lkd_arena_alloc(size);
}

/* lkd_arena_alloc_lines - see arena.h. Whole lines are a class of whole lines (64, 128,
 * 192, 256, 384...), which carve() starts on a line. */
void *lkd_arena_alloc_lines(size_t size)
{
    return lkd_arena_alloc(lkd_arena_lines_size(size));
}

/* A block of size's class: reused from its free list (*reused set), else carved. */
static void *alloc_small(size_t size, bool *reused)
{
    unsigned c = lkd_arena_class_of(size);
    pthread_mutex_lock(&lock);
    free_block_t *b = free_lists[c];
    if (b)
        free_lists[c] = b->next;
    void *p = b ? (void *)b : carve(c);
    pthread_mutex_unlock(&lock);
    *reused = b != NULL;
    return p;
}

/* lkd_arena_alloc - zero-filled memory for the tracker; NULL when out of memory. */
void *lkd_arena_alloc(size_t size)
{
    if (size >= LARGE_MIN)
        return alloc_large(size, 0);
    bool reused;
    void *p = alloc_small(size, &reused);
    if (reused) /* carved memory is fresh from mmap: zero already */
        memset(p, 0, lkd_arena_class_size(lkd_arena_class_of(size)));
    return p;
}

/* lkd_arena_alloc_raw - see arena.h. */
void *lkd_arena_alloc_raw(size_t size)
{
    if (size >= LARGE_MIN)
        return alloc_large(size, 0);
    bool reused;
    return alloc_small(size, &reused);
}

/* lkd_arena_free - gives back memory from lkd_arena_alloc(size). */
void lkd_arena_free(void *ptr, size_t size)
{
    if (!ptr)
        return;
    if (size >= LARGE_MIN) {
        unmap(ptr, page_round(size));
        atomic_fetch_sub_explicit(&mapped, page_round(size), memory_order_relaxed);
        return;
    }
    unsigned c = lkd_arena_class_of(size);
    free_block_t *b = ptr;
    pthread_mutex_lock(&lock);
    b->next = free_lists[c];
    free_lists[c] = b;
    pthread_mutex_unlock(&lock);
}

/* lkd_arena_realloc - resizes an arena block; NULL on failure with ptr left intact. */
void *lkd_arena_realloc(void *ptr, size_t old_size, size_t new_size)
{
    void *p = lkd_arena_alloc(new_size);
    if (!p)
        return NULL;
    if (ptr)
        memcpy(p, ptr, old_size < new_size ? old_size : new_size);
    lkd_arena_free(ptr, old_size);
    return p;
}

/* lkd_arena_reserve - address space that costs memory only where touched; NULL on failure.
 * Never returned: reservations live as long as the process. */
void *lkd_arena_reserve(size_t size)
{
    return map_locked(page_round(size), MAP_NORESERVE);
}

/* lkd_arena_mapped - bytes the arena has mapped for allocations (not reservations). */
size_t lkd_arena_mapped(void)
{
    return atomic_load_explicit(&mapped, memory_order_relaxed);
}

/* lkd_arena_lock - taken by the fork handler so no allocation is half done at fork. */
void lkd_arena_lock(void)
{
    pthread_mutex_lock(&lock);
}

/* lkd_arena_unlock - releases lkd_arena_lock (parent) or resets it (child). */
void lkd_arena_unlock(void)
{
    pthread_mutex_unlock(&lock);
}
