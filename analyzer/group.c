/*
 * group - site attribution, grouping by a symbolic key, and diffing of group sets.
 *
 * A stack's frames come from the resolver, innermost first, with inline frames expanded.
 * Its SITE is the first frame that is not allocator plumbing (the shim, malloc and its
 * relatives, libc's allocating helpers, C++ operator new, and the C++ standard library's
 * containers and strings, whether inlined from its headers or in libstdc++); when every
 * frame is plumbing the site is the outermost frame. With python attribution (--python, or
 * a snapshot of CPython), the interpreter's frames are plumbing as well, and a stack that is
 * all interpreter is attributed to CPython's allocating function (see python_site).
 * A stack's live bytes and blocks go to the group whose key (lkd_group_by_t) its site
 * yields; with --cumulative, to the group of
 * every location from the site outward, once per stack even when a location recurs.
 * Filters live here too, so that every command applies them alike: --include/--exclude
 * globs decide per stack (lkd_group_build), --min-bytes per group (lkd_group_drop_small).
 * A diff (lkd_group_diff) or a trend (lkd_group_trend) merges group sets by key.
 *
 * Invariants: each distinct address is resolved and checked against the plumbing globs
 * once per build (addr_entry_t cache); keys are symbol strings only, never raw addresses,
 * unless the resolver itself knows nothing better than an address. Sort orders are total
 * (keys are unique), so output is deterministic. Never does I/O.
 */
#include "group.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "../preload/estimate.h"
#include "util.h"

#define NO_SITE SIZE_MAX

/* Allocator plumbing that is never a site (fnmatch globs on the function name without a
 * "+0x1a" offset suffix). */
static const char *const default_skip_functions[] = {
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "__libc_*",
    "*strdup",
    "*strndup",
    "*asprintf*",
    "__vasprintf*",
    "getline",
    "getdelim",
    "__getdelim",
    "operator new*",
    "operator new[]*",
    "__gnu_cxx::new_allocator*",
    "std::__new_allocator*",
    "std::allocator_traits*",
    "std::allocator<*>::allocate*",
};
/* The shim, and the C++ runtime libraries: their containers and strings allocate on the
 * user's behalf, so the site is the user's function that used them. */
static const char *const default_skip_modules[] = {
    "*libleakdiff.so",
    "*/libstdc++.so*",
    "*/libc++.so*",
    "*/libc++abi.so*",
};
/* C++ standard library headers: std::vector, std::string, ... instantiated (often inlined)
 * in the user's own binary (GCC: /usr/include/c++/12/, LLVM: .../include/c++/v1/). */
static const char *const default_skip_files[] = {"*/include/c++/*"};

/* Python attribution (lkd_python_t): the CPython interpreter is plumbing too, so that a C
 * extension's own function is the site. Interpreter modules by base name: the executable
 * (python3, python3.11, python3.11d) and libpython (embedding programs). */
static const char *const python_modules[] = {"python3", "python3.[0-9]*", "libpython3.*"};
/* Process and thread entry frames, outside the interpreter but never a useful Python site. */
static const char *const python_entry_functions[] = {"_start", "start_thread", "clone", "clone3",
                                                     "__clone*"};
/* When a stack is all interpreter, its site is the first interpreter frame with a symbol that
 * is not one of CPython's generic allocators: the object kind's own allocator (_PyLong_New,
 * PyUnicode_New, list_resize, ...) or the API function that allocated (PyDict_SetDefault). */
static const char *const python_alloc_functions[] = {
    "PyObject_Malloc",
    "PyObject_Calloc",
    "PyObject_Realloc",
    "_PyObject_Malloc*",
    "_PyObject_Calloc*",
    "_PyObject_Realloc*",
    "PyMem_*",
    "_PyMem_*",
    "pymalloc_*",
    "PyObject_GC_*",
    "_PyObject_GC_*",
    "gc_alloc",
    "_PyObject_New*",
    "PyObject_Init*",
    "PyType_GenericAlloc",
    "_PyType_AllocNoTrack",
    "PyType_GenericNew",
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const by_names[] = {
    [LKD_BY_FUNCTION] = "function", [LKD_BY_LINE] = "line",           [LKD_BY_FILE] = "file",
    [LKD_BY_MODULE] = "module",     [LKD_BY_TRACEBACK] = "traceback",
};

/* One distinct return address: its frames and where among them a site could start. */
typedef struct addr_entry {
    uint64_t address;
    const lkd_frame_t *frames; /* owned by the resolver */
    size_t count;
    size_t first_site;       /* index of the first non-plumbing frame; count when none */
    size_t first_python;     /* python mode: the first fallback site frame; count when none */
    bool included, excluded; /* some frame matches an --include / --exclude glob */
    UT_hash_handle hh;
} addr_entry_t;

/* State of one lkd_group_build call. */
typedef struct builder {
    const lkd_snapshot_t *snap;
    const lkd_resolver_t *res;
    const lkd_group_opts_t *opts;
    lkd_group_set_t *set;
    addr_entry_t *addrs; /* cache by address */
    lkd_frame_t *frames; /* the current stack, expanded; grows */
    size_t nframes, frames_cap;
    size_t site;             /* index into frames, or NO_SITE for an empty stack */
    bool complete;           /* frames hold the whole stack, not just up to the site */
    bool included, excluded; /* the current stack: some address matched (filters) */
    bool python;             /* python attribution (lkd_group_python_on) */
    lkd_buf_t key;           /* the current stack's key */
} builder_t;

/*
 * Parses a --by name ("function", "line", "file", "module", "traceback") into *by.
 * Returns 0, or -EINVAL for an unknown name.
 */
int lkd_group_by_parse(const char *name, lkd_group_by_t *by)
{
    for (size_t i = 0; i < COUNT_OF(by_names); i++) {
        if (strcmp(name, by_names[i]) == 0) {
            *by = (lkd_group_by_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* The --by name of by (static string). */
const char *lkd_group_by_name(lkd_group_by_t by)
{
    return (size_t)by < COUNT_OF(by_names) ? by_names[by] : "?";
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/*
 * Length of frame->function without a trailing "+0x<hex>" offset, which the symbolizer
 * appends when it has a symbol but no line info ("make_record+0x1a" -> "make_record").
 * "module+0x1234" (no symbol at all) keeps its offset: the module name alone would merge
 * unrelated code into one function.
 */
size_t lkd_function_base_len(const lkd_frame_t *frame)
{
    const char *fn = frame->function, *plus = strrchr(fn, '+');
    size_t len = strlen(fn);
    if (!plus || plus[1] != '0' || plus[2] != 'x' || plus[3] == '\0')
        return len;
    if (strspn(plus + 3, "0123456789abcdefABCDEF") != strlen(plus + 3))
        return len;
    size_t base = (size_t)(plus - fn);
    if (frame->module) {
        const char *m = frame->module, *mb = base_name(m);
        if ((strlen(m) == base && !memcmp(fn, m, base)) ||
            (strlen(mb) == base && !memcmp(fn, mb, base)))
            return len;
    }
    return base;
}

static bool match_any(const char *const *globs, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(globs[i], s, 0) == 0)
            return true;
    return false;
}

static bool function_is_plumbing(const char *name, const lkd_group_opts_t *opts)
{
    if (match_any(default_skip_functions, COUNT_OF(default_skip_functions), name))
        return true;
    return opts && match_any(opts->skip_functions, opts->skip_function_count, name);
}

static bool module_is_plumbing(const char *module, const lkd_group_opts_t *opts)
{
    if (!module)
        return false;
    if (match_any(default_skip_modules, COUNT_OF(default_skip_modules), module))
        return true;
    return opts && match_any(opts->skip_modules, opts->skip_module_count, module);
}

static bool file_is_plumbing(const char *file, const lkd_group_opts_t *opts)
{
    if (!file)
        return false;
    if (match_any(default_skip_files, COUNT_OF(default_skip_files), file))
        return true;
    return opts && match_any(opts->skip_files, opts->skip_file_count, file);
}

/*
 * True when frame is allocator plumbing: its function (offset suffix removed) matches a
 * default or --skip-function glob, its module path a default or --skip-module glob, or its
 * source file a default or --skip-file glob. opts may be NULL (defaults only).
 */
bool lkd_group_is_plumbing(const lkd_frame_t *frame, const lkd_group_opts_t *opts)
{
    if (module_is_plumbing(frame->module, opts) || file_is_plumbing(frame->file, opts))
        return true;
    size_t len = lkd_function_base_len(frame);
    if (frame->function[len] == '\0')
        return function_is_plumbing(frame->function, opts);
    char small[256], *name = len < sizeof small ? small : malloc(len + 1);
    if (!name)
        return false; /* out of memory: attribute here rather than lose the stack */
    memcpy(name, frame->function, len);
    name[len] = '\0';
    bool skip = function_is_plumbing(name, opts);
    if (name != small)
        free(name);
    return skip;
}

/* True when glob matches path or, for a path with a directory, its base name. */
static bool path_matches(const char *glob, const char *path)
{
    if (!path)
        return false;
    return fnmatch(glob, path, 0) == 0 ||
           (strchr(path, '/') && fnmatch(glob, base_name(path), 0) == 0);
}

/* lkd_frame_matches - see group.h. */
bool lkd_frame_matches(const lkd_frame_t *frame, lkd_frame_test_fn *test, const void *ctx)
{
    if (test(ctx, frame->function, false) || test(ctx, frame->file, true) ||
        test(ctx, frame->module, true))
        return true;
    size_t len = lkd_function_base_len(frame);
    if (frame->function[len] == '\0')
        return false;
    char small[256], *name = len < sizeof small ? small : malloc(len + 1);
    if (!name)
        return false;
    memcpy(name, frame->function, len);
    name[len] = '\0';
    bool match = test(ctx, name, false);
    if (name != small)
        free(name);
    return match;
}

static bool glob_test(const void *glob, const char *s, bool is_path)
{
    return is_path ? path_matches(glob, s) : fnmatch(glob, s, 0) == 0;
}

/*
 * True when the fnmatch glob matches frame's function (as shown, or without a "+0x1a"
 * offset suffix), its source file or its module (each the full path or the base name). This
 * is what --include and --exclude test on every frame of a stack.
 */
bool lkd_group_frame_matches(const char *glob, const lkd_frame_t *frame)
{
    return lkd_frame_matches(frame, glob_test, glob);
}

/* Whether some frame of e matches glob number i (includes first, then excludes). */
static bool entry_matches(const builder_t *b, const addr_entry_t *e, size_t i)
{
    const lkd_group_opts_t *o = b->opts;
    const char *glob = i < o->include_count ? o->includes[i] : o->excludes[i - o->include_count];
    for (size_t j = 0; j < e->count; j++)
        if (lkd_group_frame_matches(glob, &e->frames[j]))
            return true;
    return false;
}

/* Sets e->included/e->excluded, and notes in set->glob_matched every glob that matched. */
static void entry_filter(builder_t *b, addr_entry_t *e)
{
    for (size_t i = 0; i < b->set->glob_count; i++) {
        if (!entry_matches(b, e, i))
            continue;
        b->set->glob_matched[i] = true;
        if (i < b->opts->include_count)
            e->included = true;
        else
            e->excluded = true;
    }
}

static bool filtering(const lkd_group_opts_t *o)
{
    return o->include_count || o->exclude_count;
}

/* The current stack passes the filters: it matches some include (or none is given) and no
 * exclude. */
static bool stack_selected(const builder_t *b)
{
    return (!b->opts->include_count || b->included) && !b->excluded;
}

/* ---- python attribution ------------------------------------------------------------- */

static bool is_python_module(const char *path)
{
    return path && match_any(python_modules, COUNT_OF(python_modules), base_name(path));
}

/* True when snap is of a CPython process: its executable, or a module it loaded (libpython
 * in an embedding program), is the interpreter. */
bool lkd_group_is_python(const lkd_snapshot_t *snap)
{
    if (is_python_module(lkd_snapshot_string(snap, snap->process.exe)))
        return true;
    for (size_t i = 0; i < snap->module_count; i++)
        if (is_python_module(lkd_snapshot_string(snap, snap->modules[i].path)))
            return true;
    return false;
}

/* Whether lkd_group_build attributes snap's stacks with python attribution. */
bool lkd_group_python_on(const lkd_snapshot_t *snap, const lkd_group_opts_t *opts)
{
    return opts->python == LKD_PYTHON_ON ||
           (opts->python == LKD_PYTHON_AUTO && lkd_group_is_python(snap));
}

/* True when f's function, without an offset suffix, matches one of globs. */
static bool function_in(const lkd_frame_t *f, const char *const *globs, size_t n)
{
    char name[256];
    size_t len = lkd_function_base_len(f);
    if (len >= sizeof name)
        return false;
    memcpy(name, f->function, len);
    name[len] = '\0';
    return match_any(globs, n, name);
}

/* True when f has no symbol: the symbolizer named it "<module base name>+0x<offset>". */
static bool is_unnamed(const lkd_frame_t *f)
{
    if (!f->module)
        return strncmp(f->function, "0x", 2) == 0;
    const char *mb = base_name(f->module);
    size_t n = strlen(mb);
    return strncmp(f->function, mb, n) == 0 && strncmp(f->function + n, "+0x", 3) == 0;
}

/*
 * Python mode: moves e->first_site past the interpreter's frames (and process or thread
 * entry frames), and sets e->first_python to the first of those that may be the site of an
 * all-interpreter stack (named, not a generic allocator); count when none.
 */
static void python_site(const builder_t *b, addr_entry_t *e)
{
    e->first_python = e->count;
    if (!b->python)
        return;
    size_t i = e->first_site;
    for (; i < e->count; i++) {
        const lkd_frame_t *f = &e->frames[i];
        bool interpreter = is_python_module(f->module);
        if (!interpreter &&
            !function_in(f, python_entry_functions, COUNT_OF(python_entry_functions)) &&
            !lkd_group_is_plumbing(f, b->opts))
            break;
        if (e->first_python == e->count && interpreter && !is_unnamed(f) &&
            !function_in(f, python_entry_functions, COUNT_OF(python_entry_functions)) &&
            !function_in(f, python_alloc_functions, COUNT_OF(python_alloc_functions)) &&
            !lkd_group_is_plumbing(f, b->opts))
            e->first_python = i;
    }
    e->first_site = i;
}

/* Finds or creates the cache entry of address. Returns 0 or -ENOMEM. */
static int addr_lookup(builder_t *b, uint64_t address, addr_entry_t **out)
{
    addr_entry_t *e;
    HASH_FIND(hh, b->addrs, &address, sizeof address, e);
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e)
            return -ENOMEM;
        e->address = address;
        b->res->resolve(b->res->ctx, address, &e->frames, &e->count);
        if (!e->frames)
            e->count = 0;
        e->first_site = 0;
        while (e->first_site < e->count &&
               lkd_group_is_plumbing(&e->frames[e->first_site], b->opts))
            e->first_site++;
        python_site(b, e);
        entry_filter(b, e);
        HASH_ADD(hh, b->addrs, address, sizeof e->address, e);
        if (!e->hh.tbl) {
            free(e);
            return -ENOMEM;
        }
    }
    *out = e;
    return 0;
}

static int push_frames(builder_t *b, const lkd_frame_t *frames, size_t n)
{
    if (b->nframes + n > b->frames_cap) {
        size_t cap = b->frames_cap ? b->frames_cap * 2 : 64;
        while (cap < b->nframes + n)
            cap *= 2;
        lkd_frame_t *f = realloc(b->frames, cap * sizeof *f);
        if (!f)
            return -ENOMEM;
        b->frames = f;
        b->frames_cap = cap;
    }
    memcpy(b->frames + b->nframes, frames, n * sizeof *frames);
    b->nframes += n;
    return 0;
}

/*
 * Expands stack id into b->frames and sets b->site. Unless full, stops after the address
 * that holds the site (enough for every key but traceback). Returns 0, -ENOMEM, or -EINVAL
 * for a stack that lies outside the snapshot's frame array.
 */
static int expand_stack(builder_t *b, size_t id, bool full)
{
    const lkd_snapshot_t *s = b->snap;
    uint64_t off = s->stack_offsets[id], depth = s->stack_depths[id];
    if (off > s->frame_count || depth > s->frame_count - off)
        return -EINVAL;
    b->nframes = 0;
    b->site = NO_SITE;
    b->included = b->excluded = false;
    size_t i, fallback = NO_SITE;
    for (i = 0; i < depth && (full || b->site == NO_SITE); i++) {
        addr_entry_t *e;
        int rc = addr_lookup(b, s->frames[off + i], &e);
        if (rc)
            return rc;
        if (b->site == NO_SITE && e->first_site < e->count)
            b->site = b->nframes + e->first_site;
        if (fallback == NO_SITE && e->first_python < e->count)
            fallback = b->nframes + e->first_python;
        b->included |= e->included;
        b->excluded |= e->excluded;
        if ((rc = push_frames(b, e->frames, e->count)))
            return rc;
    }
    b->complete = i == depth;
    if (b->site == NO_SITE)
        b->site = fallback; /* python mode, all interpreter: see python_alloc_functions */
    if (b->site == NO_SITE && b->nframes)
        b->site = b->nframes - 1; /* all plumbing: the outermost frame */
    return 0;
}

/* Appends "function (file:line)", "function (file)" or "function (module)" for f. */
static void frame_label(lkd_buf_t *out, const lkd_frame_t *f)
{
    lkd_buf_puts(out, f->function);
    if (f->file && f->line)
        lkd_buf_printf(out, " (%s:%u)", f->file, f->line);
    else if (f->file)
        lkd_buf_printf(out, " (%s)", f->file);
    else if (f->module)
        lkd_buf_printf(out, " (%s)", base_name(f->module));
}

/* Appends what one frame is called under key kind by: the whole key for function, line,
 * file and module (the site's, or each location's with --cumulative); for traceback, one
 * frame's part of the key. */
static int frame_key(lkd_buf_t *k, lkd_group_by_t by, const lkd_frame_t *f)
{
    switch (by) {
    case LKD_BY_FUNCTION: return lkd_buf_append(k, f->function, lkd_function_base_len(f));
    case LKD_BY_LINE:
        if (f->file && f->line)
            return lkd_buf_printf(k, "%s:%u", f->file, f->line);
        return lkd_buf_puts(k, f->function);
    case LKD_BY_FILE:
        return lkd_buf_puts(k, f->file ? f->file : f->module ? f->module : "[unknown]");
    case LKD_BY_MODULE: return lkd_buf_puts(k, f->module ? f->module : "[unknown]");
    case LKD_BY_TRACEBACK: frame_label(k, f); return k->err;
    }
    return -EINVAL;
}

/* Folded stack, root first: "main;handle;site", each frame named by frame_key. A ';' or a
 * line break inside a name becomes ':' / '?', so that it can neither split a frame nor a
 * line of collapsed output. */
static int folded_key(builder_t *b)
{
    lkd_buf_t *k = &b->key;
    for (size_t i = b->nframes; i-- > b->site;) {
        size_t from = k->len;
        frame_key(k, b->opts->by, &b->frames[i]);
        for (size_t j = from; !k->err && j < k->len; j++)
            if (k->data[j] == ';' || k->data[j] == '\n' || k->data[j] == '\r')
                k->data[j] = k->data[j] == ';' ? ':' : '?';
        if (i > b->site)
            lkd_buf_puts(k, ";");
    }
    return k->err;
}

/* Writes the key of the current stack (b->frames, b->site) into b->key. */
static int make_key(builder_t *b)
{
    lkd_buf_t *k = &b->key;
    lkd_buf_reset(k);
    if (b->site == NO_SITE)
        return lkd_buf_puts(k, "[no stack]");
    if (b->opts->folded)
        return folded_key(b);
    if (b->opts->by != LKD_BY_TRACEBACK)
        return frame_key(k, b->opts->by, &b->frames[b->site]);
    for (size_t i = b->site; i < b->nframes; i++) {
        if (i > b->site)
            lkd_buf_puts(k, " <- ");
        frame_label(k, &b->frames[i]);
    }
    return k->err;
}

static void group_free(lkd_group_t *g)
{
    free(g->key);
    free(g->frames);
    free(g->series);
    free(g->blocks_series);
    free(g);
}

/* Finds the group of key, creating an empty one. Returns 0 or -ENOMEM. */
static int group_get(lkd_group_set_t *set, const char *key, size_t len, lkd_group_t **out)
{
    lkd_group_t *g;
    HASH_FIND(hh, set->table, key, len, g);
    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g || !(g->key = strndup(key, len))) {
            free(g);
            return -ENOMEM;
        }
        HASH_ADD_KEYPTR(hh, set->table, g->key, len, g);
        if (!g->hh.tbl) {
            free(g->key);
            free(g);
            return -ENOMEM;
        }
        set->count++;
    }
    *out = g;
    return 0;
}

/* Makes frames[0..n) (copied; strings stay borrowed) g's representative frames. */
static int group_set_frames(lkd_group_t *g, const lkd_frame_t *frames, size_t n, uint64_t bytes)
{
    lkd_frame_t *copy = NULL;
    if (n && !(copy = malloc(n * sizeof *copy)))
        return -ENOMEM;
    if (n)
        memcpy(copy, frames, n * sizeof *copy);
    free(g->frames);
    g->frames = copy;
    g->frame_count = n;
    g->rep_bytes = bytes;
    return 0;
}

/* Adds stack id (bytes, blocks) to g. The stack's frames from index from outward (from the
 * site when from is NO_SITE) become g's representative when it is g's largest stack so far. */
static int group_add(builder_t *b, lkd_group_t *g, size_t id, size_t from, uint64_t bytes,
                     uint64_t blocks)
{
    int rc;
    g->bytes += bytes;
    g->blocks += blocks;
    if (g->stacks++ && bytes <= g->rep_bytes)
        return 0;
    if (!b->complete && (rc = expand_stack(b, id, true)))
        return rc;
    if (from == NO_SITE)
        from = b->site == NO_SITE ? b->nframes : b->site;
    return group_set_frames(g, b->frames + from, b->nframes - from, bytes);
}

/*
 * --cumulative: adds stack id to the group of every location from its site outward, each
 * key once, however often it recurs in the stack (g->stamp remembers the last stack counted).
 * Each group's representative frames start at its own location.
 */
static int add_cumulative(builder_t *b, size_t id, uint64_t bytes, uint64_t blocks)
{
    for (size_t i = b->site; i < b->nframes; i++) {
        lkd_group_t *g;
        lkd_buf_reset(&b->key);
        int rc = frame_key(&b->key, b->opts->by, &b->frames[i]);
        if (!rc)
            rc = group_get(b->set, b->key.data, b->key.len, &g);
        if (!rc && g->stamp != id + 1) {
            g->stamp = id + 1;
            rc = group_add(b, g, id, i, bytes, blocks);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Adds stack id (bytes, blocks) to the group its site keys (to every location's group with
 * --cumulative), unless the filters drop it. Returns 0 or -errno. */
static int add_stack(builder_t *b, size_t id, uint64_t bytes, uint64_t blocks)
{
    const lkd_group_opts_t *o = b->opts;
    bool full = o->by == LKD_BY_TRACEBACK || o->cumulative || o->folded || filtering(o);
    lkd_group_t *g;
    int rc = expand_stack(b, id, full);
    if (rc || !stack_selected(b))
        return rc;
    b->set->bytes += bytes;
    b->set->blocks += blocks;
    if (o->cumulative && !o->folded && b->site != NO_SITE)
        return add_cumulative(b, id, bytes, blocks);
    if ((rc = make_key(b)) || (rc = group_get(b->set, b->key.data, b->key.len, &g)))
        return rc;
    return group_add(b, g, id, NO_SITE, bytes, blocks);
}

/*
 * The sampling rate of snap (LEAKDIFF_SAMPLE: mean bytes between samples), 0 when every
 * allocation was recorded. Its figures are then estimates (lkd_group_build).
 */
uint64_t lkd_group_sample_rate(const lkd_snapshot_t *snap)
{
    return (snap->process.flags & LKD_FMT_F_SAMPLED) ? snap->process.sample_rate : 0;
}

/*
 * A sampled snapshot's estimates per stack id (stack_sums): each block born in
 * [o->min_birth, max_birth) counts as the bytes and blocks it stands for (estimate.h), summed
 * per stack in file (address) order and rounded per stack, exactly as the writer computed
 * the snapshot's totals. 0 or -ENOMEM.
 */
static int sampled_sums(const lkd_snapshot_t *s, const lkd_group_opts_t *o, uint64_t max_birth,
                        uint64_t *sum)
{
    size_t n = 2 * (s->stack_count ? s->stack_count : 1);
    uint64_t rate = lkd_group_sample_rate(s);
    double *est = calloc(n, sizeof *est);
    if (!est)
        return -ENOMEM;
    for (size_t i = 0; i < s->block_count; i++) {
        const lkd_fmt_block_t *bl = &s->blocks[i];
        if (bl->stack < s->stack_count && bl->birth >= o->min_birth && bl->birth < max_birth) {
            est[2 * bl->stack] += lkd_estimate_bytes(bl->size, rate);
            est[2 * bl->stack + 1] += lkd_estimate_blocks(bl->size, rate);
        }
    }
    for (size_t i = 0; i < n; i++)
        sum[i] = lkd_estimate_round(est[i]);
    free(est);
    return 0;
}

/*
 * Live bytes and blocks per stack id: from the writer's per-stack aggregates when the
 * snapshot has them and every block counts (no birth bounds in o), else summed over its
 * blocks born in [o->min_birth, o->max_birth). In a sampled snapshot, every block counts as
 * the bytes and blocks it stands for (sampled_sums): this is where every command's figures
 * (top, diff, trend, survivors, check) become estimates. Entries with an out-of-range stack
 * id are ignored (the reader has already rejected such files). *out is calloc'd.
 */
static int stack_sums(const lkd_snapshot_t *s, const lkd_group_opts_t *o, uint64_t **out)
{
    uint64_t *sum = calloc(2 * (s->stack_count ? s->stack_count : 1), sizeof *sum);
    uint64_t max_birth = o->max_birth ? o->max_birth : UINT64_MAX;
    if (!sum)
        return -ENOMEM;
    if (lkd_group_sample_rate(s)) {
        int rc = sampled_sums(s, o, max_birth, sum);
        if (rc) {
            free(sum);
            return rc;
        }
    } else if (s->stack_stat_count && !o->min_birth && !o->max_birth) {
        for (size_t i = 0; i < s->stack_stat_count; i++) {
            const lkd_fmt_stack_stat_t *st = &s->stack_stats[i];
            if (st->stack < s->stack_count) {
                sum[2 * st->stack] += st->bytes;
                sum[2 * st->stack + 1] += st->blocks;
            }
        }
    } else {
        for (size_t i = 0; i < s->block_count; i++) {
            const lkd_fmt_block_t *bl = &s->blocks[i];
            if (bl->stack < s->stack_count && bl->birth >= o->min_birth && bl->birth < max_birth) {
                sum[2 * bl->stack] += bl->size;
                sum[2 * bl->stack + 1]++;
            }
        }
    }
    *out = sum;
    return 0;
}

static void builder_free(builder_t *b)
{
    addr_entry_t *e, *tmp;
    HASH_ITER(hh, b->addrs, e, tmp)
    {
        HASH_DEL(b->addrs, e);
        free(e);
    }
    free(b->frames);
    lkd_buf_free(&b->key);
}

/*
 * Attributes every stack of snap that holds live memory (only blocks born in
 * [opts->min_birth, opts->max_birth) when those are set) to its site and groups it by
 * opts->by into *set (which is initialized here; free it with lkd_group_set_free, also on
 * failure), keeping only the stacks that pass the include and exclude globs;
 * set->bytes/blocks sum the stacks kept, set->glob_matched tells which globs matched a
 * frame. Frame strings stay owned by res. Returns 0, -ENOMEM, or -EINVAL for a stack outside
 * the snapshot's frames.
 */
int lkd_group_build(const lkd_snapshot_t *snap, const lkd_resolver_t *res,
                    const lkd_group_opts_t *opts, lkd_group_set_t *set)
{
    builder_t b = {.snap = snap, .res = res, .opts = opts, .set = set};
    b.python = lkd_group_python_on(snap, opts);
    uint64_t *sum = NULL;
    memset(set, 0, sizeof *set);
    set->by = opts->by;
    set->cumulative = opts->cumulative && !opts->folded;
    set->glob_count = opts->include_count + opts->exclude_count;
    int rc = -ENOMEM;
    if (set->glob_count && !(set->glob_matched = calloc(set->glob_count, sizeof(bool))))
        goto out;
    if ((rc = stack_sums(snap, opts, &sum)))
        goto out;
    for (size_t id = 0; id < snap->stack_count; id++) {
        if (!sum[2 * id] && !sum[2 * id + 1])
            continue;
        if ((rc = add_stack(&b, id, sum[2 * id], sum[2 * id + 1])))
            goto out;
    }
out:
    free(sum);
    builder_free(&b);
    return rc;
}

/* Records og in set: as the old side of the group with the same key, or as a vanished
 * group (bytes 0) that keeps og's frames. */
static int diff_one(lkd_group_set_t *set, const lkd_group_t *og)
{
    lkd_group_t *g;
    size_t before = set->count;
    int rc = group_get(set, og->key, strlen(og->key), &g);
    if (rc)
        return rc;
    g->old_bytes += og->bytes;
    g->old_blocks += og->blocks;
    if (set->count == before)
        return 0;
    g->stacks = og->stacks;
    return group_set_frames(g, og->frames, og->frame_count, og->rep_bytes);
}

/*
 * Turns set (grouped from the NEW snapshot) into the diff against old (grouped from the
 * OLD snapshot by the same key kind): groups match by key; groups only in old are added
 * with bytes 0; every group gets bytes_diff/blocks_diff = new - old. old is not modified;
 * frames of added groups borrow old's resolver strings. Returns 0, -ENOMEM, or -EINVAL when
 * the two sets were grouped by different keys.
 */
int lkd_group_diff(lkd_group_set_t *set, const lkd_group_set_t *old)
{
    if (set->by != old->by || set->diffed)
        return -EINVAL;
    const lkd_group_t *og;
    for (og = old->table; og; og = og->hh.next) {
        int rc = diff_one(set, og);
        if (rc)
            return rc;
    }
    for (lkd_group_t *g = set->table; g; g = g->hh.next) {
        g->bytes_diff = (int64_t)(g->bytes - g->old_bytes);
        g->blocks_diff = (int64_t)(g->blocks - g->old_blocks);
    }
    set->old_bytes = old->bytes;
    set->old_blocks = old->blocks;
    set->diffed = true;
    return 0;
}

/* The series arrays of g for a trend over n snapshots, zeroed when new. 0 or -ENOMEM. */
static int group_series(lkd_group_t *g, size_t n)
{
    if (!g->series)
        g->series = calloc(n, sizeof *g->series);
    if (!g->blocks_series)
        g->blocks_series = calloc(n, sizeof *g->blocks_series);
    return g->series && g->blocks_series ? 0 : -ENOMEM;
}

/* Enters the groups of old, the snapshot at index i of n, in set's series. A group set does
 * not have yet keeps old's frames. */
static int trend_one(lkd_group_set_t *set, const lkd_group_set_t *old, size_t i, size_t n)
{
    for (const lkd_group_t *og = old->table; og; og = og->hh.next) {
        lkd_group_t *g;
        size_t before = set->count;
        int rc = group_get(set, og->key, strlen(og->key), &g);
        if (!rc && set->count != before) {
            g->stacks = og->stacks;
            rc = group_set_frames(g, og->frames, og->frame_count, og->rep_bytes);
        }
        if (!rc)
            rc = group_series(g, n);
        if (rc)
            return rc;
        g->series[i] += og->bytes;
        g->blocks_series[i] += og->blocks;
    }
    return 0;
}

/* True when series[0..n) rises strictly in every interval. */
static bool rises(const uint64_t *series, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (series[i] <= series[i - 1])
            return false;
    return true;
}

/*
 * Turns set (grouped from the LAST snapshot of a series) into a trend over it and the count
 * earlier snapshots' sets in earlier[] (oldest first, grouped by the same key kind): every
 * group gets series/blocks_series (count + 1 entries, oldest first; 0 where the group had
 * no memory), growing (its bytes rose in every interval), and old_bytes/bytes_diff (and the
 * blocks) from the first snapshot to the last, so that lkd_group_drop_small and the diff
 * orders treat it like a diff of first and last. Frames of groups absent from the last
 * snapshot borrow the strings of the earliest set that has them. Returns 0, -ENOMEM, or
 * -EINVAL (no earlier set, different key kinds, set already diffed).
 */
int lkd_group_trend(lkd_group_set_t *set, const lkd_group_set_t *const *earlier, size_t count)
{
    size_t n = count + 1;
    if (!count || set->diffed)
        return -EINVAL;
    for (size_t i = 0; i < count; i++) {
        int rc = earlier[i]->by != set->by ? -EINVAL : trend_one(set, earlier[i], i, n);
        if (rc)
            return rc;
    }
    for (lkd_group_t *g = set->table; g; g = g->hh.next) {
        if (group_series(g, n))
            return -ENOMEM;
        g->series[n - 1] = g->bytes;
        g->blocks_series[n - 1] = g->blocks;
        g->old_bytes = g->series[0];
        g->old_blocks = g->blocks_series[0];
        g->bytes_diff = (int64_t)(g->bytes - g->old_bytes);
        g->blocks_diff = (int64_t)(g->blocks - g->old_blocks);
        g->growing = rises(g->series, n);
    }
    set->old_bytes = earlier[0]->bytes;
    set->old_blocks = earlier[0]->blocks;
    set->series_len = n;
    set->diffed = true;
    return 0;
}

/*
 * --min-bytes: removes from set every group whose size is below min_bytes, counting them in
 * set->dropped. The size is a group's live bytes, or, once diffed (diff, trend), the absolute
 * change of its bytes from the old (first) snapshot to the new (last) one: a diff is about
 * change, so a large group that did not move is dropped and one that shrank by as much as
 * one that grew is kept. Forgets an earlier sort (sort again). min_bytes 0 keeps every group.
 */
void lkd_group_drop_small(lkd_group_set_t *set, uint64_t min_bytes)
{
    lkd_group_t *g, *tmp;
    HASH_ITER(hh, set->table, g, tmp)
    {
        uint64_t size = !set->diffed        ? g->bytes
                        : g->bytes_diff < 0 ? 0 - (uint64_t)g->bytes_diff
                                            : (uint64_t)g->bytes_diff;
        if (size >= min_bytes)
            continue;
        HASH_DEL(set->table, g);
        group_free(g);
        set->count--;
        set->dropped++;
    }
    free(set->sorted);
    set->sorted = NULL;
}

static int cmp_u64_desc(uint64_t a, uint64_t b)
{
    return a > b ? -1 : a < b;
}

static int cmp_size(const void *pa, const void *pb)
{
    const lkd_group_t *a = *(lkd_group_t *const *)pa, *b = *(lkd_group_t *const *)pb;
    int c = cmp_u64_desc(a->bytes, b->bytes);
    return c ? c : strcmp(a->key, b->key);
}

static int cmp_diff(const void *pa, const void *pb)
{
    const lkd_group_t *a = *(lkd_group_t *const *)pa, *b = *(lkd_group_t *const *)pb;
    if (a->bytes_diff != b->bytes_diff)
        return a->bytes_diff > b->bytes_diff ? -1 : 1;
    return cmp_size(pa, pb);
}

static int cmp_trend(const void *pa, const void *pb)
{
    const lkd_group_t *a = *(lkd_group_t *const *)pa, *b = *(lkd_group_t *const *)pb;
    if (a->growing != b->growing)
        return a->growing ? -1 : 1;
    return cmp_diff(pa, pb);
}

/*
 * Fills set->sorted with every group in the given order (replacing an earlier sort).
 * Returns 0 or -ENOMEM.
 */
int lkd_group_sort(lkd_group_set_t *set, lkd_group_order_t order)
{
    lkd_group_t **v = malloc((set->count ? set->count : 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    size_t n = 0;
    for (lkd_group_t *g = set->table; g; g = g->hh.next)
        v[n++] = g;
    qsort(v, n, sizeof *v,
          order == LKD_ORDER_TREND  ? cmp_trend
          : order == LKD_ORDER_DIFF ? cmp_diff
                                    : cmp_size);
    free(set->sorted);
    set->sorted = v;
    return 0;
}

/* The group with exactly this key, or NULL. */
lkd_group_t *lkd_group_find(const lkd_group_set_t *set, const char *key)
{
    lkd_group_t *g;
    HASH_FIND_STR(set->table, key, g);
    return g;
}

/* Frees everything set owns and zeroes it. Safe on a zeroed or partly built set. */
void lkd_group_set_free(lkd_group_set_t *set)
{
    lkd_group_t *g, *tmp;
    HASH_ITER(hh, set->table, g, tmp)
    {
        HASH_DEL(set->table, g);
        group_free(g);
    }
    free(set->sorted);
    free(set->glob_matched);
    memset(set, 0, sizeof *set);
}
