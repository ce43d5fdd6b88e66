/*
 * symbols - turns raw return addresses from a snapshot into source locations.
 *
 * Uses elfutils libdwfl: each module of the snapshot's module map is reported at its
 * recorded load bias, so PIE/ASLR addresses resolve offline, also for modules that were
 * unloaded before the snapshot was taken. Inline frames are expanded; C++ names demangled.
 * Fallbacks, never a crash: no debug info -> symbol+offset from the symbol table; no
 * symbol -> module+offset; no module -> "0x<address>".
 * Results are cached per address; all strings are interned and owned by the symbolizer.
 */
#ifndef LKD_SYMBOLS_H
#define LKD_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

/* One source-level frame. For a return address with inlined calls, several of these come
 * back, innermost (the inlined callee) first, the physical function last. */
typedef struct lkd_frame {
    const char *function;   /* demangled symbol name (also without line info);
                               "module+0x1234" (address - bias) without a symbol;
                               "0x7f..." outside every module; never NULL */
    const char *file;       /* source path, or NULL */
    unsigned line;          /* 0 when unknown */
    const char *module;     /* path of the object file, or NULL when no module matched */
    uint64_t address;       /* the raw return address from the snapshot */
    uint64_t module_offset; /* address - module bias (file-relative), 0 without module */
    bool inlined;           /* true for frames that were inlined into the next one */
} lkd_frame_t;

typedef struct lkd_symbolizer lkd_symbolizer_t;

/* Opens a symbolizer for the modules of snap (which must outlive it). NULL on ENOMEM. */
lkd_symbolizer_t *lkd_symbolizer_open(const lkd_snapshot_t *snap);
void lkd_symbolizer_close(lkd_symbolizer_t *sym);

/*
 * Resolves one return address. *frames points to *count >= 1 frames owned by sym (valid
 * until close). Line lookup uses address - 1, since a return address points past the call.
 */
void lkd_symbolize(lkd_symbolizer_t *sym, uint64_t address, const lkd_frame_t **frames,
                   size_t *count);

/* Warnings gathered so far (missing files, build-id mismatches), one per line, or "". */
const char *lkd_symbolizer_warnings(const lkd_symbolizer_t *sym);

#endif
