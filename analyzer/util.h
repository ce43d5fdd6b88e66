/*
 * util - small helpers of the analyzer: a growable string buffer, JSON string escaping and
 * human-readable byte counts.
 *
 * Pure functions without I/O. A buffer's error is sticky: after the first failed growth
 * every append is a no-op and lkd_buf_t.err stays -ENOMEM, so callers check once at the end.
 */
#ifndef LKD_UTIL_H
#define LKD_UTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct lkd_buf {
    char *data; /* NUL-terminated when non-NULL; owned */
    size_t len; /* bytes before the NUL */
    size_t cap; /* bytes allocated */
    int err;    /* 0, or -ENOMEM after a failed growth (sticky) */
} lkd_buf_t;

#define LKD_BUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

int lkd_buf_append(lkd_buf_t *b, const char *s, size_t n);
int lkd_buf_puts(lkd_buf_t *b, const char *s);
int lkd_buf_printf(lkd_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *lkd_buf_str(const lkd_buf_t *b);
void lkd_buf_reset(lkd_buf_t *b);
void lkd_buf_free(lkd_buf_t *b);

int lkd_json_string(lkd_buf_t *b, const char *s);
void lkd_text_sanitize(lkd_buf_t *b, size_t from);
/* Prints warnings (lines, e.g. the symbolizer's; they name files from a snapshot, so they are
 * sanitized) to stderr, each as one "leakdiff: warning: " line. */
void lkd_print_warnings(const char *warnings);

/* Room for any string lkd_human_size/lkd_human_size_diff produce, NUL included. */
#define LKD_HUMAN_SIZE_LEN 32

void lkd_human_size(char out[LKD_HUMAN_SIZE_LEN], uint64_t bytes);
void lkd_human_size_diff(char out[LKD_HUMAN_SIZE_LEN], int64_t diff);

#endif
