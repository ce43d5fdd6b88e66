/*
 * launch - runs a command and reports its peak memory, for bench.py.
 *
 * Usage: launch REPORT_FILE [NAME=VALUE]... -- CMD [ARGS...]
 *
 * Why: a child of bench.py itself would report bench.py's RSS as its own peak when that is
 * larger, because ru_maxrss survives exec (the forked copy of the Python interpreter counts).
 * This launcher is small, so the command it forks has an honest ru_maxrss. The NAME=VALUE
 * pairs are set in the command's environment only (LD_PRELOAD must not trace the launcher
 * itself). Writes
 * "maxrss_kb=N" to REPORT_FILE (the largest process of the command's tree that was waited
 * for) and exits with the command's status (128 + signal when killed, like a shell).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct rusage ru;
    int status;
    pid_t pid;
    FILE *f;
    int cmd = 2;

    while (cmd < argc && strcmp(argv[cmd], "--") != 0)
        cmd++;
    if (argc < 3 || cmd + 1 >= argc) {
        fputs("usage: launch REPORT_FILE [NAME=VALUE]... -- CMD [ARGS...]\n", stderr);
        return 2;
    }
    pid = fork();
    if (pid < 0)
        return 126;
    if (pid == 0) {
        for (int i = 2; i < cmd; i++)
            if (putenv(argv[i]) != 0)
                _exit(126);
        execvp(argv[cmd + 1], argv + cmd + 1);
        perror(argv[cmd + 1]);
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) < 0)
        return 126;
    f = fopen(argv[1], "w");
    if (!f || fprintf(f, "maxrss_kb=%ld\n", ru.ru_maxrss) < 0 || fclose(f) != 0)
        return 126;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
