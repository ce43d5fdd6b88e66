#!/usr/bin/python3
"""Symbolization speed on a large snapshot (`make bench-symbols`).

    /usr/bin/python3 bench/symbols_bench.py [--rounds N] [--stacks N] [--blocks N]
                                            [--depth N] [--leakdiff PATH]

Builds two synthetic snapshots with build/bench/symbols_bench (bench/symbols_bench.c):
1M live blocks (--blocks) on 100k distinct stacks (--stacks) of 24 frames (--depth), every
frame a real return address (the instruction after a call, found with objdump -d) drawn at
random from these modules, so that nearly every call site of each shows up (the worst case
for a symbolizer: ~100k distinct addresses):

  python3.11            stripped, Debian's: names from .dynsym ("func+0x1a")
  libc.so.6             DWARF from libc6-dbg's /usr/lib/debug/.build-id file, many inlines
  libstdc++ debug build libstdc++6-12-dbg's /usr/lib/x86_64-linux-gnu/debug/libstdc++.so.6
                        (C++ with full DWARF); the stripped libstdc++.so.6 without it
  leakdiff              our own binary (-O2 -g), copied so that rebuilds do not change it

The two snapshots hold the same stacks at different load biases (two runs under ASLR).
Reported, as the minimum over --rounds runs: wall and CPU time of `leakdiff top` of one
snapshot and of `leakdiff diff` of the two, and the in-process time that symbols_bench
takes to symbolize every frame of every stack through analyzer/symbols.c alone.
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
BENCH = os.path.join(BUILD, "bench", "symbols_bench")
LEAKDIFF = os.path.join(BUILD, "leakdiff")
CALL = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)")


def call_sites(path, out):
    """Writes the address after every call instruction of path to out; returns the count."""
    dump = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], check=True,
                          capture_output=True, text=True).stdout
    count, after_call = 0, False
    with open(out, "w") as f:
        for line in dump.splitlines():
            m = CALL.match(line)
            if not m:
                continue
            if after_call:
                f.write(m.group(1) + "\n")
                count += 1
            after_call = m.group(2).startswith("call")
    return count


def modules(tmp):
    """(path, description) of the modules of the synthetic snapshots."""
    stdcxx = "/usr/lib/x86_64-linux-gnu/debug/libstdc++.so.6"
    if not os.path.exists(stdcxx):
        stdcxx = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
    own = os.path.join(tmp, "leakdiff")
    shutil.copy(LEAKDIFF, own)
    found = [os.path.realpath("/usr/bin/python3"), "/lib/x86_64-linux-gnu/libc.so.6",
             os.path.realpath(stdcxx), own]
    return [m for m in found if os.path.exists(m)]


def timed(cmd):
    """Runs cmd (output discarded); returns (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stacks", type=int, default=100000)
    ap.add_argument("--blocks", type=int, default=1000000)
    ap.add_argument("--depth", type=int, default=24)
    ap.add_argument("--leakdiff", default=LEAKDIFF, help="the analyzer to time")
    args = ap.parse_args()
    for need in (BENCH, args.leakdiff):
        if not os.access(need, os.X_OK):
            sys.exit(f"symbols_bench.py: {need} is missing: run make bench-symbols")
    with tempfile.TemporaryDirectory(prefix="lkd-symbench-") as tmp:
        pairs = []
        for i, path in enumerate(modules(tmp)):
            addrs = os.path.join(tmp, f"{i}.addrs")
            n = call_sites(path, addrs)
            print(f"module {path}: {n} call sites")
            pairs += [path, addrs]
        snaps = []
        for seed in (1, 2):
            snap = os.path.join(tmp, f"s{seed}.snap")
            out = subprocess.run([BENCH, "-w", snap, "-s", str(args.stacks), "-b",
                                  str(args.blocks), "-d", str(args.depth), "-r", str(seed)]
                                 + pairs, check=True, capture_output=True, text=True).stderr
            if seed == 1:
                print(out.rstrip())
            snaps.append(snap)
        results = {"top": [], "diff": []}
        for _ in range(args.rounds):
            results["top"].append(timed([args.leakdiff, "top", "-n", "10", snaps[0]]))
            results["diff"].append(timed([args.leakdiff, "diff", "-n", "10"] + snaps))
        for name, runs in results.items():
            wall = min(r[0] for r in runs)
            cpu = min(r[1] for r in runs)
            print(f"leakdiff {name}: {wall:.2f} s wall, {cpu:.2f} s CPU "
                  f"(best of {args.rounds}; {args.blocks} blocks, {args.stacks} stacks"
                  f"{', two snapshots' if name == 'diff' else ''})")


if __name__ == "__main__":
    main()
