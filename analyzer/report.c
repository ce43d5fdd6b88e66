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
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *sstr(const lkd_snapshot_t *s, uint32_t offset)
{
    return lkd_snapshot_string(s, offset);
}

/*
 * Parses a --format name ("text", "json" or "collapsed"; for check also "sarif", "junit" and
 * "github") into *format. Returns 0, or -EINVAL.
 */
int lkd_format_parse(const char *name, lkd_format_t *format)
{
    if (strcmp(name, "text") == 0)
        *format = LKD_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0)
        *format = LKD_FORMAT_JSON;
    else if (strcmp(name, "collapsed") == 0)
        *format = LKD_FORMAT_COLLAPSED;
    else if (strcmp(name, "sarif") == 0)
        *format = LKD_FORMAT_SARIF;
    else if (strcmp(name, "junit") == 0)
        *format = LKD_FORMAT_JUNIT;
    else if (strcmp(name, "github") == 0)
        *format = LKD_FORMAT_GITHUB;
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

/* Groups carry a change (diff, trend): the "(+...)" parts and the *_diff keys. */
static bool is_diff(const lkd_report_t *r)
{
    return r->old && !r->survivors;
}

static bool is_trend(const lkd_report_t *r)
{
    return r->snaps && r->snap_count > 1;
}

/* Average change per interval of a trend group, rounded to whole bytes. */
static int64_t growth_per_snapshot(const lkd_report_t *r, const lkd_group_t *g)
{
    int64_t n = (int64_t)r->snap_count - 1, d = g->bytes_diff;
    return (d < 0 ? d - n / 2 : d + n / 2) / n;
}

/* A group's average block size. Sampled, bytes and blocks are both rounded estimates, so the
 * quotient is rounded too (48-byte blocks average 48 B, not 47); exact figures floor. */
static uint64_t average(const lkd_report_t *r, const lkd_group_t *g)
{
    if (!g->blocks)
        return 0;
    if (lkd_group_sample_rate(r->snap))
        return (g->bytes + g->blocks / 2) / g->blocks;
    return g->bytes / g->blocks;
}

/* The snapshots r is about, oldest first: every snapshot of a trend, else old, mid, snap (as
 * present). *list points into buf or into r. Returns how many. */
static size_t snapshots_of(const lkd_report_t *r, const lkd_snapshot_t *buf[3],
                           const lkd_snapshot_t *const **list)
{
    size_t n = 0;
    if (is_trend(r)) {
        *list = r->snaps;
        return r->snap_count;
    }
    if (r->old)
        buf[n++] = r->old;
    if (r->mid)
        buf[n++] = r->mid;
    buf[n++] = r->snap;
    *list = buf;
    return n;
}

static bool filtering(const lkd_group_opts_t *f)
{
    return f && (f->include_count || f->exclude_count || f->min_bytes);
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
    if (lkd_group_sample_rate(s)) {
        lkd_buf_printf(o, "  note: %s: sampled (LEAKDIFF_SAMPLE=%" PRIu64 ", one sample per ~",
                       s->path, p->sample_rate);
        put_size(o, p->sample_rate);
        lkd_buf_puts(o, " allocated): sizes and counts are estimates\n");
    }
    if (p->flags & LKD_FMT_F_PAUSED)
        lkd_buf_printf(o, "  note: %s: tracing was paused when it was written\n", s->path);
}

/* A pair sampled differently (one sampled and one not, or at different rates) can be
 * compared, but its changes mix exact figures and estimates, or estimates of different
 * precision: say so. */
static void text_sampling_pair(lkd_buf_t *o, const lkd_snapshot_t *a, const lkd_snapshot_t *b)
{
    uint64_t ra = lkd_group_sample_rate(a), rb = lkd_group_sample_rate(b);
    if (ra == rb)
        return;
    if (!ra || !rb)
        lkd_buf_printf(o,
                       "  note: %s is sampled and %s is not: each change sets an estimate "
                       "against an exact figure\n",
                       ra ? a->path : b->path, ra ? b->path : a->path);
    else
        lkd_buf_printf(o,
                       "  note: %s and %s were sampled at different rates (%" PRIu64 " and %" PRIu64
                       " bytes): every figure is an estimate\n",
                       a->path, b->path, ra, rb);
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
    text_sampling_pair(o, a, b);
}

/* The snapshots of a trend, one numbered entry each, and what is odd about the series. */
static void text_trend_snapshots(lkd_buf_t *o, const lkd_report_t *r)
{
    lkd_buf_printf(o, "leakdiff %s: %zu snapshots, oldest first\n", r->command, r->snap_count);
    for (size_t i = 0; i < r->snap_count; i++) {
        lkd_buf_printf(o, "  %zu: %s\n", i + 1, r->snaps[i]->path);
        text_process(o, "   ", r->snaps[i]);
    }
    for (size_t i = 1; i < r->snap_count; i++)
        text_pair_notes(o, r->snaps[i - 1], r->snaps[i]);
}

/* Which snapshots the report is about. */
static void text_snapshots(lkd_buf_t *o, const lkd_report_t *r)
{
    const lkd_snapshot_t *s = r->snap, *old = r->old;
    if (is_trend(r)) {
        text_trend_snapshots(o, r);
    } else if (old) {
        lkd_buf_printf(o, "leakdiff %s: %s -> %s%s%s\n", r->command, old->path,
                       r->mid ? r->mid->path : "", r->mid ? " -> " : "", s->path);
        text_process(o, "old: ", old);
        if (r->mid)
            text_process(o, "mid: ", r->mid);
        text_process(o, "new: ", s);
        if (!r->survivors)
            text_pair_notes(o, old, s);
    } else if (strcmp(r->command, "run") == 0) {
        lkd_buf_printf(o, "leakdiff: exit snapshot: %s\n", s->path);
        text_process(o, "", s);
    } else {
        lkd_buf_printf(o, "leakdiff %s: %s\n", r->command, s->path);
        text_process(o, "", s);
    }
}

/* "  live: 1.0 KiB (+512 B) in 8 blocks (+4), peak 2.0 KiB"; a trend lists every
 * snapshot's bytes ("1.0 KiB -> 1.5 KiB -> 2.0 KiB (+1.0 KiB)"). */
static void text_live(lkd_buf_t *o, const lkd_report_t *r)
{
    const lkd_fmt_totals_t *t = &r->snap->totals;
    lkd_buf_puts(o, "  live: ");
    for (size_t i = 0; is_trend(r) && i + 1 < r->snap_count; i++) {
        put_size(o, r->snaps[i]->totals.bytes);
        lkd_buf_puts(o, " -> ");
    }
    put_size(o, t->bytes);
    if (is_diff(r)) {
        lkd_buf_puts(o, " (");
        put_size_diff(o, (int64_t)(t->bytes - r->old->totals.bytes));
        lkd_buf_puts(o, ")");
    }
    lkd_buf_printf(o, " in %" PRIu64 " block%s", t->blocks, t->blocks == 1 ? "" : "s");
    if (is_diff(r))
        lkd_buf_printf(o, " (%+" PRId64 ")", (int64_t)(t->blocks - r->old->totals.blocks));
    lkd_buf_puts(o, ", peak ");
    put_size(o, t->peak_bytes);
    lkd_buf_puts(o, "\n");
}

/* "  survivors: 1000 B in 25 blocks born after OLD was written (birth >= N) and live in
 * NEW"; with MID: "born after OLD and before MID were written (births N to M-1)". */
static void text_survivors(lkd_buf_t *o, const lkd_report_t *r)
{
    uint64_t from = r->old->totals.birth_next;
    lkd_buf_puts(o, "  survivors: ");
    put_size(o, r->set->bytes);
    lkd_buf_printf(o, " in %" PRIu64 " block%s born after OLD ", r->set->blocks,
                   r->set->blocks == 1 ? "" : "s");
    if (r->mid)
        lkd_buf_printf(o, "and before MID were written (births %" PRIu64 " to %" PRIu64 ")", from,
                       r->mid->totals.birth_next - 1);
    else
        lkd_buf_printf(o, "was written (birth >= %" PRIu64 ")", from);
    lkd_buf_puts(o, " and live in NEW\n");
}

/* "  filter: --include 'a*' --min-bytes 100: 1.0 KiB in 25 blocks selected, 2 groups below
 * the minimum left out", when any filter is on. */
static void text_filter(lkd_buf_t *o, const lkd_report_t *r)
{
    const lkd_group_opts_t *f = r->opts;
    if (!filtering(f))
        return;
    lkd_buf_puts(o, "  filter:");
    for (size_t i = 0; i < f->include_count; i++)
        lkd_buf_printf(o, " --include '%s'", f->includes[i]);
    for (size_t i = 0; i < f->exclude_count; i++)
        lkd_buf_printf(o, " --exclude '%s'", f->excludes[i]);
    if (f->min_bytes)
        lkd_buf_printf(o, " --min-bytes %" PRIu64, f->min_bytes);
    lkd_buf_puts(o, ": ");
    put_size(o, r->set->bytes);
    lkd_buf_printf(o, " in %" PRIu64 " block%s selected", r->set->blocks,
                   r->set->blocks == 1 ? "" : "s");
    if (f->min_bytes)
        lkd_buf_printf(o, ", %zu group%s below the minimum left out", r->set->dropped,
                       r->set->dropped == 1 ? "" : "s");
    lkd_buf_puts(o, "\n");
}

static void text_header(lkd_buf_t *o, const lkd_report_t *r)
{
    text_snapshots(o, r);
    text_live(o, r);
    if (is_trend(r)) {
        for (size_t i = 0; i + 1 < r->snap_count; i++)
            text_caveats(o, r->snaps[i]);
    } else if (r->old) {
        text_caveats(o, r->old);
    }
    text_caveats(o, r->snap);
    if (r->survivors)
        text_survivors(o, r);
    text_filter(o, r);
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

/* "    growing, +4.7 KiB per snapshot: 4.7 KiB -> 9.4 KiB -> 14.1 KiB" */
static void text_series(lkd_buf_t *o, const lkd_report_t *r, const lkd_group_t *g)
{
    lkd_buf_printf(o, "    %s, ", g->growing ? "growing" : "not growing");
    put_size_diff(o, growth_per_snapshot(r, g));
    lkd_buf_puts(o, " per snapshot: ");
    for (size_t i = 0; g->series && i < r->snap_count; i++) {
        if (i)
            lkd_buf_puts(o, " -> ");
        put_size(o, g->series[i]);
    }
    lkd_buf_puts(o, "\n");
}

static void text_group(lkd_buf_t *o, const lkd_report_t *r, size_t rank, const lkd_group_t *g)
{
    lkd_buf_printf(o, "#%zu ", rank);
    text_title(o, r, g);
    text_figures(o, is_diff(r), g->bytes, g->bytes_diff, g->blocks, g->blocks_diff);
    if (g->blocks) {
        lkd_buf_puts(o, ", average=");
        put_size(o, average(r, g));
    }
    lkd_buf_puts(o, "\n");
    if (is_trend(r))
        text_series(o, r, g);
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
    text_figures(o, is_diff(r), bytes, bytes_diff, blocks, blocks_diff);
    lkd_buf_puts(o, "\n");
}

/* What an empty report says. */
static const char *text_nothing(const lkd_report_t *r)
{
    if (filtering(r->opts))
        return "No group passes the filters.\n";
    if (r->survivors)
        return "No survivors: no block born after OLD is live in NEW.\n";
    if (is_trend(r))
        return "No live blocks in any snapshot.\n";
    return r->old ? "No live blocks in either snapshot.\n" : "No live blocks.\n";
}

/* "Top 3 differences by function (cumulative):" */
static void text_top_line(lkd_buf_t *o, const lkd_report_t *r, size_t shown)
{
    const char *what = r->survivors  ? (shown == 1 ? "survivor " : "survivors ")
                       : is_trend(r) ? ""
                       : r->old      ? (shown == 1 ? "difference " : "differences ")
                                     : "";
    lkd_buf_printf(o, "Top %zu %sby %s", shown, what, lkd_group_by_name(r->set->by));
    if (r->set->cumulative)
        lkd_buf_puts(o, " (cumulative)");
    if (is_trend(r))
        lkd_buf_puts(o, ", growing first");
    lkd_buf_puts(o, ":\n");
}

static int text_groups(lkd_buf_t *o, const lkd_report_t *r)
{
    size_t shown = shown_count(r);
    text_header(o, r);
    if (!r->set->count) {
        lkd_buf_puts(o, text_nothing(r));
        return o->err;
    }
    text_top_line(o, r, shown);
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

/* ,"NAME":[v0,v1,...] of one field of every snapshot's totals (trend). */
static void json_totals_series(lkd_buf_t *o, const lkd_report_t *r, const char *name, size_t offset)
{
    lkd_buf_printf(o, ",\"%s\":[", name);
    for (size_t i = 0; i < r->snap_count; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&r->snaps[i]->totals + offset, sizeof v);
        lkd_buf_printf(o, "%s%" PRIu64, i ? "," : "", v);
    }
    lkd_buf_puts(o, "]");
}

static void json_totals(lkd_buf_t *o, const lkd_report_t *r)
{
    const lkd_fmt_totals_t *t = &r->snap->totals;
    lkd_buf_printf(o, "{\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"peak_bytes\":%" PRIu64,
                   t->bytes, t->blocks, t->peak_bytes);
    if (is_trend(r)) {
        json_totals_series(o, r, "series", offsetof(lkd_fmt_totals_t, bytes));
        json_totals_series(o, r, "blocks_series", offsetof(lkd_fmt_totals_t, blocks));
    }
    if (r->survivors)
        lkd_buf_printf(o,
                       ",\"survivor_bytes\":%" PRIu64 ",\"survivor_blocks\":%" PRIu64
                       ",\"birth_from\":%" PRIu64,
                       r->set->bytes, r->set->blocks, r->old->totals.birth_next);
    if (r->survivors && r->mid)
        lkd_buf_printf(o, ",\"birth_to\":%" PRIu64, r->mid->totals.birth_next);
    if (is_diff(r)) {
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

/* Trend keys of a group: its series, whether it grew in every interval, its growth. */
static void json_group_series(lkd_buf_t *o, const lkd_report_t *r, const lkd_group_t *g)
{
    const char *names[2] = {"series", "blocks_series"};
    const uint64_t *v[2] = {g->series, g->blocks_series};
    for (size_t k = 0; k < 2; k++) {
        lkd_buf_printf(o, ",\"%s\":[", names[k]);
        for (size_t i = 0; v[k] && i < r->snap_count; i++)
            lkd_buf_printf(o, "%s%" PRIu64, i ? "," : "", v[k][i]);
        lkd_buf_puts(o, "]");
    }
    lkd_buf_printf(o, ",\"growing\":%s,\"growth_per_snapshot\":%.1f", g->growing ? "true" : "false",
                   (double)g->bytes_diff / (double)(r->snap_count - 1));
}

static void json_group(lkd_buf_t *o, const lkd_report_t *r, const lkd_group_t *g)
{
    lkd_buf_puts(o, "{\"key\":");
    lkd_json_string(o, g->key);
    lkd_buf_printf(o, ",\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"average\":%" PRIu64,
                   g->bytes, g->blocks, average(r, g));
    if (is_trend(r))
        json_group_series(o, r, g);
    if (is_diff(r))
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
    if (is_diff(r))
        lkd_buf_printf(o, ",\"bytes_diff\":%" PRId64 ",\"blocks_diff\":%" PRId64, bytes_diff,
                       blocks_diff);
    lkd_buf_puts(o, "}");
}

static void json_globs(lkd_buf_t *o, const char *name, const char *const *globs, size_t n)
{
    lkd_buf_printf(o, "\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            lkd_buf_puts(o, ",");
        lkd_json_string(o, globs[i]);
    }
    lkd_buf_puts(o, "]");
}

/* ,"filter":{...}: the filters in force and what passed them (in the newest snapshot). */
static void json_filter(lkd_buf_t *o, const lkd_report_t *r)
{
    const lkd_group_opts_t *f = r->opts;
    lkd_buf_puts(o, ",\"filter\":{");
    json_globs(o, "include", f ? f->includes : NULL, f ? f->include_count : 0);
    lkd_buf_puts(o, ",");
    json_globs(o, "exclude", f ? f->excludes : NULL, f ? f->exclude_count : 0);
    lkd_buf_printf(o,
                   ",\"min_bytes\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64
                   ",\"dropped_groups\":%zu}",
                   f ? f->min_bytes : 0, r->set->bytes, r->set->blocks, r->set->dropped);
}

/* Whether the snapshots of a diff or trend come from different executables. */
static bool different_programs(const lkd_report_t *r)
{
    const lkd_snapshot_t *first = r->old;
    for (size_t i = 0; i < (is_trend(r) ? r->snap_count : 1); i++) {
        const lkd_snapshot_t *s = is_trend(r) ? r->snaps[i] : r->snap;
        if (strcmp(sstr(first, first->process.exe), sstr(s, s->process.exe)) != 0)
            return true;
    }
    return false;
}

/*
 * ,"sampled":null when every snapshot of r recorded every allocation; else
 * ,"sampled":{"rate":R,"mixed":M}: R the rate (LEAKDIFF_SAMPLE) of the newest sampled snapshot,
 * M true when the snapshots were not all sampled at R (then changes set estimates against
 * exact figures, or estimates of different precision). Sampled, every byte and block figure
 * of the report is an estimate (still an integer).
 */
static void json_sampled(lkd_buf_t *o, const lkd_report_t *r)
{
    const lkd_snapshot_t *buf[3], *const *list;
    size_t n = snapshots_of(r, buf, &list);
    uint64_t rate = 0;
    bool mixed = false;
    for (size_t i = n; i-- > 0 && !rate;)
        rate = lkd_group_sample_rate(list[i]);
    for (size_t i = 0; i < n; i++)
        mixed |= lkd_group_sample_rate(list[i]) != rate;
    if (!rate)
        lkd_buf_puts(o, ",\"sampled\":null");
    else
        lkd_buf_printf(o, ",\"sampled\":{\"rate\":%" PRIu64 ",\"mixed\":%s}", rate,
                       mixed ? "true" : "false");
}

/* "snapshots":[...]: the old and new one, or every snapshot of a trend. */
static void json_snapshots(lkd_buf_t *o, const lkd_report_t *r)
{
    lkd_buf_puts(o, "\"snapshots\":[");
    if (is_trend(r)) {
        for (size_t i = 0; i < r->snap_count; i++) {
            if (i)
                lkd_buf_puts(o, ",");
            json_snapshot(o, r->snaps[i]);
        }
    } else {
        if (r->old) {
            json_snapshot(o, r->old);
            lkd_buf_puts(o, ",");
        }
        if (r->mid) {
            json_snapshot(o, r->mid);
            lkd_buf_puts(o, ",");
        }
        json_snapshot(o, r->snap);
    }
    lkd_buf_puts(o, "]");
}

static int json_groups(lkd_buf_t *o, const lkd_report_t *r)
{
    size_t shown = shown_count(r);
    lkd_buf_printf(o, "{\"version\":1,\"command\":\"%s\",\"by\":\"%s\",\"cumulative\":%s,",
                   r->command, lkd_group_by_name(r->set->by),
                   r->set->cumulative ? "true" : "false");
    json_snapshots(o, r);
    json_sampled(o, r);
    if (is_diff(r))
        lkd_buf_printf(o, ",\"different_programs\":%s", different_programs(r) ? "true" : "false");
    json_filter(o, r);
    lkd_buf_puts(o, ",\n\"totals\":");
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

/* ---- collapsed stacks ------------------------------------------------------------------- */

/*
 * One "root;...;site VALUE" line per group of a folded set (lkd_group_opts_t.folded), every
 * group regardless of -n: VALUE is the live bytes (top, survivors) or the growth in bytes
 * (diff, trend: first to last). Lines whose value is 0 or less are left out, since flame
 * graph tools cannot draw them.
 */
static int collapsed_groups(lkd_buf_t *o, const lkd_report_t *r)
{
    for (size_t i = 0; i < r->set->count; i++) {
        const lkd_group_t *g = r->set->sorted[i];
        int64_t v = is_diff(r) ? g->bytes_diff : (int64_t)g->bytes;
        if (v > 0)
            lkd_buf_printf(o, "%s %" PRId64 "\n", g->key, v);
    }
    return o->err;
}

/*
 * Appends one line per sampled snapshot of r to out ("leakdiff: note: PATH is sampled ...:
 * its figures are estimates"), nothing when none is sampled: for outputs that have no room
 * for the note themselves (collapsed stacks), to be shown apart (stderr). 0 or -ENOMEM.
 */
int lkd_report_sampled_note(lkd_buf_t *out, const lkd_report_t *r)
{
    const lkd_snapshot_t *buf[3], *const *list;
    size_t n = snapshots_of(r, buf, &list);
    size_t from = out->len;
    for (size_t i = 0; i < n; i++)
        if (lkd_group_sample_rate(list[i]))
            lkd_buf_printf(out,
                           "leakdiff: note: %s is sampled (LEAKDIFF_SAMPLE=%" PRIu64
                           "): its figures are estimates\n",
                           list[i]->path, lkd_group_sample_rate(list[i]));
    lkd_text_sanitize(out, from);
    return out->err;
}

/*
 * Appends the top report (r->old == NULL), diff, trend (r->snaps) or survivors report of r
 * to out, in r->format. r->set must be sorted. Returns 0 or -ENOMEM.
 */
int lkd_report_groups(lkd_buf_t *out, const lkd_report_t *r)
{
    if (r->format == LKD_FORMAT_JSON)
        return json_groups(out, r);
    size_t from = out->len;
    int rc = r->format == LKD_FORMAT_COLLAPSED ? collapsed_groups(out, r) : text_groups(out, r);
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

/* Sampled (format.h): live, peak and total bytes are estimates, allocation and free counts
 * are of recorded blocks, unknown frees are not counted. */
static void text_info_totals(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    const lkd_fmt_totals_t *t = &s->totals;
    bool sampled = lkd_group_sample_rate(s) != 0;
    const char *est = sampled ? " (estimate)" : "", *rec = sampled ? " recorded" : "";
    lkd_buf_printf(o, "totals%s:\n  live  ",
                   sampled ? " (sampled: estimates of the whole heap)" : "");
    put_size(o, t->bytes);
    lkd_buf_printf(o, " (%" PRIu64 " B) in %" PRIu64 " blocks%s\n  peak  ", t->bytes, t->blocks,
                   est);
    put_size(o, t->peak_bytes);
    lkd_buf_printf(o, " (%" PRIu64 " B)%s\n  allocations %" PRIu64 "%s (", t->peak_bytes, est,
                   t->total_allocs, rec);
    put_size(o, t->total_bytes);
    lkd_buf_printf(o, " in all%s), frees %" PRIu64 "%s\n", sampled ? ", estimated" : "",
                   t->total_frees, rec);
    if (sampled)
        lkd_buf_puts(o, "  unknown frees not counted (sampled)");
    else
        lkd_buf_printf(o, "  unknown frees %" PRIu64, t->unknown_frees);
    lkd_buf_printf(o, ", lost blocks %" PRIu64 ", tracker memory ", t->lost_blocks);
    put_size(o, t->tracker_bytes);
    lkd_buf_puts(o, "\n");
}

/* Bytes and blocks per reachability verdict (index: LKD_FMT_BLK_* value, 0 = none). */
typedef struct verdicts {
    uint64_t bytes[4], blocks[4];
} verdicts_t;

static verdicts_t count_verdicts(const lkd_snapshot_t *s)
{
    verdicts_t v = {{0}, {0}};
    for (size_t i = 0; i < s->block_count; i++) {
        unsigned k = s->blocks[i].flags & LKD_FMT_BLK_VERDICT_MASK;
        v.bytes[k] += s->blocks[i].size;
        v.blocks[k]++;
    }
    return v;
}

/* The leak verdicts of an exit snapshot, when the shim computed them. */
static void text_info_verdicts(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    if (!(s->process.flags & LKD_FMT_F_REACHABILITY))
        return;
    verdicts_t v = count_verdicts(s);
    static const struct {
        unsigned k;
        const char *name;
    } kinds[] = {{LKD_FMT_BLK_DIRECT, "direct leaks  "},
                 {LKD_FMT_BLK_INDIRECT, "indirect leaks"},
                 {LKD_FMT_BLK_REACHABLE, "reachable     "}};
    lkd_buf_puts(o, "reachability at exit:\n");
    for (size_t i = 0; i < 3; i++) {
        lkd_buf_printf(o, "  %s ", kinds[i].name);
        put_size(o, v.bytes[kinds[i].k]);
        lkd_buf_printf(o, " (%" PRIu64 " B) in %" PRIu64 " blocks\n", v.bytes[kinds[i].k],
                       v.blocks[kinds[i].k]);
    }
}

static void json_info_verdicts(lkd_buf_t *o, const lkd_snapshot_t *s)
{
    if (!(s->process.flags & LKD_FMT_F_REACHABILITY)) {
        lkd_buf_puts(o, "null");
        return;
    }
    verdicts_t v = count_verdicts(s);
    lkd_buf_printf(o,
                   "{\"direct_bytes\":%" PRIu64 ",\"direct_blocks\":%" PRIu64
                   ",\"indirect_bytes\":%" PRIu64 ",\"indirect_blocks\":%" PRIu64
                   ",\"reachable_bytes\":%" PRIu64 ",\"reachable_blocks\":%" PRIu64 "}",
                   v.bytes[LKD_FMT_BLK_DIRECT], v.blocks[LKD_FMT_BLK_DIRECT],
                   v.bytes[LKD_FMT_BLK_INDIRECT], v.blocks[LKD_FMT_BLK_INDIRECT],
                   v.bytes[LKD_FMT_BLK_REACHABLE], v.blocks[LKD_FMT_BLK_REACHABLE]);
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
    text_info_verdicts(o, s);
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
    if (lkd_group_sample_rate(s)) /* totals.bytes, blocks, peak_bytes, total_bytes estimate */
        lkd_buf_printf(o, ",\n\"sampled\":{\"rate\":%" PRIu64 "}", lkd_group_sample_rate(s));
    else
        lkd_buf_puts(o, ",\n\"sampled\":null");
    lkd_buf_puts(o, ",\n\"reachability\":");
    json_info_verdicts(o, s);
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

/* ---- shared with the check reports (check_report.c) ---------------------------------- */

/* The JSON object of s in a report's "snapshots" list. */
void lkd_report_json_snapshot(lkd_buf_t *out, const lkd_snapshot_t *s)
{
    json_snapshot(out, s);
}

/* The JSON object of one frame in a group's "frames" list. */
void lkd_report_json_frame(lkd_buf_t *out, const lkd_frame_t *f)
{
    json_frame(out, f);
}

/* "  PREFIXprocess 12345 (/path/exe), label exit, 2026-11-24 04:30:01" and a newline. */
void lkd_report_text_process(lkd_buf_t *out, const char *prefix, const lkd_snapshot_t *s)
{
    text_process(out, prefix, s);
}

/* path relative to the snapshot's working directory when it lies below it, else path. */
const char *lkd_report_short_path(const lkd_snapshot_t *s, const char *path)
{
    return short_path(s, path);
}
