/*
 * modules - module map from dl_iterate_phdr.
 *
 * Invariants: records are appended, never removed; a module is identified by its path,
 * load bias and start address, so a library loaded again at another address is a new
 * record and the old one stays (marked unloaded). The build-id is read from the mapped
 * PT_NOTE segment, no file I/O. Never calls malloc (arena only).
 */
#include "modules.h"

#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "arena.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static lkd_module_t *head, **tail = &head;
static char exe_path[4096];

typedef struct scan {
    uint64_t now_seq;
    unsigned long generation; /* bumped each refresh, marks modules seen */
} scan_t;

/* lkd_modules_init - reads /proc/self/exe once. */
void lkd_modules_init(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    exe_path[n > 0 ? n : 0] = '\0';
}

/* lkd_modules_exe - the executable's absolute path ("" when unknown). */
const char *lkd_modules_exe(void)
{
    return exe_path;
}

/* Copies the GNU build-id from a mapped PT_NOTE segment, if there is one. */
static void read_build_id(const struct dl_phdr_info *info, const ElfW(Phdr) * ph,
                          lkd_fmt_module_t *rec)
{
    const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
        const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
        size_t name = (nh->n_namesz + 3) & ~3u, desc = (nh->n_descsz + 3) & ~3u;
        const char *d = p + sizeof *nh + name;
        if (d + desc > end)
            return;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
            !memcmp(p + sizeof *nh, "GNU", 4) && nh->n_descsz <= LKD_FMT_BUILD_ID_MAX) {
            memcpy(rec->build_id, d, nh->n_descsz);
            rec->build_id_len = nh->n_descsz;
            return;
        }
        p = d + desc;
    }
}

static void describe(const struct dl_phdr_info *info, lkd_fmt_module_t *rec)
{
    uint64_t lo = UINT64_MAX, hi = 0;
    rec->bias = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uint64_t s = info->dlpi_addr + ph->p_vaddr;
            lo = s < lo ? s : lo;
            hi = s + ph->p_memsz > hi ? s + ph->p_memsz : hi;
        } else if (ph->p_type == PT_NOTE && !rec->build_id_len) {
            read_build_id(info, ph, rec);
        }
    }
    rec->start = lo == UINT64_MAX ? 0 : lo;
    rec->end = hi;
}

static lkd_module_t *find(const lkd_fmt_module_t *rec, const char *path)
{
    for (lkd_module_t *m = head; m; m = m->next)
        if (!m->rec.unload_seq && m->rec.bias == rec->bias && m->rec.start == rec->start &&
            !strcmp(m->path, path))
            return m;
    return NULL;
}

static lkd_module_t *add(const lkd_fmt_module_t *rec, const char *path)
{
    size_t len = strlen(path) + 1;
    lkd_module_t *m = lkd_arena_alloc(sizeof *m);
    char *copy = lkd_arena_alloc(len);
    if (!m || !copy) {
        lkd_arena_free(m, sizeof *m);
        lkd_arena_free(copy, len);
        return NULL;
    }
    memcpy(copy, path, len);
    m->rec = *rec;
    m->path = copy;
    *tail = m;
    tail = &m->next;
    return m;
}

static int visit(struct dl_phdr_info *info, size_t size, void *ctx)
{
    (void)size;
    scan_t *s = ctx;
    lkd_fmt_module_t rec = {0};
    const char *path = info->dlpi_name;
    describe(info, &rec);
    if (!path || !*path) {
        path = exe_path;
        rec.flags |= LKD_FMT_MOD_MAIN;
    }
    if (info->dlpi_addr && info->dlpi_addr == getauxval(AT_SYSINFO_EHDR))
        rec.flags |= LKD_FMT_MOD_VDSO;
    if (!rec.end)
        return 0;
    lkd_module_t *m = find(&rec, path);
    if (!m) {
        rec.load_seq = s->now_seq;
        m = add(&rec, path);
    }
    if (m)
        m->rec.reserved = (uint32_t)s->generation; /* seen in this scan */
    return 0;
}

/* lkd_modules_refresh - re-reads the loader's list; see modules.h. */
const lkd_module_t *lkd_modules_refresh(uint64_t now_seq)
{
    static unsigned long generation;
    pthread_mutex_lock(&lock);
    scan_t s = {now_seq, ++generation};
    dl_iterate_phdr(visit, &s);
    for (lkd_module_t *m = head; m; m = m->next)
        if (!m->rec.unload_seq && m->rec.reserved != (uint32_t)s.generation) {
            m->rec.unload_seq = now_seq ? now_seq : 1;
            m->rec.flags |= LKD_FMT_MOD_UNLOADED;
        }
    pthread_mutex_unlock(&lock);
    return head;
}
