/*
 * snapfile - encodes one snapshot into the file format of include/leakdiff/format.h and
 * writes it with write(2).
 *
 * Runs inside the preloaded shim of arbitrary programs, so it never calls malloc, calloc,
 * realloc, free or stdio: every byte of scratch memory, zstd's working memory included,
 * comes from the lkd_snapfile_mem_t callbacks (which must return memory aligned for any
 * type, like malloc). It never touches the live tables either; it sees only the arrays in
 * lkd_snapfile_input_t, so the unit tests can drive it with synthetic data.
 *
 * Invariants of the file it writes: header, section table, then the payloads of PROCESS,
 * TOTALS, STRINGS, MODULES, STACKS, STACK_STATS and BLOCKS back to back in that order; every
 * section present (possibly empty); each payload a single zstd frame (content size and
 * checksum set) or raw bytes when compression is off or would not make it smaller.
 * count is the number of records, except for STRINGS where it is the number of bytes.
 * It refuses (-EINVAL) input that the reader would reject, so it never writes a file that
 * leakdiff cannot read. errno is preserved for the host program.
 */
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem, ZSTD_createCCtx_advanced */
#include "snapfile.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

enum { SECTION_COUNT = 7 };

/* Bytes in front of every zstd allocation recording its size: ZSTD's customFree does not
 * pass one, our free callback needs it. 16 keeps zstd's buffers 16-byte aligned. */
#define ZMEM_HEADER 16

_Static_assert(LKD_FMT_HOST_OK, "the format is little-endian and so is the writer");

/* Largest single write(2); Linux transfers at most 0x7ffff000 bytes per call anyway. */
#define MAX_WRITE ((size_t)1 << 30)

/* One section on its way to the file. */
typedef struct section {
    lkd_fmt_section_t entry; /* table entry; offset, stored_size, checksum set late */
    const void *raw;         /* payload before compression */
    void *scratch;           /* owned buffer behind raw (STACKS, BLOCKS), or NULL */
    size_t scratch_size;
    void *packed; /* owned zstd output, or NULL */
    size_t packed_cap;
    const void *stored; /* what goes into the file: raw or packed */
} section_t;

typedef struct writer {
    const lkd_snapfile_mem_t *mem;
    ZSTD_CCtx *cctx;
    section_t sec[SECTION_COUNT];
} writer_t;

static void *zstd_alloc(void *opaque, size_t size)
{
    writer_t *w = opaque;
    if (size > SIZE_MAX - ZMEM_HEADER)
        return NULL;
    unsigned char *p = w->mem->alloc(w->mem->ctx, size + ZMEM_HEADER);
    if (!p)
        return NULL;
    memcpy(p, &size, sizeof size);
    return p + ZMEM_HEADER;
}

static void zstd_free(void *opaque, void *address)
{
    writer_t *w = opaque;
    if (!address)
        return;
    unsigned char *p = (unsigned char *)address - ZMEM_HEADER;
    size_t size;
    memcpy(&size, p, sizeof size);
    w->mem->free(w->mem->ctx, p, size + ZMEM_HEADER);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len < MAX_WRITE ? len : MAX_WRITE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* True when every string offset in the process record, and each of the argc strings from
 * argv on, lies inside STRINGS (which input_ok has found NUL-terminated). */
static bool process_strings_ok(const lkd_snapfile_input_t *in)
{
    const lkd_fmt_process_t *p = &in->process;
    size_t n = in->strings_len, off = p->argv;
    if (p->exe >= n || p->label >= n || p->cwd >= n || p->argv >= n)
        return false;
    for (uint32_t i = 0; i < p->argc; i++) {
        if (off >= n)
            return false;
        off += strnlen(in->strings + off, n - off) + 1;
    }
    return true;
}

/* True when the stack table is consistent: depths bounded and summing to frame_count. */
static bool stacks_ok(const lkd_snapfile_input_t *in)
{
    if (in->stack_count && !in->stack_depths)
        return false;
    uint64_t sum = 0;
    for (size_t i = 0; i < in->stack_count; i++) {
        if (in->stack_depths[i] > LKD_FMT_MAX_DEPTH)
            return false;
        sum += in->stack_depths[i];
    }
    return sum == in->frame_count && (!sum || in->frames);
}

/* Checks what the reader would check and cheaply can be checked here (block order and
 * block stack ids are checked while the blocks are encoded). */
static bool input_ok(const lkd_snapfile_input_t *in)
{
    if (!in->strings || in->strings_len == 0 || in->strings[in->strings_len - 1] != '\0')
        return false;
    if (!process_strings_ok(in) || !stacks_ok(in))
        return false;
    if ((in->module_count && !in->modules) || (in->block_count && !in->blocks) ||
        (in->stack_stat_count && !in->stack_stats))
        return false;
    for (size_t i = 0; i < in->module_count; i++)
        if (in->modules[i].path >= in->strings_len ||
            in->modules[i].build_id_len > LKD_FMT_BUILD_ID_MAX)
            return false;
    for (size_t i = 0; i < in->stack_stat_count; i++)
        if (in->stack_stats[i].stack >= in->stack_count)
            return false;
    return true;
}

static void section_init(section_t *s, uint32_t type, const void *raw, uint64_t raw_size,
                         uint64_t count, uint32_t record_size)
{
    memset(s, 0, sizeof *s);
    s->entry.type = type;
    s->entry.raw_size = raw_size;
    s->entry.count = count;
    s->entry.record_size = record_size;
    s->raw = raw;
}

/* Gives section s an owned scratch buffer of size bytes as its raw payload. */
static void *section_scratch(writer_t *w, section_t *s, size_t size)
{
    if (size == 0)
        return NULL;
    s->scratch = w->mem->alloc(w->mem->ctx, size);
    s->scratch_size = s->scratch ? size : 0;
    s->raw = s->scratch;
    return s->scratch;
}

/* STACKS: uint32 depths, zero-padded to 8 bytes, then the frames. Returns 0 or -ENOMEM. */
static int stacks_encode(writer_t *w, section_t *s, const lkd_snapfile_input_t *in)
{
    size_t head = (in->stack_count * sizeof(uint32_t) + 7) & ~(size_t)7;
    size_t size = head + in->frame_count * sizeof(uint64_t);
    section_init(s, LKD_FMT_SEC_STACKS, NULL, size, in->stack_count, 0);
    unsigned char *p = section_scratch(w, s, size);
    if (size && !p)
        return -ENOMEM;
    if (size) {
        memset(p, 0, head);
        memcpy(p, in->stack_depths, in->stack_count * sizeof(uint32_t));
        memcpy(p + head, in->frames, in->frame_count * sizeof(uint64_t));
    }
    return 0;
}

enum { BLOCK_COLUMNS = 6 }; /* address delta, size, birth difference, stack, flags, leader */

static unsigned char *varint_put(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* Signed difference a - b, zigzag-coded so that small differences of either sign stay small. */
static uint64_t zigzag_diff(uint64_t a, uint64_t b)
{
    uint64_t d = a - b;
    return (d << 1) ^ (0 - (d >> 63));
}

/* Most bytes a column of n values can take: 10 per 64-bit value, 5 per 32-bit value; all
 * columns together at most BLOCKS_CAP bytes per block. */
enum { BLOCKS_CAP = 3 * 10 + (BLOCK_COLUMNS - 3) * 5 };
static size_t column_cap(int column, size_t n)
{
    return (column < 3 ? 10 : 5) * n;
}

/* Writes the BLOCKS columns of format.h in one pass over the blocks (five passes over a
 * 32-byte stride cost three times as much), each column at its own worst-case offset in
 * out, column_cap() apart, then moves them together. Returns the stream's length, or 0
 * when the blocks are not strictly ascending or name a stack that does not exist. */
static size_t blocks_columns(const lkd_fmt_block_t *b, size_t n, size_t stack_count,
                             unsigned char *out)
{
    unsigned char *start[BLOCK_COLUMNS], *col[BLOCK_COLUMNS];
    for (int k = 0; k < BLOCK_COLUMNS; k++)
        start[k] = col[k] = k ? start[k - 1] + column_cap(k - 1, n) : out;
    uint64_t address = 0, birth = 0;
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && b[i].address <= address) || b[i].stack >= stack_count)
            return 0;
        col[0] = varint_put(col[0], b[i].address - address);
        col[1] = varint_put(col[1], b[i].size);
        col[2] = varint_put(col[2], zigzag_diff(b[i].birth, birth));
        col[3] = varint_put(col[3], b[i].stack);
        col[4] = varint_put(col[4], b[i].flags);
        col[5] = varint_put(col[5], b[i].leader);
        address = b[i].address;
        birth = b[i].birth;
    }
    unsigned char *end = col[0];
    for (int k = 1; k < BLOCK_COLUMNS; k++) {
        memmove(end, start[k], (size_t)(col[k] - start[k]));
        end += col[k] - start[k];
    }
    return (size_t)(end - out);
}

/* BLOCKS, column by column. The scratch buffer is sized for the worst case (BLOCKS_CAP bytes
 * per block) but only the ~6 bytes per block actually written are touched. Returns 0, -ENOMEM,
 * or -EINVAL for unsorted/bad blocks. */
static int blocks_encode(writer_t *w, section_t *s, const lkd_snapfile_input_t *in)
{
    size_t n = in->block_count;
    section_init(s, LKD_FMT_SEC_BLOCKS, NULL, 0, n, sizeof(lkd_fmt_block_t));
    if (n == 0)
        return 0;
    unsigned char *p = section_scratch(w, s, (size_t)BLOCKS_CAP * n);
    if (!p)
        return -ENOMEM;
    s->entry.raw_size = blocks_columns(in->blocks, n, in->stack_count, p);
    return s->entry.raw_size ? 0 : -EINVAL;
}

static void section_drop_scratch(writer_t *w, section_t *s)
{
    if (s->scratch)
        w->mem->free(w->mem->ctx, s->scratch, s->scratch_size);
    s->scratch = NULL;
}

/* Compresses s into one zstd frame when that makes it smaller; otherwise stores it raw.
 * Returns 0 or -ENOMEM/-EIO. */
static int section_pack(writer_t *w, section_t *s)
{
    size_t raw = s->entry.raw_size;
    s->stored = s->raw;
    s->entry.codec = LKD_FMT_CODEC_RAW;
    s->entry.stored_size = raw;
    if (!w->cctx || raw == 0)
        return 0;
    s->packed_cap = ZSTD_compressBound(raw);
    s->packed = w->mem->alloc(w->mem->ctx, s->packed_cap);
    if (!s->packed)
        return -ENOMEM;
    size_t n = ZSTD_compress2(w->cctx, s->packed, s->packed_cap, s->raw, raw);
    if (ZSTD_isError(n))
        return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? -ENOMEM : -EIO;
    if (n >= raw)
        return 0;
    s->stored = s->packed;
    s->entry.codec = LKD_FMT_CODEC_ZSTD;
    s->entry.stored_size = n;
    section_drop_scratch(w, s); /* lowers the peak before the next section */
    return 0;
}

/* Creates w->cctx with the callbacks' memory. Returns 0 or -ENOMEM/-EINVAL. */
static int cctx_open(writer_t *w, int level)
{
    ZSTD_customMem cmem = {zstd_alloc, zstd_free, w};
    w->cctx = ZSTD_createCCtx_advanced(cmem);
    if (!w->cctx)
        return -ENOMEM;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1)))
        return -EINVAL;
    return 0;
}

/* Fills in every section's raw payload. Returns 0 or -errno. */
static int sections_build(writer_t *w, const lkd_snapfile_input_t *in)
{
    section_t *s = w->sec;
    section_init(&s[0], LKD_FMT_SEC_PROCESS, &in->process, sizeof in->process, 1,
                 sizeof in->process);
    section_init(&s[1], LKD_FMT_SEC_TOTALS, &in->totals, sizeof in->totals, 1, sizeof in->totals);
    section_init(&s[2], LKD_FMT_SEC_STRINGS, in->strings, in->strings_len, in->strings_len, 0);
    section_init(&s[3], LKD_FMT_SEC_MODULES, in->modules,
                 in->module_count * sizeof(lkd_fmt_module_t), in->module_count,
                 sizeof(lkd_fmt_module_t));
    int rc = stacks_encode(w, &s[4], in);
    if (rc)
        return rc;
    section_init(&s[5], LKD_FMT_SEC_STACK_STATS, in->stack_stats,
                 in->stack_stat_count * sizeof(lkd_fmt_stack_stat_t), in->stack_stat_count,
                 sizeof(lkd_fmt_stack_stat_t));
    return blocks_encode(w, &s[6], in);
}

/* Writes header, table and payloads. Returns 0 or -errno from write(2). */
static int file_write(int fd, writer_t *w)
{
    struct {
        lkd_fmt_header_t header;
        lkd_fmt_section_t table[SECTION_COUNT];
    } head;
    _Static_assert(sizeof head ==
                       sizeof(lkd_fmt_header_t) + SECTION_COUNT * sizeof(lkd_fmt_section_t),
                   "no padding between header and table");
    memset(&head, 0, sizeof head);
    uint64_t offset = sizeof head;
    for (int i = 0; i < SECTION_COUNT; i++) {
        section_t *s = &w->sec[i];
        s->entry.offset = offset;
        s->entry.checksum = lkd_fmt_checksum(s->stored, s->entry.stored_size);
        offset += s->entry.stored_size;
        head.table[i] = s->entry;
    }
    lkd_fmt_header_t *h = &head.header;
    memcpy(h->magic, LKD_FMT_MAGIC, sizeof h->magic);
    h->major = LKD_FMT_MAJOR;
    h->minor = LKD_FMT_MINOR;
    h->header_size = sizeof *h;
    h->section_size = sizeof(lkd_fmt_section_t);
    h->section_count = SECTION_COUNT;
    h->file_size = offset;
    h->table_checksum = lkd_fmt_checksum(head.table, sizeof head.table);
    h->header_checksum = lkd_fmt_checksum(h, offsetof(lkd_fmt_header_t, header_checksum));
    int rc = write_all(fd, &head, sizeof head);
    for (int i = 0; i < SECTION_COUNT && !rc; i++)
        rc = write_all(fd, w->sec[i].stored, w->sec[i].entry.stored_size);
    return rc;
}

static void writer_release(writer_t *w)
{
    for (int i = 0; i < SECTION_COUNT; i++) {
        section_t *s = &w->sec[i];
        section_drop_scratch(w, s);
        if (s->packed)
            w->mem->free(w->mem->ctx, s->packed, s->packed_cap);
    }
    ZSTD_freeCCtx(w->cctx); /* accepts NULL */
}

/*
 * lkd_snapfile_write - encodes the snapshot described by in and writes it to fd, from the
 * current file position, as one complete file of the format in include/leakdiff/format.h.
 *
 * Sections are zstd-compressed at in->zstd_level when it is > 0 (a section that would not
 * shrink is stored raw), stored raw otherwise. All scratch and zstd memory comes from mem
 * and is returned to it before this returns; in is only read. Takes no locks; the caller
 * keeps in's arrays stable meanwhile. Never calls malloc or stdio; preserves errno.
 *
 * Returns 0, or -errno: -EINVAL for inconsistent input (strings not NUL-terminated, a string
 * offset, stack id or depth out of range, frame count not the sum of depths, blocks not in
 * strictly ascending address order), -ENOMEM when mem fails, -EIO when zstd fails, or the
 * error of write(2). On error, fd may hold a partial file.
 */
int lkd_snapfile_write(int fd, const lkd_snapfile_input_t *in, const lkd_snapfile_mem_t *mem)
{
    int saved_errno = errno;
    writer_t w;
    memset(&w, 0, sizeof w);
    w.mem = mem;
    int rc = input_ok(in) ? 0 : -EINVAL;
    if (!rc && in->zstd_level > 0)
        rc = cctx_open(&w, in->zstd_level);
    if (!rc)
        rc = sections_build(&w, in);
    for (int i = 0; i < SECTION_COUNT && !rc; i++)
        rc = section_pack(&w, &w.sec[i]);
    if (!rc)
        rc = file_write(fd, &w);
    writer_release(&w);
    errno = saved_errno;
    return rc;
}
