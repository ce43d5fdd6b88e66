/*
 * cfi - the default mode's own unwinder (x86-64).
 *
 * Why not libunwind alone: unw_backtrace looks each frame's rule up in a per-thread hash, a
 * chain of dependent loads per frame; under sqlite3 and python3 it was 20% of the whole run
 * (perf), the largest cost leakdiff adds. The allocations of a thread mostly share the outer
 * part of their stacks with the allocation before, so this unwinder keeps the last stack it
 * walked: each frame's state (return address, stack pointer, rbp) and the stack words its walk
 * read. When a walk reaches a frame in the state of one of the last stack's, and every word
 * the last walk read above it still holds what it read, the rest of the walk would read the
 * same words and find the same frames: they are taken from the last stack. Those checks are
 * independent loads, not a chain. Measured (bench workloads): sqlite3 walks 6.5 of its 16.8
 * frames per allocation, python3 2.8 of 20.1.
 *
 * Rules: for each return address, where its frame's CFA is (rsp or rbp plus an offset) and
 * where the caller's rbp was saved, read once from the module's .eh_frame (found through
 * .eh_frame_hdr's sorted table, as libunwind and libgcc do) and kept in a table shared by all
 * threads, read without a lock. Anything else (a CFA or register given by a DWARF
 * expression, signal frames, code without unwind information, a read off the thread's
 * stack) makes the whole capture libunwind's, so the stacks are always those libunwind gives
 * (unit test stack/cfi_matches_libunwind; the e2e check build compares every capture).
 *
 * Invariants:
 * - A rule entry is written value first, key second (release); a reader takes a key, then
 *   the value, and checks the value's tag against the address: a slot reused meanwhile (only
 *   lkd_cfi_forget makes that possible) reads as a miss.
 * - Rule tables are never freed (a reader may still be in an old one); a new table replaces
 *   a full one or a forgotten one. The thread-local last stack is the thread's alone.
 * Never calls malloc: tables come from the arena; dl_iterate_phdr on a miss (callers hold
 * their reentrancy guard, as for libunwind's own lookups).
 */
#include "cfi.h"

#include <link.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "arena.h"
#include "stack_hash.h"

#define TLS __thread __attribute__((tls_model("initial-exec")))

/* ---- rules from .eh_frame ---------------------------------------------------------- */

#define DW_REG_RBP 6
#define DW_REG_RSP 7
#define DW_REG_RA 16
#define STATE_STACK 8

typedef struct reg_rule {
    uint8_t how; /* SAME, SAVED (at CFA + off), UNDEF, OTHER */
    int32_t off;
} reg_rule_t;
enum { SAME, SAVED, UNDEF, OTHER };

typedef struct cfa_state {
    uint32_t cfa_reg;
    int64_t cfa_off;
    bool cfa_expr;
    reg_rule_t rbp, ra;
} cfa_state_t;

typedef struct cursor {
    const uint8_t *p, *end;
    bool bad;
} cursor_t;

static uint64_t uleb(cursor_t *c)
{
    uint64_t v = 0;
    for (unsigned shift = 0; c->p < c->end; shift += 7) {
        uint8_t b = *c->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    c->bad = true;
    return 0;
}

static int64_t sleb(cursor_t *c)
{
    int64_t v = 0;
    unsigned shift = 0;
    while (c->p < c->end) {
        uint8_t b = *c->p++;
        if (shift < 64)
            v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                v |= -((int64_t)1 << shift);
            return v;
        }
    }
    c->bad = true;
    return 0;
}

static uint64_t fixed(cursor_t *c, unsigned n)
{
    if ((size_t)(c->end - c->p) < n) {
        c->bad = true;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, c->p, n); /* little-endian */
    c->p += n;
    return v;
}

/* A pointer in DW_EH_PE encoding enc; datarel is relative to data (.eh_frame_hdr). Text- and
 * function-relative forms are not used on x86-64 Linux, and an indirect pointer (to be read
 * from where it points) is never needed here: they mark the cursor bad. */
static uint64_t encoded(cursor_t *c, uint8_t enc, uintptr_t data)
{
    if (enc == 0xff) /* DW_EH_PE_omit */
        return 0;
    uintptr_t at = (uintptr_t)c->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: v = fixed(c, 8); break;
    case 0x01: v = uleb(c); break;
    case 0x02: v = fixed(c, 2); break;
    case 0x03: v = fixed(c, 4); break;
    case 0x04: v = fixed(c, 8); break;
    case 0x09: v = (uint64_t)sleb(c); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)fixed(c, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)fixed(c, 4); break;
    case 0x0c: v = fixed(c, 8); break;
    default: c->bad = true; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += at; break;
    case 0x30: v += data; break;
    default: c->bad = true; return 0;
    }
    if (enc & 0x80)
        c->bad = true;
    return v;
}

/* Runs call-frame instructions [c->p, c->end) on s until the location passes pc. Returns
 * false on an instruction it does not know or malformed input. */
static bool run_cfa(cursor_t *c, cfa_state_t *s, const cfa_state_t *initial, uint64_t loc,
                    uint64_t pc, uint64_t code_align, int64_t data_align)
{
    cfa_state_t stack[STATE_STACK];
    unsigned depth = 0;
    while (c->p < c->end && !c->bad) {
        uint8_t op = *c->p++;
        uint64_t reg = 0, delta = 0;
        int64_t off = 0;
        switch (op >> 6) {
        case 1: /* advance_loc */ delta = (op & 0x3f) * code_align; goto advance;
        case 2: /* offset */
            reg = op & 0x3f;
            off = (int64_t)uleb(c) * data_align;
            goto saved;
        case 3: /* restore */ reg = op & 0x3f; goto restore;
        }
        switch (op) {
        case 0x00: break; /* nop */
        case 0x01: /* set_loc: GCC and clang do not emit it; libunwind's case */ return false;
        case 0x02: delta = fixed(c, 1) * code_align; goto advance;
        case 0x03: delta = fixed(c, 2) * code_align; goto advance;
        case 0x04: delta = fixed(c, 4) * code_align; goto advance;
        case 0x05: /* offset_extended */
            reg = uleb(c);
            off = (int64_t)uleb(c) * data_align;
            goto saved;
        case 0x06: reg = uleb(c); goto restore;
        case 0x07: /* undefined */
        case 0x08: /* same_value */
            reg = uleb(c);
            if (reg == DW_REG_RBP)
                s->rbp.how = op == 0x07 ? OTHER : SAME;
            else if (reg == DW_REG_RA)
                s->ra.how = op == 0x07 ? UNDEF : OTHER;
            break;
        case 0x09: /* register */
            reg = uleb(c);
            (void)uleb(c);
            goto other;
        case 0x0a: /* remember_state */
            if (depth == STATE_STACK)
                return false;
            stack[depth++] = *s;
            break;
        case 0x0b: /* restore_state */
            if (!depth)
                return false;
            *s = stack[--depth];
            break;
        case 0x0c: /* def_cfa */
            s->cfa_reg = (uint32_t)uleb(c);
            s->cfa_off = (int64_t)uleb(c);
            s->cfa_expr = false;
            break;
        case 0x0d: s->cfa_reg = (uint32_t)uleb(c); break;
        case 0x0e: s->cfa_off = (int64_t)uleb(c); break;
        case 0x0f: { /* def_cfa_expression */
            uint64_t n = uleb(c);
            if (n > (uint64_t)(c->end - c->p))
                return false;
            c->p += n;
            s->cfa_expr = true;
            break;
        }
        case 0x10:   /* expression */
        case 0x16: { /* val_expression */
            reg = uleb(c);
            uint64_t n = uleb(c);
            if (n > (uint64_t)(c->end - c->p))
                return false;
            c->p += n;
            goto other;
        }
        case 0x11: /* offset_extended_sf */
            reg = uleb(c);
            off = sleb(c) * data_align;
            goto saved;
        case 0x12: /* def_cfa_sf */
            s->cfa_reg = (uint32_t)uleb(c);
            s->cfa_off = sleb(c) * data_align;
            s->cfa_expr = false;
            break;
        case 0x13: s->cfa_off = sleb(c) * data_align; break;
        case 0x14: /* val_offset */
        case 0x15: /* val_offset_sf */
            reg = uleb(c);
            if (op == 0x14)
                (void)uleb(c);
            else
                (void)sleb(c);
            goto other;
        case 0x2e: (void)uleb(c); break; /* GNU_args_size */
        case 0x2f:                       /* GNU_negative_offset_extended */
            reg = uleb(c);
            off = -(int64_t)uleb(c) * data_align;
            goto saved;
        default: return false;
        }
        continue;
    advance:
        loc += delta;
        if (loc > pc)
            return true;
        continue;
    saved:
        if (reg == DW_REG_RBP || reg == DW_REG_RA) {
            reg_rule_t *r = reg == DW_REG_RBP ? &s->rbp : &s->ra;
            r->how = SAVED;
            r->off = (int32_t)off;
            if (off != r->off)
                r->how = OTHER;
        }
        continue;
    other: /* a rule this unwinder does not follow: a frame that needs it is left to libunwind */
        if (reg == DW_REG_RBP)
            s->rbp.how = OTHER;
        else if (reg == DW_REG_RA)
            s->ra.how = OTHER;
        continue;
    restore:
        if (!initial)
            return false; /* restore in a CIE */
        if (reg == DW_REG_RBP)
            s->rbp = initial->rbp;
        else if (reg == DW_REG_RA)
            s->ra = initial->ra;
    }
    return !c->bad;
}

/* The module whose code holds pc, and its .eh_frame_hdr. */
typedef struct find_ctx {
    uintptr_t pc;
    const uint8_t *hdr;
    bool found;
} find_ctx_t;

static int find_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    find_ctx_t *f = arg;
    const uint8_t *hdr = NULL;
    bool hit = false;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && f->pc - start < ph->p_memsz)
            hit = true;
        else if (ph->p_type == PT_GNU_EH_FRAME)
            hdr = (const uint8_t *)start;
    }
    if (!hit)
        return 0;
    f->found = true;
    f->hdr = hdr;
    return 1;
}

static lkd_cfi_rule_t rule_fail(uintptr_t ra)
{
    return (lkd_cfi_rule_t){0, 0, LKD_CFI_FAIL, (uint16_t)ra};
}

/* lkd_cfi_find_rule - the rule of the frame that return address ra returns into: the
 * instructions of its FDE up to ra - 1 (the call; ra itself may start another function
 * after a call that does not return). */
lkd_cfi_rule_t lkd_cfi_find_rule(uintptr_t ra)
{
    uintptr_t pc = ra - 1;
    find_ctx_t f = {pc, NULL, false};
    dl_iterate_phdr(find_module, &f);
    if (!f.found || !f.hdr)
        return rule_fail(ra);

    /* .eh_frame_hdr: version 1, encodings, eh_frame pointer, count, sorted table. */
    const uint8_t *h = f.hdr;
    if (h[0] != 1 || h[3] != 0x3b) /* table of datarel sdata4 pairs */
        return rule_fail(ra);
    uintptr_t data = (uintptr_t)h;
    cursor_t c = {h + 4, h + 4 + 16, false};
    (void)encoded(&c, h[1], data);
    uint64_t count = encoded(&c, h[2], data);
    if (c.bad || !count)
        return rule_fail(ra);
    const int32_t *table = (const int32_t *)(const void *)c.p;
    uint64_t lo = 0, hi = count;
    while (hi - lo > 1) { /* last entry whose start <= pc */
        uint64_t mid = lo + (hi - lo) / 2;
        if (data + (intptr_t)table[2 * mid] <= pc)
            lo = mid;
        else
            hi = mid;
    }
    if (data + (intptr_t)table[2 * lo] > pc)
        return rule_fail(ra);
    const uint8_t *fde = (const uint8_t *)(data + (intptr_t)table[2 * lo + 1]);

    /* FDE: length, CIE pointer, then (after the CIE's augmentation tells the encoding) the
     * address range. */
    uint32_t fde_len = *(const uint32_t *)(const void *)fde;
    if (fde_len == 0 || fde_len == 0xffffffffu)
        return rule_fail(ra);
    const uint8_t *fde_end = fde + 4 + fde_len;
    uint32_t cie_off = *(const uint32_t *)(const void *)(fde + 4);
    const uint8_t *cie = fde + 4 - cie_off;
    uint32_t cie_len = *(const uint32_t *)(const void *)cie;
    if (cie_len == 0 || cie_len == 0xffffffffu || *(const uint32_t *)(const void *)(cie + 4))
        return rule_fail(ra);

    cursor_t ci = {cie + 8, cie + 4 + cie_len, false};
    uint8_t version = (uint8_t)fixed(&ci, 1);
    const char *aug = (const char *)ci.p;
    size_t aug_len = strnlen(aug, (size_t)(ci.end - ci.p));
    if ((version != 1 && version != 3) || aug_len == (size_t)(ci.end - ci.p))
        return rule_fail(ra);
    ci.p += aug_len + 1;
    uint64_t code_align = uleb(&ci);
    int64_t data_align = sleb(&ci);
    uint64_t ra_reg = version == 1 ? fixed(&ci, 1) : uleb(&ci);
    uint8_t fde_enc = 0x00;
    bool has_z = aug[0] == 'z';
    if (aug_len && !has_z)
        return rule_fail(ra);
    if (has_z) {
        uint64_t n = uleb(&ci);
        const uint8_t *after = ci.p + n;
        for (const char *a = aug + 1; *a && !ci.bad; a++) {
            if (*a == 'R')
                fde_enc = (uint8_t)fixed(&ci, 1);
            else if (*a == 'L')
                (void)fixed(&ci, 1);
            else if (*a == 'P') {
                uint8_t penc = (uint8_t)fixed(&ci, 1);
                (void)encoded(&ci, penc & 0x7f, data); /* not followed */
            } else if (*a == 'S')
                return rule_fail(ra); /* signal frame */
            else
                break; /* unknown: its data is skipped by length */
        }
        if (after > ci.end)
            return rule_fail(ra);
        ci.p = after;
    }
    if (ci.bad || ra_reg != DW_REG_RA)
        return rule_fail(ra);

    cursor_t fc = {fde + 8, fde_end, false};
    uint64_t start = encoded(&fc, fde_enc, data);
    uint64_t range = encoded(&fc, fde_enc & 0x0f, data);
    if (fc.bad || pc < start || pc - start >= range)
        return rule_fail(ra);
    if (has_z) {
        uint64_t n = uleb(&fc);
        if (n > (uint64_t)(fc.end - fc.p))
            return rule_fail(ra);
        fc.p += n;
    }

    cfa_state_t s = {DW_REG_RSP, 8, false, {SAME, 0}, {SAVED, -8}};
    if (!run_cfa(&ci, &s, NULL, start, pc, code_align, data_align))
        return rule_fail(ra);
    cfa_state_t initial = s;
    if (!run_cfa(&fc, &s, &initial, start, pc, code_align, data_align))
        return rule_fail(ra);

    if (s.ra.how == UNDEF)
        return (lkd_cfi_rule_t){0, 0, LKD_CFI_END, (uint16_t)ra};
    if (s.cfa_expr || (s.cfa_reg != DW_REG_RSP && s.cfa_reg != DW_REG_RBP) ||
        s.cfa_off != (int32_t)s.cfa_off || s.ra.how != SAVED || s.ra.off != -8)
        return rule_fail(ra);
    lkd_cfi_rule_t r = {(int32_t)s.cfa_off, 0, LKD_CFI_OK, (uint16_t)ra};
    if (s.cfa_reg == DW_REG_RBP)
        r.flags |= LKD_CFI_RBP;
    if (s.rbp.how == SAVED) {
        if (s.rbp.off % 8 || s.rbp.off / 8 < INT8_MIN || s.rbp.off / 8 >= 0)
            return rule_fail(ra);
        r.rbp_slot = (int8_t)(s.rbp.off / 8);
    } else if (s.rbp.how != SAME) {
        return rule_fail(ra);
    }
    return r;
}

/* ---- the rule cache ------------------------------------------------------------------ */

/* Open addressing, linear probing, keyed by return address; a table is replaced by one
 * twice the size at half load. Hand-written rather than uthash: it is read on every frame
 * of every allocation, without a lock. */
typedef struct rule_slot {
    _Atomic uint64_t key; /* return address; 0: empty */
    _Atomic uint64_t rule;
} rule_slot_t;

typedef struct rule_table {
    uint64_t mask;
    uint64_t used;
    rule_slot_t slots[];
} rule_table_t;

#define RULES_FIRST 4096
#define RULE_K 0x9e3779b97f4a7c15ull

static _Atomic(rule_table_t *) rules;
static atomic_uint rules_gen; /* bumped by lkd_cfi_forget: threads drop their last stack */
static atomic_flag rules_lock = ATOMIC_FLAG_INIT;
static uintptr_t shim_lo, shim_len;

static inline bool in_shim(uint64_t pc)
{
    return pc - shim_lo < shim_len;
}

/* In the table's rules only: the return address is the shim's. With it, one test of the
 * flags tells the usual frame (LKD_CFI_OK, maybe LKD_CFI_RBP) from all the others. */
#define RULE_SHIM 8

static inline uint64_t pack(lkd_cfi_rule_t r)
{
    uint64_t v;
    memcpy(&v, &r, sizeof v);
    return v;
}

static inline lkd_cfi_rule_t unpack(uint64_t v)
{
    lkd_cfi_rule_t r;
    memcpy(&r, &v, sizeof r);
    return r;
}

static rule_table_t *table_new(uint64_t slots)
{
    size_t bytes = sizeof(rule_table_t) + slots * sizeof(rule_slot_t);
    rule_table_t *t = lkd_arena_alloc(bytes);
    if (t)
        t->mask = slots - 1;
    return t;
}

static void table_put(rule_table_t *t, uint64_t ra, uint64_t rule)
{
    for (uint64_t i = (ra * RULE_K) >> 20 & t->mask;; i = (i + 1) & t->mask) {
        uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_relaxed);
        if (k == ra)
            return;
        if (!k) {
            atomic_store_explicit(&t->slots[i].rule, rule, memory_order_relaxed);
            atomic_store_explicit(&t->slots[i].key, ra, memory_order_release);
            t->used++;
            return;
        }
    }
}

static void rules_acquire(void)
{
    while (atomic_flag_test_and_set_explicit(&rules_lock, memory_order_acquire))
        ;
}

static void rules_release(void)
{
    atomic_flag_clear_explicit(&rules_lock, memory_order_release);
}

/* The slow path: the rule from .eh_frame, added to the table (grown when half full), with
 * RULE_SHIM when ra is the shim's. */
__attribute__((noinline)) static lkd_cfi_rule_t rule_miss(uintptr_t ra)
{
    lkd_cfi_rule_t r = lkd_cfi_find_rule(ra);
    if (in_shim(ra))
        r.flags |= RULE_SHIM;
    rules_acquire();
    rule_table_t *t = atomic_load_explicit(&rules, memory_order_relaxed);
    if (!t || (t->used + 1) * 2 > t->mask + 1) {
        rule_table_t *n = table_new(t ? (t->mask + 1) * 2 : RULES_FIRST);
        if (n) {
            for (uint64_t i = 0; t && i <= t->mask; i++) {
                uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_relaxed);
                if (k)
                    table_put(n, k, atomic_load_explicit(&t->slots[i].rule, memory_order_relaxed));
            }
            atomic_store_explicit(&rules, n, memory_order_release);
            t = n;
        }
    }
    if (t && (t->used + 1) * 2 <= t->mask + 1)
        table_put(t, ra, pack(r));
    rules_release();
    return r;
}

/* Table t's rule for ra (mask: t's), packed; 0 when t has none. The walk passes the table
 * it loaded once: an old table is never freed, and after a miss the walk loads the new one. */
static inline uint64_t rule_in(const rule_table_t *t, uint64_t mask, uintptr_t ra)
{
    for (uint64_t i = (ra * RULE_K) >> 20 & mask;; i = (i + 1) & mask) {
        uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_acquire);
        if (k == ra) {
            uint64_t v = atomic_load_explicit(&t->slots[i].rule, memory_order_relaxed);
            return unpack(v).tag == (uint16_t)ra ? v : 0; /* a valid rule has flags */
        }
        if (!k)
            return 0;
    }
}

/* lkd_cfi_forget - see cfi.h. A fresh table replaces the current one. */
void lkd_cfi_forget(void)
{
    rules_acquire();
    atomic_fetch_add_explicit(&rules_gen, 1, memory_order_relaxed);
    rule_table_t *t = atomic_load_explicit(&rules, memory_order_relaxed);
    if (t && t->used) {
        rule_table_t *n = table_new(t->mask + 1);
        if (n)
            atomic_store_explicit(&rules, n, memory_order_release);
        else /* keep the table, with nothing in it that a reader could take */
            for (uint64_t i = 0; i <= t->mask; i++)
                atomic_store_explicit(&t->slots[i].rule, 0, memory_order_relaxed);
    }
    rules_release();
}

void lkd_cfi_lock(void)
{
    rules_acquire();
}

void lkd_cfi_unlock(void)
{
    rules_release();
}

void lkd_cfi_init(uintptr_t shim_start, uintptr_t shim_end)
{
    shim_lo = shim_start;
    shim_len = shim_end - shim_start;
}

/* ---- the walk ---------------------------------------------------------------------- */

#define CAP (LKD_CFI_MAX_DEPTH + 8) /* frames kept: the program's, and shim frames below */

/* A thread's last stack, outermost frame first (so that the next stack, which shares its
 * outer part, is written in place after that part). Frame q ran at return address pc[q]
 * with stack pointer sp[q] and rbp[q]; its walk read the return address at sp[q - 1] - 8 and,
 * when the caller's saved rbp matters, that too: the saved rbp words read for frames [1, q]
 * are rck_at[0, rck_end[q]), which held rck_val[] (one flat list, so that checking them
 * skips the frames that read none). */
typedef struct last_stack {
    uint32_t n;      /* frames */
    uint32_t gen;    /* rules_gen when it was walked: older ones are dropped */
    uint32_t out;    /* of them the program's (the others are the shim's) */
    uint32_t low;    /* the shim's frames are all in [0, low) (main returns into the shim) */
    bool cut;        /* frame 0 is where the depth asked for stopped, not the outermost */
    bool whole;      /* the last walk's output was all the program's frames (out <= its max) */
    const void *rec; /* lkd_cfi_set_rec's record of this stack; NULL: none */
    uint64_t pc[CAP], sp[CAP], rbp[CAP], rck_at[CAP], rck_val[CAP];
    uint64_t hash[CAP]; /* the hash chain (stack_hash.h) over the program's frames [0, q] */
    uint8_t rck_end[CAP];
    uint8_t use[CAP]; /* USE_* */
} last_stack_t;
#define USE_CFA LKD_CFI_RBP /* the frame's CFA is rbp-based (the rule's own flag) */
#define USE_RBP 2 /* rbp[q] matters to the walk above: a rule uses it before it is restored */

static TLS last_stack_t last;

/* A thread's rule cache (LKD_CFI_CACHE_BYTES), direct-mapped. The shared table is sized for
 * every return address seen (4,096 slots and up, 16 bytes each, at most half full), so a
 * walk's lookups land on lines all over it: they were the hottest instructions of the walk
 * under sqlite3 (perf: 18% of its samples on the load of the key): its 567 rules sat on
 * about 440 lines. 256 entries here take 100% of sqlite3's lookups and 97.5% of python3's
 * (cachegrind: the L1 data misses the shim adds under sqlite3 fell by a third). In the
 * caller's memory, not static TLS: glibc carves that from every thread's stack (see
 * stack.c). */
typedef struct rule_cached {
    uint64_t key, rule; /* return address (0: none), packed rule */
} rule_cached_t;
#define RC_BITS 8
_Static_assert(LKD_CFI_CACHE_BYTES == sizeof(rule_cached_t) << RC_BITS, "256 entries");

/* The rule cache's entry for return address pc; mask: the cache's entries - 1, or 0 for a
 * cache of one entry. */
static inline rule_cached_t *rc_entry(rule_cached_t *rc, uint64_t mask, uintptr_t pc)
{
    return &rc[(pc * RULE_K) >> (64 - RC_BITS) & mask];
}

/* The CFA of a frame whose rule is r, from its stack pointer and rbp. */
static inline uintptr_t rule_cfa(lkd_cfi_rule_t r, uintptr_t sp, uintptr_t rbp)
{
    return (r.flags & LKD_CFI_RBP ? rbp : sp) + (intptr_t)r.cfa_off;
}

/* sp < cfa <= hi in one unsigned test (sp <= hi): the walk's bound on every step. */
static inline bool cfa_within(uintptr_t cfa, uintptr_t sp, uintptr_t hi)
{
    return cfa - sp - 1 < hi - sp;
}

/* Frames walked before reaching the last stack, innermost last: the i-th walked is at
 * AT(i), so that they are in the last stack's order, outermost first, and append copies
 * them with one index. */
typedef struct walked {
    uint64_t pc[CAP], sp[CAP], rbp[CAP];
    uint64_t rule[CAP]; /* packed lkd_cfi_rule_t */
} walked_t;
#define AT(i) (CAP - 1 - (i))

/* A walked frame's rbp slot and USE_CFA, from its packed rule. */
static inline int8_t walked_slot(const walked_t *t, uint32_t i)
{
    return unpack(t->rule[AT(i)]).rbp_slot;
}

static inline uint8_t walked_use(const walked_t *t, uint32_t i)
{
    return unpack(t->rule[AT(i)]).flags & USE_CFA;
}

/* May the walk take l's frames [0, m] as its own, after walking `program` frames of the
 * program? Returns 0 if so, else the outermost frame p <= m that rules it out (so no frame
 * from p in can match either): one whose reads above differ now. A saved rbp that nothing
 * uses is not compared: code built without frame pointers keeps anything in rbp, and
 * comparing it failed most matches under sqlite3. Out of line: the walk's loop keeps its
 * registers. */
__attribute__((noinline)) static uint32_t differs_above(const last_stack_t *l, uint32_t m,
                                                        uint32_t program, uint32_t max)
{
    if (l->cut) { /* its walk stopped: it must have as many frames as this one needs */
        for (uint32_t q = 0; q <= m; q++)
            program += !in_shim(l->pc[q]);
        if (program < max)
            return m + 1;
    }
    /* All the words at once, with no branch per frame: most checks pass (93% under
     * python3), and one that fails is looked for again frame by frame. */
    const uint64_t *sp = l->sp, *pc = l->pc, *at = l->rck_at, *val = l->rck_val;
    uint64_t diff = 0;
#pragma GCC unroll 4
    for (uint32_t p = 0; p < m; p++)
        diff |= ((const uint64_t *)(uintptr_t)sp[p])[-1] ^ pc[p];
    for (uint32_t j = 0, end = l->rck_end[m]; j < end; j++)
        diff |= *(const uint64_t *)(uintptr_t)at[j] ^ val[j];
    if (!diff)
        return 0;
    for (uint32_t p = 1; p <= m; p++) {
        diff = ((const uint64_t *)(uintptr_t)sp[p - 1])[-1] ^ pc[p - 1];
        for (uint32_t j = l->rck_end[p - 1]; j < l->rck_end[p]; j++)
            diff |= *(const uint64_t *)(uintptr_t)at[j] ^ val[j];
        if (diff)
            return p;
    }
    return 0; /* the words changed between the two reads: as read now, they match */
}

/* l's frames from `from` on become the walked frames t[0, n), reversed. rbp's use is worked
 * out outward-in: a frame's rbp matters when its CFA uses it, or when it does not save it
 * and its caller's matters. shim: how many of the walked frames are the shim's. */
static void append(last_stack_t *l, uint32_t from, const walked_t *t, uint32_t n, uint32_t shim)
{
    bool used = from && (l->use[from - 1] & USE_RBP);
    uint64_t h = from ? l->hash[from - 1] : LKD_HASH_SEED;
    uint32_t out = from, low = 0, k = 0;
    if (from >= l->low) { /* all the shim's frames kept: they are all below low */
        out = from - (l->n - l->out);
        low = l->low;
    } else {
        for (uint32_t q = 0; q < from; q++)
            if (in_shim(l->pc[q])) {
                out--;
                low = q + 1;
            }
    }
    if (!from && n) { /* the outermost frame: nothing above it read */
        uint32_t i = n - 1;
        l->pc[0] = t->pc[AT(i)];
        l->sp[0] = t->sp[AT(i)];
        l->rbp[0] = t->rbp[AT(i)];
        l->rck_end[0] = 0;
        uint8_t use = walked_use(t, i);
        used = use & USE_CFA;
        l->use[0] = use | (used ? USE_RBP : 0);
        bool sh = in_shim(t->pc[AT(i)]);
        out += !sh;
        low = sh ? 1 : low;
        h = sh ? h : lkd_hash_step(h, t->pc[AT(i)]);
        l->hash[0] = h;
        k = 1;
    }
    /* The frame above the next one: its stack pointer and rbp, and the saved rbp words read
     * so far; kept in registers, not read back from l. */
    uint32_t top = from + k; /* >= 1 unless there is nothing to append */
    uint64_t up_sp = top ? l->sp[top - 1] : 0, up_rbp = top ? l->rbp[top - 1] : 0;
    uint32_t rck = top ? l->rck_end[top - 1] : 0;
    for (; k < n; k++) {
        uint32_t q = from + k, i = n - 1 - k;
        uint64_t pc = t->pc[AT(i)], sp = t->sp[AT(i)], rbp = t->rbp[AT(i)];
        int8_t slot = walked_slot(t, i);
        uint8_t use = walked_use(t, i);
        l->pc[q] = pc;
        l->sp[q] = sp;
        l->rbp[q] = rbp;
        /* written in any case, counted when read: the caller's rbp, saved, that matters */
        l->rck_at[rck] = up_sp + 8 * (intptr_t)slot;
        l->rck_val[rck] = up_rbp;
        rck += slot && used;
        l->rck_end[q] = (uint8_t)rck;
        used = (use & USE_CFA) || (!slot && used);
        l->use[q] = use | (used ? USE_RBP : 0);
        if (__builtin_expect(shim != 0, 0)) {
            bool sh = in_shim(pc);
            out += !sh;
            low = sh ? q + 1 : low;
            h = sh ? h : lkd_hash_step(h, pc);
        } else {
            out++;
            h = lkd_hash_step(h, pc);
        }
        l->hash[q] = h;
        up_sp = sp;
        up_rbp = rbp;
    }
    l->n = from + n;
    l->out = out;
    l->low = low;
}

/* append's usual case: the frames walked go below frame from - 1 of l (from >= 1), which
 * keeps all of l's shim frames (from >= l->low), and none of them is the shim's. With the
 * frame above the first one written into t's free slot below them (n < CAP), the loop reads
 * both frames from t at one index. */
static void append_below(last_stack_t *l, uint32_t from, walked_t *t, uint32_t n)
{
    /* size_t indexes: t's j - 1 is then an offset from j's address */
    size_t top = from - 1, j = CAP - n;
    uint32_t rck = l->rck_end[top];
    uint64_t h = l->hash[top];
    unsigned used = (l->use[top] & USE_RBP) != 0;
    t->sp[j - 1] = l->sp[top];
    t->rbp[j - 1] = l->rbp[top];
    l->out = from - (l->n - l->out) + n;
    l->n = from + n;
    for (size_t q = from; j < CAP; j++, q++) {
        uint64_t pc = t->pc[j];
        lkd_cfi_rule_t r = unpack(t->rule[j]);
        unsigned saved = r.rbp_slot != 0, cfa_rbp = (r.flags & USE_CFA) != 0;
        l->pc[q] = pc;
        l->sp[q] = t->sp[j];
        l->rbp[q] = t->rbp[j];
        /* written in any case, counted when read: the caller's rbp, saved, that matters */
        l->rck_at[rck] = t->sp[j - 1] + 8 * (intptr_t)r.rbp_slot;
        l->rck_val[rck] = t->rbp[j - 1];
        rck += used & saved;
        l->rck_end[q] = (uint8_t)rck;
        used = cfa_rbp | (used & !saved);
        l->use[q] = (uint8_t)(cfa_rbp * USE_CFA | used * USE_RBP);
        h = lkd_hash_step(h, pc);
        l->hash[q] = h;
    }
}

/* The program's innermost frame, reached from the shim frame fp along the shim's frame-pointer
 * chain (the shim is built with frame pointers): its return address, stack pointer and rbp.
 * False when the chain leaves [lo, hi) or does not look like one. */
static inline bool program_frame(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pc,
                                 uintptr_t *sp, uintptr_t *rbp)
{
    for (int i = 0; i < 16; i++) {
        if (fp - lo > hi - lo - 16 || (fp & 7))
            return false;
        uintptr_t next = ((uintptr_t *)fp)[0], ret = ((uintptr_t *)fp)[1];
        if (ret - shim_lo >= shim_len) {
            *pc = ret;
            *sp = fp + 16;
            *rbp = next;
            return ret != 0;
        }
        if (next <= fp)
            return false;
        fp = next;
    }
    return false;
}

/* lkd_cfi_walk - see cfi.h. */
int lkd_cfi_walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uint32_t max, void *cache,
                 lkd_cfi_walk_t *w)
{
    w->prev = NULL;
    w->same = false;
    if (!max || max > LKD_CFI_MAX_DEPTH || hi - lo < 64)
        return -1;
    uintptr_t pc, sp, rbp;
    if (!program_frame(fp, lo, hi, &pc, &sp, &rbp))
        return -1;

    last_stack_t *l = &last;
    uint32_t gen = atomic_load_explicit(&rules_gen, memory_order_relaxed);
    if (__builtin_expect(l->gen != gen, 0)) { /* code was unloaded since: start afresh */
        /* all three: append counts on from out and low */
        l->n = l->out = l->low = 0;
        l->gen = gen;
        l->rec = NULL;
        if (cache)
            memset(cache, 0, LKD_CFI_CACHE_BYTES);
    }
    /* Without a cache, one entry on this stack stands in for it. */
    rule_cached_t none = {0, 0}, *rc = cache ? cache : &none;
    const uint64_t rc_mask = cache ? (1u << RC_BITS) - 1 : 0;
    /* The rule table, loaded once (and again after a miss): a local, in a register. */
    const rule_table_t *tab = atomic_load_explicit(&rules, memory_order_acquire);
    if (__builtin_expect(!tab, 0)) { /* the first walk of all: a miss makes the table */
        (void)rule_miss(pc);
        if (!(tab = atomic_load_explicit(&rules, memory_order_acquire)))
            return -1;
    }
    uint64_t mask = tab->mask;
    walked_t t;
    const uintptr_t sp0 = sp; /* no frame of the walk reads below it */
    uint32_t n = 0, shim = 0, q = l->n, limit = l->n;
    /* n reaches end when the walk has max frames of the program, or CAP in all */
    uint32_t end = max + shim < CAP ? max + shim : CAP;
    /* l's frame q - 1 is the next candidate; its stack pointer, or none. */
    uint64_t cand_sp = q ? l->sp[q - 1] : UINT64_MAX;
    bool cut = false, found = false;
    for (;;) {
        /* The last stack's frame at this stack pointer, if any (both ordered by it). */
        while (cand_sp < sp) {
            q--;
            cand_sp = q ? l->sp[q - 1] : UINT64_MAX;
        }
        if (cand_sp == sp && q - 1 < limit && l->pc[q - 1] == pc &&
            (l->rbp[q - 1] == rbp || !(l->use[q - 1] & USE_RBP))) {
            uint32_t bad = differs_above(l, q - 1, n - shim, max);
            if (!bad) {
                found = true;
                break;
            }
            limit = bad;
        }
        rule_cached_t *c = rc_entry(rc, rc_mask, pc);
        uint64_t v = c->rule;
        if (__builtin_expect(c->key != pc, 0)) {
            v = rule_in(tab, mask, pc);
            if (__builtin_expect(!v, 0)) {
                v = pack(rule_miss(pc));
                tab = atomic_load_explicit(&rules, memory_order_acquire);
                mask = tab->mask;
            }
            c->key = pc;
            c->rule = v;
        }
        lkd_cfi_rule_t r = unpack(v);
        t.pc[AT(n)] = pc;
        t.sp[AT(n)] = sp;
        t.rbp[AT(n)] = rbp;
        t.rule[AT(n)] = v;
        n++;
        if (__builtin_expect((r.flags & ~LKD_CFI_RBP) != LKD_CFI_OK, 0)) {
            if (r.flags & RULE_SHIM) {
                shim++;
                end = max + shim < CAP ? max + shim : CAP;
            }
            uint8_t kind = r.flags & LKD_CFI_KIND;
            if (kind == LKD_CFI_END)
                break;
            if (kind != LKD_CFI_OK)
                return -1;
        }
        if (__builtin_expect(n == end, 0)) {
            if (n - shim < max)
                return -1; /* CAP frames, not max of the program's */
            cut = true;
            break;
        }
        uintptr_t cfa = rule_cfa(r, sp, rbp);
        /* Both reads between the first frame and the top of this thread's stack (all of it
         * mapped: a thread's stack is, and the main thread's above its lowest pointer), and
         * the stack moving up: sp < cfa <= hi (cfa_within). rbp_slot is
         * never above 0 (lkd_cfi_find_rule), so the lowest read is at cfa + 8 * slot, or at
         * cfa - 8 with no slot. */
        uintptr_t low = cfa + 8 * (intptr_t)(r.rbp_slot - (r.rbp_slot == 0));
        if (!cfa_within(cfa, sp, hi) || low < sp0)
            return -1;
        pc = ((const uint64_t *)cfa)[-1];
        if (r.rbp_slot)
            rbp = ((const uint64_t *)cfa)[r.rbp_slot];
        sp = cfa;
        if (!pc)
            return -1;
    }
    const void *prev = l->rec;
    if (!found) {
        l->cut = cut;
        append(l, 0, &t, n, shim);
    } else if (n || q != l->n) {
        if (q + n > CAP)
            return -1;
        if (__builtin_expect(!shim && q && q >= l->low, 1))
            append_below(l, q, &t, n);
        else
            append(l, q, &t, n, shim);
    } else {
        w->same = true; /* the very same stack */
    }
    if (!w->same)
        l->rec = NULL;
    l->whole = l->out <= max;
    if (!l->whole)
        return (int)max;
    if (prev && !shim) { /* no shim frame walked: the program's frames [q, n) are new */
        w->prev = prev;
        w->innermost = &l->pc[l->n - 1];
        w->added = n;
        w->keep = l->out - n;
        w->hash = lkd_hash_end(l->hash[l->n - 1] ^ l->out);
    }
    return (int)l->out;
}

/* lkd_cfi_output - see cfi.h. */
uint32_t lkd_cfi_output(uint64_t *frames, uint32_t max, uint64_t *hash)
{
    const uintptr_t shim0 = shim_lo, shim_n = shim_len;
    const last_stack_t *l = &last;
    /* Innermost first, the shim's frames left out, at most max. Above `low` there are
     * none: copied as they are. */
    const uint64_t *lpc = l->pc;
    uint32_t k = 0, i = l->n;
    if (l->out <= max) {
        for (; i > l->low; k++)
            frames[k] = lpc[--i];
        while (i-- > 0) {
            uint64_t f = lpc[i];
            frames[k] = f;
            k += f - shim0 >= shim_n;
        }
        *hash = lkd_hash_end(l->hash[l->n - 1] ^ k);
    } else { /* the innermost max: their chain is not the last stack's */
        while (i-- > 0 && k < max)
            if (lpc[i] - shim0 >= shim_n)
                frames[k++] = lpc[i];
        *hash = lkd_hash_outer_first(frames, k);
    }
    return k;
}

/* ---- the memo ----------------------------------------------------------------------- */

/* A thread's memo of whole stacks: what a walk read, to give the same record again without
 * walking. A walk is a function of where it starts (the program's innermost frame: its
 * return address, stack pointer and, when a rule uses it, rbp) and of the words it reads
 * above that (each frame's return address, and the saved rbp words that matter, as in
 * differs_above); with the rules unchanged, the same start and the same words give the same
 * stack. An entry keeps them, as offsets from the start's stack pointer, with the record.
 * The last stack alone matches when the stack shares its outer frames with the previous
 * one; programs that loop come back to the same few dozen stacks over and over (python3:
 * 98% of its allocations had the very stack of one of the 64 before, sqlite3 99.6% of one of
 * the 16 before, while the last stack alone left 3.4 and 6.5 frames to walk), and a hit then
 * reads one word per frame instead of walking, checking the frames above and looking up
 * a transition.
 * Entries are chained from MEMO_HEADS lists by a hash of the start and of its caller's return
 * address, and replaced by the clock algorithm (a hit marks an entry used; the hand passes
 * over used entries once): sets of four ways, replaced in turn, missed 0.1% to 19% of
 * python3's lookups from one run to the next, as address-space randomisation put more of its
 * stacks in some set than it had ways. A thread whose stacks do not come back (the deep-stack
 * loop's 256 stacks in turn, which share their innermost frames) would pay for a lookup and
 * an entry per allocation: when fewer than half of MEMO_WINDOW lookups hit, the memo rests
 * for a while, twice as long each time it is found useless again. */
#define MEMO_WORDS 32 /* a multiple of four */
#define MEMO_HEADS 256
#define MEMO_TRIES 4
#define MEMO_WINDOW 256
#define MEMO_REST_MIN 4096
#define MEMO_REST_MAX (1u << 22)

typedef struct memo_entry {
    uint64_t pc, sp; /* the start; pc 0: not in a list */
    const void *rec;
    uint64_t rbp;
    uint16_t words; /* read above the start: off[i] bytes above its stack pointer held val[i] */
    uint16_t max;   /* the walk's max (a stack deeper than max was cut there) */
    uint32_t top;   /* the walk's highest frame this many bytes above the start */
    bool use_rbp;   /* rbp at the start matters */
    bool used;      /* hit since the clock's hand last passed */
    uint8_t next;   /* the next entry of its list, + 1; 0: none */
    uint8_t list;
    uint32_t off[MEMO_WORDS];
    uint64_t val[MEMO_WORDS];
} memo_entry_t;

typedef struct memo_head {
    uint32_t rest;        /* captures left to sit out (lkd_cfi_memo_rests): first */
    uint32_t rest_next;   /* the next rest */
    uint32_t tries, hits; /* of the current window */
    uint32_t gen;         /* rules_gen of the entries */
    uint32_t hand;        /* the clock's */
    uint64_t hits_all;    /* since the memo was made (lkd_cfi_memo_hits) */
} memo_head_t;

#define MEMO_ENTRIES                                                                               \
    ((LKD_CFI_MEMO_BYTES - sizeof(memo_head_t) - MEMO_HEADS) / sizeof(memo_entry_t))

typedef struct memo {
    memo_head_t head;
    uint8_t lists[MEMO_HEADS]; /* each list's first entry, + 1; 0: empty */
    memo_entry_t entry[MEMO_ENTRIES];
} memo_t;
_Static_assert(sizeof(memo_t) <= LKD_CFI_MEMO_BYTES, "the memo fits its bytes");
_Static_assert(MEMO_ENTRIES < 256 && MEMO_HEADS <= 256, "entries and lists in a byte");
_Static_assert(offsetof(memo_t, head.rest) == 0, "lkd_cfi_memo_rests reads the first word");

/* The list of a stack that starts at return address pc and stack pointer sp, whose caller
 * returns to ra1 (0: none known). With ra1, the stacks of a function that all allocations go
 * through (python3's _PyMem_RawMalloc, at a few depths) spread over the lists. */
static inline uint32_t memo_list(uint64_t pc, uint64_t sp, uint64_t ra1)
{
    return (uint32_t)(((pc ^ sp ^ (ra1 << 1)) * RULE_K) >> 56);
}
_Static_assert(MEMO_HEADS == 256, "memo_list's 8 bits");

/* The window is over: a memo that hit less than half the time rests. */
__attribute__((noinline, cold)) static void memo_judge(memo_head_t *h)
{
    if (h->hits * 2 < h->tries) {
        h->rest = h->rest_next ? h->rest_next : MEMO_REST_MIN;
        h->rest_next = h->rest < MEMO_REST_MAX ? h->rest * 2 : MEMO_REST_MAX;
    } else {
        h->rest_next = 0;
    }
    h->tries = h->hits = 0;
}

/* Code was unloaded since the entries were made: all go. */
__attribute__((noinline, cold)) static void memo_clear(memo_t *m, uint32_t gen)
{
    memset(m->lists, 0, sizeof m->lists);
    for (uint32_t i = 0; i < MEMO_ENTRIES; i++)
        m->entry[i].pc = 0;
    m->head.gen = gen;
}

/* True when the words e read above the stack pointer sp hold what they held. Four at a
 * time, innermost first (entries are padded to a multiple of four): an entry for the same
 * start under other callers differs in the first few words it reads, mostly, and is left
 * after them. */
static inline bool memo_words_hold(const memo_entry_t *e, uintptr_t sp)
{
    const uint32_t *off = e->off;
    const uint64_t *val = e->val;
    for (uint32_t j = 0, n = e->words; j < n; j += 4) {
        uint64_t diff = (*(const uint64_t *)(sp + off[j]) ^ val[j]) |
                        (*(const uint64_t *)(sp + off[j + 1]) ^ val[j + 1]) |
                        (*(const uint64_t *)(sp + off[j + 2]) ^ val[j + 2]) |
                        (*(const uint64_t *)(sp + off[j + 3]) ^ val[j + 3]);
        if (diff)
            return false;
    }
    return true;
}

/* lkd_cfi_memo_find - see cfi.h. */
__attribute__((noinline)) const void *lkd_cfi_memo_find(void *memo, void *cache, uintptr_t fp,
                                                        uintptr_t lo, uintptr_t hi, uint32_t max)
{
    memo_t *m = memo;
    uintptr_t pc, sp, rbp;
    if (hi - lo < 64 || !program_frame(fp, lo, hi, &pc, &sp, &rbp))
        return NULL;
    /* The caller's return address, read as the walk reads it, in the same bounds, by the
     * start's rule: from the rule cache, else from the shared table (into the cache), so
     * that the list is always the one the entry went to. Taken from the cache alone, it was
     * not there for a few thousand to 40,000 of python3's lookups, depending on where
     * address-space randomisation put the code: a walk had just put another return address's
     * rule in its slot. No rule: the start was never walked, and no entry has it. */
    uint64_t ra1 = 0;
    rule_cached_t *c = rc_entry(cache, (1u << RC_BITS) - 1, pc);
    uint64_t v = c->rule;
    if (__builtin_expect(c->key != pc, 0)) {
        const rule_table_t *t = atomic_load_explicit(&rules, memory_order_acquire);
        if (t && (v = rule_in(t, t->mask, pc))) {
            c->key = pc;
            c->rule = v;
        }
    }
    lkd_cfi_rule_t r = unpack(v);
    uintptr_t cfa = rule_cfa(r, sp, rbp);
    if ((r.flags & LKD_CFI_KIND) == LKD_CFI_OK && cfa_within(cfa, sp, hi))
        ra1 = ((const uint64_t *)cfa)[-1];
    uint32_t gen = atomic_load_explicit(&rules_gen, memory_order_relaxed);
    if (__builtin_expect(m->head.gen != gen, 0))
        memo_clear(m, gen);
    if (__builtin_expect(++m->head.tries == MEMO_WINDOW, 0))
        memo_judge(&m->head);
    /* at most MEMO_TRIES entries checked: the deep-stack loop has 32 stacks in one list */
    unsigned tries = MEMO_TRIES;
    for (uint32_t i = m->lists[memo_list(pc, sp, ra1)]; i;) {
        memo_entry_t *e = &m->entry[i - 1];
        i = e->next;
        if (e->pc != pc || e->sp != sp || (e->use_rbp && e->rbp != rbp) || e->max != max ||
            e->top > hi - sp) /* the walk's bounds: another thread's entry, a larger stack */
            continue;
        if (!tries--)
            break;
        if (memo_words_hold(e, sp)) {
            e->used = true;
            m->head.hits++;
            m->head.hits_all++;
            return e->rec;
        }
    }
    return NULL;
}

/* lkd_cfi_memo_hits - see cfi.h. */
uint64_t lkd_cfi_memo_hits(const void *memo)
{
    return ((const memo_t *)memo)->head.hits_all;
}

/* Takes entry v out of its list. */
static void memo_unlink(memo_t *m, uint32_t v)
{
    uint8_t *at = &m->lists[m->entry[v].list];
    while (*at && *at != v + 1)
        at = &m->entry[*at - 1].next;
    if (*at)
        *at = m->entry[v].next;
    m->entry[v].pc = 0;
}

/* Puts the last stack, walked for max frames, whose record is rec, in the memo, in place of
 * the entry the clock's hand comes to first unused; only under the memo's rules. */
static void memo_put(memo_t *m, const void *rec, uint32_t max)
{
    const last_stack_t *l = &last;
    uint32_t n = l->n;
    if (l->gen != m->head.gen || !n)
        return;
    uint32_t in = n - 1, words = in + l->rck_end[in];
    if (words > MEMO_WORDS)
        return;
    uint32_t v = m->head.hand;
    while (m->entry[v].used) {
        m->entry[v].used = false;
        v = v + 1 < MEMO_ENTRIES ? v + 1 : 0;
    }
    m->head.hand = v + 1 < MEMO_ENTRIES ? v + 1 : 0;
    memo_entry_t *e = &m->entry[v];
    if (e->pc)
        memo_unlink(m, v);
    uint64_t sp = l->sp[in];
    if (in && l->sp[0] - sp > UINT32_MAX) /* the outermost frame is the highest */
        return;
    uint32_t j = 0;
    for (uint32_t p = in; p-- > 0; j++) { /* the return addresses, innermost first */
        uint64_t off = l->sp[p] - 8 - sp;
        if (off > UINT32_MAX)
            return;
        e->off[j] = (uint32_t)off;
        e->val[j] = l->pc[p];
    }
    for (uint32_t r = 0; r < l->rck_end[in]; r++, j++) {
        uint64_t off = l->rck_at[r] - sp;
        if (off > UINT32_MAX)
            return;
        e->off[j] = (uint32_t)off;
        e->val[j] = l->rck_val[r];
    }
    for (; j % 4; j++) { /* the last word again, up to a multiple of four */
        e->off[j] = e->off[j - 1];
        e->val[j] = e->val[j - 1];
    }
    e->rec = rec;
    e->rbp = l->rbp[in];
    e->words = (uint16_t)j;
    e->max = (uint16_t)max;
    e->top = in ? (uint32_t)(l->sp[0] - sp) : 0;
    e->use_rbp = (l->use[in] & USE_RBP) != 0;
    e->sp = sp;
    e->pc = l->pc[in];
    e->list = (uint8_t)memo_list(e->pc, sp, in ? l->pc[in - 1] : 0);
    e->next = m->lists[e->list];
    m->lists[e->list] = (uint8_t)(v + 1);
}

/* lkd_cfi_set_rec - see cfi.h. */
void lkd_cfi_set_rec(const void *rec, void *memo, uint32_t max)
{
    if (!last.whole)
        return;
    last.rec = rec;
    if (memo)
        memo_put(memo, rec, max);
}

/* lkd_cfi_capture - see cfi.h. */
int lkd_cfi_capture(uintptr_t fp, uintptr_t lo, uintptr_t hi, uint64_t *frames, uint32_t max,
                    uint64_t *hash, bool *same)
{
    lkd_cfi_walk_t w;
    *same = false;
    if (!max) {
        *hash = lkd_hash_outer_first(frames, 0);
        return 0;
    }
    if (lkd_cfi_walk(fp, lo, hi, max, NULL, &w) < 0)
        return -1;
    *same = w.same;
    return (int)lkd_cfi_output(frames, max, hash);
}
