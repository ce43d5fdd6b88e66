/*
 * control - snapshots on request: the signal (LEAKDIFF_SIGNAL), the interval timer
 * (LEAKDIFF_INTERVAL), and the writer thread that serves both.
 *
 * The signal handler only counts the request and wakes the writer with sem_post;
 * the writer thread, which blocks every signal, writes the snapshot. So a snapshot is never
 * written inside a signal handler or inside the program's malloc. Never calls the tracked
 * malloc (the writer thread runs with the guard set).
 */
#ifndef LKD_CONTROL_H
#define LKD_CONTROL_H

#include <signal.h>

/* Installs the handler (if the signal is still at its default disposition) and starts the
 * writer thread when a signal or an interval is configured. Call once, after init. */
void lkd_control_start(void);
/* The main thread is leaving through pthread_exit: from now on the writer ends the process
 * (exit(0), as glibc would) when it is the last thread left. */
void lkd_control_main_exited(void);
/* The program set signal sig's disposition (sigaction or signal succeeded; act is what it
 * set). When that replaces the shim's handler of the request signal, signal requests are
 * off from now on: one warning, and the writer thread is renamed so `leakdiff snap` knows. */
void lkd_control_signal_set(int sig, const struct sigaction *act);
/* The writer thread's id (0 when there is none): it blocks every signal and holds no
 * pointer into the program's heap, so the reachability scan neither stops nor scans it. */
pid_t lkd_control_writer_tid(void);
/* fork prepare handler: notes whether the forking thread is the main thread. */
void lkd_control_prepare_fork(void);
/* In a fork child: the writer thread did not survive the fork; start a new one. */
void lkd_control_forked(void);

#endif
