/* snap_target: a long-running program for snapshots on request (`leakdiff snap PID`, the
 * signal, the interval timer, the API), driven by the end-to-end tests.
 *
 *   snap_target              keep_records(10), then exit: 10 x 100 B
 *   snap_target --sleep MS   keep_records(10), sleep MS milliseconds, exit (interval tests)
 *   snap_target --serve      prints "ready PID", then serves one command per stdin line,
 *                            answering each with one line "ok [RESULT]" (or "error ..."):
 *     leak N        keep_records(N): N more blocks of 100 B
 *     tiny N        keep_tiny(N): N more blocks of 16 B (a million is fine)
 *     free          frees every block kept so far
 *     snap [LABEL]  leakdiff_snapshot(LABEL), the rest of the line ("" when absent);
 *                   snapnull: leakdiff_snapshot(NULL); result: the return value
 *     start, stop, tracing, resetpeak    the API calls; result: the return value
 *     memory        leakdiff_traced_memory: "ok RC CURRENT PEAK"
 *     handle        installs a handler of its own for SIGRTMIN+6 (the shim's default request
 *                   signal) with signal(2); handled: how many times it ran
 *     quit          exits 0 (EOF on stdin too)
 *
 * Nothing but the kept blocks is allocated: lines are read and written with read(2) and
 * write(2), and the kept pointers live in an mmap'd array.
 *
 * EXPECT total bytes=1000 blocks=10
 * EXPECT site function=keep_records bytes=1000 blocks=10
 * EXPECT other bytes=0 blocks=0
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "leakdiff.h"

#define SITE __attribute__((noipa))
#define MAX_KEPT (4u << 20)

static void **kept; /* MAX_KEPT pointers, mmap'd */
static size_t kept_count;

SITE static void keep_records(size_t n)
{
    for (size_t i = 0; i < n && kept_count < MAX_KEPT; i++)
        kept[kept_count++] = malloc(100);
}

SITE static void keep_tiny(size_t n)
{
    for (size_t i = 0; i < n && kept_count < MAX_KEPT; i++)
        kept[kept_count++] = malloc(16);
}

static void free_all(void)
{
    while (kept_count)
        free(kept[--kept_count]);
}

static void put(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(1, s, n);
        if (w <= 0)
            _exit(3);
        s += w;
        n -= (size_t)w;
    }
}

/* Reads one line (without its newline) into buf; false at end of input. */
static int get_line(char *buf, size_t size)
{
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(0, &c, 1);
        if (r <= 0)
            return n > 0 ? (buf[n] = '\0', 1) : 0;
        if (c == '\n')
            break;
        if (n + 1 < size)
            buf[n++] = c;
    }
    buf[n] = '\0';
    return 1;
}

static volatile sig_atomic_t handled;

static void on_request_signal(int sig)
{
    (void)sig;
    handled++;
}

static void reply(const char *fmt, long long a, long long b, long long c)
{
    char line[128];
    snprintf(line, sizeof line, fmt, a, b, c);
    put(line);
}

/* Runs one command line; false on quit. */
static int serve_one(char *line)
{
    size_t cur = 0, peak = 0;
    if (!strncmp(line, "leak ", 5))
        keep_records(strtoul(line + 5, NULL, 10)), put("ok\n");
    else if (!strncmp(line, "tiny ", 5))
        keep_tiny(strtoul(line + 5, NULL, 10)), put("ok\n");
    else if (!strcmp(line, "free"))
        free_all(), put("ok\n");
    else if (!strcmp(line, "snap") || !strncmp(line, "snap ", 5))
        reply("ok %lld\n", leakdiff_snapshot(line[4] ? line + 5 : ""), 0, 0);
    else if (!strcmp(line, "snapnull"))
        reply("ok %lld\n", leakdiff_snapshot(NULL), 0, 0);
    else if (!strcmp(line, "start"))
        reply("ok %lld\n", leakdiff_start(), 0, 0);
    else if (!strcmp(line, "stop"))
        reply("ok %lld\n", leakdiff_stop(), 0, 0);
    else if (!strcmp(line, "tracing"))
        reply("ok %lld\n", leakdiff_is_tracing(), 0, 0);
    else if (!strcmp(line, "resetpeak"))
        reply("ok %lld\n", leakdiff_reset_peak(), 0, 0);
    else if (!strcmp(line, "memory")) {
        int rc = leakdiff_traced_memory(&cur, &peak);
        reply("ok %lld %lld %lld\n", rc, (long long)cur, (long long)peak);
    } else if (!strcmp(line, "handle"))
        reply("ok %lld\n", signal(SIGRTMIN + 6, on_request_signal) == SIG_ERR ? -1 : 0, 0, 0);
    else if (!strcmp(line, "handled"))
        reply("ok %lld\n", handled, 0, 0);
    else if (!strcmp(line, "quit"))
        return 0;
    else
        put("error unknown command\n");
    return 1;
}

int main(int argc, char **argv)
{
    char line[512];
    kept = mmap(NULL, MAX_KEPT * sizeof *kept, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (kept == MAP_FAILED)
        return 2;
    if (argc == 3 && !strcmp(argv[1], "--sleep")) {
        long ms = strtol(argv[2], NULL, 10);
        keep_records(10);
        nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
    } else if (argc == 2 && !strcmp(argv[1], "--serve")) {
        reply("ready %lld\n", (long long)getpid(), 0, 0);
        while (get_line(line, sizeof line) && serve_one(line)) {
        }
    } else {
        keep_records(10);
    }
    dlerror(); /* without the shim: frees glibc's last lookup error message */
    dlerror();
    return 0;
}
