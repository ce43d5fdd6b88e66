/* stop_start: leakdiff_stop() and leakdiff_start(). While stopped, new blocks are not
 * recorded, but frees of recorded blocks still are, so the figures stay right (unlike
 * tracemalloc.stop(), which forgets every trace).
 *
 *   traced:   keep_early() keeps 10 x 100 B; snapshot "tracing" (1,000 B in 10 blocks)
 *   stopped:  keep_hidden() keeps 7 x 300 B (not recorded); 4 early blocks are freed and
 *             1 early block is realloc'd to 2,000 B (its old block leaves the table, the
 *             new one is not recorded); snapshot "stopped": 5 early blocks, 500 B
 *   traced:   keep_late() keeps 3 x 50 B; 2 hidden blocks are freed (never recorded:
 *             nothing changes); snapshot "restarted": 650 B in 8 blocks
 *   at exit:  5 x 100 (keep_early) + 3 x 50 (keep_late) = 650 B in 8 blocks recorded.
 *
 * valgrind sees every block: also the 5 hidden blocks still live (1,500 B) and the
 * realloc'd one (2,000 B): 4,150 B in 14 blocks. (Without the shim the header's lookups
 * fail; main calls dlerror() twice last, which frees glibc's last error message.)
 *
 * EXPECT snapshots=4
 * EXPECT total bytes=650 blocks=8
 * EXPECT site function=keep_early bytes=500 blocks=5
 * EXPECT site function=keep_late bytes=150 blocks=3
 * EXPECT other bytes=0 blocks=0
 * EXPECT @tracing total bytes=1000 blocks=10
 * EXPECT @tracing site function=keep_early bytes=1000 blocks=10
 * EXPECT @stopped total bytes=500 blocks=5
 * EXPECT @stopped site function=keep_early bytes=500 blocks=5
 * EXPECT @restarted total bytes=650 blocks=8
 * EXPECT valgrind bytes=4150 blocks=14
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "leakdiff.h"

#define SITE __attribute__((noipa))

static void *volatile early[10], *volatile hidden[7], *volatile late[3];

/* Prints "name = value\n" with write(2): no stdio buffer, no allocation. */
static void say(const char *name, long long value)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s = %lld\n", name, value);
    if (n > 0 && write(1, line, (size_t)n) < 0)
        _exit(3);
}

SITE static void keep_early(void)
{
    for (int i = 0; i < 10; i++)
        early[i] = malloc(100);
}

SITE static void keep_hidden(void)
{
    for (int i = 0; i < 7; i++)
        hidden[i] = malloc(300);
}

SITE static void keep_late(void)
{
    for (int i = 0; i < 3; i++)
        late[i] = malloc(50);
}

int main(void)
{
    keep_early();
    say("snapshot_tracing", leakdiff_snapshot("tracing"));

    say("stop", leakdiff_stop());
    say("is_tracing_stopped", leakdiff_is_tracing());
    keep_hidden();
    for (int i = 0; i < 4; i++)
        free(early[i]);
    early[4] = realloc(early[4], 2000);
    say("snapshot_stopped", leakdiff_snapshot("stopped"));

    say("start", leakdiff_start());
    say("is_tracing_started", leakdiff_is_tracing());
    keep_late();
    free(hidden[0]);
    free(hidden[1]);
    say("snapshot_restarted", leakdiff_snapshot("restarted"));
    dlerror();
    dlerror();
    return 0;
}
