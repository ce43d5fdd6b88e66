/* no_unwind_info: leaks 3 blocks (300 bytes) from code built without unwind tables.
 *
 * This file is compiled with -fno-asynchronous-unwind-tables -fno-unwind-tables (see the
 * Makefile), as some hand-written assembly and JIT code is, but keeps frame pointers. For
 * these frames libunwind falls back to the frame-pointer chain and checks that each word it
 * reads is readable memory first, which is the path the shim serves without file
 * descriptors (preload/intercept.c). The whole stack must survive: inner() <- outer() <-
 * main(), which tests/e2e/test_process.py checks with --by traceback.
 *
 * EXPECT total bytes=300 blocks=3
 * EXPECT site function=inner bytes=300 blocks=3
 * EXPECT other bytes=0 blocks=0
 */
#include <stdlib.h>

#define SITE __attribute__((noipa))

static void *volatile kept[3];

SITE static void inner(int i)
{
    kept[i] = malloc(100);
}

SITE static void outer(void)
{
    for (int i = 0; i < 3; i++)
        inner(i);
}

int main(void)
{
    outer();
    return 0;
}
