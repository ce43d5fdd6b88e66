/*
 * config - LEAKDIFF_* environment variables, read once at start-up.
 *
 * A bad value gets one warning naming the variable, and the default is used.
 * Never read on a hot path: hooks use the parsed lkd_config.
 */
#ifndef LKD_CONFIG_H
#define LKD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#define LKD_DEFAULT_DEPTH 64

typedef struct lkd_config {
    char output[PATH_MAX]; /* LEAKDIFF_OUTPUT made absolute at start-up, default cwd */
    unsigned depth;        /* LEAKDIFF_DEPTH, 1..LKD_FMT_MAX_DEPTH, default 64 */
    bool at_exit;          /* LEAKDIFF_AT_EXIT, default true */
    int unwind;            /* LEAKDIFF_UNWIND: enum lkd_fmt_unwind, default libunwind */
    int signal;            /* LEAKDIFF_SIGNAL: 0 = none; default SIGRTMIN+6 */
    unsigned interval;     /* LEAKDIFF_INTERVAL seconds, 0 = off */
    bool start;            /* LEAKDIFF_START, default true (false: start paused) */
    bool children;         /* LEAKDIFF_CHILDREN, default true */
    bool reachability;     /* LEAKDIFF_REACHABILITY, default true: verdicts at exit */
    uint64_t sample;       /* LEAKDIFF_SAMPLE: mean bytes between samples; 0 = record all */
    uint64_t sample_seed;  /* LEAKDIFF_SAMPLE_SEED, when sample_seeded */
    bool sample_seeded;    /* LEAKDIFF_SAMPLE_SEED was given: reproducible sampling */
} lkd_config_t;

#define LKD_SAMPLE_MAX ((uint64_t)1 << 40) /* LEAKDIFF_SAMPLE up to 1T */

#define LKD_DEFAULT_SIGNAL_OFFSET 6 /* SIGRTMIN + 6: no common program or library uses it */

extern lkd_config_t lkd_config;

void lkd_config_load(void);

#endif
