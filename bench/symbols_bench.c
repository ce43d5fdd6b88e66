/*
 * symbols_bench - measures analyzer/symbols.c on a real object file; also an addr2line-style
 * dump for comparing against binutils.
 *
 *   symbols_bench [-p] FILE < ADDRESSES
 *
 * ADDRESSES: one hex ELF virtual address per line (e.g. return addresses of every call in
 * FILE). The file is described as the only module of an in-memory snapshot, loaded at an
 * arbitrary bias for ET_DYN, with its real build-id. Prints the time per distinct address;
 * with -p, also prints what `addr2line -a -f -i -C -e FILE` prints for ADDRESS - 1.
 * Not part of the build; compile by hand, e.g.
 *   cc -O2 -g -Iinclude -Ianalyzer -D_GNU_SOURCE -o build/symbols_bench \
 *      bench/symbols_bench.c analyzer/symbols.c -ldw -lelf -lstdc++
 */
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "symbols.h"

#define BENCH_BIAS 0x7f0000000000ull

/* Fills module from FILE's program headers and build-id. Returns 0 or -1. */
static int describe(const char *path, lkd_fmt_module_t *module)
{
    int fd = open(path, O_RDONLY);
    elf_version(EV_CURRENT);
    Elf *elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ, NULL);
    GElf_Ehdr eh;
    size_t phnum;
    if (!elf || !gelf_getehdr(elf, &eh) || elf_getphdrnum(elf, &phnum) != 0)
        return -1;
    module->bias = eh.e_type == ET_DYN ? BENCH_BIAS : 0;
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
    module->flags = LKD_FMT_MOD_MAIN;
    elf_end(elf);
    close(fd);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void print_frames(uint64_t vaddr, const lkd_frame_t *frames, size_t count)
{
    printf("0x%016" PRIx64 "\n", vaddr - 1);
    for (size_t i = 0; i < count; i++)
        printf("%s\n%s:%u\n", frames[i].function, frames[i].file ? frames[i].file : "??",
               frames[i].line);
}

int main(int argc, char **argv)
{
    int print = argc > 1 && strcmp(argv[1], "-p") == 0;
    if (argc != 2 + print) {
        fprintf(stderr, "usage: symbols_bench [-p] FILE < ADDRESSES\n");
        return 2;
    }
    static char strings[4096];
    lkd_fmt_module_t module = {0};
    lkd_snapshot_t snap = {.strings = strings, .modules = &module, .module_count = 1};
    snprintf(strings, sizeof(strings), "%s", argv[1 + print]);
    snap.strings_len = strlen(strings);
    if (describe(argv[1 + print], &module) != 0) {
        fprintf(stderr, "%s: not a readable ELF file\n", argv[1 + print]);
        return 3;
    }
    size_t n = 0, cap = 0;
    uint64_t *vaddrs = NULL, v;
    while (scanf("%" SCNx64, &v) == 1) {
        if (n == cap && !(vaddrs = realloc(vaddrs, (cap = cap ? 2 * cap : 1024) * sizeof(v))))
            return 1;
        vaddrs[n++] = v;
    }
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
    fprintf(stderr, "%zu addresses, %zu frames, %.3f s, %.2f us/address; cached pass: ",
            n, frames_total, t1 - t0, n ? (t1 - t0) * 1e6 / (double)n : 0.0);
    t0 = now();
    for (size_t i = 0; i < n; i++) {
        const lkd_frame_t *frames;
        size_t count;
        lkd_symbolize(sym, vaddrs[i] + module.bias, &frames, &count);
    }
    fprintf(stderr, "%.3f us/address\n%s", n ? (now() - t0) * 1e6 / (double)n : 0.0,
            lkd_symbolizer_warnings(sym));
    lkd_symbolizer_close(sym);
    free(vaddrs);
    return 0;
}
