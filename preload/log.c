/*
 * log - formatted messages without malloc, stdio or locale.
 *
 * Invariant: never allocates and never takes a lock; a message is built on the stack and
 * written with one write(2) so lines from several threads do not interleave.
 */
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

typedef struct out {
    char *buf;
    size_t size, len;
} out_t;

static void put_char(out_t *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len++] = c;
}

static void put_str(out_t *o, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        put_char(o, *s++);
}

/* Writes v in base, left-padded with zeros to at least width digits. */
static void put_uint(out_t *o, unsigned long long v, unsigned base, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    for (; width > n && width > 0; width--)
        put_char(o, '0');
    while (n)
        put_char(o, tmp[--n]);
}

static void put_int(out_t *o, long long v)
{
    if (v < 0) {
        put_char(o, '-');
        put_uint(o, 0ull - (unsigned long long)v, 10, 0);
    } else {
        put_uint(o, (unsigned long long)v, 10, 0);
    }
}

/* Reads one integer argument of the given length modifier count ('l' repeats). */
static unsigned long long arg_uint(va_list *ap, int longs, int is_size)
{
    if (is_size)
        return va_arg(*ap, size_t);
    if (longs >= 2)
        return va_arg(*ap, unsigned long long);
    if (longs == 1)
        return va_arg(*ap, unsigned long);
    return va_arg(*ap, unsigned);
}

static long long arg_int(va_list *ap, int longs)
{
    if (longs >= 2)
        return va_arg(*ap, long long);
    if (longs == 1)
        return va_arg(*ap, long);
    return va_arg(*ap, int);
}

/*
 * lkd_log_vformat - formats like vsnprintf for the subset in log.h.
 * Returns the number of characters stored, excluding the NUL.
 */
size_t lkd_log_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    out_t o = {buf, size, 0};
    va_list args;
    va_copy(args, ap);
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put_char(&o, *f);
            continue;
        }
        int longs = 0, is_size = 0, width = 0;
        for (f++; *f >= '0' && *f <= '9'; f++) /* "%04u": zero padding is the only flag */
            width = width * 10 + (*f - '0');
        for (; *f == 'l' || *f == 'z'; f++)
            *f == 'l' ? longs++ : is_size++;
        switch (*f) {
        case 's': put_str(&o, va_arg(args, const char *)); break;
        case 'c': put_char(&o, (char)va_arg(args, int)); break;
        case 'd': put_int(&o, arg_int(&args, longs)); break;
        case 'u': put_uint(&o, arg_uint(&args, longs, is_size), 10, width); break;
        case 'x': put_uint(&o, arg_uint(&args, longs, is_size), 16, width); break;
        case 'p':
            put_str(&o, "0x");
            put_uint(&o, (uintptr_t)va_arg(args, void *), 16, 0);
            break;
        case '%': put_char(&o, '%'); break;
        case '\0': f--; break;
        default: put_char(&o, '?'); break;
        }
    }
    va_end(args);
    if (size)
        buf[o.len] = '\0';
    return o.len;
}

/* lkd_log_format - lkd_log_vformat with variable arguments. */
size_t lkd_log_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = lkd_log_vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* lkd_log_warn - writes one "leakdiff: ..." line to stderr; preserves errno. */
void lkd_log_warn(const char *fmt, ...)
{
    char line[512];
    int saved = errno;
    size_t n = lkd_log_format(line, sizeof line, "%s", "leakdiff: ");
    va_list ap;
    va_start(ap, fmt);
    n += lkd_log_vformat(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    ssize_t w;
    do
        w = write(STDERR_FILENO, line, n);
    while (w < 0 && errno == EINTR);
    errno = saved;
}
