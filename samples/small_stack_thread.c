/* small_stack_thread: a thread on a 16 KiB stack (pthread_attr_setstacksize; 16 KiB was
 * PTHREAD_STACK_MIN, and programs built before glibc 2.34 still ask for it) leaks 48 B from
 * on_small_stack; main exits with status 1 when pthread_create refuses the size. glibc puts
 * the static TLS of every loaded object at the top of a thread's stack and refuses a stack
 * too small for it, the shim's included: the shim's thread-local data must leave such a
 * stack usable (an 8 KiB per-thread stack cache made pthread_create fail with EINVAL).
 * The joined thread's stack stays in glibc's cache, and with it its TLS vector (DTV), 272 B
 * allocated inside pthread_create.
 *
 * EXPECT total bytes=320 blocks=2
 * EXPECT site function=on_small_stack bytes=48 blocks=1
 * EXPECT site function=allocate_dtv bytes=272 blocks=1
 * EXPECT other bytes=0 blocks=0
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile kept; /* read by nobody: volatile, so the malloc stays */

__attribute__((noipa)) static void *on_small_stack(void *arg)
{
    (void)arg;
    kept = malloc(48); /* reachable: a global keeps it */
    return NULL;
}

int main(void)
{
    pthread_attr_t attr;
    pthread_t t;
    if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, 16384))
        return 2;
    int rc = pthread_create(&t, &attr, on_small_stack, NULL);
    if (rc) {
        fprintf(stderr, "small_stack_thread: pthread_create with a 16 KiB stack: %s\n",
                strerror(rc));
        return 1;
    }
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
    return 0;
}
