/*
 * intercept - the malloc-family entry points the target's calls bind to.
 *
 * Each hook is: gate (guard and state) -> real call -> record. No hashing, unwinding or
 * I/O here; track.c does the work out of line. A free is recorded before the real free
 * and an allocation only once it succeeded; a failed realloc puts the old record back.
 * valloc, pvalloc and the aligned functions are hooked because glibc does not route them
 * through malloc; reallocarray is implemented here on top of realloc, because glibc's own
 * calls realloc through the PLT and would be counted twice. In sampled mode (sample.h)
 * malloc and calloc ask the sampler before anything else (an allocation it passes over is a
 * tail call to glibc), the other functions once the allocation succeeded; a free skips the
 * tracker for blocks the sampler's filter knows were never recorded; a realloc is a free of
 * the old block and an allocation of the new size, sampled afresh.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cfi.h"
#include "control.h"
#include "reach.h"
#include "real.h"
#include "sample.h"
#include "track.h"

#define HOOK __attribute__((visibility("default")))

/* The hook's own frame, where the stack walk starts (track.h): the walk then does not go
 * through the tracker's frames to find the program's. Used in the hooks, or in functions
 * always inlined into them. */
#define HOOK_FRAME ((uintptr_t)__builtin_frame_address(0))

/* Records p unless sampling (LEAKDIFF_SAMPLE, sample.h) passes it over: for the functions
 * other than malloc and calloc, the sampler is asked once the allocation succeeded. */
static inline __attribute__((always_inline)) void *record(void *p, size_t size)
{
    if (__builtin_expect(p != NULL, 1) && lkd_sample_pick(size))
        lkd_track_alloc(p, size, 0, HOOK_FRAME);
    return p;
}

/* malloc and calloc ask the sampler first, so that an allocation it passes over is a tail
 * call to the real one (a failed allocation it picked is simply not recorded). */
HOOK void *malloc(size_t size)
{
    if (lkd_sample_skip(size) || !lkd_track_enter())
        return lkd_real_malloc(size);
    void *p = lkd_real_malloc(size);
    if (__builtin_expect(p != NULL, 1))
        lkd_track_alloc(p, size, 0, HOOK_FRAME);
    return p;
}

/* Sampled, the filter check comes first: most blocks were never recorded. */
HOOK void free(void *ptr)
{
    if (ptr && lkd_sample_may_hold(ptr) && lkd_track_enter())
        lkd_track_free(ptr);
    lkd_real_free(ptr);
}

HOOK void *calloc(size_t n, size_t size)
{
    /* n * size may wrap only when calloc is bound to fail: then nothing is recorded */
    if (lkd_sample_skip(n * size) || !lkd_track_enter())
        return lkd_real_calloc(n, size);
    void *p = lkd_real_calloc(n, size);
    if (p) /* n * size cannot overflow: calloc would have failed */
        lkd_track_alloc(p, n * size, size, HOOK_FRAME);
    return p;
}

HOOK void *realloc(void *ptr, size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_realloc(ptr, size);
    if (!ptr)
        return record(lkd_real_realloc(NULL, size), size);
    lkd_block_t old;
    bool had = lkd_sample_may_hold(ptr) && lkd_track_take(ptr, &old);
    void *p = lkd_real_realloc(ptr, size);
    if (!p && size) { /* failed: the old block is still the program's */
        if (had)
            lkd_track_restore(ptr, &old);
        return NULL;
    }
    return record(p, size); /* realloc(p, 0) freed p and returned NULL (glibc) */
}

HOOK void *reallocarray(void *ptr, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(ptr, total);
}

HOOK void *memalign(size_t alignment, size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_memalign(alignment, size);
    return record(lkd_real_memalign(alignment, size), size);
}

HOOK void *aligned_alloc(size_t alignment, size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_aligned_alloc(alignment, size);
    return record(lkd_real_aligned_alloc(alignment, size), size);
}

HOOK int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_posix_memalign(out, alignment, size);
    int err = lkd_real_posix_memalign(out, alignment, size);
    if (!err)
        record(*out, size);
    return err;
}

HOOK void *valloc(size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_valloc(size);
    return record(lkd_real_valloc(size), size);
}

/* pvalloc gives whole pages, but like every hook it records the size the program asked
 * for, as valgrind does, so figures compare one to one. */
HOOK void *pvalloc(size_t size)
{
    if (!lkd_track_enter())
        return lkd_real_pvalloc(size);
    return record(lkd_real_pvalloc(size), size);
}

/* dlclose: the module map is brought up to date first, so a library that is about to be
 * unloaded is in it (with its path, bias and build-id) and its blocks still symbolize; the
 * unwinder's rules are forgotten after, as another module may come to those addresses. */
HOOK int dlclose(void *handle)
{
    static int (*real_dlclose)(void *);
    if (!real_dlclose)
        *(void **)&real_dlclose = dlsym(RTLD_NEXT, "dlclose");
    bool ready = atomic_load(&lkd_state) == LKD_ST_READY;
    if (ready)
        lkd_track_before_dlclose();
    int rc = real_dlclose ? real_dlclose(handle) : -1;
    if (ready)
        lkd_cfi_forget();
    return rc;
}

/* sigaction and signal: the program may take over the request signal (LEAKDIFF_SIGNAL)
 * after the shim installed its handler; the shim then stops advertising it (control.c).
 * glibc's own callers use __sigaction, which is not interposed. */
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

HOOK int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    int rc = __sigaction(sig, act, old);
    if (rc == 0 && act)
        lkd_control_signal_set(sig, act);
    return rc;
}

/* glibc's signal is this very function (same address, BSD semantics, siginterrupt honoured). */
extern sighandler_t bsd_signal(int sig, sighandler_t handler);

HOOK sighandler_t signal(int sig, sighandler_t handler)
{
    sighandler_t old = bsd_signal(sig, handler);
    struct sigaction now;
    if (old != SIG_ERR && __sigaction(sig, NULL, &now) == 0)
        lkd_control_signal_set(sig, &now);
    return old;
}

/* pthread_exit: when main() leaves this way, the process must still end with its last
 * thread, which the shim's writer thread would otherwise outlive (see control.c). */
HOOK void pthread_exit(void *ret)
{
    static void (*real_exit)(void *);
    if (!real_exit)
        *(void **)&real_exit = dlsym(RTLD_NEXT, "pthread_exit");
    if (getpid() == gettid() && atomic_load(&lkd_state) == LKD_ST_READY)
        lkd_control_main_exited();
    real_exit(ret);
    __builtin_unreachable();
}

#if defined(__x86_64__)
/*
 * libunwind's memory check without file descriptors. To learn whether an address is
 * readable, libunwind writes one byte from it into a pipe it opened at start-up, with
 * syscall(SYS_write, ...). Two descriptors the program never opened break programs that
 * count theirs (CPython's test_subprocess does), and a program that closes every fd and
 * reuses the numbers would have libunwind read and write its files. So while the shim is at
 * work, pipe2 hands libunwind two descriptor numbers no call will ever accept, and the one-byte
 * write libunwind makes to the second is answered here by reading the byte with
 * process_vm_readv, which fails with EFAULT exactly where the write would have. The read
 * libunwind does on the first fails with EBADF; libunwind then asks pipe2 again, which is
 * cheap. Everyone else's pipe2 and syscall go straight
 * to the kernel, as glibc's would.
 */
enum { FAKE_READ_FD = -1000, FAKE_WRITE_FD = -1001 };

static long raw_syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}

/* The answer libunwind's one-byte write would have given: 1, or -1 with EFAULT. */
static long probe_readable(long addr)
{
    char byte;
    struct iovec local = {&byte, 1}, remote = {(void *)addr, 1};
    /* This thread's id, not the pid: once main() has pthread_exit'ed, the pid names a zombie
     * whose memory can no longer be read. */
    long self = raw_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
    long n = raw_syscall6(SYS_process_vm_readv, self, (long)&local, 1, (long)&remote, 1, 0);
    if (n != 1)
        errno = EFAULT;
    return n == 1 ? 1 : -1;
}

HOOK long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    /* fd and count come as int varargs: their upper halves are undefined */
    if (nr == SYS_write && (int)a == FAKE_WRITE_FD && (int)c == 1)
        return probe_readable(b);
    return raw_syscall6(nr, a, b, c, d, e, f);
}

/* kill: a program that ends itself with a signal never reaches the destructor that writes
 * the exit snapshot, so it is written first (track.c decides whether sig ends us). */
HOOK int kill(pid_t pid, int sig)
{
    if (pid > 0 && pid == getpid())
        lkd_track_before_self_kill(sig);
    return (int)raw_syscall6(SYS_kill, pid, sig, 0, 0, 0, 0);
}

/* exit and main's return: where the program leaves, for the reachability scan (reach.h).
 * __libc_start_main is interposed so that main() returns into a frame of ours, which then
 * calls exit itself: the frames main and its callees used are then below the recorded
 * stack pointer, and stale pointers there keep nothing alive (as for valgrind, which
 * scans a stack from its pointer). */
__attribute__((noinline)) static void note_exit(uintptr_t caller_sp)
{
    jmp_buf regs; /* rbx, rbp, r12-r15 (sp, bp and pc mangled: harmless) */
    setjmp(regs);
    lkd_reach_exit_from(caller_sp, regs, sizeof regs);
}

HOOK void exit(int status)
{
    static void (*real_exit)(int);
    if (!real_exit)
        *(void **)&real_exit = dlsym(RTLD_NEXT, "exit");
    /* above exit's frame (saved frame pointer, return address): the caller's */
    note_exit((uintptr_t)__builtin_frame_address(0) + 16);
    real_exit(status);
    __builtin_unreachable();
}

typedef int main_fn(int, char **, char **);
int __libc_start_main(main_fn *main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end);
static main_fn *program_main;

static int main_then_exit(int argc, char **argv, char **envp)
{
    int status = program_main(argc, argv, envp);
    exit(status);
}

HOOK int __libc_start_main(main_fn *main, int argc, char **argv, void (*init)(void),
                           void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
    int (*real)(main_fn *, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);
    *(void **)&real = dlsym(RTLD_NEXT, "__libc_start_main");
    program_main = main;
    return real(main_then_exit, argc, argv, init, fini, rtld_fini, stack_end);
}

HOOK int pipe2(int fds[2], int flags)
{
    if (lkd_guard) {
        fds[0] = FAKE_READ_FD;
        fds[1] = FAKE_WRITE_FD;
        return 0;
    }
    return (int)raw_syscall6(SYS_pipe2, (long)fds, flags, 0, 0, 0, 0);
}
#endif
