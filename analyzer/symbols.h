/*
 * symbols - turns raw return addresses from a snapshot into source locations.
 *
 * Uses elfutils libdwfl on the files of the snapshot's module map: an address is taken as
 * (module, offset = address - recorded load bias), so PIE/ASLR addresses resolve offline,
 * also for modules that were unloaded before the snapshot was taken. Inline frames are
 * expanded; C++ names demangled. Debug info comes from the file itself or from a separate
 * debug file: DIR/.build-id/xx/yyyy.debug or the file's .gnu_debuglink name, in each DIR of
 * LEAKDIFF_DEBUG_DIR (colon-separated, read on open; default /usr/lib/debug).
 * Fallbacks, never a crash and never a wrong name: no debug info -> "symbol+0x1a" from the
 * symbol table (.dynsym of a stripped file), no file or line; no symbol, or a file whose
 * build-id differs from the recorded one (with a warning) -> "module+0x1234"; no module ->
 * "0x<address>".
 * Caches: module files and the frames of each (module file, offset) are shared by every
 * symbolizer open at the same time (a diff of two runs opens each file once and resolves
 * each call site once); each symbolizer caches its own addresses. All strings are interned
 * and live until the last symbolizer is closed.
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
    const char *function;   /* demangled function name from DWARF; without DWARF for the
                               address "symbol+0x1a" (address - symbol start); without a
                               symbol "module+0x1234" (address - bias); "0x7f..."
                               outside every module; never NULL */
    const char *file;       /* source path, or NULL */
    unsigned line;          /* 0 when unknown */
    const char *module;     /* path of the object file, or NULL when no module matched */
    uint64_t address;       /* the raw return address from the snapshot */
    uint64_t module_offset; /* address - module bias (file-relative), 0 without module */
    bool inlined;           /* true for frames that were inlined into the next one */
} lkd_frame_t;

typedef struct lkd_symbolizer lkd_symbolizer_t;

/* Opens a symbolizer for the modules of snap (which must outlive it); reads
 * LEAKDIFF_DEBUG_DIR. NULL on ENOMEM. One thread at a time per symbolizer; symbolizers of
 * different threads share their caches under a lock. */
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

/* What the symbol cache holds. Modules and (module, offset) results are shared by all
 * symbolizers open at the same time; addresses are counted per symbolizer. */
typedef struct lkd_symbolizer_stats {
    size_t modules_opened;   /* module files opened (one per path and build-id) */
    size_t offsets_resolved; /* distinct (module, offset) pairs resolved from the files */
    size_t addresses;        /* distinct addresses looked up through this symbolizer */
} lkd_symbolizer_stats_t;

/* Fills *out with the counters above, for tests and benchmarks. */
void lkd_symbolizer_stats(const lkd_symbolizer_t *sym, lkd_symbolizer_stats_t *out);

#endif
