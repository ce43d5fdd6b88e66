/* fork_leak: a parent and its fork child, each with exactly known live blocks at exit. The
 * child inherits the parent's heap (and the shim's table of it) and goes on under its own
 * pid: its exit snapshot is exact for its own heap.
 *
 *   before fork  leak_before_fork() keeps 3 x 64 B (in both processes after the fork)
 *   child        frees 1 of those; child_leak() keeps 5 x 32 B; exit(0):
 *                2 x 64 + 5 x 32 = 288 B in 7 blocks
 *   parent       waits for the child; parent_leak() keeps 2 x 128 B:
 *                3 x 64 + 2 x 128 = 448 B in 5 blocks
 *
 * EXPECT snapshots=2
 * EXPECT total bytes=448 blocks=5
 * EXPECT site function=leak_before_fork bytes=192 blocks=3
 * EXPECT site function=parent_leak bytes=256 blocks=2
 * EXPECT other bytes=0 blocks=0
 * EXPECT @child total bytes=288 blocks=7
 * EXPECT @child site function=leak_before_fork bytes=128 blocks=2
 * EXPECT @child site function=child_leak bytes=160 blocks=5
 * EXPECT @child other bytes=0 blocks=0
 */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define SITE __attribute__((noipa))

static void *volatile kept[16];

SITE static void leak_before_fork(void)
{
    for (int i = 0; i < 3; i++)
        kept[i] = malloc(64);
}

SITE static void child_leak(void)
{
    for (int i = 0; i < 5; i++)
        kept[3 + i] = malloc(32);
}

SITE static void parent_leak(void)
{
    for (int i = 0; i < 2; i++)
        kept[8 + i] = malloc(128);
}

int main(void)
{
    int status;
    leak_before_fork();
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        free(kept[0]);
        child_leak();
        exit(0);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    parent_leak();
    return 0;
}
