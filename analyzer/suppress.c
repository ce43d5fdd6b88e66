/*
 * suppress - parsing and matching of leak suppressions (LeakSanitizer's syntax), and the
 * built-in list of the C runtime's one-time allocations.
 *
 * A pattern is compiled once, at parse time, into a whole-string glob whose only special
 * character is '*': "foo" -> "*foo*", "^foo" -> "foo*", "foo$" -> "*foo", "^foo$" -> "foo".
 * Matching that glob is the textbook backtracking wildcard match, linear in practice and
 * never allocating. ('^' is special only first and '$' only last; elsewhere they are plain
 * characters. LeakSanitizer's own matcher tries only the first occurrence of each piece, so
 * "foo$" fails on "foofoo" there; here it matches, as the anchor says.)
 *
 * Invariants: a parsed list only holds rules with a non-empty pattern; every error names the
 * source and the 1-based line. Never does I/O.
 */
#include "suppress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"

/*
 * The built-in list: allocations the C runtime makes once and keeps for the life of the
 * process, which a reachability scan may not see referenced (the pointer sits in memory the
 * scan does not read, such as the loader's private data or a thread descriptor). With the
 * scan as it is, clean programs (/bin/true, python3 -c pass, C and C++ programs that use
 * locales, NSS, iconv, dlopen, threads and exceptions) leave none of these behind; the list
 * is the safety net for runtimes and configurations the scan does not cover.
 *
 * Most rules are "leak_site:", a leakdiff extension that matches the SITE only (the first
 * frame that is not allocator plumbing), never frames further out: the loader calls your
 * libraries' constructors and libc calls main, so a rule on any frame of theirs would hide
 * your leaks. The "leak:" rules name functions that never call back into a program.
 */
const char lkd_supp_builtin_text[] =
    "# leakdiff's built-in suppressions: one-time allocations of the C runtime.\n"
    "# leak_site: rules match the allocating function (the site) only; leak: rules any\n"
    "# frame. --no-default-suppressions turns the whole list off.\n"
    "#\n"
    "# The dynamic loader (ld.so): link maps, search paths, scope arrays, and the\n"
    "# thread-local storage of threads and dlopen'ed libraries (DTV, TLS blocks).\n"
    "leak_site:^_dl_\n"
    "leak_site:/ld-linux-\n"
    "leak:^_dl_allocate_tls$\n"
    "leak:^__tls_get_addr$\n"
    "leak_site:^_dlerror_run$\n"
    "# glibc: locale data, the iconv (gconv) and NSS module tables, stdio buffers, and\n"
    "# buffers glibc frees only in __libc_freeres (which runs under valgrind only).\n"
    "leak_site:^_nl_\n"
    "leak_site:^setlocale$\n"
    "leak_site:^__gconv\n"
    "leak_site:^__nss_\n"
    "leak_site:^nss_\n"
    "leak_site:^_IO_file_doallocate$\n"
    "leak_site:^__libc_alloc_buffer_\n"
    "# libstdc++: the emergency pool for exceptions thrown when malloc fails\n"
    "# (eh_alloc.cc), allocated before main and kept for the life of the process.\n"
    "leak:^(anonymous namespace)::pool::pool\n";

/* Trims blanks (space, tab, CR, vertical tab, form feed) from both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && strchr(" \t\r\v\f", **s))
        (*s)++;
    while (*e > *s && strchr(" \t\r\v\f", (*e)[-1]))
        (*e)--;
}

/* The glob of pattern p[0..n): anchors become the absence of a '*'. malloc'd or NULL. */
static char *compile_glob(const char *p, size_t n)
{
    bool start = n && p[0] == '^';
    if (start)
        p++, n--;
    bool end = n && p[n - 1] == '$';
    if (end)
        n--;
    char *g = malloc(n + 3), *w = g;
    if (!g)
        return NULL;
    if (!start)
        *w++ = '*';
    memcpy(w, p, n);
    w += n;
    if (!end)
        *w++ = '*';
    *w = '\0';
    return g;
}

/* Appends one rule (strings copied). Returns 0 or -ENOMEM. */
static int add_rule(lkd_supp_list_t *list, const char *p, size_t n, const char *source,
                    unsigned line, bool builtin, bool site_only)
{
    lkd_supp_t *v = realloc(list->v, (list->n + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    list->v = v;
    lkd_supp_t *r = &v[list->n];
    memset(r, 0, sizeof *r);
    r->pattern = strndup(p, n);
    r->glob = compile_glob(p, n);
    r->source = strdup(source);
    if (!r->pattern || !r->glob || !r->source) {
        free(r->pattern);
        free(r->glob);
        free(r->source);
        return -ENOMEM;
    }
    r->line = line;
    r->builtin = builtin;
    r->site_only = site_only;
    list->n++;
    return 0;
}

/*
 * Parses one line [s, e) (trimmed, not a comment, not empty) of source. Returns 0, -ENOMEM,
 * or -EINVAL with "SOURCE:LINE: what is wrong" in err.
 */
static int parse_line(lkd_supp_list_t *list, const char *s, const char *e, const char *source,
                      unsigned line, bool builtin, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', (size_t)(e - s));
    if (memchr(s, '\0', (size_t)(e - s))) {
        snprintf(err, errlen, "%s:%u: a NUL byte in the line (not a text file?)", source, line);
        return -EINVAL;
    }
    if (!colon) {
        snprintf(err, errlen, "%s:%u: '%.*s' is not a suppression (want leak:PATTERN)", source,
                 line, (int)(e - s > 60 ? 60 : e - s), s);
        return -EINVAL;
    }
    size_t tn = (size_t)(colon - s);
    bool leak = tn == 4 && !memcmp(s, "leak", 4);
    bool site = tn == 9 && !memcmp(s, "leak_site", 9);
    if (!leak && !site) {
        snprintf(err, errlen,
                 "%s:%u: unknown suppression type '%.*s' (leakdiff knows leak:PATTERN and "
                 "leak_site:PATTERN)",
                 source, line, (int)(tn > 40 ? 40 : tn), s);
        return -EINVAL;
    }
    const char *p = colon + 1;
    trim(&p, &e);
    if (p == e) {
        snprintf(err, errlen, "%s:%u: empty pattern after '%.*s:'", source, line, (int)tn, s);
        return -EINVAL;
    }
    return add_rule(list, p, (size_t)(e - p), source, line, builtin, site);
}

/*
 * Parses text[0..len) (a suppression file read by the caller, or lkd_supp_builtin_text)
 * and appends its rules to list, remembering source and each rule's line. Lines are
 * "leak:PATTERN" (matches any frame) or "leak_site:PATTERN" (matches the site only);
 * blank lines and '#' comments are skipped. Returns 0, -ENOMEM, or -EINVAL for a malformed
 * line, with one line "SOURCE:LINE: problem" in err; on error the rules of the lines before
 * stay in list.
 */
int lkd_supp_parse(lkd_supp_list_t *list, const char *text, size_t len, const char *source,
                   bool builtin, char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    for (unsigned line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        trim(&s, &e);
        if (s == e || *s == '#')
            continue;
        int rc = parse_line(list, s, e, source, line, builtin, err, errlen);
        if (rc == -ENOMEM)
            snprintf(err, errlen, "%s: out of memory", source);
        if (rc)
            return rc;
    }
    return 0;
}

/* Appends the built-in list (lkd_supp_builtin_text). Returns 0 or -ENOMEM. */
int lkd_supp_add_builtin(lkd_supp_list_t *list)
{
    char err[256];
    return lkd_supp_parse(list, lkd_supp_builtin_text, strlen(lkd_supp_builtin_text),
                          LKD_SUPP_BUILTIN_SOURCE, true, err, sizeof err);
}

/* Whole-string match of s against glob g, where '*' matches any run of characters. */
static bool glob_matches(const char *g, const char *s)
{
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*g == '*') {
            star = ++g;
            mark = s;
        } else if (*g == *s) {
            g++;
            s++;
        } else if (star) {
            g = star;
            s = ++mark;
        } else {
            return false;
        }
    }
    while (*g == '*')
        g++;
    return *g == '\0';
}

/* True when rule's pattern matches s (NULL and "" never match, as in LeakSanitizer). */
bool lkd_supp_pattern_matches(const lkd_supp_t *rule, const char *s)
{
    return s && *s && glob_matches(rule->glob, s);
}

static bool rule_test(const void *rule, const char *s, bool is_path)
{
    (void)is_path;
    return lkd_supp_pattern_matches(rule, s);
}

/*
 * True when rule's pattern matches frame's function (as shown, and without a "+0x1a"
 * offset suffix), its source file or its module path.
 */
bool lkd_supp_frame_matches(const lkd_supp_t *rule, const lkd_frame_t *frame)
{
    return lkd_frame_matches(frame, rule_test, rule);
}

/* Zeroes every rule's counters. */
void lkd_supp_list_reset_counts(lkd_supp_list_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        list->v[i].blocks = list->v[i].bytes = 0;
}

/* Frees every rule and zeroes list. */
void lkd_supp_list_free(lkd_supp_list_t *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->v[i].pattern);
        free(list->v[i].glob);
        free(list->v[i].source);
    }
    free(list->v);
    list->v = NULL;
    list->n = 0;
}
