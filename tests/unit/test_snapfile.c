/*
 * Unit tests for the snapshot file: the writer (preload/snapfile.c) and the reader
 * (analyzer/snapshot.c), against each other and against files crafted here.
 *
 * The crafting helpers re-serialise a file from its parts with fresh offsets and checksums,
 * and encode BLOCKS with their own varint encoder, so every rejection test reaches the check
 * it is about (not just a checksum) and the format is implemented twice, independently.
 * Invariants: every test works in its own temp directory; nothing here may crash or trip
 * ASan on any input, however hostile.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot.h"
#include "snapfile.h"

/* ---- temp files --------------------------------------------------------------------- */

static char tmp_dir[64];

static void tmp_setup(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/lkd-snapfile-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir), "mkdtemp: %s", strerror(errno));
}

static void tmp_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", tmp_dir);
}

TestSuite(snapfile, .init = tmp_setup, .fini = tmp_teardown);

/* Returns a path in the temp dir; valid until the next call with the same slot. */
static const char *tmp_path(int slot, const char *name)
{
    static char paths[4][256];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", tmp_dir, name);
    return paths[slot];
}

static void file_put(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(write(fd, data, len), (ssize_t)len, "write %s", path);
    close(fd);
}

static unsigned char *file_get(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "fopen %s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *buf = malloc(*len + 1);
    cr_assert_eq(fread(buf, 1, *len, f), *len, "fread %s", path);
    fclose(f);
    return buf;
}

/* ---- the writer's memory: checks that every free matches an alloc ------------------- */

typedef struct test_mem {
    size_t live_bytes, allocs;
    long fail_after; /* -1 = never fail */
} test_mem_t;

static void *tm_alloc(void *ctx, size_t size)
{
    test_mem_t *m = ctx;
    if (m->fail_after >= 0 && m->allocs >= (size_t)m->fail_after)
        return NULL;
    unsigned char *p = malloc(size + 16);
    cr_assert_not_null(p, "malloc");
    memcpy(p, &size, sizeof size);
    m->live_bytes += size;
    m->allocs++;
    return p + 16;
}

static void tm_free(void *ctx, void *ptr, size_t size)
{
    test_mem_t *m = ctx;
    unsigned char *p = (unsigned char *)ptr - 16;
    size_t asked;
    memcpy(&asked, p, sizeof asked);
    cr_assert_eq(size, asked, "free size %zu, allocated %zu", size, asked);
    m->live_bytes -= size;
    free(p);
}

/* ---- synthetic snapshots ------------------------------------------------------------ */

typedef struct fixture {
    lkd_snapfile_input_t in;
    char strings[256];
    lkd_fmt_module_t modules[3];
    uint32_t *depths;
    uint64_t *frames;
    lkd_fmt_stack_stat_t *stats;
    lkd_fmt_block_t *blocks;
} fixture_t;

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Appends s (with its NUL) to the fixture's strings; returns its offset. */
static uint32_t str_add(fixture_t *f, const char *s)
{
    size_t off = f->in.strings_len, len = strlen(s) + 1;
    cr_assert_leq(off + len, sizeof f->strings, "fixture strings overflow");
    memcpy(f->strings + off, s, len);
    f->in.strings_len += len;
    return (uint32_t)off;
}

static void fixture_strings(fixture_t *f)
{
    f->in.strings = f->strings;
    str_add(f, "");
    lkd_fmt_process_t *p = &f->in.process;
    *p = (lkd_fmt_process_t){.pid = 4242,
                             .ppid = 1,
                             .seq = 3,
                             .depth = 64,
                             .flags = LKD_FMT_F_EXIT | LKD_FMT_F_SAMPLED,
                             .unwind = LKD_FMT_UNWIND_FP,
                             .sample_rate = 524288,
                             .wall_ns = 1700000000123456789ull,
                             .mono_ns = 987654321,
                             .start_mono_ns = 12345,
                             .argc = 3};
    p->exe = str_add(f, "/usr/bin/prog");
    p->label = str_add(f, "exit");
    p->cwd = str_add(f, "/home/user");
    p->argv = str_add(f, "prog");
    str_add(f, "-v");
    str_add(f, "two words");
    static const char *const paths[3] = {"/usr/bin/prog", "/lib/x86_64-linux-gnu/libc.so.6",
                                         "[vdso]"};
    for (int i = 0; i < 3; i++) {
        lkd_fmt_module_t *m = &f->modules[i];
        *m = (lkd_fmt_module_t){.bias = 0x555500000000ull * (uint64_t)(i + 1),
                                .start = 0x555500001000ull * (uint64_t)(i + 1),
                                .end = 0x555500201000ull * (uint64_t)(i + 1),
                                .load_seq = (uint64_t)i,
                                .unload_seq = i == 1 ? 77 : 0,
                                .flags = i == 0 ? LKD_FMT_MOD_MAIN : LKD_FMT_MOD_VDSO,
                                .build_id_len = i == 2 ? 0 : 20};
        m->path = str_add(f, paths[i]);
        for (int k = 0; k < 20; k++)
            m->build_id[k] = (uint8_t)(i * 31 + k);
    }
    f->in.modules = f->modules;
    f->in.module_count = 3;
}

static void fixture_stacks(fixture_t *f, size_t nstacks)
{
    f->depths = calloc(nstacks + 1, sizeof *f->depths);
    f->frames = calloc(nstacks * 40 + 1, sizeof *f->frames);
    f->stats = calloc(nstacks + 1, sizeof *f->stats);
    size_t nf = 0;
    for (size_t i = 0; i < nstacks; i++) {
        f->depths[i] = i == 0 ? LKD_FMT_MAX_DEPTH / 8 : (uint32_t)(rnd() % 40);
        for (uint32_t d = 0; d < f->depths[i]; d++)
            f->frames[nf++] = 0x7f0000000000ull + rnd() % 0x100000;
        f->stats[i] = (lkd_fmt_stack_stat_t){.stack = (uint32_t)i};
    }
    f->in.stack_depths = f->depths;
    f->in.stack_count = nstacks;
    f->in.frames = f->frames;
    f->in.frame_count = nf;
    f->in.stack_stats = f->stats;
    f->in.stack_stat_count = nstacks;
}

/* Blocks 16-byte aligned and mostly close together, births roughly increasing; the last
 * blocks exercise extreme values (10-byte varints, birth differences of either sign). */
static void fixture_blocks(fixture_t *f, size_t n)
{
    f->blocks = calloc(n + 1, sizeof *f->blocks);
    uint64_t address = 0x55550000a000ull, birth = 1;
    for (size_t i = 0; i < n; i++) {
        lkd_fmt_block_t *b = &f->blocks[i];
        b->address = address;
        b->size = (uint64_t[]){16, 24, 32, 100, 4096}[rnd() % 5];
        b->birth = rnd() % 10 == 0 ? rnd() % 100000 : birth;
        b->stack = (uint32_t)(rnd() % f->in.stack_count);
        b->flags = (uint32_t)(rnd() % 4);
        b->leader = (uint32_t)(rnd() % (n + 1));
        address += ((b->size + 15) & ~15ull) + 16 * (rnd() % 3);
        birth += 1 + rnd() % 3;
        f->stats[b->stack].bytes += b->size;
        f->stats[b->stack].blocks++;
    }
    if (n >= 2) {
        f->blocks[n - 2] = (lkd_fmt_block_t){.address = UINT64_MAX - 4096,
                                             .size = UINT64_MAX,
                                             .birth = UINT64_MAX,
                                             .flags = UINT32_MAX,
                                             .leader = (uint32_t)n};
        f->blocks[n - 1] =
            (lkd_fmt_block_t){.address = UINT64_MAX, .stack = (uint32_t)(f->in.stack_count - 1)};
    }
    f->in.blocks = f->blocks;
    f->in.block_count = n;
}

static void fixture_init(fixture_t *f, size_t nblocks, size_t nstacks, int zstd_level)
{
    memset(f, 0, sizeof *f);
    fixture_strings(f);
    fixture_stacks(f, nstacks);
    fixture_blocks(f, nblocks);
    f->in.totals = (lkd_fmt_totals_t){1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    f->in.zstd_level = zstd_level;
}

static void fixture_free(fixture_t *f)
{
    free(f->depths);
    free(f->frames);
    free(f->stats);
    free(f->blocks);
}

/* Writes in to path through lkd_snapfile_write; returns its result. */
static int snap_write(const char *path, const lkd_snapfile_input_t *in)
{
    test_mem_t tm = {.fail_after = -1};
    lkd_snapfile_mem_t mem = {tm_alloc, tm_free, &tm};
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0, "open %s", path);
    int rc = lkd_snapfile_write(fd, in, &mem);
    close(fd);
    cr_assert_eq(tm.live_bytes, 0, "writer leaked %zu bytes", tm.live_bytes);
    return rc;
}

/* A valid file for in, returned in memory. */
static unsigned char *snap_bytes(const lkd_snapfile_input_t *in, size_t *len)
{
    const char *path = tmp_path(3, "source.snap");
    cr_assert_eq(snap_write(path, in), 0, "write %s", path);
    return file_get(path, len);
}

/* Checks that every field of snap equals in. */
static void expect_equal(const lkd_snapshot_t *s, const lkd_snapfile_input_t *in)
{
    cr_assert_eq(memcmp(&s->process, &in->process, sizeof s->process), 0, "process");
    cr_assert_eq(memcmp(&s->totals, &in->totals, sizeof s->totals), 0, "totals");
    cr_assert_eq(s->strings_len, in->strings_len, "strings_len");
    cr_assert_eq(memcmp(s->strings, in->strings, in->strings_len), 0, "strings");
    cr_assert_eq(s->strings[s->strings_len], '\0', "strings terminator");
    cr_assert_eq(s->module_count, in->module_count, "module_count");
    cr_assert_eq(memcmp(s->modules, in->modules, in->module_count * sizeof *in->modules), 0,
                 "modules");
    cr_assert_eq(s->stack_count, in->stack_count, "stack_count");
    cr_assert_eq(s->frame_count, in->frame_count, "frame_count");
    uint64_t off = 0;
    for (size_t i = 0; i < in->stack_count; i++) {
        cr_assert_eq(s->stack_depths[i], in->stack_depths[i], "depth of stack %zu", i);
        cr_assert_eq(s->stack_offsets[i], off, "offset of stack %zu", i);
        off += in->stack_depths[i];
    }
    cr_assert_eq(memcmp(s->frames, in->frames, in->frame_count * sizeof *in->frames), 0, "frames");
    cr_assert_eq(s->stack_stat_count, in->stack_stat_count, "stack_stat_count");
    cr_assert_eq(
        memcmp(s->stack_stats, in->stack_stats, in->stack_stat_count * sizeof *in->stack_stats), 0,
        "stack stats");
    cr_assert_eq(s->block_count, in->block_count, "block_count");
    for (size_t i = 0; i < in->block_count; i++)
        cr_assert_eq(memcmp(&s->blocks[i], &in->blocks[i], sizeof *s->blocks), 0,
                     "block %zu: address %#llx size %llu birth %llu stack %u flags %u leader %u/%u",
                     i, (unsigned long long)s->blocks[i].address,
                     (unsigned long long)s->blocks[i].size, (unsigned long long)s->blocks[i].birth,
                     s->blocks[i].stack, s->blocks[i].flags, s->blocks[i].leader,
                     in->blocks[i].leader);
    cr_assert_str_eq(lkd_snapshot_string(s, in->process.exe), "/usr/bin/prog", "exe");
    cr_assert_str_eq(lkd_snapshot_string(s, UINT32_MAX), "", "out-of-range string");
}

/* Reads path expecting failure rc with a message "PATH: ..." containing want. */
static void expect_fail(const char *path, int rc, const char *want)
{
    lkd_snapshot_t s;
    char err[512];
    memset(&s, 0x5a, sizeof s);
    int got = lkd_snapshot_read(path, &s, err, sizeof err);
    cr_assert_eq(got, rc, "%s: rc %d (%s), want %d (%s)", path, got, err, rc, want);
    cr_assert_eq(strncmp(err, path, strlen(path)), 0, "message names the file: %s", err);
    cr_assert_eq(strncmp(err + strlen(path), ": ", 2), 0, "message form: %s", err);
    cr_assert_not_null(strstr(err, want), "message '%s' lacks '%s'", err, want);
    cr_assert_null(strchr(err, '\n'), "one line: %s", err);
    lkd_snapshot_t zero;
    memset(&zero, 0, sizeof zero);
    cr_assert_eq(memcmp(&s, &zero, sizeof s), 0, "snapshot zeroed on failure");
}

static void expect_fail_bytes(const void *data, size_t len, int rc, const char *want)
{
    const char *path = tmp_path(0, "bad.snap");
    file_put(path, data, len);
    expect_fail(path, rc, want);
}

/* ---- crafting files ------------------------------------------------------------------ */

typedef struct part {
    lkd_fmt_section_t e;
    unsigned char *data;
    size_t len;
} part_t;

typedef struct craft {
    lkd_fmt_header_t h;
    uint32_t header_size, section_size;
    part_t part[16];
    size_t n;
} craft_t;

static void craft_load(craft_t *c, const unsigned char *buf, size_t len)
{
    memset(c, 0, sizeof *c);
    memcpy(&c->h, buf, sizeof c->h);
    c->header_size = c->h.header_size;
    c->section_size = c->h.section_size;
    c->n = c->h.section_count;
    for (size_t i = 0; i < c->n; i++) {
        part_t *p = &c->part[i];
        memcpy(&p->e, buf + c->header_size + i * c->section_size, sizeof p->e);
        cr_assert_leq(p->e.offset + p->e.stored_size, len, "source section in file");
        p->len = p->e.stored_size;
        p->data = malloc(p->len + 1);
        memcpy(p->data, buf + p->e.offset, p->len);
    }
}

/* Serialises c with fresh offsets, stored sizes and checksums; other fields as they are. */
static unsigned char *craft_build(craft_t *c, size_t *len)
{
    size_t size = c->header_size + c->n * c->section_size;
    for (size_t i = 0; i < c->n; i++)
        size += c->part[i].len;
    unsigned char *buf = calloc(1, size + 1);
    size_t off = c->header_size + c->n * c->section_size;
    for (size_t i = 0; i < c->n; i++) {
        part_t *p = &c->part[i];
        p->e.offset = off;
        p->e.stored_size = p->len;
        p->e.checksum = lkd_fmt_checksum(p->data, p->len);
        memcpy(buf + off, p->data, p->len);
        memcpy(buf + c->header_size + i * c->section_size, &p->e, sizeof p->e);
        off += p->len;
    }
    c->h.header_size = c->header_size;
    c->h.section_size = c->section_size;
    c->h.section_count = (uint32_t)c->n;
    c->h.file_size = size;
    c->h.table_checksum = lkd_fmt_checksum(buf + c->header_size, c->n * c->section_size);
    c->h.header_checksum = lkd_fmt_checksum(&c->h, offsetof(lkd_fmt_header_t, header_checksum));
    memcpy(buf, &c->h, sizeof c->h);
    *len = size;
    return buf;
}

static void craft_free(craft_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->part[i].data);
}

static part_t *craft_find(craft_t *c, uint32_t type)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->part[i].e.type == type)
            return &c->part[i];
    cr_assert_fail("no section of type %u", type);
    return NULL;
}

/* Replaces p's payload by len raw bytes. */
static void craft_set(part_t *p, const void *data, size_t len)
{
    free(p->data);
    p->data = malloc(len + 1);
    memcpy(p->data, data, len);
    p->len = len;
    p->e.codec = LKD_FMT_CODEC_RAW;
    p->e.raw_size = len;
}

/* Starts a craft from a raw (uncompressed) snapshot of a small fixture. */
static void craft_fixture(craft_t *c, fixture_t *f)
{
    fixture_init(f, 40, 6, 0);
    size_t len;
    unsigned char *buf = snap_bytes(&f->in, &len);
    craft_load(c, buf, len);
    free(buf);
}

/* Builds c, writes it, and expects rc with want in the message. */
static void craft_expect(craft_t *c, int rc, const char *want)
{
    size_t len;
    unsigned char *buf = craft_build(c, &len);
    expect_fail_bytes(buf, len, rc, want);
    free(buf);
}

/* Builds c, writes it, reads it back into *s (must succeed). */
static void craft_read(craft_t *c, lkd_snapshot_t *s)
{
    size_t len;
    unsigned char *buf = craft_build(c, &len);
    const char *path = tmp_path(0, "crafted.snap");
    file_put(path, buf, len);
    free(buf);
    char err[512];
    cr_assert_eq(lkd_snapshot_read(path, s, err, sizeof err), 0, "read crafted: %s", err);
}

static size_t varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (unsigned char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* The BLOCKS payload of format.h for b[n] (1.1: with the leader column; 1.0 without it when
 * extra_columns is -1), plus extra_columns columns of value 7. */
static unsigned char *blocks_payload(const lkd_fmt_block_t *b, size_t n, int extra_columns,
                                     size_t *len)
{
    unsigned char *buf = malloc(n * 10 * (7 + (size_t)(extra_columns > 0 ? extra_columns : 0)) + 1);
    unsigned char *p = buf;
    uint64_t prev = 0;
    for (size_t i = 0; i < n; prev = b[i++].address)
        p += varint_put(p, b[i].address - prev);
    for (size_t i = 0; i < n; i++)
        p += varint_put(p, b[i].size);
    prev = 0;
    for (size_t i = 0; i < n; prev = b[i++].birth) {
        int64_t d = (int64_t)(b[i].birth - prev);
        p += varint_put(p, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
    }
    for (size_t i = 0; i < n; i++)
        p += varint_put(p, b[i].stack);
    for (size_t i = 0; i < n; i++)
        p += varint_put(p, b[i].flags);
    for (size_t i = 0; extra_columns >= 0 && i < n; i++)
        p += varint_put(p, b[i].leader);
    for (int k = 0; k < extra_columns; k++)
        for (size_t i = 0; i < n; i++)
            p += varint_put(p, 7);
    *len = (size_t)(p - buf);
    return buf;
}

static void craft_blocks(craft_t *c, const lkd_fmt_block_t *b, size_t n)
{
    size_t len;
    unsigned char *data = blocks_payload(b, n, 0, &len);
    part_t *p = craft_find(c, LKD_FMT_SEC_BLOCKS);
    craft_set(p, data, len);
    p->e.count = n;
    free(data);
}

/* ---- round trips -------------------------------------------------------------------- */

/* Writes in, reads it back, and compares every field. */
static void round_trip_input(const lkd_snapfile_input_t *in)
{
    const char *path = tmp_path(1, "round.snap");
    cr_assert_eq(snap_write(path, in), 0, "write");
    lkd_snapshot_t s;
    char err[512];
    cr_assert_eq(lkd_snapshot_read(path, &s, err, sizeof err), 0, "read: %s", err);
    expect_equal(&s, in);
    cr_assert_eq(s.major, LKD_FMT_MAJOR, "major");
    cr_assert_eq(s.minor, LKD_FMT_MINOR, "minor");
    cr_assert_str_eq(s.path, path, "path");
    lkd_snapshot_free(&s);
    lkd_snapshot_free(&s); /* idempotent */
}

static void round_trip(size_t nblocks, size_t nstacks, int level)
{
    fixture_t f;
    fixture_init(&f, nblocks, nstacks, level);
    round_trip_input(&f.in);
    fixture_free(&f);
}

Test(snapfile, round_trip_raw)
{
    round_trip(5000, 200, 0);
}
Test(snapfile, round_trip_zstd)
{
    round_trip(5000, 200, 1);
}
Test(snapfile, round_trip_zstd_level_19)
{
    round_trip(300, 20, 19);
}

Test(snapfile, round_trip_empty)
{
    for (int level = 0; level <= 1; level++) {
        round_trip(0, 0, level);
        fixture_t f;
        fixture_init(&f, 0, 0, level);
        f.in.module_count = 0;
        f.in.stack_stat_count = 0;
        round_trip_input(&f.in);
        fixture_free(&f);
    }
}

/* One site allocating the same size in a loop: zstd squeezes BLOCKS by over 10000x. */
Test(snapfile, round_trip_highly_regular)
{
    fixture_t f;
    fixture_init(&f, 0, 1, 1);
    size_t n = 400000;
    free(f.blocks);
    f.blocks = calloc(n, sizeof *f.blocks);
    for (size_t i = 0; i < n; i++)
        f.blocks[i] = (lkd_fmt_block_t){.address = 0x10000 + 32 * i, .size = 16, .birth = i + 1};
    f.in.blocks = f.blocks;
    f.in.block_count = n;
    size_t len;
    unsigned char *buf = snap_bytes(&f.in, &len);
    craft_t c;
    craft_load(&c, buf, len);
    part_t *p = craft_find(&c, LKD_FMT_SEC_BLOCKS);
    cr_assert_gt(p->e.raw_size / p->e.stored_size, 10000, "ratio %llu",
                 (unsigned long long)(p->e.raw_size / p->e.stored_size));
    craft_free(&c);
    free(buf);
    round_trip_input(&f.in);
    fixture_free(&f);
}

Test(snapfile, zstd_is_smaller)
{
    fixture_t f;
    fixture_init(&f, 20000, 100, 0);
    size_t raw_len, zstd_len;
    free(snap_bytes(&f.in, &raw_len));
    f.in.zstd_level = 1;
    unsigned char *buf = snap_bytes(&f.in, &zstd_len);
    cr_assert_lt(zstd_len, raw_len * 3 / 4, "zstd %zu bytes, raw %zu", zstd_len, raw_len);
    craft_t c;
    craft_load(&c, buf, zstd_len);
    cr_assert_eq(craft_find(&c, LKD_FMT_SEC_BLOCKS)->e.codec, LKD_FMT_CODEC_ZSTD, "codec");
    craft_free(&c);
    free(buf);
    fixture_free(&f);
}

/* ---- the writer ---------------------------------------------------------------------- */

Test(snapfile, writer_rejects_bad_input)
{
    fixture_t f;
    fixture_init(&f, 100, 10, 1);
    const char *path = tmp_path(1, "w.snap");
    lkd_fmt_block_t saved = f.blocks[5];
    f.blocks[5].address = f.blocks[4].address; /* not strictly ascending */
    cr_assert_eq(snap_write(path, &f.in), -EINVAL, "unsorted blocks");
    f.blocks[5] = saved;
    f.blocks[5].stack = 10;
    cr_assert_eq(snap_write(path, &f.in), -EINVAL, "bad stack id");
    f.blocks[5] = saved;
    f.in.frame_count--;
    cr_assert_eq(snap_write(path, &f.in), -EINVAL, "frame count");
    f.in.frame_count++;
    f.in.strings_len--;
    cr_assert_eq(snap_write(path, &f.in), -EINVAL, "strings not NUL-terminated");
    f.in.strings_len++;
    f.in.process.argc = 100;
    cr_assert_eq(snap_write(path, &f.in), -EINVAL, "argc beyond STRINGS");
    f.in.process.argc = 3;
    f.depths[1] = LKD_FMT_MAX_DEPTH + 1;
    cr_assert_eq(snap_write(path, &f.in), -EINVAL, "depth");
    fixture_free(&f);
}

Test(snapfile, writer_out_of_memory_and_bad_fd)
{
    fixture_t f;
    fixture_init(&f, 1000, 10, 1);
    int fd = open(tmp_path(1, "oom.snap"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    for (long k = 0; k < 64; k++) {
        test_mem_t tm = {.fail_after = k};
        lkd_snapfile_mem_t mem = {tm_alloc, tm_free, &tm};
        int rc = lkd_snapfile_write(fd, &f.in, &mem);
        cr_assert_eq(tm.live_bytes, 0, "leak after %ld allocations", k);
        if (rc == 0)
            break;
        cr_assert_eq(rc, -ENOMEM, "allocation %ld failed: rc %d", k, rc);
        cr_assert_lt(k, 63, "still failing after 64 allocations");
    }
    close(fd);
    test_mem_t tm = {.fail_after = -1};
    lkd_snapfile_mem_t mem = {tm_alloc, tm_free, &tm};
    errno = 1234;
    cr_assert_eq(lkd_snapfile_write(fd, &f.in, &mem), -EBADF, "closed fd");
    cr_assert_eq(errno, 1234, "errno preserved");
    fixture_free(&f);
}

/* ---- files that are not snapshots ---------------------------------------------------- */

Test(snapfile, missing_file)
{
    const char *path = tmp_path(0, "nonexistent.snap");
    char err[512];
    lkd_snapshot_t s;
    cr_assert_eq(lkd_snapshot_read(path, &s, err, sizeof err), -ENOENT, "rc");
    char want[512];
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    cr_assert_str_eq(err, want, "message");
}

Test(snapfile, directory)
{
    expect_fail(tmp_dir, -EISDIR, "Is a directory");
}

Test(snapfile, empty_file)
{
    expect_fail_bytes("", 0, -EINVAL, "empty file");
}

Test(snapfile, random_bytes)
{
    unsigned char buf[4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)rnd();
    expect_fail_bytes(buf, sizeof buf, -EINVAL, "not a leakdiff snapshot (bad magic)");
    expect_fail_bytes("LKD", 3, -EINVAL, "truncated");
    expect_fail_bytes("hello", 5, -EINVAL, "bad magic");
}

Test(snapfile, truncated_everywhere)
{
    for (int level = 0; level <= 1; level++) {
        fixture_t f;
        fixture_init(&f, 300, 20, level);
        size_t len;
        unsigned char *buf = snap_bytes(&f.in, &len);
        for (size_t k = 1; k < 16; k++)
            expect_fail_bytes(buf, len * k / 16, -EINVAL, "truncated (file is ");
        expect_fail_bytes(buf, len - 1, -EINVAL, "truncated (file is ");
        buf[len] = 0;
        expect_fail_bytes(buf, len + 1, -EINVAL, "trailing data");
        free(buf);
        fixture_free(&f);
    }
}

/* Flips each byte of a valid file in turn: every flip must be caught, and by the check
 * that covers that byte. */
Test(snapfile, every_byte_flipped)
{
    for (int level = 0; level <= 1; level++) {
        fixture_t f;
        fixture_init(&f, 16, 4, level);
        size_t len;
        unsigned char *buf = snap_bytes(&f.in, &len);
        craft_t c;
        craft_load(&c, buf, len);
        size_t table_end = c.header_size + c.n * c.section_size;
        static const char *const names[] = {"",        "PROCESS", "TOTALS",      "STRINGS",
                                            "MODULES", "STACKS",  "STACK_STATS", "BLOCKS"};
        for (size_t i = 0; i < len; i++) {
            char want[64] = "";
            if (i >= table_end)
                for (size_t k = 0; k < c.n; k++)
                    if (i >= c.part[k].e.offset && i < c.part[k].e.offset + c.part[k].e.stored_size)
                        snprintf(want, sizeof want, "section %s: checksum mismatch",
                                 names[c.part[k].e.type]);
            if (i >= c.header_size && i < table_end)
                snprintf(want, sizeof want, "section table checksum mismatch");
            unsigned char saved = buf[i];
            buf[i] ^= (unsigned char)(1u << (i % 8));
            bool major = i >= offsetof(lkd_fmt_header_t, major) &&
                         i < offsetof(lkd_fmt_header_t, minor) && buf[i] > saved;
            expect_fail_bytes(buf, len, major ? -EPROTONOSUPPORT : -EINVAL, want);
            buf[i] = saved;
        }
        craft_free(&c);
        free(buf);
        fixture_free(&f);
    }
}

Test(snapfile, newer_major)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    c.h.major = 2;
    c.h.minor = 7;
    char want[512];
    snprintf(want, sizeof want,
             "%s: snapshot format 2.x is newer than this leakdiff "
             "understands (1.x)",
             tmp_path(0, "bad.snap"));
    craft_expect(&c, -EPROTONOSUPPORT, want);
    c.h.major = 0;
    craft_expect(&c, -EINVAL, "unsupported snapshot format 0.7");
    craft_free(&c);
    fixture_free(&f);
}

/* ---- newer minor versions: bigger header, table entries, records; new sections ---------- */

/* A 1.0 file: 32-byte block records, no leader column; read with every leader 0. */
Test(snapfile, version_1_0_blocks_are_read)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    c.h.minor = 0;
    size_t len;
    unsigned char *blocks = blocks_payload(f.blocks, f.in.block_count, -1, &len);
    part_t *p = craft_find(&c, LKD_FMT_SEC_BLOCKS);
    craft_set(p, blocks, len);
    p->e.record_size = LKD_FMT_BLOCK_V10_SIZE;
    free(blocks);
    lkd_snapshot_t s;
    craft_read(&c, &s);
    cr_assert_eq(s.block_count, f.in.block_count);
    for (size_t i = 0; i < s.block_count; i++) {
        cr_assert_eq(s.blocks[i].leader, 0, "block %zu", i);
        cr_assert_eq(s.blocks[i].flags, f.blocks[i].flags, "block %zu", i);
    }
    lkd_snapshot_free(&s);
    craft_free(&c);
    fixture_free(&f);
}

/* A leader beyond the block count is refused. */
Test(snapfile, leader_out_of_range)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    f.blocks[0].leader = (uint32_t)f.in.block_count + 1;
    craft_blocks(&c, f.blocks, f.in.block_count);
    craft_expect(&c, -EINVAL, "leader");
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, newer_minor_is_read)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    c.h.minor = 9;
    c.header_size += 16;
    c.section_size += 8;
    part_t *p = craft_find(&c, LKD_FMT_SEC_PROCESS);
    unsigned char process[96] = {0};
    memcpy(process, &f.in.process, sizeof f.in.process);
    memset(process + sizeof f.in.process, 0xee, 16);
    craft_set(p, process, sizeof process);
    p->e.record_size = sizeof process;
    p = craft_find(&c, LKD_FMT_SEC_MODULES);
    unsigned char modules[3][100];
    for (int i = 0; i < 3; i++) {
        memcpy(modules[i], &f.modules[i], sizeof f.modules[i]);
        memset(modules[i] + sizeof f.modules[i], 0xdd, 100 - sizeof f.modules[i]);
    }
    craft_set(p, modules, sizeof modules);
    p->e.record_size = 100;
    size_t len;
    unsigned char *blocks = blocks_payload(f.blocks, f.in.block_count, 2, &len);
    p = craft_find(&c, LKD_FMT_SEC_BLOCKS);
    craft_set(p, blocks, len);
    p->e.record_size = sizeof(lkd_fmt_block_t) + 8;
    free(blocks);
    c.part[c.n++] = (part_t){.e = {.type = 99, .codec = 42, .raw_size = 5, .count = 1},
                             .data = (unsigned char *)strdup("abcde"),
                             .len = 5};
    lkd_snapshot_t s;
    craft_read(&c, &s);
    expect_equal(&s, &f.in);
    cr_assert_eq(s.minor, 9, "minor");
    lkd_snapshot_free(&s);
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, optional_sections_may_be_missing)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    c.n = 0;
    for (size_t i = 0; i < 7; i++)
        if (c.part[i].e.type != LKD_FMT_SEC_MODULES && c.part[i].e.type != LKD_FMT_SEC_STACK_STATS)
            c.part[c.n++] = c.part[i];
        else
            free(c.part[i].data);
    lkd_snapshot_t s;
    craft_read(&c, &s);
    cr_assert_eq(s.module_count, 0, "modules");
    cr_assert_eq(s.stack_stat_count, 0, "stack stats");
    cr_assert_eq(s.block_count, f.in.block_count, "blocks");
    lkd_snapshot_free(&s);
    craft_free(&c);
    fixture_free(&f);
}

/* ---- crafted corruption, each reaching its own check -------------------------------- */

Test(snapfile, bad_stack_id_in_block)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    f.blocks[3].stack = 6;
    craft_blocks(&c, f.blocks, f.in.block_count);
    craft_expect(&c, -EINVAL, "section BLOCKS: block 3: stack id 6 >= stack count 6");
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, bad_stack_id_in_stack_stat)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    f.stats[2].stack = 1000;
    craft_set(craft_find(&c, LKD_FMT_SEC_STACK_STATS), f.stats, 6 * sizeof *f.stats);
    craft_expect(&c, -EINVAL, "section STACK_STATS: record 2: stack id 1000 >= stack count 6");
    craft_free(&c);
    fixture_free(&f);
}

/* One stack of depth 257; STACKS is decoded before anything refers to stack ids. */
Test(snapfile, depth_over_max)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    uint32_t depth = LKD_FMT_MAX_DEPTH + 1;
    size_t len = 8 + depth * sizeof(uint64_t);
    unsigned char *stacks = calloc(1, len);
    memcpy(stacks, &depth, sizeof depth);
    part_t *p = craft_find(&c, LKD_FMT_SEC_STACKS);
    craft_set(p, stacks, len);
    p->e.count = 1;
    free(stacks);
    craft_expect(&c, -EINVAL, "section STACKS: stack 0: depth 257 exceeds 256");
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, depths_do_not_sum_to_frames)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    part_t *p = craft_find(&c, LKD_FMT_SEC_STACKS);
    unsigned char *data = malloc(p->len + 8);
    memcpy(data, p->data, p->len);
    memset(data + p->len, 0, 8);
    craft_set(p, data, p->len + 8);
    free(data);
    craft_expect(&c, -EINVAL, "section STACKS: depths sum to");
    unsigned char padded[8] = {0, 0, 0, 0, 1, 0, 0, 0}; /* one empty stack, bad padding */
    craft_set(p, padded, sizeof padded);
    p->e.count = 1;
    craft_expect(&c, -EINVAL, "section STACKS: padding after the depths is not zero");
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, blocks_not_ascending)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    f.blocks[7].address = f.blocks[6].address;
    craft_blocks(&c, f.blocks, f.in.block_count);
    craft_expect(&c, -EINVAL, "section BLOCKS: block 7: address not above the previous one");
    /* a delta that wraps around 2^64 */
    unsigned char buf[64], *q = buf;
    q += varint_put(q, UINT64_MAX);
    q += varint_put(q, 1);
    for (int i = 0; i < 10; i++) /* 5 more columns of 2 blocks */
        *q++ = 0;
    part_t *p = craft_find(&c, LKD_FMT_SEC_BLOCKS);
    craft_set(p, buf, (size_t)(q - buf));
    p->e.count = 2;
    craft_expect(&c, -EINVAL, "section BLOCKS: block 1: address delta overflows");
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, bad_varints)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    part_t *p = craft_find(&c, LKD_FMT_SEC_BLOCKS);
    unsigned char eleven[16] = {0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    craft_set(p, eleven, sizeof eleven);
    p->e.count = 1;
    craft_expect(&c, -EINVAL, "section BLOCKS: bad or truncated varint column");
    unsigned char big_stack[] = {1, 1, 2, 0x80, 0x80, 0x80, 0x80, 0x10, 0};
    craft_set(p, big_stack, sizeof big_stack);
    craft_expect(&c, -EINVAL, "section BLOCKS: bad or truncated varint column");
    unsigned char trailing[] = {1, 1, 2, 0, 0, 0, 9};
    craft_set(p, trailing, sizeof trailing);
    craft_expect(&c, -EINVAL, "section BLOCKS: 1 bytes after the last column");
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, string_offsets)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    lkd_fmt_process_t pr = f.in.process;
    pr.label = (uint32_t)f.in.strings_len;
    craft_set(craft_find(&c, LKD_FMT_SEC_PROCESS), &pr, sizeof pr);
    craft_expect(&c, -EINVAL, "section PROCESS: label offset");
    pr = f.in.process;
    pr.argc = 1000;
    craft_set(craft_find(&c, LKD_FMT_SEC_PROCESS), &pr, sizeof pr);
    craft_expect(&c, -EINVAL, "section PROCESS: argv[");
    pr = f.in.process;
    craft_set(craft_find(&c, LKD_FMT_SEC_PROCESS), &pr, sizeof pr);
    lkd_fmt_module_t mods[3];
    memcpy(mods, f.modules, sizeof mods);
    mods[1].path = 100000;
    craft_set(craft_find(&c, LKD_FMT_SEC_MODULES), mods, sizeof mods);
    craft_expect(&c, -EINVAL, "section MODULES: module 1: path offset 100000");
    mods[1] = f.modules[1];
    mods[2].build_id_len = 33;
    craft_set(craft_find(&c, LKD_FMT_SEC_MODULES), mods, sizeof mods);
    craft_expect(&c, -EINVAL, "section MODULES: module 2: build_id_len 33");
    craft_set(craft_find(&c, LKD_FMT_SEC_MODULES), f.modules, sizeof f.modules);
    part_t *s = craft_find(&c, LKD_FMT_SEC_STRINGS);
    craft_set(s, "abc", 3);
    s->e.count = 3;
    craft_expect(&c, -EINVAL, "section STRINGS: does not end with NUL");
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, table_problems)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    size_t len;
    unsigned char *buf;

    c.part[c.n++] = c.part[1]; /* a second TOTALS, own copy of the data */
    c.part[c.n - 1].data = malloc(c.part[1].len);
    memcpy(c.part[c.n - 1].data, c.part[1].data, c.part[1].len);
    craft_expect(&c, -EINVAL, "section TOTALS: appears twice");
    free(c.part[--c.n].data);

    part_t blocks = c.part[6];
    c.n = 6;
    craft_expect(&c, -EINVAL, "required section BLOCKS is missing");
    c.n = 7;
    c.part[6] = blocks;

    buf = craft_build(&c, &len); /* BLOCKS overlapping STACK_STATS, checksums fixed */
    lkd_fmt_section_t e;
    size_t at = c.header_size + 6 * c.section_size;
    memcpy(&e, buf + at, sizeof e);
    e.offset -= 4;
    e.checksum = lkd_fmt_checksum(buf + e.offset, e.stored_size);
    memcpy(buf + at, &e, sizeof e);
    lkd_fmt_header_t h;
    memcpy(&h, buf, sizeof h);
    h.table_checksum = lkd_fmt_checksum(buf + c.header_size, c.n * c.section_size);
    h.header_checksum = lkd_fmt_checksum(&h, offsetof(lkd_fmt_header_t, header_checksum));
    memcpy(buf, &h, sizeof h);
    expect_fail_bytes(buf, len, -EINVAL, "overlaps");
    e.offset = len - 2; /* runs past the end */
    e.checksum = 0;
    memcpy(buf + at, &e, sizeof e);
    h.table_checksum = lkd_fmt_checksum(buf + c.header_size, c.n * c.section_size);
    h.header_checksum = lkd_fmt_checksum(&h, offsetof(lkd_fmt_header_t, header_checksum));
    memcpy(buf, &h, sizeof h);
    expect_fail_bytes(buf, len, -EINVAL, "section BLOCKS: offset");
    free(buf);

    c.section_size = 40;
    craft_expect(&c, -EINVAL, "section_size 40 outside");
    c.section_size = sizeof(lkd_fmt_section_t);
    c.header_size = 8;
    craft_expect(&c, -EINVAL, "header_size 8 outside");
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, section_shapes)
{
    fixture_t f;
    craft_t c;
    craft_fixture(&c, &f);
    part_t *p = craft_find(&c, LKD_FMT_SEC_TOTALS);
    p->e.record_size = 40;
    craft_expect(&c, -EINVAL, "section TOTALS: record_size 40 is smaller than 80");
    p->e.record_size = 80;
    p->e.count = 2;
    craft_expect(&c, -EINVAL, "section TOTALS: raw_size 80 is not count 2 x record_size 80");
    p->e.count = 1;
    p->e.codec = 3;
    craft_expect(&c, -EINVAL, "section TOTALS: unknown codec 3");
    p->e.codec = LKD_FMT_CODEC_RAW;
    p->e.raw_size = 160;
    p->e.count = 2;
    craft_expect(&c, -EINVAL, "section TOTALS: raw_size 160 differs from stored_size 80");
    craft_set(p, "", 0);
    p->e.count = 0;
    craft_expect(&c, -EINVAL, "section TOTALS: count 0, expected 1");
    craft_free(&c);
    fixture_free(&f);
}

Test(snapfile, zstd_sizes)
{
    fixture_t f;
    fixture_init(&f, 2000, 30, 1);
    size_t len;
    unsigned char *buf = snap_bytes(&f.in, &len);
    craft_t c;
    craft_load(&c, buf, len);
    part_t *p = craft_find(&c, LKD_FMT_SEC_BLOCKS);
    cr_assert_eq(p->e.codec, LKD_FMT_CODEC_ZSTD, "compressed");
    p->e.raw_size--;
    craft_expect(&c, -EINVAL, "section BLOCKS: zstd frame holds");
    p->e.raw_size++;
    p = craft_find(&c, LKD_FMT_SEC_STACKS);
    cr_assert_eq(p->e.codec, LKD_FMT_CODEC_ZSTD, "compressed");
    p->e.raw_size = p->len * 40000;
    craft_expect(&c, -EINVAL, "section STACKS: raw_size");
    craft_expect(&c, -EINVAL, "is implausible for");
    p->e.raw_size = (uint64_t)64 << 30;
    craft_expect(&c, -EINVAL, "exceeds the limit");
    craft_free(&c);
    craft_load(&c, buf, len);
    p = craft_find(&c, LKD_FMT_SEC_BLOCKS);
    unsigned char *two = malloc(p->len * 2);
    memcpy(two, p->data, p->len);
    memcpy(two + p->len, p->data, p->len);
    free(p->data);
    p->data = two;
    p->len *= 2;
    craft_expect(&c, -EINVAL, "not exactly one zstd frame");
    p->len /= 2;
    p->data[p->len / 2] ^= 0x40; /* in the middle of the frame */
    craft_expect(&c, -EINVAL, "section BLOCKS: zstd");
    craft_free(&c);
    free(buf);
    fixture_free(&f);
}

/* ---- fuzzing: random mutations with checksums repaired ------------------------------- */

/* Recomputes every in-bounds section checksum, then the table and header checksums, so
 * that a mutation reaches the semantic checks. Leaves mutated offsets and sizes alone. */
static void checksums_repair(unsigned char *buf, size_t len)
{
    lkd_fmt_header_t h;
    memcpy(&h, buf, sizeof h);
    uint64_t table_end = (uint64_t)h.header_size + (uint64_t)h.section_count * h.section_size;
    if (h.header_size < sizeof h || h.section_size < sizeof(lkd_fmt_section_t) || table_end > len)
        return;
    for (uint32_t i = 0; i < h.section_count; i++) {
        lkd_fmt_section_t e;
        memcpy(&e, buf + h.header_size + (size_t)i * h.section_size, sizeof e);
        if (e.offset <= len && e.stored_size <= len - e.offset)
            e.checksum = lkd_fmt_checksum(buf + e.offset, e.stored_size);
        memcpy(buf + h.header_size + (size_t)i * h.section_size, &e, sizeof e);
    }
    h.table_checksum = lkd_fmt_checksum(buf + h.header_size, table_end - h.header_size);
    h.header_checksum = lkd_fmt_checksum(&h, offsetof(lkd_fmt_header_t, header_checksum));
    memcpy(buf, &h, sizeof h);
}

/* What a successful read promises. */
static void expect_consistent(const lkd_snapshot_t *s)
{
    uint64_t frames = 0;
    for (size_t i = 0; i < s->stack_count; i++) {
        cr_assert_leq(s->stack_depths[i], LKD_FMT_MAX_DEPTH, "depth");
        cr_assert_eq(s->stack_offsets[i], frames, "stack offset");
        frames += s->stack_depths[i];
    }
    cr_assert_eq(frames, s->frame_count, "frame count");
    for (size_t i = 0; i < s->block_count; i++) {
        cr_assert_lt(s->blocks[i].stack, s->stack_count, "block stack id");
        cr_assert(i == 0 || s->blocks[i].address > s->blocks[i - 1].address, "ascending");
    }
    for (size_t i = 0; i < s->stack_stat_count; i++)
        cr_assert_lt(s->stack_stats[i].stack, s->stack_count, "stat stack id");
    for (size_t i = 0; i < s->module_count; i++)
        cr_assert_lt(s->modules[i].path, s->strings_len, "module path");
    cr_assert_lt(s->process.exe, s->strings_len, "exe");
    cr_assert_eq(s->strings[s->strings_len], '\0', "strings terminated");
}

static unsigned char mutant_byte(void)
{
    static const unsigned char interesting[] = {0, 1, 2, 7, 8, 0x7f, 0x80, 0xfe, 0xff};
    return rnd() % 2 ? (unsigned char)rnd() : interesting[rnd() % sizeof interesting];
}

Test(snapfile, fuzz_mutations, .timeout = 120)
{
    int accepted = 0, rejected = 0;
    for (int level = 0; level <= 1; level++) {
        fixture_t f;
        fixture_init(&f, 50, 6, level);
        size_t len;
        unsigned char *orig = snap_bytes(&f.in, &len);
        unsigned char *buf = malloc(len);
        const char *path = tmp_path(0, "fuzz.snap");
        for (int iter = 0; iter < 1000; iter++) {
            memcpy(buf, orig, len);
            int edits = 1 + (int)(rnd() % 4);
            for (int k = 0; k < edits; k++) {
                /* bias towards the header and table, where the structure lives */
                size_t at = rnd() % 3 == 0 ? rnd() % 440 : rnd() % len;
                buf[at < len ? at : len - 1] = mutant_byte();
            }
            if (rnd() % 8)
                checksums_repair(buf, len);
            file_put(path, buf, len);
            lkd_snapshot_t s;
            char err[512];
            int rc = lkd_snapshot_read(path, &s, err, sizeof err);
            if (rc == 0) {
                expect_consistent(&s);
                accepted++;
            } else {
                cr_assert(rc == -EINVAL || rc == -EPROTONOSUPPORT, "rc %d: %s", rc, err);
                cr_assert_eq(strncmp(err, path, strlen(path)), 0, "message: %s", err);
                rejected++;
            }
            lkd_snapshot_free(&s);
        }
        free(buf);
        free(orig);
        fixture_free(&f);
    }
    cr_log_info("fuzz: %d accepted, %d rejected", accepted, rejected);
    cr_assert_gt(rejected, 0, "some mutations rejected");
}
