/*
 * writer - gathers a consistent copy of the tracker's state and writes it to a file.
 *
 * Invariants:
 * - The live table is frozen only while its blocks are copied; stacks, modules, encoding
 *   and I/O happen after the locks are released.
 * - Only stacks that live blocks use are written, renumbered densely in address order.
 * - A failed write removes its temp file and warns once per reason; the program goes on.
 * Never calls the tracked malloc (arena only), never uses stdio or strerror (locale).
 */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h> /* renameat only; no stdio streams are used */
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "estimate.h"
#include "log.h"
#include "modules.h"
#include "reach.h"
#include "snapfile.h"
#include "stack.h"
#include "table.h"

#define ARGS_MAX (64 * 1024)
#define LABEL_MAX 64

static char *args; /* /proc/self/cmdline: NUL-separated */
static size_t args_len;
static uint32_t argc;
static char cwd[4096];
static uint64_t start_mono_ns;
static atomic_uint seq;
static atomic_int last_warned_errno;
static bool make_dirs(const char *dir);
static int fd_high(int fd);
/* One snapshot at a time (API, writer thread, exit); also held across fork. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* lkd_writer_init - reads argv and cwd once (guard held, so read/getcwd are safe). */
void lkd_writer_init(void)
{
    start_mono_ns = now_ns(CLOCK_MONOTONIC);
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || !(args = lkd_arena_alloc(ARGS_MAX))) {
        if (fd >= 0)
            close(fd);
        return;
    }
    ssize_t n;
    while (args_len < ARGS_MAX - 1 &&
           (n = read(fd, args + args_len, ARGS_MAX - 1 - args_len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        args_len += (size_t)n;
    }
    close(fd);
    if (args_len && args[args_len - 1] != '\0')
        args[args_len++] = '\0'; /* truncated argument list */
    for (size_t i = 0; i < args_len; i++)
        argc += args[i] == '\0';
}

/* lkd_writer_prepare - creates the output directory at start-up, so that `leakdiff snap`
 * can leave a request there before the first snapshot. Silent: a failure is reported
 * once, by the first snapshot that cannot be written. */
void lkd_writer_prepare(void)
{
    make_dirs(lkd_config.output);
    /* Grows the descriptor table to where fd_high puts our descriptors now, while the
     * process is single-threaded: growing it later, in a multi-threaded process, took
     * 9-19 ms (strace -T), a fixed cost every traced process paid at its first snapshot. */
    int fd = fd_high(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd >= 0)
        close(fd);
}

/* lkd_writer_forked - the child of a fork numbers its snapshots from 1 again. */
void lkd_writer_forked(void)
{
    atomic_store(&seq, 0);
}

/* Copies s into a file-name-safe form: [A-Za-z0-9._-], others become '_'; never empty,
 * never "." or "..", at most max - 1 characters. */
static void sanitize(char *out, size_t max, const char *s)
{
    size_t n = 0;
    if (!s)
        s = "";
    for (; *s && n + 1 < max; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_';
        out[n++] = ok ? c : '_';
    }
    out[n] = '\0';
    if (n == 0 || !strcmp(out, ".") || !strcmp(out, ".."))
        strcpy(out, "snapshot");
    if (out[0] == '.')
        out[0] = '_';
}

/* mkdir -p; true when dir exists as a directory afterwards. */
static bool make_dirs(const char *dir)
{
    char path[sizeof lkd_config.output];
    size_t len = strlen(dir);
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return false;
        path[i] = saved;
    }
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

static void warn_errno(const char *what, int err)
{
    if (atomic_exchange(&last_warned_errno, err) == err)
        return;
    const char *name = strerrorname_np(err);
    lkd_log_warn("cannot write snapshot %s: %s (errno %d); the program continues", what,
                 name ? name : "error", err);
}

/* A growable string table in the arena. */
typedef struct strtab {
    char *buf;
    size_t len, cap;
} strtab_t;

static uint32_t strtab_add(strtab_t *t, const char *s, size_t len)
{
    if (t->len + len + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 4096) + len + 1;
        char *buf = lkd_arena_realloc(t->buf, t->cap, cap);
        if (!buf)
            return 0; /* offset 0 is the empty string */
        t->buf = buf;
        t->cap = cap;
    }
    uint32_t off = (uint32_t)t->len;
    memcpy(t->buf + t->len, s, len);
    t->buf[t->len + len] = '\0';
    t->len += len + 1;
    return off;
}

/* Everything a snapshot owns while it is built; released by gather_free. */
typedef struct gathered {
    lkd_snapfile_input_t in;
    lkd_fmt_block_t *blocks;
    size_t blocks_cap;
    uint32_t *remap; /* old stack id -> new id + 1 */
    uint32_t remap_n;
    uint32_t *depths;
    uint64_t *offsets; /* new stack id -> index of its first frame */
    uint64_t *frames;
    size_t frames_cap;
    lkd_fmt_stack_stat_t *stats;
    uint64_t bytes; /* of the blocks copied, summed while their stacks are renumbered */
    lkd_fmt_module_t *modules;
    size_t modules_cap;
    strtab_t strings;
} gathered_t;

static void gather_free(gathered_t *g)
{
    lkd_arena_free(g->blocks, g->blocks_cap * sizeof *g->blocks);
    lkd_arena_free(g->remap, (size_t)g->remap_n * sizeof *g->remap);
    lkd_arena_free(g->depths, (size_t)g->remap_n * sizeof *g->depths);
    lkd_arena_free(g->stats, (size_t)g->remap_n * sizeof *g->stats);
    lkd_arena_free(g->offsets, (size_t)g->remap_n * sizeof *g->offsets);
    lkd_arena_free(g->frames, g->frames_cap * sizeof *g->frames);
    lkd_arena_free(g->modules, g->modules_cap * sizeof *g->modules);
    lkd_arena_free(g->strings.buf, g->strings.cap);
}

/* Copies the live blocks under the table's locks. */
static int gather_blocks(gathered_t *g)
{
    lkd_table_lock_all();
    size_t n = lkd_table_count();
    g->blocks_cap = n ? n : 1;
    g->blocks = lkd_arena_alloc_filled(g->blocks_cap * sizeof *g->blocks);
    if (g->blocks)
        g->in.block_count = lkd_table_copy(g->blocks, n);
    lkd_table_unlock_all();
    g->in.blocks = g->blocks;
    return g->blocks ? 0 : -ENOMEM;
}

/* Renumbers the stacks that live blocks use (ids in order of first use), and sums live
 * bytes and blocks per stack. */
static int gather_stacks(gathered_t *g)
{
    g->remap_n = lkd_stack_count() + 1;
    g->remap = lkd_arena_alloc((size_t)g->remap_n * sizeof *g->remap);
    g->depths = lkd_arena_alloc((size_t)g->remap_n * sizeof *g->depths);
    g->stats = lkd_arena_alloc((size_t)g->remap_n * sizeof *g->stats);
    if (!g->remap || !g->depths || !g->stats)
        return -ENOMEM;
    uint32_t used = 0, depth;
    for (size_t i = 0; i < g->in.block_count; i++) {
        lkd_fmt_block_t *b = &g->blocks[i];
        if (b->stack >= g->remap_n)
            return -EINVAL;
        if (!g->remap[b->stack]) { /* a stack's first block: its record, once */
            if (!lkd_stack_frames(b->stack, &depth))
                return -EINVAL;
            g->remap[b->stack] = ++used;
            g->depths[used - 1] = depth;
            g->stats[used - 1].stack = used - 1;
            g->frames_cap += depth;
        }
        b->stack = g->remap[b->stack] - 1;
        g->stats[b->stack].bytes += b->size;
        g->stats[b->stack].blocks++;
        g->bytes += b->size;
    }
    g->frames_cap += 1; /* never a zero-sized allocation */
    g->offsets = lkd_arena_alloc((size_t)g->remap_n * sizeof *g->offsets); /* used < remap_n */
    g->frames = lkd_arena_alloc(g->frames_cap * sizeof *g->frames);
    if (!g->frames || !g->offsets)
        return -ENOMEM;
    for (uint32_t i = 0; i < used; i++)
        g->offsets[i + 1] = g->offsets[i] + g->depths[i];
    for (uint32_t old = 0; old < g->remap_n; old++) {
        if (!g->remap[old])
            continue;
        const uint64_t *fr = lkd_stack_frames(old, &depth);
        memcpy(g->frames + g->offsets[g->remap[old] - 1], fr, depth * sizeof *fr);
    }
    g->in.frames = g->frames;
    g->in.frame_count = g->offsets[used];
    g->in.stack_depths = g->depths;
    g->in.stack_count = used;
    g->in.stack_stats = g->stats;
    g->in.stack_stat_count = used;
    return 0;
}

/* The module map, with each path in the string table. */
static int gather_modules(gathered_t *g, uint64_t now_seq)
{
    const lkd_module_t *list = lkd_modules_refresh(now_seq);
    for (const lkd_module_t *m = list; m; m = m->next)
        g->modules_cap++;
    g->modules_cap += 1;
    g->modules = lkd_arena_alloc(g->modules_cap * sizeof *g->modules);
    if (!g->modules)
        return -ENOMEM;
    size_t n = 0;
    for (const lkd_module_t *m = list; m && n < g->modules_cap; m = m->next) {
        lkd_fmt_module_t *r = &g->modules[n++];
        *r = m->rec;
        r->reserved = 0;
        r->path = strtab_add(&g->strings, m->path, strlen(m->path));
        if (lkd_stack_in_shim(r->start))
            r->flags |= LKD_FMT_MOD_TRACKER;
    }
    g->in.modules = g->modules;
    g->in.module_count = n;
    return 0;
}

/* Process facts; the string table's first entry is "" so that offset 0 means empty. */
static void gather_process(gathered_t *g, const char *label, uint32_t flags)
{
    lkd_fmt_process_t *p = &g->in.process;
    p->pid = (uint32_t)getpid();
    p->ppid = (uint32_t)getppid();
    p->seq = atomic_fetch_add(&seq, 1) + 1;
    p->depth = lkd_config.depth;
    p->flags = flags | (g->in.totals.lost_blocks ? LKD_FMT_F_TRUNCATED : 0) |
               (lkd_config.sample ? LKD_FMT_F_SAMPLED : 0);
    p->unwind = (uint32_t)lkd_config.unwind;
    p->sample_rate = lkd_config.sample;
    p->wall_ns = now_ns(CLOCK_REALTIME);
    p->mono_ns = now_ns(CLOCK_MONOTONIC);
    p->start_mono_ns = start_mono_ns;
    p->exe = strtab_add(&g->strings, lkd_modules_exe(), strlen(lkd_modules_exe()));
    p->label = strtab_add(&g->strings, label, strlen(label));
    p->cwd = strtab_add(&g->strings, cwd, strlen(cwd));
    p->argc = argc;
    p->argv = args_len ? strtab_add(&g->strings, args, args_len - 1) : 0;
}

/* Live bytes and blocks from the copy of the table (stacks renumbered). In sampled mode the
 * estimates of the whole heap: each block counts as the bytes and blocks it stands for
 * (estimate.h), summed per stack in address order and rounded per stack, exactly as the
 * analyzer sums them, so that a report's groups add up to these totals. 0 or -ENOMEM. */
static int live_totals(gathered_t *g)
{
    lkd_fmt_totals_t *t = &g->in.totals;
    uint64_t rate = lkd_config.sample;
    size_t n = 2 * (g->in.stack_count ? g->in.stack_count : 1);
    t->blocks = rate ? 0 : g->in.block_count;
    t->bytes = rate ? 0 : g->bytes;
    if (!rate)
        return 0;
    double *sum = lkd_arena_alloc(n * sizeof *sum);
    if (!sum)
        return -ENOMEM;
    for (size_t i = 0; i < g->in.block_count; i++) {
        const lkd_fmt_block_t *b = &g->blocks[i];
        sum[2 * b->stack] += lkd_estimate_bytes(b->size, rate);
        sum[2 * b->stack + 1] += lkd_estimate_blocks(b->size, rate);
    }
    for (size_t i = 0; i < n; i += 2) {
        t->bytes += lkd_estimate_round(sum[i]);
        t->blocks += lkd_estimate_round(sum[i + 1]);
    }
    lkd_arena_free(sum, n * sizeof *sum);
    return 0;
}

static int gather(gathered_t *g, const char *label, uint32_t flags, const lkd_fmt_totals_t *totals)
{
    g->in.totals = *totals;
    strtab_add(&g->strings, "", 0);
    int err = gather_blocks(g);
    if (lkd_reach_stopped()) { /* the exit snapshot: blocks copied with the world stopped */
        if (!err) {
            lkd_reach_classify(g->blocks, g->in.block_count);
            flags |= LKD_FMT_F_REACHABILITY;
        }
        lkd_reach_resume();
    }
    if (!err)
        err = gather_stacks(g);
    if (!err)
        err = gather_modules(g, g->in.totals.birth_next);
    if (!err)
        err = live_totals(g);
    if (err)
        return err;
    lkd_fmt_totals_t *t = &g->in.totals;
    if (t->peak_bytes < t->bytes)
        t->peak_bytes = t->bytes;
    gather_process(g, label, flags);
    g->in.strings = g->strings.buf;
    g->in.strings_len = g->strings.len;
    g->in.zstd_level = 1;
    return g->strings.buf ? 0 : -ENOMEM;
}

static void *mem_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return lkd_arena_alloc(size);
}

static void mem_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    lkd_arena_free(ptr, size);
}

/* Moves a descriptor of ours away from the low numbers. A program may close 0-2 or any fd
 * it believes free and dup2 its own file onto that number while a snapshot is written (CPython's
 * test_subprocess does, with stdout): the snapshot's bytes would then land in the program's
 * file. Numbers this high are out of the way of open() and of such dup2 calls. */
static int fd_high(int fd)
{
    struct rlimit lim;
    if (fd < 0 || getrlimit(RLIMIT_NOFILE, &lim) < 0)
        return fd;
    rlim_t base = lim.rlim_cur > 1024 ? 1000 : lim.rlim_cur / 2;
    if (base <= 3 || (rlim_t)fd >= base)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)base);
    if (high < 0)
        return fd;
    close(fd);
    return high;
}

/* Writes the encoded snapshot to dir/name through a temp file; 0 or -errno. */
static int write_file(const char *name, const lkd_snapfile_input_t *in)
{
    static const lkd_snapfile_mem_t mem = {mem_alloc, mem_free, NULL};
    char tmp[LABEL_MAX * 2 + 4096];
    lkd_log_format(tmp, sizeof tmp, ".%s.tmp", name);
    if (!make_dirs(lkd_config.output))
        return -errno ? -errno : -ENOTDIR;
    int dir = fd_high(open(lkd_config.output, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir < 0)
        return -errno;
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST && unlinkat(dir, tmp, 0) == 0) /* left by a dead process */
        fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int err = fd < 0 ? -errno : 0;
    fd = fd_high(fd);
    if (!err)
        err = lkd_snapfile_write(fd, in, &mem);
    if (!err && fsync(fd) < 0 && errno != EINVAL)
        err = -errno;
    if (fd >= 0 && close(fd) < 0 && !err)
        err = -errno;
    if (!err && renameat(dir, tmp, dir, name) < 0)
        err = -errno;
    if (err && fd >= 0)
        unlinkat(dir, tmp, 0);
    close(dir);
    return err;
}

/* Takes the write lock once no other thread has the world stopped. The exit snapshot
 * stops the other threads but this one (the writer), and takes the write lock only after:
 * a snapshot the writer started in between would take the exit snapshot's place in
 * classifying the blocks and letting the world go, or block for good on a lock a stopped
 * thread holds (the loader's, in dl_iterate_phdr). Meanwhile the writer may lend the scan
 * a hand. */
static void lock_unless_stopped(void)
{
    for (;;) {
        pthread_mutex_lock(&write_lock);
        if (!lkd_reach_stopped_by_other())
            return;
        pthread_mutex_unlock(&write_lock);
        while (lkd_reach_stopped_by_other()) {
            lkd_reach_lend_a_hand();
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
    }
}

/* lkd_writer_write - writes <exe>.<pid>.<seq>.<label>.snap; 0 or -errno. Guard held.
 * totals: the tracker's counters; live bytes and blocks are recomputed from the copy. */
int lkd_writer_write(const char *label, uint32_t flags, const lkd_fmt_totals_t *totals)
{
    gathered_t g = {0};
    char safe_label[LABEL_MAX], exe[256], name[LABEL_MAX + 256 + 64];
    lock_unless_stopped();
    const char *base = strrchr(lkd_modules_exe(), '/');
    sanitize(exe, sizeof exe, base ? base + 1 : lkd_modules_exe());
    sanitize(safe_label, sizeof safe_label, label);
    int err = gather(&g, safe_label, flags, totals);
    if (!err) {
        lkd_log_format(name, sizeof name, "%s.%u.%04u.%s.snap", exe, g.in.process.pid,
                       g.in.process.seq, safe_label);
        err = write_file(name, &g.in);
    }
    if (err)
        warn_errno(err == -ENOMEM ? "(out of memory)" : lkd_config.output, -err);
    gather_free(&g);
    pthread_mutex_unlock(&write_lock);
    return err;
}

/* lkd_writer_lock - held across fork, so no snapshot is half written in the child. */
void lkd_writer_lock(void)
{
    pthread_mutex_lock(&write_lock);
}

/* lkd_writer_unlock - releases lkd_writer_lock. */
void lkd_writer_unlock(void)
{
    pthread_mutex_unlock(&write_lock);
}
