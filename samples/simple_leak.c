/* simple_leak: leaks 6 blocks (5,183 bytes) from three functions and frees everything else.
 *
 * leak_names() keeps three strings made by libc helpers: strdup("alpha") (6 bytes),
 * strdup("bravo-charlie") (14 bytes) and asprintf(&s, "name-%d", 42) (8 bytes: glibc 2.36
 * formats into a stack buffer, then mallocs the exact length) - 28 bytes in 3 blocks. The
 * helpers are allocator plumbing, so all three blocks belong to leak_names. leak_table()
 * keeps a calloc(16, 64) table and a 4 KiB buffer (5,120 bytes in 2 blocks); main() keeps one
 * 35-byte record. Everything else (a 64 KiB scratch buffer, a strdup) is freed before exit.
 * "other" is memory in no listed site: none here (the program uses no stdio).
 *
 * EXPECT total bytes=5183 blocks=6
 * EXPECT site function=leak_names bytes=28 blocks=3
 * EXPECT site function=leak_table bytes=5120 blocks=2
 * EXPECT site function=main bytes=35 blocks=1
 * EXPECT other bytes=0 blocks=0
 */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* noipa: keeps each site a real, uncloned frame with its own name (no inlining, no
 * .constprop/.isra clones, no tail calls), so the attribution does not depend on -O. */
#define SITE __attribute__((noipa))

/* Where leaked pointers go: a volatile global, so the compiler cannot drop the calls. */
static void *volatile kept[8];

SITE static void leak_names(void)
{
    char *s = NULL;
    kept[0] = strdup("alpha");
    kept[1] = strdup("bravo-charlie");
    if (asprintf(&s, "name-%d", 42) < 0)
        abort();
    kept[2] = s;
}

SITE static void leak_table(void)
{
    kept[3] = calloc(16, 64);
    kept[4] = malloc(4096);
}

SITE static void use_and_free_scratch(void)
{
    char *scratch = malloc(64 * 1024);
    char *copy = strdup("temporary");
    kept[6] = scratch;
    kept[7] = copy;
    free(kept[6]);
    free(kept[7]);
}

int main(void)
{
    leak_names();
    leak_table();
    use_and_free_scratch();
    kept[5] = malloc(35);
    return 0;
}
