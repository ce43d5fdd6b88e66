/*
 * test_symbols - unit tests of analyzer/symbols.c, run against this very test binary.
 *
 * Each test builds an lkd_snapshot_t in memory from modules that are really loaded
 * (dl_iterate_phdr: real biases, ranges and GNU build-ids), symbolizes return addresses
 * captured at known source lines and checks function names, files and lines exactly. A line
 * is known because `__LINE__` is an argument of the very call it describes.
 *
 * The C++ cases use libstdc++ (linked into the analyzer) and the fixture library built from
 * tests/unit/fixtures/symbols_fixture.cc into fixtures/libsymbols_fixture.so beside the test
 * binary (and, linked with -Wl,-Ttext-segment=0x200000, into libsymbols_fixture_nz.so);
 * without them those tests are skipped and say so. The stripped-library cases use
 * fixtures/libsymbols_stripped.so (tests/unit/fixtures/symbols_stripped.c, stripped to its
 * .dynsym) and its separate debug file libsymbols_stripped.debug, which they copy into a
 * temporary .build-id tree named by LEAKDIFF_DEBUG_DIR. The libc test needs libc6-dbg
 * (/usr/lib/debug/.build-id) and is skipped without it. Tests that must not see a system
 * debug file point LEAKDIFF_DEBUG_DIR elsewhere (each test runs in its own process).
 *
 * Invariants: tests never depend on ASLR (addresses are computed at run time) and never
 * write outside a private mkdtemp directory.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symbols.h"

#define TEST_MODULES 16

/* ---- code whose addresses are symbolized --------------------------------------------- */

/* Stores line (the caller's __LINE__, passed in the same call expression so that no
 * reformatting can separate them) in *where and returns its own return address: a point
 * just after this call, on that line. */
static __attribute__((noinline)) uint64_t capture(unsigned *where, unsigned line)
{
    *where = line;
    __asm__ volatile("" ::: "memory");
    return (uint64_t)(uintptr_t)__builtin_return_address(0);
}

static volatile uint64_t sink;

/* A plain C function; *line is the line of its call to capture. */
static __attribute__((noinline)) uint64_t c_caller(unsigned *line)
{
    uint64_t ra = capture(line, __LINE__);
    sink = ra;
    return ra;
}

/* Inlined into inline_caller (unit tests build with -O1; always_inline holds at any level);
 * *inner is the line of its call to capture, *outer the line it was called from. */
static inline __attribute__((always_inline)) uint64_t
inlined_helper(unsigned *inner, unsigned *outer, unsigned outer_line)
{
    *outer = outer_line;
    uint64_t ra = capture(inner, __LINE__);
    sink = ra;
    return ra;
}

static __attribute__((noinline)) uint64_t inline_caller(unsigned *inner, unsigned *outer)
{
    uint64_t ra = inlined_helper(inner, outer, __LINE__);
    sink = ra;
    return ra;
}

/* ---- an in-memory snapshot -------------------------------------------------------------- */

static struct {
    lkd_snapshot_t snap;
    char strings[16384]; /* stays NUL-terminated past strings_len (static, zeroed) */
    lkd_fmt_module_t modules[TEST_MODULES];
} ts;

static void snap_reset(void)
{
    memset(&ts, 0, sizeof(ts));
    ts.snap.strings = ts.strings;
    ts.snap.strings_len = 1; /* offset 0 is "" */
    ts.snap.modules = ts.modules;
}

/* Appends a module for path with the given bias and range; flags, build-id and the load
 * and unload sequence numbers are left to the caller. */
static lkd_fmt_module_t *snap_add(const char *path, uint64_t bias, uint64_t start, uint64_t end)
{
    size_t len = strlen(path);
    cr_assert_lt(ts.snap.module_count, TEST_MODULES);
    cr_assert_lt(ts.snap.strings_len + len + 1, sizeof(ts.strings));
    lkd_fmt_module_t *m = &ts.modules[ts.snap.module_count++];
    m->path = (uint32_t)ts.snap.strings_len;
    memcpy(ts.strings + ts.snap.strings_len, path, len + 1);
    ts.snap.strings_len += len + 1;
    m->bias = bias;
    m->start = start;
    m->end = end;
    m->load_seq = ts.snap.module_count;
    return m;
}

/* Copies the GNU build-id note of a loaded object into m, if it has one. */
static void note_build_id(const struct dl_phdr_info *info, lkd_fmt_module_t *m)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        size_t align = ph->p_align == 8 ? 8 : 4;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr);
        const unsigned char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
            const unsigned char *name = p + sizeof(*n);
            const unsigned char *desc = name + ((n->n_namesz + align - 1) & ~(align - 1));
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4) &&
                n->n_descsz <= LKD_FMT_BUILD_ID_MAX) {
                memcpy(m->build_id, desc, n->n_descsz);
                m->build_id_len = n->n_descsz;
                return;
            }
            p = desc + ((n->n_descsz + align - 1) & ~(align - 1));
        }
    }
}

struct find_loaded {
    uint64_t address;
    lkd_fmt_module_t *module;
};

static int find_loaded_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct find_loaded *f = data;
    uint64_t start = UINT64_MAX, end = 0;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        if (info->dlpi_addr + ph->p_vaddr < start)
            start = info->dlpi_addr + ph->p_vaddr;
        if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > end)
            end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    }
    if (f->address < start || f->address >= end)
        return 0;
    char exe[PATH_MAX] = "";
    const char *path = info->dlpi_name;
    if (!path[0]) { /* the main program */
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        cr_assert_gt(n, 0);
        exe[n] = '\0';
        path = exe;
    }
    f->module = snap_add(path, info->dlpi_addr, start, end);
    note_build_id(info, f->module);
    return 1;
}

/* Appends the loaded object that holds address, as the shim would record it. */
static lkd_fmt_module_t *snap_add_loaded(uint64_t address)
{
    struct find_loaded f = {.address = address};
    dl_iterate_phdr(find_loaded_cb, &f);
    cr_assert_not_null(f.module, "no loaded object holds 0x%" PRIx64, address);
    return f.module;
}

static const char *module_path(const lkd_fmt_module_t *m)
{
    return ts.strings + m->path;
}

/* ---- checks ------------------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Asserts that frame f is function at this source file's line. */
static void assert_here(const lkd_frame_t *f, const char *function, unsigned line, bool inlined)
{
    cr_assert_str_eq(f->function, function);
    cr_assert_not_null(f->file, "%s: no file", function);
    cr_assert(ends_with(f->file, "/" __FILE__) || strcmp(f->file, __FILE__) == 0,
              "%s: file %s, expected %s", function, f->file, __FILE__);
    cr_assert_eq(f->line, line, "%s: line %u, expected %u", function, f->line, line);
    cr_assert_eq(f->inlined, inlined, "%s: inlined %d", function, f->inlined);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- tests ------------------------------------------------------------------------------ */

Test(symbols, c_function)
{
    unsigned line;
    uint64_t ra = c_caller(&line);
    snap_reset();
    lkd_fmt_module_t *m = snap_add_loaded(ra);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    const lkd_frame_t *frames, *again;
    size_t count, count2;
    lkd_symbolize(sym, ra, &frames, &count);
    cr_assert_eq(count, 1);
    assert_here(&frames[0], "c_caller", line, false);
    cr_assert_str_eq(frames[0].module, module_path(m));
    cr_assert_eq(frames[0].address, ra);
    cr_assert_eq(frames[0].module_offset, ra - m->bias);
    lkd_symbolize(sym, ra, &again, &count2);
    cr_assert_eq(again, frames, "a second lookup must come from the cache");
    cr_assert_eq(count2, count);
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), "");
    lkd_symbolizer_close(sym);
}

Test(symbols, function_address)
{
    uint64_t address = (uint64_t)(uintptr_t)&c_caller + 5;
    snap_reset();
    snap_add_loaded(address);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, address, &frames, &count);
    cr_assert_str_eq(frames[count - 1].function, "c_caller");
    cr_assert(frames[count - 1].file && ends_with(frames[count - 1].file, __FILE__));
    lkd_symbolizer_close(sym);
}

Test(symbols, inlined_function)
{
    unsigned inner, outer;
    uint64_t ra = inline_caller(&inner, &outer);
    snap_reset();
    snap_add_loaded(ra);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, ra, &frames, &count);
    cr_assert_eq(count, 2, "expected the inlined frame and its caller, got %zu", count);
    assert_here(&frames[0], "inlined_helper", inner, true);
    assert_here(&frames[1], "inline_caller", outer, false);
    cr_assert_eq(frames[0].address, ra);
    cr_assert_eq(frames[1].address, ra);
    lkd_symbolizer_close(sym);
}

/* Reads "function\nfile:line\n" pairs from addr2line -f -i into names/lines. */
static size_t read_addr2line(FILE *in, char names[][256], unsigned *lines, size_t max)
{
    char loc[PATH_MAX + 32];
    size_t n = 0;
    while (n < max && fgets(names[n], 256, in) && fgets(loc, sizeof(loc), in)) {
        names[n][strcspn(names[n], "\n")] = '\0';
        const char *colon = strrchr(loc, ':');
        lines[n++] = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    }
    return n;
}

/* binutils' addr2line as an independent oracle for the inline case. */
Test(symbols, agrees_with_addr2line)
{
    unsigned inner, outer;
    uint64_t ra = inline_caller(&inner, &outer);
    snap_reset();
    lkd_fmt_module_t *m = snap_add_loaded(ra);
    char cmd[PATH_MAX + 128], names[8][256];
    unsigned lines[8];
    snprintf(cmd, sizeof(cmd), "addr2line -f -i -e '%s' 0x%" PRIx64 " 2>/dev/null", module_path(m),
             ra - 1 - m->bias);
    FILE *in = popen(cmd, "r");
    cr_assert_not_null(in);
    size_t n = read_addr2line(in, names, lines, 8);
    pclose(in);
    if (n == 0)
        cr_skip_test("addr2line (binutils) is not available");
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, ra, &frames, &count);
    cr_assert_eq(count, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(frames[i].function, names[i]);
        cr_assert_eq(frames[i].line, lines[i]);
    }
    lkd_symbolizer_close(sym);
}

/* A mangled name from the dynamic symbol table of the stripped libstdc++ comes out
 * demangled, with the offset into the function (no separate debug info: the debug directory
 * is an empty one). */
Test(symbols, cxx_symbol_demangled)
{
    char dir[] = "/tmp/lkd-symbols-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    setenv("LEAKDIFF_DEBUG_DIR", dir, 1);
    void *lib = dlopen("libstdc++.so.6", RTLD_NOW | RTLD_NOLOAD);
    cr_assert_not_null(lib, "libstdc++ is linked into the analyzer: %s", dlerror());
    uint64_t address = (uint64_t)(uintptr_t)dlsym(lib, "_ZSt9terminatev") + 5;
    dlclose(lib);
    snap_reset();
    snap_add_loaded(address);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, address, &frames, &count);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(frames[0].function, "std::terminate()+0x5");
    cr_assert_null(frames[0].file);
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), "");
    lkd_symbolizer_close(sym);
    rmdir(dir);
}

typedef uint64_t fixture_fn(unsigned *inner, unsigned *outer);

/* The path of fixture file name in fixtures/ beside the test binary (a static buffer per
 * call slot); skips the test when it was not built. */
static const char *fixture_path(const char *name)
{
    static char paths[4][PATH_MAX];
    static int next;
    char *path = paths[next++ % 4];
    ssize_t n = readlink("/proc/self/exe", path, PATH_MAX - 64);
    cr_assert_gt(n, 0);
    path[n] = '\0';
    snprintf(strrchr(path, '/') + 1, 64, "fixtures/%s", name);
    if (access(path, R_OK) != 0)
        cr_skip_test("%s not built (Makefile rules of tests/unit/fixtures)", path);
    return path;
}

/* The function symbol name of a loaded library. */
static void *fixture_symbol(void *handle, const char *name)
{
    void *entry = dlsym(handle, name);
    cr_assert_not_null(entry, "%s: %s", name, dlerror());
    return entry;
}

/* Loads fixture library name from fixtures/ beside the test binary (skipping the test
 * without it) and returns its entry point. */
static fixture_fn *load_fixture(const char *name, void **handle)
{
    *handle = dlopen(fixture_path(name), RTLD_NOW);
    cr_assert_not_null(*handle, "%s", dlerror());
    void *entry = fixture_symbol(*handle, "lkd_fixture_cxx");
    fixture_fn *fn;
    memcpy(&fn, &entry, sizeof(fn));
    return fn;
}

/* Checks the two frames of the fixture's return address. */
static void assert_fixture_frames(lkd_symbolizer_t *sym, uint64_t ra, unsigned inner,
                                  unsigned outer)
{
    const char *file = "tests/unit/fixtures/symbols_fixture.cc";
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, ra, &frames, &count);
    cr_assert_eq(count, 2, "got %zu frames, first %s", count, frames[0].function);
    cr_assert_str_eq(frames[0].function,
                     "unsigned long lkd_fixture::twice<int>(int, unsigned int)");
    cr_assert(frames[0].file && ends_with(frames[0].file, file), "file %s", frames[0].file);
    cr_assert_eq(frames[0].line, inner);
    cr_assert(frames[0].inlined);
    cr_assert_str_eq(frames[1].function, "lkd_fixture::Counter::bump(int)");
    cr_assert(frames[1].file && ends_with(frames[1].file, file), "file %s", frames[1].file);
    cr_assert_eq(frames[1].line, outer);
    cr_assert(!frames[1].inlined);
}

/* C++ names from DWARF (linkage names, demangled), with an inlined function template. */
Test(symbols, cxx_dwarf_inlined)
{
    void *handle;
    unsigned inner, outer;
    fixture_fn *fn = load_fixture("libsymbols_fixture.so", &handle);
    uint64_t ra = fn(&inner, &outer);
    snap_reset();
    snap_add_loaded(ra);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    assert_fixture_frames(sym, ra, inner, outer);
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), "");
    lkd_symbolizer_close(sym);
    dlclose(handle);
}

/* A module unloaded before the snapshot still symbolizes from its recorded map. */
Test(symbols, unloaded_module)
{
    void *handle;
    unsigned inner, outer;
    fixture_fn *fn = load_fixture("libsymbols_fixture.so", &handle);
    uint64_t ra = fn(&inner, &outer);
    snap_reset();
    lkd_fmt_module_t *m = snap_add_loaded(ra);
    dlclose(handle);
    m->flags |= LKD_FMT_MOD_UNLOADED;
    m->unload_seq = 42;
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    assert_fixture_frames(sym, ra, inner, outer);
    lkd_symbolizer_close(sym);
}

/* The same library linked with its first segment at 0x200000 (-Wl,-Ttext-segment): the
 * bias is not the load address of the first segment, and both must not be confused. */
Test(symbols, nonzero_first_segment)
{
    void *handle;
    unsigned inner, outer;
    fixture_fn *fn = load_fixture("libsymbols_fixture_nz.so", &handle);
    uint64_t ra = fn(&inner, &outer);
    snap_reset();
    lkd_fmt_module_t *m = snap_add_loaded(ra);
    cr_assert_eq(m->start - m->bias, 0x200000, "fixture not linked with -Ttext-segment=0x200000");
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    assert_fixture_frames(sym, ra, inner, outer);
    lkd_symbolizer_close(sym);
    dlclose(handle);
}

/* Overlapping ranges: a still-loaded module wins; among unloaded ones the latest. */
Test(symbols, overlapping_modules)
{
    unsigned line;
    uint64_t ra = c_caller(&line);
    const lkd_frame_t *frames;
    size_t count;
    snap_reset();
    lkd_fmt_module_t *real = snap_add_loaded(ra);
    lkd_fmt_module_t *old = snap_add("/nonexistent/old.so", real->bias, real->start, real->end);
    old->flags = LKD_FMT_MOD_UNLOADED;
    old->unload_seq = 3;
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    lkd_symbolize(sym, ra, &frames, &count);
    assert_here(&frames[0], "c_caller", line, false);
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), "", "the unloaded module is never opened");
    lkd_symbolizer_close(sym);

    real->flags = LKD_FMT_MOD_UNLOADED; /* both gone: the later load (old.so) wins */
    real->unload_seq = 2;
    sym = lkd_symbolizer_open(&ts.snap);
    lkd_symbolize(sym, ra, &frames, &count);
    char expected[64];
    snprintf(expected, sizeof(expected), "old.so+0x%" PRIx64, ra - real->bias);
    cr_assert_str_eq(frames[0].function, expected);
    lkd_symbolizer_close(sym);
}

Test(symbols, missing_file)
{
    const char *path = "/nonexistent/dir/libgone.so";
    snap_reset();
    snap_add(path, 0x10000000, 0x10000000, 0x10010000);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    cr_assert_not_null(sym, "a missing file must not fail open");
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, 0x10001234, &frames, &count);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(frames[0].function, "libgone.so+0x1234");
    cr_assert_null(frames[0].file);
    cr_assert_eq(frames[0].line, 0);
    cr_assert_str_eq(frames[0].module, path);
    cr_assert_eq(frames[0].module_offset, 0x1234);
    lkd_symbolize(sym, 0x10002000, &frames, &count);
    cr_assert_str_eq(frames[0].function, "libgone.so+0x2000");
    const char *w = lkd_symbolizer_warnings(sym);
    cr_assert_eq(count_lines(w), 1, "one warning per module, got: %s", w);
    cr_assert(strstr(w, "/nonexistent/dir/libgone.so: file not found"), "%s", w);
    lkd_symbolizer_close(sym);
}

Test(symbols, build_id_mismatch)
{
    unsigned line;
    uint64_t ra = c_caller(&line);
    const lkd_frame_t *frames;
    size_t count;
    snap_reset();
    lkd_fmt_module_t *m = snap_add_loaded(ra);
    cr_assert_gt(m->build_id_len, 0, "the test binary has no GNU build-id");
    m->build_id[0] ^= 0xff;
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    lkd_symbolize(sym, ra, &frames, &count);
    const char *base = strrchr(module_path(m), '/') + 1;
    char expected[PATH_MAX + 32];
    snprintf(expected, sizeof(expected), "%s+0x%" PRIx64, base, ra - m->bias);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(frames[0].function, expected);
    cr_assert_null(frames[0].file);
    lkd_symbolize(sym, ra + 1, &frames, &count);
    char warning[PATH_MAX + 128];
    snprintf(warning, sizeof(warning),
             "%s: build-id differs from the snapshot (file changed since); frames shown as "
             "module+offset\n",
             module_path(m));
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), warning);
    lkd_symbolizer_close(sym);

    m->build_id_len = 0; /* nothing recorded: nothing to check, the file is used */
    sym = lkd_symbolizer_open(&ts.snap);
    lkd_symbolize(sym, ra, &frames, &count);
    assert_here(&frames[0], "c_caller", line, false);
    lkd_symbolizer_close(sym);
}

Test(symbols, outside_every_module)
{
    unsigned line;
    uint64_t ra = c_caller(&line);
    snap_reset();
    snap_add_loaded(ra);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, 0x10, &frames, &count);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(frames[0].function, "0x10");
    cr_assert_null(frames[0].module);
    cr_assert_null(frames[0].file);
    cr_assert_eq(frames[0].module_offset, 0);
    cr_assert_eq(frames[0].address, 0x10);
    lkd_symbolizer_close(sym);
}

Test(symbols, empty_snapshot)
{
    snap_reset();
    ts.snap.modules = NULL;
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, 0x7f0012345678, &frames, &count);
    cr_assert_str_eq(frames[0].function, "0x7f0012345678");
    lkd_symbolizer_close(sym);
}

/* VDSO and pseudo paths are shown as module+offset without a warning; an empty path warns. */
Test(symbols, vdso_and_unnamed)
{
    snap_reset();
    lkd_fmt_module_t *vdso = snap_add("[vdso]", 0x20000000, 0x20000000, 0x20002000);
    vdso->flags = LKD_FMT_MOD_VDSO;
    snap_add("", 0x30000000, 0x30000000, 0x30001000);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, 0x20000abc, &frames, &count);
    cr_assert_str_eq(frames[0].function, "[vdso]+0xabc");
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), "");
    lkd_symbolize(sym, 0x30000010, &frames, &count);
    cr_assert_str_eq(frames[0].function, "?+0x10");
    cr_assert_null(frames[0].module);
    cr_assert_eq(count_lines(lkd_symbolizer_warnings(sym)), 1);
    lkd_symbolizer_close(sym);
}

/* Writes len bytes of data to dir/name and returns the path (static buffer per slot). */
static const char *write_file(const char *dir, const char *name, const void *data, size_t len)
{
    static char paths[8][PATH_MAX];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, PATH_MAX, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

/* Reads the first len bytes of the test binary itself. */
static void *read_self(size_t len)
{
    unsigned char *buf = calloc(1, len);
    FILE *f = fopen("/proc/self/exe", "rb");
    cr_assert(buf && f);
    cr_assert_eq(fread(buf, 1, len, f), len);
    fclose(f);
    return buf;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[PATH_MAX];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* Files that are not usable ELF objects: each yields module+offset, none crashes. */
Test(symbols, bad_files)
{
    char dir[] = "/tmp/lkd-symbols-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    unsigned char *head = read_self(4096);
    unsigned char broken[64];
    memcpy(broken, head, sizeof(broken));
    memset(broken + 32, 0xff, 8); /* e_phoff far beyond the file */
    const char *paths[] = {
        dir,         /* a directory */
        "/dev/null", /* not a regular file */
        write_file(dir, "empty.so", "", 0),
        write_file(dir, "text.so", "not an ELF file\n", 16),
        write_file(dir, "header.so", head, 64),      /* ELF header only */
        write_file(dir, "broken.so", broken, 64),    /* program headers out of range */
        write_file(dir, "truncated.so", head, 4096), /* headers, no sections */
    };
    size_t n = sizeof(paths) / sizeof(paths[0]);
    snap_reset();
    for (size_t i = 0; i < n; i++) {
        uint64_t base = 0x40000000 + i * 0x100000;
        snap_add(paths[i], base, base, base + 0x100000);
    }
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    for (size_t i = 0; i < n; i++) {
        const lkd_frame_t *frames;
        size_t count;
        lkd_symbolize(sym, 0x40000000 + i * 0x100000 + 0x10, &frames, &count);
        cr_assert_eq(count, 1);
        cr_assert(ends_with(frames[0].function, "+0x10"), "%s", frames[0].function);
        cr_assert_null(frames[0].file);
    }
    const char *w = lkd_symbolizer_warnings(sym);
    cr_assert_geq(count_lines(w), 6, "%s", w); /* the 4 KiB prefix may pass as ELF */
    cr_assert(strstr(w, "not a regular file"), "%s", w);
    lkd_symbolizer_close(sym);
    free(head);
    remove_dir(dir);
}

/* The build-id path of a separate debug file under dir: dir/.build-id/xx/yyyy.debug. */
static void build_id_path(char *out, size_t size, const char *dir, const lkd_fmt_module_t *m)
{
    cr_assert_geq(m->build_id_len, 2, "no GNU build-id recorded");
    size_t n = (size_t)snprintf(out, size, "%s/.build-id/", dir);
    for (uint32_t i = 0; i < m->build_id_len && n + 8 < size; i++)
        n += (size_t)snprintf(out + n, size - n, i == 1 ? "/%02x" : "%02x", m->build_id[i]);
    cr_assert_lt(n + 8, size);
    strcpy(out + n, ".debug");
}

/* Separate debug info under /usr/lib/debug/.build-id (libc6-dbg) is found by default: libc
 * frames get the same functions, inline frames and lines as addr2line reads from that
 * file. With another debug directory, the same address is "symbol+0x5" from .dynsym. */
Test(symbols, separate_debuginfo)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    cr_assert_not_null(libc);
    uint64_t address = (uint64_t)(uintptr_t)dlsym(libc, "strdup") + 5;
    dlclose(libc);
    unsetenv("LEAKDIFF_DEBUG_DIR");
    snap_reset();
    lkd_fmt_module_t *m = snap_add_loaded(address);
    char debug[PATH_MAX], cmd[PATH_MAX + 128], names[8][256];
    unsigned lines[8];
    build_id_path(debug, sizeof(debug), "/usr/lib/debug", m);
    if (access(debug, R_OK) != 0)
        cr_skip_test("no separate debug info for libc (%s): install libc6-dbg", debug);
    snprintf(cmd, sizeof(cmd), "addr2line -f -i -e '%s' 0x%" PRIx64 " 2>/dev/null", debug,
             address - 1 - m->bias);
    FILE *in = popen(cmd, "r");
    cr_assert_not_null(in);
    size_t n = read_addr2line(in, names, lines, 8);
    pclose(in);
    if (n == 0)
        cr_skip_test("addr2line (binutils) is not available");
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, address, &frames, &count);
    cr_assert_eq(count, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(frames[i].function, names[i]);
        cr_assert_eq(frames[i].line, lines[i]);
        cr_assert_gt(frames[i].line, 0);
    }
    cr_assert_str_eq(frames[n - 1].function, "__GI___strdup"); /* glibc's DWARF name */
    cr_assert(frames[n - 1].file && ends_with(frames[n - 1].file, "strdup.c"), "%s",
              frames[n - 1].file);
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), "");
    lkd_symbolizer_close(sym);

    setenv("LEAKDIFF_DEBUG_DIR", "/nonexistent/debug", 1);
    sym = lkd_symbolizer_open(&ts.snap);
    lkd_symbolize(sym, address, &frames, &count);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(frames[0].function, "__strdup+0x5"); /* the global alias of strdup */
    cr_assert_null(frames[0].file);
    cr_assert_eq(frames[0].line, 0);
    lkd_symbolizer_close(sym);
}

/* ---- stripped libraries, separate debug files, changed files -------------------------- */

#define STRIPPED_SOURCE "tests/unit/fixtures/symbols_stripped.c"

typedef uint64_t line_fn(unsigned *line);

/* What the stripped fixture (tests/unit/fixtures/symbols_stripped.c) handed back. */
typedef struct stripped {
    void *handle;
    lkd_fmt_module_t *module;
    uint64_t entry_ra, hidden_ra, inlined_ra; /* return addresses to symbolize */
    uint64_t entry_fn, inlined_fn;            /* the exported functions that hold them */
    unsigned entry_line, hidden_line, inner_line, outer_line;
} stripped_t;

static void *call_target(void *handle, const char *name, uint64_t *address)
{
    void *p = fixture_symbol(handle, name);
    *address = (uint64_t)(uintptr_t)p;
    return p;
}

/* Loads the library at path (a copy of the stripped fixture), calls its three functions
 * and describes it as the only module of the test snapshot. */
static void stripped_run(const char *path, stripped_t *r)
{
    line_fn *one;
    fixture_fn *two;
    uint64_t hidden_fn;
    memset(r, 0, sizeof(*r));
    r->handle = dlopen(path, RTLD_NOW);
    cr_assert_not_null(r->handle, "%s", dlerror());
    void *p = call_target(r->handle, "lkd_stripped_entry", &r->entry_fn);
    memcpy(&one, &p, sizeof(one));
    r->entry_ra = one(&r->entry_line);
    p = call_target(r->handle, "lkd_stripped_hidden", &hidden_fn);
    memcpy(&one, &p, sizeof(one));
    r->hidden_ra = one(&r->hidden_line);
    p = call_target(r->handle, "lkd_stripped_inlined", &r->inlined_fn);
    memcpy(&two, &p, sizeof(two));
    r->inlined_ra = two(&r->inner_line, &r->outer_line);
    snap_reset();
    r->module = snap_add_loaded(r->entry_ra);
}

/* Asserts that f is one frame of function at line of file (a path suffix). */
static void assert_at(const lkd_frame_t *f, const char *function, const char *file, unsigned line,
                      bool inlined)
{
    cr_assert_str_eq(f->function, function);
    cr_assert(f->file && ends_with(f->file, file), "%s: file %s, expected %s", function,
              f->file ? f->file : "(none)", file);
    cr_assert_eq(f->line, line, "%s: line %u, expected %u", function, f->line, line);
    cr_assert_eq(f->inlined, inlined, "%s: inlined %d", function, f->inlined);
}

/* Asserts that address yields exactly one frame named function, without file or line. */
static void assert_bare(lkd_symbolizer_t *sym, uint64_t address, const char *function)
{
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, address, &frames, &count);
    cr_assert_eq(count, 1, "%s: %zu frames", function, count);
    cr_assert_str_eq(frames[0].function, function);
    cr_assert_null(frames[0].file, "%s: file %s", function, frames[0].file);
    cr_assert_eq(frames[0].line, 0);
    cr_assert_not_null(frames[0].module);
    cr_assert_eq(frames[0].address, address);
}

/* The fixture without its debug file: exported functions as "name+0x1a" from .dynsym, the
 * static function (no symbol left) as module+offset, no inline expansion, no warning. */
static void assert_stripped(lkd_symbolizer_t *sym, const stripped_t *r)
{
    char expected[PATH_MAX + 64];
    snprintf(expected, sizeof(expected), "lkd_stripped_entry+0x%" PRIx64,
             r->entry_ra - r->entry_fn);
    assert_bare(sym, r->entry_ra, expected);
    snprintf(expected, sizeof(expected), "%s+0x%" PRIx64, strrchr(module_path(r->module), '/') + 1,
             r->hidden_ra - r->module->bias);
    assert_bare(sym, r->hidden_ra, expected);
    snprintf(expected, sizeof(expected), "lkd_stripped_inlined+0x%" PRIx64,
             r->inlined_ra - r->inlined_fn);
    assert_bare(sym, r->inlined_ra, expected);
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), "");
}

/* The fixture with its debug file: functions, inline frames and lines from its DWARF. */
static void assert_debug(lkd_symbolizer_t *sym, const stripped_t *r)
{
    const lkd_frame_t *frames;
    size_t count;
    lkd_symbolize(sym, r->entry_ra, &frames, &count);
    cr_assert_eq(count, 1);
    assert_at(&frames[0], "lkd_stripped_entry", STRIPPED_SOURCE, r->entry_line, false);
    lkd_symbolize(sym, r->hidden_ra, &frames, &count);
    cr_assert_eq(count, 1);
    assert_at(&frames[0], "hidden_function", STRIPPED_SOURCE, r->hidden_line, false);
    lkd_symbolize(sym, r->inlined_ra, &frames, &count);
    cr_assert_eq(count, 2);
    assert_at(&frames[0], "inlined_function", STRIPPED_SOURCE, r->inner_line, true);
    assert_at(&frames[1], "lkd_stripped_inlined", STRIPPED_SOURCE, r->outer_line, false);
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), "");
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Copies file from to to, creating to's directories; replaces to atomically. */
static void copy_file(const char *from, const char *to)
{
    char tmp[PATH_MAX + 8], dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", to);
    for (char *p = strchr(dir + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        mkdir(dir, 0700);
        *p = '/';
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", to);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    cr_assert(in && out, "%s -> %s", from, tmp);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    cr_assert_eq(fclose(out), 0);
    cr_assert_eq(rename(tmp, to), 0, "%s", to);
}

/* A stripped library (only .dynsym left) without separate debug info. */
Test(symbols, stripped_dynsym)
{
    char dir[] = "/tmp/lkd-symbols-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    setenv("LEAKDIFF_DEBUG_DIR", dir, 1); /* an empty debug directory */
    stripped_t r;
    stripped_run(fixture_path("libsymbols_stripped.so"), &r);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    assert_stripped(sym, &r);
    lkd_symbolizer_close(sym);
    dlclose(r.handle);
    remove_tree(dir);
}

/* The same library with its DWARF in DIR/.build-id/xx/yyyy.debug, DIR given by
 * LEAKDIFF_DEBUG_DIR (objcopy --only-keep-debug, as Debian's -dbgsym packages install it). */
Test(symbols, separate_debug_dir)
{
    char dir[] = "/tmp/lkd-symbols-XXXXXX", debug[PATH_MAX];
    cr_assert_not_null(mkdtemp(dir));
    stripped_t r;
    stripped_run(fixture_path("libsymbols_stripped.so"), &r);
    build_id_path(debug, sizeof(debug), dir, r.module);
    copy_file(fixture_path("libsymbols_stripped.debug"), debug);
    setenv("LEAKDIFF_DEBUG_DIR", dir, 1);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    assert_debug(sym, &r);
    lkd_symbolizer_close(sym);

    /* a list: directories that do not exist are skipped */
    char list[2 * PATH_MAX];
    snprintf(list, sizeof(list), "/nonexistent/debug:%s", dir);
    setenv("LEAKDIFF_DEBUG_DIR", list, 1);
    sym = lkd_symbolizer_open(&ts.snap);
    assert_debug(sym, &r);
    lkd_symbolizer_close(sym);
    dlclose(r.handle);
    remove_tree(dir);
}

/* A debug file of another build under the library's build-id name is not used: the frames
 * are what the stripped library alone says. */
Test(symbols, separate_debug_wrong_file)
{
    char dir[] = "/tmp/lkd-symbols-XXXXXX", debug[PATH_MAX];
    cr_assert_not_null(mkdtemp(dir));
    stripped_t r;
    stripped_run(fixture_path("libsymbols_stripped.so"), &r);
    build_id_path(debug, sizeof(debug), dir, r.module);
    copy_file(fixture_path("libsymbols_fixture.so"), debug);
    setenv("LEAKDIFF_DEBUG_DIR", dir, 1);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    assert_stripped(sym, &r);
    lkd_symbolizer_close(sym);
    dlclose(r.handle);
    remove_tree(dir);
}

/* A library rebuilt since the snapshot: the file at the recorded path has another
 * build-id. Its frames are module+offset, never names from the new file, and there is one
 * warning for the module, however many addresses and load addresses it has. Put back, the
 * original file is used again. */
Test(symbols, changed_file)
{
    char dir[] = "/tmp/lkd-symbols-XXXXXX", path[PATH_MAX];
    cr_assert_not_null(mkdtemp(dir));
    setenv("LEAKDIFF_DEBUG_DIR", dir, 1);
    snprintf(path, sizeof(path), "%s/libchanged.so", dir);
    copy_file(fixture_path("libsymbols_stripped.so"), path);
    stripped_t r;
    stripped_run(path, &r);
    dlclose(r.handle);
    r.module->flags |= LKD_FMT_MOD_UNLOADED;
    r.module->unload_seq = 7;
    uint64_t delta = 0x100000000000ull; /* loaded again, elsewhere */
    lkd_fmt_module_t *again =
        snap_add(path, r.module->bias + delta, r.module->start + delta, r.module->end + delta);
    memcpy(again->build_id, r.module->build_id, r.module->build_id_len);
    again->build_id_len = r.module->build_id_len;
    copy_file(fixture_path("libsymbols_fixture.so"), path); /* "rebuilt" */

    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    uint64_t addresses[] = {r.entry_ra, r.hidden_ra, r.inlined_ra + delta};
    for (size_t i = 0; i < 3; i++) {
        char expected[64];
        snprintf(expected, sizeof(expected), "libchanged.so+0x%" PRIx64,
                 addresses[i] - (i == 2 ? again->bias : r.module->bias));
        assert_bare(sym, addresses[i], expected);
    }
    char warning[PATH_MAX + 128];
    snprintf(warning, sizeof(warning),
             "%s: build-id differs from the snapshot (file changed since); frames shown as "
             "module+offset\n",
             path);
    cr_assert_str_eq(lkd_symbolizer_warnings(sym), warning);
    lkd_symbolizer_close(sym);

    copy_file(fixture_path("libsymbols_stripped.so"), path);
    sym = lkd_symbolizer_open(&ts.snap);
    assert_stripped(sym, &r);
    lkd_symbolizer_close(sym);
    remove_tree(dir);
}

/* The cache is per (module file, offset): a module loaded at two addresses in one snapshot,
 * and in a second snapshot (another run, another layout) open at the same time, is opened
 * once and each of its offsets resolved once; every frame keeps its own address. */
Test(symbols, shared_cache)
{
    unsigned line;
    uint64_t ra = c_caller(&line), delta = 0x100000000000ull;
    snap_reset();
    lkd_fmt_module_t *m = snap_add_loaded(ra);
    static __typeof__(ts) other;
    other = ts;
    other.snap.strings = other.strings;
    other.snap.modules = other.modules;
    other.modules[0].bias += delta;
    other.modules[0].start += delta;
    other.modules[0].end += delta;
    lkd_fmt_module_t *old =
        snap_add(module_path(m), m->bias + 2 * delta, m->start + 2 * delta, m->end + 2 * delta);
    memcpy(old->build_id, m->build_id, m->build_id_len);
    old->build_id_len = m->build_id_len;
    old->flags = LKD_FMT_MOD_UNLOADED;
    old->unload_seq = 5;

    lkd_symbolizer_t *a = lkd_symbolizer_open(&ts.snap), *b = lkd_symbolizer_open(&other.snap);
    const lkd_frame_t *fa, *fo, *fb;
    size_t count;
    lkd_symbolizer_stats_t st;
    lkd_symbolize(a, ra, &fa, &count);
    assert_here(&fa[0], "c_caller", line, false);
    lkd_symbolize(a, ra + 2 * delta, &fo, &count);
    assert_here(&fo[0], "c_caller", line, false);
    cr_assert_eq(fo[0].address, ra + 2 * delta);
    cr_assert_eq(fo[0].module_offset, fa[0].module_offset);
    lkd_symbolizer_stats(a, &st);
    cr_assert_eq(st.modules_opened, 1);
    cr_assert_eq(st.offsets_resolved, 1);
    cr_assert_eq(st.addresses, 2);

    lkd_symbolize(b, ra + delta, &fb, &count);
    assert_here(&fb[0], "c_caller", line, false);
    cr_assert_eq(fb[0].address, ra + delta);
    cr_assert_eq(fb[0].function, fa[0].function, "strings are shared");
    lkd_symbolizer_stats(b, &st);
    cr_assert_eq(st.modules_opened, 1);
    cr_assert_eq(st.offsets_resolved, 1);
    cr_assert_eq(st.addresses, 1);
    lkd_symbolizer_close(a);
    lkd_symbolize(b, ra + delta, &fb, &count); /* still valid with a closed */
    assert_here(&fb[0], "c_caller", line, false);
    lkd_symbolizer_close(b);
}

Test(symbols, debuginfod_off)
{
    setenv("DEBUGINFOD_URLS", "http://127.0.0.1:9", 1);
    snap_reset();
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&ts.snap);
    cr_assert_null(getenv("DEBUGINFOD_URLS"));
    lkd_symbolizer_close(sym);
}
