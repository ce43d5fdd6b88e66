/*
 * group - site attribution, grouping by a symbolic key, and diffing of group sets.
 *
 * A stack's frames come from the resolver, innermost first, with inline frames expanded.
 * Its SITE is the first frame that is not allocator plumbing (the shim, malloc and its
 * relatives, libc's allocating helpers, C++ operator new, and the C++ standard library's
 * containers and strings, whether inlined from its headers or in libstdc++); when every
 * frame is plumbing the site is the outermost frame. A stack's live bytes and blocks go to
 * the group whose key (lkd_group_by_t) its site yields.
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
    size_t first_site; /* index of the first non-plumbing frame; count when none */
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
    size_t site;   /* index into frames, or NO_SITE for an empty stack */
    bool complete; /* frames hold the whole stack, not just up to the site */
    lkd_buf_t key; /* the current stack's key */
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
    size_t i;
    for (i = 0; i < depth && (full || b->site == NO_SITE); i++) {
        addr_entry_t *e;
        int rc = addr_lookup(b, s->frames[off + i], &e);
        if (rc)
            return rc;
        if (b->site == NO_SITE && e->first_site < e->count)
            b->site = b->nframes + e->first_site;
        if ((rc = push_frames(b, e->frames, e->count)))
            return rc;
    }
    b->complete = i == depth;
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

/* Writes the key of the current stack (b->frames, b->site) into b->key. */
static int make_key(builder_t *b)
{
    lkd_buf_t *k = &b->key;
    lkd_buf_reset(k);
    if (b->site == NO_SITE)
        return lkd_buf_puts(k, "[no stack]");
    const lkd_frame_t *f = &b->frames[b->site];
    switch (b->opts->by) {
    case LKD_BY_FUNCTION: return lkd_buf_append(k, f->function, lkd_function_base_len(f));
    case LKD_BY_LINE:
        if (f->file && f->line)
            return lkd_buf_printf(k, "%s:%u", f->file, f->line);
        return lkd_buf_puts(k, f->function);
    case LKD_BY_FILE:
        return lkd_buf_puts(k, f->file ? f->file : f->module ? f->module : "[unknown]");
    case LKD_BY_MODULE: return lkd_buf_puts(k, f->module ? f->module : "[unknown]");
    case LKD_BY_TRACEBACK:
        for (size_t i = b->site; i < b->nframes; i++) {
            if (i > b->site)
                lkd_buf_puts(k, " <- ");
            frame_label(k, &b->frames[i]);
        }
        return k->err;
    }
    return -EINVAL;
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

/* Adds stack id (bytes, blocks) to the group its site keys. Returns 0 or -errno. */
static int add_stack(builder_t *b, size_t id, uint64_t bytes, uint64_t blocks)
{
    lkd_group_t *g;
    int rc = expand_stack(b, id, b->opts->by == LKD_BY_TRACEBACK);
    if (!rc)
        rc = make_key(b);
    if (!rc)
        rc = group_get(b->set, b->key.data, b->key.len, &g);
    if (rc)
        return rc;
    g->bytes += bytes;
    g->blocks += blocks;
    b->set->bytes += bytes;
    b->set->blocks += blocks;
    if (g->stacks++ && bytes <= g->rep_bytes)
        return 0;
    if (!b->complete && (rc = expand_stack(b, id, true)))
        return rc;
    size_t site = b->site == NO_SITE ? b->nframes : b->site;
    return group_set_frames(g, b->frames + site, b->nframes - site, bytes);
}

/*
 * Live bytes and blocks per stack id: from the writer's per-stack aggregates when the
 * snapshot has them, else summed over its blocks. Entries with an out-of-range stack id
 * are ignored (the reader has already rejected such files). *out is calloc'd.
 */
static int stack_sums(const lkd_snapshot_t *s, uint64_t **out)
{
    uint64_t *sum = calloc(2 * (s->stack_count ? s->stack_count : 1), sizeof *sum);
    if (!sum)
        return -ENOMEM;
    if (s->stack_stat_count) {
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
            if (bl->stack < s->stack_count) {
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
 * Attributes every stack of snap that holds live memory to its site and groups it by
 * opts->by into *set (which is initialized here; free it with lkd_group_set_free, also on
 * failure). Frame strings stay owned by res. Returns 0, -ENOMEM, or -EINVAL for a stack
 * outside the snapshot's frames.
 */
int lkd_group_build(const lkd_snapshot_t *snap, const lkd_resolver_t *res,
                    const lkd_group_opts_t *opts, lkd_group_set_t *set)
{
    builder_t b = {.snap = snap, .res = res, .opts = opts, .set = set};
    uint64_t *sum = NULL;
    memset(set, 0, sizeof *set);
    set->by = opts->by;
    int rc = stack_sums(snap, &sum);
    if (rc)
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
    qsort(v, n, sizeof *v, order == LKD_ORDER_DIFF ? cmp_diff : cmp_size);
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
        free(g->key);
        free(g->frames);
        free(g);
    }
    free(set->sorted);
    memset(set, 0, sizeof *set);
}
