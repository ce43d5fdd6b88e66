/* wild_frame_pointer: leaks 7 blocks (700 bytes), three of them with a garbage frame pointer.
 *
 * Built with frame pointers like every sample: under LEAKDIFF_UNWIND=fp the 4 blocks from
 * inner() <- outer() <- main() keep their whole stack. with_rbp() (assembly, with unwind
 * info so libunwind and valgrind see a normal frame) calls malloc with rbp set to a value that
 * is no frame: -16 (where "rbp + 16" wraps around to 0), -8 and an odd number. In code built
 * without frame pointers rbp is an ordinary register and holds such values; python3 crashed
 * the fp walk with -16 before the check was made overflow-proof. The fp walk must stop at
 * with_rbp (the only frame whose return address it can trust) and the program must not notice;
 * libunwind, which follows the unwind info, still sees the whole stack.
 * tests/e2e/test_process.py checks both modes.
 *
 * EXPECT total bytes=700 blocks=7
 * EXPECT site function=inner bytes=400 blocks=4
 * EXPECT site function=with_rbp bytes=300 blocks=3
 * EXPECT other bytes=0 blocks=0
 */
#include <stdint.h>
#include <stdlib.h>

#define SITE __attribute__((noipa))

static void *volatile kept[8];

/* void *with_rbp(size_t size, uintptr_t rbp): malloc(size) with rbp = rbp for the call. */
void *with_rbp(size_t size, uintptr_t rbp);
__asm__(".text\n"
        ".globl with_rbp\n"
        ".type with_rbp, @function\n"
        "with_rbp:\n"
        ".cfi_startproc\n"
        "  push %rbp\n"
        ".cfi_def_cfa_offset 16\n"
        ".cfi_offset %rbp, -16\n"
        "  mov %rsi, %rbp\n"
        "  call malloc@PLT\n"
        "  pop %rbp\n"
        ".cfi_def_cfa_offset 8\n"
        "  ret\n"
        ".cfi_endproc\n"
        ".size with_rbp, .-with_rbp\n");

SITE static void inner(int i)
{
    kept[i] = malloc(100);
}

SITE static void outer(void)
{
    for (int i = 0; i < 4; i++)
        inner(i);
}

int main(void)
{
    outer();
    kept[4] = with_rbp(100, (uintptr_t)-16);
    kept[5] = with_rbp(100, (uintptr_t)-8);
    kept[6] = with_rbp(100, 0x12345);
    return 0;
}
