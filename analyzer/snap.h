/*
 * snap - `leakdiff snap PID`: asks a running traced process for a snapshot and waits for
 * the file; and the snapshot-file listings that `leakdiff run` shares.
 *
 * The decision whether a process may be signalled is pure (lkd_snap_decide on the texts of
 * its /proc files), so the unit tests cover every refusal without a process. The rule it
 * enforces: a signal is sent only to a process that has the shim mapped, has a request
 * signal configured and catches that signal; anything else is refused before any signal.
 */
#ifndef LKD_SNAP_H
#define LKD_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* Labels as the shim writes them into file names: at most this many characters. */
#define LKD_SNAP_LABEL_MAX 63
/* The shim's default request signal is SIGRTMIN + this (40 with glibc). */
#define LKD_SNAP_DEFAULT_SIGNAL_OFFSET 6

int lkd_snap_parse_signal(const char *s, int *sig);
void lkd_snap_signal_name(int sig, char out[16]);
const char *lkd_snap_environ_get(const char *env, size_t len, const char *name);
int lkd_snap_status_mask(const char *status, const char *field, unsigned long long *mask);
char lkd_snap_status_state(const char *status);
bool lkd_snap_maps_has_shim(const char *maps);
void lkd_snap_sanitize_label(const char *label, char out[LKD_SNAP_LABEL_MAX + 1]);
bool lkd_snap_parse_name(const char *name, pid_t *pid, unsigned *seq, const char **label,
                         size_t *label_len);

/* The /proc facts of a process that lkd_snap_decide judges (texts as read; NULL = could
 * not be read). */
typedef struct lkd_snap_proc {
    pid_t pid;
    const char *status;  /* /proc/PID/status */
    const char *maps;    /* /proc/PID/maps */
    const char *environ; /* /proc/PID/environ: NUL-separated NAME=VALUE */
    size_t environ_len;
    const char *cwd;     /* readlink /proc/PID/cwd */
    const char *threads; /* its threads' names (/proc/PID/task/TID/comm), one per line */
} lkd_snap_proc_t;

/* What to do with a process lkd_snap_decide accepted. */
typedef struct lkd_snap_target {
    int signal; /* the request signal it catches */
    char *dir;  /* absolute output directory (malloc'd) */
} lkd_snap_target_t;

int lkd_snap_decide(const lkd_snap_proc_t *p, lkd_snap_target_t *t, char *err, size_t errlen);

/* One snapshot file in a directory. */
typedef struct lkd_snap_file {
    char *name; /* file name (owned) */
    pid_t pid;
    unsigned seq;
    char *label; /* owned */
    ino_t ino;
    struct timespec mtime;
} lkd_snap_file_t;

typedef struct lkd_snap_list {
    lkd_snap_file_t *v;
    size_t n;
} lkd_snap_list_t;

int lkd_snap_list_dir(const char *dir, pid_t pid, lkd_snap_list_t *out);
void lkd_snap_list_sort_by_name(lkd_snap_list_t *l);
void lkd_snap_list_sort_by_time(lkd_snap_list_t *l);
bool lkd_snap_list_unchanged(const lkd_snap_list_t *before, const lkd_snap_file_t *f);
void lkd_snap_list_free(lkd_snap_list_t *l);

/* `leakdiff snap` options. */
typedef struct lkd_snap_opts {
    pid_t pid;
    const char *label; /* NULL: the shim's own "signal" label */
    double timeout;    /* seconds to wait for the file */
} lkd_snap_opts_t;

int lkd_snap_request(const lkd_snap_opts_t *o, char **path, char *err, size_t errlen);

#endif
