"""py_cycle: a reference cycle that only the cycle collector could free, and its weakref fix.

Run it under leakdiff and diff the two snapshots it takes through the program API (ctypes):

    build/leakdiff run --python -o out -- /usr/bin/python3 samples/py_cycle.py
    build/leakdiff diff out/python3.11.*.before.snap out/python3.11.*.after.snap
    build/leakdiff run --python -o fixed -- /usr/bin/python3 samples/py_cycle.py --weakref

Each request makes two Nodes that point at each other (a.peer = b, b.peer = a) and then
drops them. Reference counting never frees a cycle; only the cycle collector does, and this
program runs with it disabled (gc.disable(), as latency-sensitive services do). Each Node
holds a payload of bytes(1000): one block of 33 + 1,000 = 1,033 B (header, data, NUL;
sys.getsizeof agrees). One request runs before the snapshot "before" (so that one-time
allocations of the first call do not count), ten run between "before" and "after".

Growth from "before" to "after", exactly:
  * default (pymalloc): the 20 payloads, 20 x 1,033 = 20,660 B in 20 blocks; the Nodes
    (56 B each: 16 B of GC header, 16 B of object header, 3 slots of 8 B) are served by
    pymalloc's arenas, which malloc never sees;
  * with PYTHONMALLOC=malloc (`leakdiff run --python`): the Nodes too, 20 x (1,033 + 56) =
    21,780 B in 40 blocks.
With --weakref, b.peer = weakref.ref(a): no cycle, each request's objects are freed when it
returns, and the growth is exactly 0 B in 0 blocks either way.
Without the shim it says so and exits 0.

EXPECT snapshots=3
EXPECT diff before after total bytes=20660 blocks=20
"""

import ctypes
import gc
import sys
import weakref

REQUESTS = 10
PAYLOAD = 1000


class Node:
    __slots__ = ("peer", "payload", "__weakref__")

    def __init__(self):
        self.peer = None
        self.payload = bytes(PAYLOAD)


def handle_request(fixed):
    """Builds a pair of Nodes that refer to each other and returns what it computed."""
    a, b = Node(), Node()
    a.peer = b
    b.peer = weakref.ref(a) if fixed else a  # the fix: a weak back-reference
    return len(a.payload) + len(b.payload)


def leakdiff_snapshot():
    """The shim's leakdiff_snapshot, or None when this Python does not run under leakdiff."""
    try:
        snapshot = ctypes.CDLL(None).leakdiff_snapshot
    except AttributeError:
        return None
    snapshot.argtypes = [ctypes.c_char_p]
    snapshot.restype = ctypes.c_int
    return snapshot


def main():
    fixed = "--weakref" in sys.argv[1:]
    snapshot = leakdiff_snapshot()
    if snapshot is None:
        print("py_cycle: not running under leakdiff (try: leakdiff run -- python3 %s)"
              % sys.argv[0])
        return 0
    if sys.getsizeof(bytes(PAYLOAD)) != PAYLOAD + 33:
        print("py_cycle: bytes(%d) is not %d B on this CPython" % (PAYLOAD, PAYLOAD + 33))
        return 1
    gc.disable()
    handle_request(fixed)
    if snapshot(b"before") != 0:
        raise OSError("leakdiff_snapshot failed")
    for _ in range(REQUESTS):
        handle_request(fixed)
    if snapshot(b"after") != 0:
        raise OSError("leakdiff_snapshot failed")
    print("py_cycle: %d requests %s; now `leakdiff diff` the before and after snapshots"
          % (REQUESTS, "with a weakref back-reference" if fixed else "that each left a cycle"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
