/*
 * config - parses the LEAKDIFF_* environment once, at initialisation.
 *
 * Runs with the re-entrancy guard set, so getenv is safe here; nothing else in the shim
 * reads the environment.
 */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leakdiff/format.h"
#include "log.h"
#include "parse.h"

lkd_config_t lkd_config = {
    ".", LKD_DEFAULT_DEPTH, true, LKD_FMT_UNWIND_LIBUNWIND, -1, 0, true, true, true, 0, 0, false};

static bool parse_bool(const char *name, const char *s, bool def)
{
    if (!strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on"))
        return true;
    if (!strcmp(s, "0") || !strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off"))
        return false;
    lkd_log_warn("%s=%s is not 0 or 1; using %d", name, s, def);
    return def;
}

/* The output directory, made absolute against the start-up cwd so that a program that
 * changes directory still writes where the user looks (and `leakdiff snap` finds it). */
static void load_output(void)
{
    const char *s = getenv("LEAKDIFF_OUTPUT");
    char cwd[PATH_MAX];
    size_t max = sizeof lkd_config.output - 64;
    if (s && (!*s || strlen(s) >= max)) {
        lkd_log_warn("LEAKDIFF_OUTPUT is empty or too long; using \".\"");
        s = NULL;
    }
    if (s && s[0] == '/') {
        strcpy(lkd_config.output, s);
        return;
    }
    if (!getcwd(cwd, sizeof cwd) || strlen(cwd) + (s ? strlen(s) : 0) + 2 >= max) {
        strcpy(lkd_config.output, s ? s : ".");
        return;
    }
    strcpy(lkd_config.output, cwd);
    if (s && strcmp(s, ".") != 0) {
        strcat(lkd_config.output, "/");
        strcat(lkd_config.output, s);
    }
}

static void load_signal(void)
{
    const char *s = getenv("LEAKDIFF_SIGNAL");
    lkd_config.signal = SIGRTMIN + LKD_DEFAULT_SIGNAL_OFFSET;
    if (s && !lkd_parse_signal(s, &lkd_config.signal)) {
        lkd_config.signal = SIGRTMIN + LKD_DEFAULT_SIGNAL_OFFSET;
        lkd_log_warn("LEAKDIFF_SIGNAL=%s is not a catchable signal name or number, or \"none\"; "
                     "using SIGRTMIN+%d",
                     s, LKD_DEFAULT_SIGNAL_OFFSET);
    }
}

static void load_interval(void)
{
    const char *s = getenv("LEAKDIFF_INTERVAL");
    uint64_t v;
    if (!s)
        return;
    if (lkd_parse_uint(s, 0, 86400 * 365, &v))
        lkd_config.interval = (unsigned)v;
    else
        lkd_log_warn("LEAKDIFF_INTERVAL=%s is not a whole number of seconds; using 0 (off)", s);
}

static void load_depth(void)
{
    const char *s = getenv("LEAKDIFF_DEPTH");
    uint64_t v;
    if (!s)
        return;
    if (lkd_parse_uint(s, 1, LKD_FMT_MAX_DEPTH, &v))
        lkd_config.depth = (unsigned)v;
    else
        lkd_log_warn("LEAKDIFF_DEPTH=%s is not a number from 1 to %d; using %d", s,
                     LKD_FMT_MAX_DEPTH, LKD_DEFAULT_DEPTH);
}

static void load_unwind(void)
{
    const char *s = getenv("LEAKDIFF_UNWIND");
    if (!s || !strcmp(s, "libunwind"))
        return;
    if (!strcmp(s, "fp"))
        lkd_config.unwind = LKD_FMT_UNWIND_FP;
    else
        lkd_log_warn("LEAKDIFF_UNWIND=%s is not \"libunwind\" or \"fp\"; using libunwind", s);
}

/* LEAKDIFF_SAMPLE (bytes, with an optional K/M/G/T suffix) and LEAKDIFF_SAMPLE_SEED. */
static void load_sample(void)
{
    const char *s = getenv("LEAKDIFF_SAMPLE");
    uint64_t v;
    if (s && !lkd_parse_size(s, LKD_SAMPLE_MAX, &v))
        lkd_log_warn("LEAKDIFF_SAMPLE=%s is not a number of bytes up to 1T (e.g. 524288 or "
                     "512K); using 0 (every allocation recorded)",
                     s);
    else if (s)
        lkd_config.sample = v;
    s = getenv("LEAKDIFF_SAMPLE_SEED");
    if (s && !lkd_parse_uint(s, 0, UINT64_MAX, &v)) {
        lkd_log_warn("LEAKDIFF_SAMPLE_SEED=%s is not a whole number; using a random seed", s);
    } else if (s) {
        lkd_config.sample_seed = v;
        lkd_config.sample_seeded = true;
    }
}

/* lkd_config_load - fills lkd_config from the environment; call once, guard held. */
void lkd_config_load(void)
{
    const char *s;
    load_output();
    load_depth();
    load_unwind();
    load_signal();
    load_interval();
    load_sample();
    if ((s = getenv("LEAKDIFF_AT_EXIT")))
        lkd_config.at_exit = parse_bool("LEAKDIFF_AT_EXIT", s, true);
    if ((s = getenv("LEAKDIFF_START")))
        lkd_config.start = parse_bool("LEAKDIFF_START", s, true);
    if ((s = getenv("LEAKDIFF_CHILDREN")))
        lkd_config.children = parse_bool("LEAKDIFF_CHILDREN", s, true);
    if ((s = getenv("LEAKDIFF_REACHABILITY")))
        lkd_config.reachability = parse_bool("LEAKDIFF_REACHABILITY", s, true);
}
