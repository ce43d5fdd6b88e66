/*
 * run - `leakdiff run`: starts CMD with the shim preloaded, waits, finds the snapshots its
 * process tree wrote (children, exec'd programs, signal, interval and API snapshots).
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
#include "snap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
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

/* The file execvp would run for cmd (searched in $PATH when cmd has no '/') into path. */
static bool command_path(const char *cmd, char *path, size_t size)
{
    if (strchr(cmd, '/'))
        return snprintf(path, size, "%s", cmd) < (int)size;
    const char *dirs = getenv("PATH");
    for (dirs = dirs && *dirs ? dirs : "/bin:/usr/bin"; *dirs;) {
        int n = (int)strcspn(dirs, ":");
        if (snprintf(path, size, "%.*s%s%s", n, dirs, n ? "/" : "", cmd) < (int)size &&
            access(path, X_OK) == 0)
            return true;
        dirs += n + (dirs[n] == ':');
    }
    return false;
}

/*
 * True when cmd runs CPython: the file it names (symlinks resolved, so a venv's bin/python
 * counts) is called python*, or it is a script whose "#!" line names python.
 */
bool lkd_run_is_python(const char *cmd)
{
    char path[PATH_MAX], line[256];
    if (!command_path(cmd, path, sizeof path))
        return false;
    char *real = realpath(path, NULL);
    const char *name = real ? real : path, *slash = strrchr(name, '/');
    bool python = fnmatch("python*", slash ? slash + 1 : name, 0) == 0;
    free(real);
    FILE *f = python ? NULL : fopen(path, "re");
    if (f) {
        python = fgets(line, sizeof line, f) && !strncmp(line, "#!", 2) && strstr(line, "python");
        fclose(f);
    }
    return python;
}

/*
 * --python: sets PYTHONMALLOC=malloc, so that CPython's small objects come from malloc, not
 * from pymalloc's arenas (pymalloc serves requests up to 512 B from mmap'd pools, where the
 * shim cannot see them), and says so. Without it, a CPython command gets a one-line hint
 * unless PYTHONMALLOC is already set. Returns 0 or -errno.
 */
static int python_env(const lkd_run_opts_t *opts)
{
    const char *cmd = opts->argv[0];
    if (!opts->python) {
        if (!getenv("PYTHONMALLOC") && lkd_run_is_python(cmd))
            fprintf(stderr,
                    "leakdiff: hint: %s runs CPython: add --python (PYTHONMALLOC=malloc), "
                    "or pymalloc hides objects of 512 B or less\n",
                    cmd);
        return 0;
    }
    if (setenv("PYTHONMALLOC", "malloc", 1) < 0)
        return -errno;
    fprintf(stderr,
            "leakdiff: --python: PYTHONMALLOC=malloc for %s, so that pymalloc does not "
            "hide objects of 512 B or less\n",
            cmd);
    return 0;
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

/*
 * True when name is a snapshot file name "<exe>.<pid>.<seq>.<label>.snap" with the given
 * label; sets *pid and *seq. The exe part may itself contain dots.
 */
bool lkd_run_parse_name(const char *name, const char *label, pid_t *pid, unsigned *seq)
{
    const char *l;
    size_t ll;
    pid_t p;
    unsigned s;
    if (!lkd_snap_parse_name(name, &p, &s, &l, &ll) || ll != strlen(label) ||
        strncmp(l, label, ll) != 0)
        return false;
    *pid = p;
    *seq = s;
    return true;
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

/* Moves f (its strings included) to the end of list. Returns 0 or -ENOMEM. */
static int move_file(lkd_snap_list_t *list, lkd_snap_file_t *f)
{
    lkd_snap_file_t *v = realloc(list->v, (list->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    list->v = v;
    v[list->n++] = *f;
    f->name = f->label = NULL;
    return 0;
}

/*
 * Collects the snapshots that appeared in r->dir during the run, oldest first: every one
 * (any process of CMD's tree, any label) into r->written, and CMD's own exit snapshots
 * (more than one when it exec'd another traced program) into r->snapshots. before: the
 * listing from before the run, sorted by name.
 */
static int collect_new(lkd_run_result_t *r, const lkd_snap_list_t *before)
{
    lkd_snap_list_t after;
    int rc = lkd_snap_list_dir(r->dir, 0, &after);
    lkd_snap_list_sort_by_time(&after);
    for (size_t i = 0; !rc && i < after.n; i++) {
        lkd_snap_file_t *f = &after.v[i];
        if (lkd_snap_list_unchanged(before, f))
            continue;
        if (f->pid == r->pid && !strcmp(f->label, "exit"))
            rc = paths_add(&r->snapshots, &r->snapshot_count, r->dir, f->name);
        if (!rc)
            rc = move_file(&r->written, f);
    }
    lkd_snap_list_free(&after);
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
    lkd_snap_list_t before = {NULL, 0};
    memset(res, 0, sizeof *res);
    err[0] = '\0';
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = '\0';
    int rc = lkd_run_find_shim(self, &shim, err, errlen);
    if (rc || (rc = output_dir(opts->output_dir, &res->dir)) ||
        (rc = set_env(shim, res->dir, err, errlen)) || (rc = python_env(opts)))
        goto out;
    if ((rc = lkd_snap_list_dir(res->dir, 0, &before)))
        goto out;
    lkd_snap_list_sort_by_name(&before);
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
    lkd_snap_list_free(&before);
    free(shim);
    return rc;
}

/* Frees what res owns and zeroes it. */
void lkd_run_result_free(lkd_run_result_t *res)
{
    for (size_t i = 0; i < res->snapshot_count; i++)
        free(res->snapshots[i]);
    free(res->snapshots);
    lkd_snap_list_free(&res->written);
    free(res->dir);
    memset(res, 0, sizeof *res);
}
