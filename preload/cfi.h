/*
 * cfi - the default mode's own unwinder: reads the DWARF call-frame information (.eh_frame)
 * that libunwind reads, with a cache of each return address's rule and of the thread's last
 * stack in front of it (see cfi.c). Whatever it does not handle is left to libunwind, whole
 * stack at a time, so its stacks are libunwind's. Never calls malloc.
 */
#ifndef LKD_CFI_H
#define LKD_CFI_H

#include <stdbool.h>
#include <stdint.h>

/* Deepest stack (frames of the program) the unwinder handles; deeper requests go to
 * libunwind. */
#define LKD_CFI_MAX_DEPTH 72

/* The shim's own address range: frames there are walked through, not kept. */
void lkd_cfi_init(uintptr_t shim_start, uintptr_t shim_end);
/* Up to max return addresses of the calling thread's program frames, innermost first, from
 * the shim frame fp (a frame-pointer chain leads from it out of the shim), on the stack
 * [lo, hi), and their hash (stack_hash.h's lkd_hash_outer_first). Returns the count, or -1
 * when libunwind must take this capture. *same is set when the stack is the one this
 * thread's previous successful call returned. */
int lkd_cfi_capture(uintptr_t fp, uintptr_t lo, uintptr_t hi, uint64_t *frames, uint32_t max,
                    uint64_t *hash, bool *same);
/* A thread's cache of rules, in front of the table all threads share: memory the caller
 * gives lkd_cfi_walk, zeroed at first, one per thread. */
#define LKD_CFI_CACHE_BYTES 4096
/* What a walk (lkd_cfi_walk) found: the calling thread's stack, as it relates to the stack
 * the thread's previous walk found. */
typedef struct lkd_cfi_walk {
    /* The record lkd_cfi_set_rec gave the previous stack, when the new one is made of that
     * record's outermost `keep` frames and the `added` frames walked below them: frame i of
     * the new stack is innermost[-i] for i < added. NULL when that does not hold (no record,
     * a stack deeper than max, a shim frame among those walked). */
    const void *prev;
    const uint64_t *innermost;
    uint32_t keep, added;
    uint64_t hash; /* the stack's hash (as lkd_cfi_output's), when prev is set */
    bool same;     /* the very stack of the previous walk */
} lkd_cfi_walk_t;

/* The first half of lkd_cfi_capture: walks the stack (the thread's last stack is then this
 * one) without writing it out. Returns the number of frames lkd_cfi_output will give, or -1
 * when libunwind must take this capture (the last stack is then unchanged). cache: the
 * calling thread's LKD_CFI_CACHE_BYTES, or NULL. */
int lkd_cfi_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uint32_t max, void *cache,
                 lkd_cfi_walk_t *w);
/* The frames of the last successful walk, innermost first, at most max (the walk's), and
 * their hash; returns their count. */
uint32_t lkd_cfi_output(uint64_t *frames, uint32_t max, uint64_t *hash);
/* Tells the unwinder the caller's record of the last walk's stack (walked for max frames),
 * for the next walk's prev (kept only when that stack had at most max frames), and puts the
 * stack in the memo (NULL: none). */
void lkd_cfi_set_rec(const void *rec, void *memo, uint32_t max);
/* A thread's memo of whole stacks it walked before (see cfi.c): memory the caller gives,
 * zeroed at first, one per thread. lkd_cfi_memo_find gives the record of the stack the
 * thread is on now (from the shim frame fp, on the stack [lo, hi), for max frames of the
 * program) when the memo holds it, else NULL; cache: the thread's rule cache
 * (LKD_CFI_CACHE_BYTES). */
#define LKD_CFI_MEMO_BYTES 40960
const void *lkd_cfi_memo_find(void *memo, void *cache, uintptr_t fp, uintptr_t lo, uintptr_t hi,
                              uint32_t max);
/* A memo that hits too rarely rests for a number of captures, which its first word counts:
 * true while it does (one fewer to go); the caller then neither looks up nor puts. */
static inline bool lkd_cfi_memo_rests(void *memo)
{
    uint32_t *rest = memo;
    if (__builtin_expect(*rest == 0, 1))
        return false;
    (*rest)--;
    return true;
}
/* For tests: the lookups the memo answered since it was made. */
uint64_t lkd_cfi_memo_hits(const void *memo);
/* Forgets every cached rule (a module was unloaded, its addresses may be reused). */
void lkd_cfi_forget(void);
/* The rule cache's lock, held across fork. */
void lkd_cfi_lock(void);
void lkd_cfi_unlock(void);

/* For tests: the rule found for return address ra (RULE_* kinds in cfi.c), no cache. */
typedef struct lkd_cfi_rule {
    int32_t cfa_off;
    int8_t rbp_slot; /* caller's rbp saved at CFA + 8 * rbp_slot; 0: not saved */
    uint8_t flags;   /* LKD_CFI_* */
    uint16_t tag;    /* the return address's low 16 bits, against torn reads */
} lkd_cfi_rule_t;
#define LKD_CFI_OK 1   /* CFA = rsp or rbp + cfa_off, return address at CFA - 8 */
#define LKD_CFI_END 2  /* outermost frame (return address undefined) */
#define LKD_CFI_FAIL 3 /* libunwind's case */
#define LKD_CFI_KIND 3
#define LKD_CFI_RBP 4 /* CFA from rbp, not rsp */
lkd_cfi_rule_t lkd_cfi_find_rule(uintptr_t ra);

#endif
