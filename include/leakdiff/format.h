/*
 * leakdiff snapshot file format, version 1.1.
 *
 * Shared verbatim by the writer (preload/) and the reader (analyzer/). Versioned like an
 * ABI: a reader refuses a newer major version and skips sections whose type it does not
 * know. Every multi-byte field is little-endian (the writer only runs on little-endian
 * hosts; see LKD_FMT_HOST_OK). Every record below has a fixed size, asserted at compile
 * time, and the section table says how large each record is, so a minor version may append
 * fields to a record without breaking older readers.
 *
 * Layout of a file:
 *
 *   lkd_fmt_header_t                      (uncompressed, header_size bytes)
 *   lkd_fmt_section_t[section_count]      (uncompressed, section_size bytes each)
 *   section payloads                      (each at its offset; zstd frame or raw)
 *
 * Integrity: the header carries a checksum of itself and of the section table; each
 * section carries a checksum of its stored (possibly compressed) bytes, so a reader
 * validates a payload before it decompresses it. Readers must treat every field as
 * untrusted: offsets, sizes and counts are checked against the file and against each other.
 *
 * Section payloads (after decompression; "raw"):
 *
 *   PROCESS   one lkd_fmt_process_t
 *   TOTALS    one lkd_fmt_totals_t
 *   STRINGS   NUL-terminated strings; other records refer to them by byte offset
 *   MODULES   count x lkd_fmt_module_t
 *   STACKS    count x uint32_t depth, zero-padded to a multiple of 8 bytes, then
 *             sum(depth) x uint64_t return addresses, innermost frame first. Stack ids
 *             are indexes into this list. Frames of the tracker itself are not stored.
 *   STACK_STATS count x lkd_fmt_stack_stat_t (live bytes and blocks per stack id)
 *   BLOCKS    count x lkd_fmt_block_t stored column by column ("struct of arrays"), every
 *             value an unsigned LEB128 varint (7 bits per byte, low first, at most 10
 *             bytes), so that zstd sees ~6 instead of 32 bytes per block: address[count]
 *             (ascending; each the delta from the previous address, the first from 0),
 *             size[count], birth[count] (each the zigzag-coded signed difference from the
 *             previous birth, the first from 0: (d << 1) ^ (d >> 63)), stack[count],
 *             flags[count], and since 1.1 leader[count] (for an INDIRECT block, 1 + the
 *             index in this section of the DIRECT block whose leak it hangs from; 0
 *             otherwise). record_size is the writer's sizeof(lkd_fmt_block_t) (32 in 1.0,
 *             40 since 1.1); a newer minor appends columns after these, which older
 *             readers ignore. raw_size is the length of the varint stream.
 *
 * This header must stay self-contained C11 with no dependency beyond <stdint.h>/<stddef.h>.
 */
#ifndef LEAKDIFF_FORMAT_H
#define LEAKDIFF_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define LKD_FMT_MAGIC "LKDSNAP\x1a" /* 8 bytes, no NUL needed */
#define LKD_FMT_MAJOR 1
#define LKD_FMT_MINOR 1         /* 1.1: BLOCKS has the leader column */
#define LKD_FMT_BUILD_ID_MAX 32 /* GNU build-ids are 20 bytes (sha1); room for others */
#define LKD_FMT_MAX_DEPTH 256   /* readers reject deeper stacks */

/* Section types. Unknown types are skipped by readers. */
enum lkd_fmt_section_type {
    LKD_FMT_SEC_PROCESS = 1,
    LKD_FMT_SEC_TOTALS = 2,
    LKD_FMT_SEC_STRINGS = 3,
    LKD_FMT_SEC_MODULES = 4,
    LKD_FMT_SEC_STACKS = 5,
    LKD_FMT_SEC_STACK_STATS = 6,
    LKD_FMT_SEC_BLOCKS = 7,
};

/* How a section payload is stored. */
enum lkd_fmt_codec {
    LKD_FMT_CODEC_RAW = 0,
    LKD_FMT_CODEC_ZSTD = 1, /* one zstd frame, content size and checksum present */
};

/* lkd_fmt_process_t.flags */
enum lkd_fmt_process_flag {
    LKD_FMT_F_TRUNCATED = 1u << 0,    /* the tracker lost data (out of memory, ...) */
    LKD_FMT_F_SAMPLED = 1u << 1,      /* blocks were sampled; see sample_rate */
    LKD_FMT_F_EXIT = 1u << 2,         /* written at process exit */
    LKD_FMT_F_PAUSED = 1u << 3,       /* tracing was stopped when written */
    LKD_FMT_F_REACHABILITY = 1u << 4, /* block flags carry reachability verdicts */
};

/* lkd_fmt_process_t.unwind */
enum lkd_fmt_unwind { LKD_FMT_UNWIND_LIBUNWIND = 0, LKD_FMT_UNWIND_FP = 1 };

/* lkd_fmt_module_t.flags */
enum lkd_fmt_module_flag {
    LKD_FMT_MOD_MAIN = 1u << 0,     /* the main executable */
    LKD_FMT_MOD_UNLOADED = 1u << 1, /* dlclose'd before the snapshot */
    LKD_FMT_MOD_VDSO = 1u << 2,     /* kernel-provided, no file on disk */
    LKD_FMT_MOD_TRACKER = 1u << 3,  /* the leakdiff shim itself */
};

/* lkd_fmt_block_t.flags: reachability verdict (0 when not computed). DIRECT: no pointer to
 * the block was found in the roots or in any other block (LeakSanitizer's "direct leak",
 * valgrind's "definitely lost"); a group of leaked blocks that only point to each other
 * (a cycle) has one DIRECT block, the first in address order, and the others INDIRECT.
 * INDIRECT: pointed to only from leaked blocks. REACHABLE: reachable from a root. */
enum lkd_fmt_block_flag {
    LKD_FMT_BLK_VERDICT_MASK = 3u,
    LKD_FMT_BLK_REACHABLE = 1u,
    LKD_FMT_BLK_INDIRECT = 2u,
    LKD_FMT_BLK_DIRECT = 3u,
};

typedef struct lkd_fmt_header {
    char magic[8];            /* LKD_FMT_MAGIC */
    uint16_t major;           /* readers refuse major > their own */
    uint16_t minor;           /* readers accept any minor of their major */
    uint32_t header_size;     /* sizeof(lkd_fmt_header_t) of the writer */
    uint32_t section_size;    /* sizeof(lkd_fmt_section_t) of the writer */
    uint32_t section_count;   /* entries in the section table */
    uint64_t file_size;       /* total bytes; a shorter file is truncated */
    uint64_t table_checksum;  /* lkd_fmt_checksum() of the section table */
    uint64_t header_checksum; /* lkd_fmt_checksum() of this header up to this field */
} lkd_fmt_header_t;
_Static_assert(sizeof(lkd_fmt_header_t) == 48, "header layout");

typedef struct lkd_fmt_section {
    uint32_t type;        /* enum lkd_fmt_section_type */
    uint32_t codec;       /* enum lkd_fmt_codec */
    uint64_t offset;      /* from the start of the file */
    uint64_t stored_size; /* bytes in the file */
    uint64_t raw_size;    /* bytes after decompression */
    uint64_t count;       /* records (1 for PROCESS and TOTALS, bytes for STRINGS) */
    uint32_t record_size; /* bytes per fixed record (0 for STRINGS and STACKS) */
    uint32_t reserved;
    uint64_t checksum; /* lkd_fmt_checksum() of the stored bytes */
} lkd_fmt_section_t;
_Static_assert(sizeof(lkd_fmt_section_t) == 56, "section layout");

typedef struct lkd_fmt_process {
    uint32_t pid;
    uint32_t ppid;
    uint32_t seq;           /* per-process snapshot sequence number, from 1 */
    uint32_t depth;         /* LEAKDIFF_DEPTH in force */
    uint32_t flags;         /* enum lkd_fmt_process_flag */
    uint32_t unwind;        /* enum lkd_fmt_unwind */
    uint64_t sample_rate;   /* mean bytes between samples; 0 = every allocation */
    uint64_t wall_ns;       /* CLOCK_REALTIME when written */
    uint64_t mono_ns;       /* CLOCK_MONOTONIC when written */
    uint64_t start_mono_ns; /* CLOCK_MONOTONIC when tracking started */
    uint32_t exe;           /* STRINGS offset: absolute path of the executable */
    uint32_t label;         /* STRINGS offset: snapshot label ("exit", ...) */
    uint32_t cwd;           /* STRINGS offset: working directory at start */
    uint32_t argv;          /* STRINGS offset of argv[0]; argc strings follow back to back */
    uint32_t argc;
    uint32_t reserved;
} lkd_fmt_process_t;
_Static_assert(sizeof(lkd_fmt_process_t) == 80, "process layout");

/* In a sampled snapshot (LKD_FMT_F_SAMPLED, sample_rate = R bytes): BLOCKS and STACK_STATS
 * hold the recorded (sampled) blocks as they are; a block of size s was recorded with
 * probability p = 1 - exp(-s/R) and stands for s/p bytes and 1/p blocks. bytes and blocks
 * below are those estimates of the whole heap (summed per stack, rounded per stack),
 * peak_bytes and total_bytes are estimates too (the running sum of s/p, rounded per block),
 * total_allocs and total_frees count recorded blocks only, and unknown_frees is not counted
 * (most frees are of blocks never recorded). */
typedef struct lkd_fmt_totals {
    uint64_t bytes;         /* live bytes in tracked blocks */
    uint64_t blocks;        /* live tracked blocks */
    uint64_t peak_bytes;    /* highest value of bytes since start or reset_peak */
    uint64_t total_allocs;  /* successful allocations recorded (realloc counts 1) */
    uint64_t total_frees;   /* tracked blocks released (realloc of a block counts 1) */
    uint64_t total_bytes;   /* bytes of all recorded allocations */
    uint64_t birth_next;    /* every allocation after the snapshot has birth >= this */
    uint64_t unknown_frees; /* frees of pointers the tracker never saw */
    uint64_t lost_blocks;   /* allocations not recorded because of internal failure */
    uint64_t tracker_bytes; /* memory the tracker itself had mapped */
} lkd_fmt_totals_t;
_Static_assert(sizeof(lkd_fmt_totals_t) == 80, "totals layout");

typedef struct lkd_fmt_module {
    uint64_t bias;       /* load bias (dlpi_addr): runtime address - ELF vaddr */
    uint64_t start;      /* lowest runtime address of its PT_LOAD segments */
    uint64_t end;        /* one past the highest */
    uint64_t load_seq;   /* birth_next when first seen */
    uint64_t unload_seq; /* birth_next when found gone; 0 = still loaded */
    uint32_t path;       /* STRINGS offset */
    uint32_t flags;      /* enum lkd_fmt_module_flag */
    uint32_t build_id_len;
    uint8_t build_id[LKD_FMT_BUILD_ID_MAX];
    uint32_t reserved;
} lkd_fmt_module_t;
_Static_assert(sizeof(lkd_fmt_module_t) == 88, "module layout");

typedef struct lkd_fmt_stack_stat {
    uint32_t stack; /* stack id */
    uint32_t reserved;
    uint64_t bytes;  /* live bytes allocated from this stack */
    uint64_t blocks; /* live blocks allocated from this stack */
} lkd_fmt_stack_stat_t;
_Static_assert(sizeof(lkd_fmt_stack_stat_t) == 24, "stack stat layout");

typedef struct lkd_fmt_block {
    uint64_t address;
    uint64_t size;   /* bytes requested by the program */
    uint64_t birth;  /* allocation sequence number (per process, from 1) */
    uint32_t stack;  /* stack id */
    uint32_t flags;  /* enum lkd_fmt_block_flag */
    uint32_t leader; /* since 1.1: INDIRECT blocks: 1 + index of their DIRECT block */
    uint32_t reserved;
} lkd_fmt_block_t;
_Static_assert(sizeof(lkd_fmt_block_t) == 40, "block layout");
#define LKD_FMT_BLOCK_V10_SIZE 32 /* record_size of BLOCKS in 1.0: no leader column */

#define LKD_FMT_HOST_OK (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

/*
 * lkd_fmt_checksum - 64-bit integrity hash of len bytes (not cryptographic).
 *
 * Eight bytes per step, multiply-xorshift mixing; fast enough to run over every byte of a
 * snapshot. Defined here so writer and reader cannot disagree.
 */
static inline uint64_t lkd_fmt_checksum(const void *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)len;
    while (len >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    for (size_t i = 0; i < len; i++)
        tail |= (uint64_t)p[i] << (8 * i);
    h = (h ^ tail) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

#endif /* LEAKDIFF_FORMAT_H */
