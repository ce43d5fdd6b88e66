/*
 * symbols_bench - measures analyzer/symbols.c on real object files; also an addr2line-style
 * dump for comparing against binutils, and a writer of large synthetic snapshots.
 *
 *   symbols_bench [-p] FILE < ADDRESSES
 *   symbols_bench -w OUT.snap [-s STACKS] [-b BLOCKS] [-d DEPTH] [-r SEED] FILE ADDRS...
 *
 * First form: ADDRESSES is one hex ELF virtual address per line (e.g. return addresses of
 * every call in FILE). The file is described as the only module of an in-memory snapshot,
 * loaded at an arbitrary bias for ET_DYN, with its real build-id. Prints the time per
 * distinct address; with -p, also prints what `addr2line -a -f -i -C -e FILE` prints for
 * ADDRESS - 1.
 *
 * Second form (-w): FILE ADDRS pairs (ADDRS: a file of addresses as above) become the
 * modules of a snapshot written to OUT.snap, each at a load bias that depends on SEED (two
 * seeds: two runs of one program under ASLR). It holds STACKS (default 100000) stacks of
 * DEPTH (default 24) frames, each frame a return address drawn at random from all the
 * ADDRS (the worst case: nearly every call site of every module shows up), and BLOCKS
 * (default 1000000) live blocks spread over the stacks. Then every frame of every stack is
 * symbolized in this process, the way `leakdiff top` does it (each distinct address once),
 * and the time is printed. `leakdiff top OUT.snap` is then the end-to-end figure; see
 * bench/symbols_bench.py (`make bench-symbols`).
 *
 * Built by `make build/bench/symbols_bench` (it links analyzer/symbols.c and the shim's
 * snapshot encoder, preload/snapfile.c).
 */
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snapfile.h"
#include "symbols.h"

#define BENCH_BIAS 0x7f0000000000ull
#define BENCH_MAX_MODULES 16

/* Fills module from FILE's program headers and build-id, at bias for ET_DYN (0 for
 * ET_EXEC). Returns 0 or -1. */
static int describe(const char *path, uint64_t bias, lkd_fmt_module_t *module)
{
    int fd = open(path, O_RDONLY);
    elf_version(EV_CURRENT);
    Elf *elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ, NULL);
    GElf_Ehdr eh;
    size_t phnum;
    if (!elf || !gelf_getehdr(elf, &eh) || elf_getphdrnum(elf, &phnum) != 0)
        return -1;
    module->bias = eh.e_type == ET_DYN ? bias : 0;
    module->start = UINT64_MAX;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
            continue;
        if (module->bias + ph.p_vaddr < module->start)
            module->start = module->bias + ph.p_vaddr;
        if (module->bias + ph.p_vaddr + ph.p_memsz > module->end)
            module->end = module->bias + ph.p_vaddr + ph.p_memsz;
    }
    const void *id;
    ssize_t len = dwelf_elf_gnu_build_id(elf, &id);
    if (len > 0 && len <= LKD_FMT_BUILD_ID_MAX) {
        memcpy(module->build_id, id, (size_t)len);
        module->build_id_len = (uint32_t)len;
    }
    elf_end(elf);
    close(fd);
    return 0;
}

static double clock_seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now(void)
{
    return clock_seconds(CLOCK_MONOTONIC);
}

static void print_frames(uint64_t vaddr, const lkd_frame_t *frames, size_t count)
{
    printf("0x%016" PRIx64 "\n", vaddr - 1);
    for (size_t i = 0; i < count; i++)
        printf("%s\n%s:%u\n", frames[i].function, frames[i].file ? frames[i].file : "??",
               frames[i].line);
}

/* Appends the hex addresses read from in to *v (n used, cap allocated). Exits on ENOMEM. */
static void read_addresses(FILE *in, uint64_t **v, size_t *n, size_t *cap)
{
    uint64_t a;
    while (fscanf(in, "%" SCNx64, &a) == 1) {
        if (*n == *cap && !(*v = realloc(*v, (*cap = *cap ? 2 * *cap : 1024) * sizeof(a)))) {
            fprintf(stderr, "symbols_bench: out of memory\n");
            exit(1);
        }
        (*v)[(*n)++] = a;
    }
}

static void print_stats(lkd_symbolizer_t *sym)
{
    lkd_symbolizer_stats_t st;
    lkd_symbolizer_stats(sym, &st);
    fprintf(stderr, "modules opened %zu, (module, offset) pairs resolved %zu, addresses %zu\n",
            st.modules_opened, st.offsets_resolved, st.addresses);
}

/* The first form: time per distinct address of one file. */
static int bench_file(const char *path, int print)
{
    static char strings[4096];
    lkd_fmt_module_t module = {0};
    lkd_snapshot_t snap = {.strings = strings, .modules = &module, .module_count = 1};
    snprintf(strings, sizeof(strings), "%s", path);
    snap.strings_len = strlen(strings);
    if (describe(path, BENCH_BIAS, &module) != 0) {
        fprintf(stderr, "%s: not a readable ELF file\n", path);
        return 3;
    }
    module.flags = LKD_FMT_MOD_MAIN;
    size_t n = 0, cap = 0;
    uint64_t *vaddrs = NULL;
    read_addresses(stdin, &vaddrs, &n, &cap);
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&snap);
    size_t frames_total = 0;
    double t0 = now();
    for (size_t i = 0; i < n; i++) {
        const lkd_frame_t *frames;
        size_t count;
        lkd_symbolize(sym, vaddrs[i] + module.bias, &frames, &count);
        frames_total += count;
    }
    double t1 = now();
    for (size_t i = 0; print && i < n; i++) {
        const lkd_frame_t *frames;
        size_t count;
        lkd_symbolize(sym, vaddrs[i] + module.bias, &frames, &count);
        print_frames(vaddrs[i], frames, count);
    }
    fprintf(stderr, "%zu addresses, %zu frames, %.3f s, %.2f us/address; cached pass: ", n,
            frames_total, t1 - t0, n ? (t1 - t0) * 1e6 / (double)n : 0.0);
    t0 = now();
    for (size_t i = 0; i < n; i++) {
        const lkd_frame_t *frames;
        size_t count;
        lkd_symbolize(sym, vaddrs[i] + module.bias, &frames, &count);
    }
    fprintf(stderr, "%.3f us/address\n%s", n ? (now() - t0) * 1e6 / (double)n : 0.0,
            lkd_symbolizer_warnings(sym));
    print_stats(sym);
    lkd_symbolizer_close(sym);
    free(vaddrs);
    return 0;
}

/* A synthetic snapshot under construction. */
typedef struct synth {
    char strings[8192];
    size_t strings_len;
    lkd_fmt_module_t modules[BENCH_MAX_MODULES];
    size_t module_count;
    uint64_t *pool; /* runtime return addresses of every module */
    size_t pool_count, pool_cap;
} synth_t;

static uint32_t synth_string(synth_t *s, const char *text)
{
    size_t len = strlen(text) + 1;
    uint32_t off = (uint32_t)s->strings_len;
    if (s->strings_len + len > sizeof(s->strings)) {
        fprintf(stderr, "symbols_bench: too many strings\n");
        exit(2);
    }
    memcpy(s->strings + s->strings_len, text, len);
    s->strings_len += len;
    return off;
}

/* Adds FILE as a module at a bias chosen by seed and its addresses from ADDRS to the pool. */
static int synth_module(synth_t *s, const char *file, const char *addrs, unsigned seed)
{
    if (s->module_count == BENCH_MAX_MODULES)
        return -1;
    lkd_fmt_module_t *m = &s->modules[s->module_count];
    uint64_t bias = BENCH_BIAS + (uint64_t)s->module_count * 0x100000000ull +
                    (uint64_t)(seed % 4096) * 0x1000000ull;
    if (describe(file, bias, m) != 0) {
        fprintf(stderr, "%s: not a readable ELF file\n", file);
        return -1;
    }
    m->path = synth_string(s, file);
    m->load_seq = s->module_count + 1;
    m->flags = s->module_count == 0 ? LKD_FMT_MOD_MAIN : 0;
    FILE *in = fopen(addrs, "r");
    if (!in) {
        fprintf(stderr, "%s: %s\n", addrs, strerror(errno));
        return -1;
    }
    size_t first = s->pool_count;
    read_addresses(in, &s->pool, &s->pool_count, &s->pool_cap);
    fclose(in);
    for (size_t i = first; i < s->pool_count; i++)
        s->pool[i] += m->bias;
    s->module_count++;
    return 0;
}

/* xorshift64*: deterministic for one seed. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dull;
}

static void *mem_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return malloc(size);
}

static void mem_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    (void)size;
    free(ptr);
}

static int address_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Symbolizes the n addresses with sym; returns the CPU seconds taken. */
static double symbolize_all(lkd_symbolizer_t *sym, const uint64_t *addresses, size_t n,
                            size_t *frames_total)
{
    double c0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    *frames_total = 0;
    for (size_t i = 0; sym && i < n; i++) {
        const lkd_frame_t *frames;
        size_t count;
        lkd_symbolize(sym, addresses[i], &frames, &count);
        *frames_total += count;
    }
    return clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
}

/* Times what `leakdiff top` and `diff` spend in the symbolizer: each distinct address of
 * the snapshot once; then, with that symbolizer still open (as in a diff), the same
 * addresses in a second snapshot of the same files loaded elsewhere. */
static void bench_stacks(const synth_t *s, const lkd_snapfile_input_t *in)
{
    static lkd_fmt_module_t moved[BENCH_MAX_MODULES];
    const uint64_t delta = 0x1000000000ull;
    uint64_t *distinct = malloc(in->frame_count * sizeof(*distinct));
    if (!distinct)
        return;
    memcpy(distinct, in->frames, in->frame_count * sizeof(*distinct));
    qsort(distinct, in->frame_count, sizeof(*distinct), address_cmp);
    size_t n = 0, frames_total;
    for (size_t i = 0; i < in->frame_count; i++)
        if (n == 0 || distinct[n - 1] != distinct[i])
            distinct[n++] = distinct[i];
    lkd_snapshot_t snap = {.strings = (char *)s->strings,
                           .strings_len = s->strings_len,
                           .modules = (lkd_fmt_module_t *)s->modules,
                           .module_count = s->module_count};
    lkd_snapshot_t other = snap;
    other.modules = moved;
    for (size_t i = 0; i < s->module_count; i++) {
        moved[i] = s->modules[i];
        if (moved[i].bias) { /* ET_DYN: another layout */
            moved[i].bias += delta;
            moved[i].start += delta;
            moved[i].end += delta;
        }
    }
    lkd_symbolizer_t *sym = lkd_symbolizer_open(&snap);
    double first = symbolize_all(sym, distinct, n, &frames_total);
    fprintf(stderr,
            "symbolized %zu distinct addresses (%zu source frames): CPU %.3f s, %.2f us each\n", n,
            frames_total, first, n ? first * 1e6 / (double)n : 0.0);
    if (sym) {
        print_stats(sym);
        fputs(lkd_symbolizer_warnings(sym), stderr);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < s->module_count; k++) {
            const lkd_fmt_module_t *m = &s->modules[k];
            if (distinct[i] >= m->start && distinct[i] < m->end && m->bias) {
                distinct[i] += delta;
                break;
            }
        }
    }
    lkd_symbolizer_t *second = lkd_symbolizer_open(&other);
    double again = symbolize_all(second, distinct, n, &frames_total);
    fprintf(stderr,
            "the same in a second snapshot at other load addresses, the first still open: "
            "CPU %.3f s\n",
            again);
    if (second)
        print_stats(second);
    lkd_symbolizer_close(second);
    lkd_symbolizer_close(sym);
    free(distinct);
}

/* The second form: writes a synthetic snapshot, then times its symbolization. */
static int write_snapshot(const char *out, size_t stacks, size_t blocks, uint32_t depth,
                          unsigned seed, char **pairs, int npairs)
{
    static synth_t s;
    s.strings_len = 1;
    for (int i = 0; i + 1 < npairs; i += 2)
        if (synth_module(&s, pairs[i], pairs[i + 1], seed) != 0)
            return 3;
    if (!s.pool_count || !stacks || !depth || depth > LKD_FMT_MAX_DEPTH) {
        fprintf(stderr, "symbols_bench: nothing to write (no addresses, stacks or depth)\n");
        return 2;
    }
    uint32_t *depths = malloc(stacks * sizeof(*depths));
    uint64_t *frames = malloc(stacks * depth * sizeof(*frames));
    lkd_fmt_block_t *b = malloc((blocks ? blocks : 1) * sizeof(*b));
    if (!depths || !frames || !b)
        return 1;
    uint64_t state = 0x9e3779b97f4a7c15ull; /* the same stacks for every seed */
    for (size_t i = 0; i < stacks; i++) {
        depths[i] = depth;
        for (uint32_t k = 0; k < depth; k++)
            frames[i * depth + k] = s.pool[next_random(&state) % s.pool_count];
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < blocks; i++) {
        b[i] = (lkd_fmt_block_t){.address = 0x550000000000ull + i * 64,
                                 .size = 16 + (i * 37) % 1000,
                                 .birth = i + 1,
                                 .stack = (uint32_t)(next_random(&state) % stacks)};
        bytes += b[i].size;
    }
    uint32_t exe = s.modules[0].path, label = synth_string(&s, "bench");
    uint32_t cwd = synth_string(&s, "/");
    lkd_snapfile_input_t in = {.process = {.pid = 1000 + seed,
                                           .seq = 1,
                                           .depth = depth,
                                           .exe = exe,
                                           .label = label,
                                           .cwd = cwd,
                                           .argv = exe,
                                           .argc = 1},
                               .totals = {.bytes = bytes,
                                          .blocks = blocks,
                                          .peak_bytes = bytes,
                                          .total_allocs = blocks,
                                          .total_bytes = bytes,
                                          .birth_next = blocks + 1},
                               .strings = s.strings,
                               .strings_len = s.strings_len,
                               .modules = s.modules,
                               .module_count = s.module_count,
                               .stack_depths = depths,
                               .stack_count = stacks,
                               .frames = frames,
                               .frame_count = stacks * depth,
                               .blocks = b,
                               .block_count = blocks,
                               .zstd_level = 1};
    lkd_snapfile_mem_t mem = {mem_alloc, mem_free, NULL};
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? -errno : lkd_snapfile_write(fd, &in, &mem);
    if (fd >= 0 && close(fd) != 0 && !rc)
        rc = -errno;
    if (rc) {
        fprintf(stderr, "%s: cannot write: %s\n", out, strerror(-rc));
        return 3;
    }
    fprintf(stderr, "%s: %zu modules, %zu call sites, %zu stacks of %u frames, %zu blocks\n", out,
            s.module_count, s.pool_count, stacks, depth, blocks);
    bench_stacks(&s, &in);
    free(depths);
    free(frames);
    free(b);
    free(s.pool);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: symbols_bench [-p] FILE < ADDRESSES\n"
                    "       symbols_bench -w OUT.snap [-s STACKS] [-b BLOCKS] [-d DEPTH] "
                    "[-r SEED] FILE ADDRS [FILE ADDRS...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    size_t stacks = 100000, blocks = 1000000;
    unsigned long depth = 24, seed = 1;
    int print = 0, opt;
    while ((opt = getopt(argc, argv, "pw:s:b:d:r:")) != -1) {
        switch (opt) {
        case 'p': print = 1; break;
        case 'w': out = optarg; break;
        case 's': stacks = strtoul(optarg, NULL, 10); break;
        case 'b': blocks = strtoul(optarg, NULL, 10); break;
        case 'd': depth = strtoul(optarg, NULL, 10); break;
        case 'r': seed = strtoul(optarg, NULL, 10); break;
        default: return usage();
        }
    }
    if (out) {
        if (print || argc - optind < 2 || (argc - optind) % 2 != 0)
            return usage();
        return write_snapshot(out, stacks, blocks, (uint32_t)depth, (unsigned)seed, argv + optind,
                              argc - optind);
    }
    if (argc - optind != 1)
        return usage();
    return bench_file(argv[optind], print);
}
