/*
 * suppress - leak suppressions in LeakSanitizer's syntax, and leakdiff's built-in list.
 *
 * A suppression file has one rule per line, "leak:PATTERN"; blank lines and lines whose
 * first non-blank character is '#' are ignored, and leading and trailing blanks are trimmed
 * (so CRLF files work). PATTERN matches a string when it occurs in it ("malloc_wrapper"
 * matches "my_malloc_wrapper2"); '*' matches any run of characters; a leading '^' anchors it
 * at the start of the string and a trailing '$' at the end ("^foo$" matches "foo" only). A
 * rule matches a stack when PATTERN matches the function, the source file or the module of
 * ANY of its frames (inline frames included, allocator frames included), as LeakSanitizer's
 * rules do. A function shown as "symbol+0x1a" (no line info) is also tried as "symbol".
 * leakdiff adds one rule type, "leak_site:PATTERN", which matches the stack's SITE only (its
 * first frame that is not allocator plumbing, lkd_group_is_plumbing): the built-in list is
 * written that way, so that a runtime function that calls user code (the loader running
 * constructors, libc calling main) never hides the user's leaks.
 *
 * Pure: parses text and matches frames; reading files is the caller's. Rules keep counters
 * of what they hid (lkd_check updates them), for the "suppressions used" report.
 */
#ifndef LKD_SUPPRESS_H
#define LKD_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbols.h"

/* Where the built-in rules say they come from (lkd_supp_t.source). */
#define LKD_SUPP_BUILTIN_SOURCE "built-in"

typedef struct lkd_supp {
    char *pattern;  /* PATTERN as written after "leak:"; owned */
    char *glob;     /* the same as a whole-string '*' glob: anchors turned into stars; owned */
    char *source;   /* file name, or LKD_SUPP_BUILTIN_SOURCE; owned */
    unsigned line;  /* 1-based line in source */
    bool builtin;   /* from the built-in list (never reported as unused) */
    bool site_only; /* "leak_site:": matches the site frame only */
    uint64_t blocks, bytes; /* leaked blocks and bytes it hid, summed by lkd_check_* */
} lkd_supp_t;

typedef struct lkd_supp_list {
    lkd_supp_t *v;
    size_t n;
} lkd_supp_list_t;

/* The built-in list, in the file syntax above (see suppress.c for why each rule exists). */
extern const char lkd_supp_builtin_text[];

int lkd_supp_parse(lkd_supp_list_t *list, const char *text, size_t len, const char *source,
                   bool builtin, char *err, size_t errlen);
int lkd_supp_add_builtin(lkd_supp_list_t *list);
bool lkd_supp_pattern_matches(const lkd_supp_t *rule, const char *s);
bool lkd_supp_frame_matches(const lkd_supp_t *rule, const lkd_frame_t *frame);
void lkd_supp_list_reset_counts(lkd_supp_list_t *list);
void lkd_supp_list_free(lkd_supp_list_t *list);

#endif
