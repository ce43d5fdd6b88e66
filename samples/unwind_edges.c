/* unwind_edges: keeps one block from each place a stack is hard to walk, for the default
 * mode's unwinder (preload/cfi.c) and the cases it leaves to libunwind.
 *
 * Built with -O2 -fomit-frame-pointer (see the Makefile), as most distribution code is, so
 * that frames are found through the unwind tables, not through rbp:
 *   - plain frames whose CFA is rsp-based (leaf <- middle <- outer <- main);
 *   - a frame whose CFA is rbp-based (alloca: the frame's size is not known at compile time);
 *   - a recursion 100 deep, deeper than LEAKDIFF_DEPTH's 64 frames;
 *   - a signal handler (the kernel's signal frame: libunwind's case);
 *   - a handler on an alternate signal stack (off the thread's stack: libunwind's case);
 *   - a context made with makecontext, on a stack of its own (libunwind's case);
 *   - another thread (glibc keeps its TLS vector, allocate_dtv's block, after the join);
 *   - one call instruction reaching malloc once through a function with a frame and once
 *     directly (a call through a pointer): the second stack is the first one's outer part.
 * Every block stays reachable from `kept`: no leaks. tests/e2e/test_process.py reads the
 * tracebacks; the check build compares every stack with libunwind's (tests/e2e).
 *
 * EXPECT total bytes=992 blocks=10
 * EXPECT site function=leaf bytes=16 blocks=1
 * EXPECT site function=with_alloca bytes=32 blocks=1
 * EXPECT site function=deep bytes=48 blocks=1
 * EXPECT site function=on_usr1 bytes=64 blocks=1
 * EXPECT site function=on_usr2 bytes=80 blocks=1
 * EXPECT site function=in_context bytes=96 blocks=1
 * EXPECT site function=in_thread bytes=112 blocks=1
 * EXPECT site function=wrapper bytes=128 blocks=1
 * EXPECT site function=by_pointer bytes=144 blocks=1
 * EXPECT site function=allocate_dtv bytes=272 blocks=1
 * EXPECT other bytes=0 blocks=0
 */
#include <alloca.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#define SITE __attribute__((noipa))
/* After a call: keeps it from being a tail call, so that its caller's frame stays. */
#define NO_TAIL_CALL() __asm__ volatile("" ::: "memory")

void *volatile kept[10];

SITE static void leaf(void)
{
    kept[0] = malloc(16);
}

SITE static void middle(void)
{
    leaf();
    NO_TAIL_CALL();
}

SITE static void outer(void)
{
    middle();
    NO_TAIL_CALL();
}

SITE static void with_alloca(size_t n)
{
    char *buf = alloca(n);
    memset(buf, 1, n);
    kept[1] = malloc(32);
    buf[0] = (char)(uintptr_t)kept[1];
}

SITE static int deep(int n)
{
    volatile int here = n; /* a frame per call: no loop made of the recursion */
    if (n == 0) {
        kept[2] = malloc(48);
        return 0;
    }
    return deep(n - 1) + here;
}

SITE static void on_usr1(int sig)
{
    (void)sig;
    kept[3] = malloc(64);
}

SITE static void on_usr2(int sig)
{
    (void)sig;
    kept[4] = malloc(80);
}

SITE static void in_context(void)
{
    kept[5] = malloc(96);
}

SITE static void *in_thread(void *arg)
{
    (void)arg;
    kept[6] = malloc(112);
    return NULL;
}

SITE static void *wrapper(size_t n)
{
    void *p = malloc(n);
    NO_TAIL_CALL();
    return p;
}

static void *(*volatile allocate)(size_t);

SITE static void by_pointer(int i, size_t n)
{
    kept[i] = allocate(n);
}

int main(void)
{
    static volatile int twice = 2; /* not unrolled: one call of main's, one by_pointer frame */
    for (int i = 0; i < twice; i++) {
        allocate = i ? malloc : wrapper;
        by_pointer(7 + i, 128 + 16 * (size_t)i);
    }

    outer();
    with_alloca(200);
    deep(100);

    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);

    static char alt[1 << 16];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    struct sigaction sa = {.sa_handler = on_usr2, .sa_flags = SA_ONSTACK};
    sigaltstack(&ss, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);

    static char context_stack[1 << 16];
    static ucontext_t main_ctx, ctx;
    getcontext(&ctx);
    ctx.uc_stack.ss_sp = context_stack;
    ctx.uc_stack.ss_size = sizeof context_stack;
    ctx.uc_link = &main_ctx;
    makecontext(&ctx, in_context, 0);
    swapcontext(&main_ctx, &ctx);

    pthread_t t;
    pthread_create(&t, NULL, in_thread, NULL);
    pthread_join(t, NULL);
    return 0;
}
