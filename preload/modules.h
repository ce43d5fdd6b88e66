/*
 * modules - the map of every object ever loaded into the process.
 *
 * Read with dl_iterate_phdr: path, load bias, PT_LOAD range and GNU build-id. Modules that
 * disappear (dlclose) are kept and marked unloaded, so blocks they allocated still
 * symbolize. Never calls malloc.
 */
#ifndef LKD_MODULES_H
#define LKD_MODULES_H

#include <stddef.h>
#include <stdint.h>

#include "leakdiff/format.h"

typedef struct lkd_module {
    lkd_fmt_module_t rec; /* path field unused here; see path */
    char *path;
    struct lkd_module *next;
} lkd_module_t;

/* Re-reads the loader's list; now_seq stamps modules found new or gone. Returns the list
 * (oldest first), valid until the next refresh. Takes the modules lock. */
const lkd_module_t *lkd_modules_refresh(uint64_t now_seq);
/* Absolute path of the executable, read once at start-up. */
const char *lkd_modules_exe(void);
void lkd_modules_init(void);

#endif
