/*
 * control - signal-driven and periodic snapshots, written by a dedicated thread.
 *
 * Invariants:
 * - The handler is async-signal-safe: an atomic increment and a write(2) to an eventfd.
 * - Requests are counted, so several arriving while a snapshot is written are all served
 *   (each gets its own snapshot), never lost.
 * - The writer thread blocks all signals and keeps the guard set for its whole life, so
 *   its own allocations (libc, zstd) are never traced.
 * - The handler is installed only over the default disposition: a program that already
 *   handles the signal keeps it, and leakdiff says once that signal requests are off.
 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "track.h"

#define REQUEST_LABEL_MAX 256

static int wake_fd = -1;
static atomic_uint pending;
static bool handler_installed;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    uint64_t one = 1;
    atomic_fetch_add_explicit(&pending, 1, memory_order_relaxed);
    if (write(wake_fd, &one, sizeof one) < 0) {
        /* eventfd counter full: the writer is awake anyway */
    }
    errno = saved;
}

/* The label of a signal request: the first line of <output>/.leakdiff-request.<pid>
 * (written by `leakdiff snap --label`), which is then removed; "signal" without one. */
static void request_label(char *label, size_t size)
{
    char path[sizeof lkd_config.output + 64];
    lkd_log_format(path, sizeof path, "%s/.leakdiff-request.%d", lkd_config.output, (int)getpid());
    strcpy(label, "signal");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    ssize_t n = read(fd, label, size - 1);
    close(fd);
    unlink(path);
    if (n <= 0) {
        strcpy(label, "signal");
        return;
    }
    label[n] = '\0';
    label[strcspn(label, "\r\n")] = '\0';
}

static void serve_request(void)
{
    char label[REQUEST_LABEL_MAX];
    request_label(label, sizeof label);
    lkd_track_set_recording(true); /* LEAKDIFF_START=0: the signal begins tracing */
    lkd_track_snapshot(label, 0);
}

static uint64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

/* Waits for a request or the next interval tick; serves whatever came. Never returns. */
static void *writer_main(void *arg)
{
    (void)arg;
    lkd_guard = 1;
    uint64_t next_tick = lkd_config.interval ? now_s() + lkd_config.interval : 0;
    for (;;) {
        int timeout = -1;
        if (next_tick) {
            uint64_t now = now_s();
            timeout = next_tick > now ? (int)(next_tick - now) * 1000 : 0;
        }
        struct pollfd p = {wake_fd, POLLIN, 0};
        if (poll(&p, 1, timeout) > 0) {
            uint64_t count;
            if (read(wake_fd, &count, sizeof count) < 0 && errno != EAGAIN) {
                /* nothing to drain */
            }
        }
        while (atomic_load(&pending) > 0) {
            atomic_fetch_sub(&pending, 1);
            serve_request();
        }
        if (next_tick && now_s() >= next_tick) {
            lkd_track_snapshot("interval", 0);
            next_tick = now_s() + lkd_config.interval;
        }
    }
    return NULL;
}

/* Starts the writer with every signal blocked (the mask is inherited from the creator). */
static void start_writer(void)
{
    sigset_t all, old;
    pthread_t thread;
    pthread_attr_t attr;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int err = pthread_create(&thread, &attr, writer_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        lkd_log_warn("cannot start the snapshot writer thread (errno %d); signal and interval "
                     "snapshots are off",
                     err);
}

static void install_handler(void)
{
    struct sigaction sa, old;
    if (sigaction(lkd_config.signal, NULL, &old) < 0)
        return;
    if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) {
        lkd_log_warn("signal %d already has a handler in this program; snapshots on signal "
                     "are off (set LEAKDIFF_SIGNAL to another signal)",
                     lkd_config.signal);
        return;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    handler_installed = sigaction(lkd_config.signal, &sa, NULL) == 0;
}

/* lkd_control_start - see control.h. Guard held. */
void lkd_control_start(void)
{
    if (!lkd_config.signal && !lkd_config.interval)
        return;
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0) {
        lkd_log_warn("cannot create an eventfd (errno %d); signal and interval snapshots are off",
                     errno);
        return;
    }
    if (lkd_config.signal)
        install_handler();
    if (handler_installed || lkd_config.interval)
        start_writer();
}

/* lkd_control_forked - see control.h. Guard held. The child inherited the handler, but
 * its eventfd shares the parent's file description (either writer could take the other's
 * wake-up), so it gets a fresh one under the same descriptor number, then a new thread. */
void lkd_control_forked(void)
{
    atomic_store(&pending, 0);
    if (wake_fd < 0 || !(handler_installed || lkd_config.interval))
        return;
    int fresh = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fresh < 0 || dup3(fresh, wake_fd, O_CLOEXEC) < 0) {
        lkd_log_warn("cannot create an eventfd in the forked child (errno %d); its signal and "
                     "interval snapshots are off",
                     errno);
        if (fresh >= 0)
            close(fresh);
        return;
    }
    close(fresh);
    start_writer();
}
