/*
 * run - `leakdiff run`: starts CMD with the shim preloaded, waits, finds its exit snapshot.
 *
 * Like a shell: CMD not found exits 127, not executable 126 (the child reports a failed
 * exec through a close-on-exec pipe), killed by a signal 128+N. While CMD runs, SIGINT,
 * SIGTERM and SIGHUP sent to leakdiff with kill(2) are forwarded to it; signals from the
 * terminal are not, since CMD shares our process group and already got them. Signals that
 * were ignored when leakdiff started stay ignored, for leakdiff and for CMD.
 *
 * The signal handler only calls kill(2) (async-signal-safe) and never signals before the
 * child's pid is known (child_pid > 0; fork happens with those signals blocked).
 */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHIM_NAME "libleakdiff.so"

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP};
#define FORWARDED_COUNT (sizeof forwarded / sizeof forwarded[0])

/* CMD's pid while leakdiff waits for it; 0 before fork and in the child. */
static volatile sig_atomic_t child_pid;

static void forward_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    pid_t pid = child_pid;
    if (pid > 0 && si->si_code != SI_KERNEL)
        kill(pid, sig);
}

/* Installs forward_signal for each forwarded signal that is not ignored; saves the old
 * dispositions in saved[] (restored in the child before exec and after the wait). */
static void install_forwarding(struct sigaction saved[FORWARDED_COUNT])
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = forward_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    /* An inherited SIG_IGN for SIGCHLD would make the kernel reap CMD behind waitpid. */
    signal(SIGCHLD, SIG_DFL);
    for (size_t i = 0; i < FORWARDED_COUNT; i++) {
        sigaction(forwarded[i], NULL, &saved[i]);
        if (saved[i].sa_handler != SIG_IGN)
            sigaction(forwarded[i], &sa, NULL);
    }
}

static void restore_signals(const struct sigaction saved[FORWARDED_COUNT])
{
    for (size_t i = 0; i < FORWARDED_COUNT; i++)
        sigaction(forwarded[i], &saved[i], NULL);
}

/*
 * Finds the shim: $LEAKDIFF_PRELOAD when set, else self_exe's directory (build tree), else
 * ../lib/leakdiff/ from there (installed tree). *shim gets a malloc'd absolute path.
 * Returns 0, or -ENOENT with a message in err naming the places looked at.
 */
int lkd_run_find_shim(const char *self_exe, char **shim, char *err, size_t errlen)
{
    const char *env = getenv("LEAKDIFF_PRELOAD");
    *shim = NULL;
    if (env && *env) {
        if (access(env, R_OK) == 0 && (*shim = realpath(env, NULL)))
            return 0;
        snprintf(err, errlen, "LEAKDIFF_PRELOAD=%s: %s", env, strerror(errno));
        return -ENOENT;
    }
    const char *slash = strrchr(self_exe, '/');
    int dirlen = slash ? (int)(slash - self_exe) : 1;
    const char *dir = slash ? self_exe : ".";
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%.*s/" SHIM_NAME, dirlen, dir);
    snprintf(b, sizeof b, "%.*s/../lib/leakdiff/" SHIM_NAME, dirlen, dir);
    if ((access(a, R_OK) == 0 && (*shim = realpath(a, NULL))) ||
        (access(b, R_OK) == 0 && (*shim = realpath(b, NULL))))
        return 0;
    snprintf(err, errlen, "cannot find " SHIM_NAME " (looked for %s and %s; set LEAKDIFF_PRELOAD)",
             a, b);
    return -ENOENT;
}

/* mkdir -p: creates dir and its missing parents. Returns 0 or -errno. */
static int make_dirs(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    struct stat st;
    if (mkdir(path, 0777) < 0 && errno != EEXIST)
        return -errno;
    if (stat(path, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/*
 * Picks the output directory (given, else $LEAKDIFF_OUTPUT, else "."), creates it, and
 * makes it absolute (CMD may chdir before it exits). A directory that cannot be created
 * only gets a warning: CMD runs anyway, without snapshots. *abs is malloc'd.
 */
static int output_dir(const char *given, char **abs)
{
    const char *env = getenv("LEAKDIFF_OUTPUT");
    const char *dir = given ? given : env && *env ? env : ".";
    int rc = make_dirs(dir);
    if (rc)
        fprintf(stderr, "leakdiff: warning: cannot create output directory %s: %s\n", dir,
                strerror(-rc));
    if ((*abs = realpath(dir, NULL)))
        return 0;
    char cwd[PATH_MAX];
    if (dir[0] == '/' || !getcwd(cwd, sizeof cwd))
        *abs = strdup(dir);
    else if (asprintf(abs, "%s/%s", cwd, dir) < 0)
        *abs = NULL;
    return *abs ? 0 : -ENOMEM;
}

/* Sets LD_PRELOAD (shim first, before any existing value) and LEAKDIFF_OUTPUT. */
static int set_env(const char *shim, const char *dir, char *err, size_t errlen)
{
    if (strpbrk(shim, ": \t")) {
        snprintf(err, errlen, "%s: LD_PRELOAD cannot name a path with ':' or spaces", shim);
        return -EINVAL;
    }
    const char *old = getenv("LD_PRELOAD");
    char *value = NULL;
    if (old && *old ? asprintf(&value, "%s:%s", shim, old) < 0 : !(value = strdup(shim))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = setenv("LD_PRELOAD", value, 1) || setenv("LEAKDIFF_OUTPUT", dir, 1) ? -errno : 0;
    if (rc)
        snprintf(err, errlen, "cannot set the environment: %s", strerror(-rc));
    free(value);
    return rc;
}

/* In the child: old signal state back, exec; on failure tell the parent errno via fd. */
static _Noreturn void child_exec(char *const *argv, int fd, const sigset_t *mask,
                                 const struct sigaction saved[FORWARDED_COUNT])
{
    restore_signals(saved);
    sigprocmask(SIG_SETMASK, mask, NULL);
    execvp(argv[0], argv);
    int e = errno;
    while (write(fd, &e, sizeof e) < 0 && errno == EINTR) {
    }
    _exit(127);
}

/* errno the child sent after a failed exec, or 0 when the pipe closed (exec worked). */
static int read_exec_errno(int fd)
{
    int e = 0;
    ssize_t n;
    while ((n = read(fd, &e, sizeof e)) < 0 && errno == EINTR) {
    }
    return n == (ssize_t)sizeof e ? e : 0;
}

/* Forks and execs argv; *pid is the child, *exec_errno non-zero when exec failed. */
static int spawn(char *const *argv, const struct sigaction saved[FORWARDED_COUNT], pid_t *pid,
                 int *exec_errno)
{
    int fds[2];
    sigset_t block, old;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    sigemptyset(&block);
    for (size_t i = 0; i < FORWARDED_COUNT; i++)
        sigaddset(&block, forwarded[i]);
    sigprocmask(SIG_BLOCK, &block, &old);
    pid_t p = fork();
    if (p == 0)
        child_exec(argv, fds[1], &old, saved);
    int fork_errno = errno;
    if (p > 0)
        child_pid = p;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(fds[1]);
    if (p < 0) {
        close(fds[0]);
        return -fork_errno;
    }
    *exec_errno = read_exec_errno(fds[0]);
    close(fds[0]);
    *pid = p;
    return 0;
}

/* Waits for pid and returns the shell-style status: code, or 128+signal. */
static int wait_status(pid_t pid, int *term_signal)
{
    int ws;
    while (waitpid(pid, &ws, 0) < 0) {
        if (errno != EINTR)
            return 125;
    }
    child_pid = 0;
    if (WIFSIGNALED(ws)) {
        *term_signal = WTERMSIG(ws);
        return 128 + WTERMSIG(ws);
    }
    return WEXITSTATUS(ws);
}

/* Parses digits between name[0] and end into *out; false when none or on overflow. */
static bool parse_digits(const char *s, const char *end, unsigned long *out)
{
    unsigned long v = 0;
    if (s == end)
        return false;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || v > (ULONG_MAX - 9) / 10)
            return false;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    *out = v;
    return true;
}

/* Start of the ".<digits>" field that ends at end, or NULL. */
static const char *digit_field(const char *name, const char *end)
{
    const char *p = end;
    while (p > name && p[-1] >= '0' && p[-1] <= '9')
        p--;
    return p < end && p > name && p[-1] == '.' ? p : NULL;
}

/*
 * True when name is a snapshot file name "<exe>.<pid>.<seq>.<label>.snap" with the given
 * label; sets *pid and *seq. The exe part may itself contain dots.
 */
bool lkd_run_parse_name(const char *name, const char *label, pid_t *pid, unsigned *seq)
{
    size_t n = strlen(name), ll = strlen(label);
    if (n < ll + 6 || strcmp(name + n - 5, ".snap") != 0)
        return false;
    const char *lab = name + n - 5 - ll;
    if (strncmp(lab, label, ll) != 0 || lab == name || lab[-1] != '.')
        return false;
    const char *s = digit_field(name, lab - 1);
    const char *p = s ? digit_field(name, s - 1) : NULL;
    unsigned long sv, pv;
    if (!p || p - 1 == name || !parse_digits(s, lab - 1, &sv) || !parse_digits(p, s - 1, &pv))
        return false;
    if (sv > UINT_MAX || pv > INT_MAX)
        return false;
    *pid = (pid_t)pv;
    *seq = (unsigned)sv;
    return true;
}

/* One exit snapshot file in the output directory. */
typedef struct found {
    char *name; /* owned */
    pid_t pid;
    ino_t ino;
    struct timespec mtime;
} found_t;

typedef struct found_list {
    found_t *v;
    size_t n;
} found_list_t;

static void found_free(found_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int found_add(found_list_t *l, const char *name, pid_t pid, const struct stat *st)
{
    found_t *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    l->v = v;
    v[l->n] = (found_t){strdup(name), pid, st->st_ino, st->st_mtim};
    return v[l->n++].name ? 0 : -ENOMEM;
}

/* Lists the exit snapshots (regular files) in dir; none when dir cannot be read. */
static int list_exit_snapshots(const char *dir, found_list_t *l)
{
    DIR *d = opendir(dir);
    int rc = 0;
    if (!d)
        return 0;
    for (struct dirent *de; !rc && (de = readdir(d));) {
        pid_t pid;
        unsigned seq;
        struct stat st;
        if (lkd_run_parse_name(de->d_name, "exit", &pid, &seq) &&
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            rc = found_add(l, de->d_name, pid, &st);
    }
    closedir(d);
    return rc;
}

static int cmp_name(const void *pa, const void *pb)
{
    return strcmp(((const found_t *)pa)->name, ((const found_t *)pb)->name);
}

static int cmp_time(const void *pa, const void *pb)
{
    const found_t *a = pa, *b = pb;
    if (a->mtime.tv_sec != b->mtime.tv_sec)
        return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
    if (a->mtime.tv_nsec != b->mtime.tv_nsec)
        return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* True when f was already there before the run (same name, inode and mtime); before is
 * sorted by name. The shim renames a fresh file into place, so a rewrite changes both. */
static bool unchanged(const found_list_t *before, const found_t *f)
{
    const found_t *o = before->n ? bsearch(f, before->v, before->n, sizeof *f, cmp_name) : NULL;
    return o && o->ino == f->ino && o->mtime.tv_sec == f->mtime.tv_sec &&
           o->mtime.tv_nsec == f->mtime.tv_nsec;
}

/* Appends dir/name to the path vector *v of *n entries. Returns 0 or -ENOMEM. */
static int paths_add(char ***v, size_t *n, const char *dir, const char *name)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    if (asprintf(&nv[*n], "%s/%s", dir, name) < 0)
        return -ENOMEM;
    (*n)++;
    return 0;
}

/*
 * Collects the exit snapshots that appeared in r->dir during the run, oldest first: CMD's
 * own (more than one when it exec'd another traced program) into r->snapshots, those of
 * its child processes into r->others. before: the listing from before the run.
 */
static int collect_new(lkd_run_result_t *r, const found_list_t *before)
{
    found_list_t after = {0};
    int rc = list_exit_snapshots(r->dir, &after);
    if (!rc && after.n)
        qsort(after.v, after.n, sizeof *after.v, cmp_time);
    for (size_t i = 0; !rc && i < after.n; i++) {
        const found_t *f = &after.v[i];
        if (unchanged(before, f))
            continue;
        if (f->pid == r->pid)
            rc = paths_add(&r->snapshots, &r->snapshot_count, r->dir, f->name);
        else
            rc = paths_add(&r->others, &r->other_count, r->dir, f->name);
    }
    found_free(&after);
    return rc;
}

/*
 * Runs opts->argv under the shim and fills *res (free with lkd_run_result_free). Returns
 * 0 when CMD was started or could not be found/executed (res->status says which), or
 * -errno with a message in err when leakdiff itself failed (no shim, fork failed, ...).
 */
int lkd_run(const lkd_run_opts_t *opts, lkd_run_result_t *res, char *err, size_t errlen)
{
    char self[PATH_MAX], *shim = NULL;
    struct sigaction saved[FORWARDED_COUNT];
    found_list_t before = {0};
    memset(res, 0, sizeof *res);
    err[0] = '\0';
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = '\0';
    int rc = lkd_run_find_shim(self, &shim, err, errlen);
    if (rc || (rc = output_dir(opts->output_dir, &res->dir)) ||
        (rc = set_env(shim, res->dir, err, errlen)))
        goto out;
    if ((rc = list_exit_snapshots(res->dir, &before)))
        goto out;
    if (before.n)
        qsort(before.v, before.n, sizeof *before.v, cmp_name);
    install_forwarding(saved);
    rc = spawn(opts->argv, saved, &res->pid, &res->exec_errno);
    if (!rc)
        res->status = wait_status(res->pid, &res->term_signal);
    restore_signals(saved);
    if (rc) {
        snprintf(err, errlen, "cannot start %s: %s", opts->argv[0], strerror(-rc));
        goto out;
    }
    if (res->exec_errno)
        res->status = res->exec_errno == ENOENT || res->exec_errno == ENOTDIR ? 127 : 126;
    else
        rc = collect_new(res, &before);
out:
    if (rc && !err[0])
        snprintf(err, errlen, "%s", strerror(-rc));
    found_free(&before);
    free(shim);
    return rc;
}

/* Frees what res owns and zeroes it. */
void lkd_run_result_free(lkd_run_result_t *res)
{
    for (size_t i = 0; i < res->snapshot_count; i++)
        free(res->snapshots[i]);
    for (size_t i = 0; i < res->other_count; i++)
        free(res->others[i]);
    free(res->snapshots);
    free(res->others);
    free(res->dir);
    memset(res, 0, sizeof *res);
}
