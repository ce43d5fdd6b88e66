/*
 * control - signal-driven and periodic snapshots, written by a dedicated thread.
 *
 * Invariants:
 * - The handler is async-signal-safe: an atomic increment and sem_post. A semaphore, not
 *   a pipe or eventfd: it has no file descriptor, so a program that closes all its
 *   descriptors (daemons do) or reuses their numbers can neither break the writer nor
 *   receive the handler's bytes in one of its own files.
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
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <semaphore.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "parse.h"
#include "log.h"
#include "reach.h"
#include "track.h"

#define REQUEST_LABEL_MAX 256

static sem_t wake;
static bool wake_ok;
static atomic_uint pending;
static atomic_bool main_gone; /* main() left through pthread_exit */
static bool forked_from_main = true;
static bool handler_installed;
static pthread_t writer;
static bool writer_started;
static pid_t owner; /* the process the handler and writer belong to */
static _Atomic pid_t writer_tid;

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_fetch_add_explicit(&pending, 1, memory_order_relaxed);
    sem_post(&wake); /* EOVERFLOW only when already far ahead of the writer */
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

static struct timespec now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

static bool reached(const struct timespec *t)
{
    struct timespec now = now_mono();
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Threads of this process, from /proc/self/stat (field 20); 0 when unknown. */
static long thread_count(void)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may contain spaces */
    for (int field = 2; p && field < 20; field++)
        p = strchr(p + 1, ' ');
    long count = 0;
    for (p = p ? p + 1 : NULL; p && *p >= '0' && *p <= '9'; p++)
        count = count * 10 + (*p - '0');
    return count;
}

/* Once main() has left through pthread_exit, the process must end when its last thread
 * does, and glibc would then call exit(0); the writer thread must not keep it alive. So
 * the writer looks every WATCH_MS and, when it is the only thread left, does what glibc
 * would have done (which also writes the exit snapshot). */
#define WATCH_MS 50
/* True when the thread-group leader has ended (it stays a zombie until the process ends). */
static bool leader_gone(void)
{
    char path[64], buf[512];
    lkd_log_format(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static void exit_if_alone(void)
{
    /* The leader stays in the count as a zombie until the process ends: 2 = it and us. */
    if (thread_count() == 2 && leader_gone()) {
        lkd_guard = 0;
        exit(0);
    }
}

static struct timespec watch_deadline(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_nsec += WATCH_MS * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Wakes the writer to lend the exit snapshot's scan a hand (reach.h). */
static void wake_writer(void)
{
    sem_post(&wake);
}

/* Waits for a request or the next interval tick (monotonic clock, so wall-clock changes do
 * not move it); serves whatever came. Never returns. */
static void *writer_main(void *arg)
{
    (void)arg;
    lkd_guard = 1;
    atomic_store(&writer_tid, gettid());
    lkd_reach_set_helper(wake_writer, (uintptr_t)__builtin_frame_address(0));
    struct timespec tick = now_mono();
    tick.tv_sec += lkd_config.interval;
    for (;;) {
        if (atomic_load(&main_gone)) {
            struct timespec watch = watch_deadline();
            sem_clockwait(&wake, CLOCK_MONOTONIC, &watch);
            exit_if_alone();
        } else if (lkd_config.interval) {
            sem_clockwait(&wake, CLOCK_MONOTONIC, &tick); /* EINTR, ETIMEDOUT: look anyway */
        } else {
            sem_wait(&wake);
        }
        lkd_reach_lend_a_hand(); /* the exit snapshot's scan may be asking for one */
        while (atomic_load(&pending) > 0) {
            atomic_fetch_sub(&pending, 1);
            serve_request();
        }
        if (lkd_config.interval && reached(&tick)) {
            lkd_track_snapshot("interval", 0);
            tick = now_mono();
            tick.tv_sec += lkd_config.interval;
        }
    }
    return NULL;
}

/* Starts the writer with every signal blocked (the mask is inherited from the creator). */
static void start_writer(void)
{
    sigset_t all, old;
    pthread_attr_t attr;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int err = pthread_create(&writer, &attr, writer_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    writer_started = !err;
    if (!err) /* /proc/self/task/TID/comm: the marker `leakdiff snap` looks for */
        pthread_setname_np(writer, handler_installed ? LKD_LISTENER_THREAD : LKD_WRITER_THREAD);
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
    wake_ok = sem_init(&wake, 0, 0) == 0;
    if (!wake_ok) {
        lkd_log_warn("cannot create a semaphore (errno %d); signal and interval snapshots are off",
                     errno);
        return;
    }
    owner = getpid();
    if (lkd_config.signal)
        install_handler();
    if (handler_installed || lkd_config.interval)
        start_writer();
}

/* lkd_control_writer_tid - see control.h. */
pid_t lkd_control_writer_tid(void)
{
    return atomic_load(&writer_tid);
}

/* lkd_control_signal_set - see control.h. Runs in the program's thread, after its call. */
void lkd_control_signal_set(int sig, const struct sigaction *act)
{
    if (!act || sig != lkd_config.signal || !handler_installed)
        return;
    bool plain = !(act->sa_flags & SA_SIGINFO);
    if (plain && act->sa_handler == on_signal)
        return;
    /* A vfork child shares our memory and will exec or _exit: it changes nothing here. */
    if (getpid() != owner)
        return;
    handler_installed = false;
    if (writer_started)
        pthread_setname_np(writer, LKD_WRITER_THREAD);
    /* Back to the default or ignored (a child resetting its signals before exec does that):
     * snap refuses such a process anyway, nothing to say. */
    if (plain && (act->sa_handler == SIG_DFL || act->sa_handler == SIG_IGN))
        return;
    lkd_log_warn("the program set its own handler for signal %d; snapshots on signal are off "
                 "(set LEAKDIFF_SIGNAL to another signal)",
                 sig);
}

/* lkd_control_prepare_fork - remembers whether the forking thread is the main thread. */
void lkd_control_prepare_fork(void)
{
    forked_from_main = getpid() == gettid();
}

/* lkd_control_main_exited - see control.h. */
void lkd_control_main_exited(void)
{
    if (!wake_ok)
        return;
    atomic_store(&main_gone, true);
    sem_post(&wake);
}

/* lkd_control_forked - see control.h. Guard held. The child inherited the handler and a
 * copy of the semaphore, possibly mid-update by the parent's writer: it starts afresh. */
void lkd_control_forked(void)
{
    atomic_store(&pending, 0);
    atomic_store(&writer_tid, 0);
    owner = getpid();
    if (!wake_ok || !(handler_installed || lkd_config.interval))
        return;
    sem_init(&wake, 0, 0);
    /* Forked from a thread other than main: the child's only thread will end by returning
     * from its start routine, never through exit(0) while the writer lives, so watch. */
    atomic_store(&main_gone, !forked_from_main);
    start_writer();
}
