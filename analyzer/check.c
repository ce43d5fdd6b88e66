/*
 * check - the leak gate's decisions: suppressions per block, leak groups per kind, the
 * baseline comparison, growth and trend against the limits.
 *
 * Grouping reuses lkd_group_build on a VIEW of a snapshot: the same snapshot with only the
 * blocks of one class (direct leaks, indirect leaks, or the unsuppressed blocks) and no
 * per-stack aggregates, so that lkd_group_build sums those blocks. Filters, --by keys and
 * attribution therefore work exactly as in top, diff and trend.
 *
 * Invariants: every stack is resolved and matched against the rules at most once per
 * snapshot (per-stack cache); a block is counted in at most one rule's counters; unit
 * totals are sums over the groups the unit reports, so text, JSON and the verdict agree.
 * Never does I/O.
 */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULE_UNKNOWN UINT32_MAX
#define LEADER_HOPS 64 /* a leader is DIRECT; follow at most this many INDIRECT links to one */

/* Block classes for views. */
enum { CLS_NONE, CLS_DIRECT, CLS_INDIRECT, CLS_MEASURED };

/* True when snap's blocks carry reachability verdicts (an exit snapshot, scan on). */
bool lkd_check_has_verdicts(const lkd_snapshot_t *snap)
{
    return (snap->process.flags & LKD_FMT_F_REACHABILITY) != 0;
}

static unsigned verdict(const lkd_fmt_block_t *b)
{
    return b->flags & LKD_FMT_BLK_VERDICT_MASK;
}

static bool is_leaked(const lkd_fmt_block_t *b)
{
    return verdict(b) == LKD_FMT_BLK_DIRECT || verdict(b) == LKD_FMT_BLK_INDIRECT;
}

/* "direct", "indirect" or "growth". */
const char *lkd_leak_kind_name(lkd_leak_kind_t kind)
{
    return kind == LKD_LEAK_DIRECT ? "direct" : kind == LKD_LEAK_INDIRECT ? "indirect" : "growth";
}

/* "none", "new", "larger" or "known". */
const char *lkd_baseline_status_name(lkd_baseline_status_t status)
{
    static const char *const names[] = {"none", "new", "larger", "known"};
    return (size_t)status < sizeof names / sizeof names[0] ? names[status] : "?";
}

/* ---- suppressions per block ------------------------------------------------------------ */

/* Matches the stacks of one snapshot against the rules, each stack once. */
typedef struct matcher {
    const lkd_check_input_t *in;
    const lkd_group_opts_t *gopts;
    const lkd_supp_list_t *supps;
    uint32_t *stack_rule; /* per stack id: rule index + 1, 0 = none, RULE_UNKNOWN */
    lkd_frame_t *frames;  /* the current stack, expanded (strings borrowed) */
    size_t nframes, cap;
} matcher_t;

/* Expands stack id into m->frames. Returns 0 or -ENOMEM. */
static int expand(matcher_t *m, uint32_t id)
{
    const lkd_snapshot_t *s = m->in->snap;
    m->nframes = 0;
    for (uint32_t d = 0; d < s->stack_depths[id]; d++) {
        const lkd_frame_t *f;
        size_t n;
        m->in->res.resolve(m->in->res.ctx, s->frames[s->stack_offsets[id] + d], &f, &n);
        if (m->nframes + n > m->cap) {
            size_t cap = (m->nframes + n) * 2;
            lkd_frame_t *v = realloc(m->frames, cap * sizeof *v);
            if (!v)
                return -ENOMEM;
            m->frames = v;
            m->cap = cap;
        }
        memcpy(m->frames + m->nframes, f, n * sizeof *f);
        m->nframes += n;
    }
    return 0;
}

/* Index of the site among m->frames: the first frame that is not plumbing, else the
 * outermost (as lkd_group_build attributes it, without python attribution). */
static size_t site_index(const matcher_t *m)
{
    for (size_t i = 0; i < m->nframes; i++)
        if (!lkd_group_is_plumbing(&m->frames[i], m->gopts))
            return i;
    return m->nframes - 1;
}

/* The first rule (index + 1) that matches the expanded stack, 0 when none does. */
static uint32_t match_frames(const matcher_t *m)
{
    if (!m->nframes)
        return 0;
    size_t site = site_index(m);
    for (size_t r = 0; r < m->supps->n; r++) {
        const lkd_supp_t *rule = &m->supps->v[r];
        size_t from = rule->site_only ? site : 0, to = rule->site_only ? site + 1 : m->nframes;
        for (size_t i = from; i < to; i++)
            if (lkd_supp_frame_matches(rule, &m->frames[i]))
                return (uint32_t)r + 1;
    }
    return 0;
}

/* *out = the rule (index + 1, or 0) of stack id, computed once. Returns 0 or -ENOMEM. */
static int stack_rule(matcher_t *m, uint32_t id, uint32_t *out)
{
    if (id >= m->in->snap->stack_count) {
        *out = 0;
        return 0;
    }
    if (m->stack_rule[id] == RULE_UNKNOWN) {
        int rc = expand(m, id);
        if (rc)
            return rc;
        m->stack_rule[id] = match_frames(m);
    }
    *out = m->stack_rule[id];
    return 0;
}

/* The DIRECT block an INDIRECT block i hangs from (its leader, followed through INDIRECT
 * links), or SIZE_MAX. */
static size_t direct_leader(const lkd_snapshot_t *s, size_t i)
{
    for (int hop = 0; hop < LEADER_HOPS; hop++) {
        uint32_t l = s->blocks[i].leader;
        if (!l || l > s->block_count || l - 1 == i)
            return SIZE_MAX;
        i = l - 1;
        if (verdict(&s->blocks[i]) == LKD_FMT_BLK_DIRECT)
            return i;
        if (verdict(&s->blocks[i]) != LKD_FMT_BLK_INDIRECT)
            return SIZE_MAX;
    }
    return SIZE_MAX;
}

/*
 * Decides which blocks of in->snap the rules hide: (*rules)[i] is 1 + the index of the rule
 * that hides block i, or 0. A rule hides a block whose stack it matches; an INDIRECT block
 * is also hidden, under its leader's rule, when the DIRECT block it hangs from is hidden.
 * leaked_only: only DIRECT and INDIRECT blocks are considered (the others get 0). gopts
 * says what is plumbing (for leak_site rules); supps may be NULL. *rules is malloc'd (one
 * entry per block) and owned by the caller. Returns 0 or -ENOMEM.
 */
int lkd_check_suppress(const lkd_check_input_t *in, const lkd_group_opts_t *gopts,
                       const lkd_supp_list_t *supps, bool leaked_only, uint32_t **rules)
{
    const lkd_snapshot_t *s = in->snap;
    uint32_t *r = calloc(s->block_count ? s->block_count : 1, sizeof *r);
    matcher_t m = {.in = in, .gopts = gopts, .supps = supps};
    int rc = -ENOMEM;
    *rules = NULL;
    if (!r)
        return -ENOMEM;
    if (!supps || !supps->n || !s->block_count)
        goto done;
    if (!(m.stack_rule = malloc((s->stack_count ? s->stack_count : 1) * sizeof *m.stack_rule)))
        goto fail;
    for (size_t i = 0; i < s->stack_count; i++)
        m.stack_rule[i] = RULE_UNKNOWN;
    for (size_t i = 0; i < s->block_count; i++)
        if ((!leaked_only || is_leaked(&s->blocks[i])) &&
            (rc = stack_rule(&m, s->blocks[i].stack, &r[i])))
            goto fail;
    for (size_t i = 0; lkd_check_has_verdicts(s) && i < s->block_count; i++) {
        size_t l;
        if (!r[i] && verdict(&s->blocks[i]) == LKD_FMT_BLK_INDIRECT &&
            (l = direct_leader(s, i)) != SIZE_MAX)
            r[i] = r[l];
    }
done:
    free(m.stack_rule);
    free(m.frames);
    *rules = r;
    return 0;
fail:
    free(m.stack_rule);
    free(m.frames);
    free(r);
    return -ENOMEM;
}

/* Adds the blocks rules hid to u's suppressed totals and to each rule's counters. */
static void count_hidden(lkd_check_unit_t *u, const lkd_snapshot_t *s, const uint32_t *rules,
                         lkd_supp_list_t *supps)
{
    for (size_t i = 0; supps && i < s->block_count; i++) {
        if (!rules[i] || rules[i] > supps->n)
            continue;
        supps->v[rules[i] - 1].blocks++;
        supps->v[rules[i] - 1].bytes += s->blocks[i].size;
        u->suppressed_blocks++;
        u->suppressed_bytes += s->blocks[i].size;
    }
}

/* ---- grouping on views ------------------------------------------------------------------- */

/*
 * Groups the blocks of s whose class is want (cls[i]) into *set: a view of s with only
 * those blocks and no per-stack aggregates goes through lkd_group_build, then --min-bytes.
 * Returns 0 or -errno; *set is to be freed either way.
 */
static int group_class(const lkd_check_input_t *in, const uint8_t *cls, uint8_t want,
                       const lkd_group_opts_t *gopts, lkd_group_set_t *set)
{
    const lkd_snapshot_t *s = in->snap;
    lkd_snapshot_t view = *s;
    size_t n = 0;
    memset(set, 0, sizeof *set);
    for (size_t i = 0; i < s->block_count; i++)
        n += cls[i] == want;
    view.stack_stats = NULL;
    view.stack_stat_count = 0;
    view.block_count = 0;
    if (!(view.blocks = malloc((n ? n : 1) * sizeof *view.blocks)))
        return -ENOMEM;
    for (size_t i = 0; i < s->block_count; i++)
        if (cls[i] == want)
            view.blocks[view.block_count++] = s->blocks[i];
    int rc = lkd_group_build(&view, &in->res, gopts, set);
    free(view.blocks);
    return rc;
}

/* Classes of the blocks of s: leaked ones by kind, or every one measured, minus hidden. */
static uint8_t *classify(const lkd_snapshot_t *s, const uint32_t *rules, bool by_kind,
                         bool leaked_only)
{
    uint8_t *cls = calloc(s->block_count ? s->block_count : 1, 1);
    for (size_t i = 0; cls && i < s->block_count; i++) {
        const lkd_fmt_block_t *b = &s->blocks[i];
        if (rules[i] || (leaked_only && !is_leaked(b)))
            continue;
        if (!by_kind)
            cls[i] = CLS_MEASURED;
        else
            cls[i] = verdict(b) == LKD_FMT_BLK_DIRECT ? CLS_DIRECT : CLS_INDIRECT;
    }
    return cls;
}

/*
 * The direct and the indirect leak groups of in (after suppressions, filters and
 * --min-bytes), sorted by size, into sets[0] and sets[1]. count: add what the rules hid to
 * u and to the rules' counters. Returns 0 or -errno; sets are to be freed either way.
 */
static int leak_sets(lkd_check_unit_t *u, const lkd_check_input_t *in, const lkd_check_opts_t *o,
                     bool count, lkd_group_set_t sets[2])
{
    uint32_t *rules;
    uint8_t *cls = NULL;
    memset(sets, 0, 2 * sizeof *sets);
    int rc = lkd_check_suppress(in, o->group, o->supps, true, &rules);
    if (rc)
        return rc;
    if (count)
        count_hidden(u, in->snap, rules, o->supps);
    rc = (cls = classify(in->snap, rules, true, true)) ? 0 : -ENOMEM;
    for (int k = 0; !rc && k < 2; k++) {
        rc = group_class(in, cls, k ? CLS_INDIRECT : CLS_DIRECT, o->group, &sets[k]);
        if (!rc) {
            lkd_group_drop_small(&sets[k], o->group->min_bytes);
            rc = lkd_group_sort(&sets[k], LKD_ORDER_SIZE);
        }
    }
    free(cls);
    free(rules);
    return rc;
}

/* Leaked bytes of key in a pair of leak sets (both kinds). */
static uint64_t key_bytes(const lkd_group_set_t sets[2], const char *key)
{
    uint64_t bytes = 0;
    for (int k = 0; k < 2; k++) {
        const lkd_group_t *g = lkd_group_find(&sets[k], key);
        bytes += g ? g->bytes : 0;
    }
    return bytes;
}

/* Report order: failing first, then larger (bytes, or growth for a series), direct before
 * indirect, then key. */
static int cmp_check_group(const void *pa, const void *pb)
{
    const lkd_check_group_t *a = pa, *b = pb;
    if (a->failing != b->failing)
        return a->failing ? -1 : 1;
    uint64_t va = a->kind == LKD_LEAK_GROWTH ? (uint64_t)a->growth : a->group->bytes;
    uint64_t vb = b->kind == LKD_LEAK_GROWTH ? (uint64_t)b->growth : b->group->bytes;
    if (va != vb)
        return va > vb ? -1 : 1;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return strcmp(a->group->key, b->group->key);
}

/* Fills in one LEAKS group (kind k, group g) and adds it to u's totals. */
static void leak_group(lkd_check_unit_t *u, lkd_check_group_t *e, int k, const lkd_group_t *g,
                       const lkd_group_set_t *base)
{
    e->group = g;
    e->kind = k ? LKD_LEAK_INDIRECT : LKD_LEAK_DIRECT;
    e->key_bytes = key_bytes(u->sets, g->key);
    if (base) {
        e->baseline_bytes = key_bytes(base, g->key);
        e->baseline = !e->baseline_bytes                 ? LKD_BASELINE_NEW
                      : e->key_bytes > e->baseline_bytes ? LKD_BASELINE_LARGER
                                                         : LKD_BASELINE_KNOWN;
    }
    u->bytes += g->bytes;
    u->blocks += g->blocks;
    *(k ? &u->indirect_bytes : &u->direct_bytes) += g->bytes;
    *(k ? &u->indirect_blocks : &u->direct_blocks) += g->blocks;
    /* each key once (its direct group, else its indirect one): what the baseline explains */
    if (base && (!k || !lkd_group_find(&u->sets[0], g->key))) {
        uint64_t known = e->key_bytes < e->baseline_bytes ? e->key_bytes : e->baseline_bytes;
        u->known_bytes += known;
    }
}

/* Lists u's leak groups (compared with the baseline's sets base, or NULL), decides. */
static int collect_leaks(lkd_check_unit_t *u, const lkd_group_set_t *base)
{
    size_t n = u->sets[0].count + u->sets[1].count;
    if (!(u->groups = calloc(n ? n : 1, sizeof *u->groups)))
        return -ENOMEM;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < u->sets[k].count; i++)
            leak_group(u, &u->groups[u->group_count++], k, u->sets[k].sorted[i], base);
    u->measured = u->bytes - u->known_bytes;
    u->passed = u->measured <= u->limit;
    for (size_t i = 0; i < n; i++) {
        lkd_check_group_t *e = &u->groups[i];
        e->failing = !u->passed && e->baseline != LKD_BASELINE_KNOWN;
        u->failing_groups += e->failing;
    }
    qsort(u->groups, n, sizeof *u->groups, cmp_check_group);
    return 0;
}

/*
 * Returns 0 when s has leak verdicts; else -ENODATA with one line in err saying why it has
 * none and how to get them.
 */
int lkd_check_need_verdicts(const lkd_snapshot_t *s, char *err, size_t errlen)
{
    if (lkd_check_has_verdicts(s))
        return 0;
    if (!(s->process.flags & LKD_FMT_F_EXIT))
        snprintf(err, errlen,
                 "%s: not an exit snapshot (label '%s'): leak verdicts are computed at exit "
                 "only; check the process's exit snapshot (*.exit.snap), or give two or more "
                 "snapshots to check growth",
                 s->path, lkd_snapshot_string(s, s->process.label));
    else if (s->process.flags & LKD_FMT_F_SAMPLED)
        snprintf(err, errlen,
                 "%s: a sampled exit snapshot (LEAKDIFF_SAMPLE) has no leak verdicts: the scan "
                 "cannot follow pointers through blocks it did not record; run the program "
                 "again without LEAKDIFF_SAMPLE, or give two or more snapshots to check growth",
                 s->path);
    else
        snprintf(err, errlen,
                 "%s: no leak verdicts in this exit snapshot (written with "
                 "LEAKDIFF_REACHABILITY=0, or the scan could not run); run the program again "
                 "without LEAKDIFF_REACHABILITY=0 (the scan is on by default), or give two or "
                 "more snapshots to check growth",
                 s->path);
    return -ENODATA;
}

/*
 * LEAKS: checks one exit snapshot. Groups its leaked blocks per kind (after suppressions,
 * filters and --min-bytes) into u, compares them with baseline (NULL: none) key by key (a
 * key's bytes of both kinds, so that a leak that turned from direct to indirect is still
 * known), and passes u when the bytes not explained by the baseline are at most
 * o->max_leaked. The rules' counters count what they hid here (not in the baseline).
 * Returns 0, -ENOMEM, or -ENODATA when a snapshot has no verdicts (message in err). Free u
 * with lkd_check_unit_free, also on failure.
 */
int lkd_check_leaks(lkd_check_unit_t *u, const lkd_check_input_t *in,
                    const lkd_check_input_t *baseline, const lkd_check_opts_t *o, char *err,
                    size_t errlen)
{
    lkd_group_set_t base[2] = {{0}};
    memset(u, 0, sizeof *u);
    u->mode = LKD_CHECK_LEAKS;
    u->snap = in->snap;
    u->snap_count = 1;
    u->limit = o->max_leaked;
    u->baseline = baseline != NULL;
    u->leaked_only = true;
    int rc = lkd_check_need_verdicts(in->snap, err, errlen);
    if (!rc && baseline)
        rc = lkd_check_need_verdicts(baseline->snap, err, errlen);
    if (rc)
        return rc;
    rc = leak_sets(u, in, o, true, u->sets);
    if (!rc && baseline)
        rc = leak_sets(u, baseline, o, false, base);
    if (!rc)
        rc = collect_leaks(u, baseline ? base : NULL);
    lkd_group_set_free(&base[0]);
    lkd_group_set_free(&base[1]);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", in->snap->path);
    return rc;
}

/* ---- growth and trend ---------------------------------------------------------------- */

/* The smallest change between two neighbouring snapshots of g's series (n entries). */
static int64_t smallest_step(const lkd_group_t *g, size_t n)
{
    int64_t min = INT64_MAX;
    for (size_t i = 1; g->series && i < n; i++) {
        int64_t d = (int64_t)(g->series[i] - g->series[i - 1]);
        min = d < min ? d : min;
    }
    return min;
}

/* Lists the groups of a GROWTH or TREND unit (u->sets[0], diffed) that grew, decides. */
static int collect_growth(lkd_check_unit_t *u)
{
    lkd_group_set_t *set = &u->sets[0];
    if (!(u->groups = calloc(set->count ? set->count : 1, sizeof *u->groups)))
        return -ENOMEM;
    for (size_t i = 0; i < set->count; i++) {
        const lkd_group_t *g = set->sorted[i];
        u->growth += g->bytes_diff;
        bool trend = u->mode == LKD_CHECK_TREND;
        if (trend ? !g->growing : g->bytes_diff <= 0)
            continue;
        lkd_check_group_t *e = &u->groups[u->group_count++];
        e->group = g;
        e->kind = LKD_LEAK_GROWTH;
        e->growth = trend ? smallest_step(g, set->series_len) : g->bytes_diff;
        e->failing = trend && e->growth > 0 && (uint64_t)e->growth > u->limit;
        u->bytes += (uint64_t)g->bytes_diff;
        u->blocks += g->blocks_diff > 0 ? (uint64_t)g->blocks_diff : 0;
        if (e->failing)
            u->measured += (uint64_t)g->bytes_diff;
        u->failing_groups += e->failing;
    }
    if (u->mode == LKD_CHECK_GROWTH) {
        u->measured = u->growth > 0 ? (uint64_t)u->growth : 0;
        u->passed = u->measured <= u->limit;
        for (size_t i = 0; i < u->group_count; i++)
            u->failing_groups += u->groups[i].failing = !u->passed;
    } else {
        u->passed = u->failing_groups == 0;
    }
    qsort(u->groups, u->group_count, sizeof *u->groups, cmp_check_group);
    return 0;
}

/* Groups the measured blocks of series snapshot in (leaked ones only, or all, minus what
 * the rules hide) into *set. count: add what the rules hid to u and the counters. */
static int series_set(lkd_check_unit_t *u, const lkd_check_input_t *in, const lkd_check_opts_t *o,
                      bool count, lkd_group_set_t *set)
{
    uint32_t *rules;
    memset(set, 0, sizeof *set);
    int rc = lkd_check_suppress(in, o->group, o->supps, u->leaked_only, &rules);
    if (rc)
        return rc;
    if (count)
        count_hidden(u, in->snap, rules, o->supps);
    uint8_t *cls = classify(in->snap, rules, false, u->leaked_only);
    rc = cls ? group_class(in, cls, CLS_MEASURED, o->group, set) : -ENOMEM;
    free(cls);
    free(rules);
    return rc;
}

/* Merges the n sets (oldest first) into sets[n - 1]: a diff for two, a trend for more. */
static int series_merge(lkd_group_set_t *sets, size_t n)
{
    if (n == 2)
        return lkd_group_diff(&sets[1], &sets[0]);
    const lkd_group_set_t **earlier = calloc(n - 1, sizeof *earlier);
    if (!earlier)
        return -ENOMEM;
    for (size_t i = 0; i + 1 < n; i++)
        earlier[i] = &sets[i];
    int rc = lkd_group_trend(&sets[n - 1], earlier, n - 1);
    free(earlier);
    return rc;
}

/*
 * GROWTH (n == 2) or TREND (n > 2): checks the series in[0..n), oldest first. Measures
 * leaked blocks when every snapshot has verdicts, else all live blocks, minus what the rules
 * hide (the rules' counters count the newest snapshot). GROWTH passes when the total growth
 * from first to last is at most o->max_growth; TREND fails on each group that grew in every
 * interval by more than o->max_growth. Returns 0, -EINVAL (n < 2), or -ENOMEM (message in
 * err). Free u with lkd_check_unit_free, also on failure.
 */
int lkd_check_series(lkd_check_unit_t *u, const lkd_check_input_t *in, size_t n,
                     const lkd_check_opts_t *o, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    if (n < 2) {
        snprintf(err, errlen, "a growth check needs two or more snapshots");
        return -EINVAL;
    }
    u->mode = n == 2 ? LKD_CHECK_GROWTH : LKD_CHECK_TREND;
    u->snap = in[n - 1].snap;
    u->first = in[0].snap;
    u->snap_count = n;
    u->limit = o->max_growth;
    if (!(u->snaps = calloc(n, sizeof *u->snaps))) {
        snprintf(err, errlen, "%s: out of memory", u->snap->path);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        u->snaps[i] = in[i].snap;
    u->leaked_only = true;
    for (size_t i = 0; i < n; i++)
        u->leaked_only &= lkd_check_has_verdicts(in[i].snap);
    lkd_group_set_t *sets = calloc(n, sizeof *sets);
    int rc = sets ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        rc = series_set(u, &in[i], o, i == n - 1, &sets[i]);
    if (!rc)
        rc = series_merge(sets, n);
    if (!rc) {
        u->sets[0] = sets[n - 1];
        memset(&sets[n - 1], 0, sizeof sets[n - 1]);
        lkd_group_drop_small(&u->sets[0], o->group->min_bytes);
        rc = lkd_group_sort(&u->sets[0], n == 2 ? LKD_ORDER_DIFF : LKD_ORDER_TREND);
    }
    if (!rc)
        rc = collect_growth(u);
    for (size_t i = 0; sets && i < n; i++)
        lkd_group_set_free(&sets[i]);
    free(sets);
    if (rc)
        snprintf(err, errlen, "%s: %s", u->snap->path, strerror(-rc));
    return rc;
}

/* Frees what u owns and zeroes it. Safe on a zeroed or partly filled unit. */
void lkd_check_unit_free(lkd_check_unit_t *u)
{
    lkd_group_set_free(&u->sets[0]);
    lkd_group_set_free(&u->sets[1]);
    free(u->groups);
    free(u->snaps);
    memset(u, 0, sizeof *u);
}
