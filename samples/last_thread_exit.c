/* last_thread_exit: main() ends with pthread_exit() while a worker thread still runs; the
 * process ends when the worker, its last thread, returns (glibc then calls exit(0)), and
 * it writes its exit snapshot then. A tool's own threads must not keep it alive.
 *
 * worker() keeps 2 blocks of 24 B. The rest is glibc's, and valgrind sees the same: the
 * worker is the thread that runs exit(0), so its TLS vector (allocate_dtv, 272 B) is never
 * freed; and pthread_exit() in main unwinds main's stack, for which glibc dlopens
 * libgcc_s.so.1 and keeps the loader's records of it (_dl_new_object 2 blocks, 1,274 B;
 * _dl_check_map_versions 456 B; _dl_map_object_deps 56 B; _dl_load_cache_lookup 36 B, its
 * path) and of _dl_find_object (_dlfo_mappings_segment_allocate 2,304 B): 4,398 B in 7.
 *
 * EXPECT total bytes=4446 blocks=9
 * EXPECT site function=worker bytes=48 blocks=2
 * EXPECT site function=allocate_dtv bytes=272 blocks=1
 * EXPECT other bytes=4126 blocks=6
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define SITE __attribute__((noipa))

static void *volatile kept[2];

SITE static void *worker(void *arg)
{
    (void)arg;
    nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL); /* main has gone by now */
    kept[0] = malloc(24);
    kept[1] = malloc(24);
    return NULL;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return 2;
    pthread_exit(NULL);
}
