/*
 * check_report - the leak gate's reports: text (LeakSanitizer's layout), JSON, SARIF 2.1.0,
 * JUnit XML and GitHub Actions annotations.
 *
 * Every format reports the same units and groups in the same order (check.c sorts them:
 * failing first). Text shows at most r->limit groups per unit; the machine formats show
 * every group. Groups the baseline explains ("known") are listed in text and JSON, never
 * as SARIF results or annotations, which are findings. Snapshot strings are untrusted: JSON
 * and SARIF escape them (lkd_json_string), text is sanitized (lkd_text_sanitize), XML and
 * workflow commands escape their own special characters. Never does I/O.
 */
#include "check_report.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- shared ------------------------------------------------------------------------------ */

static const char *sstr(const lkd_snapshot_t *s, uint32_t offset)
{
    return lkd_snapshot_string(s, offset);
}

static const char *exe_of(const lkd_snapshot_t *s)
{
    return sstr(s, s->process.exe);
}

/* True when every unit passed. */
bool lkd_check_report_passed(const lkd_check_report_t *r)
{
    for (size_t i = 0; i < r->unit_count; i++)
        if (!r->units[i].passed)
            return false;
    return true;
}

static bool is_series(const lkd_check_unit_t *u)
{
    return u->mode != LKD_CHECK_LEAKS;
}

/* The limit's option name. */
static const char *limit_name(const lkd_check_unit_t *u)
{
    return is_series(u) ? "--max-growth" : "--max-leaked";
}

/* Whether a group is a finding (SARIF result, annotation): not explained by the baseline. */
static bool is_finding(const lkd_check_group_t *e)
{
    return e->baseline != LKD_BASELINE_KNOWN;
}

/* The site frame of e (frames run from the site outward), or NULL. */
static const lkd_frame_t *site_of(const lkd_check_group_t *e)
{
    return e->group->frame_count ? &e->group->frames[0] : NULL;
}

/* "Direct leak of 48 byte(s) in 1 object(s)" and the like, without a trailing colon. */
static void group_title(lkd_buf_t *o, const lkd_check_unit_t *u, const lkd_check_group_t *e)
{
    const lkd_group_t *g = e->group;
    if (e->kind != LKD_LEAK_GROWTH) {
        lkd_buf_printf(o, "%s leak of %" PRIu64 " byte(s) in %" PRIu64 " object(s)",
                       e->kind == LKD_LEAK_DIRECT ? "Direct" : "Indirect", g->bytes, g->blocks);
        return;
    }
    if (u->mode == LKD_CHECK_GROWTH) {
        lkd_buf_printf(o,
                       "Growth of %" PRId64 " byte(s) in %" PRId64 " object(s) (%" PRIu64
                       " -> %" PRIu64 " bytes)",
                       g->bytes_diff, g->blocks_diff, g->old_bytes, g->bytes);
        return;
    }
    lkd_buf_printf(o, "Growth in every interval, by at least %" PRId64 " byte(s) (", e->growth);
    for (size_t i = 0; g->series && i < u->snap_count; i++)
        lkd_buf_printf(o, "%s%" PRIu64, i ? " -> " : "", g->series[i]);
    lkd_buf_puts(o, " bytes)");
}

/* "allocated from remember_session (samples/x.c:52)": the site, for one-line messages. */
static void site_text(lkd_buf_t *o, const lkd_snapshot_t *s, const lkd_check_group_t *e)
{
    const lkd_frame_t *f = site_of(e);
    if (!f) {
        lkd_buf_printf(o, " (%s)", e->group->key);
        return;
    }
    lkd_buf_printf(o, " allocated from %s", f->function);
    if (f->file && f->line)
        lkd_buf_printf(o, " (%s:%u)", lkd_report_short_path(s, f->file), f->line);
    else if (f->module)
        lkd_buf_printf(o, " (%s)", f->module);
}

/* ---- text ---------------------------------------------------------------------------- */

/* "    #0 0x55d0c1a2b3c4 in remember_session samples/growing_leak.c:52", as LeakSanitizer. */
static void text_frame(lkd_buf_t *o, const lkd_snapshot_t *s, size_t i, const lkd_frame_t *f)
{
    lkd_buf_printf(o, "    #%zu 0x%" PRIx64 " in %s", i, f->address, f->function);
    if (f->file && f->line)
        lkd_buf_printf(o, " %s:%u", lkd_report_short_path(s, f->file), f->line);
    else if (f->file)
        lkd_buf_printf(o, " %s", lkd_report_short_path(s, f->file));
    else if (f->module)
        lkd_buf_printf(o, " (%s+0x%" PRIx64 ")", f->module, f->module_offset);
    lkd_buf_puts(o, "\n");
}

/* The baseline's say on a group, one line. */
static void text_baseline(lkd_buf_t *o, const lkd_check_group_t *e)
{
    switch (e->baseline) {
    case LKD_BASELINE_NONE: return;
    case LKD_BASELINE_NEW: lkd_buf_puts(o, "  new: not in the baseline\n"); return;
    case LKD_BASELINE_LARGER:
        lkd_buf_printf(o, "  larger than in the baseline: %" PRIu64 " -> %" PRIu64 " byte(s)\n",
                       e->baseline_bytes, e->key_bytes);
        return;
    case LKD_BASELINE_KNOWN:
        lkd_buf_printf(o, "  known: the baseline leaks %" PRIu64 " byte(s) here (not counted)\n",
                       e->baseline_bytes);
        return;
    }
}

static void text_group(lkd_buf_t *o, const lkd_check_unit_t *u, const lkd_check_group_t *e)
{
    lkd_buf_puts(o, "\n");
    group_title(o, u, e);
    lkd_buf_puts(o, " allocated from:\n");
    for (size_t i = 0; i < e->group->frame_count; i++)
        text_frame(o, u->snap, i, &e->group->frames[i]);
    if (!e->group->frame_count)
        lkd_buf_printf(o, "    %s\n", e->group->key);
    text_baseline(o, e);
}

/* The first lines of a unit: whose memory, which snapshots. */
static void text_unit_header(lkd_buf_t *o, const lkd_check_report_t *r, const lkd_check_unit_t *u)
{
    const lkd_snapshot_t *s = u->snap;
    if (!is_series(u)) {
        lkd_buf_printf(
            o, "==%" PRIu32 "==%s: leakdiff: detected memory leaks in process %" PRIu32 " (%s)\n",
            s->process.pid, u->passed ? "WARNING" : "ERROR", s->process.pid, exe_of(s));
        lkd_buf_printf(o, "  snapshot %s\n", s->path);
        if (r->baseline)
            lkd_buf_printf(o, "  baseline %s\n", r->baseline->path);
        return;
    }
    lkd_buf_printf(o, "==%" PRIu32 "==%s: leakdiff: memory grew across %zu snapshots\n",
                   s->process.pid, u->passed ? "WARNING" : "ERROR", u->snap_count);
    for (size_t i = 0; i < u->snap_count; i++) {
        lkd_buf_printf(o, "  %zu: %s\n", i + 1, u->snaps[i]->path);
        lkd_report_text_process(o, "   ", u->snaps[i]);
    }
    lkd_buf_printf(o, "  measured: %s\n",
                   u->leaked_only ? "leaked memory (every snapshot has leak verdicts)"
                                  : "live memory (not every snapshot has leak verdicts)");
}

/* "; 3 allocation(s) (120 byte(s)) suppressed", when any. */
static void text_suppressed(lkd_buf_t *o, const lkd_check_unit_t *u)
{
    if (u->suppressed_blocks)
        lkd_buf_printf(o, "; %" PRIu64 " allocation(s) (%" PRIu64 " byte(s)) suppressed",
                       u->suppressed_blocks, u->suppressed_bytes);
}

/* The SUMMARY line and the verdict of a unit that reports groups. */
static void text_unit_footer(lkd_buf_t *o, const lkd_check_unit_t *u)
{
    if (u->mode == LKD_CHECK_LEAKS)
        lkd_buf_printf(
            o, "\nSUMMARY: leakdiff: %" PRIu64 " byte(s) leaked in %" PRIu64 " allocation(s).\n",
            u->bytes, u->blocks);
    else
        lkd_buf_printf(o,
                       "\nSUMMARY: leakdiff: memory grew by %" PRIu64 " byte(s) in %" PRIu64
                       " allocation(s).\n",
                       u->bytes, u->blocks);
    lkd_buf_printf(o, "leakdiff: %s: ", u->passed ? "pass" : "FAIL");
    if (u->mode == LKD_CHECK_LEAKS)
        lkd_buf_printf(o, "%" PRIu64 " byte(s) leaked%s", u->measured,
                       u->baseline ? " beyond the baseline" : "");
    else if (u->mode == LKD_CHECK_GROWTH)
        lkd_buf_printf(o, "grew by %" PRIu64 " byte(s)", u->measured);
    else if (u->failing_groups)
        lkd_buf_printf(o, "%zu group(s) grew in every interval by more than %" PRIu64 " byte(s)",
                       u->failing_groups, u->limit);
    else
        lkd_buf_printf(o, "no group grew in every interval by more than %" PRIu64 " byte(s)",
                       u->limit);
    if (u->mode != LKD_CHECK_TREND)
        lkd_buf_printf(o, ", %s %s %" PRIu64, u->passed ? "within" : "more than", limit_name(u),
                       u->limit);
    text_suppressed(o, u);
    lkd_buf_puts(o, "\n");
}

/*
 * Appends the text report of one unit: LeakSanitizer's layout (a header naming the process,
 * each group with its kind, bytes, blocks and symbolized stack, a SUMMARY line) and a
 * verdict line; for a unit with nothing to report, two lines. Not sanitized (the caller's).
 */
void lkd_check_report_unit_text(lkd_buf_t *o, const lkd_check_report_t *r,
                                const lkd_check_unit_t *u)
{
    if (!u->group_count && u->mode == LKD_CHECK_LEAKS) {
        lkd_buf_printf(o, "leakdiff: no leaks in process %" PRIu32 " (%s)", u->snap->process.pid,
                       exe_of(u->snap));
        text_suppressed(o, u);
        lkd_buf_printf(o,
                       "\n  snapshot %s\nSUMMARY: leakdiff: 0 byte(s) leaked in 0 "
                       "allocation(s).\n",
                       u->snap->path);
        return;
    }
    text_unit_header(o, r, u);
    size_t shown = r->limit && r->limit < u->group_count ? r->limit : u->group_count;
    for (size_t i = 0; i < shown; i++)
        text_group(o, u, &u->groups[i]);
    if (!u->group_count)
        lkd_buf_puts(o, "\nNo group grew.\n");
    if (shown < u->group_count)
        lkd_buf_printf(o, "\n... and %zu more group(s) (-n 0 shows all)\n", u->group_count - shown);
    text_unit_footer(o, u);
}

/* LeakSanitizer's "Suppressions used" table: every rule that hid something. */
static void text_suppressions(lkd_buf_t *o, const lkd_supp_list_t *supps)
{
    size_t used = 0;
    for (size_t i = 0; supps && i < supps->n; i++)
        used += supps->v[i].blocks > 0;
    if (!used)
        return;
    lkd_buf_puts(o, "-----------------------------------------------------\n"
                    "Suppressions used:\n"
                    "  count      bytes template\n");
    for (size_t i = 0; i < supps->n; i++) {
        const lkd_supp_t *s = &supps->v[i];
        if (s->blocks)
            lkd_buf_printf(o, "%7" PRIu64 " %10" PRIu64 " %s:%s (%s:%u)\n", s->blocks, s->bytes,
                           s->site_only ? "leak_site" : "leak", s->pattern, s->source, s->line);
    }
    lkd_buf_puts(o, "-----------------------------------------------------\n");
}

static int text_report(lkd_buf_t *o, const lkd_check_report_t *r)
{
    size_t failed = 0;
    for (size_t i = 0; i < r->unit_count; i++) {
        if (i)
            lkd_buf_puts(o, "\n");
        lkd_check_report_unit_text(o, r, &r->units[i]);
        failed += !r->units[i].passed;
    }
    text_suppressions(o, r->supps);
    if (r->unit_count > 1)
        lkd_buf_printf(o, "leakdiff check: %s: %zu of %zu processes leaked beyond the limit\n",
                       failed ? "FAILED" : "passed", failed, r->unit_count);
    return o->err;
}

/* ---- JSON ---------------------------------------------------------------------------- */

static void json_leaks(lkd_buf_t *o, const lkd_check_unit_t *u, size_t n)
{
    uint64_t v[9] = {0};
    for (size_t i = 0; i < n; i++) {
        const uint64_t w[9] = {u[i].bytes,
                               u[i].blocks,
                               u[i].direct_bytes,
                               u[i].direct_blocks,
                               u[i].indirect_bytes,
                               u[i].indirect_blocks,
                               u[i].suppressed_bytes,
                               u[i].suppressed_blocks,
                               u[i].measured};
        for (int k = 0; k < 9; k++)
            v[k] += w[k];
    }
    lkd_buf_printf(o,
                   "{\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"direct_bytes\":%" PRIu64
                   ",\"direct_blocks\":%" PRIu64 ",\"indirect_bytes\":%" PRIu64
                   ",\"indirect_blocks\":%" PRIu64 ",\"suppressed_bytes\":%" PRIu64
                   ",\"suppressed_blocks\":%" PRIu64 ",\"measured\":%" PRIu64 "}",
                   v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
}

static void json_group(lkd_buf_t *o, const lkd_check_unit_t *u, const lkd_check_group_t *e)
{
    const lkd_group_t *g = e->group;
    lkd_buf_puts(o, "{\"key\":");
    lkd_json_string(o, g->key);
    lkd_buf_printf(o,
                   ",\"kind\":\"%s\",\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64
                   ",\"failing\":%s,\"pid\":%" PRIu32 ",\"snapshot\":",
                   lkd_leak_kind_name(e->kind), g->bytes, g->blocks, e->failing ? "true" : "false",
                   u->snap->process.pid);
    lkd_json_string(o, u->snap->path);
    if (e->baseline != LKD_BASELINE_NONE)
        lkd_buf_printf(o, ",\"baseline\":\"%s\",\"baseline_bytes\":%" PRIu64,
                       lkd_baseline_status_name(e->baseline), e->baseline_bytes);
    if (e->kind == LKD_LEAK_GROWTH)
        lkd_buf_printf(o,
                       ",\"growth\":%" PRId64 ",\"bytes_diff\":%" PRId64 ",\"blocks_diff\":%" PRId64
                       ",\"old_bytes\":%" PRIu64,
                       e->growth, g->bytes_diff, g->blocks_diff, g->old_bytes);
    if (u->mode == LKD_CHECK_TREND) {
        lkd_buf_puts(o, ",\"series\":[");
        for (size_t i = 0; g->series && i < u->snap_count; i++)
            lkd_buf_printf(o, "%s%" PRIu64, i ? "," : "", g->series[i]);
        lkd_buf_puts(o, "]");
    }
    lkd_buf_puts(o, ",\"frames\":[");
    for (size_t i = 0; i < g->frame_count; i++) {
        if (i)
            lkd_buf_puts(o, ",");
        lkd_report_json_frame(o, &g->frames[i]);
    }
    lkd_buf_puts(o, "]}");
}

static void json_supp(lkd_buf_t *o, const lkd_supp_t *s)
{
    lkd_buf_printf(o, "{\"type\":\"%s\",\"pattern\":", s->site_only ? "leak_site" : "leak");
    lkd_json_string(o, s->pattern);
    lkd_buf_puts(o, ",\"source\":");
    lkd_json_string(o, s->source);
    lkd_buf_printf(
        o, ",\"line\":%u,\"builtin\":%s,\"used\":%s,\"blocks\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
        s->line, s->builtin ? "true" : "false", s->blocks ? "true" : "false", s->blocks, s->bytes);
}

/* "suppressed": every rule that hid something, and every rule of the user's files. */
static void json_suppressed(lkd_buf_t *o, const lkd_supp_list_t *supps)
{
    size_t n = 0;
    lkd_buf_puts(o, "\"suppressed\":[");
    for (size_t i = 0; supps && i < supps->n; i++) {
        if (supps->v[i].builtin && !supps->v[i].blocks)
            continue;
        lkd_buf_puts(o, n++ ? ",\n" : "\n");
        json_supp(o, &supps->v[i]);
    }
    lkd_buf_puts(o, "]");
}

static const char *mode_name(lkd_check_mode_t mode)
{
    return mode == LKD_CHECK_LEAKS ? "leaks" : mode == LKD_CHECK_GROWTH ? "growth" : "trend";
}

/* One entry of "processes": a unit's verdict and figures. */
static void json_unit(lkd_buf_t *o, const lkd_check_unit_t *u)
{
    lkd_buf_printf(o, "{\"pid\":%" PRIu32 ",\"exe\":", u->snap->process.pid);
    lkd_json_string(o, exe_of(u->snap));
    lkd_buf_puts(o, ",\"snapshot\":");
    lkd_json_string(o, u->snap->path);
    lkd_buf_printf(
        o,
        ",\"mode\":\"%s\",\"measure\":\"%s\",\"passed\":%s,\"limit\":%" PRIu64
        ",\"measured\":%" PRIu64 ",\"growth\":%" PRId64 ",\"failing_groups\":%zu,\"leaks\":",
        mode_name(u->mode), u->leaked_only ? "leaked" : "live", u->passed ? "true" : "false",
        u->limit, u->measured, u->growth, u->failing_groups);
    json_leaks(o, u, 1);
    lkd_buf_puts(o, "}");
}

/* "snapshots": every snapshot checked, in the order of the units. */
static void json_snapshots(lkd_buf_t *o, const lkd_check_report_t *r)
{
    size_t n = 0;
    lkd_buf_puts(o, "\"snapshots\":[");
    for (size_t i = 0; i < r->unit_count; i++) {
        const lkd_check_unit_t *u = &r->units[i];
        for (size_t k = 0; k < u->snap_count; k++) {
            lkd_buf_puts(o, n++ ? "," : "");
            lkd_report_json_snapshot(o, u->snaps ? u->snaps[k] : u->snap);
        }
    }
    lkd_buf_puts(o, "]");
}

static int json_report(lkd_buf_t *o, const lkd_check_report_t *r)
{
    const lkd_group_opts_t *f = r->opts;
    lkd_buf_printf(o, "{\"version\":1,\"command\":\"%s\",\"by\":\"%s\",\"passed\":%s,", r->command,
                   lkd_group_by_name(f ? f->by : LKD_BY_FUNCTION),
                   lkd_check_report_passed(r) ? "true" : "false");
    lkd_buf_printf(o, "\"mode\":\"%s\",\"max_leaked\":%" PRIu64 ",\"max_growth\":%" PRIu64 ",\n",
                   mode_name(r->unit_count ? r->units[0].mode : LKD_CHECK_LEAKS), r->max_leaked,
                   r->max_growth);
    json_snapshots(o, r);
    lkd_buf_puts(o, ",\n\"baseline\":");
    if (r->baseline)
        lkd_report_json_snapshot(o, r->baseline);
    else
        lkd_buf_puts(o, "null");
    lkd_buf_puts(o, ",\n\"leaks\":");
    json_leaks(o, r->units, r->unit_count);
    lkd_buf_puts(o, ",\n\"groups\":[");
    for (size_t i = 0, n = 0; i < r->unit_count; i++)
        for (size_t k = 0; k < r->units[i].group_count; k++) {
            lkd_buf_puts(o, n++ ? ",\n" : "\n");
            json_group(o, &r->units[i], &r->units[i].groups[k]);
        }
    lkd_buf_puts(o, "],\n");
    json_suppressed(o, r->supps);
    lkd_buf_puts(o, ",\n\"processes\":[");
    for (size_t i = 0; i < r->unit_count; i++) {
        lkd_buf_puts(o, i ? ",\n" : "\n");
        json_unit(o, &r->units[i]);
    }
    lkd_buf_puts(o, "]}\n");
    return o->err;
}

/* ---- SARIF 2.1.0 ----------------------------------------------------------------------- */

static const struct {
    const char *id, *name, *text;
} sarif_rules[] = {
    {"leakdiff/direct-leak", "DirectLeak",
     "Memory leaked: no pointer to the block was left anywhere when the process exited"},
    {"leakdiff/indirect-leak", "IndirectLeak",
     "Memory leaked: the block was pointed to only from other leaked blocks at exit"},
    {"leakdiff/memory-growth", "MemoryGrowth",
     "Memory allocated here grew between snapshots beyond the limit"},
};

/* Appends s percent-encoded for a URI path: unreserved characters and '/' stay. */
static void uri_path(lkd_buf_t *o, const char *s)
{
    static const char keep[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789-._~/";
    for (; *s; s++) {
        if (strchr(keep, *s))
            lkd_buf_append(o, s, 1);
        else
            lkd_buf_printf(o, "%%%02X", (unsigned char)*s);
    }
}

/* "uri" (and "uriBaseId" for a path under the snapshot's working directory) of path. */
static void sarif_artifact(lkd_buf_t *o, const lkd_snapshot_t *s, const char *path)
{
    const char *rel = lkd_report_short_path(s, path);
    lkd_buf_puts(o, "\"artifactLocation\":{\"uri\":\"");
    if (rel != path || path[0] != '/') {
        uri_path(o, rel);
        lkd_buf_puts(o, "\",\"uriBaseId\":\"SRCROOT\"}");
        return;
    }
    lkd_buf_puts(o, "file://");
    uri_path(o, path);
    lkd_buf_puts(o, "\"}");
}

/* A SARIF location of frame f: its file and line, else its module; and its function. */
static void sarif_location(lkd_buf_t *o, const lkd_snapshot_t *s, const lkd_frame_t *f)
{
    const char *path = f->file ? f->file : f->module;
    lkd_buf_puts(o, "{");
    if (path) {
        lkd_buf_puts(o, "\"physicalLocation\":{");
        sarif_artifact(o, s, path);
        if (f->file && f->line)
            lkd_buf_printf(o, ",\"region\":{\"startLine\":%u}", f->line);
        lkd_buf_puts(o, "},");
    }
    lkd_buf_puts(o, "\"logicalLocations\":[{\"fullyQualifiedName\":");
    lkd_json_string(o, f->function);
    lkd_buf_puts(o, ",\"kind\":\"function\"}]}");
}

/* The allocation stack of a result, as a SARIF stack. */
static void sarif_stack(lkd_buf_t *o, const lkd_snapshot_t *s, const lkd_group_t *g)
{
    lkd_buf_puts(o, ",\"stacks\":[{\"message\":{\"text\":\"allocation stack\"},\"frames\":[");
    for (size_t i = 0; i < g->frame_count; i++) {
        lkd_buf_puts(o, i ? ",{\"location\":" : "{\"location\":");
        sarif_location(o, s, &g->frames[i]);
        if (g->frames[i].module) {
            lkd_buf_puts(o, ",\"module\":");
            lkd_json_string(o, g->frames[i].module);
        }
        lkd_buf_puts(o, "}");
    }
    lkd_buf_puts(o, "]}]");
}

/* One-line message of a finding: title, site, and whose process. */
static void finding_message(lkd_buf_t *o, const lkd_check_unit_t *u, const lkd_check_group_t *e)
{
    group_title(o, u, e);
    site_text(o, u->snap, e);
    lkd_buf_printf(o, " in process %" PRIu32 " (%s)", u->snap->process.pid, exe_of(u->snap));
    if (e->baseline == LKD_BASELINE_NEW)
        lkd_buf_puts(o, "; new since the baseline");
    else if (e->baseline == LKD_BASELINE_LARGER)
        lkd_buf_printf(o, "; the baseline leaks %" PRIu64 " byte(s) here", e->baseline_bytes);
}

static void sarif_result(lkd_buf_t *o, const lkd_check_unit_t *u, const lkd_check_group_t *e)
{
    lkd_buf_t msg = LKD_BUF_INIT;
    finding_message(&msg, u, e);
    lkd_buf_printf(o, "{\"ruleId\":\"%s\",\"ruleIndex\":%d,\"level\":\"%s\",\"message\":{\"text\":",
                   sarif_rules[e->kind].id, (int)e->kind, e->failing ? "error" : "warning");
    lkd_json_string(o, lkd_buf_str(&msg));
    lkd_buf_free(&msg);
    lkd_buf_puts(o, "},\"locations\":[");
    const lkd_frame_t *site = site_of(e);
    lkd_frame_t none = {e->group->key, NULL, 0, NULL, 0, 0, false};
    sarif_location(o, u->snap, site ? site : &none);
    lkd_buf_puts(o, "],\"partialFingerprints\":{\"leakdiffGroup/v1\":");
    lkd_json_string(o, e->group->key);
    lkd_buf_printf(o,
                   "},\"properties\":{\"bytes\":%" PRIu64 ",\"blocks\":%" PRIu64 ",\"pid\":%" PRIu32
                   ",\"snapshot\":",
                   e->group->bytes, e->group->blocks, u->snap->process.pid);
    lkd_json_string(o, u->snap->path);
    lkd_buf_puts(o, "}");
    sarif_stack(o, u->snap, e->group);
    lkd_buf_puts(o, "}");
}

static void sarif_driver(lkd_buf_t *o, const lkd_check_report_t *r)
{
    lkd_buf_puts(o, "{\"driver\":{\"name\":\"leakdiff\",\"version\":");
    lkd_json_string(o, r->version ? r->version : "0");
    lkd_buf_puts(o, ",\"rules\":[");
    for (size_t i = 0; i < sizeof sarif_rules / sizeof sarif_rules[0]; i++)
        lkd_buf_printf(o,
                       "%s{\"id\":\"%s\",\"name\":\"%s\",\"shortDescription\":{\"text\":\"%s\"},"
                       "\"defaultConfiguration\":{\"level\":\"error\"}}",
                       i ? "," : "", sarif_rules[i].id, sarif_rules[i].name, sarif_rules[i].text);
    lkd_buf_puts(o, "]}}");
}

/* "originalUriBaseIds": SRCROOT is the first snapshot's working directory. */
static void sarif_base(lkd_buf_t *o, const lkd_check_report_t *r)
{
    if (!r->unit_count)
        return;
    const lkd_snapshot_t *s = r->units[0].snap;
    lkd_buf_puts(o, ",\"originalUriBaseIds\":{\"SRCROOT\":{\"uri\":\"file://");
    uri_path(o, sstr(s, s->process.cwd));
    lkd_buf_puts(o, "/\"}}");
}

static int sarif_report(lkd_buf_t *o, const lkd_check_report_t *r)
{
    lkd_buf_puts(o, "{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\","
                    "\"version\":\"2.1.0\",\"runs\":[{\"tool\":");
    sarif_driver(o, r);
    lkd_buf_printf(o, ",\"invocations\":[{\"executionSuccessful\":true,\"exitCode\":%d}]",
                   lkd_check_report_passed(r) ? 0 : 1);
    sarif_base(o, r);
    lkd_buf_puts(o, ",\"results\":[");
    for (size_t i = 0, n = 0; i < r->unit_count; i++)
        for (size_t k = 0; k < r->units[i].group_count; k++) {
            if (!is_finding(&r->units[i].groups[k]))
                continue;
            lkd_buf_puts(o, n++ ? ",\n" : "\n");
            sarif_result(o, &r->units[i], &r->units[i].groups[k]);
        }
    lkd_buf_puts(o, "]}]}\n");
    return o->err;
}

/* ---- JUnit XML ------------------------------------------------------------------------- */

/* Appends s escaped for XML text and attributes (the text is already sanitized, so it has
 * no control characters but tab and newline). */
static void xml_escape(lkd_buf_t *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': lkd_buf_puts(o, "&amp;"); break;
        case '<': lkd_buf_puts(o, "&lt;"); break;
        case '>': lkd_buf_puts(o, "&gt;"); break;
        case '"': lkd_buf_puts(o, "&quot;"); break;
        case '\'': lkd_buf_puts(o, "&apos;"); break;
        case '\n': lkd_buf_puts(o, "&#10;"); break;
        default: lkd_buf_append(o, s, 1);
        }
    }
}

/* Appends text (sanitized first) XML-escaped; newlines stay newlines in element text. */
static void xml_text(lkd_buf_t *o, const char *text, bool attribute)
{
    lkd_buf_t t = LKD_BUF_INIT;
    lkd_buf_puts(&t, text);
    lkd_text_sanitize(&t, 0);
    const char *s = lkd_buf_str(&t);
    for (const char *nl; !attribute && (nl = strchr(s, '\n')); s = nl + 1) {
        lkd_buf_t line = LKD_BUF_INIT;
        lkd_buf_append(&line, s, (size_t)(nl - s));
        xml_escape(o, lkd_buf_str(&line));
        lkd_buf_puts(o, "\n");
        lkd_buf_free(&line);
    }
    xml_escape(o, s);
    lkd_buf_free(&t);
}

/* The one-line verdict of a unit (JUnit failure message). */
static void unit_verdict(lkd_buf_t *o, const lkd_check_unit_t *u)
{
    if (u->mode == LKD_CHECK_LEAKS && u->baseline)
        lkd_buf_printf(o,
                       "%" PRIu64 " byte(s) leaked beyond the baseline (%" PRIu64
                       " byte(s) in %" PRIu64 " allocation(s) in all)",
                       u->measured, u->bytes, u->blocks);
    else if (u->mode == LKD_CHECK_LEAKS)
        lkd_buf_printf(o, "%" PRIu64 " byte(s) leaked in %" PRIu64 " allocation(s)", u->measured,
                       u->blocks);
    else if (u->mode == LKD_CHECK_GROWTH)
        lkd_buf_printf(o, "memory grew by %" PRIu64 " byte(s)", u->measured);
    else
        lkd_buf_printf(o, "%zu group(s) grew in every interval", u->failing_groups);
    lkd_buf_printf(o, ", limit %s %" PRIu64, limit_name(u), u->limit);
}

static void junit_case(lkd_buf_t *o, const lkd_check_report_t *r, const lkd_check_unit_t *u)
{
    lkd_buf_t t = LKD_BUF_INIT;
    const char *exe = exe_of(u->snap), *slash = strrchr(exe, '/');
    lkd_buf_printf(&t, "%s (pid %" PRIu32 ")%s", slash ? slash + 1 : exe, u->snap->process.pid,
                   is_series(u) ? " growth" : "");
    lkd_buf_puts(o, "    <testcase classname=\"leakdiff.check\" name=\"");
    xml_text(o, lkd_buf_str(&t), true);
    lkd_buf_puts(o, "\" file=\"");
    xml_text(o, u->snap->path, true);
    lkd_buf_puts(o, u->passed ? "\">\n" : "\">\n      <failure type=\"leak\" message=\"");
    lkd_buf_reset(&t);
    if (!u->passed) {
        unit_verdict(&t, u);
        xml_text(o, lkd_buf_str(&t), true);
        lkd_buf_puts(o, "\">");
        lkd_buf_reset(&t);
    } else {
        lkd_buf_puts(o, "      <system-out>");
    }
    lkd_check_report_unit_text(&t, r, u);
    xml_text(o, lkd_buf_str(&t), false);
    lkd_buf_puts(o, u->passed ? "</system-out>\n" : "</failure>\n");
    lkd_buf_puts(o, "    </testcase>\n");
    lkd_buf_free(&t);
}

static int junit_report(lkd_buf_t *o, const lkd_check_report_t *r)
{
    size_t failed = 0;
    for (size_t i = 0; i < r->unit_count; i++)
        failed += !r->units[i].passed;
    lkd_buf_printf(o,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                   "<testsuites name=\"leakdiff\" tests=\"%zu\" failures=\"%zu\" errors=\"0\">\n"
                   "  <testsuite name=\"leakdiff %s\" tests=\"%zu\" failures=\"%zu\" "
                   "errors=\"0\" skipped=\"0\">\n",
                   r->unit_count, failed, r->command, r->unit_count, failed);
    for (size_t i = 0; i < r->unit_count; i++)
        junit_case(o, r, &r->units[i]);
    lkd_buf_puts(o, "  </testsuite>\n</testsuites>\n");
    return o->err;
}

/* ---- GitHub Actions -------------------------------------------------------------------- */

/* Appends s escaped for a workflow command: '%', CR and LF always; ':' and ',' too in a
 * property value. */
static void gh_escape(lkd_buf_t *o, const char *s, bool property)
{
    for (; *s; s++) {
        if (*s == '%')
            lkd_buf_puts(o, "%25");
        else if (*s == '\r')
            lkd_buf_puts(o, "%0D");
        else if (*s == '\n')
            lkd_buf_puts(o, "%0A");
        else if (property && *s == ':')
            lkd_buf_puts(o, "%3A");
        else if (property && *s == ',')
            lkd_buf_puts(o, "%2C");
        else
            lkd_buf_append(o, s, 1);
    }
}

/* "::error file=F,line=L,title=T::message" for one finding, its stack in the message. */
static void gh_finding(lkd_buf_t *o, const lkd_check_unit_t *u, const lkd_check_group_t *e)
{
    const lkd_frame_t *site = site_of(e);
    lkd_buf_t t = LKD_BUF_INIT;
    lkd_buf_printf(o, "::%s ", e->failing ? "error" : "warning");
    if (site && site->file) {
        lkd_buf_puts(o, "file=");
        gh_escape(o, lkd_report_short_path(u->snap, site->file), true);
        if (site->line)
            lkd_buf_printf(o, ",line=%u", site->line);
        lkd_buf_puts(o, ",");
    }
    lkd_buf_printf(o, "title=leakdiff %s::",
                   e->kind == LKD_LEAK_DIRECT     ? "direct leak"
                   : e->kind == LKD_LEAK_INDIRECT ? "indirect leak"
                                                  : "memory growth");
    finding_message(&t, u, e);
    lkd_buf_puts(&t, "\n");
    for (size_t i = 0; i < e->group->frame_count; i++)
        text_frame(&t, u->snap, i, &e->group->frames[i]);
    lkd_text_sanitize(&t, 0);
    if (t.len && t.data[t.len - 1] == '\n')
        t.data[--t.len] = '\0';
    gh_escape(o, lkd_buf_str(&t), false);
    lkd_buf_puts(o, "\n");
    lkd_buf_free(&t);
}

static int github_report(lkd_buf_t *o, const lkd_check_report_t *r)
{
    for (size_t i = 0; i < r->unit_count; i++) {
        const lkd_check_unit_t *u = &r->units[i];
        for (size_t k = 0; k < u->group_count; k++)
            if (is_finding(&u->groups[k]))
                gh_finding(o, u, &u->groups[k]);
        if (u->passed)
            continue;
        lkd_buf_t t = LKD_BUF_INIT;
        lkd_buf_printf(&t, "process %" PRIu32 " (%s): ", u->snap->process.pid, exe_of(u->snap));
        unit_verdict(&t, u);
        lkd_text_sanitize(&t, 0);
        lkd_buf_puts(o, "::error title=leakdiff check failed::");
        gh_escape(o, lkd_buf_str(&t), false);
        lkd_buf_puts(o, "\n");
        lkd_buf_free(&t);
    }
    size_t from = o->len;
    for (size_t i = 0; i < r->unit_count; i++)
        text_unit_footer(o, &r->units[i]);
    lkd_text_sanitize(o, from);
    return o->err;
}

/* ---- entry points ---------------------------------------------------------------------- */

/*
 * Appends the report of r in r->format (text for text and collapsed) to out. Returns 0 or
 * -ENOMEM.
 */
int lkd_check_report(lkd_buf_t *out, const lkd_check_report_t *r)
{
    switch (r->format) {
    case LKD_FORMAT_JSON: return json_report(out, r);
    case LKD_FORMAT_SARIF: return sarif_report(out, r);
    case LKD_FORMAT_JUNIT: return junit_report(out, r);
    case LKD_FORMAT_GITHUB: return github_report(out, r);
    case LKD_FORMAT_TEXT:
    case LKD_FORMAT_COLLAPSED: break;
    }
    size_t from = out->len;
    int rc = text_report(out, r);
    lkd_text_sanitize(out, from);
    return rc;
}

/* One warning line per rule of the user's files that hid nothing. */
void lkd_check_unused_warnings(lkd_buf_t *out, const lkd_supp_list_t *supps)
{
    size_t from = out->len;
    for (size_t i = 0; supps && i < supps->n; i++) {
        const lkd_supp_t *s = &supps->v[i];
        if (!s->builtin && !s->blocks)
            lkd_buf_printf(out, "leakdiff: warning: %s:%u: suppression %s:%s matched no leak\n",
                           s->source, s->line, s->site_only ? "leak_site" : "leak", s->pattern);
    }
    lkd_text_sanitize(out, from);
}
