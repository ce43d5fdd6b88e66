/*
 * snap - `leakdiff snap PID`: asks a running traced process for a snapshot, waits for the
 * new file and returns its path; plus the listing of snapshot files in a directory, which
 * `leakdiff run` uses too.
 *
 * The request protocol is the shim's (DESIGN.md §3, preload/control.c): the process's
 * request signal (LEAKDIFF_SIGNAL from its environment, default SIGRTMIN+6) makes its
 * writer thread write "<exe>.<pid>.<seq>.signal.snap" into its output directory, or, when
 * "<dir>/.leakdiff-request.<pid>" exists, a snapshot labelled with that file's first line
 * (the shim removes the file). Files appear complete: the shim renames them into place.
 *
 * Invariant: no signal is ever sent to a process unless lkd_snap_decide accepted it: the
 * shim is mapped in it, its request signal is not "none", /proc/PID/status says the
 * signal is caught, and the shim's writer thread is named LKD_LISTENER_THREAD, which the
 * shim only does while its own handler owns the signal (a program that sets its own
 * handler later makes the shim rename it). An uncaught real-time signal terminates a process, so
 * every doubt is a refusal. The signal goes through a pidfd opened before the checks, so a pid
 * reused meanwhile cannot receive it.
 *
 * The parsers (signal names, environ, status masks, file names) are pure and mirror the
 * shim's (preload/config.c); they are what the unit tests call.
 */
#include "snap.h"

#include "../preload/parse.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- parsers ------------------------------------------------------------------------ */

/*
 * Parses a LEAKDIFF_SIGNAL value exactly as the shim does: "none" (*sig = 0), a number
 * 1..SIGRTMAX, or a name with or without "SIG" (USR2, SIGUSR2, RTMIN+3, SIGRTMAX-1).
 * Signals that cannot be caught or that faults raise are refused. Returns 0 or -EINVAL.
 */
int lkd_snap_parse_signal(const char *s, int *sig)
{
    return s && lkd_parse_signal(s, sig) ? 0 : -EINVAL;
}

/* Writes a readable name of sig into out: "SIGUSR2", "SIGRTMIN+6", or "signal 65". */
void lkd_snap_signal_name(int sig, char out[16])
{
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        snprintf(out, 16, "SIGRTMIN+%d", sig - SIGRTMIN);
        return;
    }
    const char *name = lkd_parse_signal_name(sig);
    if (name)
        snprintf(out, 16, "SIG%s", name);
    else
        snprintf(out, 16, "signal %d", sig);
}

/*
 * The value of NAME in an environment block as /proc/PID/environ holds it ("A=1\0B=2\0",
 * the last entry possibly unterminated), or NULL when absent. env[len] must be '\0', so a
 * returned value is always terminated. The first definition wins, as with getenv.
 */
const char *lkd_snap_environ_get(const char *env, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; nl && i < len;) {
        const char *entry = env + i;
        size_t n = strnlen(entry, len - i);
        if (n > nl && !strncmp(entry, name, nl) && entry[nl] == '=')
            return entry + nl + 1;
        i += n + 1;
    }
    return NULL;
}

/* The line of /proc/PID/status that starts with "field:", or NULL. */
static const char *status_line(const char *status, const char *field)
{
    size_t fl = strlen(field);
    for (const char *p = status; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, field, fl) && p[fl] == ':')
            return p + fl + 1;
    return NULL;
}

/*
 * Reads a signal mask line of /proc/PID/status ("SigCgt:\t0000000000004a02"): bit N-1 is
 * signal N. Returns 0, or -EINVAL when the field is missing or not 1-16 hex digits.
 */
int lkd_snap_status_mask(const char *status, const char *field, unsigned long long *mask)
{
    const char *p = status ? status_line(status, field) : NULL;
    unsigned long long v = 0;
    int digits = 0;
    if (!p)
        return -EINVAL;
    p += strspn(p, " \t");
    for (; *p && *p != '\n'; p++, digits++) {
        int d = *p >= '0' && *p <= '9'   ? *p - '0'
                : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
                                         : -1;
        if (d < 0 || digits == 16)
            return -EINVAL;
        v = v << 4 | (unsigned long long)d;
    }
    if (!digits)
        return -EINVAL;
    *mask = v;
    return 0;
}

/* The state letter of /proc/PID/status ("State:\tS (sleeping)" -> 'S'), or 0. */
char lkd_snap_status_state(const char *status)
{
    const char *p = status ? status_line(status, "State") : NULL;
    if (!p)
        return 0;
    p += strspn(p, " \t");
    return *p && *p != '\n' ? *p : 0;
}

/* True when a /proc/PID/maps text maps a file named libleakdiff.so (also "(deleted)"). */
bool lkd_snap_maps_has_shim(const char *maps)
{
    static const char shim[] = "/libleakdiff.so";
    for (const char *p = maps; p && (p = strstr(p, shim)); p += sizeof shim - 1) {
        char next = p[sizeof shim - 1];
        if (next == '\0' || next == '\n' || next == ' ')
            return true;
    }
    return false;
}

/*
 * The label as the shim puts it into a file name (preload/writer.c): every character but
 * [A-Za-z0-9._-] becomes '_', at most LKD_SNAP_LABEL_MAX characters; NULL, "", "." and ".."
 * become "snapshot"; a leading '.' becomes '_' (no hidden files, no empty name fields).
 */
void lkd_snap_sanitize_label(const char *label, char out[LKD_SNAP_LABEL_MAX + 1])
{
    size_t n = 0;
    for (; label && label[n] && n < LKD_SNAP_LABEL_MAX; n++) {
        char c = label[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[n] = ok ? c : '_';
    }
    out[n] = '\0';
    if (n == 0 || !strcmp(out, ".") || !strcmp(out, ".."))
        strcpy(out, "snapshot");
    if (out[0] == '.')
        out[0] = '_';
}

/* True when [s, end) is 1+ digits whose value fits max; the value in *out. */
static bool digits_value(const char *s, const char *end, unsigned long long max,
                         unsigned long long *out)
{
    unsigned long long v = 0;
    if (s >= end)
        return false;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || v > (ULLONG_MAX - 9) / 10)
            return false;
        v = v * 10 + (unsigned long long)(*s - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* Start of the run of digits that ends at end (exclusive) and follows a '.', or NULL. */
static const char *dotted_digits(const char *name, const char *end)
{
    const char *p = end;
    while (p > name && p[-1] >= '0' && p[-1] <= '9')
        p--;
    return p < end && p > name + 1 && p[-1] == '.' ? p : NULL;
}

/*
 * Parses a snapshot file name "<exe>.<pid>.<seq>.<label>.snap". The exe and the label may
 * both contain dots; of the possible readings the one with the shortest label is taken
 * (labels rarely hold dots, exe names often do: "python3.11"). Sets *pid, *seq and the
 * label as a span of name. Returns false for anything else (temporary files included).
 */
bool lkd_snap_parse_name(const char *name, pid_t *pid, unsigned *seq, const char **label,
                         size_t *label_len)
{
    size_t n = strlen(name);
    if (n < 5 || strcmp(name + n - 5, ".snap") != 0)
        return false;
    const char *end = name + n - 5; /* end of the label */
    for (const char *dot = end - 1; dot > name; dot--) {
        if (*dot != '.' || dot + 1 == end)
            continue;
        const char *s = dotted_digits(name, dot);
        const char *p = s ? dotted_digits(name, s - 1) : NULL;
        unsigned long long sv, pv;
        if (!p || !digits_value(s, dot, UINT_MAX, &sv) || !digits_value(p, s - 1, INT_MAX, &pv) ||
            pv == 0)
            continue;
        *pid = (pid_t)pv;
        *seq = (unsigned)sv;
        *label = dot + 1;
        *label_len = (size_t)(end - dot - 1);
        return true;
    }
    return false;
}

/* ---- the decision --------------------------------------------------------------------- */

/* dir (LEAKDIFF_OUTPUT's value, NULL when unset) made absolute as the shim does at start-up:
 * relative to the process's working directory (the current one: the best /proc offers). */
static int output_dir(const lkd_snap_proc_t *p, const char *dir, char **out, char *err,
                      size_t errlen)
{
    if (!dir || !*dir || strlen(dir) >= PATH_MAX - 64)
        dir = ".";
    if (dir[0] == '/')
        return (*out = strdup(dir)) ? 0 : -ENOMEM;
    if (!p->cwd) {
        snprintf(err, errlen,
                 "PID %d: cannot read /proc/%d/cwd to locate its output directory %s "
                 "(not ours?)",
                 (int)p->pid, (int)p->pid, dir);
        return -EPERM;
    }
    const char *sep = strcmp(p->cwd, "/") ? "/" : "";
    int rc =
        strcmp(dir, ".") ? asprintf(out, "%s%s%s", p->cwd, sep, dir) : asprintf(out, "%s", p->cwd);
    return rc < 0 ? (*out = NULL, -ENOMEM) : 0;
}

/* True when text (lines) has a line equal to line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *s = text; s && *s;) {
        const char *end = strchr(s, '\n');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == n && !memcmp(s, line, n))
            return true;
        s = end ? end + 1 : s + len;
    }
    return false;
}

/*
 * Decides from a process's /proc facts whether it may be asked for a snapshot, and how.
 * Returns 0 with *t filled (t->dir malloc'd), or -errno with one line in err: -ESRCH gone
 * or a zombie, -EPERM facts unreadable (not ours), -ENOTSUP not traced, request signal
 * "none", the signal not caught (sending it could kill the process) or caught by the
 * program's own handler, -ENOMEM.
 */
int lkd_snap_decide(const lkd_snap_proc_t *p, lkd_snap_target_t *t, char *err, size_t errlen)
{
    int pid = (int)p->pid, sig = SIGRTMIN + LKD_SNAP_DEFAULT_SIGNAL_OFFSET;
    char state = lkd_snap_status_state(p->status);
    char name[16];
    unsigned long long caught;
    t->signal = 0;
    t->dir = NULL;
    if (state == 'Z' || state == 'X') {
        snprintf(err, errlen, "PID %d has exited (zombie); not signalling it", pid);
        return -ESRCH;
    }
    if (!p->maps || !p->environ) {
        snprintf(err, errlen, "PID %d: cannot read /proc/%d/%s (not ours?); not signalling it", pid,
                 pid, p->maps ? "environ" : "maps");
        return -EPERM;
    }
    if (!lkd_snap_maps_has_shim(p->maps)) {
        snprintf(err, errlen,
                 "PID %d is not traced by leakdiff (no libleakdiff.so in it); not signalling it",
                 pid);
        return -ENOTSUP;
    }
    const char *value = lkd_snap_environ_get(p->environ, p->environ_len, "LEAKDIFF_SIGNAL");
    if (value && lkd_snap_parse_signal(value, &sig) == 0 && sig == 0) {
        snprintf(err, errlen,
                 "PID %d has LEAKDIFF_SIGNAL=none: it takes no snapshot requests by signal "
                 "(it can still call leakdiff_snapshot()); not signalling it",
                 pid);
        return -ENOTSUP;
    }
    if (value && sig == 0) /* a bad value: the shim warned and uses its default */
        sig = SIGRTMIN + LKD_SNAP_DEFAULT_SIGNAL_OFFSET;
    lkd_snap_signal_name(sig, name);
    if (lkd_snap_status_mask(p->status, "SigCgt", &caught) || !(caught >> (sig - 1) & 1)) {
        snprintf(err, errlen,
                 "PID %d does not handle signal %d (%s): the shim did not install its handler "
                 "(the program had already set that signal's disposition, or the shim is inert "
                 "in it), and the signal would kill it; not signalling it",
                 pid, sig, name);
        return -ENOTSUP;
    }
    if (!has_line(p->threads, LKD_LISTENER_THREAD)) {
        snprintf(err, errlen,
                 "PID %d catches signal %d (%s) with a handler of its own, not leakdiff's (no "
                 "thread named %s in it); not signalling it",
                 pid, sig, name, LKD_LISTENER_THREAD);
        return -ENOTSUP;
    }
    int rc = output_dir(p, lkd_snap_environ_get(p->environ, p->environ_len, "LEAKDIFF_OUTPUT"),
                        &t->dir, err, errlen);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (!rc)
        t->signal = sig;
    return rc;
}

/* ---- listings of snapshot files --------------------------------------------------------- */

static int list_add(lkd_snap_list_t *l, const char *name, pid_t pid, unsigned seq,
                    const char *label, size_t label_len, const struct stat *st)
{
    lkd_snap_file_t *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    l->v = v;
    v[l->n] = (lkd_snap_file_t){strdup(name), pid,        seq, strndup(label, label_len),
                                st->st_ino,   st->st_mtim};
    if (!v[l->n].name || !v[l->n].label) {
        free(v[l->n].name);
        free(v[l->n].label);
        return -ENOMEM;
    }
    l->n++;
    return 0;
}

/*
 * Lists the snapshot files (regular files with snapshot names) in dir into *out, those of
 * pid only unless pid is 0, in directory order. A directory that cannot be read lists
 * nothing. Returns 0 or -ENOMEM; free with lkd_snap_list_free.
 */
int lkd_snap_list_dir(const char *dir, pid_t pid, lkd_snap_list_t *out)
{
    DIR *d = opendir(dir);
    int rc = 0;
    out->v = NULL;
    out->n = 0;
    if (!d)
        return 0;
    for (struct dirent *de; !rc && (de = readdir(d));) {
        pid_t p;
        unsigned seq;
        const char *label;
        size_t ll;
        struct stat st;
        if (lkd_snap_parse_name(de->d_name, &p, &seq, &label, &ll) && (!pid || p == pid) &&
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            rc = list_add(out, de->d_name, p, seq, label, ll, &st);
    }
    closedir(d);
    return rc;
}

static int cmp_name(const void *pa, const void *pb)
{
    return strcmp(((const lkd_snap_file_t *)pa)->name, ((const lkd_snap_file_t *)pb)->name);
}

static int cmp_time(const void *pa, const void *pb)
{
    const lkd_snap_file_t *a = pa, *b = pb;
    if (a->mtime.tv_sec != b->mtime.tv_sec)
        return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
    if (a->mtime.tv_nsec != b->mtime.tv_nsec)
        return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
    if (a->pid != b->pid)
        return a->pid < b->pid ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* Sorts by name (what lkd_snap_list_unchanged needs of its "before" list). */
void lkd_snap_list_sort_by_name(lkd_snap_list_t *l)
{
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, cmp_name);
}

/* Sorts oldest first (modification time, then pid and sequence). */
void lkd_snap_list_sort_by_time(lkd_snap_list_t *l)
{
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, cmp_time);
}

/* True when f was in before (sorted by name) as the same file: same name, inode and mtime.
 * The shim renames a fresh file into place, so a rewritten name changes inode or mtime. */
bool lkd_snap_list_unchanged(const lkd_snap_list_t *before, const lkd_snap_file_t *f)
{
    const lkd_snap_file_t *o =
        before->n ? bsearch(f, before->v, before->n, sizeof *f, cmp_name) : NULL;
    return o && o->ino == f->ino && o->mtime.tv_sec == f->mtime.tv_sec &&
           o->mtime.tv_nsec == f->mtime.tv_nsec;
}

/* Frees what l owns and empties it. */
void lkd_snap_list_free(lkd_snap_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].label);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* ---- the request ------------------------------------------------------------------------ */

/* Reads a whole (/proc) file into a malloc'd, NUL-terminated *buf (at most 256 MiB).
 * Returns 0 or -errno. */
static int read_all(const char *path, char **buf, size_t *len)
{
    enum { MAX = 256 << 20 };
    size_t cap = 8192, n = 0;
    char *b = malloc(cap);
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    *buf = NULL;
    if (!b || fd < 0) {
        rc = !b ? -ENOMEM : -errno;
        goto out;
    }
    for (;;) {
        if (n + 1 == cap) {
            char *nb = cap < MAX ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                rc = cap < MAX ? -ENOMEM : -EFBIG;
                goto out;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, b + n, cap - n - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(b);
    return rc;
}

/* The names of pid's threads, one per line (malloc'd; NULL when unreadable). */
static char *thread_names(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return NULL;
    char *all = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&all, &size);
    struct dirent *e;
    while (out && (e = readdir(d))) {
        char *name = NULL;
        size_t len;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%.20s/comm", (int)pid, e->d_name);
        if (read_all(path, &name, &len) == 0)
            fputs(name, out); /* comm ends with a newline */
        free(name);
    }
    closedir(d);
    if (out && fclose(out) != 0) {
        free(all);
        all = NULL;
    }
    return all;
}

/* The /proc facts of pid, each NULL when unreadable; free with proc_free. */
typedef struct proc_texts {
    lkd_snap_proc_t p;
    char *status, *maps, *environ, *cwd, *threads;
    int maps_errno; /* why maps could not be read */
} proc_texts_t;

static void proc_read(proc_texts_t *t, pid_t pid)
{
    char path[64], cwd[PATH_MAX];
    size_t len = 0;
    memset(t, 0, sizeof *t);
    t->p.pid = pid;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (read_all(path, &t->status, &len))
        t->status = NULL;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    t->maps_errno = -read_all(path, &t->maps, &len);
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    if (read_all(path, &t->environ, &t->p.environ_len))
        t->environ = NULL;
    snprintf(path, sizeof path, "/proc/%d/cwd", (int)pid);
    ssize_t n = readlink(path, cwd, sizeof cwd - 1);
    if (n > 0) {
        cwd[n] = '\0';
        t->cwd = strdup(cwd);
    }
    t->threads = thread_names(pid);
    t->p.threads = t->threads;
    t->p.status = t->status;
    t->p.maps = t->maps;
    t->p.environ = t->environ;
    t->p.cwd = t->cwd;
}

static void proc_free(proc_texts_t *t)
{
    free(t->status);
    free(t->maps);
    free(t->environ);
    free(t->cwd);
    free(t->threads);
}

/* Checks that pid exists and may be signalled; fills *t. Returns 0 or -errno + err. */
static int check_process(pid_t pid, lkd_snap_target_t *t, char *err, size_t errlen)
{
    char path[64];
    struct stat st;
    proc_texts_t texts;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "PID %d: no such process", (int)pid);
        return -ESRCH;
    }
    proc_read(&texts, pid);
    int rc;
    if (!texts.status && stat(path, &st) < 0) {
        snprintf(err, errlen, "PID %d: no such process", (int)pid);
        rc = -ESRCH;
    } else if (!texts.maps && (texts.maps_errno == EACCES || texts.maps_errno == EPERM)) {
        snprintf(err, errlen,
                 "PID %d is not ours: cannot read /proc/%d/maps (%s); only its user or root may "
                 "ask it for a snapshot; not signalling it",
                 (int)pid, (int)pid, strerror(texts.maps_errno));
        rc = -EPERM;
    } else {
        rc = lkd_snap_decide(&texts.p, t, err, errlen);
    }
    proc_free(&texts);
    return rc;
}

/* Writes buf to a new file path (mode 0600). Returns 0 or -errno; no file is left on error. */
static int write_new_file(const char *path, const char *buf, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -errno;
    int rc = write(fd, buf, n) == (ssize_t)n ? 0 : errno ? -errno : -EIO;
    if (close(fd) < 0 && !rc)
        rc = -errno;
    if (rc)
        unlink(path);
    return rc;
}

/* Writes the label into dir/.leakdiff-request.PID through a temporary file and a rename,
 * so the shim never reads half of it. *path gets the request file's name (malloc'd). */
static int write_request(const char *dir, pid_t pid, const char *label, char **path, char *err,
                         size_t errlen)
{
    char line[LKD_SNAP_LABEL_MAX + 2], *tmp = NULL;
    lkd_snap_sanitize_label(label, line);
    size_t n = strlen(line);
    line[n++] = '\n'; /* the shim reads the first line */
    if (asprintf(path, "%s/.leakdiff-request.%d", dir, (int)pid) < 0)
        *path = NULL;
    if (!*path || asprintf(&tmp, "%s.tmp.%d", *path, (int)getpid()) < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = write_new_file(tmp, line, n);
    if (!rc && rename(tmp, *path) < 0) {
        rc = -errno;
        unlink(tmp);
    }
    if (rc)
        snprintf(err, errlen, "cannot write the label request %s: %s", *path, strerror(-rc));
    free(tmp);
    return rc;
}

/* Sends sig to the process through pidfd (or kill(2) when the kernel has no pidfds). */
static int send_request(int pidfd, pid_t pid, int sig, char *err, size_t errlen)
{
    int rc = pidfd >= 0 ? pidfd_send_signal(pidfd, sig, NULL, 0) : kill(pid, sig);
    if (rc == 0)
        return 0;
    rc = -errno;
    if (rc == -ESRCH)
        snprintf(err, errlen, "PID %d exited before it could be asked for a snapshot", (int)pid);
    else
        snprintf(err, errlen, "cannot send signal %d to PID %d: %s", sig, (int)pid, strerror(-rc));
    return rc;
}

/* True once the process has exited (its pidfd is readable, or it is gone). */
static bool process_gone(int pidfd, pid_t pid)
{
    if (pidfd >= 0) {
        struct pollfd pfd = {pidfd, POLLIN, 0};
        return poll(&pfd, 1, 0) > 0;
    }
    return kill(pid, 0) < 0 && errno == ESRCH;
}

/* The first file in dir of pid labelled label that is not in before; *path malloc'd. */
static int find_new(const char *dir, pid_t pid, const char *label, const lkd_snap_list_t *before,
                    char **path)
{
    lkd_snap_list_t now;
    int rc = lkd_snap_list_dir(dir, pid, &now);
    *path = NULL;
    lkd_snap_list_sort_by_time(&now);
    for (size_t i = 0; !rc && i < now.n && !*path; i++)
        if (!strcmp(now.v[i].label, label) && !lkd_snap_list_unchanged(before, &now.v[i]) &&
            asprintf(path, "%s/%s", dir, now.v[i].name) < 0)
            rc = -ENOMEM, *path = NULL;
    lkd_snap_list_free(&now);
    return rc;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls dir every 20 ms until the new snapshot appears, the process exits or time is up. */
static int wait_for_file(const lkd_snap_opts_t *o, int pidfd, const lkd_snap_target_t *t,
                         const lkd_snap_list_t *before, char **path, char *err, size_t errlen)
{
    char label[LKD_SNAP_LABEL_MAX + 1];
    double deadline = now_seconds() + o->timeout;
    lkd_snap_sanitize_label(o->label ? o->label : "signal", label);
    for (;;) {
        bool gone = process_gone(pidfd, o->pid); /* before the look: no file is missed */
        int rc = find_new(t->dir, o->pid, label, before, path);
        if (rc || *path)
            return rc;
        if (gone) {
            snprintf(err, errlen, "PID %d exited before it wrote the snapshot", (int)o->pid);
            return -ECHILD;
        }
        if (now_seconds() >= deadline)
            break;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    char name[16];
    lkd_snap_signal_name(t->signal, name);
    snprintf(err, errlen,
             "no snapshot labelled %s from PID %d in %s after %g s (sent signal %d, %s); the "
             "process may be stopped or busy, handle that signal itself, or have changed "
             "directory since it started with a relative LEAKDIFF_OUTPUT",
             label, (int)o->pid, t->dir, o->timeout, t->signal, name);
    return -ETIMEDOUT;
}

/*
 * `leakdiff snap`: checks that o->pid is a traced process that catches its request signal,
 * writes the label request (with o->label), signals it and waits for the new snapshot.
 * Returns 0 with the snapshot's path in *path (malloc'd), or -errno with one line in err:
 * -ESRCH gone, -EPERM not ours, -ENOTSUP refused (see lkd_snap_decide; no signal was sent),
 * -ETIMEDOUT no file in time, -ECHILD the process exited after the signal without writing
 * it, -ENOMEM.
 */
int lkd_snap_request(const lkd_snap_opts_t *o, char **path, char *err, size_t errlen)
{
    lkd_snap_target_t t = {0, NULL};
    lkd_snap_list_t before = {NULL, 0};
    char *request = NULL;
    int pidfd = pidfd_open(o->pid, 0), rc;
    *path = NULL;
    err[0] = '\0';
    if (pidfd < 0 && errno == ESRCH) {
        snprintf(err, errlen, "PID %d: no such process", (int)o->pid);
        return -ESRCH;
    }
    if ((rc = check_process(o->pid, &t, err, errlen)))
        goto out;
    if ((rc = lkd_snap_list_dir(t.dir, o->pid, &before))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    lkd_snap_list_sort_by_name(&before);
    if (o->label && (rc = write_request(t.dir, o->pid, o->label, &request, err, errlen)))
        goto out;
    if ((rc = send_request(pidfd, o->pid, t.signal, err, errlen)))
        goto out;
    rc = wait_for_file(o, pidfd, &t, &before, path, err, errlen);
out:
    if (rc && request)
        unlink(request); /* not consumed: it must not label a later snapshot */
    if (rc == -ENOMEM && !err[0])
        snprintf(err, errlen, "out of memory");
    free(request);
    lkd_snap_list_free(&before);
    free(t.dir);
    if (pidfd >= 0)
        close(pidfd);
    return rc;
}
