/* many_leaks: leaks among tens of thousands of live blocks, so that the exit snapshot's own
 * copy of the blocks (40 bytes each, 3.6 MB here) is a mapping of its own, created after
 * the scan listed the tracker's memory: a scan that took it for a root found a pointer to
 * every block in it, and called nothing a leak.
 *
 * Reachable at exit: 60,000 blocks of 16 B kept in an array of 480,000 B (a global holds
 * it). Leaked: 30,000 blocks of 24 B whose pointers were dropped, and a list of 500 nodes
 * of 40 B whose head was dropped (1 direct, 499 indirect).
 *
 * EXPECT total bytes=2180000 blocks=90501
 * EXPECT direct bytes=720040 blocks=30001
 * EXPECT indirect bytes=19960 blocks=499
 */
#include <stdlib.h>

#define SITE __attribute__((noipa))
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")
#define KEEP 60000
#define LEAK 30000
#define NODES 500

void **volatile kept;

SITE static void keep_blocks(void)
{
    kept = malloc(KEEP * sizeof *kept);
    if (!kept)
        exit(1);
    for (int i = 0; i < KEEP; i++)
        kept[i] = malloc(16);
}

SITE static void leak_one(void)
{
    void *p = malloc(24);
    ESCAPE(p);
}

SITE static void leak_list(void)
{
    void **head = NULL;
    for (int i = 0; i < NODES; i++) {
        void **node = malloc(40);
        if (!node)
            exit(1);
        node[0] = head;
        head = node;
    }
    ESCAPE(head);
}

int main(void)
{
    keep_blocks();
    for (int i = 0; i < LEAK; i++)
        leak_one();
    leak_list();
    return 0;
}
