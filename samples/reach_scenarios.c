/* reach_scenarios: the classic cases of a leak checker, each with a block of its own size,
 * so that the verdicts of the exit snapshot (and valgrind's, which must agree) are exact.
 *
 * Still reachable at exit (7 blocks, 728 bytes), not leaks:
 *   101 B only in an initialized global (.data)     102 B only in .bss
 *   103 B only on the stack of a thread still running (blocked in pause)
 *   104 B only in a register of a thread still running (spinning)
 *   105 B only in __thread storage                  106 B only in pthread_setspecific
 *   107 B only through an interior pointer (50 bytes into the block)
 * Leaked (direct, nothing points to them: 6 blocks, 555 bytes):
 *   108 B whose pointer was dropped                 0 B from malloc(0), dropped
 *   109 B that points only to itself               115 B whose pointer is only in a dead
 *   110 B, the lost root of a tree                        stack frame, 16 KiB below main's
 *   113 B, the first (lower address) of a two-block cycle
 * Leaked indirectly (only leaked blocks point to them: 3 blocks, 336 bytes): the tree's two
 * children (111 B and 112 B) and the cycle's other block (113 B).
 * glibc adds one block per thread (its TLS vector, allocate_dtv, 288 B), reachable: 576 B.
 *
 * EXPECT total bytes=2195 blocks=18
 * EXPECT direct bytes=555 blocks=6
 * EXPECT indirect bytes=336 blocks=3
 * EXPECT site function=allocate_dtv bytes=576 blocks=2
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SITE __attribute__((noipa))
/* Makes p escape, so the compiler cannot drop an allocation nothing reads back. */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

void *volatile in_data = (void *)1; /* .data: initialized */
void *volatile in_bss;              /* .bss */
static __thread void *volatile in_tls;
void *volatile interior;
static sem_t ready;
static pthread_key_t key;

SITE static void *stack_keeper(void *arg)
{
    (void)arg;
    void *volatile on_stack = malloc(103);
    (void)on_stack;
    sem_post(&ready);
    for (;;)
        pause();
    return NULL;
}

SITE static void *register_keeper(void *arg)
{
    (void)arg;
    void *p = malloc(104);
    sem_post(&ready);
    for (;;)
        __asm__ volatile("pause" : "+r"(p)); /* p lives in a register, nowhere else */
    return NULL;
}

SITE static void drop(void)
{
    void *volatile p = malloc(108);
    p = NULL;
    p = malloc(0);
    p = NULL;
    (void)p;
}

SITE static void self_pointer(void)
{
    void **p = malloc(109);
    p[0] = p;
    ESCAPE(p);
}

SITE static void lost_tree(void)
{
    void **root = malloc(110);
    root[0] = malloc(111);
    root[1] = malloc(112);
    ESCAPE(root);
}

SITE static void lost_cycle(void)
{
    void **a = malloc(113), **b = malloc(113);
    a[0] = b;
    b[0] = a;
    ESCAPE(a);
    ESCAPE(b);
}

/* The pointer sits at the bottom of a 16 KiB frame, far below anything exit() touches. */
SITE static void dead_frame(void)
{
    void *volatile deep[2048];
    deep[0] = malloc(115);
    for (int i = 1; i < 2048; i++)
        deep[i] = NULL;
}

int main(void)
{
    pthread_t t;
    sem_init(&ready, 0, 0);
    pthread_create(&t, NULL, stack_keeper, NULL);
    pthread_create(&t, NULL, register_keeper, NULL);
    sem_wait(&ready);
    sem_wait(&ready);
    in_data = malloc(101);
    in_bss = malloc(102);
    in_tls = malloc(105);
    pthread_key_create(&key, NULL);
    pthread_setspecific(key, malloc(106));
    interior = (char *)malloc(107) + 50;
    drop();
    self_pointer();
    lost_tree();
    lost_cycle();
    dead_frame();
    exit(0); /* the two threads are still running */
}
