"""python_api: the tracemalloc workflow on native allocations, from Python, through ctypes.

Run it under leakdiff (without the shim it says so and exits 0):

    build/leakdiff run -o out -- /usr/bin/python3 samples/python_api.py
    build/leakdiff diff out/python3.11.*.before.snap out/python3.11.*.after.snap

It loads a native library (build/samples/libplugin.so, built from samples/plugin.c; or the
path given as its argument), takes a snapshot "before", lets the library keep 25 records of
48 B (plugin_make_records, five calls of 5), keeps a 100,000 B block of its own through
libc's malloc, and takes a snapshot "after". The diff of the two shows exactly the native
growth: plugin_make_records +1,200 B in +25 blocks, and one block of 100,000 B whose site is
libffi's call trampoline (ctypes calls C through libffi; Debian's libffi has no symbol for
it, so it shows as libffi.so.8+0x...): +101,200 B in +26 blocks in all. Python's own
small objects come from pymalloc's arenas (mmap), not malloc, so they do not blur the
picture. It also prints the traced memory before and after (leakdiff_traced_memory, like
tracemalloc.get_traced_memory()): they differ by the same 101,200 B.

EXPECT snapshots=3
EXPECT diff before after function=plugin_make_records bytes=1200 blocks=25
EXPECT diff before after total bytes=101200 blocks=26
"""

import ctypes
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY = os.path.normpath(os.path.join(HERE, "..", "build", "samples", "libplugin.so"))


def leakdiff_api():
    """The shim's program API, or None when this Python does not run under leakdiff."""
    process = ctypes.CDLL(None)
    try:
        snapshot = process.leakdiff_snapshot
        traced_memory = process.leakdiff_traced_memory
    except AttributeError:
        return None
    snapshot.argtypes = [ctypes.c_char_p]
    snapshot.restype = ctypes.c_int
    traced_memory.argtypes = [ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    traced_memory.restype = ctypes.c_int
    return snapshot, traced_memory


def traced(traced_memory):
    current, peak = ctypes.c_size_t(), ctypes.c_size_t()
    rc = traced_memory(ctypes.byref(current), ctypes.byref(peak))
    if rc != 0:
        raise OSError(-rc, "leakdiff_traced_memory")
    return current.value, peak.value


def main():
    api = leakdiff_api()
    if api is None:
        print("python_api: not running under leakdiff (try: leakdiff run -- python3 %s)"
              % sys.argv[0])
        return 0
    snapshot, traced_memory = api
    plugin = ctypes.CDLL(sys.argv[1] if len(sys.argv) > 1 else LIBRARY)
    plugin.plugin_make_records.argtypes = [ctypes.c_int]
    plugin.plugin_make_records.restype = ctypes.c_void_p
    libc = ctypes.CDLL(None)
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.malloc.restype = ctypes.c_void_p
    kept = []

    if snapshot(b"before") != 0:
        raise OSError("leakdiff_snapshot failed")
    before, _ = traced(traced_memory)
    for _ in range(5):
        kept.append(plugin.plugin_make_records(5))
    kept.append(libc.malloc(100000))
    after, peak = traced(traced_memory)
    if snapshot(b"after") != 0:
        raise OSError("leakdiff_snapshot failed")

    print("python_api: traced memory %d B before, %d B after (peak %d B); now run "
          "`leakdiff diff` on the before and after snapshots" % (before, after, peak))
    return 0


if __name__ == "__main__":
    sys.exit(main())
