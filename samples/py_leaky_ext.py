"""py_leaky_ext: a Python program whose C extension leaks; leakdiff names the C functions.

Run it under leakdiff (after `make samples`, which builds build/samples/leaky_ext.so from
samples/leaky_ext.c against Debian's python3-dev):

    build/leakdiff run --python -o out -- /usr/bin/python3 samples/py_leaky_ext.py

The extension (samples/leaky_ext.c) has the two classic bugs:
  * leaky_ext.checksum(data) loses a PyMem_Malloc copy of data: called 10 times on 4,096 B,
    it leaks 40,960 B in 10 blocks, site leaky_checksum;
  * leaky_ext.remember(items, 1000) forgets a Py_DECREF: each of its 5 bytes objects of
    1,000 B (one block of 33 + 1,000 = 1,033 B each: sys.getsizeof, checked below) outlives
    the list: 5,165 B in 5 blocks, site leaky_remember.
The exit snapshot is of CPython (/usr/bin/python3.11), so the analyzer skips the
interpreter's frames by itself: without that, the second leak's site would be CPython's
PyBytes_FromStringAndSize. Every block is larger than 512 B, so pymalloc (the default,
without --python) passes it to malloc as well, and the figures are the same either way.
Without the shim the program runs the same and leaks the same.

EXPECT site function=leaky_checksum bytes=40960 blocks=10
EXPECT site function=leaky_remember bytes=5165 blocks=5
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BUILT = os.path.normpath(os.path.join(HERE, "..", "build", "samples"))


def main():
    sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else BUILT)
    try:
        import leaky_ext
    except ImportError as e:
        print("py_leaky_ext: cannot import leaky_ext (run `make samples`): %s" % e)
        return 2
    data = bytes(range(256)) * 16
    for _ in range(10):
        if leaky_ext.checksum(data) != sum(data):
            return 1
    items = []
    for _ in range(5):
        leaky_ext.remember(items, 1000)
    if [sys.getsizeof(b) for b in items] != [1033] * 5:
        print("py_leaky_ext: a bytes object of 1,000 B is not 1,033 B on this CPython")
        return 1
    del items  # the list goes; the bytes objects stay (one reference too many)
    print("py_leaky_ext: 10 checksums of 4,096 B and 5 remembered bytes objects of 1,000 B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
