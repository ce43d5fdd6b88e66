/*
 * reach - the reachability scan at exit (see reach.h).
 *
 * Invariants:
 * - Everything that can take a lock another thread might hold (dl_iterate_phdr, dlsym,
 *   the arena) happens before the other threads are stopped; while they are stopped only
 *   raw system calls and memory reads run, and the shim's own locks were all held when the
 *   stop signal went out.
 * - Stopped threads wait on a futex in the signal handler; resume wakes them. The handler
 *   stays installed, so a stop signal that arrives late is harmless.
 * - Only memory known to be mapped is read: loaded objects' writable segments, live
 *   blocks, and the mapping (from /proc/self/maps) that holds a thread's stack pointer.
 * - The shim's own writable data is not a root (its tables point at every block).
 */
#include "reach.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "log.h"
#include "stack.h"
#include "table.h"
#include "thread.h"
#include "writer.h"

#define STOP_WAIT_NS 1000000000L /* a thread that blocks the stop signal costs at most this */
#define RED_ZONE 128             /* x86-64: a leaf function may keep data below its sp */

typedef struct range {
    uintptr_t lo, hi;
} range_t;

typedef struct stopped {
    pid_t tid;
    uintptr_t sp, tp; /* tp: the thread pointer (struct pthread), 0 when unknown */
    greg_t regs[NGREG];
} stopped_t;

static struct {
    range_t *roots; /* writable segments of loaded objects */
    size_t root_n, root_cap;
    stopped_t *threads; /* one per thread that reached the handler */
    size_t thread_cap;
    pid_t *tids; /* every other thread of the process */
    size_t tid_n, tid_cap;
    char *maps; /* /proc/self/maps, read while stopped */
    size_t maps_len, maps_cap;
    uintptr_t (*arena)[2]; /* the shim's own mappings: never roots */
    size_t arena_n, arena_cap;
    bool arena_complete;
    size_t tls_static, pthread_size;
    int signal;
    bool stopped;
} st;

static atomic_uint recorded;
static struct {
    pid_t tid;
    uintptr_t sp;
    uintptr_t regs[16];
} exiting;
static atomic_int parked;     /* futex word: 1 while the world is stopped */
static _Atomic pid_t stopper; /* the thread that stopped the world, 0 when none did */

/* ---- the stop handler ------------------------------------------------------------------- */

static long futex(atomic_int *word, int op, int val)
{
    return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

static void on_stop(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)si;
    int saved = errno;
    if (atomic_load(&parked)) {
        unsigned i = atomic_load(&recorded);
        while (i < st.thread_cap && !atomic_compare_exchange_weak(&recorded, &i, i + 1))
            ;
        if (i < st.thread_cap) {
            const ucontext_t *uc = ctx;
            stopped_t *t = &st.threads[i];
            memcpy(t->regs, uc->uc_mcontext.gregs, sizeof t->regs);
            t->sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
            t->tp = (uintptr_t)pthread_self();
            atomic_store_explicit((_Atomic pid_t *)&t->tid, (pid_t)syscall(SYS_gettid),
                                  memory_order_release);
        }
        while (atomic_load(&parked))
            futex(&parked, FUTEX_WAIT_PRIVATE, 1);
    }
    errno = saved;
}

/* A real-time signal nobody uses (default disposition), with on_stop installed; 0 if none. */
static int take_signal(void)
{
    if (st.signal)
        return st.signal;
    for (int sig = SIGRTMIN + LKD_DEFAULT_SIGNAL_OFFSET + 1; sig <= SIGRTMAX; sig++) {
        struct sigaction old, sa;
        if (sig == lkd_config.signal || sigaction(sig, NULL, &old) < 0)
            continue;
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_stop;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) == 0)
            return st.signal = sig;
    }
    return 0;
}

/* ---- what is known before the stop ------------------------------------------------------ */

static bool grow(void **array, size_t *cap, size_t size, size_t want)
{
    if (want <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < want)
        n *= 2;
    void *p = lkd_arena_alloc(n * size);
    if (!p)
        return false;
    if (*array) {
        memcpy(p, *array, *cap * size);
        lkd_arena_free(*array, *cap * size);
    }
    *array = p;
    *cap = n;
    return true;
}

static int add_segments(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    bool *ok = ctx;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || !ph->p_memsz)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (lkd_stack_in_shim(lo))
            continue;
        if (!grow((void **)&st.roots, &st.root_cap, sizeof *st.roots, st.root_n + 1)) {
            *ok = false;
            return 1;
        }
        st.roots[st.root_n++] = (range_t){lo, lo + ph->p_memsz};
    }
    return 0;
}

/* glibc's own figures for the static TLS area and the thread descriptor, which are roots
 * (LeakSanitizer reads the same two). Fallbacks: glibc 2.36 on x86-64. */
static void tls_sizes(void)
{
    void (*info)(size_t *, size_t *);
    *(void **)&info = dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    const unsigned *pthread_size = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
    size_t align = 0;
    st.tls_static = 4096;
    if (info)
        info(&st.tls_static, &align);
    st.pthread_size = pthread_size ? *pthread_size : 2304;
}

/* The ids of this process's threads, but the caller and the writer. Raw getdents64. */
static bool list_threads(pid_t writer)
{
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    pid_t self = (pid_t)syscall(SYS_gettid);
    char buf[4096];
    long got;
    bool ok = true;
    st.tid_n = 0;
    while (ok && (got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < got;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            off += d->reclen;
            long tid = strtol(d->name, NULL, 10);
            if (tid <= 0 || tid == self || tid == writer)
                continue;
            if (st.tid_n == st.tid_cap) {
                ok = false;
                break;
            }
            st.tids[st.tid_n++] = (pid_t)tid;
        }
    }
    close(fd);
    return ok;
}

/* A zombie main thread (main() left through pthread_exit) never runs a handler. */
static bool is_zombie(pid_t tid)
{
    char path[64], text[512];
    lkd_log_format(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return true;
    text[n] = '\0';
    const char *p = strrchr(text, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static void lock_all(void)
{
    lkd_writer_lock();
    lkd_table_lock_all();
    lkd_stack_lock();
    lkd_thread_lock();
    lkd_arena_lock();
}

static void unlock_all(void)
{
    lkd_arena_unlock();
    lkd_thread_unlock();
    lkd_stack_unlock();
    lkd_table_unlock_all();
    lkd_writer_unlock();
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Signals the listed threads (all locks held) and waits until each has recorded itself or
 * the time is up. */
static void stop_threads(void)
{
    pid_t pid = getpid();
    unsigned sent = 0;
    atomic_store(&recorded, 0);
    for (size_t i = 0; i < st.tid_n; i++) {
        st.threads[i].tid = 0;
        if (st.tids[i] == pid && is_zombie(pid))
            continue;
        if (syscall(SYS_tgkill, pid, st.tids[i], st.signal) == 0)
            sent++;
    }
    uint64_t deadline = now_ns() + STOP_WAIT_NS;
    for (;;) {
        unsigned done = 0, n = atomic_load(&recorded);
        for (unsigned i = 0; i < n && i < st.thread_cap; i++)
            done += atomic_load_explicit((_Atomic pid_t *)&st.threads[i].tid,
                                         memory_order_acquire) != 0;
        if (done >= sent || now_ns() > deadline)
            break;
        struct timespec pause = {0, 50000};
        nanosleep(&pause, NULL);
    }
}

/* lkd_reach_stop - see reach.h. */
bool lkd_reach_stop(pid_t skip)
{
    if (st.stopped)
        return true;
    bool ok = true;
    st.root_n = 0;
    dl_iterate_phdr(add_segments, &ok);
    tls_sizes();
    if (!st.arena)
        ok = ok && grow((void **)&st.arena, &st.arena_cap, sizeof *st.arena, 8192);
    if (ok)
        st.arena_n = lkd_arena_ranges(st.arena, st.arena_cap, &st.arena_complete);
    if (!ok || !take_signal()) {
        lkd_log_warn("cannot stop the program's threads for the reachability scan; the exit "
                     "snapshot has no leak verdicts");
        return false;
    }
    for (int attempt = 0; attempt < 4; attempt++) {
        size_t want = st.tid_cap ? st.tid_cap * 2 : 64;
        if (!grow((void **)&st.tids, &st.tid_cap, sizeof *st.tids, want) ||
            !grow((void **)&st.threads, &st.thread_cap, sizeof *st.threads, st.tid_cap))
            return false;
        lock_all();
        atomic_store(&parked, 1);
        if (list_threads(skip)) {
            stop_threads();
            atomic_store(&stopper, (pid_t)syscall(SYS_gettid));
            unlock_all();
            return st.stopped = true;
        }
        atomic_store(&parked, 0);
        unlock_all();
    }
    return false;
}

/* lkd_reach_exit_from - see reach.h. */
void lkd_reach_exit_from(uintptr_t sp, const void *regs, size_t len)
{
    exiting.tid = (pid_t)syscall(SYS_gettid);
    exiting.sp = sp;
    memcpy(exiting.regs, regs, len < sizeof exiting.regs ? len : sizeof exiting.regs);
}

/* lkd_reach_stopped - see reach.h. */
bool lkd_reach_stopped(void)
{
    return atomic_load(&stopper) == (pid_t)syscall(SYS_gettid);
}

/* lkd_reach_stopped_by_other - see reach.h. */
bool lkd_reach_stopped_by_other(void)
{
    pid_t tid = atomic_load(&stopper);
    return tid && tid != (pid_t)syscall(SYS_gettid);
}

/* lkd_reach_resume - see reach.h. */
void lkd_reach_resume(void)
{
    if (!st.stopped)
        return;
    atomic_store(&parked, 0);
    futex(&parked, FUTEX_WAKE_PRIVATE, INT_MAX);
    st.stopped = false;
    atomic_store(&stopper, 0);
}

/* ---- the scan -------------------------------------------------------------------------- */

/* A run of blocks whose start pages are at most CLUSTER_GAP pages apart. Its pages are
 * indexed densely: first[base + k] is the index of the first block starting in page lo + k
 * or after it, for k = 0 .. hi - lo + 1 (the last entry is the run's end). */
#define CLUSTER_GAP 16
typedef struct cluster {
    uintptr_t lo, hi; /* the first and the last page in which one of its blocks starts */
    size_t base;
} cluster_t;

typedef struct scan {
    lkd_fmt_block_t *b;
    size_t n;
    uintptr_t lo, hi; /* every block lies in [lo, hi) */
    uint8_t *state;   /* verdict per block, 0 = not reached yet */
    uint32_t *leader; /* per block: 1 + index of its clique's first block */
    uint32_t *work;   /* blocks whose contents are still to scan */
    size_t work_n;
    uint32_t clique;     /* 0 while scanning from roots, else 1 + the DIRECT block */
    bool in_libc;        /* scanning libc's data, where glibc's malloc state lives */
    cluster_t *clusters; /* the page index; NULL when out of memory */
    size_t cluster_n;
    size_t hint; /* the cluster of the last lookup */
    uint32_t *first;
    size_t first_n;
    struct pool *pool; /* work shared with a helper thread; NULL when scanning alone */
    size_t pieces;     /* pieces beyond the first of the blocks larger than PIECE */
} scan_t;

/* A block larger than PIECE is scanned in pieces, which threads share: one array of
 * pointers to every block of the heap would otherwise be one thread's work. */
#define PIECE ((uint64_t)64 << 10)

/* Pieces of a block beyond the first. */
static size_t pieces_of(uint64_t size)
{
    return size > PIECE ? (size_t)((size - 1) / PIECE) : 0;
}

static uintptr_t page_of(const scan_t *s, size_t i)
{
    return s->b[i].address >> 12;
}

/* Indexes the blocks by the page they start in; false when out of memory (then every
 * lookup is a binary search over all blocks, whose every step missed the cache: 200 ms for
 * 1M blocks). The index is dense, not hashed: pointers in a heap mostly come in address
 * order (an array of pointers to blocks allocated in turn), so consecutive lookups read
 * neighbouring entries, where a hash table of pages missed the cache on every probe (a
 * quarter of the lookups' time, perf). Clusters bound it: at most CLUSTER_GAP + 2 entries
 * of 4 bytes per block, however sparse the heap. */
static bool index_pages(scan_t *s)
{
    size_t clusters = 0, entries = 0, lo = 0;
    if (s->n >= UINT32_MAX)
        return false;
    for (size_t i = 1; i <= s->n; i++) {
        s->pieces += pieces_of(s->b[i - 1].size);
        if (i < s->n && page_of(s, i) - page_of(s, i - 1) <= CLUSTER_GAP)
            continue;
        entries += page_of(s, i - 1) - page_of(s, lo) + 2; /* closes the cluster at lo */
        clusters++;
        lo = i;
    }
    s->clusters = lkd_arena_alloc(clusters * sizeof *s->clusters);
    s->first = lkd_arena_alloc(entries * sizeof *s->first);
    if (!s->clusters || !s->first) {
        lkd_arena_free(s->clusters, clusters * sizeof *s->clusters);
        lkd_arena_free(s->first, entries * sizeof *s->first);
        s->clusters = NULL;
        s->first = NULL;
        return false;
    }
    s->cluster_n = clusters;
    s->first_n = entries;
    size_t e = 0, c = 0;
    for (size_t i = 0; i < s->n;) {
        cluster_t *cl = &s->clusters[c++];
        cl->lo = page_of(s, i);
        cl->base = e;
        uintptr_t next = cl->lo; /* the next page without an entry */
        size_t j = i;
        do {
            for (; next <= page_of(s, j); next++)
                s->first[e++] = (uint32_t)j;
            j++;
        } while (j < s->n && page_of(s, j) - page_of(s, j - 1) <= CLUSTER_GAP);
        cl->hi = next - 1;
        s->first[e++] = (uint32_t)j;
        i = j;
    }
    return true;
}

/* The last cluster starting at or below page pg (the first one does: pg >= lo's page). */
static const cluster_t *cluster_of(scan_t *s, uintptr_t pg)
{
    size_t h = s->hint;
    if (s->clusters[h].lo <= pg && (h + 1 == s->cluster_n || s->clusters[h + 1].lo > pg))
        return &s->clusters[h];
    size_t lo = 0, hi = s->cluster_n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->clusters[mid].lo <= pg)
            lo = mid;
        else
            hi = mid;
    }
    s->hint = lo;
    return &s->clusters[lo];
}

/* The last block at or below p among b[lo, hi) (which must start at or below p), by
 * binary search. */
static size_t last_at_or_below(const scan_t *s, size_t lo, size_t hi, uintptr_t p)
{
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->b[mid].address <= p)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The last of b[first, end), the blocks starting in p's page, that starts at or below p
 * (the first one does). Blocks spread over a page roughly evenly, so the guess from p's
 * offset in the page is at most a step or two off: a binary search there, each step a cache
 * miss on a 40-byte record, was half of the scan's time. At most the page's blocks (256 of
 * 16 bytes) are stepped over. */
static size_t last_in_page(const scan_t *s, size_t first, size_t end, uintptr_t p)
{
    size_t i = first + (((p & 4095) * (end - first)) >> 12);
    while (i > first && s->b[i].address > p)
        i--;
    while (i + 1 < end && s->b[i + 1].address <= p)
        i++;
    return i;
}

static bool inside(const lkd_fmt_block_t *b, uintptr_t p)
{
    return p >= b->address && p - b->address < (b->size ? b->size : 1);
}

/* The block containing p (a pointer to its first byte, or anywhere inside it), or -1.
 * Blocks do not overlap: only the last one starting at or below p can hold it. When p lies
 * before the first block of its page, or in a page where none starts, that is the block
 * before (glibc's free-list pointers aim there, at chunk headers: a search of all the
 * blocks for each of them was most of the scan's time), and past a cluster's last page the
 * cluster's last block. */
static long find_block(scan_t *s, uintptr_t p)
{
    if (p < s->lo || p >= s->hi)
        return -1;
    size_t i;
    if (s->clusters) {
        uintptr_t pg = p >> 12;
        const cluster_t *c = cluster_of(s, pg);
        const uint32_t *f = &s->first[c->base + (pg > c->hi ? c->hi + 1 : pg) - c->lo];
        if (pg <= c->hi && f[0] < f[1] && s->b[f[0]].address <= p)
            i = last_in_page(s, f[0], f[1], p);
        else if (f[0] == 0)
            return -1;
        else
            i = f[0] - 1;
    } else {
        i = last_at_or_below(s, 0, s->n, p);
    }
    return inside(&s->b[i], p) ? (long)i : -1;
}

/* ---- the drain from the roots, shared with a helper thread ------------------------------
 *
 * The exit snapshot's scan from the roots may be shared with the shim's writer thread, the
 * one thread that runs while the world is stopped: alone it took 45 of the 130 ms of the
 * exit snapshot of 1M blocks (bench/live_blocks), shared 25 ms. Each thread drains its own stack of
 * blocks to scan; one that holds more than it can soon scan moves a batch to the pool, from which a
 * thread whose stack ran dry takes one. A block is scanned once: the thread that marks it (an
 * atomic exchange) pushes it. The drain is over when every member waits on an empty pool. Only the
 * scan from the roots is shared; the leak cliques that follow depend on the order of the blocks. */
#define BATCH 256

typedef struct pool {
    atomic_uint lock;
    /* Work items: a block's index, or n + the index of a piece. Room for every block and
     * piece: each is pushed once at most. */
    uint32_t *items;
    atomic_size_t n;
    uint64_t *pieces; /* (block << 32) | piece number, for pieces 1 and up */
    size_t piece_n;
    unsigned members, idle;
    atomic_bool closed; /* the drain is over; no thread may join */
} pool_t;

static void pool_lock(pool_t *p)
{
    unsigned spins = 0;
    while (atomic_exchange_explicit(&p->lock, 1, memory_order_acquire))
        while (atomic_load_explicit(&p->lock, memory_order_relaxed))
            ++spins < 64 ? __builtin_ia32_pause() : (void)sched_yield();
}

static void pool_unlock(pool_t *p)
{
    atomic_store_explicit(&p->lock, 0, memory_order_release);
}

/* Moves the top batch of s's stack to the pool. */
__attribute__((noinline)) static void share(scan_t *s)
{
    pool_t *p = s->pool;
    pool_lock(p);
    size_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
    memcpy(p->items + n, s->work + s->work_n - BATCH, BATCH * sizeof *p->items);
    atomic_store_explicit(&p->n, n + BATCH, memory_order_relaxed);
    s->work_n -= BATCH;
    pool_unlock(p);
}

static void push(scan_t *s, uint32_t i)
{
    s->work[s->work_n++] = i;
    if (s->pool && s->work_n >= 2 * BATCH &&
        atomic_load_explicit(&s->pool->n, memory_order_relaxed) < BATCH)
        share(s);
}

/* Refills s's empty stack from the pool, waiting while other members still scan; false
 * when the drain is over. */
static bool take(scan_t *s)
{
    pool_t *p = s->pool;
    bool idle = false;
    for (unsigned spins = 0;; spins++) {
        pool_lock(p);
        size_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
        if (n) {
            size_t k = (n + p->members - 1) / p->members; /* a fair share of large pieces */
            k = k < BATCH ? k : BATCH;
            memcpy(s->work, p->items + n - k, k * sizeof *s->work);
            atomic_store_explicit(&p->n, n - k, memory_order_relaxed);
            s->work_n = k;
            p->idle -= idle;
            pool_unlock(p);
            return true;
        }
        if (!idle) {
            idle = true;
            p->idle++;
        }
        if (p->idle == p->members)
            atomic_store_explicit(&p->closed, true, memory_order_relaxed);
        pool_unlock(p);
        if (atomic_load_explicit(&p->closed, memory_order_relaxed))
            return false;
        spins < 64 ? __builtin_ia32_pause() : (void)sched_yield();
    }
}

static void drain(scan_t *s);

/* Drains s's stack, then the pool, until every member is done. */
static void drain_shared(scan_t *s)
{
    do
        drain(s);
    while (s->pool && take(s));
}

/* The scan a helper may join, and where the offer stands. */
enum { OFFER_NONE, OFFER_OPEN, OFFER_TAKEN, OFFER_DONE };
static atomic_int offer;
static scan_t offered; /* the helper's copy: set before the offer opens, then only read */
/* Set by the writer thread when it starts, which a very early exit may race with. */
static _Atomic(void (*)(void)) wake_helper;
static atomic_uintptr_t helper_stack; /* an address in the helper's stack: never a root */

/* lkd_reach_set_helper - see reach.h. */
void lkd_reach_set_helper(void (*wake)(void), uintptr_t stack)
{
    atomic_store(&helper_stack, stack);
    atomic_store(&wake_helper, wake);
}

/* lkd_reach_claim - see reach.h. Joins the drain at once, so that it cannot end without
 * this helper; NULL when there is nothing (or nothing left) to help with. */
void *lkd_reach_claim(void)
{
    int open = OFFER_OPEN;
    if (!atomic_compare_exchange_strong(&offer, &open, OFFER_TAKEN))
        return NULL;
    pool_t *p = offered.pool;
    pool_lock(p);
    bool join = !atomic_load_explicit(&p->closed, memory_order_relaxed);
    p->members += join;
    pool_unlock(p);
    if (!join) {
        atomic_store_explicit(&offer, OFFER_DONE, memory_order_release);
        return NULL;
    }
    return &offered;
}

/* lkd_reach_help - see reach.h. */
void lkd_reach_help(void *claimed)
{
    scan_t s = *(const scan_t *)claimed;
    drain_shared(&s);
    atomic_store_explicit(&offer, OFFER_DONE, memory_order_release);
}

/* lkd_reach_lend_a_hand - see reach.h. */
void lkd_reach_lend_a_hand(void)
{
    void *claimed = lkd_reach_claim();
    if (claimed)
        lkd_reach_help(claimed);
}

/* Offers s's drain to the helper; false when there is none (or no memory for the pool). */
static bool offer_help(scan_t *s, pool_t *p)
{
    void (*wake)(void) = atomic_load(&wake_helper);
    if (!wake || s->n + s->pieces >= UINT32_MAX)
        return false;
    p->items = lkd_arena_alloc((s->n + s->pieces) * sizeof *p->items);
    p->pieces = lkd_arena_alloc((s->pieces ? s->pieces : 1) * sizeof *p->pieces);
    if (!p->items || !p->pieces) {
        lkd_arena_free(p->items, (s->n + s->pieces) * sizeof *p->items);
        lkd_arena_free(p->pieces, (s->pieces ? s->pieces : 1) * sizeof *p->pieces);
        return false;
    }
    p->members = 1;
    s->pool = p;
    offered = *s; /* the blocks, marks and index shared; a stack of its own */
    offered.work = s->work + s->n + s->pieces;
    atomic_store_explicit(&offer, OFFER_OPEN, memory_order_release);
    wake();
    return true;
}

/* Withdraws the offer, or waits for the helper that took it to finish. */
static void end_help(scan_t *s)
{
    int open = OFFER_OPEN;
    if (!atomic_compare_exchange_strong(&offer, &open, OFFER_NONE)) {
        for (unsigned spins = 0; atomic_load_explicit(&offer, memory_order_acquire) != OFFER_DONE;
             spins++)
            spins < 64 ? __builtin_ia32_pause() : (void)sched_yield();
        atomic_store(&offer, OFFER_NONE);
    }
    lkd_arena_free(s->pool->items, (s->n + s->pieces) * sizeof *s->pool->items);
    lkd_arena_free(s->pool->pieces, (s->pieces ? s->pieces : 1) * sizeof *s->pool->pieces);
    s->pool = NULL;
}

/* glibc's malloc state (main_arena, in libc's data) points at chunk headers: the top
 * chunk, bins of free chunks. A chunk's header starts 8 bytes before the end of the
 * previous chunk's usable space, so such a pointer falls inside the previous block when
 * the program asked for (nearly) all of it. Seen from libc's data, a pointer exactly there
 * is the allocator's, not the program's. */
static bool next_chunk_header(const lkd_fmt_block_t *b, uintptr_t p)
{
    size_t head = *(const size_t *)(b->address - sizeof(size_t));
    size_t usable = (head & ~(size_t)7) - ((head & 2) ? 2 : 1) * sizeof(size_t);
    return p == b->address + usable - sizeof(size_t);
}

static void reach(scan_t *s, uintptr_t p)
{
    long i = find_block(s, p);
    if (i < 0 || (s->in_libc && next_chunk_header(&s->b[i], p)))
        return;
    uint8_t *v = &s->state[i];
    if (!s->clique) {
        /* Two threads may reach a block at once: the one whose exchange finds it unmarked
         * scans it. The plain look first keeps the locked exchange to first visits. */
        if (__atomic_load_n(v, __ATOMIC_RELAXED))
            return;
        if (!s->pool)
            *v = LKD_FMT_BLK_REACHABLE;
        else if (__atomic_exchange_n(v, LKD_FMT_BLK_REACHABLE, __ATOMIC_RELAXED))
            return;
    } else if (*v == 0) {
        *v = LKD_FMT_BLK_INDIRECT;
        s->leader[i] = s->clique;
    } else {
        /* an earlier clique's first block, reached from this one: it joins it */
        if (*v == LKD_FMT_BLK_DIRECT && (uint32_t)i + 1 != s->clique) {
            *v = LKD_FMT_BLK_INDIRECT;
            s->leader[i] = s->clique;
        }
        return;
    }
    push(s, (uint32_t)i);
}

static void reach_word(scan_t *s, uintptr_t w)
{
    if (w >= s->lo && w < s->hi)
        reach(s, w);
}

/* Every aligned word of [lo, hi). */
static void scan_range(scan_t *s, uintptr_t lo, uintptr_t hi)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    for (uintptr_t a = lo; a + 8 <= hi; a += 8) {
        uintptr_t w = *(const uintptr_t *)a;
        if (w >= s->lo && w < s->hi)
            reach(s, w);
    }
}

/* Puts the pieces of block i beyond its first in the pool; false when they do not fit. */
static bool split(scan_t *s, uint32_t i)
{
    pool_t *p = s->pool;
    size_t k = pieces_of(s->b[i].size);
    pool_lock(p);
    bool fit = p->piece_n + k <= s->pieces;
    size_t n = atomic_load_explicit(&p->n, memory_order_relaxed);
    for (size_t j = 1; fit && j <= k; j++) {
        p->pieces[p->piece_n] = (uint64_t)i << 32 | j;
        p->items[n++] = (uint32_t)(s->n + p->piece_n++);
    }
    atomic_store_explicit(&p->n, n, memory_order_relaxed);
    pool_unlock(p);
    return fit;
}

static void drain(scan_t *s)
{
    while (s->work_n) {
        uint32_t v = s->work[--s->work_n];
        uint64_t from = 0, to;
        if (v >= s->n) { /* a piece (the pool's lock ordered its writing before this) */
            uint64_t piece = s->pool->pieces[v - s->n];
            v = (uint32_t)(piece >> 32);
            from = (piece & UINT32_MAX) * PIECE;
            to = from + PIECE < s->b[v].size ? from + PIECE : s->b[v].size;
        } else if (s->b[v].size > PIECE && s->pool && split(s, v)) {
            to = PIECE;
        } else {
            to = s->b[v].size;
        }
        scan_range(s, s->b[v].address + from, s->b[v].address + to);
    }
}

/* /proc/self/maps into st.maps (raw reads into arena memory). */
static void read_maps(void)
{
    st.maps_len = 0;
    /* thread-self: once main() has pthread_exit'ed, /proc/self names a zombie whose maps
     * are empty */
    int fd = open("/proc/thread-self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    for (;;) {
        if (!grow((void **)&st.maps, &st.maps_cap, 1, st.maps_len + 65536))
            break;
        ssize_t got = read(fd, st.maps + st.maps_len, st.maps_cap - st.maps_len - 1);
        if (got <= 0)
            break;
        st.maps_len += (size_t)got;
    }
    close(fd);
    if (st.maps)
        st.maps[st.maps_len] = '\0';
}

/* The end of the readable mapping holding addr (its stack pointer), or 0. */
static uintptr_t mapping_end(uintptr_t addr)
{
    for (const char *p = st.maps; p && *p;) {
        char *end;
        uintptr_t lo = strtoull(p, &end, 16), hi = *end == '-' ? strtoull(end + 1, &end, 16) : 0;
        bool readable = *end == ' ' && end[1] == 'r';
        if (addr >= lo && addr < hi)
            return readable ? hi : 0;
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return 0;
}

/* True when [lo, hi) lies in readable mappings (checked against st.maps). */
static bool readable(uintptr_t lo, uintptr_t hi)
{
    while (lo < hi) {
        uintptr_t end = mapping_end(lo);
        if (!end)
            return false;
        lo = end;
    }
    return true;
}

/* A thread's roots: registers, stack from its stack pointer, static TLS and descriptor,
 * and its DTV (the main thread's was not allocated through malloc, so nothing else
 * points the scan at the dynamic TLS blocks it lists). */
static void scan_thread(scan_t *s, const greg_t *regs, size_t nregs, uintptr_t sp, uintptr_t tp)
{
    for (size_t i = 0; i < nregs; i++)
        if ((uintptr_t)regs[i] >= s->lo && (uintptr_t)regs[i] < s->hi)
            reach(s, (uintptr_t)regs[i]);
    uintptr_t top = sp ? mapping_end(sp) : 0;
    if (top) {
        uintptr_t low = sp - RED_ZONE;
        scan_range(s, readable(low, sp) ? low : sp, top);
    }
    if (!tp)
        return;
    uintptr_t tls_lo = tp - st.tls_static, tls_hi = tp + st.pthread_size;
    if (readable(tls_lo, tls_hi))
        scan_range(s, tls_lo, tls_hi);
    const uintptr_t *dtv = readable(tp + 8, tp + 16) ? *(const uintptr_t **)(tp + 8) : NULL;
    if (dtv && readable((uintptr_t)(dtv - 2), (uintptr_t)dtv)) {
        size_t len = dtv[-2]; /* dtv[-1].counter: the number of entries */
        uintptr_t hi = (uintptr_t)(dtv + 2 * (len + 1));
        if (len < 1u << 20 && readable((uintptr_t)(dtv - 2), hi))
            scan_range(s, (uintptr_t)(dtv - 2), hi);
    }
}

/* Scans [lo, hi) but the pages of the blocks in it. A mapping of its own holds each block
 * glibc served with mmap (its chunk header 16 bytes before it), and the kernel merges such
 * mappings with neighbours like CPython's pymalloc arenas, which are roots. */
static void scan_around_blocks(scan_t *s, uintptr_t lo, uintptr_t hi)
{
    const uintptr_t page = 4096;
    size_t a = 0, b = s->n; /* the first block at or above lo */
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (s->b[mid].address < lo)
            a = mid + 1;
        else
            b = mid;
    }
    for (; a < s->n && s->b[a].address < hi; a++) {
        uintptr_t from = (s->b[a].address - 16) & ~(page - 1);
        uintptr_t to = (s->b[a].address + s->b[a].size + page - 1) & ~(page - 1);
        if (from > lo)
            scan_range(s, lo, from);
        if (to > lo)
            lo = to;
    }
    if (lo < hi)
        scan_range(s, lo, hi);
}

/* Scans [lo, hi) but the parts the arena mapped, skipping pieces that hold heap blocks. */
static void scan_mapping_piece(scan_t *s, uintptr_t lo, uintptr_t hi)
{
    for (size_t i = 0; i < st.arena_n && lo < hi; i++) {
        uintptr_t a = st.arena[i][0], b = st.arena[i][1];
        if (b <= lo || a >= hi)
            continue;
        if (a > lo)
            scan_mapping_piece(s, lo, a);
        lo = b; /* the rest, above this arena range */
    }
    if (lo < hi)
        scan_around_blocks(s, lo, hi);
}

/* Whether a mapping of /proc/self/maps is a root, as memcheck decides: every readable and
 * writable mapping that is not the heap, the tracker's own memory, a device, or a stack
 * (stacks are scanned from their threads' stack pointers; a stack with no live thread
 * not at all). glibc's per-thread heaps start 64 MiB-aligned with heap_info.ar_ptr, which
 * points just past the start of the arena's first heap: heap, too. */
static bool is_root(uintptr_t lo, uintptr_t hi, const char *perms, const char *path,
                    const uintptr_t *sps, size_t nsp)
{
    if (perms[0] != 'r' || perms[1] != 'w' || lkd_stack_in_shim(lo))
        return false;
    if (!strncmp(path, "[heap]", 6) || !strncmp(path, "[stack]", 7) ||
        !strncmp(path, "[vvar]", 6) || !strncmp(path, "[vsyscall]", 10))
        return false;
    if (!strncmp(path, "/dev/", 5) && strncmp(path, "/dev/zero", 9) &&
        strncmp(path, "/dev/shm/", 9))
        return false;
    for (size_t i = 0; i < nsp; i++)
        if (sps[i] >= lo && sps[i] < hi)
            return false;
    if (!(lo & ((64u << 20) - 1)) && *path == '\0') {
        uintptr_t first = *(const uintptr_t *)lo; /* heap_info.ar_ptr: its first heap + a bit */
        if (first > (64u << 20) && (first & ((64u << 20) - 1)) < 4096)
            return false;
    }
    return true;
}

/* True for libc's writable data mapping (main_arena is initialized data). */
static bool libc_data(const char *path, const char *eol)
{
    size_t len = eol ? (size_t)(eol - path) : strlen(path);
    return len >= 9 && memmem(path, len, "/libc.so.", 9) != NULL;
}

/* True when valgrind runs this process: the list then holds valgrind's own memory, which
 * is not the program's and which valgrind unmaps as it translates the scan's own code (a
 * mapping listed a moment ago faulted under callgrind). Its tool is mapped as an executable
 * named like /usr/libexec/valgrind/memcheck-amd64-linux. */
static bool valgrind_maps(const char *maps)
{
    for (const char *p = maps; (p = strstr(p, "/valgrind/")) != NULL; p++) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > 6 && !memcmp(p + len - 6, "-linux", 6))
            return true;
    }
    return false;
}

/* Every root mapping of /proc/self/maps. False when the list is unusable (then the
 * loaded objects' writable segments are the roots). */
static bool scan_mappings(scan_t *s, const uintptr_t *sps, size_t nsp)
{
    if (!st.maps_len || !st.arena_complete || valgrind_maps(st.maps))
        return false;
    for (const char *p = st.maps; *p;) {
        char *end, perms[5] = "";
        uintptr_t lo = strtoull(p, &end, 16), hi = strtoull(end + 1, &end, 16);
        memcpy(perms, end + 1, 4);
        const char *path = end + 6, *eol = strchr(p, '\n');
        for (int field = 0; field < 3 && path < (eol ? eol : path + strlen(path)); field++) {
            while (*path == ' ')
                path++;
            while (*path && *path != ' ' && *path != '\n')
                path++; /* offset, device, inode */
        }
        while (*path == ' ')
            path++;
        char name[16] = "";
        for (size_t i = 0; i + 1 < sizeof name && path[i] && path[i] != '\n'; i++)
            name[i] = path[i];
        if (is_root(lo, hi, perms, name, sps, nsp)) {
            s->in_libc = libc_data(path, eol);
            scan_mapping_piece(s, lo, hi);
            s->in_libc = false;
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    return true;
}

__attribute__((noinline)) static void scan_roots(scan_t *s, const void *ctx)
{
    (void)ctx;
    /* The tracker's mappings again: the snapshot mapped its copy of the blocks (and the scan
     * its own arrays) after lkd_reach_stop listed them, and that copy holds the address of
     * every block. */
    st.arena_n = lkd_arena_ranges(st.arena, st.arena_cap, &st.arena_complete);
    read_maps();
    uintptr_t sps[258];
    size_t nsp = 0;
    unsigned n = atomic_load(&recorded);
    sps[nsp++] = (uintptr_t)__builtin_frame_address(0);
    /* The helper's stack: it may hold the block addresses it is working on right now. */
    if (atomic_load(&helper_stack))
        sps[nsp++] = atomic_load(&helper_stack);
    for (unsigned i = 0; i < n && i < st.thread_cap && nsp < 258; i++)
        if (st.threads[i].tid)
            sps[nsp++] = st.threads[i].sp;
    if (!scan_mappings(s, sps, nsp))
        for (size_t i = 0; i < st.root_n; i++)
            scan_range(s, st.roots[i].lo, st.roots[i].hi);
    for (unsigned i = 0; i < n && i < st.thread_cap; i++) {
        const stopped_t *t = &st.threads[i];
        if (t->tid)
            scan_thread(s, t->regs, NGREG, t->sp, t->tp);
    }
    /* This thread: callee-saved registers spilled into this frame, then its stack, from
     * where exit() was called when known (exit's frames hold nothing of the program's). */
    __builtin_unwind_init();
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    if (exiting.tid == (pid_t)syscall(SYS_gettid) && exiting.sp > sp) {
        sp = exiting.sp;
        for (size_t i = 0; i < sizeof exiting.regs / sizeof *exiting.regs; i++)
            reach_word(s, exiting.regs[i]);
    }
    scan_thread(s, NULL, 0, sp, (uintptr_t)pthread_self());
}

typedef void roots_fn(scan_t *s, const void *ctx);

static void classify(lkd_fmt_block_t *blocks, size_t n, roots_fn *roots, const void *ctx)
{
    scan_t s = {.b = blocks, .n = n, .lo = blocks[0].address};
    s.hi = blocks[n - 1].address + (blocks[n - 1].size ? blocks[n - 1].size : 1);
    s.state = lkd_arena_alloc(n);
    s.leader = lkd_arena_alloc(n * sizeof *s.leader);
    if (!s.state || !s.leader)
        goto out;
    index_pages(&s);
    size_t work_cap = 2 * (n + s.pieces); /* this thread's stack, and the helper's */
    s.work = lkd_arena_alloc(work_cap * sizeof *s.work);
    if (!s.work)
        goto out;
    pool_t pool = {0};
    bool shared = offer_help(&s, &pool);
    roots(&s, ctx);
    drain_shared(&s);
    if (shared)
        end_help(&s);
    for (size_t i = 0; i < n; i++) {
        if (s.state[i])
            continue;
        s.state[i] = LKD_FMT_BLK_DIRECT;
        s.clique = (uint32_t)i + 1;
        s.work[s.work_n++] = (uint32_t)i;
        drain(&s);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t l = s.state[i] == LKD_FMT_BLK_INDIRECT ? s.leader[i] : 0;
        while (l && s.state[l - 1] == LKD_FMT_BLK_INDIRECT)
            l = s.leader[l - 1]; /* its leader joined a later clique */
        blocks[i].flags = (blocks[i].flags & ~(uint32_t)LKD_FMT_BLK_VERDICT_MASK) | s.state[i];
        blocks[i].leader = l;
    }
out:
    lkd_arena_free(s.clusters, s.cluster_n * sizeof *s.clusters);
    lkd_arena_free(s.first, s.first_n * sizeof *s.first);
    lkd_arena_free(s.state, n);
    lkd_arena_free(s.leader, n * sizeof *s.leader);
    lkd_arena_free(s.work, 2 * (n + s.pieces) * sizeof *s.work);
}

/* lkd_reach_classify - see reach.h. */
void lkd_reach_classify(lkd_fmt_block_t *blocks, size_t n)
{
    if (st.stopped && n)
        classify(blocks, n, scan_roots, NULL);
}

typedef struct given {
    const uintptr_t (*ranges)[2];
    size_t count;
} given_t;

static void scan_given(scan_t *s, const void *ctx)
{
    const given_t *g = ctx;
    for (size_t i = 0; i < g->count; i++)
        scan_range(s, g->ranges[i][0], g->ranges[i][1]);
}

/* lkd_reach_classify_ranges - see reach.h. */
void lkd_reach_classify_ranges(lkd_fmt_block_t *blocks, size_t n, const uintptr_t (*ranges)[2],
                               size_t count)
{
    given_t g = {ranges, count};
    if (n)
        classify(blocks, n, scan_given, &g);
}
