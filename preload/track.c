/*
 * track - recording, totals and lifecycle of the shim.
 *
 * Invariants:
 * - A block is removed from the table before the real free/realloc (another thread may
 *   get the address back at once), and recorded only after the real call succeeded.
 * - Counters are relaxed atomics on one cache line; the snapshot recomputes live bytes and
 *   blocks from its consistent copy of the table, so they need not be exact at any instant.
 * - Internal failure never takes the host down: warn once, mark the data truncated, go on.
 * - Sampled mode (LEAKDIFF_SAMPLE): the hooks record only what the sampler picks (sample.h);
 *   live, peak and total bytes count each recorded block as the bytes it stands for
 *   (estimate.h), allocation and free counts are of recorded blocks, and frees of pointers
 *   never recorded are not unknown frees.
 * Never calls the tracked malloc; never frees its own memory (not even at exit).
 */
#include "track.h"

#include <link.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <time.h>

#include <string.h>

#include "arena.h"
#include "cfi.h"
#include "config.h"
#include "control.h"
#include "estimate.h"
#include "log.h"
#include "modules.h"
#include "reach.h"
#include "sample.h"
#include "writer.h"
#include "stack.h"
#include "table.h"
#include "thread.h"

__thread int lkd_guard __attribute__((tls_model("initial-exec")));
atomic_int lkd_state = LKD_ST_UNINIT;

static atomic_uint_fast64_t lost;
static atomic_bool recording = true;
static atomic_bool lost_warned;

/* The loader sizes each thread's DTV (dynamic thread vector) as calloc(n, 16) with one
 * slot per module that has TLS. The shim and libunwind have TLS, so every thread's DTV is
 * tracker_tls * 16 bytes larger than without the tracker: an observer effect. Such blocks
 * are recorded at the size they would have without it, so figures match a run without
 * leakdiff (and valgrind's) exactly. */
#define DTV_SLOT 16
static uintptr_t loader_start, loader_end;
static unsigned tracker_tls;

/* lkd_track_lost - counts a block the tracker failed to record; warns once. */
void lkd_track_lost(const char *why)
{
    atomic_fetch_add_explicit(&lost, 1, memory_order_relaxed);
    if (!atomic_exchange(&lost_warned, true))
        lkd_log_warn("%s; snapshots of this process will be marked truncated", why);
}

/* Bytes a recorded block of size bytes counts for in the live and cumulative byte counters:
 * its size, or in sampled mode the bytes it stands for (estimate.h), so that current, peak
 * and total bytes estimate the whole heap. */
static inline int64_t weight(uint64_t size)
{
    if (__builtin_expect(!lkd_config.sample, 1))
        return (int64_t)size;
    return (int64_t)lkd_estimate_round(lkd_estimate_bytes(size, lkd_config.sample));
}

/* Puts a record in the table and accounts for it (and, sampled, in the free filter: a
 * replaced record at the same address is already counted there). Inlined: on the hot path,
 * each call of the tracker's own cost ~10 instructions of saving and restoring registers. */
static inline __attribute__((always_inline)) void insert(lkd_thread_t *t, void *ptr,
                                                         const lkd_block_t *b)
{
    lkd_block_t stale;
    bool replaced;
    if (!lkd_table_insert((uintptr_t)ptr, b, &stale, &replaced)) {
        lkd_track_lost("out of memory for the live-block table");
        return;
    }
    if (lkd_config.sample && !replaced)
        lkd_sample_added((uintptr_t)ptr);
    lkd_thread_bytes(t, weight(b->size) - (replaced ? weight(stale.size) : 0));
}

/* The calling thread's counters, registering it (which may allocate) under the guard. */
static lkd_thread_t *self(void)
{
    lkd_thread_t *t = lkd_thread_self;
    if (__builtin_expect(t != NULL, 1))
        return t;
    int saved = lkd_guard;
    lkd_guard = 1;
    t = lkd_thread_get_slow();
    lkd_guard = saved;
    return t;
}

/* lkd_track_alloc - captures the stack from the hook's frame fp and records ptr; guard set
 * while it works. elem is the element size for calloc (0 otherwise), to recognise the
 * loader's DTVs. */
void lkd_track_alloc(void *ptr, size_t size, size_t elem, uintptr_t fp)
{
    if (__builtin_expect(!atomic_load_explicit(&recording, memory_order_relaxed), 0))
        return; /* stopped: new blocks are not recorded, frees still are */
    lkd_thread_t *t = self();
    lkd_guard = 1;
    lkd_table_prefetch((uintptr_t)ptr); /* a likely cache miss, loaded while the stack is */
    uint64_t inner;
    uint32_t id = lkd_stack_capture_id(t ? &t->stack : NULL, lkd_config.depth, fp, &inner);
    if (__builtin_expect(elem == DTV_SLOT, 0) && inner >= loader_start && inner < loader_end &&
        size >= tracker_tls * DTV_SLOT)
        size -= tracker_tls * DTV_SLOT;
    if (__builtin_expect(id == LKD_STACK_NONE || !t, 0)) {
        lkd_track_lost("out of memory for the stack table");
    } else {
        lkd_block_t b = {size, lkd_thread_birth(t), id};
        lkd_thread_count_add(&t->allocs, 1);
        lkd_thread_count_add(&t->total_bytes, (uint64_t)weight(size));
        insert(t, ptr, &b);
    }
    lkd_guard = 0;
}

/* Removes ptr's record into *out; true when ptr was recorded. A pointer never recorded
 * counts as an unknown free, except in sampled mode, where most are. */
static inline __attribute__((always_inline)) bool take(void *ptr, lkd_block_t *out)
{
    lkd_thread_t *t = self();
    bool found = lkd_table_remove((uintptr_t)ptr, out);
    if (found && lkd_config.sample)
        lkd_sample_removed((uintptr_t)ptr);
    if (!t)
        return found;
    if (!found) {
        if (!lkd_config.sample)
            lkd_thread_count_add(&t->unknown_frees, 1);
        return false;
    }
    lkd_thread_bytes(t, -weight(out->size));
    lkd_thread_count_add(&t->frees, 1);
    return true;
}

/* lkd_track_take - see take. */
bool lkd_track_take(void *ptr, lkd_block_t *out)
{
    return take(ptr, out);
}

/* lkd_track_free - forgets ptr (before the real free). */
void lkd_track_free(void *ptr)
{
    lkd_block_t b;
    take(ptr, &b);
}

/* lkd_track_restore - puts back a record taken for a realloc that failed. */
void lkd_track_restore(void *ptr, const lkd_block_t *b)
{
    lkd_thread_t *t = self();
    if (!t) {
        lkd_track_lost("out of memory for thread counters");
        return;
    }
    lkd_thread_count_add(&t->frees, (uint64_t)-1);
    insert(t, ptr, b);
}

/* lkd_track_totals - counters as of now, and a new birth epoch: every allocation after
 * this call gets a birth >= t->birth_next. Bytes and blocks are the snapshot's to fill. */
void lkd_track_totals(lkd_fmt_totals_t *t)
{
    lkd_thread_totals(t);
    t->birth_next = lkd_thread_new_epoch();
    t->lost_blocks = atomic_load_explicit(&lost, memory_order_relaxed);
    t->tracker_bytes = lkd_arena_mapped();
}

/* lkd_track_set_recording - leakdiff_start()/leakdiff_stop(), LEAKDIFF_START, signal. */
void lkd_track_set_recording(bool on)
{
    atomic_store(&recording, on);
}

/* lkd_track_recording - true while new allocations are recorded. */
bool lkd_track_recording(void)
{
    return atomic_load(&recording);
}

/* lkd_track_snapshot - writes a snapshot now, labelled label; 0 or -errno. Any thread
 * outside the hooks: the API, the writer thread, the exit destructor. */
int lkd_track_snapshot(const char *label, uint32_t flags)
{
    lkd_fmt_totals_t totals = {0};
    int saved = lkd_guard;
    lkd_guard = 1;
    lkd_track_totals(&totals);
    if (!atomic_load(&recording))
        flags |= LKD_FMT_F_PAUSED;
    int err = lkd_writer_write(label, flags, &totals);
    lkd_guard = saved;
    return err;
}

/* lkd_track_memory - traced bytes now and their peak (see leakdiff_traced_memory). */
void lkd_track_memory(uint64_t *current, uint64_t *peak)
{
    lkd_thread_memory(current, peak);
}

/* lkd_track_reset_peak - the peak restarts from the current traced bytes. */
void lkd_track_reset_peak(void)
{
    lkd_thread_reset_peak();
}

/* lkd_track_before_dlclose - see track.h. */
void lkd_track_before_dlclose(void)
{
    int saved = lkd_guard;
    lkd_guard = 1;
    lkd_fmt_totals_t t = {0};
    lkd_thread_totals(&t);
    lkd_modules_refresh(t.total_allocs + 1);
    lkd_guard = saved;
}

/* fork: hold every shim lock across fork so the child never inherits one mid-update
 * (order as in table.h), then release in both processes. */
static void fork_prepare(void)
{
    lkd_guard = 1;
    lkd_control_prepare_fork();
    lkd_writer_lock();
    lkd_table_lock_all();
    lkd_stack_lock();
    lkd_cfi_lock();
    lkd_thread_lock();
    lkd_arena_lock();
}

static void fork_parent(void)
{
    lkd_arena_unlock();
    lkd_thread_unlock();
    lkd_cfi_unlock();
    lkd_stack_unlock();
    lkd_table_unlock_all();
    lkd_writer_unlock();
    lkd_guard = 0;
}

/* The child is a new process with one thread: other threads' counter records are freed,
 * the snapshot sequence restarts, and the writer thread is started again. */
static void fork_child(void)
{
    lkd_thread_forked();
    lkd_sample_forked();
    fork_parent();
    lkd_guard = 1;
    lkd_writer_forked();
    lkd_control_forked();
    lkd_guard = 0;
}

/* Finds the loader's range and counts the TLS modules the tracker brought (the shim,
 * and libunwind with its dependencies, loaded by lkd_stack_init). */
static int count_tls(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    unsigned *n = ctx;
    if (info->dlpi_tls_modid)
        (*n)++;
    if (info->dlpi_addr && info->dlpi_addr == getauxval(AT_BASE)) {
        for (int i = 0; i < info->dlpi_phnum; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            uintptr_t s = info->dlpi_addr + ph->p_vaddr;
            if (ph->p_type != PT_LOAD)
                continue;
            loader_start = loader_start && loader_start < s ? loader_start : s;
            loader_end = s + ph->p_memsz > loader_end ? s + ph->p_memsz : loader_end;
        }
    }
    return 0;
}

static void stack_init_counting_tls(void)
{
    unsigned before = 0, after = 0;
    dl_iterate_phdr(count_tls, &before);
    lkd_stack_init(lkd_config.unwind);
    dl_iterate_phdr(count_tls, &after);
    tracker_tls = 1 + (after - before); /* 1: the shim's own guard and stack cache */
}

/* lkd_track_init - first-use initialisation; true when the tracker is ready. Safe to call
 * from the first hook (the guard lets the loader's and libunwind's allocations through). */
__attribute__((noinline, cold)) bool lkd_track_init(void)
{
    int expected = LKD_ST_UNINIT;
    if (!atomic_compare_exchange_strong(&lkd_state, &expected, LKD_ST_INIT))
        return expected == LKD_ST_READY;
    lkd_guard = 1;
    int state = LKD_ST_INERT;
    if (getauxval(AT_SECURE)) /* setuid/setgid: stay out of the way entirely */
        goto out;
    lkd_config_load();
    lkd_modules_init();
    if (!lkd_table_init()) {
        lkd_log_warn("cannot reserve memory for the live-block table; not tracing");
        goto out;
    }
    stack_init_counting_tls();
    lkd_thread_init();
    atomic_store(&recording, lkd_config.start);
    lkd_writer_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    state = LKD_ST_READY;
out:
    atomic_store_explicit(&lkd_state, state, memory_order_release);
    lkd_guard = 0;
    return state == LKD_ST_READY;
}

/* LEAKDIFF_CHILDREN=0: removes the shim from LD_PRELOAD in this process's environment, in
 * place (the strings only get shorter), so programs it execs are not traced. */
static void drop_from_preload(void)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0)
            continue;
        char *out = *e + 11, *in = out;
        while (*in) {
            size_t len = strcspn(in, ": ");
            bool ours = memmem(in, len, "libleakdiff.so", 14) != NULL;
            if (!ours) {
                if (out != *e + 11)
                    *out++ = ':';
                memmove(out, in, len);
                out += len;
            }
            in += len;
            in += *in != '\0';
        }
        *out = '\0';
    }
}

/* Work that must wait until libc is fully initialised: the writer thread and the signal
 * handler (lazy initialisation may run inside the loader's first malloc). */
__attribute__((constructor)) static void track_constructor(void)
{
    if (atomic_load(&lkd_state) == LKD_ST_UNINIT)
        lkd_track_init();
    if (atomic_load(&lkd_state) != LKD_ST_READY)
        return;
    lkd_guard = 1;
    if (!lkd_config.children)
        drop_from_preload();
    lkd_writer_prepare();
    lkd_control_start();
    lkd_guard = 0;
}

/* The exit snapshot, from the shim's ELF destructor: it runs in _dl_fini, after the
 * program's atexit handlers and C++ static destructors. The tracker's memory is left
 * mapped on purpose, since later destructors may still free blocks. */
static atomic_bool exit_written;

/* The exit snapshot, once, with reachability verdicts unless LEAKDIFF_REACHABILITY=0: the
 * other threads are stopped first, and let go once the blocks are classified. Not in
 * sampled mode: the scan follows pointers only through recorded blocks, so a recorded block
 * reachable only through unrecorded ones would be called a leak. That error is a bias, not
 * sampling noise that an estimate could average out, so a sampled exit snapshot has no
 * verdicts at all (its REACHABILITY flag is clear). */
static void exit_snapshot(void)
{
    if (atomic_exchange(&exit_written, true))
        return;
    lkd_guard = 1;
    if (lkd_config.reachability && !lkd_config.sample)
        lkd_reach_stop(lkd_control_writer_tid());
    lkd_track_snapshot("exit", LKD_FMT_F_EXIT);
    lkd_reach_resume();
    lkd_guard = 0;
}

__attribute__((destructor)) static void track_destructor(void)
{
    if (atomic_load(&lkd_state) != LKD_ST_READY || !lkd_config.at_exit || lkd_guard)
        return;
    exit_snapshot();
}

/* True when sig, sent to this process now, ends it: its disposition is the default, the
 * default terminates, and this thread does not block it. */
static bool ends_process(int sig)
{
    static const int survivable[] = {SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP,
                                     SIGTTIN, SIGTTOU, SIGURG,  SIGWINCH};
    struct sigaction now;
    sigset_t blocked;
    if (sig <= 0 || sig >= NSIG)
        return false;
    for (size_t i = 0; i < sizeof survivable / sizeof *survivable; i++)
        if (sig == survivable[i])
            return false;
    if (sig != SIGKILL && (sigaction(sig, NULL, &now) < 0 || (now.sa_flags & SA_SIGINFO) ||
                           now.sa_handler != SIG_DFL))
        return false;
    return pthread_sigmask(SIG_BLOCK, NULL, &blocked) == 0 &&
           (sig == SIGKILL || !sigismember(&blocked, sig));
}

/* lkd_track_before_self_kill - see track.h. */
void lkd_track_before_self_kill(int sig)
{
    if (atomic_load(&lkd_state) != LKD_ST_READY || !lkd_config.at_exit || lkd_guard ||
        !ends_process(sig))
        return;
    exit_snapshot();
}
