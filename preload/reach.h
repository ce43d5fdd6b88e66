/*
 * reach - the reachability scan at exit: which live blocks the program can still reach.
 *
 * Like LeakSanitizer and valgrind, but inside the shim: the other threads are stopped (a
 * signal whose handler records their registers and parks them), then an aligned,
 * conservative pointer scan starts from the roots (writable data of every loaded object,
 * each thread's registers, stack from its stack pointer, static TLS, thread descriptor
 * and DTV) and follows pointers through the blocks it reaches; a pointer anywhere inside
 * a block keeps it. The blocks left over are leaks, grouped as valgrind groups them: in
 * address order, a block not yet reached becomes DIRECT and everything reachable from it
 * INDIRECT (leader = that block), so a leaked tree has one DIRECT root and a cycle one
 * DIRECT member. Never calls the tracked malloc.
 */
#ifndef LKD_REACH_H
#define LKD_REACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "leakdiff/format.h"

/* Stops every other thread but skip (the shim's writer, which blocks every signal and
 * holds no pointer into the program's heap; 0 for none). All shim locks are held while
 * the stop signal goes out, so no thread is stopped holding one. False when the world
 * could not be stopped (no free signal, no memory): then there are no verdicts. Guard
 * held. */
bool lkd_reach_stop(pid_t skip);
/* Sets the verdict flags and leaders of blocks[n] (ascending addresses, as copied while
 * the world is stopped). Only between lkd_reach_stop and lkd_reach_resume. */
void lkd_reach_classify(lkd_fmt_block_t *blocks, size_t n);
/* The scan itself, from the given root ranges only ([lo, hi) pairs of readable memory):
 * what lkd_reach_classify does after collecting the process's roots. For tests. */
void lkd_reach_classify_ranges(lkd_fmt_block_t *blocks, size_t n, const uintptr_t (*ranges)[2],
                               size_t count);
/* The program is about to exit from this thread, called from the frame at sp: the scan of
 * this thread's stack starts there, so what main() and its callees left in now-dead
 * frames (which exit's own frames may not have overwritten) keeps nothing alive. The
 * callee-saved registers of that moment are roots. */
void lkd_reach_exit_from(uintptr_t sp, const void *regs, size_t len);
/* True in the thread that stopped the world, between a successful lkd_reach_stop and
 * lkd_reach_resume. */
bool lkd_reach_stopped(void);
/* True while another thread has the world stopped: the writer thread, which keeps running,
 * must then not write a snapshot of its own (reach.c). */
bool lkd_reach_stopped_by_other(void);
/* Lets the stopped threads go on (they may still run destructors or be joined). */
void lkd_reach_resume(void);
/* A helper thread for the scan (the shim's writer, which runs while the world is stopped):
 * the scan calls wake() when it offers part of its work, and goes on alone when nobody
 * takes the offer. stack is an address in the helper's stack, whose mapping is then never
 * a root (the helper holds block addresses there while it works). A helper takes the offer
 * with lkd_reach_claim and, when that returns non-NULL, must then call lkd_reach_help with
 * it (the scan waits for it), which returns once the shared part of the scan is over. */
void lkd_reach_set_helper(void (*wake)(void), uintptr_t stack);
void *lkd_reach_claim(void);
void lkd_reach_help(void *claimed);
/* Both in turn: what the helper does whenever it wakes. */
void lkd_reach_lend_a_hand(void);

#endif
