/*
 * report - text and JSON renderings of top/diff reports and of snapshot facts.
 *
 * Text reads like Python's tracemalloc ("#1 site: size=4.0 KiB (+1.0 KiB), count=8 (+2),
 * average=512 B"); source paths under the snapshot's working directory are shown relative
 * to it. JSON carries exact integers, the full paths, and every key of DESIGN.md §6; keys
 * may be added, never renamed. All strings from a snapshot are untrusted and pass through
 * lkd_json_string, so the JSON always parses, and text is passed through lkd_text_sanitize,
 * so it cannot carry terminal escapes. Renders into a buffer; never does I/O.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *sstr(const lkd_snapshot_t *s, uint32_t offset)
{
    return lkd_snapshot_string(s, offset);
}

/*
 * Parses a --format name ("text" or "json") into *format. Returns 0, or -EINVAL.
 */
int lkd_format_parse(const char *name, lkd_format_t *format)
{
    if (strcmp(name, "text") == 0)
        *format = LKD_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0)
        *format = LKD_FORMAT_JSON;
    else
        return -EINVAL;
    return 0;
}

/* ---- shared helpers ------------------------------------------------------------------ */

/* path relative to the snapshot's working directory when it lies below it. */
static const char *short_path(const lkd_snapshot_t *s, const char *path)
{
    const char *cwd = sstr(s, s->process.cwd);
    size_t n = strlen(cwd);
    if (n > 1 && strncmp(path, cwd, n) == 0 && path[n] == '/' && path[n + 1])
        return path + n + 1;
    return path;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Local time for people: "2026-11-24 04:30:01". */
static void time_text(char out[32], uint64_t wall_ns)
{
    time_t t = (time_t)(wall_ns / 1000000000u);
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm))
        strcpy(out, "?");
}

/* UTC ISO 8601 with milliseconds for JSON: "2026-11-24T04:30:01.123Z". */
static void time_iso(char out[40], uint64_t wall_ns)
{
    time_t t = (time_t)(wall_ns / 1000000000u);
    struct tm tm;
    char sec[32];
    if (!gmtime_r(&t, &tm) || !strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm))
        strcpy(sec, "1970-01-01T00:00:00");
    snprintf(out, 40, "%s.%03uZ", sec, (unsigned)(wall_ns / 1000000u % 1000u));
}

static const char *unwind_name(uint32_t unwind)
{
    return unwind == LKD_FMT_UNWIND_FP          ? "fp"
           : unwind == LKD_FMT_UNWIND_LIBUNWIND ? "libunwind"
                                                : "unknown";
}

static const struct {
    uint32_t bit;
    const char *name;
} process_flags[] = {
    {LKD_FMT_F_TRUNCATED, "truncated"},
    {LKD_FMT_F_SAMPLED, "sampled"},
    {LKD_FMT_F_EXIT, "exit"},
    {LKD_FMT_F_PAUSED, "paused"},
    {LKD_FMT_F_REACHABILITY, "reachability"},
};
#define PROCESS_FLAG_COUNT (sizeof process_flags / sizeof process_flags[0])

static void put_size(lkd_buf_t *o, uint64_t bytes)
{
    char h[LKD_HUMAN_SIZE_LEN];
    lkd_human_size(h, bytes);
    lkd_buf_puts(o, h);
}

static void put_size_diff(lkd_buf_t *o, int64_t diff)
{
    char h[LKD_HUMAN_SIZE_LEN];
    lkd_human_size_diff(h, diff);
    lkd_buf_puts(o, h);
}

static size_t shown_count(const lkd_report_t *r)
{
    size_t n = r->set->count;
    return r->limit && r->limit < n ? r->limit : n;
}

/* ---- text: top and diff ------------------------------------------------------------- */

/* "  process 12345 (/path/exe), label exit, 2026-11-24 04:30:01" */
static void text_process(lkd_buf_t *o, const char *prefix, const lkd_snapshot_t *s)
{
    char when[32];
    time_text(when, s->process.wall_ns);
    lkd_buf_printf(o, "  %sprocess %" PRIu32 " (%s), label %s, %s\n", prefix, s->process.pid,
                   sstr(s, s->process.exe), sstr(s, s->process.label), when);
}

/* Warnings a reader of the figures must see: lost data, sampling, paused tracing. */
static void text_caveats(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    const lkd_fmt_process_t *p = &s->process;
    if (p->flags & LKD_FMT_F_TRUNCATED)
        lkd_buf_printf(o,
                       "  warning: %s: the tracker lost data (%" PRIu64
                       " allocations not recorded); figures are lower bounds\n",
                       s->path, s->totals.lost_blocks);
    if (p->flags & LKD_FMT_F_SAMPLED) {
        lkd_buf_printf(o, "  note: %s: sampled, one allocation per ~", s->path);
        put_size(o, p->sample_rate);
        lkd_buf_puts(o, " allocated; figures are estimates\n");
    }
    if (p->flags & LKD_FMT_F_PAUSED)
        lkd_buf_printf(o, "  note: %s: tracing was paused when it was written\n", s->path);
}

/* Notes about a pair that does not look like "earlier and later of one program". */
static void text_pair_notes(lkd_buf_t *o, const lkd_snapshot_t *a, const lkd_snapshot_t *b)
{
    const char *ea = sstr(a, a->process.exe), *eb = sstr(b, b->process.exe);
    if (strcmp(ea, eb) != 0)
        lkd_buf_printf(o, "  note: different executables: %s and %s\n", ea, eb);
    else if (a->process.pid == b->process.pid && a->process.seq > b->process.seq)
        lkd_buf_printf(o, "  note: OLD was written after NEW (seq %" PRIu32 " > %" PRIu32 ")\n",
                       a->process.seq, b->process.seq);
}

static void text_header(lkd_buf_t *o, const lkd_report_t *r)
{
    const lkd_snapshot_t *s = r->snap, *old = r->old;
    const lkd_fmt_totals_t *t = &s->totals;
    if (old) {
        lkd_buf_printf(o, "leakdiff %s: %s -> %s\n", r->command, old->path, s->path);
        text_process(o, "old: ", old);
        text_process(o, "new: ", s);
        text_pair_notes(o, old, s);
    } else if (strcmp(r->command, "run") == 0) {
        lkd_buf_printf(o, "leakdiff: exit snapshot: %s\n", s->path);
        text_process(o, "", s);
    } else {
        lkd_buf_printf(o, "leakdiff %s: %s\n", r->command, s->path);
        text_process(o, "", s);
    }
    lkd_buf_puts(o, "  live: ");
    put_size(o, t->bytes);
    if (old) {
        lkd_buf_puts(o, " (");
        put_size_diff(o, (int64_t)(t->bytes - old->totals.bytes));
        lkd_buf_puts(o, ")");
    }
    lkd_buf_printf(o, " in %" PRIu64 " block%s", t->blocks, t->blocks == 1 ? "" : "s");
    if (old)
        lkd_buf_printf(o, " (%+" PRId64 ")", (int64_t)(t->blocks - old->totals.blocks));
    lkd_buf_puts(o, ", peak ");
    put_size(o, t->peak_bytes);
    lkd_buf_puts(o, "\n");
    if (old)
        text_caveats(o, old);
    text_caveats(o, s);
}

/* " (file:line)" / " (file)" / " (module)" of f, or nothing when the function already
 * names its module ("libfoo.so+0x1234"). */
static void text_location(lkd_buf_t *o, const lkd_snapshot_t *s, const lkd_frame_t *f)
{
    if (f->file && f->line) {
        lkd_buf_printf(o, " (%s:%u)", short_path(s, f->file), f->line);
    } else if (f->file) {
        lkd_buf_printf(o, " (%s)", short_path(s, f->file));
    } else if (f->module) {
        const char *m = base_name(f->module);
        size_t n = strlen(m);
        if (strncmp(f->function, m, n) != 0 || f->function[n] != '+')
            lkd_buf_printf(o, " (%s)", m);
    }
}

/* What a group is called in a "#N ..." line; nothing for tracebacks (frames follow). */
static void text_title(lkd_buf_t *o, const lkd_report_t *r, const lkd_group_t *g)
{
    const lkd_frame_t *site = g->frame_count ? &g->frames[0] : NULL;
    switch (r->set->by) {
    case LKD_BY_FUNCTION:
        lkd_buf_puts(o, g->key);
        if (site)
            text_location(o, r->snap, site);
        break;
    case LKD_BY_LINE:
        lkd_buf_puts(o, short_path(r->snap, g->key));
        if (site && site->file && strcmp(g->key, site->function) != 0)
            lkd_buf_printf(o, " (%.*s)", (int)lkd_function_base_len(site), site->function);
        break;
    case LKD_BY_FILE:
    case LKD_BY_MODULE: lkd_buf_puts(o, short_path(r->snap, g->key)); break;
    case LKD_BY_TRACEBACK: return;
    }
    lkd_buf_puts(o, ": ");
}

/* "size=X (+D), count=N (+M)" with the diff parts only for a diff. */
static void text_figures(lkd_buf_t *o, bool diff, uint64_t bytes, int64_t bytes_diff,
                         uint64_t blocks, int64_t blocks_diff)
{
    lkd_buf_puts(o, "size=");
    put_size(o, bytes);
    if (diff) {
        lkd_buf_puts(o, " (");
        put_size_diff(o, bytes_diff);
        lkd_buf_puts(o, ")");
    }
    lkd_buf_printf(o, ", count=%" PRIu64, blocks);
    if (diff)
        lkd_buf_printf(o, " (%+" PRId64 ")", blocks_diff);
}

static void text_group(lkd_buf_t *o, const lkd_report_t *r, size_t rank, const lkd_group_t *g)
{
    lkd_buf_printf(o, "#%zu ", rank);
    text_title(o, r, g);
    text_figures(o, r->old != NULL, g->bytes, g->bytes_diff, g->blocks, g->blocks_diff);
    if (g->blocks) {
        lkd_buf_puts(o, ", average=");
        put_size(o, g->bytes / g->blocks);
    }
    lkd_buf_puts(o, "\n");
    if (r->set->by != LKD_BY_TRACEBACK)
        return;
    for (size_t i = 0; i < g->frame_count; i++) {
        lkd_buf_printf(o, "    %s", g->frames[i].function);
        text_location(o, r->snap, &g->frames[i]);
        lkd_buf_puts(o, "\n");
    }
}
/* Sums of the groups beyond the first `from` (the "other" line of text and JSON). */
static void other_sums(const lkd_report_t *r, size_t from, uint64_t *bytes, uint64_t *blocks,
                       int64_t *bytes_diff, int64_t *blocks_diff)
{
    for (size_t i = from; i < r->set->count; i++) {
        const lkd_group_t *g = r->set->sorted[i];
        *bytes += g->bytes;
        *blocks += g->blocks;
        *bytes_diff += g->bytes_diff;
        *blocks_diff += g->blocks_diff;
    }
}

/* One line summing the groups that -n left out. */
static void text_others(lkd_buf_t *o, const lkd_report_t *r, size_t from)
{
    uint64_t bytes = 0, blocks = 0;
    int64_t bytes_diff = 0, blocks_diff = 0;
    size_t n = r->set->count - from;
    other_sums(r, from, &bytes, &blocks, &bytes_diff, &blocks_diff);
    lkd_buf_printf(o, "%zu other group%s: ", n, n == 1 ? "" : "s");
    text_figures(o, r->old != NULL, bytes, bytes_diff, blocks, blocks_diff);
    lkd_buf_puts(o, "\n");
}

static int text_groups(lkd_buf_t *o, const lkd_report_t *r)
{
    size_t shown = shown_count(r);
    text_header(o, r);
    if (!r->set->count) {
        lkd_buf_puts(o, r->old ? "No live blocks in either snapshot.\n" : "No live blocks.\n");
        return o->err;
    }
    lkd_buf_printf(o, "Top %zu %sby %s:\n", shown,
                   r->old ? (shown == 1 ? "difference " : "differences ") : "",
                   lkd_group_by_name(r->set->by));
    for (size_t i = 0; i < shown; i++)
        text_group(o, r, i + 1, r->set->sorted[i]);
    if (shown < r->set->count)
        text_others(o, r, shown);
    return o->err;
}

/* ---- JSON: top and diff ------------------------------------------------------------- */

static void json_flags(lkd_buf_t *o, uint32_t flags)
{
    lkd_buf_puts(o, "[");
    for (size_t i = 0, n = 0; i < PROCESS_FLAG_COUNT; i++) {
        if (flags & process_flags[i].bit)
            lkd_buf_printf(o, "%s\"%s\"", n++ ? "," : "", process_flags[i].name);
    }
    lkd_buf_puts(o, "]");
}

static void json_snapshot(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    const lkd_fmt_process_t *p = &s->process;
    char when[40];
    time_iso(when, p->wall_ns);
    lkd_buf_puts(o, "{\"path\":");
    lkd_json_string(o, s->path);
    lkd_buf_printf(o, ",\"pid\":%" PRIu32 ",\"label\":", p->pid);
    lkd_json_string(o, sstr(s, p->label));
    lkd_buf_printf(o,
                   ",\"seq\":%" PRIu32 ",\"time\":\"%s\",\"wall_ns\":%" PRIu64 ",\"exe\":", p->seq,
                   when, p->wall_ns);
    lkd_json_string(o, sstr(s, p->exe));
    lkd_buf_printf(o, ",\"truncated\":%s,\"sampled\":%s,\"sample_rate\":%" PRIu64 ",\"flags\":",
                   p->flags & LKD_FMT_F_TRUNCATED ? "true" : "false",
                   p->flags & LKD_FMT_F_SAMPLED ? "true" : "false", p->sample_rate);
    json_flags(o, p->flags);
    lkd_buf_puts(o, "}");
}

static void json_totals(lkd_buf_t *o, const lkd_report_t *r)
{
    const lkd_fmt_totals_t *t = &r->snap->totals;
    lkd_buf_printf(o, "{\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"peak_bytes\":%" PRIu64,
                   t->bytes, t->blocks, t->peak_bytes);
    if (r->old) {
        const lkd_fmt_totals_t *ot = &r->old->totals;
        lkd_buf_printf(o,
                       ",\"bytes_diff\":%" PRId64 ",\"blocks_diff\":%" PRId64
                       ",\"old_bytes\":%" PRIu64 ",\"old_blocks\":%" PRIu64,
                       (int64_t)(t->bytes - ot->bytes), (int64_t)(t->blocks - ot->blocks),
                       ot->bytes, ot->blocks);
    }
    lkd_buf_puts(o, "}");
}

static void json_frame(lkd_buf_t *o, const lkd_frame_t *f)
{
    lkd_buf_puts(o, "{\"function\":");
    lkd_json_string(o, f->function);
    lkd_buf_puts(o, ",\"file\":");
    lkd_json_string(o, f->file);
    if (f->line)
        lkd_buf_printf(o, ",\"line\":%u", f->line);
    else
        lkd_buf_puts(o, ",\"line\":null");
    lkd_buf_puts(o, ",\"module\":");
    lkd_json_string(o, f->module);
    lkd_buf_printf(o, ",\"address\":\"0x%" PRIx64 "\",\"inlined\":%s}", f->address,
                   f->inlined ? "true" : "false");
}

static void json_group(lkd_buf_t *o, const lkd_report_t *r, const lkd_group_t *g)
{
    lkd_buf_puts(o, "{\"key\":");
    lkd_json_string(o, g->key);
    lkd_buf_printf(o, ",\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"average\":%" PRIu64,
                   g->bytes, g->blocks, g->blocks ? g->bytes / g->blocks : 0);
    if (r->old)
        lkd_buf_printf(o,
                       ",\"bytes_diff\":%" PRId64 ",\"blocks_diff\":%" PRId64
                       ",\"old_bytes\":%" PRIu64 ",\"old_blocks\":%" PRIu64,
                       g->bytes_diff, g->blocks_diff, g->old_bytes, g->old_blocks);
    lkd_buf_printf(o, ",\"stacks\":%zu,\"frames\":[", g->stacks);
    for (size_t i = 0; i < g->frame_count; i++) {
        if (i)
            lkd_buf_puts(o, ",");
        json_frame(o, &g->frames[i]);
    }
    lkd_buf_puts(o, "]}");
}

/* "other": what -n left out, so that groups + other always add up. */
static void json_others(lkd_buf_t *o, const lkd_report_t *r, size_t from)
{
    uint64_t bytes = 0, blocks = 0;
    int64_t bytes_diff = 0, blocks_diff = 0;
    other_sums(r, from, &bytes, &blocks, &bytes_diff, &blocks_diff);
    lkd_buf_printf(o, ",\"other\":{\"groups\":%zu,\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64,
                   r->set->count - from, bytes, blocks);
    if (r->old)
        lkd_buf_printf(o, ",\"bytes_diff\":%" PRId64 ",\"blocks_diff\":%" PRId64, bytes_diff,
                       blocks_diff);
    lkd_buf_puts(o, "}");
}

static int json_groups(lkd_buf_t *o, const lkd_report_t *r)
{
    size_t shown = shown_count(r);
    lkd_buf_printf(o, "{\"version\":1,\"command\":\"%s\",\"by\":\"%s\",\"snapshots\":[", r->command,
                   lkd_group_by_name(r->set->by));
    if (r->old) {
        json_snapshot(o, r->old);
        lkd_buf_puts(o, ",");
    }
    json_snapshot(o, r->snap);
    lkd_buf_puts(o, "],\n\"totals\":");
    json_totals(o, r);
    lkd_buf_printf(o, ",\"group_count\":%zu,\n\"groups\":[", r->set->count);
    for (size_t i = 0; i < shown; i++) {
        lkd_buf_puts(o, i ? ",\n" : "\n");
        json_group(o, r, r->set->sorted[i]);
    }
    lkd_buf_puts(o, "]");
    json_others(o, r, shown);
    lkd_buf_puts(o, "}\n");
    return o->err;
}

/*
 * Appends the top report (r->old == NULL) or diff report of r to out, in r->format.
 * r->set must be sorted. Returns 0 or -ENOMEM.
 */
int lkd_report_groups(lkd_buf_t *out, const lkd_report_t *r)
{
    if (r->format == LKD_FORMAT_JSON)
        return json_groups(out, r);
    size_t from = out->len;
    int rc = text_groups(out, r);
    lkd_text_sanitize(out, from);
    return rc;
}

/* ---- info --------------------------------------------------------------------------- */

/* Calls fn for each argv string of s: argc strings back to back, bounded by the table. */
static void for_each_arg(const lkd_snapshot_t *s, void (*fn)(lkd_buf_t *, const char *, size_t),
                         lkd_buf_t *o)
{
    uint64_t off = s->process.argv;
    for (size_t i = 0; i < s->process.argc && off < s->strings_len; i++) {
        const char *a = sstr(s, (uint32_t)off);
        fn(o, a, i);
        off += strlen(a) + 1;
    }
}

/* Appends a shell-quoted word (quoted only when it needs to be). */
static void text_arg(lkd_buf_t *o, const char *a, size_t i)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789_-+=.,:/@%";
    if (i)
        lkd_buf_puts(o, " ");
    if (*a && strspn(a, safe) == strlen(a)) {
        lkd_buf_puts(o, a);
        return;
    }
    lkd_buf_puts(o, "'");
    for (const char *q; (q = strchr(a, '\'')); a = q + 1) {
        lkd_buf_append(o, a, (size_t)(q - a));
        lkd_buf_puts(o, "'\\''");
    }
    lkd_buf_puts(o, a);
    lkd_buf_puts(o, "'");
}

static void json_arg(lkd_buf_t *o, const char *a, size_t i)
{
    if (i)
        lkd_buf_puts(o, ",");
    lkd_json_string(o, a);
}

static void text_flag_names(lkd_buf_t *o, uint32_t flags)
{
    size_t n = 0;
    for (size_t i = 0; i < PROCESS_FLAG_COUNT; i++)
        if (flags & process_flags[i].bit)
            lkd_buf_printf(o, "%s%s", n++ ? ", " : "", process_flags[i].name);
    if (!n)
        lkd_buf_puts(o, "none");
}

static void text_info_process(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    const lkd_fmt_process_t *p = &s->process;
    char when[32];
    time_text(when, p->wall_ns);
    lkd_buf_printf(o, "process:\n  pid %" PRIu32 ", ppid %" PRIu32 "\n  exe   %s\n  argv  ", p->pid,
                   p->ppid, sstr(s, p->exe));
    for_each_arg(s, text_arg, o);
    lkd_buf_printf(o, "\n  cwd   %s\n  label %s, seq %" PRIu32 ", %s", sstr(s, p->cwd),
                   sstr(s, p->label), p->seq, when);
    if (p->mono_ns >= p->start_mono_ns && p->start_mono_ns)
        lkd_buf_printf(o, ", %.3f s after tracking started",
                       (double)(p->mono_ns - p->start_mono_ns) / 1e9);
    lkd_buf_printf(o, "\n  depth %" PRIu32 ", unwind %s, ", p->depth, unwind_name(p->unwind));
    if (p->sample_rate) {
        lkd_buf_puts(o, "sampled every ~");
        put_size(o, p->sample_rate);
    } else {
        lkd_buf_puts(o, "every allocation recorded");
    }
    lkd_buf_puts(o, "\n  flags ");
    text_flag_names(o, p->flags);
    lkd_buf_puts(o, "\n");
}

static void text_info_totals(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    const lkd_fmt_totals_t *t = &s->totals;
    lkd_buf_puts(o, "totals:\n  live  ");
    put_size(o, t->bytes);
    lkd_buf_printf(o, " (%" PRIu64 " B) in %" PRIu64 " blocks\n  peak  ", t->bytes, t->blocks);
    put_size(o, t->peak_bytes);
    lkd_buf_printf(o, " (%" PRIu64 " B)\n  allocations %" PRIu64 " (", t->peak_bytes,
                   t->total_allocs);
    put_size(o, t->total_bytes);
    lkd_buf_printf(o,
                   " in all), frees %" PRIu64 "\n  unknown frees %" PRIu64 ", lost blocks %" PRIu64
                   ", tracker memory ",
                   t->total_frees, t->unknown_frees, t->lost_blocks);
    put_size(o, t->tracker_bytes);
    lkd_buf_puts(o, "\n");
}

static void build_id_hex(lkd_buf_t *o, const lkd_fmt_module_t *m)
{
    uint32_t n = m->build_id_len < LKD_FMT_BUILD_ID_MAX ? m->build_id_len : LKD_FMT_BUILD_ID_MAX;
    for (uint32_t i = 0; i < n; i++)
        lkd_buf_printf(o, "%02x", m->build_id[i]);
}

static void text_info_modules(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    lkd_buf_printf(o, "modules (%zu):\n", s->module_count);
    for (size_t i = 0; i < s->module_count; i++) {
        const lkd_fmt_module_t *m = &s->modules[i];
        lkd_buf_printf(o, "  0x%012" PRIx64 "-0x%012" PRIx64 " %s", m->start, m->end,
                       sstr(s, m->path));
        if (m->build_id_len) {
            lkd_buf_puts(o, " build-id ");
            build_id_hex(o, m);
        }
        lkd_buf_printf(o, "%s%s%s%s\n", m->flags & LKD_FMT_MOD_MAIN ? " [main]" : "",
                       m->flags & LKD_FMT_MOD_UNLOADED ? " [unloaded]" : "",
                       m->flags & LKD_FMT_MOD_VDSO ? " [vdso]" : "",
                       m->flags & LKD_FMT_MOD_TRACKER ? " [tracker]" : "");
    }
}

static int text_info(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    lkd_buf_printf(o, "leakdiff info: %s\n  format %u.%u, %zu stacks, %zu live blocks recorded\n",
                   s->path, s->major, s->minor, s->stack_count, s->block_count);
    text_caveats(o, s);
    text_info_process(o, s);
    text_info_totals(o, s);
    text_info_modules(o, s);
    return o->err;
}

static void json_info_process(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    const lkd_fmt_process_t *p = &s->process;
    char when[40];
    time_iso(when, p->wall_ns);
    lkd_buf_printf(o, "{\"pid\":%" PRIu32 ",\"ppid\":%" PRIu32 ",\"exe\":", p->pid, p->ppid);
    lkd_json_string(o, sstr(s, p->exe));
    lkd_buf_puts(o, ",\"argv\":[");
    for_each_arg(s, json_arg, o);
    lkd_buf_puts(o, "],\"cwd\":");
    lkd_json_string(o, sstr(s, p->cwd));
    lkd_buf_puts(o, ",\"label\":");
    lkd_json_string(o, sstr(s, p->label));
    lkd_buf_printf(o,
                   ",\"seq\":%" PRIu32 ",\"time\":\"%s\",\"wall_ns\":%" PRIu64
                   ",\"mono_ns\":%" PRIu64 ",\"start_mono_ns\":%" PRIu64 ",\"depth\":%" PRIu32
                   ",\"unwind\":\"%s\",\"sample_rate\":%" PRIu64 ",\"flags\":",
                   p->seq, when, p->wall_ns, p->mono_ns, p->start_mono_ns, p->depth,
                   unwind_name(p->unwind), p->sample_rate);
    json_flags(o, p->flags);
    lkd_buf_puts(o, "}");
}

static void json_info_totals(lkd_buf_t *o, const lkd_fmt_totals_t *t)
{
    lkd_buf_printf(
        o,
        "{\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"peak_bytes\":%" PRIu64
        ",\"total_allocs\":%" PRIu64 ",\"total_frees\":%" PRIu64 ",\"total_bytes\":%" PRIu64
        ",\"birth_next\":%" PRIu64 ",\"unknown_frees\":%" PRIu64 ",\"lost_blocks\":%" PRIu64
        ",\"tracker_bytes\":%" PRIu64 "}",
        t->bytes, t->blocks, t->peak_bytes, t->total_allocs, t->total_frees, t->total_bytes,
        t->birth_next, t->unknown_frees, t->lost_blocks, t->tracker_bytes);
}

static void json_info_module(lkd_buf_t *o, const lkd_snapshot_t *s, const lkd_fmt_module_t *m)
{
    lkd_buf_puts(o, "{\"path\":");
    lkd_json_string(o, sstr(s, m->path));
    if (m->build_id_len) {
        lkd_buf_puts(o, ",\"build_id\":\"");
        build_id_hex(o, m);
        lkd_buf_puts(o, "\"");
    } else {
        lkd_buf_puts(o, ",\"build_id\":null");
    }
    lkd_buf_printf(o,
                   ",\"start\":\"0x%" PRIx64 "\",\"end\":\"0x%" PRIx64 "\",\"bias\":\"0x%" PRIx64
                   "\",\"load_seq\":%" PRIu64 ",\"unload_seq\":%" PRIu64
                   ",\"main\":%s,\"unloaded\":%s,\"vdso\":%s,\"tracker\":%s}",
                   m->start, m->end, m->bias, m->load_seq, m->unload_seq,
                   m->flags & LKD_FMT_MOD_MAIN ? "true" : "false",
                   m->flags & LKD_FMT_MOD_UNLOADED ? "true" : "false",
                   m->flags & LKD_FMT_MOD_VDSO ? "true" : "false",
                   m->flags & LKD_FMT_MOD_TRACKER ? "true" : "false");
}

static int json_info(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    lkd_buf_puts(o, "{\"version\":1,\"command\":\"info\",\"path\":");
    lkd_json_string(o, s->path);
    lkd_buf_printf(o,
                   ",\"format\":\"%u.%u\",\"stacks\":%zu,\"blocks\":%zu,\n\"process\":", s->major,
                   s->minor, s->stack_count, s->block_count);
    json_info_process(o, s);
    lkd_buf_puts(o, ",\n\"totals\":");
    json_info_totals(o, &s->totals);
    lkd_buf_puts(o, ",\n\"modules\":[");
    for (size_t i = 0; i < s->module_count; i++) {
        lkd_buf_puts(o, i ? ",\n" : "\n");
        json_info_module(o, s, &s->modules[i]);
    }
    lkd_buf_puts(o, "]}\n");
    return o->err;
}

/*
 * Appends the facts of snap (process, totals, modules, counts) to out in the given
 * format. Returns 0 or -ENOMEM.
 */
int lkd_report_info(lkd_buf_t *out, lkd_format_t format, const lkd_snapshot_t *snap)
{
    if (format == LKD_FORMAT_JSON)
        return json_info(out, snap);
    size_t from = out->len;
    int rc = text_info(out, snap);
    lkd_text_sanitize(out, from);
    return rc;
}
