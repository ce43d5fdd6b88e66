/*
 * run - `leakdiff run`: runs a command under the shim and finds the snapshots its process
 * tree wrote.
 *
 * Paths in lkd_run_result_t are absolute and owned by it.
 * Process handling only (shim lookup, environment, fork/exec, waiting, signal forwarding,
 * snapshot discovery); the report on what was found is the caller's.
 */
#ifndef LKD_RUN_H
#define LKD_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "snap.h"

typedef struct lkd_run_opts {
    const char *output_dir; /* -o DIR; NULL: inherited LEAKDIFF_OUTPUT, else "." */
    char *const *argv;      /* CMD ARGS, NULL-terminated, argv[0] non-NULL */
    bool python;            /* --python: PYTHONMALLOC=malloc for CMD */
} lkd_run_opts_t;

typedef struct lkd_run_result {
    int status;       /* what `leakdiff run` exits with: CMD's status, 128+signal,
                         127 not found, 126 not executable */
    pid_t pid;        /* CMD's pid (0 when it could not be started) */
    int exec_errno;   /* errno of the failed exec, 0 when CMD started */
    int term_signal;  /* signal that killed CMD, 0 otherwise */
    char *dir;        /* absolute output directory (owned) */
    char **snapshots; /* exit snapshots of pid written during the run, oldest first */
    size_t snapshot_count;
    lkd_snap_list_t written; /* every snapshot written in dir during the run, by any
                                process of CMD's tree, any label, oldest first */
} lkd_run_result_t;

int lkd_run(const lkd_run_opts_t *opts, lkd_run_result_t *res, char *err, size_t errlen);
void lkd_run_result_free(lkd_run_result_t *res);
bool lkd_run_parse_name(const char *name, const char *label, pid_t *pid, unsigned *seq);
int lkd_run_find_shim(const char *self_exe, char **shim, char *err, size_t errlen);
bool lkd_run_is_python(const char *cmd);

#endif
