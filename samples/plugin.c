/* plugin: blocks allocated by a shared library that is then dlclose'd keep their site.
 *
 * This one file builds two things: the program build/samples/plugin, and, compiled with
 * -DLKD_PLUGIN -fPIC -shared, its plugin build/samples/libplugin.so (the Makefile rule
 * "libplugin.so"). The program dlopens the plugin from its own directory, calls
 * plugin_make_records(4), which keeps 4 records of 48 B (192 B), and dlcloses the plugin:
 * the library is unmapped, its records stay live, and the snapshot still names their site
 * plugin_make_records (the shim keeps every module ever loaded in its map).
 *
 * dlopen and dlclose allocate and free the loader's own bookkeeping; glibc 2.36 keeps one
 * block after the dlclose (2,304 B from _dlfo_mappings_segment_allocate, its table for
 * _dl_find_object): "other" below, and valgrind sees the same.
 * samples/python_api.py loads the same library through ctypes.
 *
 * EXPECT total bytes=2496 blocks=5
 * EXPECT site function=plugin_make_records bytes=192 blocks=4
 * EXPECT other bytes=2304 blocks=1
 */
#include <stdlib.h>

#define SITE __attribute__((noipa))

#ifdef LKD_PLUGIN

/* Keeps n records of 48 B; returns the last one (so that callers can keep it). */
SITE void *plugin_make_records(int n);

SITE void *plugin_make_records(int n)
{
    static void *volatile records[64];
    void *last = NULL;
    for (int i = 0; i < n && i < 64; i++)
        last = records[i] = malloc(48);
    return last;
}

#else

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The plugin's path: libplugin.so next to this program. */
static int plugin_path(char *out, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash || (size_t)(slash - out) + sizeof "/libplugin.so" > size)
        return -1;
    strcpy(slash, "/libplugin.so");
    return 0;
}

int main(void)
{
    char path[PATH_MAX];
    void *(*make)(int);
    if (plugin_path(path, sizeof path) < 0)
        return 2;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "plugin: %s\n", dlerror());
        return 2;
    }
    void *sym = dlsym(lib, "plugin_make_records");
    if (!sym)
        return 2;
    memcpy(&make, &sym, sizeof make);
    if (!make(4))
        return 1;
    return dlclose(lib) == 0 ? 0 : 1;
}

#endif
