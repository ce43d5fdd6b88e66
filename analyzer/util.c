/*
 * util - growable string buffer, JSON string escaping, human-readable sizes.
 *
 * Invariants: a non-NULL lkd_buf_t.data is always NUL-terminated at data[len]; once err is
 * set, the buffer's contents stop changing. JSON output is always valid: every byte that
 * is not part of a well-formed UTF-8 sequence becomes U+FFFD, every control character is
 * escaped. Never does I/O.
 */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for extra more bytes plus the NUL. Returns 0 or -ENOMEM (then sticky). */
static int buf_reserve(lkd_buf_t *b, size_t extra)
{
    if (b->err)
        return b->err;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->err = -ENOMEM;
        return b->err;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) {
        b->err = -ENOMEM;
        return b->err;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/*
 * Appends n bytes of s (which need not be NUL-terminated). Returns 0 or -ENOMEM; after a
 * failure the buffer keeps its old contents and ignores further appends.
 */
int lkd_buf_append(lkd_buf_t *b, const char *s, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Appends the NUL-terminated string s. Returns 0 or -ENOMEM (see lkd_buf_append). */
int lkd_buf_puts(lkd_buf_t *b, const char *s)
{
    return lkd_buf_append(b, s, strlen(s));
}

/* Appends printf-formatted text. Returns 0, -ENOMEM, or -EINVAL for a bad format. */
int lkd_buf_printf(lkd_buf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return lkd_buf_append(b, small, (size_t)n);
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* The buffer's contents as a C string; "" for a buffer that never grew. Owned by b. */
const char *lkd_buf_str(const lkd_buf_t *b)
{
    return b->data ? b->data : "";
}

/* Empties b but keeps its memory and clears a sticky error. */
void lkd_buf_reset(lkd_buf_t *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Releases b's memory; b is empty and reusable afterwards. */
void lkd_buf_free(lkd_buf_t *b)
{
    free(b->data);
    *b = (lkd_buf_t)LKD_BUF_INIT;
}

static bool utf8_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/*
 * Length (1..4) of the well-formed UTF-8 sequence at s, or 0 when s does not start one
 * (stray continuation byte, overlong form, surrogate, beyond U+10FFFF, cut short). Reads
 * past s[0] only while the bytes so far are valid, so a NUL stops it.
 */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return utf8_cont(s[1]) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return s[1] >= lo && s[1] <= hi && utf8_cont(s[2]) ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return s[1] >= lo && s[1] <= hi && utf8_cont(s[2]) && utf8_cont(s[3]) ? 4 : 0;
    }
    return 0;
}

/* The escape for ASCII byte c, written to esc (7 bytes), or NULL when c needs none. */
static const char *json_escape_ascii(unsigned char c, char esc[7])
{
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
    }
    if (c >= 0x20 && c != 0x7f)
        return NULL;
    snprintf(esc, 7, "\\u%04x", c);
    return esc;
}

/*
 * Appends s as a JSON string literal, quotes included, or `null` when s is NULL.
 * Control characters are escaped; bytes that are not well-formed UTF-8 become "\ufffd",
 * so the result always parses. Returns 0 or -ENOMEM.
 */
int lkd_json_string(lkd_buf_t *b, const char *s)
{
    if (!s)
        return lkd_buf_puts(b, "null");
    const unsigned char *p = (const unsigned char *)s, *run = p;
    lkd_buf_puts(b, "\"");
    while (*p) {
        char esc[7];
        size_t n = utf8_len(p);
        const char *rep = n == 1 ? json_escape_ascii(*p, esc) : n == 0 ? "\\ufffd" : NULL;
        if (!rep) {
            p += n;
            continue;
        }
        lkd_buf_append(b, (const char *)run, (size_t)(p - run));
        lkd_buf_puts(b, rep);
        run = ++p;
    }
    lkd_buf_append(b, (const char *)run, (size_t)(p - run));
    return lkd_buf_puts(b, "\"");
}

/*
 * Makes b->data[from..] safe to print on a terminal: control characters other than '\n'
 * and '\t', C1 controls (U+0080..U+009F) and bytes that are not well-formed UTF-8 each
 * become '?', so a crafted snapshot cannot send escape sequences. In place; never grows.
 */
void lkd_text_sanitize(lkd_buf_t *b, size_t from)
{
    if (!b->data || from >= b->len)
        return;
    unsigned char *p = (unsigned char *)b->data + from, *end = (unsigned char *)b->data + b->len;
    unsigned char *w = p;
    while (p < end) {
        size_t n = *p ? utf8_len(p) : 0;
        bool c0 = n == 1 && ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f);
        bool c1 = n == 2 && p[0] == 0xc2 && p[1] < 0xa0;
        if (n == 0 || c0 || c1) {
            *w++ = '?';
            p += n ? n : 1;
            continue;
        }
        memmove(w, p, n);
        w += n;
        p += n;
    }
    *w = '\0';
    b->len = (size_t)((char *)w - b->data);
}

/* Formats magnitude with an optional sign prefix ("" or "+" or "-"). */
static void human_size(char out[LKD_HUMAN_SIZE_LEN], const char *sign, uint64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(out, LKD_HUMAN_SIZE_LEN, "%s%" PRIu64 " B", sign, bytes);
        return;
    }
    double v = (double)bytes / 1024;
    size_t u = 0;
    /* 1023.95 would print as "1024.0": move to the next unit instead. */
    while (v >= 1023.95 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    snprintf(out, LKD_HUMAN_SIZE_LEN, "%s%.1f %s", sign, v, units[u]);
}

/*
 * Writes bytes in human units to out: "100 B" below 1 KiB, else one decimal of KiB, MiB,
 * GiB, ... ("1.5 KiB"). Exact figures belong in JSON; this is for people.
 */
void lkd_human_size(char out[LKD_HUMAN_SIZE_LEN], uint64_t bytes)
{
    human_size(out, "", bytes);
}

/* As lkd_human_size, for a signed change, always with a sign: "+1.5 KiB", "-100 B", "+0 B". */
void lkd_human_size_diff(char out[LKD_HUMAN_SIZE_LEN], int64_t diff)
{
    uint64_t mag = diff < 0 ? (uint64_t)0 - (uint64_t)diff : (uint64_t)diff;
    human_size(out, diff < 0 ? "-" : "+", mag);
}

/* lkd_print_warnings - see util.h. */
void lkd_print_warnings(const char *w)
{
    lkd_buf_t b = LKD_BUF_INIT;
    while (w && *w) {
        size_t n = strcspn(w, "\n");
        if (n)
            lkd_buf_printf(&b, "leakdiff: warning: %.*s\n", (int)n, w);
        w += n + (w[n] == '\n');
    }
    lkd_text_sanitize(&b, 0);
    fputs(lkd_buf_str(&b), stderr);
    lkd_buf_free(&b);
}
