#!/usr/bin/python3
"""leakdiff benchmark (`make bench`): slowdown and memory next to no tool and heaptrack.

    /usr/bin/python3 bench/bench.py [--rounds N] [--scale F] [--only NAME,...] [--no-heaptrack]
                                    [--sample BYTES] [--no-floor]

Workloads (DESIGN.md section 7), none of them written for leakdiff:
  python3   Debian's /usr/bin/python3, PYTHONMALLOC=malloc, building/serializing/parsing/
            indexing JSON records (bench/json_workload.py): ~8M allocator calls, ~1.7M
            blocks live at the peak.
  sqlite3   Debian's sqlite3 building and querying an indexed 300k-row table in memory
            (bench/sqlite_workload.sql): ~1.8M calls.
  malloc    bench/deep_stacks.c: 2 threads of malloc/free pairs allocating 14-21 frames
            deep (~24M pairs); malloc1 the same on 1 thread; malloc-fp the same with
            LEAKDIFF_UNWIND=fp, built with -fno-omit-frame-pointer (bare runs that build too).
  live5m    bench/live_blocks.c keeping 5M blocks live at exit: the exit snapshot and the
            reachability scan are in the time.
Each runs bare, under leakdiff (LD_PRELOAD=build/libleakdiff.so, LEAKDIFF_OUTPUT=a temp
dir, exit snapshot included), under leakdiff's sampled mode (the same with
LEAKDIFF_SAMPLE=--sample, default 524288 = 512 KiB as in DESIGN.md section 7; 0 skips it),
on the two floors under leakdiff's full mode (--no-floor skips them) and under heaptrack
(`heaptrack -o FILE`, its interpreter and compression included; on a workload heaptrack
fails on, `heaptrack --raw`, recording only, marked "r" and why), interleaved for several
rounds, the order rotating every round. The floors are a preload that does nothing but
interpose the allocator and walk the stack (bench/unwind_floor.c, no table, no
bookkeeping): "unwind" walks each allocation's stack, up to 64 frames as leakdiff does by
default, with the default mode's unwinder (preload/cfi.c compiled in, its walk alone, which
the shim also writes out only for stacks its transitions do not know; libunwind's
unw_backtrace, into a buffer, for what it leaves; the frame-pointer walk of
LEAKDIFF_UNWIND=fp, into a buffer, where the workload sets that); "interpose" only interposes
(UNWIND_FLOOR_DEPTH=0). What leakdiff costs above "unwind" is its own; "unwind" itself is
what any tracker recording full stacks that way pays.
Reported: medians of wall time and of max RSS (wait4 rusage taken by bench/launch.c: the
largest process of the tree, for heaptrack the target or heaptrack_interpret), and the ratios
leakdiff/bare, floor/bare and heaptrack/bare next to each other; below them the same ratios
from each mode's fastest run, as a check on the medians (noise only adds time). The allocator
calls of each
workload are counted once with a tiny counting preload (bench/count_allocs.c).

Then tracker memory per live block (bench/live_blocks.c holding 2M small blocks: VmRSS
under leakdiff minus bare VmRSS, divided by the blocks), the exit snapshot of 1M blocks
(time with the reachability scan and without it, bytes per block on disk) and `leakdiff
diff` of two 1M-block snapshots.

The C sources in bench/ are built here into build/bench/. The table is printed and
written to build/bench.txt. Every run's output is checked against the bare run's, and a
leakdiff run must leave exactly one exit snapshot: otherwise the bench stops with an error.
"""

import argparse
import glob
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_SRC = os.path.join(ROOT, "bench")
BUILD = os.path.join(ROOT, "build")
OUT = os.path.join(BUILD, "bench")
SHIM = os.path.join(BUILD, "libleakdiff.so")
LEAKDIFF = os.path.join(BUILD, "leakdiff")
REPORT = os.path.join(BUILD, "bench.txt")
PYTHON = "/usr/bin/python3"
SQLITE = "/usr/bin/sqlite3"
HEAPTRACK = shutil.which("heaptrack")
FLOOR = os.path.join(OUT, "libunwind_floor.so")
MODES = ("bare", "leakdiff", "sampled", "unwind", "interpose", "heaptrack")
FLOOR_MODES = ("unwind", "interpose")  # bench/unwind_floor.c, with and without the capture
SAMPLED_TARGET = 1.05  # DESIGN.md section 7: sampled mode at LEAKDIFF_SAMPLE=512K

# bench/*.c -> build/bench/<output>, with these flags.
PROGRAMS = {
    "libcount_allocs.so": ("count_allocs.c", ["-O2", "-shared", "-fPIC"]),
    # frame pointers as in the shim: the fp walk starts in the library's own frames
    # with the default mode's unwinder compiled in (preload/cfi.c and the arena it uses)
    "libunwind_floor.so": ("unwind_floor.c", ["-O2", "-shared", "-fPIC", "-D_GNU_SOURCE",
                                              "-fno-omit-frame-pointer",
                                              os.path.join(ROOT, "preload", "cfi.c"),
                                              os.path.join(ROOT, "preload", "arena.c"),
                                              "-ldl"]),
    "deep_stacks": ("deep_stacks.c", ["-O2", "-g", "-pthread"]),
    "deep_stacks_fp": ("deep_stacks.c", ["-O2", "-g", "-pthread", "-fno-omit-frame-pointer"]),
    "live_blocks": ("live_blocks.c", ["-O2", "-g"]),
    "launch": ("launch.c", ["-O2"]),
}


class Workload:
    def __init__(self, name, label, cmd, env=None, stdin=None, target=None, heaptrack_ref=None,
                 same_output=True):
        self.name, self.label, self.cmd = name, label, cmd
        self.env = env or {}
        self.stdin = stdin
        self.target = target              # leakdiff/bare slowdown target, DESIGN.md section 7
        self.heaptrack_ref = heaptrack_ref  # heaptrack/bare measured when DESIGN was written
        self.calls = None
        self.times = {m: [] for m in MODES}
        self.rss = {m: [] for m in MODES}
        self.expected_stdout = None
        self.same_output = same_output  # False: the program prints measurements of its own
        self.heaptrack_failed = None  # why heaptrack failed on it (then run with --raw)


def workloads(scale):
    records = max(1000, int(115000 * scale))
    # 12M pairs per thread: the bare loop then runs about half a second, long enough for its
    # ratios to rise above this machine's scheduling noise (at 4M, 0.15 s, they did not).
    pairs = max(10000, int(12000000 * scale))
    rows = max(1000, int(300000 * scale))
    sql = os.path.join(BENCH_SRC, "sqlite_workload.sql")
    if rows != 300000:
        scaled = os.path.join(OUT, "sqlite_workload.%d.sql" % rows)
        with open(sql) as f, open(scaled, "w") as g:
            g.write(f.read().replace("i < 300000", "i < %d" % rows))
        sql = scaled
    return [
        Workload("python3", "python3 JSON/dict, %dk records" % (records // 1000),
                 [PYTHON, os.path.join(BENCH_SRC, "json_workload.py"), str(records)],
                 env={"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"},
                 target=1.5, heaptrack_ref=3.0),
        Workload("sqlite3", "sqlite3 indexed table, %dk rows" % (rows // 1000),
                 [SQLITE, "-batch", ":memory:"], stdin=sql, target=1.5, heaptrack_ref=4.4),
        Workload("malloc", "malloc/free 14-21 deep, 2 thr x %.1fM" % (pairs / 1e6),
                 [os.path.join(OUT, "deep_stacks"), "2", str(pairs)],
                 target=3.0, heaptrack_ref=8.4),
        Workload("malloc1", "same, 1 thread x %.1fM" % (2 * pairs / 1e6),
                 [os.path.join(OUT, "deep_stacks"), "1", str(2 * pairs)],
                 target=3.0, heaptrack_ref=8.4),
        Workload("malloc-fp", "same, frame pointers, LEAKDIFF_UNWIND=fp",
                 [os.path.join(OUT, "deep_stacks_fp"), "2", str(pairs)],
                 env={"LEAKDIFF_UNWIND": "fp"}, target=3.0, heaptrack_ref=8.4),
        Workload("live5m", "5M live blocks, exit snapshot + scan",
                 [os.path.join(OUT, "live_blocks"), str(max(10000, int(5000000 * scale)))],
                 same_output=False),
    ]


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


def build_programs():
    os.makedirs(OUT, exist_ok=True)
    for out, (src, flags) in PROGRAMS.items():
        src_path, out_path = os.path.join(BENCH_SRC, src), os.path.join(OUT, out)
        # rebuilt when any source it compiles or a header of the shim is newer
        deps = [src_path] + [f for f in flags if os.path.isfile(f)] + \
            glob.glob(os.path.join(ROOT, "preload", "*.h"))
        if os.path.exists(out_path) and \
                os.path.getmtime(out_path) >= max(os.path.getmtime(d) for d in deps):
            continue
        libs = [f for f in flags if f.startswith("-l")]  # after the source, for the linker
        cmd = (["cc", "-std=gnu11", "-Wall", "-Wextra"] + [f for f in flags if f not in libs]
               + ["-o", out_path, src_path] + libs)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            die("cannot build %s:\n%s" % (out, proc.stderr))


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEAKDIFF_", "PYTHON", "MALLOC_", "HEAPTRACK"))
           and k not in ("LD_PRELOAD", "LD_LIBRARY_PATH", "GLIBC_TUNABLES")}
    env["LC_ALL"] = "C"
    env.update(extra)
    return env


def measure(cmd, env, stdin=None, scratch=None, child_env=None, failed=None):
    """Runs cmd to completion through build/bench/launch (see launch.c: ru_maxrss of a direct
    child of this interpreter would be this interpreter's). Returns (wall seconds, max RSS of
    the command's largest process in KiB, its stdout, monotonic time it ended). child_env
    goes to the command only, not to the launcher (LD_PRELOAD). A non-zero exit ends the
    bench, unless failed is given: failed(why) is then called and None returned."""
    scratch = scratch or tempfile.mkdtemp(dir=OUT)
    out_path, err_path = os.path.join(scratch, ".stdout"), os.path.join(scratch, ".stderr")
    rss_path = os.path.join(scratch, ".rusage")
    with open(out_path, "wb") as out, open(err_path, "wb") as err, \
            open(stdin or os.devnull, "rb") as inp:
        start = time.monotonic()
        pairs = ["%s=%s" % kv for kv in sorted((child_env or {}).items())]
        proc = subprocess.run([os.path.join(OUT, "launch"), rss_path] + pairs + ["--"] + list(cmd),
                              env=env,
                              stdin=inp, stdout=out, stderr=err, cwd=scratch)
        end = time.monotonic()
    with open(out_path, "rb") as f:
        stdout = f.read()
    if proc.returncode != 0:
        with open(err_path, "rb") as f:
            err = f.read().decode(errors="replace")
        if failed is None:
            die("%s exited with %d:\n%s" % (" ".join(cmd), proc.returncode, err[-2000:]))
        lines = [x.strip() for x in err.splitlines() if x.strip()]
        failed("exit status %d%s" % (proc.returncode, ", " + lines[-1] if lines else ""))
        for p in (out_path, err_path, rss_path):
            if os.path.exists(p):
                os.unlink(p)
        return None
    with open(rss_path) as f:
        maxrss = int(f.read().split("=", 1)[1])
    for p in (out_path, err_path, rss_path):
        os.unlink(p)
    return end - start, maxrss, stdout, end


def exit_snapshots(directory):
    return [n for n in os.listdir(directory) if n.endswith(".exit.snap")]


def run_mode(w, mode, scratch, sample=0):
    """One measured run of workload w in mode; checks its output and its snapshot. sample:
    LEAKDIFF_SAMPLE of the "sampled" mode."""
    env = base_env(**w.env)
    cmd = list(w.cmd)
    child_env = None
    raw = []
    if mode in ("leakdiff", "sampled"):
        child_env = {"LD_PRELOAD": SHIM, "LEAKDIFF_OUTPUT": scratch}
    if mode == "sampled":
        child_env["LEAKDIFF_SAMPLE"] = str(sample)
    elif mode in FLOOR_MODES:
        # the unwinder leakdiff uses on this workload; depth: unwind_floor.c's default, 64
        child_env = {"LD_PRELOAD": FLOOR}
        if w.env.get("LEAKDIFF_UNWIND") == "fp":
            child_env["UNWIND_FLOOR_FP"] = "1"
        if mode == "interpose":
            child_env["UNWIND_FLOOR_DEPTH"] = "0"
    elif mode == "heaptrack":
        raw = ["--raw"] if w.heaptrack_failed else []
        cmd = [HEAPTRACK] + raw + ["-o", os.path.join(scratch, "heaptrack.data")] + cmd
    # heaptrack failing is a result to report, not an error: the run is made again with
    # --raw (recording only, no interpreter), as are the workload's later heaptrack runs
    failed = (lambda why: setattr(w, "heaptrack_failed", why)) if mode == "heaptrack" else None
    got = measure(cmd, env, w.stdin, scratch, child_env, failed if not raw else None)
    if got is None:
        for name in os.listdir(scratch):
            path = os.path.join(scratch, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        return run_mode(w, mode, scratch, sample)
    wall, rss, stdout, _ = got
    if mode == "bare":
        if w.expected_stdout is None or not w.same_output:
            w.expected_stdout = stdout
        if stdout != w.expected_stdout:
            die("%s: bare output differs between runs" % w.name)
    elif mode in ("leakdiff", "sampled") + FLOOR_MODES:
        if w.same_output and stdout != w.expected_stdout:
            die("%s: output in mode %s differs from the bare run" % (w.name, mode))
        snaps = os.listdir(scratch)
        if mode not in FLOOR_MODES and (len(snaps) != 1 or not snaps[0].endswith(".exit.snap")):
            die("%s: expected one exit snapshot under leakdiff, found %s" % (w.name, snaps))
    elif w.same_output and w.expected_stdout not in stdout:
        die("%s: the program's output is missing under heaptrack" % w.name)
    for name in os.listdir(scratch):
        path = os.path.join(scratch, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    w.times[mode].append(wall)
    w.rss[mode].append(rss)
    return wall


def count_calls(w, scratch):
    counts = os.path.join(scratch, "counts")
    child_env = {"LD_PRELOAD": os.path.join(OUT, "libcount_allocs.so"),
                 "COUNT_ALLOCS_OUTPUT": counts}
    _, _, stdout, _ = measure(w.cmd, base_env(**w.env), w.stdin, scratch, child_env)
    w.expected_stdout = stdout
    with open(counts) as f:
        allocs, frees = (int(x) for x in f.read().split()[:2])
    os.unlink(counts)
    w.calls = allocs


def live_block_figures(blocks_mem, blocks_snap, rounds, scratch):
    """Tracker bytes per live block; exit snapshot of blocks_snap blocks; diff of two."""
    prog = os.path.join(OUT, "live_blocks")
    res = {}

    def parse(stdout):
        kv = dict(line.split("=", 1) for line in stdout.decode().split())
        return int(kv["rss_kb"]), int(kv["exit_ns"]) / 1e9

    # Memory: VmRSS with all blocks live, bare vs leakdiff, interleaved.
    rss = {"bare": [], "leakdiff": []}
    for r in range(rounds):
        for mode in (("bare", "leakdiff") if r % 2 == 0 else ("leakdiff", "bare")):
            child_env = None
            if mode == "leakdiff":
                child_env = {"LD_PRELOAD": SHIM, "LEAKDIFF_OUTPUT": scratch,
                             "LEAKDIFF_AT_EXIT": "0"}
            _, _, stdout, _ = measure([prog, str(blocks_mem)], base_env(), None, scratch,
                                      child_env)
            rss[mode].append(parse(stdout)[0])
            for n in exit_snapshots(scratch):
                os.unlink(os.path.join(scratch, n))
    res["rss_bare_kb"] = statistics.median(rss["bare"])
    res["rss_leakdiff_kb"] = statistics.median(rss["leakdiff"])
    res["bytes_per_block"] = (res["rss_leakdiff_kb"] - res["rss_bare_kb"]) * 1024 / blocks_mem

    # Exit snapshot: time from the program's last statement to its end, minus the same for
    # a bare run (process teardown); file size per block; then diff two such snapshots.
    # "noscan": the same snapshot without the reachability scan (LEAKDIFF_REACHABILITY=0), as
    # every snapshot taken before exit is.
    exits = {"bare": [], "leakdiff": [], "noscan": []}
    snaps = []
    for r in range(max(2, rounds)):
        for mode in ("bare", "leakdiff", "noscan"):
            child_env = None
            if mode != "bare":
                child_env = {"LD_PRELOAD": SHIM, "LEAKDIFF_OUTPUT": scratch}
            if mode == "noscan":
                child_env["LEAKDIFF_REACHABILITY"] = "0"
            _, _, stdout, end = measure([prog, str(blocks_snap)], base_env(), None, scratch,
                                        child_env)
            exits[mode].append(end - parse(stdout)[1])
            if mode != "bare":
                new = [n for n in exit_snapshots(scratch) if os.path.join(scratch, n) not in snaps]
                if len(new) != 1:
                    die("live_blocks: expected one new exit snapshot, found %s" % new)
                snaps.append(os.path.join(scratch, new[0]))
    bare_exit = statistics.median(exits["bare"])
    res["exit_ms"] = 1000 * (statistics.median(exits["leakdiff"]) - bare_exit)
    res["noscan_ms"] = 1000 * (statistics.median(exits["noscan"]) - bare_exit)
    res["disk_bytes_per_block"] = statistics.median(os.path.getsize(s) for s in snaps) / blocks_snap
    diffs = []
    if os.access(LEAKDIFF, os.X_OK):
        for _ in range(3):
            start = time.monotonic()
            proc = subprocess.run([LEAKDIFF, "diff", "--format", "json", "-n", "10", snaps[0],
                                   snaps[1]], capture_output=True)
            diffs.append(time.monotonic() - start)
            if proc.returncode != 0:
                die("leakdiff diff failed: %s" % proc.stderr.decode(errors="replace"))
        res["diff_s"] = statistics.median(diffs)
    for s in snaps:
        os.unlink(s)
    return res


def fmt_calls(n):
    return "%.1fM" % (n / 1e6) if n >= 1e5 else "%dk" % (n // 1000)


def fmt_mib(kb):
    return "%dM" % round(kb / 1024)


def table(ws, mem, args, elapsed):
    lines = []
    ht = bool(HEAPTRACK) and not args.no_heaptrack
    ht_version = ""
    if ht:
        v = subprocess.run([HEAPTRACK, "--version"], capture_output=True, text=True).stdout
        ht_version = v.strip().splitlines()[0] if v.strip() else "heaptrack"
    sampled = bool(args.sample)
    floor = not args.no_floor
    lines.append("leakdiff bench: %d rounds, bare / leakdiff%s%s%s interleaved, medians; %s, "
                 "%d CPUs, glibc %s%s"
                 % (args.rounds, " / sampled (LEAKDIFF_SAMPLE=%d)" % args.sample if sampled else "",
                    " / unwind / interpose" if floor else "", " / heaptrack" if ht else "",
                    platform.machine(), os.cpu_count(), platform.libc_ver()[1],
                    ("; " + ht_version) if ht else ""))
    lines.append("load average before / after: %.2f / %.2f (anything else running on the "
                 "machine shows up as noise here)" % (args.load_before, os.getloadavg()[0]))
    lines.append("")
    row = ("%-40s %6s | %8s %8s %8s %9s %8s %9s | %8s %6s %8s %9s %8s %6s %9s %9s "
           "| %6s %8s %8s %9s")
    head = row % ("workload", "calls", "bare", "leakdiff", "unwind", "interpose", "sampled",
                  "heaptrack", "leakdiff", "target", "unwind", "interpose", "sampled", "target",
                  "heaptrack", "ht(DESIGN)", "bare", "leakdiff", "sampled", "heaptrack")
    lines.append("%-40s %6s | %-55s | %-70s | %s" % ("", "alloc", "wall time (median)",
                                                     "slowdown vs bare", "max RSS (median)"))
    lines.append(head)
    lines.append("-" * len(head))
    for w in ws:
        med = {m: statistics.median(w.times[m]) if w.times[m] else None for m in MODES}
        rss = {m: statistics.median(w.rss[m]) if w.rss[m] else None for m in MODES}

        raw = " r" if w.heaptrack_failed else ""  # heaptrack --raw

        def t(m):
            return "%.2fs" % med[m] + (raw if m == "heaptrack" else "") if med[m] is not None \
                else "-"

        def ratio(m):
            return "%.2fx" % (med[m] / med["bare"]) + (raw if m == "heaptrack" else "") \
                if med[m] is not None else "-"

        def r(m):
            return fmt_mib(rss[m]) if rss[m] is not None else "-"

        lines.append(row % (w.label, fmt_calls(w.calls) if w.calls else "?", t("bare"),
                            t("leakdiff"), t("unwind"), t("interpose"), t("sampled"),
                            t("heaptrack"), ratio("leakdiff"),
                            "<=%.1fx" % w.target if w.target else "-", ratio("unwind"),
                            ratio("interpose"), ratio("sampled"),
                            "<=%.2fx" % SAMPLED_TARGET if sampled else "-", ratio("heaptrack"),
                            "%.1fx" % w.heaptrack_ref if w.heaptrack_ref else "-", r("bare"),
                            r("leakdiff"), r("sampled"), r("heaptrack")))
    # Noise on a shared machine only ever adds time, and a slow spell can fall on one mode's
    # runs more than another's (a run here once put the bare python3 at 1.74-2.63 s across
    # rounds, and the median ratio at 1.49x where the fastest runs gave 1.73x): the ratios
    # of the fastest runs are printed below the medians' as a check on them.
    lines.append("")
    lines.append("slowdown vs bare from each mode's fastest run of the %d (noise only adds "
                 "time: a check on the medians above)" % args.rounds)
    frow = "%-40s %6s | %8s %8s %9s %8s %9s"
    lines.append(frow % ("workload", "", "leakdiff", "unwind", "interpose", "sampled",
                         "heaptrack"))
    for w in ws:
        best = {m: min(w.times[m]) if w.times[m] else None for m in MODES}

        def fratio(m):
            return "%.2fx" % (best[m] / best["bare"]) + \
                (" r" if m == "heaptrack" and w.heaptrack_failed else "") \
                if best[m] is not None and best["bare"] else "-"

        lines.append(frow % (w.label, "", fratio("leakdiff"), fratio("unwind"),
                             fratio("interpose"), fratio("sampled"), fratio("heaptrack")))
    for w in ws:
        if w.heaptrack_failed:
            lines.append("r: heaptrack failed on %s (%s), which was then run with heaptrack "
                         "--raw (recording only, without its interpreter)"
                         % (w.name, w.heaptrack_failed))
    lines.append("")
    if mem:
        lines.append("tracker memory per live block: %.1f B  (target <= 32 B; %s blocks live: "
                     "VmRSS bare %s, under leakdiff %s)"
                     % (mem["bytes_per_block"], "{:,}".format(args.live_blocks),
                        fmt_mib(mem["rss_bare_kb"]), fmt_mib(mem["rss_leakdiff_kb"])))
        lines.append("exit snapshot of %s live blocks: %.0f ms with the reachability scan, %.0f ms "
                     "without (as every snapshot before exit), %.1f B per block on disk  "
                     "(targets <= 150 ms, <= 10 B)"
                     % ("{:,}".format(args.snapshot_blocks), mem["exit_ms"], mem["noscan_ms"],
                        mem["disk_bytes_per_block"]))
        if "diff_s" in mem:
            lines.append("leakdiff diff of two %s-block snapshots: %.2f s  (target <= 2 s)"
                         % ("{:,}".format(args.snapshot_blocks), mem["diff_s"]))
    lines.append("")
    lines.append("(slowdown = median wall time / bare median; target: DESIGN.md section 7 for "
                 "leakdiff and for its sampled mode; ht(DESIGN): heaptrack's ratio measured when "
                 "DESIGN.md was written; bench took %.0f s)" % elapsed)
    if floor:
        lines.append("(unwind, interpose: the floor under leakdiff's full mode, "
                     "bench/unwind_floor.c: a preload that only interposes the allocator and "
                     "walks each allocation's stack, up to 64 frames, as the default mode does "
                     "(preload/cfi.c's walk, libunwind into a buffer for what it leaves; on the "
                     "LEAKDIFF_UNWIND=fp row the frame-pointer walk into a buffer), no table, no "
                     "bookkeeping; interpose: the same without the walk)")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply workload sizes (e.g. 0.1 for a quick check)")
    ap.add_argument("--only", help="comma-separated workloads: python3,sqlite3,malloc,malloc1,malloc-fp,"
                    "live5m,memory")
    ap.add_argument("--no-heaptrack", action="store_true", help="skip the heaptrack runs")
    ap.add_argument("--report", default=REPORT,
                    help="where the table is written (default build/bench.txt)")
    ap.add_argument("--sample", type=int, default=524288,
                    help="LEAKDIFF_SAMPLE of the sampled-mode runs (default 524288; 0 = none)")
    ap.add_argument("--no-floor", action="store_true",
                    help="skip the unwind and interpose floor runs (bench/unwind_floor.c)")
    ap.add_argument("--live-blocks", type=int, default=2000000,
                    help="live blocks for the memory figure (default 2,000,000)")
    ap.add_argument("--snapshot-blocks", type=int, default=1000000,
                    help="live blocks for the snapshot and diff figures (default 1,000,000)")
    args = ap.parse_args()

    if not os.access(SHIM, os.R_OK):
        die("%s is missing: run `make` first" % SHIM)
    for prog in (PYTHON, SQLITE):
        if not os.access(prog, os.X_OK):
            die("%s is missing (`make bench-deps` installs it)" % prog)
    if not HEAPTRACK and not args.no_heaptrack:
        die("heaptrack is missing (`make bench-deps` installs it), or pass --no-heaptrack")
    build_programs()
    only = set(args.only.split(",")) if args.only else None
    ws = [w for w in workloads(args.scale) if not only or w.name in only]
    modes = [m for m in MODES if (m != "heaptrack" or not args.no_heaptrack)
             and (m != "sampled" or args.sample) and (m not in FLOOR_MODES or not args.no_floor)]

    started = time.monotonic()
    args.load_before = os.getloadavg()[0]
    scratch = tempfile.mkdtemp(prefix="run-", dir=OUT)
    try:
        for w in ws:
            count_calls(w, scratch)
            print("%-8s %s allocator calls (counted); warm-up" % (w.name, fmt_calls(w.calls)),
                  flush=True)
            run_mode(w, "bare", scratch)
            w.times["bare"].clear()
            w.rss["bare"].clear()
        for r in range(args.rounds):
            order = modes[r % len(modes):] + modes[:r % len(modes)]
            for w in ws:
                walls = []
                for m in order:
                    wall = run_mode(w, m, scratch, args.sample)
                    m = m + " --raw" if m == "heaptrack" and w.heaptrack_failed else m
                    walls.append("%s %.2fs" % (m, wall))
                print("round %d/%d  %-8s %s" % (r + 1, args.rounds, w.name, ", ".join(walls)),
                      flush=True)
        mem = None
        if not only or "memory" in only:
            print("live blocks: memory per block, exit snapshot, diff", flush=True)
            mem = live_block_figures(args.live_blocks, args.snapshot_blocks,
                                     max(3, args.rounds // 2), scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = table(ws, mem, args, time.monotonic() - started)
    print()
    print(text, end="")
    with open(args.report, "w") as f:
        f.write(text)
    print("(written to %s)" % os.path.relpath(args.report, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
