/*
 * snapshot - reads and validates one snapshot file (include/leakdiff/format.h) into plain
 * arrays.
 *
 * Every file is hostile input. Before any byte is used: the magic, the major version, the
 * header checksum and sizes, the file size against the header, the section table checksum,
 * every section's bounds (inside the file, after the table, no overlaps, no duplicate known
 * types), every payload's checksum (before it is decompressed), record sizes and counts
 * against raw sizes, zstd content sizes against raw sizes (so every buffer is allocated at its
 * exact, capped size), and then every cross-reference: string offsets, argv, module build-id
 * lengths, stack depths and frame counts, stack ids, and block addresses (strictly ascending,
 * overflow-checked delta decoding). Unknown section types are bounds-checked and skipped;
 * records longer than ours (a newer minor version) are read by their known prefix.
 *
 * Invariant: lkd_snapshot_read either returns 0 with every field of lkd_snapshot_t valid
 * and cross-checked, or -errno with *snap zeroed and one line in err. It never trusts a
 * size before checking it, never reads outside the file buffer, and never exits.
 */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define MAX_FILE ((uint64_t)16 << 30) /* bytes; larger files are refused */
#define MAX_RAW ((uint64_t)16 << 30)  /* bytes in one decoded section */
/* raw_size / stored_size of a zstd section. zstd cannot exceed it: its densest block is an
 * RLE block, 4 bytes for at most 128 KiB. Regular snapshots do come close (1M identical
 * malloc(16) calls: 5 MB of BLOCKS varints in 223 bytes, 22000x), so no tighter ratio is
 * safe; MAX_RAW is what bounds memory. */
#define MAX_RATIO 32768
#define MAX_STRUCT 65536 /* header_size and section_size a newer minor may use */
#define MAX_SECTIONS 4096

/* Known section types, indexed by type - 1. */
enum { KNOWN_SECTIONS = LKD_FMT_SEC_BLOCKS };
static const char *const section_names[KNOWN_SECTIONS] = {
    "PROCESS", "TOTALS", "STRINGS", "MODULES", "STACKS", "STACK_STATS", "BLOCKS",
};

/* One section's stored extent, for the overlap check. */
typedef struct span {
    uint64_t offset, size;
    uint32_t type;
} span_t;

typedef struct reader {
    const char *path;
    char *err;
    size_t errlen;
    unsigned char *file; /* the whole file, file_size bytes */
    lkd_fmt_header_t header;
    uint64_t table_end; /* first byte after the section table */
    lkd_fmt_section_t known[KNOWN_SECTIONS];
    bool have[KNOWN_SECTIONS];
    ZSTD_DCtx *dctx;
} reader_t;

static void vfail(reader_t *r, const char *section, const char *fmt, va_list ap)
{
    if (!r->err || r->errlen == 0)
        return;
    int n = section ? snprintf(r->err, r->errlen, "%s: section %s: ", r->path, section)
                    : snprintf(r->err, r->errlen, "%s: ", r->path);
    if (n >= 0 && (size_t)n < r->errlen)
        vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
}

/* Writes "PATH: message" to err and returns rc. */
__attribute__((format(printf, 3, 4))) static int fail(reader_t *r, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(r, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

/* Writes "PATH: section NAME: message" to err and returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int bad(reader_t *r, uint32_t type, const char *fmt,
                                                     ...)
{
    char name[32];
    if (type >= 1 && type <= KNOWN_SECTIONS)
        snprintf(name, sizeof name, "%s", section_names[type - 1]);
    else
        snprintf(name, sizeof name, "of type %u", (unsigned)type);
    va_list ap;
    va_start(ap, fmt);
    vfail(r, name, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static uint32_t load32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Reads up to len bytes, fewer only at end of file. Returns the count or -errno. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < ((size_t)1 << 30) ? len - done : (size_t)1 << 30;
        ssize_t n = read(fd, (unsigned char *)buf + done, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

/* Checks the first n bytes of the file (n <= header size) up to the header checksum. */
static int header_check(reader_t *r, const unsigned char *head, size_t n)
{
    lkd_fmt_header_t *h = &r->header;
    if (n == 0)
        return fail(r, -EINVAL, "empty file, not a leakdiff snapshot");
    if (memcmp(head, LKD_FMT_MAGIC, n < sizeof h->magic ? n : sizeof h->magic) != 0)
        return fail(r, -EINVAL, "not a leakdiff snapshot (bad magic)");
    memcpy(h, head, n < sizeof *h ? n : sizeof *h);
    if (n >= offsetof(lkd_fmt_header_t, major) + sizeof h->major && h->major > LKD_FMT_MAJOR)
        return fail(r, -EPROTONOSUPPORT,
                    "snapshot format %u.x is newer than this leakdiff understands (%u.x)",
                    (unsigned)h->major, (unsigned)LKD_FMT_MAJOR);
    if (n < sizeof *h)
        return fail(r, -EINVAL, "truncated (file is %zu bytes, shorter than the %zu-byte header)",
                    n, sizeof *h);
    if (h->major == 0)
        return fail(r, -EINVAL, "unsupported snapshot format 0.%u", (unsigned)h->minor);
    if (lkd_fmt_checksum(head, offsetof(lkd_fmt_header_t, header_checksum)) != h->header_checksum)
        return fail(r, -EINVAL, "header checksum mismatch");
    return 0;
}

/* Checks the header's sizes against each other and our limits. */
static int header_sizes_check(reader_t *r)
{
    const lkd_fmt_header_t *h = &r->header;
    if (h->header_size < sizeof *h || h->header_size > MAX_STRUCT)
        return fail(r, -EINVAL, "header_size %u outside %zu..%d", (unsigned)h->header_size,
                    sizeof *h, MAX_STRUCT);
    if (h->section_size < sizeof(lkd_fmt_section_t) || h->section_size > MAX_STRUCT)
        return fail(r, -EINVAL, "section_size %u outside %zu..%d", (unsigned)h->section_size,
                    sizeof(lkd_fmt_section_t), MAX_STRUCT);
    if (h->section_count > MAX_SECTIONS)
        return fail(r, -EINVAL, "section_count %u exceeds %d", (unsigned)h->section_count,
                    MAX_SECTIONS);
    r->table_end = (uint64_t)h->header_size + (uint64_t)h->section_count * h->section_size;
    if (h->file_size < r->table_end)
        return fail(r, -EINVAL, "file_size %llu is smaller than header and section table (%llu)",
                    (unsigned long long)h->file_size, (unsigned long long)r->table_end);
    if (h->file_size > MAX_FILE)
        return fail(r, -EINVAL, "file_size %llu exceeds the limit of %llu bytes",
                    (unsigned long long)h->file_size, (unsigned long long)MAX_FILE);
    return 0;
}

static int truncated(reader_t *r, unsigned long long actual)
{
    return fail(r, -EINVAL, "truncated (file is %llu bytes, header says %llu)", actual,
                (unsigned long long)r->header.file_size);
}

/* Reads the rest of the file (the header is already in head) into r->file. */
static int body_read(reader_t *r, int fd, const struct stat *st, const unsigned char *head)
{
    uint64_t size = r->header.file_size;
    if (S_ISREG(st->st_mode) && (uint64_t)st->st_size < size)
        return truncated(r, (unsigned long long)st->st_size);
    if (S_ISREG(st->st_mode) && (uint64_t)st->st_size > size)
        return fail(r, -EINVAL, "file is %llu bytes, header says %llu (trailing data)",
                    (unsigned long long)st->st_size, (unsigned long long)size);
    r->file = malloc(size);
    if (!r->file)
        return fail(r, -ENOMEM, "out of memory for %llu bytes", (unsigned long long)size);
    memcpy(r->file, head, sizeof(lkd_fmt_header_t));
    size_t rest = size - sizeof(lkd_fmt_header_t);
    ssize_t n = read_full(fd, r->file + sizeof(lkd_fmt_header_t), rest);
    if (n < 0)
        return fail(r, (int)n, "%s", strerror((int)-n));
    if ((size_t)n < rest)
        return truncated(r, (unsigned long long)(sizeof(lkd_fmt_header_t) + (size_t)n));
    unsigned char extra;
    if (read_full(fd, &extra, 1) == 1)
        return fail(r, -EINVAL, "file is longer than the %llu bytes its header says",
                    (unsigned long long)size);
    return 0;
}

/* Opens path and reads the whole, size-checked file into r->file. */
static int file_load(reader_t *r)
{
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(r, -errno, "%s", strerror(errno));
    unsigned char head[sizeof(lkd_fmt_header_t)];
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    ssize_t n = rc ? rc : read_full(fd, head, sizeof head);
    if (n < 0)
        rc = fail(r, (int)n, "%s", strerror((int)-n));
    if (!rc)
        rc = header_check(r, head, (size_t)n);
    if (!rc)
        rc = header_sizes_check(r);
    if (!rc)
        rc = body_read(r, fd, &st, head);
    close(fd);
    return rc;
}

static int span_cmp(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Fails when two non-empty sections share a byte. spans is sorted in place. */
static int overlap_check(reader_t *r, span_t *spans, size_t n)
{
    qsort(spans, n, sizeof *spans, span_cmp);
    for (size_t i = 1; i < n; i++)
        if (spans[i - 1].offset + spans[i - 1].size > spans[i].offset)
            return bad(r, spans[i].type, "overlaps the section of type %u",
                       (unsigned)spans[i - 1].type);
    return 0;
}

/* Checks one table entry's bounds and records it when its type is known. */
static int entry_check(reader_t *r, const lkd_fmt_section_t *e)
{
    uint64_t size = r->header.file_size;
    if (e->offset < r->table_end || e->offset > size || e->stored_size > size - e->offset)
        return bad(r, e->type, "offset %llu + stored_size %llu outside the payload area %llu..%llu",
                   (unsigned long long)e->offset, (unsigned long long)e->stored_size,
                   (unsigned long long)r->table_end, (unsigned long long)size);
    if (e->type < 1 || e->type > KNOWN_SECTIONS)
        return 0; /* unknown: skipped */
    if (r->have[e->type - 1])
        return bad(r, e->type, "appears twice in the section table");
    r->have[e->type - 1] = true;
    r->known[e->type - 1] = *e;
    return 0;
}

/* Verifies the section table and every entry's bounds; remembers the known sections. */
static int table_parse(reader_t *r)
{
    const lkd_fmt_header_t *h = &r->header;
    const unsigned char *table = r->file + h->header_size;
    if (lkd_fmt_checksum(table, (size_t)h->section_count * h->section_size) != h->table_checksum)
        return fail(r, -EINVAL, "section table checksum mismatch");
    span_t *spans = calloc(h->section_count ? h->section_count : 1, sizeof *spans);
    if (!spans)
        return fail(r, -ENOMEM, "out of memory");
    size_t nspans = 0;
    int rc = 0;
    for (uint32_t i = 0; i < h->section_count && !rc; i++) {
        lkd_fmt_section_t e;
        memcpy(&e, table + (size_t)i * h->section_size, sizeof e);
        rc = entry_check(r, &e);
        if (e.stored_size)
            spans[nspans++] = (span_t){e.offset, e.stored_size, e.type};
    }
    if (!rc)
        rc = overlap_check(r, spans, nspans);
    free(spans);
    return rc;
}

/* Checks a fixed-record section: record_size at least ours, raw_size = count x record_size. */
static int records_check(reader_t *r, const lkd_fmt_section_t *e, size_t ours)
{
    if (e->record_size < ours)
        return bad(r, e->type, "record_size %u is smaller than %zu", (unsigned)e->record_size,
                   ours);
    if (e->count > e->raw_size / e->record_size || e->count * e->record_size != e->raw_size)
        return bad(r, e->type, "raw_size %llu is not count %llu x record_size %u",
                   (unsigned long long)e->raw_size, (unsigned long long)e->count,
                   (unsigned)e->record_size);
    return 0;
}

/* BLOCKS holds varints: between 1 and 10 bytes for each 4 bytes of its records, which
 * bounds count by raw_size (at least 5 bytes per block, so the block array costs at most
 * 8 bytes per raw byte). 1.0 files have 32-byte records (no leader column). */
static int blocks_shape_check(reader_t *r, const lkd_fmt_section_t *e)
{
    if (e->record_size < LKD_FMT_BLOCK_V10_SIZE)
        return bad(r, e->type, "record_size %u is smaller than %d", (unsigned)e->record_size,
                   LKD_FMT_BLOCK_V10_SIZE);
    uint64_t columns = e->record_size / sizeof(uint32_t);
    if (e->count > e->raw_size / 5 || e->raw_size / 10 > e->count * columns)
        return bad(r, e->type, "raw_size %llu does not fit count %llu (1..10 bytes per value)",
                   (unsigned long long)e->raw_size, (unsigned long long)e->count);
    return 0;
}

/* Checks the shape fields of a known section before its payload is decoded. */
static int shape_check(reader_t *r, const lkd_fmt_section_t *e)
{
    static const size_t record[KNOWN_SECTIONS] = {
        [LKD_FMT_SEC_PROCESS - 1] = sizeof(lkd_fmt_process_t),
        [LKD_FMT_SEC_TOTALS - 1] = sizeof(lkd_fmt_totals_t),
        [LKD_FMT_SEC_MODULES - 1] = sizeof(lkd_fmt_module_t),
        [LKD_FMT_SEC_STACK_STATS - 1] = sizeof(lkd_fmt_stack_stat_t),
    }; /* 0: STRINGS and STACKS have no records; BLOCKS has its own check */
    if (e->raw_size > MAX_RAW)
        return bad(r, e->type, "raw_size %llu exceeds the limit of %llu bytes",
                   (unsigned long long)e->raw_size, (unsigned long long)MAX_RAW);
    if (e->type == LKD_FMT_SEC_BLOCKS)
        return blocks_shape_check(r, e);
    if (record[e->type - 1])
        return records_check(r, e, record[e->type - 1]);
    if (e->record_size != 0)
        return bad(r, e->type, "record_size %u, expected 0", (unsigned)e->record_size);
    if (e->type == LKD_FMT_SEC_STRINGS && e->count != e->raw_size)
        return bad(r, e->type, "count %llu differs from raw_size %llu",
                   (unsigned long long)e->count, (unsigned long long)e->raw_size);
    return 0;
}

/* Decompresses a zstd section into a new buffer of exactly raw_size bytes. */
static int zstd_unpack(reader_t *r, const lkd_fmt_section_t *e, const unsigned char *src,
                       unsigned char **out)
{
    if (e->raw_size / MAX_RATIO > e->stored_size)
        return bad(r, e->type, "raw_size %llu is implausible for %llu stored bytes",
                   (unsigned long long)e->raw_size, (unsigned long long)e->stored_size);
    unsigned long long fcs = ZSTD_getFrameContentSize(src, e->stored_size);
    if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs == ZSTD_CONTENTSIZE_UNKNOWN)
        return bad(r, e->type, "not a zstd frame with a content size");
    if (fcs != e->raw_size)
        return bad(r, e->type, "zstd frame holds %llu bytes, raw_size says %llu", fcs,
                   (unsigned long long)e->raw_size);
    if (ZSTD_findFrameCompressedSize(src, e->stored_size) != e->stored_size)
        return bad(r, e->type, "stored bytes are not exactly one zstd frame");
    if (!r->dctx && !(r->dctx = ZSTD_createDCtx()))
        return fail(r, -ENOMEM, "out of memory");
    *out = malloc(e->raw_size ? e->raw_size : 1);
    if (!*out)
        return fail(r, -ENOMEM, "out of memory for %llu bytes", (unsigned long long)e->raw_size);
    size_t n = ZSTD_decompressDCtx(r->dctx, *out, e->raw_size, src, e->stored_size);
    if (ZSTD_isError(n))
        return bad(r, e->type, "zstd: %s", ZSTD_getErrorName(n));
    if (n != e->raw_size)
        return bad(r, e->type, "zstd frame decoded to %zu bytes, expected %llu", n,
                   (unsigned long long)e->raw_size);
    return 0;
}

/* Verifies a section's checksum and shape and yields its raw payload: in the file buffer
 * for raw sections, in *owned (caller frees) for zstd ones. */
static int payload_get(reader_t *r, const lkd_fmt_section_t *e, const unsigned char **raw,
                       unsigned char **owned)
{
    const unsigned char *src = r->file + e->offset;
    if (lkd_fmt_checksum(src, e->stored_size) != e->checksum)
        return bad(r, e->type, "checksum mismatch");
    int rc = shape_check(r, e);
    if (rc)
        return rc;
    if (e->codec == LKD_FMT_CODEC_RAW && e->raw_size != e->stored_size)
        return bad(r, e->type, "raw_size %llu differs from stored_size %llu of a raw section",
                   (unsigned long long)e->raw_size, (unsigned long long)e->stored_size);
    if (e->codec == LKD_FMT_CODEC_RAW) {
        *raw = src;
        return 0;
    }
    if (e->codec != LKD_FMT_CODEC_ZSTD)
        return bad(r, e->type, "unknown codec %u", (unsigned)e->codec);
    rc = zstd_unpack(r, e, src, owned);
    *raw = *owned;
    return rc;
}

/* Allocates n elements of size bytes (n already bounded by a checked raw_size). */
static void *array_new(reader_t *r, size_t n, size_t size, int *rc)
{
    void *p = malloc(n ? n * size : 1);
    if (!p)
        *rc = fail(r, -ENOMEM, "out of memory for %zu x %zu bytes", n, size);
    return p;
}

static int process_decode(reader_t *r, lkd_snapshot_t *snap, const lkd_fmt_section_t *e,
                          const unsigned char *raw)
{
    if (e->count != 1)
        return bad(r, e->type, "count %llu, expected 1", (unsigned long long)e->count);
    memcpy(&snap->process, raw, sizeof snap->process);
    return 0;
}

static int totals_decode(reader_t *r, lkd_snapshot_t *snap, const lkd_fmt_section_t *e,
                         const unsigned char *raw)
{
    if (e->count != 1)
        return bad(r, e->type, "count %llu, expected 1", (unsigned long long)e->count);
    memcpy(&snap->totals, raw, sizeof snap->totals);
    return 0;
}

static int strings_decode(reader_t *r, lkd_snapshot_t *snap, const lkd_fmt_section_t *e,
                          const unsigned char *raw)
{
    if (e->raw_size == 0 || raw[e->raw_size - 1] != '\0')
        return bad(r, e->type, "does not end with NUL");
    int rc = 0;
    snap->strings = array_new(r, e->raw_size + 1, 1, &rc);
    if (rc)
        return rc;
    memcpy(snap->strings, raw, e->raw_size);
    snap->strings[e->raw_size] = '\0';
    snap->strings_len = e->raw_size;
    return 0;
}

/* Checks one STRINGS offset named field. */
static int string_check(reader_t *r, const lkd_snapshot_t *snap, uint32_t type, const char *field,
                        uint32_t offset)
{
    if (offset >= snap->strings_len)
        return bad(r, type, "%s offset %u outside STRINGS (%zu bytes)", field, (unsigned)offset,
                   snap->strings_len);
    return 0;
}

/* Cross-checks PROCESS against STRINGS: its string offsets and the argc argv strings. */
static int process_strings_check(reader_t *r, const lkd_snapshot_t *snap)
{
    const lkd_fmt_process_t *p = &snap->process;
    const uint32_t t = LKD_FMT_SEC_PROCESS;
    int rc = string_check(r, snap, t, "exe", p->exe);
    if (!rc)
        rc = string_check(r, snap, t, "label", p->label);
    if (!rc)
        rc = string_check(r, snap, t, "cwd", p->cwd);
    if (!rc)
        rc = string_check(r, snap, t, "argv", p->argv);
    size_t off = p->argv;
    for (uint32_t i = 0; i < p->argc && !rc; i++) {
        if (off >= snap->strings_len)
            return bad(r, t, "argv[%u] of argc %u lies outside STRINGS", (unsigned)i,
                       (unsigned)p->argc);
        off += strlen(snap->strings + off) + 1;
    }
    return rc;
}

static int modules_decode(reader_t *r, lkd_snapshot_t *snap, const lkd_fmt_section_t *e,
                          const unsigned char *raw)
{
    int rc = 0;
    snap->modules = array_new(r, e->count, sizeof *snap->modules, &rc);
    if (rc)
        return rc;
    snap->module_count = e->count;
    for (size_t i = 0; i < e->count && !rc; i++) {
        lkd_fmt_module_t *m = &snap->modules[i];
        memcpy(m, raw + i * e->record_size, sizeof *m);
        if (m->build_id_len > LKD_FMT_BUILD_ID_MAX)
            return bad(r, e->type, "module %zu: build_id_len %u exceeds %d", i,
                       (unsigned)m->build_id_len, LKD_FMT_BUILD_ID_MAX);
        if (m->path >= snap->strings_len)
            return bad(r, e->type, "module %zu: path offset %u outside STRINGS (%zu bytes)", i,
                       (unsigned)m->path, snap->strings_len);
    }
    return rc;
}

/* STACKS: depths (padded to 8 bytes), then frames; depths bounded and summing to frames. */
static int stacks_decode(reader_t *r, lkd_snapshot_t *snap, const lkd_fmt_section_t *e,
                         const unsigned char *raw)
{
    if (e->count > e->raw_size / sizeof(uint32_t))
        return bad(r, e->type, "count %llu does not fit raw_size %llu",
                   (unsigned long long)e->count, (unsigned long long)e->raw_size);
    size_t n = e->count, head = (n * sizeof(uint32_t) + 7) & ~(size_t)7;
    if (head > e->raw_size || (e->raw_size - head) % sizeof(uint64_t))
        return bad(r, e->type, "raw_size %llu does not hold %zu depths and whole frames",
                   (unsigned long long)e->raw_size, n);
    for (size_t i = n * sizeof(uint32_t); i < head; i++)
        if (raw[i])
            return bad(r, e->type, "padding after the depths is not zero");
    size_t frames = (e->raw_size - head) / sizeof(uint64_t);
    int rc = 0;
    snap->stack_depths = array_new(r, n, sizeof(uint32_t), &rc);
    snap->stack_offsets = rc ? NULL : array_new(r, n, sizeof(uint64_t), &rc);
    snap->frames = rc ? NULL : array_new(r, frames, sizeof(uint64_t), &rc);
    if (rc)
        return rc;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t d = load32(raw + i * sizeof(uint32_t));
        if (d > LKD_FMT_MAX_DEPTH)
            return bad(r, e->type, "stack %zu: depth %u exceeds %d", i, (unsigned)d,
                       LKD_FMT_MAX_DEPTH);
        snap->stack_depths[i] = d;
        snap->stack_offsets[i] = sum;
        sum += d;
    }
    if (sum != frames)
        return bad(r, e->type, "depths sum to %llu frames, section holds %zu",
                   (unsigned long long)sum, frames);
    memcpy(snap->frames, raw + head, frames * sizeof(uint64_t));
    snap->stack_count = n;
    snap->frame_count = frames;
    return 0;
}

static int stack_stats_decode(reader_t *r, lkd_snapshot_t *snap, const lkd_fmt_section_t *e,
                              const unsigned char *raw)
{
    int rc = 0;
    snap->stack_stats = array_new(r, e->count, sizeof *snap->stack_stats, &rc);
    if (rc)
        return rc;
    snap->stack_stat_count = e->count;
    for (size_t i = 0; i < e->count; i++) {
        lkd_fmt_stack_stat_t *s = &snap->stack_stats[i];
        memcpy(s, raw + i * e->record_size, sizeof *s);
        if (s->stack >= snap->stack_count)
            return bad(r, e->type, "record %zu: stack id %u >= stack count %zu", i,
                       (unsigned)s->stack, snap->stack_count);
    }
    return 0;
}

/* A read position in a varint stream. */
typedef struct cursor {
    const unsigned char *p, *end;
} cursor_t;

/* Reads one LEB128 varint of at most 10 bytes that fits 64 bits; false at a bad one. */
static bool varint_get(cursor_t *c, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && c->p < c->end; shift += 7) {
        unsigned char byte = *c->p++;
        if (shift == 63 && byte > 1)
            return false;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Reads a varint column into 64-bit fields of n blocks (field = offset in the block). */
static bool column_get64(cursor_t *c, lkd_fmt_block_t *b, size_t n, size_t field)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        if (!varint_get(c, &v))
            return false;
        memcpy((unsigned char *)&b[i] + field, &v, sizeof v);
    }
    return true;
}

/* Reads a varint column into 32-bit fields; false also when a value exceeds 32 bits. */
static bool column_get32(cursor_t *c, lkd_fmt_block_t *b, size_t n, size_t field)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        if (!varint_get(c, &v) || v > UINT32_MAX)
            return false;
        uint32_t v32 = (uint32_t)v;
        memcpy((unsigned char *)&b[i] + field, &v32, sizeof v32);
    }
    return true;
}

/* Undoes the address deltas (strictly ascending, overflow-checked) and the zigzag-coded
 * birth differences, and checks stack ids. */
static int blocks_undelta(reader_t *r, const lkd_snapshot_t *snap, lkd_fmt_block_t *b, size_t n)
{
    uint64_t address = 0, birth = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && b[i].address == 0)
            return bad(r, LKD_FMT_SEC_BLOCKS, "block %zu: address not above the previous one", i);
        if (__builtin_add_overflow(address, b[i].address, &address))
            return bad(r, LKD_FMT_SEC_BLOCKS, "block %zu: address delta overflows", i);
        b[i].address = address;
        birth += (b[i].birth >> 1) ^ (0 - (b[i].birth & 1)); /* wraps by design */
        b[i].birth = birth;
        if (b[i].stack >= snap->stack_count)
            return bad(r, LKD_FMT_SEC_BLOCKS, "block %zu: stack id %u >= stack count %zu", i,
                       (unsigned)b[i].stack, snap->stack_count);
    }
    return 0;
}

/* BLOCKS: varint columns address delta, size, birth difference, stack, flags, and since 1.1
 * leader (absent in 1.0 files: record_size 32); columns of a newer minor (record_size
 * larger than ours) follow and are ignored. */
static int blocks_decode(reader_t *r, lkd_snapshot_t *snap, const lkd_fmt_section_t *e,
                         const unsigned char *raw)
{
    size_t n = e->count;
    cursor_t c = {raw, raw + e->raw_size};
    int rc = 0;
    lkd_fmt_block_t *b = snap->blocks = array_new(r, n, sizeof *b, &rc);
    if (rc)
        return rc;
    memset(b, 0, n * sizeof *b); /* leader of 1.0 files, reserved */
    if (!column_get64(&c, b, n, offsetof(lkd_fmt_block_t, address)) ||
        !column_get64(&c, b, n, offsetof(lkd_fmt_block_t, size)) ||
        !column_get64(&c, b, n, offsetof(lkd_fmt_block_t, birth)) ||
        !column_get32(&c, b, n, offsetof(lkd_fmt_block_t, stack)) ||
        !column_get32(&c, b, n, offsetof(lkd_fmt_block_t, flags)) ||
        (e->record_size > LKD_FMT_BLOCK_V10_SIZE &&
         !column_get32(&c, b, n, offsetof(lkd_fmt_block_t, leader))))
        return bad(r, e->type, "bad or truncated varint column");
    for (size_t i = 0; i < n; i++)
        if (b[i].leader > n)
            return bad(r, e->type, "block %zu: leader %u beyond the %zu blocks", i,
                       (unsigned)b[i].leader, n);
    if (e->record_size <= sizeof *b && c.p != c.end)
        return bad(r, e->type, "%zu bytes after the last column", (size_t)(c.end - c.p));
    rc = blocks_undelta(r, snap, b, n);
    if (!rc)
        snap->block_count = n;
    return rc;
}

typedef int (*decode_fn)(reader_t *r, lkd_snapshot_t *snap, const lkd_fmt_section_t *e,
                         const unsigned char *raw);

/* Decodes the known sections in dependency order (STRINGS before what refers to it,
 * STACKS before stack ids). Optional sections that are absent stay empty. */
static int sections_decode(reader_t *r, lkd_snapshot_t *snap)
{
    static const struct {
        uint32_t type;
        bool required;
        decode_fn decode;
    } order[] = {
        {LKD_FMT_SEC_PROCESS, true, process_decode},
        {LKD_FMT_SEC_TOTALS, true, totals_decode},
        {LKD_FMT_SEC_STRINGS, true, strings_decode},
        {LKD_FMT_SEC_MODULES, false, modules_decode},
        {LKD_FMT_SEC_STACKS, true, stacks_decode},
        {LKD_FMT_SEC_STACK_STATS, false, stack_stats_decode},
        {LKD_FMT_SEC_BLOCKS, true, blocks_decode},
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        uint32_t t = order[i].type;
        if (!r->have[t - 1] && order[i].required)
            return fail(r, -EINVAL, "required section %s is missing", section_names[t - 1]);
        if (!r->have[t - 1])
            continue;
        const unsigned char *raw = NULL;
        unsigned char *owned = NULL;
        int rc = payload_get(r, &r->known[t - 1], &raw, &owned);
        if (!rc)
            rc = order[i].decode(r, snap, &r->known[t - 1], raw);
        free(owned);
        if (!rc && t == LKD_FMT_SEC_STRINGS)
            rc = process_strings_check(r, snap);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * lkd_snapshot_read - reads and validates the snapshot file at path into *snap, which the
 * caller releases with lkd_snapshot_free. See the file comment for what is checked.
 *
 * Returns 0, or -errno with *snap zeroed and a one-line "PATH: problem" message in err (if
 * err is not NULL): the open/read error (-ENOENT, -EACCES, ...), -EINVAL for a file that is
 * not a snapshot, truncated or corrupt, -EPROTONOSUPPORT for a newer major version,
 * -ENOMEM. Thread-safe; no global state.
 */
int lkd_snapshot_read(const char *path, lkd_snapshot_t *snap, char *err, size_t errlen)
{
    reader_t r = {.path = path, .err = err, .errlen = errlen};
    memset(snap, 0, sizeof *snap);
    if (err && errlen)
        err[0] = '\0';
    int rc = file_load(&r);
    if (rc)
        goto out;
    rc = table_parse(&r);
    if (rc)
        goto out;
    rc = sections_decode(&r, snap);
    if (rc)
        goto out;
    snap->major = r.header.major;
    snap->minor = r.header.minor;
    snap->path = strdup(path);
    if (!snap->path)
        rc = fail(&r, -ENOMEM, "out of memory");
out:
    ZSTD_freeDCtx(r.dctx);
    free(r.file);
    if (rc)
        lkd_snapshot_free(snap);
    return rc;
}

/* lkd_snapshot_free - releases everything lkd_snapshot_read allocated and zeroes *snap.
 * Safe on a zeroed snapshot and twice in a row. */
void lkd_snapshot_free(lkd_snapshot_t *snap)
{
    free(snap->path);
    free(snap->strings);
    free(snap->modules);
    free(snap->stack_depths);
    free(snap->stack_offsets);
    free(snap->frames);
    free(snap->stack_stats);
    free(snap->blocks);
    memset(snap, 0, sizeof *snap);
}

/* lkd_snapshot_string - the NUL-terminated string at a STRINGS offset, owned by snap;
 * "" for an offset out of range (lkd_snapshot_read already rejected those it knows of). */
const char *lkd_snapshot_string(const lkd_snapshot_t *snap, uint32_t offset)
{
    return offset < snap->strings_len ? snap->strings + offset : "";
}
