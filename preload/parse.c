/*
 * parse - strict parsers shared by the shim and the analyzer: unsigned decimal numbers, byte
 * counts and signal names. One copy, so `leakdiff snap` reads LEAKDIFF_SIGNAL exactly as the shim
 * does. Pure: no allocation, no I/O, no global state.
 */
#include "parse.h"

#include <signal.h>
#include <string.h>

/* lkd_parse_uint - strict decimal parse: digits only, no sign, no overflow. */
bool lkd_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* lkd_parse_size - see parse.h: "524288", "512K", "512k", "1M", "0". */
bool lkd_parse_size(const char *s, uint64_t max, uint64_t *out)
{
    static const char suffixes[] = "KMGT";
    char digits[24];
    size_t len = s ? strlen(s) : 0;
    unsigned shift = 0;
    uint64_t v;
    if (len == 0 || len >= sizeof digits)
        return false;
    char last = s[len - 1];
    const char *suffix = last >= 'A' ? strchr(suffixes, last & ~0x20) : NULL;
    if (suffix) {
        shift = 10 * (unsigned)(suffix - suffixes + 1);
        len--;
    }
    memcpy(digits, s, len);
    digits[len] = '\0';
    if (!lkd_parse_uint(digits, 0, UINT64_MAX >> shift, &v) || (v << shift) > max)
        return false;
    *out = v << shift;
    return true;
}

static const struct {
    const char *name;
    int number;
} signal_names[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"USR1", SIGUSR1},
    {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU}, {"URG", SIGURG},       {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"PROF", SIGPROF}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},   {"SYS", SIGSYS},
};

/* "RTMIN+N" / "RTMAX-N" / "RTMIN" / "RTMAX". */
static bool parse_rt(const char *s, int *out)
{
    uint64_t n = 0;
    bool min = !strncmp(s, "RTMIN", 5), max = !strncmp(s, "RTMAX", 5);
    if (!min && !max)
        return false;
    s += 5;
    if (*s && !((min && *s == '+') || (max && *s == '-')))
        return false;
    if (*s && !lkd_parse_uint(s + 1, 0, (uint64_t)(SIGRTMAX - SIGRTMIN), &n))
        return false;
    *out = min ? SIGRTMIN + (int)n : SIGRTMAX - (int)n;
    return true;
}

/* lkd_parse_signal - see parse.h. */
bool lkd_parse_signal(const char *s, int *out)
{
    uint64_t n;
    int v;
    if (!strcmp(s, "none")) {
        *out = 0;
        return true;
    }
    if (!strncmp(s, "SIG", 3))
        s += 3;
    if (lkd_parse_uint(s, 1, (uint64_t)SIGRTMAX, &n)) {
        v = (int)n;
    } else if (!parse_rt(s, &v)) {
        size_t i = 0;
        while (i < sizeof signal_names / sizeof signal_names[0] && strcmp(s, signal_names[i].name))
            i++;
        if (i == sizeof signal_names / sizeof signal_names[0])
            return false;
        v = signal_names[i].number;
    }
    /* Not catchable, or raised by faults: never usable as a request. *out is untouched. */
    if (v == SIGKILL || v == SIGSTOP || v == SIGSEGV || v == SIGBUS || v == SIGFPE || v == SIGILL ||
        v == SIGTRAP || v == SIGABRT)
        return false;
    *out = v;
    return true;
}

/* lkd_parse_signal_name - the name of sig without "SIG" ("USR2"), or NULL for a number
 * outside the table (real-time signals included). */
const char *lkd_parse_signal_name(int sig)
{
    for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
        if (signal_names[i].number == sig)
            return signal_names[i].name;
    return NULL;
}
