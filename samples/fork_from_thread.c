/* fork_from_thread: a worker thread forks. In the child only that thread exists; when it
 * returns from its start function, the child has no thread left and glibc ends it with
 * exit(0), which writes the child's exit snapshot. A tool's own threads must neither keep
 * the child alive nor be counted in it.
 *
 *   parent  worker() keeps 1 x 40 B before the fork; main joins the worker, which waited
 *           for the child: 40 B, plus what glibc keeps (see below)
 *   child   child_leak() keeps 3 x 56 B; the worker's 40 B are there too
 *
 * The worker runs on a stack this program maps itself, so glibc frees its TLS vector when
 * main joins it (see thread_leaks.c). In the child, the worker is the thread that calls
 * exit(0), so its TLS vector (allocate_dtv, 272 B) stays live, as valgrind also sees.
 *
 * EXPECT snapshots=2
 * EXPECT total bytes=40 blocks=1
 * EXPECT site function=worker bytes=40 blocks=1
 * EXPECT other bytes=0 blocks=0
 * EXPECT @child total bytes=480 blocks=5
 * EXPECT @child site function=worker bytes=40 blocks=1
 * EXPECT @child site function=child_leak bytes=168 blocks=3
 * EXPECT @child site function=allocate_dtv bytes=272 blocks=1
 * EXPECT @child other bytes=0 blocks=0
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SITE __attribute__((noipa))
#define STACK_SIZE (256 * 1024)

static void *volatile kept[8];

SITE static void child_leak(void)
{
    for (int i = 0; i < 3; i++)
        kept[1 + i] = malloc(56);
}

SITE static void *worker(void *arg)
{
    int status;
    (void)arg;
    kept[0] = malloc(40);
    pid_t pid = fork();
    if (pid == 0) {
        child_leak();
        return NULL; /* the child's last thread: glibc calls exit(0) */
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        abort();
    return NULL;
}

int main(void)
{
    pthread_t t;
    pthread_attr_t attr;
    void *stack =
        mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED || pthread_attr_init(&attr) ||
        pthread_attr_setstack(&attr, stack, STACK_SIZE) ||
        pthread_create(&t, &attr, worker, NULL) || pthread_join(t, NULL))
        return 2;
    return 0;
}
