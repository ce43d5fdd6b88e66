"""py_bigint: a huge integer computation; the snapshot shows its site and its peak.

Run it under leakdiff:

    build/leakdiff run --python -o out -- /usr/bin/python3 samples/py_bigint.py
    build/leakdiff diff out/python3.11.*.before.snap out/python3.11.*.after.snap
    build/leakdiff info out/python3.11.*.after.snap

It squares 3 twenty-one times (x = x * x), computing 3 ** 2 ** 21, a number of 3,323,908
bits, between a snapshot "before" and a snapshot "after" (taken through the program API with
ctypes), with leakdiff_reset_peak() called right after "before".

The site: CPython keeps an int in one block of 24 B of header plus 4 B per 30-bit digit,
allocated by _PyLong_New (CPython's long allocation; python attribution makes it the site,
since the whole stack is the interpreter's). The last product is allocated with as many
digits as its two factors together, 2 x 55,399 (3 ** 2 ** 20 has 1,661,954 bits), so the
"after" snapshot holds one more block of 24 + 4 x 110,798 = 443,216 B at _PyLong_New:
exactly the diff's growth. The product needs one digit less (3,323,908 bits are 110,797
digits), so sys.getsizeof says 443,212 B: it counts the digits in use, not the block.

The peak: while the last product is computed, its factor (221,624 B) and the product
(443,216 B) are both alive, with Karatsuba's temporaries besides, so the peak of "after" is
at least 664,840 B above what was live at "before", and at least the factor's 221,624 B
above what is live at "after". `leakdiff info` and `top` print it ("peak"), and so does the
program, which reads it with leakdiff_traced_memory() right before the snapshot.
Without the shim it says so and exits 0.

EXPECT snapshots=3
EXPECT diff before after function=_PyLong_New bytes=443216 blocks=1
EXPECT diff before after total bytes=443216 blocks=1
"""

import ctypes
import sys

SQUARINGS = 21


def leakdiff_api():
    """The shim's snapshot, reset_peak and traced_memory, or None without the shim."""
    process = ctypes.CDLL(None)
    try:
        api = (process.leakdiff_snapshot, process.leakdiff_reset_peak,
               process.leakdiff_traced_memory)
    except AttributeError:
        return None
    api[0].argtypes = [ctypes.c_char_p]
    api[1].argtypes = []
    api[2].argtypes = [ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    for f in api:
        f.restype = ctypes.c_int
    return api


def main():
    api = leakdiff_api()
    if api is None:
        print("py_bigint: not running under leakdiff (try: leakdiff run -- python3 %s)"
              % sys.argv[0])
        return 0
    snapshot, reset_peak, traced_memory = api
    current, peak = ctypes.c_size_t(), ctypes.c_size_t()
    current_ref, peak_ref = ctypes.byref(current), ctypes.byref(peak)
    x = 3
    # Everything the code between the snapshots uses exists before "before" (ctypes creates
    # a function object on first use), so that the diff is the computation alone.
    if snapshot(b"before") != 0:
        raise OSError("leakdiff_snapshot failed")
    reset_peak()
    for _ in range(SQUARINGS):
        x = x * x
    traced_memory(current_ref, peak_ref)
    if snapshot(b"after") != 0:
        raise OSError("leakdiff_snapshot failed")
    print("py_bigint: 3 ** 2 ** %d has %d bits; sys.getsizeof %d B; traced memory %d B, "
          "peak %d B" % (SQUARINGS, x.bit_length(), sys.getsizeof(x), current.value,
                         peak.value))
    return 0


if __name__ == "__main__":
    sys.exit(main())
