/* thread_churn: snapshots taken while threads start, allocate, free and exit. Every
 * snapshot must count each live block exactly once, whatever the threads are doing.
 *
 * keep_stable() keeps 100 blocks of 256 B (25,600 B) and never touches them again. Then 3
 * churn threads each start and join short-lived workers, one after another, until main is
 * done; a worker allocates 32 blocks of 64 B in churn_worker(), frees them and exits. Main
 * meanwhile writes 20 snapshots labelled "during", 5 ms apart. In each of them the stable
 * site is exactly 25,600 B in 100 blocks and churn_worker holds at most 3 x 32 blocks. All
 * threads run on stacks this program maps itself, so glibc frees each thread's TLS vector
 * when it is joined (see thread_leaks.c) and the exit figures do not depend on timing.
 *
 * EXPECT snapshots=21
 * EXPECT total bytes=25600 blocks=100
 * EXPECT site function=keep_stable bytes=25600 blocks=100
 * EXPECT other bytes=0 blocks=0
 * EXPECT @during site function=keep_stable bytes=25600 blocks=100
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "leakdiff.h"

#define SITE __attribute__((noipa))
#define CHURNERS 3
#define STACK_SIZE (256 * 1024)

static void *volatile stable[100];
static atomic_bool done;

SITE static void keep_stable(void)
{
    for (int i = 0; i < 100; i++)
        stable[i] = malloc(256);
}

SITE static void *churn_worker(void *arg)
{
    void *volatile blocks[32];
    (void)arg;
    for (int i = 0; i < 32; i++)
        blocks[i] = malloc(64);
    for (int i = 0; i < 32; i++)
        free(blocks[i]);
    return NULL;
}

/* Starts a thread running fn on the given stack; false on failure. */
static int start_on(pthread_t *t, void *stack, void *(*fn)(void *))
{
    pthread_attr_t attr;
    int ok = pthread_attr_init(&attr) == 0 &&
             pthread_attr_setstack(&attr, stack, STACK_SIZE) == 0 &&
             pthread_create(t, &attr, fn, NULL) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

static void *map_stack(void)
{
    void *s = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return s == MAP_FAILED ? NULL : s;
}

/* Starts and joins workers one after another until main says done. */
static void *churner(void *arg)
{
    void *stack = arg;
    while (!atomic_load(&done)) {
        pthread_t t;
        if (!start_on(&t, stack, churn_worker) || pthread_join(t, NULL) != 0)
            abort();
    }
    return NULL;
}

int main(void)
{
    pthread_t churners[CHURNERS];
    keep_stable();
    for (int i = 0; i < CHURNERS; i++) {
        void *own = map_stack(), *workers = map_stack();
        pthread_attr_t attr;
        if (!own || !workers || pthread_attr_init(&attr) ||
            pthread_attr_setstack(&attr, own, STACK_SIZE) ||
            pthread_create(&churners[i], &attr, churner, workers))
            return 2;
        pthread_attr_destroy(&attr);
    }
    for (int i = 0; i < 20; i++) {
        if (leakdiff_snapshot("during") != 0 && leakdiff_is_tracing())
            return 1;
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    atomic_store(&done, 1);
    for (int i = 0; i < CHURNERS; i++)
        pthread_join(churners[i], NULL);
    dlerror(); /* without the shim: frees glibc's last lookup error message */
    dlerror();
    return 0;
}
