/* api_usage: the program API (include/leakdiff.h) as tracemalloc is used: a snapshot
 * "before", some work that leaks, a snapshot "after"; `leakdiff diff` of the two shows
 * exactly what the work left behind. Also reads the traced memory and resets the peak.
 *
 * keep_config() keeps 2 blocks of 512 B before the first snapshot. Between "before" and
 * "after", leak_between() keeps 25 blocks of 40 B (1,000 B), and a 1 MiB scratch block is
 * allocated and freed: the diff shows +1,000 B in +25 blocks, all in leak_between. The
 * scratch block raises the peak by exactly 1 MiB above the current traced bytes; then
 * leakdiff_reset_peak() sets the peak back to the current bytes. Everything is printed with
 * write(2) (stdio would allocate a buffer), one "name = value" line per call.
 *
 * Without the shim the program runs the same; every call returns -ENOSYS (is_tracing 0,
 * traced memory 0/0). valgrind runs it that way: the header's dlsym lookups then fail and
 * glibc keeps the last error message (it names the program's path, so its size varies)
 * until dlerror() is called twice, which main does last; then valgrind's figures are the
 * snapshot's.
 *
 * EXPECT snapshots=3
 * EXPECT total bytes=2024 blocks=27
 * EXPECT site function=keep_config bytes=1024 blocks=2
 * EXPECT site function=leak_between bytes=1000 blocks=25
 * EXPECT other bytes=0 blocks=0
 * EXPECT @before total bytes=1024 blocks=2
 * EXPECT @after total bytes=2024 blocks=27
 * EXPECT diff before after total bytes=1000 blocks=25
 * EXPECT diff before after function=leak_between bytes=1000 blocks=25
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leakdiff.h"

#define SITE __attribute__((noipa))

static void *volatile kept[32];

/* Prints "name = value\n" with write(2): no stdio buffer, no allocation. */
static void say(const char *name, long long value)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s = %lld\n", name, value);
    if (n > 0 && write(1, line, (size_t)n) < 0)
        _exit(3);
}

SITE static void keep_config(void)
{
    kept[0] = malloc(512);
    kept[1] = malloc(512);
}

SITE static void leak_between(void)
{
    for (int i = 0; i < 25; i++)
        kept[2 + i] = malloc(40);
}

/* A 1 MiB block that lives only inside this function: the peak remembers it. */
SITE static void scratch(void)
{
    void *volatile big = malloc(1 << 20);
    memset(big, 1, 1 << 20);
    free(big);
}

int main(void)
{
    size_t cur, peak;
    say("is_tracing", leakdiff_is_tracing());
    keep_config();
    say("snapshot_before", leakdiff_snapshot("before"));
    say("memory", leakdiff_traced_memory(&cur, &peak));
    say("current_before", (long long)cur);
    leak_between();
    scratch();
    say("memory", leakdiff_traced_memory(&cur, &peak));
    say("current_after", (long long)cur);
    say("peak_after", (long long)peak);
    say("reset_peak", leakdiff_reset_peak());
    say("memory", leakdiff_traced_memory(&cur, &peak));
    say("peak_reset", (long long)peak);
    say("snapshot_after", leakdiff_snapshot("after"));
    say("stop", leakdiff_stop());
    say("start", leakdiff_start());
    dlerror(); /* the last lookup's message, if any ... */
    dlerror(); /* ... is freed now */
    return 0;
}
