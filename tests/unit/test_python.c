/*
 * test_python - unit tests of python attribution (group.c): which snapshots are CPython's,
 * interpreter frames skipped so that a C extension's function is the site, the site of a
 * stack that is all interpreter, --python / --no-python, and leakdiff run's detection of a
 * CPython command (run.c).
 *
 * Synthetic snapshots and a fake resolver, as in test_group.c: no binary is symbolized.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "group.h"
#include "run.h"

#include "synthetic.h"

#define PY "/usr/bin/python3.11"
#define LIBPY "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"
#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"
#define EXT "/app/build/leaky_ext.cpython-311-x86_64-linux-gnu.so"
#define STDLIB_EXT "/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so"
#define EMBED "/app/bin/embedder"

/* One frame per address; the address (low byte) indexes this table. */
enum {
    A_MALLOC = 1,
    A_RAWMALLOC, /* static in CPython, no symbol in Debian's stripped binary */
    A_PYMEM,
    A_BYTES,
    A_LONG_NEW,
    A_GC_NEW,
    A_NUMBER,
    A_EXT_FUNC,
    A_EVAL,
    A_PYMAIN,
    A_START_MAIN,
    A_START,
    A_CTYPES,
    A_EMBED_RUN,
    A_EMBED_MAIN,
    A_LIBPY_EVAL,
    A_START_THREAD,
    A_CLONE,
    A_COUNT
};

static const lkd_frame_t frames[A_COUNT] = {
    [A_MALLOC] = {"malloc", NULL, 0, LIBC, 0, 0, false},
    [A_RAWMALLOC] = {"python3.11+0x1d2f0", NULL, 0, PY, 0, 0, false},
    [A_PYMEM] = {"PyMem_Malloc", NULL, 0, PY, 0, 0, false},
    [A_BYTES] = {"PyBytes_FromStringAndSize", NULL, 0, PY, 0, 0, false},
    [A_LONG_NEW] = {"_PyLong_New", NULL, 0, PY, 0, 0, false},
    [A_GC_NEW] = {"_PyObject_GC_New+0x20", NULL, 0, PY, 0, 0, false},
    [A_NUMBER] = {"PyNumber_Multiply", NULL, 0, PY, 0, 0, false},
    [A_EXT_FUNC] = {"leaky_remember", "/app/leaky_ext.c", 70, EXT, 0, 0, false},
    [A_EVAL] = {"_PyEval_EvalFrameDefault", NULL, 0, PY, 0, 0, false},
    [A_PYMAIN] = {"Py_BytesMain", NULL, 0, PY, 0, 0, false},
    [A_START_MAIN] = {"__libc_start_call_main", "../sysdeps/nptl/libc_start_call_main.h", 58, LIBC,
                      0, 0, false},
    [A_START] = {"_start", NULL, 0, PY, 0, 0, false},
    [A_CTYPES] = {"_ctypes.cpython-311-x86_64-linux-gnu.so+0x10018", NULL, 0, STDLIB_EXT, 0, 0,
                  false},
    [A_EMBED_RUN] = {"run_python", "/app/embedder.c", 12, EMBED, 0, 0, false},
    [A_EMBED_MAIN] = {"main", "/app/embedder.c", 30, EMBED, 0, 0, false},
    [A_LIBPY_EVAL] = {"PyRun_SimpleStringFlags", NULL, 0, LIBPY, 0, 0, false},
    [A_START_THREAD] = {"start_thread", "./nptl/pthread_create.c", 442, LIBC, 0, 0, false},
    [A_CLONE] = {"clone3", NULL, 0, LIBC, 0, 0, false},
};

static void fake_resolve(void *ctx, uint64_t address, const lkd_frame_t **out, size_t *count)
{
    (void)ctx;
    *out = &frames[address & 0xff];
    *count = 1;
}

static const lkd_resolver_t resolver = {fake_resolve, NULL};

/* A snapshot of exe (a STRINGS entry) with modules (paths) and stacks; free with synth_free. */
static void make_snap(lkd_snapshot_t *s, const char *exe, const char *const *modules,
                      size_t nmodules, const fake_stack_t *st, size_t n)
{
    static char strings[1024];
    size_t used = 1;
    memset(s, 0, sizeof *s);
    memset(strings, 0, sizeof strings);
    s->strings = strings;
    s->process.exe = (uint32_t)used;
    used += (size_t)snprintf(strings + used, sizeof strings - used, "%s", exe) + 1;
    s->modules = calloc(nmodules + 1, sizeof *s->modules);
    s->module_count = nmodules;
    for (size_t i = 0; i < nmodules; i++) {
        s->modules[i].path = (uint32_t)used;
        used += (size_t)snprintf(strings + used, sizeof strings - used, "%s", modules[i]) + 1;
    }
    s->strings_len = used;
    synth_stacks(s, st, n, 0);
}

/* python3.11 running an extension: what each kind of stack is attributed to. */
static const fake_stack_t python_program[] = {
    /* PyMem_Malloc in the extension: malloc <- static helper <- PyMem_Malloc <- extension */
    {{A_MALLOC, A_RAWMALLOC, A_PYMEM, A_EXT_FUNC, A_EVAL, A_PYMAIN, A_START_MAIN, A_START},
     8,
     4096,
     1},
    /* a bytes object the extension made (and forgot to release) */
    {{A_MALLOC, A_BYTES, A_EXT_FUNC, A_EVAL, A_PYMAIN, A_START_MAIN, A_START}, 7, 1033, 1},
    /* pure Python: a huge int; the generic allocator and the unnamed frame are skipped */
    {{A_MALLOC, A_RAWMALLOC, A_LONG_NEW, A_NUMBER, A_EVAL, A_PYMAIN, A_START_MAIN, A_START},
     8,
     443216,
     1},
    /* pure Python: an object from the GC allocator: the calling API function is the site */
    {{A_MALLOC, A_GC_NEW, A_NUMBER, A_EVAL, A_PYMAIN, A_START_MAIN, A_START}, 7, 56, 1},
    /* a Python thread: start_thread and clone3 are not sites either */
    {{A_MALLOC, A_LONG_NEW, A_EVAL, A_START_THREAD, A_CLONE}, 5, 28, 1},
    /* an extension of the standard library without symbols is still an extension */
    {{A_MALLOC, A_PYMEM, A_CTYPES, A_EVAL, A_PYMAIN}, 5, 200, 2},
    /* only interpreter frames without a usable name: the outermost frame, as always */
    {{A_MALLOC, A_RAWMALLOC, A_PYMEM}, 3, 7, 1},
};
#define PYTHON_PROGRAM_N (sizeof python_program / sizeof python_program[0])

static lkd_group_set_t build(const char *exe, const char *const *modules, size_t nmodules,
                             const fake_stack_t *st, size_t n, lkd_python_t python)
{
    lkd_snapshot_t s;
    lkd_group_set_t set;
    lkd_group_opts_t o = {.by = LKD_BY_FUNCTION, .python = python};
    make_snap(&s, exe, modules, nmodules, st, n);
    cr_assert_eq(lkd_group_build(&s, &resolver, &o, &set), 0);
    synth_free(&s);
    return set;
}

Test(python, detects_cpython_snapshots)
{
    lkd_snapshot_t s;
    const char *py_modules[] = {PY, LIBC}, *embed_modules[] = {EMBED, LIBPY, LIBC},
               *c_modules[] = {"/app/bin/app", LIBC, STDLIB_EXT};
    const struct {
        const char *exe;
        const char *const *modules;
        size_t n;
        bool python;
    } cases[] = {
        {PY, py_modules, 2, true},
        {PY, NULL, 0, true}, /* the executable alone */
        {"/root/.pyenv/versions/3.11.7/bin/python3.11", NULL, 0, true},
        {"/usr/bin/python3", NULL, 0, true},
        {"/usr/bin/python3.12d", NULL, 0, true},
        {EMBED, embed_modules, 3, true}, /* an embedding program: libpython */
        {"/app/bin/app", c_modules, 3, false},
        {"/usr/bin/python3-config", NULL, 0, false},
        {"/home/u/python3.11-src/build/app", NULL, 0, false}, /* base names only */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_snap(&s, cases[i].exe, cases[i].modules, cases[i].n, NULL, 0);
        cr_expect_eq(lkd_group_is_python(&s), cases[i].python, "%s", cases[i].exe);
        lkd_group_opts_t o = {.python = LKD_PYTHON_AUTO};
        cr_expect_eq(lkd_group_python_on(&s, &o), cases[i].python, "auto: %s", cases[i].exe);
        o.python = LKD_PYTHON_ON;
        cr_expect(lkd_group_python_on(&s, &o), "--python: %s", cases[i].exe);
        o.python = LKD_PYTHON_OFF;
        cr_expect(!lkd_group_python_on(&s, &o), "--no-python: %s", cases[i].exe);
        synth_free(&s);
    }
}

Test(python, extension_function_is_the_site)
{
    const char *modules[] = {PY, LIBC, EXT, STDLIB_EXT};
    lkd_group_set_t set = build(PY, modules, 4, python_program, PYTHON_PROGRAM_N, LKD_PYTHON_AUTO);
    expect_group(&set, "leaky_remember", 4096 + 1033, 2);
    expect_group(&set, "_PyLong_New", 443216 + 28, 2);
    expect_group(&set, "PyNumber_Multiply", 56, 1);
    expect_group(&set, "_ctypes.cpython-311-x86_64-linux-gnu.so+0x10018", 200, 2);
    expect_group(&set, "PyMem_Malloc", 7, 1); /* all plumbing: the outermost frame */
    cr_expect_eq(set.count, 5);
    cr_expect_eq(set.bytes, 4096 + 1033 + 443216 + 56 + 28 + 200 + 7);
    /* the representative stack starts at the site */
    lkd_group_t *g = lkd_group_find(&set, "leaky_remember");
    cr_expect_str_eq(g->frames[0].function, "leaky_remember");
    lkd_group_set_free(&set);
}

Test(python, no_python_attributes_to_the_interpreter)
{
    const char *modules[] = {PY, LIBC, EXT};
    lkd_group_set_t set = build(PY, modules, 3, python_program, 2, LKD_PYTHON_OFF);
    expect_group(&set, "python3.11+0x1d2f0", 4096, 1);
    expect_group(&set, "PyBytes_FromStringAndSize", 1033, 1);
    cr_expect_eq(set.count, 2);
    lkd_group_set_free(&set);
}

Test(python, forced_on_for_any_snapshot)
{
    const char *modules[] = {"/app/bin/app", LIBC, EXT};
    lkd_group_set_t set = build("/app/bin/app", modules, 3, python_program, 2, LKD_PYTHON_AUTO);
    cr_expect_null(lkd_group_find(&set, "leaky_remember"), "auto: not a CPython snapshot");
    lkd_group_set_free(&set);
    set = build("/app/bin/app", modules, 3, python_program, 2, LKD_PYTHON_ON);
    expect_group(&set, "leaky_remember", 4096 + 1033, 2);
    lkd_group_set_free(&set);
}

Test(python, embedding_program_is_the_site_of_interpreter_work)
{
    const char *modules[] = {EMBED, LIBPY, LIBC};
    const fake_stack_t st[] = {
        {{A_MALLOC, A_LIBPY_EVAL, A_EMBED_RUN, A_EMBED_MAIN, A_START_MAIN}, 5, 100, 1},
    };
    lkd_group_set_t set = build(EMBED, modules, 3, st, 1, LKD_PYTHON_AUTO);
    expect_group(&set, "run_python", 100, 1);
    lkd_group_set_free(&set);
}

/* A file in a temporary directory with the given text and mode; path gets its name. */
static void write_file(char *path, size_t size, const char *name, const char *text, mode_t mode)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/lkd-python-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
    }
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

Test(python, run_detects_cpython_commands)
{
    char script[128], shell[128], link[160];
    write_file(script, sizeof script, "tool", "#!/usr/bin/env python3\nprint(1)\n", 0755);
    write_file(shell, sizeof shell, "job", "#!/bin/sh\necho python\n", 0755);
    snprintf(link, sizeof link, "%s.py-link", script);
    unlink(link);
    cr_assert_eq(symlink("/usr/bin/python3", link), 0);
    if (access("/usr/bin/python3", X_OK) == 0) {
        cr_expect(lkd_run_is_python("/usr/bin/python3"));
        cr_expect(lkd_run_is_python(link), "a symlink to python (a venv's bin/python)");
    }
    cr_expect(lkd_run_is_python(script), "a script with a python #! line");
    cr_expect(!lkd_run_is_python(shell), "a shell script");
    cr_expect(!lkd_run_is_python("/bin/sh"));
    cr_expect(!lkd_run_is_python("no-such-command-anywhere"));
    unlink(link);
    unlink(script);
    unlink(shell);
    *strrchr(script, '/') = '\0';
    rmdir(script);
}
