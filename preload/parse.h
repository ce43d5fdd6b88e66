/*
 * parse - strict parsers shared by the shim and the analyzer (see parse.c).
 */
#ifndef LKD_PARSE_H
#define LKD_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* The name of the shim's writer thread while the shim's handler owns the request signal,
 * in /proc/PID/task/TID/comm: `leakdiff snap` signals a process only when it sees it.
 * Otherwise (interval snapshots only, or the program took the signal over) the thread is
 * named LKD_WRITER_THREAD. At most 15 characters. */
#define LKD_LISTENER_THREAD "leakdiff-sig"
#define LKD_WRITER_THREAD "leakdiff"

/* Parses a decimal unsigned integer in [min, max]; false when s is not exactly that. */
bool lkd_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Parses a byte count: decimal digits with an optional binary suffix K, M, G or T (either
 * case; "512K" = 524288), in [0, max]. False when s is not exactly that or overflows. */
bool lkd_parse_size(const char *s, uint64_t max, uint64_t *out);
/* Parses a signal: a number, a name with or without "SIG" (USR1, RTMIN+3, ...), or "none"
 * (0). False when s is none of these or names a signal that cannot be caught. */
bool lkd_parse_signal(const char *s, int *out);
/* The table name of sig without "SIG" ("USR2"); NULL when it has none. */
const char *lkd_parse_signal_name(int sig);

#endif
