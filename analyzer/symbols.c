/*
 * symbols - offline symbolization of snapshot return addresses with elfutils libdwfl.
 *
 * The snapshot's module map is the truth. A module file is identified by its path, the GNU
 * build-id the snapshot recorded for it and the debug-info search path; each such file gets
 * one Dwfl of its own, created on first use, holding that one file reported at bias 0, so
 * that everything below the module level is keyed by FILE OFFSET (address - recorded bias)
 * and is independent of where the module was loaded. A file is trusted only when its
 * build-id equals the recorded one; for a changed, missing, unreadable or non-ELF file the
 * module's frames come out as "name+0xoffset" and one warning per module is recorded. VDSO
 * and pseudo-path ("[...]") modules are shown as module+offset silently.
 *
 * Three levels of cache:
 *  - the STORE (process-wide, shared by every symbolizer open at the same time, freed with
 *    the last one): module files, each opened at most once however many snapshots or
 *    load addresses refer to it; per module, the frames of each (module, offset) pair ever
 *    resolved; and the interned strings. So `diff` and `trend` resolve the call sites that
 *    their snapshots share once, whatever ASLR did, and a plugin loaded at three addresses
 *    is opened once.
 *  - per module: sorted symbol table, per-compile-unit subprogram ranges and file names.
 *  - per symbolizer: address -> frames (the frames carry the snapshot's own addresses).
 * Both maps of the first and last level are open-addressing tables: lookups cost about one
 * cache miss, which matters with millions of frames.
 *
 * One offset is resolved as: compile unit (libdwfl's aranges) -> subprogram (a per-CU
 * table of subprogram ranges, built once per CU: this is what keeps C++ cheap, elfutils'
 * dwarf_getscopes walks the whole CU for every address) -> inline chain (a pc-directed
 * descent through that subprogram only) -> line (libdwfl's per-CU line table). Without
 * DWARF the function is "symbol+0xoffset" from a sorted per-module copy of the symbol table
 * (.symtab, else .dynsym; libdwfl's own address-to-symbol lookup scans linearly). DWARF and
 * the symbol table may come from a separate debug file: libdwfl looks for
 * DIR/.build-id/xx/yyyy.debug and the .gnu_debuglink file in each DIR of the debug path,
 * /usr/lib/debug unless LEAKDIFF_DEBUG_DIR says otherwise.
 *
 * Invariants: every string handed out lives in the store (interned, or in its chunks when
 * made for one offset only) until the last symbolizer is closed; each (module file, offset) is
 * resolved at most once while the store lives, each address at most once per symbolizer;
 * lkd_symbolize always yields >= 1 frame. Lookups use offset - 1 (a return address points past its
 * call instruction).
 *
 * Must never: trust the snapshot or the files (paths may be missing, directories, FIFOs,
 * not ELF, truncated; DWARF may be broken), crash on any of it, name a frame from a file
 * whose build-id differs from the recorded one, or use debuginfod (it can hang on the
 * network and has deadlocked in-process users; DEBUGINFOD_URLS is removed from the
 * environment on open). The store is guarded by one mutex; a symbolizer itself is used by
 * one thread at a time.
 */
#include "symbols.h"

#include <assert.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Out of memory inside uthash leaves the element out (elt->hh.tbl == NULL) instead of
 * exiting the process. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* The C++ runtime's demangler (the analyzer links -lstdc++); declared here to stay in C. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

#define SYM_MAX_DIE_DEPTH 128 /* nesting limit when walking a CU's DIE tree */
#define SYM_MAX_INLINE 64     /* inline frames expanded per address */
#define SYM_LOOKBACK 64       /* ranges examined below pc for the innermost subprogram */
#define SYM_UNKNOWN "??"      /* function name when even interning failed (no memory) */
#define SYM_CHUNK_SIZE 65536  /* bytes per block of sym_chunk_t */
#define SYM_DEBUG_DIR_ENV "LEAKDIFF_DEBUG_DIR"

/* One interned string; text is the hash key. */
typedef struct sym_string {
    UT_hash_handle hh;
    const char *display;   /* for function names: interned display form, once computed */
    const char *demangled; /* with display: demangled, clone suffixes kept */
    char text[];
} sym_string_t;

/* A block of strings that are never looked up (each belongs to one module offset). */
typedef struct sym_chunk {
    struct sym_chunk *next;
    size_t used, cap;
    char data[];
} sym_chunk_t;

/* A map from a 64-bit key to a non-NULL pointer: open addressing, linear probing, at most
 * half full, key and value side by side (one cache miss per lookup). An empty slot has
 * value NULL. */
typedef struct sym_map_slot {
    uint64_t key;
    void *value;
} sym_map_slot_t;

typedef struct sym_map {
    sym_map_slot_t *slots;
    size_t cap; /* 0 or a power of two */
    size_t count;
} sym_map_t;

/* Frames of one address (or one module offset), innermost first. */
typedef struct sym_frames {
    size_t count;
    lkd_frame_t frames[];
} sym_frames_t;

/* One address range of a DW_TAG_subprogram, in the module's DWARF addresses. */
typedef struct sym_range {
    Dwarf_Addr low, high; /* [low, high) */
    Dwarf_Die die;
} sym_range_t;

/* What is cached per compile unit. */
typedef struct sym_cu {
    void *key;           /* cudie.addr: unique per unit within one Dwarf */
    sym_range_t *ranges; /* sorted by low */
    size_t range_count, range_cap;
    Dwarf_Files *files; /* the line table's files; NULL when the CU has none */
    size_t file_count;
    const char **file_names; /* interned full paths of files[], filled on first use */
    const char *comp_dir;    /* DW_AT_comp_dir, or NULL */
    UT_hash_handle hh;
} sym_cu_t;

/* One function symbol of a module's symbol table. */
typedef struct sym_symbol {
    uint64_t address; /* file address (the module is reported at bias 0) */
    uint64_t size;
    const char *name; /* in the ELF file's string table, valid while the Dwfl lives */
    int rank;         /* among aliases at one address the highest wins: global > weak > local */
} sym_symbol_t;

enum sym_state { SYM_UNOPENED, SYM_DWFL, SYM_RAW };

/* One module file: a path with the build-id a snapshot recorded for it, searched for debug
 * info along one debug path. Shared by all symbolizers; never moves once created. */
typedef struct sym_module {
    UT_hash_handle hh;
    const char *key;  /* interned "path\nbuild-id hex\ndebug path": the hash key */
    const char *path; /* interned */
    const char *name; /* basename of path, interned */
    uint8_t build_id[LKD_FMT_BUILD_ID_MAX];
    uint32_t build_id_len;    /* 0: none recorded, the file is not checked */
    char *debug_path;         /* libdwfl's debuginfo_path (interned), or NULL: its default */
    Dwfl_Callbacks callbacks; /* points at debug_path */
    enum sym_state state;
    const char *warning; /* why the module is SYM_RAW (interned), or NULL */
    Dwfl *dwfl;          /* SYM_DWFL only, holding exactly this module */
    Dwfl_Module *mod;
    sym_cu_t *cus;
    sym_symbol_t *symbols; /* sorted by address, then rank descending */
    size_t symbol_count;
    bool symbols_loaded;
    sym_map_t offsets; /* file offset -> sym_frames_t (address 0; module_offset set) */
} sym_module_t;

/* Everything shared by the symbolizers open at one time. */
typedef struct sym_store {
    size_t refs; /* open symbolizers */
    sym_string_t *strings;
    sym_chunk_t *chunks;   /* strings made for one offset ("name+0x1a"), newest first */
    sym_module_t *modules; /* by key */
    lkd_frame_t *scratch;  /* frames of the offset being resolved */
    size_t scratch_count, scratch_cap;
    Dwarf_Die *chain; /* subprogram, then inlined subroutines outermost first */
    size_t chain_count, chain_cap;
    size_t modules_opened, offsets_resolved;
} sym_store_t;

/* One module of the snapshot, as one symbolizer sees it. */
typedef struct sym_slot {
    const lkd_fmt_module_t *fmt;
    const char *path;     /* interned; "" when the snapshot has none */
    const char *name;     /* basename of path, interned */
    sym_module_t *module; /* its file, once used; stays NULL for pseudo and unnamed ones */
    bool used;            /* an address fell into it: its warning, if any, is out */
} sym_slot_t;

struct lkd_symbolizer {
    sym_store_t *store;
    const lkd_snapshot_t *snap;
    sym_slot_t *slots; /* parallel to snap->modules */
    size_t slot_count;
    char *debug_path; /* interned libdwfl debug path from LEAKDIFF_DEBUG_DIR, or NULL */
    sym_map_t cache;  /* address -> sym_frames_t */
    char *warnings;   /* NUL-terminated, one warning per line */
    size_t warnings_len, warnings_cap;
    lkd_frame_t oom_frame; /* returned when even the cache entry could not be allocated */
};

/* The store and the lock that guards it (and the modules, the strings, and libdwfl). */
static sym_store_t *sym_store;
static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- small helpers ---------------------------------------------------------------- */

/* Returns p resized to at least need elements of size bytes, updating *cap: p itself when
 * it is large enough, NULL on ENOMEM (p is then untouched and still owned by the caller). */
static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (p && need <= *cap)
        return p;
    size_t n = *cap ? *cap : 16;
    while (n < need && n <= SIZE_MAX / 2)
        n *= 2;
    if (n < need || n > SIZE_MAX / size)
        return NULL;
    void *q = realloc(p, n * size);
    if (q)
        *cap = n;
    return q;
}

/* ---- maps --------------------------------------------------------------------------- */

static size_t map_home(const sym_map_t *t, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 32)) & (t->cap - 1);
}

/* The value stored for key, or NULL. */
static void *map_get(const sym_map_t *t, uint64_t key)
{
    if (!t->cap)
        return NULL;
    for (size_t i = map_home(t, key);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slots[i].value || t->slots[i].key == key)
            return t->slots[i].value;
    }
}

/* Stores value (not NULL) for key, which must be absent. Doubles the table when it would
 * be more than half full. Returns 0 or -ENOMEM (the map is then unchanged). */
static int map_put(sym_map_t *t, uint64_t key, void *value)
{
    assert(value);
    if ((t->count + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        sym_map_t bigger = {cap > t->cap ? calloc(cap, sizeof(sym_map_slot_t)) : NULL, cap, 0};
        if (!bigger.slots)
            return -ENOMEM;
        for (size_t i = 0; i < t->cap; i++) {
            if (t->slots[i].value) /* cannot grow again: at most a quarter full */
                map_put(&bigger, t->slots[i].key, t->slots[i].value);
        }
        free(t->slots);
        *t = bigger;
    }
    size_t i = map_home(t, key);
    while (t->slots[i].value)
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = (sym_map_slot_t){key, value};
    t->count++;
    return 0;
}

/* Frees the map and every value in it. */
static void map_free(sym_map_t *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i].value);
    free(t->slots);
    *t = (sym_map_t){0};
}

/* A copy of count frames, or NULL on ENOMEM. */
static sym_frames_t *frames_copy(const lkd_frame_t *frames, size_t count)
{
    sym_frames_t *e = malloc(sizeof(*e) + count * sizeof(e->frames[0]));
    if (!e)
        return NULL;
    e->count = count;
    memcpy(e->frames, frames, count * sizeof(e->frames[0]));
    return e;
}

/* ---- strings ------------------------------------------------------------------------ */

/* Returns the pool entry for the len bytes at text, adding a copy on first sight; NULL on
 * ENOMEM. */
static sym_string_t *pool_add(sym_store_t *st, const char *text, size_t len)
{
    sym_string_t *s;
    HASH_FIND(hh, st->strings, text, len, s);
    if (s)
        return s;
    s = malloc(sizeof(*s) + len + 1);
    if (!s)
        return NULL;
    memcpy(s->text, text, len);
    s->text[len] = '\0';
    s->display = s->demangled = NULL;
    HASH_ADD_KEYPTR(hh, st->strings, s->text, len, s);
    if (!s->hh.tbl) {
        free(s);
        return NULL;
    }
    return s;
}

static const char *intern(sym_store_t *st, const char *text)
{
    sym_string_t *s = pool_add(st, text, strlen(text));
    return s ? s->text : NULL;
}

/* A malloc'ed formatted string, or NULL on ENOMEM. */
static char *vformat(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, again);
    va_end(again);
    char *text = n < 0 ? NULL : malloc((size_t)n + 1);
    if (text)
        vsnprintf(text, (size_t)n + 1, fmt, ap);
    return text;
}

static const char *internf(sym_store_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Interns a formatted string of any length. NULL on ENOMEM. */
static const char *internf(sym_store_t *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = vformat(fmt, ap);
    va_end(ap);
    const char *s = text ? intern(st, text) : NULL;
    free(text);
    return s;
}

/* Copies the len bytes at text into the store's chunks: for strings that nothing looks up again.
 * NULL on ENOMEM. */
static const char *store_copy(sym_store_t *st, const char *text, size_t len)
{
    sym_chunk_t *c = st->chunks;
    if (!c || c->cap - c->used < len + 1) {
        size_t cap = len + 1 > SYM_CHUNK_SIZE ? len + 1 : SYM_CHUNK_SIZE;
        if (!(c = malloc(sizeof(*c) + cap)))
            return NULL;
        *c = (sym_chunk_t){.next = st->chunks, .cap = cap};
        st->chunks = c;
    }
    char *p = c->data + c->used;
    memcpy(p, text, len + 1);
    c->used += len + 1;
    return p;
}

static const char *store_format(sym_store_t *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A formatted string in the store's chunks, not interned. NULL on ENOMEM. */
static const char *store_format(sym_store_t *st, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(buf))
        return store_copy(st, buf, (size_t)n);
    va_start(ap, fmt);
    char *text = vformat(fmt, ap);
    va_end(ap);
    const char *s = text ? store_copy(st, text, strlen(text)) : NULL;
    free(text);
    return s;
}

/* The length of name without GCC's suffixes for split or specialized copies of a function
 * ("foo.cold", "foo.constprop.0", "foo.part.0.isra.0"; demangled: "foo() [clone .cold]"), so
 * that all pieces of one function group together. */
static size_t clone_stem(const char *name)
{
    static const char *const suffixes[] = {
        ".cold", ".part.", ".constprop.", ".isra.", ".lto_priv.", ".localalias", ".clone.",
    };
    const char *clone = strstr(name, " [clone ");
    size_t len = clone ? (size_t)(clone - name) : strlen(name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        const char *p = strstr(name, suffixes[i]);
        if (p && p > name && (size_t)(p - name) < len)
            len = (size_t)(p - name);
    }
    return len;
}

/* The demangled form of a mangled C++ name ("_Z..."), else name itself; free() it when it
 * differs from name. */
static char *demangle(const char *name)
{
    int status = -1;
    char *plain = strncmp(name, "_Z", 2) == 0 ? __cxa_demangle(name, NULL, NULL, &status) : NULL;
    if (plain && status == 0)
        return plain;
    free(plain);
    return (char *)name;
}

/* The pool entry of a symbol or linkage name with its display and demangled forms
 * computed (once per distinct name); NULL on ENOMEM. */
static sym_string_t *function_names(sym_store_t *st, const char *name)
{
    sym_string_t *s = pool_add(st, name, strlen(name));
    if (!s || s->display)
        return s && s->demangled ? s : NULL;
    char *text = demangle(name);
    sym_string_t *d = pool_add(st, text, clone_stem(text));
    sym_string_t *full = pool_add(st, text, strlen(text));
    if (text != name)
        free(text);
    if (!d || !full)
        return NULL;
    s->display = d->text;
    s->demangled = full->text;
    return s;
}

/* Interns the display form of a symbol or linkage name: demangled when it is a mangled C++
 * name ("_Z..."), clone suffixes removed. NULL on ENOMEM. */
static const char *intern_function(sym_store_t *st, const char *name)
{
    sym_string_t *s = function_names(st, name);
    return s ? s->display : NULL;
}

static void warn(lkd_symbolizer_t *sym, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends one line to the warnings; a warning that cannot be stored is dropped. */
static void warn(lkd_symbolizer_t *sym, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *w = n < 0 ? NULL
                    : grow(sym->warnings, &sym->warnings_cap, sym->warnings_len + (size_t)n + 2, 1);
    if (!w)
        return;
    sym->warnings = w;
    va_start(ap, fmt);
    vsnprintf(sym->warnings + sym->warnings_len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sym->warnings_len += (size_t)n;
    sym->warnings[sym->warnings_len++] = '\n';
    sym->warnings[sym->warnings_len] = '\0';
}

/* The snapshot string at offset, "" when out of range. Deliberately not
 * lkd_snapshot_string(): snapshots built in memory (tests, tools) are accepted as well. */
static const char *snapshot_string(const lkd_snapshot_t *snap, uint32_t offset)
{
    if (!snap->strings || offset >= snap->strings_len)
        return "";
    return snap->strings + offset;
}

/* ---- module files ------------------------------------------------------------------- */

/* True when the file's GNU build-id equals the recorded one (or none was recorded). */
static bool build_id_matches(const sym_module_t *m)
{
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    if (m->build_id_len == 0)
        return true;
    int len = dwfl_module_build_id(m->mod, &bits, &vaddr);
    return len > 0 && (uint32_t)len == m->build_id_len &&
           memcmp(bits, m->build_id, m->build_id_len) == 0;
}

/* Reports m's file at bias 0 into a Dwfl of its own: DWARF and symbol addresses are then
 * file offsets. Returns 0, or -1 with m->warning set. add_p_vaddr=true makes base the bias
 * itself (with false, libdwfl takes base as the address of the first PT_LOAD, which differs
 * when that segment's p_vaddr is not 0); see __libdwfl_elf_address_range in elfutils'
 * libdwfl/dwfl_report_elf.c. */
static int module_report(sym_store_t *st, sym_module_t *m)
{
    m->callbacks = (Dwfl_Callbacks){
        .find_elf = dwfl_build_id_find_elf,
        /* DIR/.build-id/xx/yyyy.debug, then the .gnu_debuglink file, in each DIR of
         * debuginfo_path (default ":.debug:/usr/lib/debug"); a candidate whose build-id
         * differs from the file's is rejected by libdwfl. */
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .section_address = dwfl_offline_section_address,
        .debuginfo_path = m->debug_path ? &m->debug_path : NULL,
    };
    m->dwfl = dwfl_begin(&m->callbacks);
    if (!m->dwfl) {
        m->warning = internf(st, "%s: cannot start libdwfl (%s); frames shown as module+offset",
                             m->path, dwfl_errmsg(-1));
        return -1;
    }
    dwfl_report_begin(m->dwfl);
    m->mod = dwfl_report_elf(m->dwfl, m->path, m->path, -1, 0, true);
    if (dwfl_report_end(m->dwfl, NULL, NULL) != 0 || !m->mod) {
        m->warning = internf(st, "%s: not a usable ELF file (%s); frames shown as module+offset",
                             m->path, dwfl_errmsg(-1));
        return -1;
    }
    if (!build_id_matches(m)) {
        m->warning = internf(st,
                             "%s: build-id differs from the snapshot (file changed since); "
                             "frames shown as module+offset",
                             m->path);
        return -1;
    }
    return 0;
}

/* Decides how m is symbolized: through libdwfl (SYM_DWFL) or as module+offset (SYM_RAW,
 * with m->warning saying why). Called once per module file. */
static void module_open(sym_store_t *st, sym_module_t *m)
{
    struct stat st_buf;
    m->state = SYM_RAW;
    st->modules_opened++;
    /* stat first: libdwfl would open() a FIFO and block, or mmap a device. */
    if (stat(m->path, &st_buf) != 0) {
        m->warning = internf(st, "%s: %s; frames shown as module+offset", m->path,
                             errno == ENOENT ? "file not found" : strerror(errno));
        return;
    }
    if (!S_ISREG(st_buf.st_mode)) {
        m->warning = internf(st, "%s: not a regular file; frames shown as module+offset", m->path);
        return;
    }
    if (module_report(st, m) != 0) {
        if (m->dwfl)
            dwfl_end(m->dwfl);
        m->dwfl = NULL;
        m->mod = NULL;
        return;
    }
    m->state = SYM_DWFL;
}

/* The store's module for path with the build-id of f, searched along debug_path (NULL: the
 * default), created (unopened) on first use. NULL on ENOMEM. */
static sym_module_t *module_get(sym_store_t *st, const char *path, const char *name,
                                const lkd_fmt_module_t *f, char *debug_path)
{
    uint32_t id_len = f->build_id_len <= LKD_FMT_BUILD_ID_MAX ? f->build_id_len : 0;
    char hex[2 * LKD_FMT_BUILD_ID_MAX + 1] = "";
    for (uint32_t i = 0; i < id_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", f->build_id[i]);
    const char *key = internf(st, "%s\n%s\n%s", path, hex, debug_path ? debug_path : "");
    if (!key)
        return NULL;
    sym_module_t *m;
    HASH_FIND_PTR(st->modules, &key, m); /* interned: equal keys are equal pointers */
    if (m)
        return m;
    if (!(m = calloc(1, sizeof(*m))))
        return NULL;
    m->key = key;
    m->path = path;
    m->name = name;
    m->build_id_len = id_len;
    memcpy(m->build_id, f->build_id, id_len);
    m->debug_path = debug_path;
    HASH_ADD_PTR(st->modules, key, m);
    if (!m->hh.tbl) {
        free(m);
        return NULL;
    }
    return m;
}

/* ---- symbol table ----------------------------------------------------------------- */

static int symbol_cmp(const void *a, const void *b)
{
    const sym_symbol_t *x = a, *y = b;
    if (x->address != y->address)
        return x->address < y->address ? -1 : 1;
    if (x->rank != y->rank)
        return y->rank - x->rank;
    return strcmp(x->name, y->name); /* deterministic among equal aliases */
}

static int symbol_rank(const GElf_Sym *s)
{
    switch (GELF_ST_BIND(s->st_info)) {
    case STB_GLOBAL: return 2;
    case STB_WEAK: return 1;
    default: return 0;
    }
}

/* True for functions, and for untyped labels in code (assembly entry points such as
 * ld.so's _dl_start_user); shndx is relative to elf, the file the symbol came from. */
static bool is_code_symbol(const GElf_Sym *s, Elf *elf, GElf_Word shndx)
{
    int type = GELF_ST_TYPE(s->st_info);
    GElf_Shdr shdr;
    if (type == STT_FUNC || type == STT_GNU_IFUNC)
        return shndx != SHN_UNDEF;
    if (type != STT_NOTYPE || shndx == SHN_UNDEF || shndx >= SHN_LORESERVE || !elf)
        return false;
    Elf_Scn *scn = elf_getscn(elf, shndx);
    return scn && gelf_getshdr(scn, &shdr) && (shdr.sh_flags & SHF_EXECINSTR);
}

/* Copies m's code symbols into m->symbols, sorted. libdwfl takes them from .symtab (of the
 * file or of its separate debug file) or, in a stripped file, from .dynsym. Returns 0 or
 * -ENOMEM. */
static int symbols_load(sym_module_t *m)
{
    int n = dwfl_module_getsymtab(m->mod);
    size_t cap = 0;
    for (int i = 1; i < n; i++) {
        GElf_Sym s;
        GElf_Addr address;
        GElf_Word shndx;
        Elf *elf = NULL;
        const char *name = dwfl_module_getsym_info(m->mod, i, &s, &address, &shndx, &elf, NULL);
        if (!name || !name[0] || !is_code_symbol(&s, elf, shndx))
            continue;
        sym_symbol_t *symbols = grow(m->symbols, &cap, m->symbol_count + 1, sizeof(*symbols));
        if (!symbols)
            return -ENOMEM;
        m->symbols = symbols;
        m->symbols[m->symbol_count++] = (sym_symbol_t){
            .address = address, .size = s.st_size, .name = name, .rank = symbol_rank(&s)};
    }
    if (m->symbol_count)
        qsort(m->symbols, m->symbol_count, sizeof(*m->symbols), symbol_cmp);
    return 0;
}

/* The function symbol holding pc (a symbol of size 0 holds everything up to the next one),
 * or NULL. */
static const sym_symbol_t *symbol_at(sym_module_t *m, uint64_t pc)
{
    if (!m->symbols_loaded) {
        m->symbols_loaded = true;
        if (symbols_load(m) != 0)
            m->symbol_count = 0;
    }
    size_t lo = 0, hi = m->symbol_count; /* lo becomes the count of symbols at or below pc */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->symbols[mid].address <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    size_t i = lo - 1;
    while (i > 0 && m->symbols[i - 1].address == m->symbols[i].address)
        i--; /* the best-ranked alias sorts first */
    const sym_symbol_t *s = &m->symbols[i];
    return s->size == 0 || pc - s->address < s->size ? s : NULL;
}

/* ---- per-CU cache ------------------------------------------------------------------- */

static int range_cmp(const void *a, const void *b)
{
    const sym_range_t *x = a, *y = b;
    if (x->low != y->low)
        return x->low < y->low ? -1 : 1;
    /* Same start: the larger range first; cu_subprogram scans backwards, so it meets the
     * nested (smaller) one first. */
    return x->high == y->high ? 0 : x->high > y->high ? -1 : 1;
}

/* Adds the pc ranges of one subprogram DIE. Returns 0 or -ENOMEM. */
static int cu_add_ranges(sym_cu_t *cu, Dwarf_Die *die)
{
    Dwarf_Addr base, low, high;
    ptrdiff_t offset = 0;
    while ((offset = dwarf_ranges(die, offset, &base, &low, &high)) > 0) {
        if (low >= high)
            continue;
        sym_range_t *ranges =
            grow(cu->ranges, &cu->range_cap, cu->range_count + 1, sizeof(*ranges));
        if (!ranges)
            return -ENOMEM;
        cu->ranges = ranges;
        cu->ranges[cu->range_count++] = (sym_range_t){.low = low, .high = high, .die = *die};
    }
    return 0;
}

/* Collects every subprogram with code below parent (all of the tree: nested functions and
 * subprograms inside namespaces count). Broken DWARF ends the walk early; returns 0, or
 * -ENOMEM. */
static int cu_collect(sym_cu_t *cu, Dwarf_Die *parent, unsigned depth)
{
    Dwarf_Die child;
    if (depth >= SYM_MAX_DIE_DEPTH || dwarf_child(parent, &child) != 0)
        return 0;
    do {
        if (dwarf_tag(&child) == DW_TAG_subprogram && cu_add_ranges(cu, &child) != 0)
            return -ENOMEM;
        if (cu_collect(cu, &child, depth + 1) != 0)
            return -ENOMEM;
    } while (dwarf_siblingof(&child, &child) == 0);
    return 0;
}

static void cu_free(sym_cu_t *cu)
{
    if (!cu)
        return;
    free(cu->ranges);
    free(cu->file_names);
    free(cu);
}

/* The cache for the CU of cudie, built on first use; NULL on ENOMEM. */
static sym_cu_t *cu_get(sym_module_t *m, Dwarf_Die *cudie)
{
    void *key = cudie->addr;
    sym_cu_t *cu;
    HASH_FIND_PTR(m->cus, &key, cu);
    if (cu)
        return cu;
    cu = calloc(1, sizeof(*cu));
    if (!cu || cu_collect(cu, cudie, 0) != 0)
        goto fail;
    if (cu->range_count)
        qsort(cu->ranges, cu->range_count, sizeof(*cu->ranges), range_cmp);
    Dwarf_Attribute a;
    cu->comp_dir = dwarf_formstring(dwarf_attr(cudie, DW_AT_comp_dir, &a));
    if (dwarf_getsrcfiles(cudie, &cu->files, &cu->file_count) != 0) {
        cu->files = NULL;
        cu->file_count = 0;
    }
    cu->file_names = calloc(cu->file_count ? cu->file_count : 1, sizeof(*cu->file_names));
    if (!cu->file_names)
        goto fail;
    cu->key = key;
    HASH_ADD_PTR(m->cus, key, cu);
    if (!cu->hh.tbl)
        goto fail;
    return cu;
fail:
    cu_free(cu);
    return NULL;
}

/* The innermost subprogram whose range holds pc (DWARF address), or NULL. Subprogram ranges
 * only overlap for nested functions, whose range lies inside the outer one and sorts after
 * it: so the nearest range below pc that holds it is the innermost; the look-back is
 * bounded because pc may fall in a gap between functions. */
static Dwarf_Die *cu_subprogram(sym_cu_t *cu, Dwarf_Addr pc)
{
    size_t lo = 0, hi = cu->range_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cu->ranges[mid].low <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo, n = 0; i > 0 && n < SYM_LOOKBACK; i--, n++) {
        if (pc < cu->ranges[i - 1].high)
            return &cu->ranges[i - 1].die;
    }
    return NULL;
}

/* Interns a source path, prefixed with dir when the path is relative and dir (the CU's
 * compilation directory) is absolute, as addr2line prints it. A relative dir (as
 * -fdebug-prefix-map leaves it: "./string") is not prepended. NULL on ENOMEM. */
static const char *intern_path(sym_store_t *st, const char *dir, const char *file)
{
    if (file[0] == '/' || !dir || dir[0] != '/')
        return intern(st, file);
    size_t dir_len = strlen(dir), file_len = strlen(file);
    char *path = malloc(dir_len + file_len + 2);
    if (!path)
        return NULL;
    memcpy(path, dir, dir_len);
    path[dir_len] = '/';
    memcpy(path + dir_len + 1, file, file_len + 1);
    const char *interned = intern(st, path);
    free(path);
    return interned;
}

/* The interned path of file index idx of the CU's line table (as in DW_AT_call_file), or
 * NULL. */
static const char *cu_file(sym_store_t *st, sym_cu_t *cu, Dwarf_Word idx)
{
    if (!cu->files || idx >= cu->file_count)
        return NULL;
    if (!cu->file_names[idx]) {
        const char *name = dwarf_filesrc(cu->files, idx, NULL, NULL);
        cu->file_names[idx] = name ? intern_path(st, cu->comp_dir, name) : NULL;
    }
    return cu->file_names[idx];
}

/* ---- inline chain ----------------------------------------------------------------- */

static bool is_scope(int tag)
{
    return tag == DW_TAG_inlined_subroutine || tag == DW_TAG_lexical_block ||
           tag == DW_TAG_try_block || tag == DW_TAG_catch_block;
}

/* Finds the child scope of parent that holds pc; false when there is none. */
static bool scope_child_at(Dwarf_Die *parent, Dwarf_Addr pc, Dwarf_Die *out)
{
    if (dwarf_child(parent, out) != 0)
        return false;
    do {
        if (is_scope(dwarf_tag(out)) && dwarf_haspc(out, pc) == 1)
            return true;
    } while (dwarf_siblingof(out, out) == 0);
    return false;
}

static int chain_push(sym_store_t *st, const Dwarf_Die *die)
{
    Dwarf_Die *chain = grow(st->chain, &st->chain_cap, st->chain_count + 1, sizeof(*chain));
    if (!chain)
        return -ENOMEM;
    st->chain = chain;
    st->chain[st->chain_count++] = *die;
    return 0;
}

/* Fills st->chain with sub and the inlined subroutines holding pc, outermost first.
 * Only sub's own subtree is visited, one level at a time. Returns 0 or -ENOMEM. */
static int chain_build(sym_store_t *st, Dwarf_Die *sub, Dwarf_Addr pc)
{
    Dwarf_Die scope = *sub, child;
    st->chain_count = 0;
    if (chain_push(st, sub) != 0)
        return -ENOMEM;
    for (unsigned depth = 0; depth < SYM_MAX_DIE_DEPTH && st->chain_count < SYM_MAX_INLINE;
         depth++) {
        if (!scope_child_at(&scope, pc, &child))
            break;
        if (dwarf_tag(&child) == DW_TAG_inlined_subroutine && chain_push(st, &child) != 0)
            return -ENOMEM;
        scope = child;
    }
    return 0;
}

/* ---- frames of one module offset ------------------------------------------------------ */

/* Appends a frame for offset in module m with function NULL, file NULL, line 0 and address
 * 0 (each symbolizer fills in its own address). NULL on ENOMEM. */
static lkd_frame_t *frame_push(sym_store_t *st, const sym_module_t *m, uint64_t offset)
{
    lkd_frame_t *scratch =
        grow(st->scratch, &st->scratch_cap, st->scratch_count + 1, sizeof(*scratch));
    if (!scratch)
        return NULL;
    st->scratch = scratch;
    lkd_frame_t *f = &st->scratch[st->scratch_count++];
    *f = (lkd_frame_t){.module = m->path, .module_offset = offset};
    return f;
}

/* "libfoo.so+0x1234" (offset = address - bias, the ELF virtual address addr2line takes). */
static const char *raw_name(sym_store_t *st, const char *name, uint64_t offset)
{
    return store_format(st, "%s+0x%" PRIx64, name[0] ? name : "?", offset);
}

/* "symbol+0x1a": s's demangled name (clone suffixes kept: the offset counts from the start
 * of that very piece) and how far offset lies past it, as gdb and backtrace_symbols(3)
 * print return addresses. NULL on ENOMEM. */
static const char *symbol_offset_name(sym_store_t *st, const sym_symbol_t *s, uint64_t offset)
{
    sym_string_t *names = function_names(st, s->name);
    return names ? store_format(st, "%s+0x%" PRIx64, names->demangled, offset - s->address) : NULL;
}

/* The demangled linkage name of a subprogram or inlined-subroutine DIE, following abstract
 * origins and specifications (dwarf_attr_integrate), or NULL. */
static const char *die_linkage_name(sym_store_t *st, Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
    if (!name)
        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
    return name && name[0] ? intern_function(st, name) : NULL;
}

/* DW_AT_name of a DIE, following abstract origins and specifications, or NULL. */
static const char *die_plain_name(sym_store_t *st, Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
    return name && name[0] ? intern(st, name) : NULL;
}

/* The name of the function that holds offset - 1 in machine code (die: its subprogram, or
 * NULL). GCC often gives member functions of templates no linkage name, only a bare
 * DW_AT_name ("_M_run"): a mangled symbol then says more. C symbols carry clone suffixes
 * ("main.cold") that the DWARF name does not. Last resort: module+offset. */
static const char *physical_name(sym_store_t *st, sym_module_t *m, Dwarf_Die *die, uint64_t offset)
{
    const sym_symbol_t *s = symbol_at(m, offset - 1);
    const char *symbol = s ? s->name : NULL;
    const char *name = die ? die_linkage_name(st, die) : NULL;
    if (!name && symbol && strncmp(symbol, "_Z", 2) == 0)
        name = intern_function(st, symbol);
    if (!name && die)
        name = die_plain_name(st, die);
    if (!name && symbol)
        name = intern_function(st, symbol);
    return name ? name : raw_name(st, m->name, offset);
}

/* The name of an inlined function: its demangled linkage name, else DW_AT_name. */
static const char *inline_name(sym_store_t *st, Dwarf_Die *die)
{
    const char *name = die_linkage_name(st, die);
    return name ? name : die_plain_name(st, die);
}

/* The call site (DW_AT_call_file/DW_AT_call_line) of an inlined-subroutine DIE. */
static void call_site(sym_store_t *st, sym_cu_t *cu, Dwarf_Die *die, const char **file,
                      unsigned *line)
{
    Dwarf_Attribute a;
    Dwarf_Word v;
    *file = NULL;
    *line = 0;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &v) == 0 && v <= UINT_MAX)
        *line = (unsigned)v;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &v) == 0)
        *file = cu_file(st, cu, v);
}

/* The line-table location of pc (file address), or NULL/0. cu (may be NULL) is the cache
 * of pc's CU, whose interned file names are reused when the line refers to them. */
static void line_at(sym_store_t *st, sym_module_t *m, sym_cu_t *cu, uint64_t pc, const char **file,
                    unsigned *line)
{
    Dwfl_Line *l = dwfl_module_getsrc(m->mod, pc);
    int lineno = 0;
    const char *name = l ? dwfl_lineinfo(l, NULL, &lineno, NULL, NULL, NULL) : NULL;
    Dwarf_Addr bias;
    Dwarf_Line *dl = name ? dwfl_dwarf_line(l, &bias) : NULL;
    Dwarf_Files *files;
    size_t idx;
    *file = NULL;
    *line = name && lineno > 0 ? (unsigned)lineno : 0;
    if (cu && dl && dwarf_line_file(dl, &files, &idx) == 0 && files == cu->files)
        *file = cu_file(st, cu, idx);
    if (name && !*file)
        *file = intern_path(st, dwfl_line_comp_dir(l), name);
}

/* Emits the frames of st->chain, innermost first. Locations shift outwards: the innermost
 * frame is at pc's line, each enclosing frame at the call site of the function inlined into
 * it. */
static void emit_chain(sym_store_t *st, sym_module_t *m, sym_cu_t *cu, uint64_t offset)
{
    const char *file;
    unsigned line;
    line_at(st, m, cu, offset - 1, &file, &line);
    for (size_t k = st->chain_count; k-- > 0;) {
        Dwarf_Die *die = &st->chain[k];
        lkd_frame_t *f = frame_push(st, m, offset);
        if (!f)
            return;
        f->function = k != 0 ? inline_name(st, die) : physical_name(st, m, die, offset);
        f->file = file;
        f->line = line;
        f->inlined = k != 0;
        if (k != 0)
            call_site(st, cu, die, &file, &line);
    }
}

/* Resolves offset (> 0) through libdwfl into st->scratch; leaves it empty when nothing at
 * all is known (the caller then emits module+offset). Without DWARF for offset the frame
 * is "symbol+0x1a" from the symbol table, without file or line. */
static void resolve_dwfl(sym_store_t *st, sym_module_t *m, uint64_t offset)
{
    uint64_t pc = offset - 1;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(m->mod, pc, &bias);
    sym_cu_t *cu = cudie ? cu_get(m, cudie) : NULL;
    Dwarf_Die *sub = cu ? cu_subprogram(cu, pc - bias) : NULL;
    if (sub && chain_build(st, sub, pc - bias) == 0) {
        emit_chain(st, m, cu, offset);
        return;
    }
    const char *file;
    unsigned line;
    line_at(st, m, cu, pc, &file, &line);
    const sym_symbol_t *s = symbol_at(m, pc);
    if (!s && !file)
        return;
    lkd_frame_t *f = frame_push(st, m, offset);
    if (!f)
        return;
    f->function = file ? physical_name(st, m, NULL, offset) : symbol_offset_name(st, s, offset);
    f->file = file;
    f->line = line;
}

/* The frames of offset (> 0) in module m, resolved on first use and kept in m->offsets;
 * NULL on ENOMEM. */
static const sym_frames_t *module_frames(sym_store_t *st, sym_module_t *m, uint64_t offset)
{
    sym_frames_t *e = map_get(&m->offsets, offset);
    if (e)
        return e;
    st->scratch_count = 0;
    if (m->state == SYM_DWFL)
        resolve_dwfl(st, m, offset);
    if (st->scratch_count == 0) {
        lkd_frame_t *f = frame_push(st, m, offset);
        if (f)
            f->function = raw_name(st, m->name, offset);
    }
    if (st->scratch_count == 0)
        return NULL;
    for (size_t i = 0; i < st->scratch_count; i++) {
        if (!st->scratch[i].function)
            st->scratch[i].function = SYM_UNKNOWN;
    }
    e = frames_copy(st->scratch, st->scratch_count);
    if (!e || map_put(&m->offsets, offset, e) != 0) {
        free(e);
        return NULL;
    }
    st->offsets_resolved++;
    return e;
}

static void module_free(sym_module_t *m)
{
    sym_cu_t *cu, *tmp;
    HASH_ITER(hh, m->cus, cu, tmp)
    {
        HASH_DEL(m->cus, cu);
        cu_free(cu);
    }
    free(m->symbols);
    map_free(&m->offsets);
    if (m->dwfl)
        dwfl_end(m->dwfl);
    free(m);
}

/* ---- the store ---------------------------------------------------------------------- */

/* Takes a reference to the store, creating it; NULL on ENOMEM. Called with sym_lock. */
static sym_store_t *store_ref(void)
{
    if (!sym_store && !(sym_store = calloc(1, sizeof(*sym_store))))
        return NULL;
    sym_store->refs++;
    return sym_store;
}

/* Drops a reference; the last one frees every module, cached frame and string. Called
 * with sym_lock. */
static void store_unref(sym_store_t *st)
{
    assert(st == sym_store && st->refs > 0);
    if (--st->refs > 0)
        return;
    sym_module_t *m, *mtmp;
    HASH_ITER(hh, st->modules, m, mtmp)
    {
        HASH_DEL(st->modules, m);
        module_free(m);
    }
    sym_string_t *s, *stmp;
    HASH_ITER(hh, st->strings, s, stmp)
    {
        HASH_DEL(st->strings, s);
        free(s);
    }
    for (sym_chunk_t *c = st->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(st->scratch);
    free(st->chain);
    free(st);
    sym_store = NULL;
}

/* ---- one symbolizer's view of the snapshot's modules ---------------------------------- */

static bool module_live(const lkd_fmt_module_t *f)
{
    return f->unload_seq == 0 && !(f->flags & LKD_FMT_MOD_UNLOADED);
}

/* The module whose recorded range holds address: a still-loaded one before unloaded ones,
 * then the most recently loaded. NULL when none does. */
static sym_slot_t *slot_find(lkd_symbolizer_t *sym, uint64_t address)
{
    sym_slot_t *best = NULL;
    for (size_t i = 0; i < sym->slot_count; i++) {
        sym_slot_t *m = &sym->slots[i];
        const lkd_fmt_module_t *f = m->fmt;
        if (address < f->start || address >= f->end)
            continue;
        if (!best || module_live(f) > module_live(best->fmt) ||
            (module_live(f) == module_live(best->fmt) && f->load_seq > best->fmt->load_seq))
            best = m;
    }
    return best;
}

/* True when another used slot of sym has module m (whose warning is then out already). */
static bool module_warned(const lkd_symbolizer_t *sym, const sym_module_t *m)
{
    for (size_t i = 0; i < sym->slot_count; i++) {
        if (sym->slots[i].used && sym->slots[i].module == m)
            return true;
    }
    return false;
}

/* Prepares slot for its first address: finds (and opens) its file in the store and issues
 * its warning, once per module file per symbolizer. Pseudo and VDSO modules keep no file
 * and no warning; a module without a path keeps no file and warns. */
static void slot_use(lkd_symbolizer_t *sym, sym_slot_t *slot)
{
    const lkd_fmt_module_t *f = slot->fmt;
    slot->used = true;
    if ((f->flags & LKD_FMT_MOD_VDSO) || slot->path[0] == '[')
        return;
    if (slot->path[0] == '\0') {
        warn(sym, "module at 0x%" PRIx64 ": no path recorded; frames shown as module+offset",
             f->start);
        return;
    }
    sym_module_t *m = module_get(sym->store, slot->path, slot->name, f, sym->debug_path);
    if (!m)
        return;
    if (m->state == SYM_UNOPENED)
        module_open(sym->store, m);
    if (m->warning && !module_warned(sym, m))
        warn(sym, "%s", m->warning);
    slot->module = m;
}

/* Resolves address into a new cache entry of sym (its frames carry address and the
 * snapshot's module offsets); NULL on ENOMEM. Called with sym_lock. */
static sym_frames_t *entry_create(lkd_symbolizer_t *sym, uint64_t address)
{
    sym_store_t *st = sym->store;
    sym_slot_t *slot = slot_find(sym, address);
    if (slot && !slot->used)
        slot_use(sym, slot);
    uint64_t offset = slot ? address - slot->fmt->bias : 0;
    const sym_frames_t *shared = NULL;
    if (slot && slot->module && address > slot->fmt->start && offset > 0)
        shared = module_frames(st, slot->module, offset);
    lkd_frame_t raw = {.address = address, .function = SYM_UNKNOWN};
    if (!shared && slot) {
        raw.function = raw_name(st, slot->name, offset);
        raw.module = slot->path[0] ? slot->path : NULL;
        raw.module_offset = offset;
    } else if (!shared) {
        raw.function = store_format(st, "0x%" PRIx64, address);
    }
    if (!raw.function)
        raw.function = SYM_UNKNOWN;
    sym_frames_t *e = shared ? frames_copy(shared->frames, shared->count) : frames_copy(&raw, 1);
    if (!e)
        return NULL;
    for (size_t i = 0; i < e->count; i++)
        e->frames[i].address = address;
    if (map_put(&sym->cache, address, e) != 0) {
        free(e);
        return NULL;
    }
    return e;
}

/* ---- interface ------------------------------------------------------------------------ */

/* The libdwfl debug path for LEAKDIFF_DEBUG_DIR (a colon-separated list of directories
 * that replaces /usr/lib/debug; the file's own directory and its .debug subdirectory are
 * still searched for .gnu_debuglink files), interned; NULL when unset or empty. */
static char *debug_path_from_env(sym_store_t *st, bool *oom)
{
    const char *dirs = getenv(SYM_DEBUG_DIR_ENV);
    *oom = false;
    if (!dirs || !dirs[0])
        return NULL;
    const char *path = internf(st, ":.debug:%s", dirs);
    *oom = !path;
    return (char *)path;
}

/*
 * lkd_symbolizer_open - prepares symbolization for the modules of snap.
 *
 * snap must outlive the symbolizer. No file is opened here: each module file is opened on
 * the first address that falls into it, and only once while any symbolizer is open (files
 * and resolved offsets are shared), so missing or changed files only produce warnings (see
 * lkd_symbolizer_warnings) and module+offset frames. Reads LEAKDIFF_DEBUG_DIR (where to
 * look for separate debug info instead of /usr/lib/debug) and removes DEBUGINFOD_URLS
 * from the process environment (symbolization stays local). Returns NULL only on ENOMEM.
 */
lkd_symbolizer_t *lkd_symbolizer_open(const lkd_snapshot_t *snap)
{
    assert(snap);
    bool oom;
    unsetenv("DEBUGINFOD_URLS");
    lkd_symbolizer_t *sym = calloc(1, sizeof(*sym));
    if (!sym)
        return NULL;
    pthread_mutex_lock(&sym_lock);
    if (!(sym->store = store_ref()))
        goto fail;
    sym->snap = snap;
    sym->debug_path = debug_path_from_env(sym->store, &oom);
    sym->slot_count = snap->modules ? snap->module_count : 0;
    sym->slots = calloc(sym->slot_count ? sym->slot_count : 1, sizeof(*sym->slots));
    if (oom || !sym->slots)
        goto fail;
    for (size_t i = 0; i < sym->slot_count; i++) {
        sym_slot_t *m = &sym->slots[i];
        const char *path = snapshot_string(snap, snap->modules[i].path);
        const char *slash = strrchr(path, '/');
        m->fmt = &snap->modules[i];
        m->path = intern(sym->store, path);
        m->name = intern(sym->store, slash ? slash + 1 : path);
        if (!m->path || !m->name)
            goto fail;
    }
    pthread_mutex_unlock(&sym_lock);
    return sym;
fail:
    pthread_mutex_unlock(&sym_lock);
    lkd_symbolizer_close(sym);
    return NULL;
}

/*
 * lkd_symbolizer_close - releases sym (NULL is fine) and every frame it handed out. The
 * strings and the module files stay in the store until the last symbolizer is closed.
 */
void lkd_symbolizer_close(lkd_symbolizer_t *sym)
{
    if (!sym)
        return;
    map_free(&sym->cache);
    free(sym->slots);
    free(sym->warnings);
    if (sym->store) {
        pthread_mutex_lock(&sym_lock);
        store_unref(sym->store);
        pthread_mutex_unlock(&sym_lock);
    }
    free(sym);
}

/*
 * lkd_symbolize - the source frames of one return address, innermost (inlined callee) first.
 *
 * *frames points to *count >= 1 frames owned by sym, valid until lkd_symbolizer_close; the
 * same address always yields the same pointer (each address is resolved once, each module
 * offset once while the store lives). Lines come from address - 1. A frame has a file and
 * line when DWARF covers the address, else its function is "symbol+0x1a" (symbol table or
 * .dynsym), else "module+0x1234"; outside every module "0x7f...". Out of memory yields one
 * "??" frame that is valid until the next call.
 */
void lkd_symbolize(lkd_symbolizer_t *sym, uint64_t address, const lkd_frame_t **frames,
                   size_t *count)
{
    assert(sym && frames && count);
    sym_frames_t *e = map_get(&sym->cache, address);
    if (!e) {
        pthread_mutex_lock(&sym_lock);
        e = entry_create(sym, address);
        pthread_mutex_unlock(&sym_lock);
    }
    if (!e) {
        sym->oom_frame = (lkd_frame_t){.function = SYM_UNKNOWN, .address = address};
        *frames = &sym->oom_frame;
        *count = 1;
        return;
    }
    *frames = e->frames;
    *count = e->count;
}

/*
 * lkd_symbolizer_warnings - what went wrong with the module files so far (file not found,
 * not ELF, build-id differs), one warning per line and one per module file, each naming the
 * file; "" when none. Owned by sym; valid until the next lkd_symbolize or close.
 */
const char *lkd_symbolizer_warnings(const lkd_symbolizer_t *sym)
{
    return sym && sym->warnings ? sym->warnings : "";
}

/*
 * lkd_symbolizer_stats - the cache counters of lkd_symbolizer_stats_t: module files opened
 * and (module, offset) pairs resolved since the store was created (shared by all open
 * symbolizers), distinct addresses looked up through sym.
 */
void lkd_symbolizer_stats(const lkd_symbolizer_t *sym, lkd_symbolizer_stats_t *out)
{
    assert(sym && out);
    pthread_mutex_lock(&sym_lock);
    out->modules_opened = sym->store->modules_opened;
    out->offsets_resolved = sym->store->offsets_resolved;
    out->addresses = sym->cache.count;
    pthread_mutex_unlock(&sym_lock);
}
