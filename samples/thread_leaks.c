/* thread_leaks: four threads leak exact amounts from four different functions, at the same
 * time, while each also churns through 20,000 malloc/free pairs; all are joined before exit.
 *
 *   worker_alpha    10 x 64 B   =     640 B
 *   worker_bravo    20 x 128 B  =   2,560 B
 *   worker_charlie   3 x 4 KiB  =  12,288 B
 *   worker_delta     1 x 200 KB = 200,000 B  (above the mmap threshold: an mmapped chunk)
 *
 * The threads start together behind a barrier, so their allocations interleave. They run on
 * stacks this program maps itself: glibc then frees each thread's TLS vector (DTV) at join.
 * With glibc's own (cached) stacks the DTVs would stay live - 272 bytes per thread here,
 * allocated inside pthread_create - and their size grows with the number of loaded objects
 * that have TLS, which a tool's own libraries can change: the totals would depend on the
 * observer.
 *
 * EXPECT total bytes=215488 blocks=34
 * EXPECT site function=worker_alpha bytes=640 blocks=10
 * EXPECT site function=worker_bravo bytes=2560 blocks=20
 * EXPECT site function=worker_charlie bytes=12288 blocks=3
 * EXPECT site function=worker_delta bytes=200000 blocks=1
 * EXPECT other bytes=0 blocks=0
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define SITE __attribute__((noipa))
#define THREADS 4
#define STACK_SIZE (256 * 1024)

static pthread_barrier_t start_line;
static void *volatile kept[THREADS][32];
static void *volatile scratch[THREADS];

/* 20,000 short-lived blocks of assorted sizes: none survives. */
static void churn(int slot)
{
    for (int i = 0; i < 20000; i++) {
        scratch[slot] = malloc((size_t)(16 + (i % 61) * 8));
        free(scratch[slot]);
    }
}

SITE static void *worker_alpha(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start_line);
    churn(0);
    for (int i = 0; i < 10; i++)
        kept[0][i] = malloc(64);
    return NULL;
}

SITE static void *worker_bravo(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < 20; i++)
        kept[1][i] = malloc(128);
    churn(1);
    return NULL;
}

SITE static void *worker_charlie(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start_line);
    churn(2);
    for (int i = 0; i < 3; i++)
        kept[2][i] = calloc(1, 4096);
    return NULL;
}

SITE static void *worker_delta(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start_line);
    kept[3][0] = malloc(200000);
    churn(3);
    return NULL;
}

int main(void)
{
    void *(*const workers[THREADS])(void *) = {worker_alpha, worker_bravo, worker_charlie,
                                               worker_delta};
    pthread_t threads[THREADS];
    void *stacks[THREADS];
    pthread_attr_t attr;

    pthread_barrier_init(&start_line, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        stacks[i] = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        if (stacks[i] == MAP_FAILED)
            abort();
        pthread_attr_init(&attr);
        pthread_attr_setstack(&attr, stacks[i], STACK_SIZE);
        if (pthread_create(&threads[i], &attr, workers[i], NULL) != 0)
            abort();
        pthread_attr_destroy(&attr);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start_line);
    for (int i = 0; i < THREADS; i++)
        munmap(stacks[i], STACK_SIZE);
    return 0;
}
