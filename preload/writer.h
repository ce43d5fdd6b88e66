/*
 * writer - writes the tracker's state to <dir>/<exe>.<pid>.<seq>.<label>.snap.
 *
 * Copies the live table under its locks (a consistent cut: every live block exactly
 * once), then encodes and writes without locks: a temp file (O_EXCL, O_NOFOLLOW, 0600),
 * fsync, rename. Called with the guard set, never from a signal handler. Never calls
 * the tracked malloc.
 */
#ifndef LKD_WRITER_H
#define LKD_WRITER_H

#include <stdint.h>

#include "leakdiff/format.h"

/* Reads the facts that do not change (argv, cwd, start time). Guard held. */
void lkd_writer_init(void);
/* Writes one snapshot; returns 0 or -errno. flags: enum lkd_fmt_process_flag; totals: the
 * tracker's counters (live bytes and blocks are recomputed from the table copy). */
int lkd_writer_write(const char *label, uint32_t flags, const lkd_fmt_totals_t *totals);
/* Creates the output directory if missing (start-up; silent). */
void lkd_writer_prepare(void);
/* The write lock, held across fork (first in the lock order). */
void lkd_writer_lock(void);
void lkd_writer_unlock(void);
/* In a fork child: the sequence restarts, since the child is a new process. */
void lkd_writer_forked(void);

#endif
