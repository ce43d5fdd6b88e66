/*
 * test_snap - unit tests of `leakdiff snap`'s pure parts: signal names (as the shim parses
 * LEAKDIFF_SIGNAL), /proc/PID/environ and status parsing, the shim check in maps, label
 * sanitizing, snapshot file names, the decision whether a process may be signalled (every
 * refusal), and the directory listing `run` and `snap` share.
 *
 * /proc texts are literals here: no process is ever signalled by these tests.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run.h"
#include "snap.h"

/* ---- signals ------------------------------------------------------------------------ */

static int sig_of(const char *s)
{
    int sig = -1;
    return lkd_snap_parse_signal(s, &sig) == 0 ? sig : -1;
}

Test(snap, signal_numbers_and_names)
{
    cr_expect_eq(sig_of("none"), 0);
    cr_expect_eq(sig_of("40"), 40);
    cr_expect_eq(sig_of("SIG40"), 40);
    cr_expect_eq(sig_of("USR2"), SIGUSR2);
    cr_expect_eq(sig_of("SIGUSR2"), SIGUSR2);
    cr_expect_eq(sig_of("USR1"), SIGUSR1);
    cr_expect_eq(sig_of("HUP"), SIGHUP);
    cr_expect_eq(sig_of("WINCH"), SIGWINCH);
    cr_expect_eq(sig_of("RTMIN"), SIGRTMIN);
    cr_expect_eq(sig_of("RTMIN+3"), SIGRTMIN + 3);
    cr_expect_eq(sig_of("SIGRTMIN+3"), SIGRTMIN + 3);
    cr_expect_eq(sig_of("SIGRTMIN+6"), 40, "glibc's SIGRTMIN is 34: the default is 40");
    cr_expect_eq(sig_of("RTMAX"), SIGRTMAX);
    cr_expect_eq(sig_of("RTMAX-2"), SIGRTMAX - 2);
    cr_expect_eq(sig_of("64"), SIGRTMAX);
}

Test(snap, signal_refusals)
{
    static const char *const bad[] = {
        "",        "SIG",        "usr2",     "sigusr2",
        "NONE",    "0",          "65",       "-1",
        "+5",      "40x",        " 40",      "RTMIN-1",
        "RTMAX+1", "RTMIN+",     "RTMIN+99", "RTMIN+1x",
        "RTMIN3",  "SIGSIGUSR2", "KILL",     "SIGKILL",
        "9",       "STOP",       "19",       "SEGV",
        "BUS",     "FPE",        "ILL",      "TRAP",
        "ABRT",    "SIGABRT",    "6",        "99999999999999999999999",
        "FOO",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int sig = 12345;
        cr_expect_eq(lkd_snap_parse_signal(bad[i], &sig), -EINVAL, "'%s' accepted", bad[i]);
        cr_expect_eq(sig, 12345, "'%s' changed the output", bad[i]);
    }
    int sig;
    cr_expect_eq(lkd_snap_parse_signal(NULL, &sig), -EINVAL);
}

Test(snap, signal_name)
{
    char name[16];
    lkd_snap_signal_name(40, name);
    cr_expect_str_eq(name, "SIGRTMIN+6");
    lkd_snap_signal_name(SIGUSR2, name);
    cr_expect_str_eq(name, "SIGUSR2");
    lkd_snap_signal_name(SIGRTMAX, name);
    cr_expect_str_eq(name, "SIGRTMIN+30");
    lkd_snap_signal_name(33, name);
    cr_expect_str_eq(name, "signal 33");
}

/* ---- /proc texts ---------------------------------------------------------------------- */

Test(snap, environ_lookup)
{
    static const char env[] = "PATH=/bin\0LEAKDIFF_SIGNALX=9\0LEAKDIFF_SIGNAL=USR2\0"
                              "LEAKDIFF_SIGNAL=HUP\0EMPTY=\0LAST=unterminated";
    size_t len = sizeof env - 1; /* env[len] is the literal's own NUL */
    cr_expect_str_eq(lkd_snap_environ_get(env, len, "LEAKDIFF_SIGNAL"), "USR2", "first wins");
    cr_expect_str_eq(lkd_snap_environ_get(env, len, "LEAKDIFF_SIGNALX"), "9");
    cr_expect_str_eq(lkd_snap_environ_get(env, len, "PATH"), "/bin");
    cr_expect_str_eq(lkd_snap_environ_get(env, len, "EMPTY"), "");
    cr_expect_str_eq(lkd_snap_environ_get(env, len, "LAST"), "unterminated");
    cr_expect_null(lkd_snap_environ_get(env, len, "LEAKDIFF"), "a prefix is not a name");
    cr_expect_null(lkd_snap_environ_get(env, len, "LEAKDIFF_OUTPUT"));
    cr_expect_null(lkd_snap_environ_get(env, 0, "PATH"), "empty environment");
    cr_expect_null(lkd_snap_environ_get("=x\0", 3, ""), "nameless entries never match");
}

static const char status_text[] = "Name:\tsleeper\n"
                                  "State:\tS (sleeping)\n"
                                  "Pid:\t4242\n"
                                  "SigQ:\t0/7823\n"
                                  "SigPnd:\t0000000000000000\n"
                                  "ShdPnd:\t0000000000000000\n"
                                  "SigBlk:\t0000000000000000\n"
                                  "SigIgn:\t0000000000001000\n"
                                  "SigCgt:\t0000008180004a02\n"
                                  "CapInh:\t0000000000000000\n";

Test(snap, status_masks_and_state)
{
    unsigned long long m = 0;
    cr_assert_eq(lkd_snap_status_mask(status_text, "SigCgt", &m), 0);
    cr_expect_eq(m, 0x8180004a02ULL);
    cr_expect(m >> (40 - 1) & 1, "bit 39 is signal 40");
    cr_expect(m >> (SIGINT - 1) & 1);
    cr_expect(m >> (SIGUSR2 - 1) & 1);
    cr_expect(!(m >> (SIGHUP - 1) & 1));
    cr_assert_eq(lkd_snap_status_mask(status_text, "SigIgn", &m), 0);
    cr_expect_eq(m, 0x1000ULL, "SIGPIPE ignored");
    cr_expect_eq(lkd_snap_status_mask(status_text, "SigXyz", &m), -EINVAL);
    cr_expect_eq(lkd_snap_status_mask(status_text, "Sig", &m), -EINVAL, "not a prefix match");
    cr_expect_eq(lkd_snap_status_mask("SigCgt:\t00000000000000001\n", "SigCgt", &m), -EINVAL,
                 "17 digits");
    cr_expect_eq(lkd_snap_status_mask("SigCgt:\t00zz\n", "SigCgt", &m), -EINVAL);
    cr_expect_eq(lkd_snap_status_mask("SigCgt:\t\n", "SigCgt", &m), -EINVAL);
    cr_expect_eq(lkd_snap_status_mask("SigCgt:\tFFFFFFFFFFFFFFFF", "SigCgt", &m), 0);
    cr_expect_eq(m, ~0ULL, "upper case, no newline at the end");
    cr_expect_eq(lkd_snap_status_mask(NULL, "SigCgt", &m), -EINVAL);
    cr_expect_eq(lkd_snap_status_state(status_text), 'S');
    cr_expect_eq(lkd_snap_status_state("Name:\tx\nState:\tZ (zombie)\n"), 'Z');
    cr_expect_eq(lkd_snap_status_state("Name:\tx\n"), 0);
    cr_expect_eq(lkd_snap_status_state(NULL), 0);
}

Test(snap, maps_shim_check)
{
    cr_expect(lkd_snap_maps_has_shim("7f00-7f01 r-xp 00000000 08:01 12 /opt/ld/libleakdiff.so\n"));
    cr_expect(lkd_snap_maps_has_shim("7f00-7f01 r-xp 0 08:01 12 /b/libleakdiff.so (deleted)\n"));
    cr_expect(lkd_snap_maps_has_shim("a\nb /x/libleakdiff.so"), "at the very end");
    cr_expect(!lkd_snap_maps_has_shim("7f00-7f01 r-xp 0 08:01 12 /b/libleakdiff.so.bak\n"));
    cr_expect(!lkd_snap_maps_has_shim("7f00-7f01 r-xp 0 08:01 12 /b/notlibleakdiff.so\n"));
    cr_expect(!lkd_snap_maps_has_shim("7f00-7f01 r-xp 0 08:01 12 /lib/libc.so.6\n"));
    cr_expect(!lkd_snap_maps_has_shim(""));
    cr_expect(!lkd_snap_maps_has_shim(NULL));
}

/* ---- labels and file names ---------------------------------------------------------- */

Test(snap, label_sanitizing)
{
    char out[LKD_SNAP_LABEL_MAX + 1], longer[301];
    lkd_snap_sanitize_label("../x", out);
    cr_expect_str_eq(out, "_._x", "no leading dot");
    lkd_snap_sanitize_label("..", out);
    cr_expect_str_eq(out, "snapshot");
    lkd_snap_sanitize_label(".", out);
    cr_expect_str_eq(out, "snapshot");
    lkd_snap_sanitize_label("...", out);
    cr_expect_str_eq(out, "_..");
    lkd_snap_sanitize_label(".hidden", out);
    cr_expect_str_eq(out, "_hidden");
    lkd_snap_sanitize_label("a/b", out);
    cr_expect_str_eq(out, "a_b");
    lkd_snap_sanitize_label("", out);
    cr_expect_str_eq(out, "snapshot");
    lkd_snap_sanitize_label(NULL, out);
    cr_expect_str_eq(out, "snapshot");
    lkd_snap_sanitize_label("ok-1.2_Z", out);
    cr_expect_str_eq(out, "ok-1.2_Z");
    lkd_snap_sanitize_label("a b\nc\xc3\xa9", out);
    cr_expect_str_eq(out, "a_b_c__", "each byte outside the set becomes one '_'");
    memset(longer, 'x', 300);
    longer[300] = '\0';
    lkd_snap_sanitize_label(longer, out);
    cr_expect_eq(strlen(out), 63);
    cr_expect_eq(strspn(out, "x"), 63);
}

static bool name_is(const char *name, int pid, unsigned seq, const char *label)
{
    pid_t p;
    unsigned s;
    const char *l;
    size_t ll;
    if (!lkd_snap_parse_name(name, &p, &s, &l, &ll))
        return false;
    return p == pid && s == seq && ll == strlen(label) && !strncmp(l, label, ll);
}

Test(snap, file_names)
{
    cr_expect(name_is("growing_leak.12345.0001.exit.snap", 12345, 1, "exit"));
    cr_expect(name_is("python3.11.77.0012.before.snap", 77, 12, "before"), "dotted exe");
    cr_expect(name_is("app.5.0002.before.gc.snap", 5, 2, "before.gc"), "dotted label");
    cr_expect(name_is("app.5.0002.v.1.0003.snap", 5, 2, "v.1.0003"), "digits in the label");
    cr_expect(name_is("a.1.0001.....snap", 1, 1, "..."), "a label of dots stays a name");
    cr_expect(name_is("a.1.12345.signal.snap", 1, 12345, "signal"), "seq past 9999");
    pid_t p;
    unsigned s;
    const char *l;
    size_t ll;
    static const char *const bad[] = {
        "a.1.0001.exit.snap.tmp",
        ".1.0001.exit.snap",
        "a.x.0001.exit.snap",
        "a.1..exit.snap",
        "a.1.0001..snap",
        "exit.snap",
        "a.0.0001.exit.snap",
        ".snap",
        "a.1.0001.exit.snapx",
        "1.0001.exit.snap",
        "a.99999999999.0001.exit.snap",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect(!lkd_snap_parse_name(bad[i], &p, &s, &l, &ll), "'%s' accepted", bad[i]);
    /* run's older interface, on top of it */
    cr_expect(lkd_run_parse_name("x.9.0003.exit.snap", "exit", &p, &s) && p == 9 && s == 3);
    cr_expect(!lkd_run_parse_name("x.9.0003.signal.snap", "exit", &p, &s));
    cr_expect(!lkd_run_parse_name("x.9.0003.x.exit.snap", "exit", &p, &s));
}

/* ---- the decision ------------------------------------------------------------------------ */

#define MAPS_TRACED                                                                                \
    "55d0-55d1 r-xp 00000000 08:01 100 /usr/bin/sleeper\n"                                         \
    "7f00-7f01 r-xp 00000000 08:01 200 /opt/leakdiff/lib/leakdiff/libleakdiff.so\n"

static const char status_catches_40[] = "Name:\tsleeper\nState:\tS (sleeping)\n"
                                        "SigCgt:\t0000008000000000\n";
static const char status_catches_usr2[] = "Name:\tsleeper\nState:\tS (sleeping)\n"
                                          "SigCgt:\t0000000000000800\n";
static const char status_catches_none[] = "Name:\tsleeper\nState:\tS (sleeping)\n"
                                          "SigCgt:\t0000000000000000\n";

/* The threads of a traced process whose shim owns the request signal. */
#define THREADS_LISTENING "sleeper\nleakdiff-sig\nworker\n"

/* Decides on a process with the given facts; env is a literal (its own NUL terminates). */
static int decide(const char *status, const char *maps, const char *env, size_t env_size,
                  const char *cwd, lkd_snap_target_t *t, char *err)
{
    lkd_snap_proc_t p = {4242, status, maps, env, env ? env_size - 1 : 0, cwd, THREADS_LISTENING};
    err[0] = '\0';
    return lkd_snap_decide(&p, t, err, 512);
}

/* The same decision with the given thread names (/proc/PID/task/TID/comm lines). */
static int decide_threads(const char *threads, lkd_snap_target_t *t, char *err)
{
    static const char env[] = "HOME=/root";
    lkd_snap_proc_t p = {4242,   status_catches_40, MAPS_TRACED, env, sizeof env - 1, "/srv",
                         threads};
    err[0] = '\0';
    return lkd_snap_decide(&p, t, err, 512);
}

Test(snap, decide_refuses_a_signal_the_program_took_over)
{
    lkd_snap_target_t t;
    char err[512];
    /* SigCgt says caught, but the writer thread is named "leakdiff": the program's handler. */
    cr_expect_eq(decide_threads("sleeper\nleakdiff\n", &t, err), -ENOTSUP);
    cr_expect(strstr(err, "handler of its own") != NULL, "%s", err);
    cr_expect_eq(t.signal, 0, "no signal for a refused process");
    cr_expect_eq(decide_threads("sleeper\nleakdiff-sig2\n", &t, err), -ENOTSUP, "exact name");
    cr_expect_eq(decide_threads("", &t, err), -ENOTSUP);
    cr_expect_eq(decide_threads(NULL, &t, err), -ENOTSUP, "thread names unreadable");
    cr_assert_eq(decide_threads("leakdiff-sig", &t, err), 0, "last line without newline: %s", err);
    free(t.dir);
}

#define ENV(s) s, sizeof s

Test(snap, decide_accepts_traced_process)
{
    lkd_snap_target_t t;
    char err[512];
    cr_assert_eq(decide(status_catches_40, MAPS_TRACED, ENV("HOME=/root\0"), "/srv", &t, err), 0,
                 "%s", err);
    cr_expect_eq(t.signal, 40);
    cr_expect_str_eq(t.dir, "/srv", "LEAKDIFF_OUTPUT unset: the working directory");
    free(t.dir);
    cr_assert_eq(
        decide(status_catches_40, MAPS_TRACED, ENV("LEAKDIFF_OUTPUT=snaps\0"), "/srv", &t, err), 0);
    cr_expect_str_eq(t.dir, "/srv/snaps");
    free(t.dir);
    cr_assert_eq(
        decide(status_catches_40, MAPS_TRACED, ENV("LEAKDIFF_OUTPUT=snaps\0"), "/", &t, err), 0);
    cr_expect_str_eq(t.dir, "/snaps");
    free(t.dir);
    cr_assert_eq(
        decide(status_catches_40, MAPS_TRACED, ENV("LEAKDIFF_OUTPUT=/var/s\0"), NULL, &t, err), 0,
        "an absolute directory needs no cwd");
    cr_expect_str_eq(t.dir, "/var/s");
    free(t.dir);
    cr_assert_eq(decide(status_catches_40, MAPS_TRACED, ENV("LEAKDIFF_OUTPUT=.\0"), "/w", &t, err),
                 0);
    cr_expect_str_eq(t.dir, "/w");
    free(t.dir);
    cr_assert_eq(
        decide(status_catches_usr2, MAPS_TRACED, ENV("LEAKDIFF_SIGNAL=SIGUSR2\0"), "/w", &t, err),
        0);
    cr_expect_eq(t.signal, SIGUSR2);
    free(t.dir);
    cr_assert_eq(
        decide(status_catches_40, MAPS_TRACED, ENV("LEAKDIFF_SIGNAL=KILL\0"), "/w", &t, err), 0,
        "a bad value: the shim uses its default, and so does snap");
    cr_expect_eq(t.signal, 40);
    free(t.dir);
}

Test(snap, decide_refusals)
{
    lkd_snap_target_t t;
    char err[512];
    cr_expect_eq(decide(status_catches_40, "55d0-55d1 r-xp 0 08:01 1 /bin/sleep\n", ENV("A=1\0"),
                        "/", &t, err),
                 -ENOTSUP);
    cr_expect_str_eq(err, "PID 4242 is not traced by leakdiff (no libleakdiff.so in it); not "
                          "signalling it");
    cr_expect_null(t.dir);
    cr_expect_eq(t.signal, 0);

    cr_expect_eq(decide(status_catches_none, MAPS_TRACED, ENV("A=1\0"), "/", &t, err), -ENOTSUP);
    cr_expect(strstr(err, "PID 4242 does not handle signal 40 (SIGRTMIN+6)"), "%s", err);
    cr_expect_eq(
        decide(status_catches_40, MAPS_TRACED, ENV("LEAKDIFF_SIGNAL=USR2\0"), "/", &t, err),
        -ENOTSUP, "catches 40, configured for USR2: USR2 would kill it");
    cr_expect(strstr(err, "does not handle signal 12 (SIGUSR2)"), "%s", err);
    cr_expect_eq(
        decide("Name:\tx\nState:\tS (sleeping)\n", MAPS_TRACED, ENV("A=1\0"), "/", &t, err),
        -ENOTSUP, "no SigCgt line: doubt is a refusal");

    cr_expect_eq(
        decide(status_catches_40, MAPS_TRACED, ENV("LEAKDIFF_SIGNAL=none\0"), "/", &t, err),
        -ENOTSUP);
    cr_expect(strstr(err, "LEAKDIFF_SIGNAL=none"), "%s", err);

    cr_expect_eq(decide("Name:\tx\nState:\tZ (zombie)\n", MAPS_TRACED, ENV("A=1\0"), "/", &t, err),
                 -ESRCH);
    cr_expect(strstr(err, "has exited"), "%s", err);
    cr_expect_eq(decide(status_catches_40, NULL, ENV("A=1\0"), "/", &t, err), -EPERM);
    cr_expect(strstr(err, "cannot read /proc/4242/maps"), "%s", err);
    cr_expect_eq(decide(status_catches_40, MAPS_TRACED, NULL, 0, "/", &t, err), -EPERM);
    cr_expect(strstr(err, "cannot read /proc/4242/environ"), "%s", err);
    cr_expect_eq(
        decide(status_catches_40, MAPS_TRACED, ENV("LEAKDIFF_OUTPUT=rel\0"), NULL, &t, err), -EPERM,
        "a relative directory needs the cwd");
    cr_expect(strstr(err, "/proc/4242/cwd"), "%s", err);
    cr_expect_null(t.dir);
}

/* ---- listings ----------------------------------------------------------------------------- */

static void touch(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs("x", f);
    fclose(f);
}

Test(snap, list_dir_filters_and_detects_new_files)
{
    char dir[] = "/tmp/test_snap.XXXXXX", path[512];
    cr_assert_not_null(mkdtemp(dir));
    touch(dir, "app.10.0001.before.snap");
    touch(dir, "app.10.0002.after.snap");
    touch(dir, "app.11.0001.exit.snap");
    touch(dir, "app.10.0003.signal.snap.tmp");
    touch(dir, ".leakdiff-request.10");
    snprintf(path, sizeof path, "%s/app.10.0004.dir.snap", dir);
    cr_assert_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/app.10.0001.before.snap", dir);
    char link[512];
    snprintf(link, sizeof link, "%s/app.10.0005.link.snap", dir);
    cr_assert_eq(symlink(path, link), 0);

    lkd_snap_list_t all, ten, later;
    cr_assert_eq(lkd_snap_list_dir(dir, 0, &all), 0);
    cr_expect_eq(all.n, 3, "regular snapshot files only");
    cr_assert_eq(lkd_snap_list_dir(dir, 10, &ten), 0);
    cr_expect_eq(ten.n, 2);
    lkd_snap_list_sort_by_name(&ten);
    cr_expect_str_eq(ten.v[0].label, "before");
    cr_expect_eq(ten.v[0].seq, 1);
    cr_expect_str_eq(ten.v[1].label, "after");
    cr_expect_eq(ten.v[1].pid, 10);

    /* a new file, and one replaced by a rename (new inode): both count as new */
    touch(dir, "app.10.0006.signal.snap");
    snprintf(path, sizeof path, "%s/app.10.0002.after.snap", dir);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/replacement", dir);
    touch(dir, "replacement");
    cr_assert_eq(rename(tmp, path), 0);
    cr_assert_eq(lkd_snap_list_dir(dir, 10, &later), 0);
    lkd_snap_list_sort_by_time(&later);
    size_t fresh = 0;
    for (size_t i = 0; i < later.n; i++)
        if (!lkd_snap_list_unchanged(&ten, &later.v[i]))
            fresh++;
        else
            cr_expect_str_eq(later.v[i].label, "before");
    cr_expect_eq(fresh, 2);
    lkd_snap_list_free(&all);
    lkd_snap_list_free(&ten);
    lkd_snap_list_free(&later);
    cr_expect_eq(later.n, 0);

    lkd_snap_list_t none;
    cr_expect_eq(lkd_snap_list_dir("/nonexistent/dir", 0, &none), 0);
    cr_expect_eq(none.n, 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}
