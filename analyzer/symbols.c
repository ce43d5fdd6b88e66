/*
 * symbols - offline symbolization of snapshot return addresses with elfutils libdwfl.
 *
 * The snapshot's module map is the truth. Each module gets its own Dwfl, created on first
 * use, holding that one file reported at the recorded load bias: modules that were unloaded
 * and replaced by others at overlapping addresses can never collide. A file is trusted only
 * when its GNU build-id equals the recorded one; for a changed, missing, unreadable or
 * non-ELF file the module's frames come out as "name+0xoffset" and one warning per module
 * is recorded. VDSO and pseudo-path ("[...]") modules are shown as module+offset silently.
 *
 * One address is resolved as: module (the recorded range that contains it, a still-loaded
 * module preferred) -> compile unit (libdwfl's aranges) -> subprogram (a per-CU table of
 * subprogram ranges, built once per CU: this is what keeps C++ cheap, elfutils'
 * dwarf_getscopes walks the whole CU for every address) -> inline chain (a pc-directed
 * descent through that subprogram only) -> line (libdwfl's per-CU line table). Without
 * DWARF the function comes from a sorted per-module copy of the symbol table (libdwfl's
 * own address-to-symbol lookup scans the table linearly).
 *
 * Invariants: every string handed out is interned in sym->strings and lives until close;
 * each address is resolved at most once (sym->cache); lkd_symbolize always yields >= 1
 * frame. Lookups use address - 1 (a return address points past its call instruction).
 *
 * Must never: trust the snapshot or the files (paths may be missing, directories, FIFOs,
 * not ELF, truncated; DWARF may be broken), crash on any of it, or use debuginfod (it can
 * hang on the network and has deadlocked in-process users; DEBUGINFOD_URLS is removed from
 * the environment on open). Not thread-safe: one symbolizer per thread.
 */
#include "symbols.h"

#include <assert.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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

/* One interned string; text is the hash key. */
typedef struct sym_string {
    UT_hash_handle hh;
    const char *display; /* for function names: interned display form, once computed */
    char text[];
} sym_string_t;

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
    uint64_t address; /* runtime address (bias applied) */
    uint64_t size;
    const char *name; /* in the ELF file's string table, valid while the Dwfl lives */
    int rank;         /* among aliases at one address the highest wins: global > weak > local */
} sym_symbol_t;

enum sym_state { SYM_UNOPENED, SYM_DWFL, SYM_RAW };

typedef struct sym_module {
    const lkd_fmt_module_t *fmt;
    const char *path; /* interned; "" when the snapshot has none */
    const char *name; /* basename of path, interned */
    enum sym_state state;
    Dwfl *dwfl; /* SYM_DWFL only, holding exactly this module */
    Dwfl_Module *mod;
    sym_cu_t *cus;
    sym_symbol_t *symbols; /* sorted by address, then rank descending */
    size_t symbol_count;
    bool symbols_loaded;
} sym_module_t;

/* A resolved address: count frames, innermost first. */
typedef struct sym_entry {
    uint64_t address;
    size_t count;
    UT_hash_handle hh;
    lkd_frame_t frames[];
} sym_entry_t;

struct lkd_symbolizer {
    const lkd_snapshot_t *snap;
    sym_module_t *modules; /* parallel to snap->modules */
    size_t module_count;
    sym_string_t *strings;
    sym_entry_t *cache;
    lkd_frame_t *scratch; /* frames of the address being resolved */
    size_t scratch_count, scratch_cap;
    Dwarf_Die *chain; /* subprogram, then inlined subroutines outermost first */
    size_t chain_count, chain_cap;
    char *warnings; /* NUL-terminated, one warning per line */
    size_t warnings_len, warnings_cap;
    lkd_frame_t oom_frame; /* returned when even the cache entry could not be allocated */
};

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

/* Returns the pool entry for the len bytes at text, adding a copy on first sight; NULL on
 * ENOMEM. */
static sym_string_t *pool_add(lkd_symbolizer_t *sym, const char *text, size_t len)
{
    sym_string_t *s;
    HASH_FIND(hh, sym->strings, text, len, s);
    if (s)
        return s;
    s = malloc(sizeof(*s) + len + 1);
    if (!s)
        return NULL;
    memcpy(s->text, text, len);
    s->text[len] = '\0';
    s->display = NULL;
    HASH_ADD_KEYPTR(hh, sym->strings, s->text, len, s);
    if (!s->hh.tbl) {
        free(s);
        return NULL;
    }
    return s;
}

static const char *intern(lkd_symbolizer_t *sym, const char *text)
{
    sym_string_t *s = pool_add(sym, text, strlen(text));
    return s ? s->text : NULL;
}

static const char *internf(lkd_symbolizer_t *sym, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Interns a formatted string (only short ones are ever formatted here). */
static const char *internf(lkd_symbolizer_t *sym, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return intern(sym, buf);
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

/* Interns the display form of a symbol or linkage name: demangled when it is a mangled C++
 * name ("_Z..."), clone suffixes removed. Computed once per distinct name. NULL on ENOMEM. */
static const char *intern_function(lkd_symbolizer_t *sym, const char *name)
{
    sym_string_t *s = pool_add(sym, name, strlen(name));
    if (!s || s->display)
        return s ? s->display : NULL;
    int status = -1;
    char *plain = strncmp(name, "_Z", 2) == 0 ? __cxa_demangle(name, NULL, NULL, &status) : NULL;
    const char *text = plain && status == 0 ? plain : name;
    sym_string_t *d = pool_add(sym, text, clone_stem(text));
    free(plain);
    s->display = d ? d->text : NULL;
    return s->display;
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

/* ---- modules ------------------------------------------------------------------------ */

static bool module_live(const lkd_fmt_module_t *f)
{
    return f->unload_seq == 0 && !(f->flags & LKD_FMT_MOD_UNLOADED);
}

/* The module whose recorded range holds address: a still-loaded one before unloaded ones,
 * then the most recently loaded. NULL when none does. */
static sym_module_t *module_find(lkd_symbolizer_t *sym, uint64_t address)
{
    sym_module_t *best = NULL;
    for (size_t i = 0; i < sym->module_count; i++) {
        sym_module_t *m = &sym->modules[i];
        const lkd_fmt_module_t *f = m->fmt;
        if (address < f->start || address >= f->end)
            continue;
        if (!best || module_live(f) > module_live(best->fmt) ||
            (module_live(f) == module_live(best->fmt) && f->load_seq > best->fmt->load_seq))
            best = m;
    }
    return best;
}

static const Dwfl_Callbacks sym_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo, /* .gnu_debuglink, /usr/lib/debug */
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = NULL, /* the default ":.debug:/usr/lib/debug" */
};

/* True when the file's GNU build-id equals the recorded one (or none was recorded). */
static bool build_id_matches(const sym_module_t *m)
{
    const lkd_fmt_module_t *f = m->fmt;
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    if (f->build_id_len == 0)
        return true;
    int len = dwfl_module_build_id(m->mod, &bits, &vaddr);
    return len > 0 && (uint32_t)len == f->build_id_len && f->build_id_len <= LKD_FMT_BUILD_ID_MAX &&
           memcmp(bits, f->build_id, f->build_id_len) == 0;
}

/* Reports m's file at its recorded bias into a Dwfl of its own. Returns 0, or -1 with a
 * warning recorded. add_p_vaddr=true makes base the bias itself (with false, libdwfl takes
 * base as the address of the first PT_LOAD, which differs when that segment's p_vaddr is
 * not 0); see __libdwfl_elf_address_range in elfutils' libdwfl/dwfl_report_elf.c. */
static int module_report(lkd_symbolizer_t *sym, sym_module_t *m)
{
    m->dwfl = dwfl_begin(&sym_callbacks);
    if (!m->dwfl) {
        warn(sym, "%s: cannot start libdwfl (%s); frames shown as module+offset", m->path,
             dwfl_errmsg(-1));
        return -1;
    }
    dwfl_report_begin(m->dwfl);
    m->mod = dwfl_report_elf(m->dwfl, m->path, m->path, -1, m->fmt->bias, true);
    if (dwfl_report_end(m->dwfl, NULL, NULL) != 0 || !m->mod) {
        warn(sym, "%s: not a usable ELF file (%s); frames shown as module+offset", m->path,
             dwfl_errmsg(-1));
        return -1;
    }
    if (!build_id_matches(m)) {
        warn(sym,
             "%s: build-id differs from the snapshot (file changed since); frames shown "
             "as module+offset",
             m->path);
        return -1;
    }
    return 0;
}

/* Decides how m is symbolized: through libdwfl (SYM_DWFL) or as module+offset (SYM_RAW).
 * Called once per module, on the first address that falls into it. */
static void module_open(lkd_symbolizer_t *sym, sym_module_t *m)
{
    struct stat st;
    m->state = SYM_RAW;
    if ((m->fmt->flags & LKD_FMT_MOD_VDSO) || m->path[0] == '[')
        return;
    if (m->path[0] == '\0') {
        warn(sym, "module at 0x%" PRIx64 ": no path recorded; frames shown as module+offset",
             m->fmt->start);
        return;
    }
    /* stat first: libdwfl would open() a FIFO and block, or mmap a device. */
    if (stat(m->path, &st) != 0) {
        warn(sym, "%s: %s; frames shown as module+offset", m->path,
             errno == ENOENT ? "file not found" : strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        warn(sym, "%s: not a regular file; frames shown as module+offset", m->path);
        return;
    }
    if (module_report(sym, m) != 0) {
        dwfl_end(m->dwfl);
        m->dwfl = NULL;
        m->mod = NULL;
        return;
    }
    m->state = SYM_DWFL;
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

/* Copies m's code symbols into m->symbols, sorted. Returns 0 or -ENOMEM. */
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

/* The name of the function symbol holding pc (a symbol of size 0 holds everything up to
 * the next one), or NULL. */
static const char *symbol_at(sym_module_t *m, uint64_t pc)
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
    return s->size == 0 || pc - s->address < s->size ? s->name : NULL;
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
static const char *intern_path(lkd_symbolizer_t *sym, const char *dir, const char *file)
{
    if (file[0] == '/' || !dir || dir[0] != '/')
        return intern(sym, file);
    size_t dir_len = strlen(dir), file_len = strlen(file);
    char *path = malloc(dir_len + file_len + 2);
    if (!path)
        return NULL;
    memcpy(path, dir, dir_len);
    path[dir_len] = '/';
    memcpy(path + dir_len + 1, file, file_len + 1);
    const char *interned = intern(sym, path);
    free(path);
    return interned;
}

/* The interned path of file index idx of the CU's line table (as in DW_AT_call_file), or
 * NULL. */
static const char *cu_file(lkd_symbolizer_t *sym, sym_cu_t *cu, Dwarf_Word idx)
{
    if (!cu->files || idx >= cu->file_count)
        return NULL;
    if (!cu->file_names[idx]) {
        const char *name = dwarf_filesrc(cu->files, idx, NULL, NULL);
        cu->file_names[idx] = name ? intern_path(sym, cu->comp_dir, name) : NULL;
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

static int chain_push(lkd_symbolizer_t *sym, const Dwarf_Die *die)
{
    Dwarf_Die *chain = grow(sym->chain, &sym->chain_cap, sym->chain_count + 1, sizeof(*chain));
    if (!chain)
        return -ENOMEM;
    sym->chain = chain;
    sym->chain[sym->chain_count++] = *die;
    return 0;
}

/* Fills sym->chain with sub and the inlined subroutines holding pc, outermost first.
 * Only sub's own subtree is visited, one level at a time. Returns 0 or -ENOMEM. */
static int chain_build(lkd_symbolizer_t *sym, Dwarf_Die *sub, Dwarf_Addr pc)
{
    Dwarf_Die scope = *sub, child;
    sym->chain_count = 0;
    if (chain_push(sym, sub) != 0)
        return -ENOMEM;
    for (unsigned depth = 0; depth < SYM_MAX_DIE_DEPTH && sym->chain_count < SYM_MAX_INLINE;
         depth++) {
        if (!scope_child_at(&scope, pc, &child))
            break;
        if (dwarf_tag(&child) == DW_TAG_inlined_subroutine && chain_push(sym, &child) != 0)
            return -ENOMEM;
        scope = child;
    }
    return 0;
}

/* ---- frames --------------------------------------------------------------------------- */

/* Appends a frame for address in module m (NULL: no module) with function NULL, file NULL,
 * line 0. NULL on ENOMEM. */
static lkd_frame_t *frame_push(lkd_symbolizer_t *sym, const sym_module_t *m, uint64_t address)
{
    lkd_frame_t *scratch =
        grow(sym->scratch, &sym->scratch_cap, sym->scratch_count + 1, sizeof(*scratch));
    if (!scratch)
        return NULL;
    sym->scratch = scratch;
    lkd_frame_t *f = &sym->scratch[sym->scratch_count++];
    *f = (lkd_frame_t){.address = address};
    if (m) {
        f->module = m->path[0] ? m->path : NULL;
        f->module_offset = address - m->fmt->bias;
    }
    return f;
}

/* "libfoo.so+0x1234" (offset = address - bias, the ELF virtual address addr2line takes), or
 * "0x7f12..." without a module. */
static const char *raw_name(lkd_symbolizer_t *sym, const sym_module_t *m, uint64_t address)
{
    if (!m)
        return internf(sym, "0x%" PRIx64, address);
    return internf(sym, "%s+0x%" PRIx64, m->name[0] ? m->name : "?", address - m->fmt->bias);
}

/* The demangled linkage name of a subprogram or inlined-subroutine DIE, following abstract
 * origins and specifications (dwarf_attr_integrate), or NULL. */
static const char *die_linkage_name(lkd_symbolizer_t *sym, Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
    if (!name)
        name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
    return name && name[0] ? intern_function(sym, name) : NULL;
}

/* DW_AT_name of a DIE, following abstract origins and specifications, or NULL. */
static const char *die_plain_name(lkd_symbolizer_t *sym, Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
    return name && name[0] ? intern(sym, name) : NULL;
}

/* The name of the function that holds address - 1 in machine code (die: its subprogram, or
 * NULL). GCC often gives member functions of templates no linkage name, only a bare
 * DW_AT_name ("_M_run"): a mangled symbol then says more. C symbols carry clone suffixes
 * ("main.cold") that the DWARF name does not. Last resort: module+offset. */
static const char *physical_name(lkd_symbolizer_t *sym, sym_module_t *m, Dwarf_Die *die,
                                 uint64_t address)
{
    const char *symbol = symbol_at(m, address - 1);
    const char *name = die ? die_linkage_name(sym, die) : NULL;
    if (!name && symbol && strncmp(symbol, "_Z", 2) == 0)
        name = intern_function(sym, symbol);
    if (!name && die)
        name = die_plain_name(sym, die);
    if (!name && symbol)
        name = intern_function(sym, symbol);
    return name ? name : raw_name(sym, m, address);
}

/* The name of an inlined function: its demangled linkage name, else DW_AT_name. */
static const char *inline_name(lkd_symbolizer_t *sym, Dwarf_Die *die)
{
    const char *name = die_linkage_name(sym, die);
    return name ? name : die_plain_name(sym, die);
}

/* The call site (DW_AT_call_file/DW_AT_call_line) of an inlined-subroutine DIE. */
static void call_site(lkd_symbolizer_t *sym, sym_cu_t *cu, Dwarf_Die *die, const char **file,
                      unsigned *line)
{
    Dwarf_Attribute a;
    Dwarf_Word v;
    *file = NULL;
    *line = 0;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &v) == 0 && v <= UINT_MAX)
        *line = (unsigned)v;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &v) == 0)
        *file = cu_file(sym, cu, v);
}

/* The line-table location of pc (runtime address), or NULL/0. cu (may be NULL) is the
 * cache of pc's CU, whose interned file names are reused when the line refers to them. */
static void line_at(lkd_symbolizer_t *sym, sym_module_t *m, sym_cu_t *cu, uint64_t pc,
                    const char **file, unsigned *line)
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
        *file = cu_file(sym, cu, idx);
    if (name && !*file)
        *file = intern_path(sym, dwfl_line_comp_dir(l), name);
}

/* Emits the frames of sym->chain, innermost first. Locations shift outwards: the innermost
 * frame is at pc's line, each enclosing frame at the call site of the function inlined into
 * it. */
static void emit_chain(lkd_symbolizer_t *sym, sym_module_t *m, sym_cu_t *cu, uint64_t address,
                       uint64_t pc)
{
    const char *file;
    unsigned line;
    line_at(sym, m, cu, pc, &file, &line);
    for (size_t k = sym->chain_count; k-- > 0;) {
        Dwarf_Die *die = &sym->chain[k];
        lkd_frame_t *f = frame_push(sym, m, address);
        if (!f)
            return;
        f->function = k != 0 ? inline_name(sym, die) : physical_name(sym, m, die, address);
        f->file = file;
        f->line = line;
        f->inlined = k != 0;
        if (k != 0)
            call_site(sym, cu, die, &file, &line);
    }
}

/* Resolves address through libdwfl into sym->scratch; leaves it empty when nothing at all
 * is known (the caller then emits module+offset). */
static void resolve_dwfl(lkd_symbolizer_t *sym, sym_module_t *m, uint64_t address)
{
    uint64_t pc = address - 1;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(m->mod, pc, &bias);
    sym_cu_t *cu = cudie ? cu_get(m, cudie) : NULL;
    Dwarf_Die *sub = cu ? cu_subprogram(cu, pc - bias) : NULL;
    if (sub && chain_build(sym, sub, pc - bias) == 0) {
        emit_chain(sym, m, cu, address, pc);
        return;
    }
    const char *file;
    unsigned line;
    line_at(sym, m, cu, pc, &file, &line);
    if (!symbol_at(m, pc) && !file)
        return;
    lkd_frame_t *f = frame_push(sym, m, address);
    if (!f)
        return;
    f->function = physical_name(sym, m, NULL, address);
    f->file = file;
    f->line = line;
}

/* Resolves address into sym->scratch (>= 1 frame unless out of memory). */
static void resolve(lkd_symbolizer_t *sym, uint64_t address)
{
    sym_module_t *m = module_find(sym, address);
    sym->scratch_count = 0;
    if (m && m->state == SYM_UNOPENED)
        module_open(sym, m);
    if (m && m->state == SYM_DWFL && address > m->fmt->start)
        resolve_dwfl(sym, m, address);
    if (sym->scratch_count == 0) {
        lkd_frame_t *f = frame_push(sym, m, address);
        if (f)
            f->function = raw_name(sym, m, address);
    }
    for (size_t i = 0; i < sym->scratch_count; i++) {
        if (!sym->scratch[i].function)
            sym->scratch[i].function = SYM_UNKNOWN;
    }
}

/* Resolves address and caches the result; NULL on ENOMEM. */
static sym_entry_t *entry_create(lkd_symbolizer_t *sym, uint64_t address)
{
    resolve(sym, address);
    if (sym->scratch_count == 0)
        return NULL;
    sym_entry_t *e = malloc(sizeof(*e) + sym->scratch_count * sizeof(e->frames[0]));
    if (!e)
        return NULL;
    e->address = address;
    e->count = sym->scratch_count;
    memcpy(e->frames, sym->scratch, e->count * sizeof(e->frames[0]));
    HASH_ADD(hh, sym->cache, address, sizeof(e->address), e);
    if (!e->hh.tbl) {
        free(e);
        return NULL;
    }
    return e;
}

/* ---- interface ------------------------------------------------------------------------ */

/*
 * lkd_symbolizer_open - prepares symbolization for the modules of snap.
 *
 * snap must outlive the symbolizer. No file is opened here: each module is opened on the
 * first address that falls into it, so missing or changed files only produce warnings (see
 * lkd_symbolizer_warnings) and module+offset frames. Removes DEBUGINFOD_URLS from the
 * process environment (symbolization stays local). Returns NULL only on ENOMEM.
 */
lkd_symbolizer_t *lkd_symbolizer_open(const lkd_snapshot_t *snap)
{
    assert(snap);
    unsetenv("DEBUGINFOD_URLS");
    lkd_symbolizer_t *sym = calloc(1, sizeof(*sym));
    if (!sym)
        return NULL;
    sym->snap = snap;
    sym->module_count = snap->modules ? snap->module_count : 0;
    sym->modules = calloc(sym->module_count ? sym->module_count : 1, sizeof(*sym->modules));
    if (!sym->modules)
        goto fail;
    for (size_t i = 0; i < sym->module_count; i++) {
        sym_module_t *m = &sym->modules[i];
        const char *path = snapshot_string(snap, snap->modules[i].path);
        const char *slash = strrchr(path, '/');
        m->fmt = &snap->modules[i];
        m->path = intern(sym, path);
        m->name = intern(sym, slash ? slash + 1 : path);
        if (!m->path || !m->name)
            goto fail;
    }
    return sym;
fail:
    lkd_symbolizer_close(sym);
    return NULL;
}

static void module_close(sym_module_t *m)
{
    sym_cu_t *cu, *tmp;
    HASH_ITER(hh, m->cus, cu, tmp)
    {
        HASH_DEL(m->cus, cu);
        cu_free(cu);
    }
    free(m->symbols);
    if (m->dwfl)
        dwfl_end(m->dwfl);
}

/*
 * lkd_symbolizer_close - releases sym (NULL is fine), every Dwfl it opened and every string
 * and frame it handed out.
 */
void lkd_symbolizer_close(lkd_symbolizer_t *sym)
{
    if (!sym)
        return;
    for (size_t i = 0; sym->modules && i < sym->module_count; i++)
        module_close(&sym->modules[i]);
    free(sym->modules);
    sym_entry_t *e, *etmp;
    HASH_ITER(hh, sym->cache, e, etmp)
    {
        HASH_DEL(sym->cache, e);
        free(e);
    }
    sym_string_t *s, *stmp;
    HASH_ITER(hh, sym->strings, s, stmp)
    {
        HASH_DEL(sym->strings, s);
        free(s);
    }
    free(sym->scratch);
    free(sym->chain);
    free(sym->warnings);
    free(sym);
}

/*
 * lkd_symbolize - the source frames of one return address, innermost (inlined callee) first.
 *
 * *frames points to *count >= 1 frames owned by sym, valid until lkd_symbolizer_close; the
 * same address always yields the same pointer (each address is resolved once). Lines come
 * from address - 1. Out of memory yields one "??" frame that is valid until the next call.
 */
void lkd_symbolize(lkd_symbolizer_t *sym, uint64_t address, const lkd_frame_t **frames,
                   size_t *count)
{
    assert(sym && frames && count);
    sym_entry_t *e;
    HASH_FIND(hh, sym->cache, &address, sizeof(address), e);
    if (!e)
        e = entry_create(sym, address);
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
 * not ELF, build-id differs), one warning per line, each naming the file; "" when none.
 * Owned by sym; valid until the next lkd_symbolize or close.
 */
const char *lkd_symbolizer_warnings(const lkd_symbolizer_t *sym)
{
    return sym && sym->warnings ? sym->warnings : "";
}
