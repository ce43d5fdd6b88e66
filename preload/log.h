/*
 * log - the shim's own message writer: a tiny printf subset straight to write(2).
 *
 * Never calls malloc, stdio or locale code, so it is safe anywhere in the shim, including
 * inside a hook. Messages go to stderr, prefixed "leakdiff: ", one line each.
 */
#ifndef LKD_LOG_H
#define LKD_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* Formats into buf (always NUL-terminated); supports %s %c %d %u %ld %lu %lld %llu %zu, a
 * zero-padded width (%04u), %x %lx %llx %p %%. Returns the length written (truncated to size - 1).
 */
size_t lkd_log_format(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t lkd_log_vformat(char *buf, size_t size, const char *fmt, va_list ap);

/* Writes "leakdiff: <message>\n" to stderr. */
void lkd_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2), cold));

#endif
