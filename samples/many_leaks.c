/* many_leaks: leaks among tens of thousands of live blocks, so that the exit snapshot's own
 * copy of the blocks (40 bytes each, 3.6 MB here) is a mapping of its own, created after
 * the scan listed the tracker's memory: a scan that took it for a root found a pointer to
 * every block in it, and called nothing a leak.
 *
 * Reachable at exit: 90,000 blocks of 16 B kept in an array of 720,000 B (a global holds
 * it). Leaked: a list of 500 nodes of 40 B whose head was dropped (1 direct, 499
 * indirect). The leaked blocks are few and close together, so that no stray word in memory
 * is likely to point into one (valgrind would call that block "possibly lost").
 *
 * EXPECT total bytes=2180000 blocks=90501
 * EXPECT direct bytes=40 blocks=1
 * EXPECT indirect bytes=19960 blocks=499
 */
#include <stdlib.h>
#include <string.h>

#define SITE __attribute__((noipa))
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")
#define KEEP 90000
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

/* Overwrites the dead frames below main's, where leak_list's pointers were. */
SITE static void scrub(void)
{
    volatile char b[65536];
    memset((char *)b, 0, sizeof b);
}

int main(void)
{
    keep_blocks();
    leak_list();
    scrub();
    return 0;
}
