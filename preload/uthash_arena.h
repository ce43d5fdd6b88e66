/*
 * uthash_arena - uthash configured for the shim: item memory from the arena, and no exit()
 * on out-of-memory (uthash's default). Include this instead of <uthash.h> in preload/.
 */
#ifndef LKD_UTHASH_ARENA_H
#define LKD_UTHASH_ARENA_H

#include "arena.h"

#define uthash_malloc(sz) lkd_arena_alloc(sz)
#define uthash_free(ptr, sz) lkd_arena_free((ptr), (sz))
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#endif
