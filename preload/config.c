/*
 * config - parses the LEAKDIFF_* environment once, at initialisation.
 *
 * Runs with the re-entrancy guard set, so getenv is safe here; nothing else in the shim
 * reads the environment.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "leakdiff/format.h"
#include "log.h"

lkd_config_t lkd_config = {".", LKD_DEFAULT_DEPTH, true, LKD_FMT_UNWIND_LIBUNWIND};

/* lkd_config_parse_uint - strict decimal parse: digits only, no sign, no overflow. */
bool lkd_config_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *name, const char *s, bool def)
{
    if (!strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on"))
        return true;
    if (!strcmp(s, "0") || !strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off"))
        return false;
    lkd_log_warn("%s=%s is not 0 or 1; using %d", name, s, def);
    return def;
}

static void load_output(void)
{
    const char *s = getenv("LEAKDIFF_OUTPUT");
    if (!s)
        return;
    if (!*s || strlen(s) >= sizeof lkd_config.output - 64) {
        lkd_log_warn("LEAKDIFF_OUTPUT is empty or too long; using \".\"");
        return;
    }
    strcpy(lkd_config.output, s);
}

static void load_depth(void)
{
    const char *s = getenv("LEAKDIFF_DEPTH");
    uint64_t v;
    if (!s)
        return;
    if (lkd_config_parse_uint(s, 1, LKD_FMT_MAX_DEPTH, &v))
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

/* lkd_config_load - fills lkd_config from the environment; call once, guard held. */
void lkd_config_load(void)
{
    const char *s;
    load_output();
    load_depth();
    load_unwind();
    if ((s = getenv("LEAKDIFF_AT_EXIT")))
        lkd_config.at_exit = parse_bool("LEAKDIFF_AT_EXIT", s, true);
}
