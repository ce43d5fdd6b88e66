#!/usr/bin/python3
"""End-to-end tests: the real shim preloaded into real programs, figures asserted exactly.

Run with Debian's interpreter from the top of the tree, after `make all samples`:

    /usr/bin/python3 tests/e2e/run.py [-k SUBSTRING] [-j JOBS] [-v]

What is checked:
  * every sample (samples/*.c, samples/*.cc) under `leakdiff run`: its exit status passes
    through, exactly one exit snapshot is written, and `leakdiff top --format json -n 0`
    reports the totals and every site that the EXPECT lines of the sample's opening comment
    state - bytes and blocks, exactly; valgrind (--run-libc-freeres=no --run-cxx-freeres=no)
    is the oracle: its "in use at exit" must equal the snapshot's totals;
  * `leakdiff diff` of two runs of growing_leak with different request counts (different
    processes, different ASLR) shows exactly the growth the sample's comment predicts;
  * python3 (PYTHONMALLOC=malloc) and sqlite3, programs nobody here wrote: they behave as
    without the shim, and their snapshot totals equal valgrind's;
  * bad input: missing, foreign, truncated, corrupted and too-new snapshots (exit 3, one
    line naming the file), usage errors (exit 2), a missing command (127), an unwritable
    output directory and bad LEAKDIFF_* values (one warning, program unaffected).

Tests run in parallel (independent processes, own temporary directories). The last line of
output is exactly "N passed, N failed" (", N skipped" when some were skipped, each with its
reason printed); the exit status is 1 when anything failed. Temporary files of failed tests
are kept under build/e2e/ for inspection.

Only the standard library of Debian's python3 is used.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
LEAKDIFF = os.path.join(BUILD, "leakdiff")
SHIM = os.path.join(BUILD, "libleakdiff.so")
SAMPLE_SRC = os.path.join(ROOT, "samples")
SAMPLE_BIN = os.path.join(BUILD, "samples")
WORK = os.path.join(BUILD, "e2e")
PYTHON = "/usr/bin/python3"  # Debian's, not whatever python3 is first on PATH
SQLITE = "/usr/bin/sqlite3"
VALGRIND = shutil.which("valgrind") or "/usr/bin/valgrind"
TIMEOUT = 300  # seconds for any one command; a hang fails the test instead of the suite

SNAP_NAME = re.compile(r"^(?P<exe>.+)\.(?P<pid>\d+)\.(?P<seq>\d{4})\.(?P<label>[^./]+)\.snap$")
VG_IN_USE = re.compile(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks")

# --------------------------------------------------------------------------------------------
# The EXPECT lines of a sample's opening comment.


class Expect:
    """What a sample's opening comment promises.

    Grammar, one per line inside the first /* ... */ comment:
        EXPECT total bytes=N blocks=N                     live at exit (snapshot, valgrind)
        EXPECT site function=NAME bytes=N blocks=N        one group of `top --by function`
        EXPECT other bytes=N blocks=N                     live memory in no listed site
        EXPECT per-request function=NAME bytes=N blocks=N growth per request (growing_leak)
        EXPECT status=N                                   exit status (default 0)
    NAME runs up to " bytes=" and may contain spaces (C++ signatures).
    """

    LINE = re.compile(r"^\s*\*?\s*EXPECT\s+(?P<kind>[\w-]+)(?P<rest>.*)$")
    COUNTS = re.compile(r"^\s*bytes=(\d+)\s+blocks=(\d+)\s*$")
    SITE = re.compile(r"^\s*function=(.+?)\s+bytes=(\d+)\s+blocks=(\d+)\s*$")

    def __init__(self, path):
        self.path = path
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.total = None
        self.other = None
        self.status = 0
        self.sites = {}
        self.per_request = {}
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if not text.startswith("/*") or "*/" not in text:
            raise ValueError("%s: does not open with a comment" % path)
        comment = text[: text.index("*/")]
        for n, line in enumerate(comment.splitlines(), 1):
            m = self.LINE.match(line)
            if m:
                self._parse(m.group("kind"), m.group("rest"), "%s:%d" % (path, n))
        if self.total is None:
            raise ValueError("%s: no 'EXPECT total' line in its opening comment" % path)

    def _parse(self, kind, rest, where):
        if kind in ("total", "other"):
            m = self.COUNTS.match(rest)
            if not m:
                raise ValueError("%s: expected 'EXPECT %s bytes=N blocks=N'" % (where, kind))
            setattr(self, kind, (int(m.group(1)), int(m.group(2))))
        elif kind in ("site", "per-request"):
            m = self.SITE.match(rest)
            if not m:
                raise ValueError("%s: expected 'EXPECT %s function=NAME bytes=N blocks=N'"
                                 % (where, kind))
            table = self.sites if kind == "site" else self.per_request
            if m.group(1) in table:
                raise ValueError("%s: function %s listed twice" % (where, m.group(1)))
            table[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        elif kind.startswith("status"):
            m = re.match(r"^status=(\d+)$", (kind + rest).strip())
            if not m:
                raise ValueError("%s: expected 'EXPECT status=N'" % where)
            self.status = int(m.group(1))
        else:
            raise ValueError("%s: unknown EXPECT kind %r" % (where, kind))


def sample_sources():
    """samples/*.c and samples/*.cc, sorted by name."""
    return sorted(os.path.join(SAMPLE_SRC, f) for f in os.listdir(SAMPLE_SRC)
                  if f.endswith((".c", ".cc")))


# --------------------------------------------------------------------------------------------
# Running things.


def clean_env(**extra):
    """The caller's environment without anything that would change what is measured."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEAKDIFF_", "PYTHON", "VALGRIND_", "MALLOC_", "GLIBC_TUNABLES"))
           and k not in ("LD_PRELOAD", "LD_LIBRARY_PATH")}
    env["LC_ALL"] = "C"
    env.update(extra)
    return env


def run(cmd, env=None, input=None, cwd=None, timeout=TIMEOUT):
    """Runs cmd; returns CompletedProcess with text stdout/stderr (undecodable bytes kept)."""
    return subprocess.run(cmd, env=env if env is not None else clean_env(), input=input,
                          cwd=cwd, capture_output=True, text=True, errors="backslashreplace",
                          timeout=timeout)


def describe(proc):
    """A failing command, its status and its output, for assertion messages."""
    def tail(s):
        s = s.strip()
        return s if len(s) < 3000 else "...\n" + s[-3000:]
    return "\n  $ %s\n  exit status %s\n  stdout: %s\n  stderr: %s" % (
        " ".join(proc.args), proc.returncode, tail(proc.stdout), tail(proc.stderr))


def lkd_checksum(data):
    """lkd_fmt_checksum() of include/leakdiff/format.h, reimplemented."""
    mask = (1 << 64) - 1
    n = len(data)
    h = (0x9E3779B97F4A7C15 ^ n) & mask
    i = 0
    while n - i >= 8:
        h = ((h ^ int.from_bytes(data[i:i + 8], "little")) * 0xBF58476D1CE4E5B9) & mask
        h ^= h >> 29
        i += 8
    tail = int.from_bytes(data[i:], "little")
    h = ((h ^ tail) * 0x94D049BB133111EB) & mask
    return h ^ (h >> 31)


HEADER = struct.Struct("<8sHHIIIQQQ")  # lkd_fmt_header_t, 48 bytes


class Case(unittest.TestCase):
    """Helpers shared by every end-to-end test."""

    maxDiff = None

    def setUp(self):
        os.makedirs(WORK, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=self.id().split(".")[-1] + "-", dir=WORK)

    # No tearDown: run_one() removes self.tmp when the test passed, and keeps the evidence
    # of a failure (the runner prints where it is).

    def mkdir(self, name):
        path = os.path.join(self.tmp, name)
        os.makedirs(path, exist_ok=True)
        return path

    def need(self, path, what):
        if not os.access(path, os.X_OK):
            self.fail("%s is missing: %s (run `make all samples`)" % (what, path))

    def leakdiff(self, *args, expect=0, env=None, input=None):
        """Runs build/leakdiff ARGS and asserts its exit status."""
        self.need(LEAKDIFF, "the analyzer")
        proc = run([LEAKDIFF] + list(args), env=env, input=input)
        if expect is not None:
            self.assertEqual(proc.returncode, expect,
                             "unexpected exit status:" + describe(proc))
        return proc

    def json_of(self, *args):
        """Runs `leakdiff ARGS --format json` and parses its output."""
        proc = self.leakdiff(*args)
        try:
            doc = json.loads(proc.stdout)
        except ValueError as e:
            self.fail("not JSON (%s):%s" % (e, describe(proc)))
        self.assertEqual(doc.get("version"), 1, "JSON version:" + describe(proc))
        return doc

    def top(self, snap, by="function"):
        return self.json_of("top", "--format", "json", "-n", "0", "--by", by, snap)

    def run_traced(self, cmd, out=None, env=None, input=None, status=0):
        """`leakdiff run -o OUT -- CMD`; asserts the status and exactly one exit snapshot.

        Returns (snapshot path, the run's CompletedProcess)."""
        out = out or self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", *cmd, expect=status, env=env, input=input)
        return self.only_snapshot(out, proc), proc

    def only_snapshot(self, out, proc=None, exe=None):
        """The one snapshot in out, which must be an exit snapshot with a proper name."""
        names = sorted(os.listdir(out))
        why = describe(proc) if proc is not None else ""
        self.assertEqual(len(names), 1, "expected exactly one file in %s, found %s%s"
                         % (out, names, why))
        m = SNAP_NAME.match(names[0])
        self.assertIsNotNone(m, "snapshot name %r is not <exe>.<pid>.<seq>.<label>.snap"
                             % names[0])
        self.assertEqual(m.group("label"), "exit", "label of %s" % names[0])
        if exe is not None:
            self.assertEqual(m.group("exe"), exe, "exe part of %s" % names[0])
        path = os.path.join(out, names[0])
        mode = os.stat(path).st_mode & 0o777
        self.assertEqual(mode, 0o600, "%s has mode %o, not 0600" % (path, mode))
        return path

    def valgrind_in_use(self, cmd, env=None, input=None):
        """valgrind's "in use at exit" (bytes, blocks) for cmd, run exactly as the shim saw it
        except for the tool: libc and libstdc++ are not told to free their memory at exit."""
        if not os.access(VALGRIND, os.X_OK):
            self.skipTest("valgrind is not installed (the oracle); `make deps` installs it")
        log = os.path.join(self.tmp, "valgrind.%d.log" % time.monotonic_ns())
        proc = run([VALGRIND, "--tool=memcheck", "--run-libc-freeres=no",
                    "--run-cxx-freeres=no", "--leak-check=no", "--log-file=" + log] + list(cmd),
                   env=env, input=input)
        with open(log, errors="replace") as f:
            text = f.read()
        m = VG_IN_USE.search(text)
        self.assertIsNotNone(m, "no 'in use at exit' in valgrind's log %s:%s" % (log, describe(proc)))
        return (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))), proc

    def assert_totals_add_up(self, doc, what):
        """The groups of a report account for its totals exactly."""
        t = doc["totals"]
        self.assertEqual((sum(g["bytes"] for g in doc["groups"]),
                          sum(g["blocks"] for g in doc["groups"])),
                         (t["bytes"], t["blocks"]), "groups do not add up to totals in " + what)

    def groups_by_key(self, doc):
        keys = [g["key"] for g in doc["groups"]]
        self.assertEqual(len(keys), len(set(keys)), "duplicate group keys: %s" % keys)
        return {g["key"]: g for g in doc["groups"]}


# --------------------------------------------------------------------------------------------
# The samples.


class Samples(Case):
    """One test per sample, generated below from the samples directory."""

    def check_sample(self, src):
        exp = Expect(src)
        binary = os.path.join(SAMPLE_BIN, exp.name)
        self.need(binary, "sample binary")
        snap, proc = self.run_traced([binary], status=exp.status)
        self.assertTrue(os.path.basename(snap) in proc.stdout + proc.stderr,
                        "`leakdiff run` does not name its snapshot:" + describe(proc))
        doc = self.top(snap)
        self.assertEqual(doc.get("command"), "top")
        got_total = (doc["totals"]["bytes"], doc["totals"]["blocks"])
        vg_total, _ = self.valgrind_in_use([binary])
        problems = []
        if got_total != exp.total:
            problems.append("total: comment says bytes=%d blocks=%d, snapshot has bytes=%d "
                            "blocks=%d" % (exp.total + got_total))
        if vg_total != got_total:
            problems.append("total: valgrind has bytes=%d blocks=%d in use at exit, snapshot "
                            "bytes=%d blocks=%d" % (vg_total + got_total))
        groups = self.groups_by_key(doc)
        for fn, want in sorted(exp.sites.items()):
            g = groups.get(fn)
            got = (g["bytes"], g["blocks"]) if g else None
            if got != want:
                problems.append("site %s: comment says bytes=%d blocks=%d, snapshot has %s"
                                % (fn, want[0], want[1],
                                   "bytes=%d blocks=%d" % got if got else "no such group"))
        if exp.other is not None:
            other = (sum(g["bytes"] for k, g in groups.items() if k not in exp.sites),
                     sum(g["blocks"] for k, g in groups.items() if k not in exp.sites))
            if other != exp.other:
                problems.append("other (groups not listed): comment says bytes=%d blocks=%d, "
                                "snapshot has bytes=%d blocks=%d" % (exp.other + other))
        if problems:
            shown = "\n    ".join("%s  %s B in %s blocks" % (g["key"], g["bytes"], g["blocks"])
                                  for g in doc["groups"][:30])
            self.fail("%s (snapshot %s):\n  - %s\n  groups in the snapshot:\n    %s"
                      % (exp.name, snap, "\n  - ".join(problems), shown or "(none)"))
        self.assert_totals_add_up(doc, "top of " + snap)


def _sample_test(src):
    def test(self):
        self.check_sample(src)
    test.__doc__ = "sample %s: exact totals and sites, equal to valgrind" % os.path.basename(src)
    return test


for _src in sample_sources():
    _name = re.sub(r"\W", "_", os.path.splitext(os.path.basename(_src))[0])
    setattr(Samples, "test_" + _name, _sample_test(_src))


class Comments(Case):
    """The EXPECT lines themselves: parseable, and their own arithmetic adds up."""

    def test_expect_lines_add_up(self):
        srcs = sample_sources()
        self.assertTrue(srcs, "no samples in " + SAMPLE_SRC)
        for src in srcs:
            exp = Expect(src)  # raises on a malformed line
            sites = (sum(b for b, _ in exp.sites.values()), sum(n for _, n in exp.sites.values()))
            if exp.other is not None:
                self.assertEqual((sites[0] + exp.other[0], sites[1] + exp.other[1]), exp.total,
                                 "%s: sites + other != total in its comment" % src)
            else:
                self.assertLessEqual(sites[0], exp.total[0], src)
                self.assertLessEqual(sites[1], exp.total[1], src)


# --------------------------------------------------------------------------------------------
# Snapshots of different runs compared.


class Diff(Case):
    def test_growing_leak_diff_across_runs(self):
        """Two processes (different ASLR), 100 and 300 requests: exact growth per site."""
        exp = Expect(os.path.join(SAMPLE_SRC, "growing_leak.c"))
        binary = os.path.join(SAMPLE_BIN, "growing_leak")
        self.need(binary, "sample binary")
        r1, r2 = 100, 300
        old, _ = self.run_traced([binary, str(r1)], out=self.mkdir("old"))
        new, _ = self.run_traced([binary, str(r2)], out=self.mkdir("new"))
        doc = self.json_of("diff", "--format", "json", "-n", "0", old, new)
        self.assertEqual(doc.get("command"), "diff")
        groups = self.groups_by_key(doc)
        n = r2 - r1
        for fn, (bytes_per, blocks_per) in sorted(exp.per_request.items()):
            self.assertIn(fn, groups, "diff has no group %s: %s" % (fn, sorted(groups)))
            g = groups[fn]
            self.assertEqual((g["bytes_diff"], g["blocks_diff"]), (bytes_per * n, blocks_per * n),
                             "growth of %s from %d to %d requests" % (fn, r1, r2))
        cache = groups["build_cache"]
        self.assertEqual((cache["bytes"], cache["blocks"]), exp.sites["build_cache"],
                         "the one-time cache must be listed with its size")
        grow = (sum(b for b, _ in exp.per_request.values()),
                sum(k for _, k in exp.per_request.values()))
        t = doc["totals"]
        self.assertEqual((t["bytes_diff"], t["blocks_diff"]), (grow[0] * n, grow[1] * n),
                         "total growth")
        self.assertEqual(doc["groups"][0]["key"], "remember_session",
                         "a diff is sorted by growth, largest first")
        text = self.leakdiff("diff", old, new).stdout
        self.assertIn("remember_session", text, "text diff")

    def test_diff_with_itself_is_zero(self):
        binary = os.path.join(SAMPLE_BIN, "simple_leak")
        self.need(binary, "sample binary")
        snap, _ = self.run_traced([binary])
        doc = self.json_of("diff", "--format", "json", "-n", "0", snap, snap)
        self.assertEqual((doc["totals"]["bytes_diff"], doc["totals"]["blocks_diff"]), (0, 0))
        for g in doc["groups"]:
            self.assertEqual((g["bytes_diff"], g["blocks_diff"]), (0, 0), g["key"])


class Reports(Case):
    """The other report shapes of one snapshot are consistent with each other."""

    def test_group_keys_and_info(self):
        binary = os.path.join(SAMPLE_BIN, "simple_leak")
        self.need(binary, "sample binary")
        exp = Expect(os.path.join(SAMPLE_SRC, "simple_leak.c"))
        snap, _ = self.run_traced([binary])
        for by in ("function", "line", "file", "module", "traceback"):
            doc = self.top(snap, by)
            self.assertEqual(doc.get("by"), by)
            self.assertEqual((doc["totals"]["bytes"], doc["totals"]["blocks"]), exp.total, by)
            self.assert_totals_add_up(doc, "top --by " + by)
        lines = self.groups_by_key(self.top(snap, "line"))
        self.assertTrue(any(k.startswith("samples/simple_leak.c:") or "simple_leak.c:" in k
                            for k in lines), "--by line keys: %s" % sorted(lines))
        one = self.json_of("top", "--format", "json", "-n", "1", snap)
        self.assertEqual(len(one["groups"]), 1, "-n 1")
        self.assertEqual(one["groups"][0]["key"], "leak_table", "largest group first")
        text = self.leakdiff("top", snap).stdout
        for fn in exp.sites:
            self.assertIn(fn, text, "text report of top")
        info = self.json_of("info", "--format", "json", snap)
        self.assertIn("leak_table", self.leakdiff("top", "-n", "0", snap).stdout)
        if "totals" in info:
            self.assertEqual((info["totals"]["bytes"], info["totals"]["blocks"]), exp.total,
                             "info totals")
        self.assertTrue(self.leakdiff("info", snap).stdout.strip(), "info prints something")


# --------------------------------------------------------------------------------------------
# Programs nobody here wrote.

PY_CODE = r"""
import json
rows = [{"id": i, "name": "row-%d" % i, "tags": ["t%d" % (i % 7), "x"], "score": i * 0.5}
        for i in range(400)]
text = json.dumps(rows, sort_keys=True)
back = json.loads(text)
assert back == rows
index = {r["name"]: r for r in back}
print(len(text), len(index), sum(r["score"] for r in index.values()))
"""

SQL_SCRIPT = """
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, qty INTEGER);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
INSERT INTO items(name, price, qty)
  SELECT 'item-' || printf('%05d', i), (i * 37 % 1000) / 10.0, i % 17 FROM n;
CREATE INDEX items_by_name ON items(name);
SELECT count(*), sum(qty), round(avg(price), 3) FROM items;
SELECT id, name, price FROM items WHERE name BETWEEN 'item-01000' AND 'item-01004' ORDER BY name;
SELECT qty, count(*) FROM items GROUP BY qty ORDER BY qty LIMIT 3;
DELETE FROM items WHERE qty = 3;
SELECT count(*) FROM items;
"""


class Foreign(Case):
    def traced_vs_valgrind(self, cmd, env, input=None):
        """Runs cmd bare, under leakdiff and under valgrind; returns the top report."""
        bare = run(cmd, env=env, input=input)
        self.assertEqual(bare.returncode, 0, "bare run failed:" + describe(bare))
        self.assertTrue(bare.stdout.strip(), "the program printed nothing")
        # Preloaded directly: exactly the same output, nothing on stderr.
        self.need(SHIM, "the shim")
        direct_env = dict(env, LD_PRELOAD=SHIM, LEAKDIFF_OUTPUT=self.mkdir("direct"))
        direct = run(cmd, env=direct_env, input=input)
        self.assertEqual((direct.returncode, direct.stdout, direct.stderr),
                         (0, bare.stdout, bare.stderr),
                         "output with the shim preloaded differs from the bare run:"
                         + describe(direct))
        # Through `leakdiff run`, whose own report follows the program's output.
        snap, traced = self.run_traced(cmd, env=env, input=input)
        self.assertIn(bare.stdout, traced.stdout,
                      "the program's output changed under `leakdiff run`:" + describe(traced))
        doc = self.top(snap)
        got = (doc["totals"]["bytes"], doc["totals"]["blocks"])
        want, vg = self.valgrind_in_use(cmd, env=env, input=input)
        self.assertEqual(vg.returncode, 0, "under valgrind:" + describe(vg))
        self.assertEqual(got, want, "snapshot totals (bytes, blocks) vs valgrind's in use at "
                         "exit, for %s (snapshot %s)" % (" ".join(cmd), snap))
        self.assert_totals_add_up(doc, snap)
        return doc

    def test_python3(self):
        """CPython with PYTHONMALLOC=malloc (pymalloc hides small objects from malloc).

        What is live at exit is the same run to run, whatever the hash seed (measured); it
        depends only on the environment, which is why valgrind gets the very same one. The
        PEAK is not asserted: it moves by a few hundred bytes with ASLR even with
        PYTHONHASHSEED=0 (constant under `setarch -R`), because dicts keyed by id() - json's
        cycle-detection `markers` dict inserts and deletes them - resize at moments that
        depend on addresses. PYTHONHASHSEED=0 is set anyway, so string hashing is fixed."""
        self.need(PYTHON, "Debian's python3")
        env = clean_env(PYTHONMALLOC="malloc", PYTHONHASHSEED="0")
        doc = self.traced_vs_valgrind([PYTHON, "-c", PY_CODE], env)
        self.assertGreater(doc["totals"]["blocks"], 100, "CPython keeps objects until exit")

    def test_sqlite3(self):
        if not os.access(SQLITE, os.X_OK):
            self.skipTest("sqlite3 is not installed; `make deps` installs it")
        env = clean_env(HOME=self.tmp)  # no ~/.sqliterc
        self.traced_vs_valgrind([SQLITE, "-batch", ":memory:"], env, input=SQL_SCRIPT)


# --------------------------------------------------------------------------------------------
# Exit statuses, environment, bad input.


class Process(Case):
    def test_exit_status_passes_through(self):
        self.need("/bin/sh", "sh")
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", "/bin/sh", "-c", "exit 7", expect=None)
        self.assertEqual(proc.returncode, 7, describe(proc))

    def test_killed_by_signal(self):
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", "/bin/sh", "-c", "kill -KILL $$",
                             expect=None)
        # Like a shell (128 + signal), or by dying of the same signal.
        self.assertIn(proc.returncode, (128 + 9, -9), describe(proc))

    def test_arguments_reach_the_program(self):
        binary = os.path.join(SAMPLE_BIN, "growing_leak")
        self.need(binary, "sample binary")
        snap, proc = self.run_traced([binary, "7"])
        self.assertIn("handled 7 requests", proc.stdout, describe(proc))
        doc = self.top(snap)
        self.assertEqual(doc["totals"]["blocks"], 1 + 2 * 7)

    def test_command_not_found(self):
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", "/nonexistent/program", expect=127)
        self.assertIn("/nonexistent/program", proc.stderr, "message names the command")

    def test_exec_child_is_tracked(self):
        """sh runs simple_leak as a child: each image gets its own exit snapshot, and the
        child's figures are exact."""
        binary = os.path.join(SAMPLE_BIN, "simple_leak")
        self.need(binary, "sample binary")
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", "/bin/sh", "-c", binary + "; exit 0")
        snaps = [n for n in os.listdir(out) if n.startswith("simple_leak.")]
        self.assertEqual(len(snaps), 1, "%s%s" % (os.listdir(out), describe(proc)))
        doc = self.top(os.path.join(out, snaps[0]))
        self.assertEqual((doc["totals"]["bytes"], doc["totals"]["blocks"]),
                         Expect(os.path.join(SAMPLE_SRC, "simple_leak.c")).total)

    def test_threads_exact_every_time(self):
        """thread_leaks ten times: the figures must not depend on how the threads interleave."""
        exp = Expect(os.path.join(SAMPLE_SRC, "thread_leaks.c"))
        binary = os.path.join(SAMPLE_BIN, "thread_leaks")
        self.need(binary, "sample binary")
        self.need(SHIM, "the shim")
        for i in range(10):
            out = self.mkdir("run%d" % i)
            proc = run([binary], env=clean_env(LD_PRELOAD=SHIM, LEAKDIFF_OUTPUT=out))
            self.assertEqual(proc.returncode, 0, describe(proc))
            doc = self.top(self.only_snapshot(out, proc))
            got = {g["key"]: (g["bytes"], g["blocks"]) for g in doc["groups"]}
            self.assertEqual((doc["totals"]["bytes"], doc["totals"]["blocks"]), exp.total,
                             "run %d" % i)
            for fn, want in exp.sites.items():
                self.assertEqual(got.get(fn), want, "run %d, site %s" % (i, fn))

    def test_silent_by_default(self):
        """Preloaded directly, the shim writes nothing to the program's stderr."""
        self.need(SHIM, "the shim")
        binary = os.path.join(SAMPLE_BIN, "growing_leak")
        out = self.mkdir("out")
        proc = run([binary, "10"], env=clean_env(LD_PRELOAD=SHIM, LEAKDIFF_OUTPUT=out))
        self.assertEqual((proc.returncode, proc.stderr), (0, ""), describe(proc))
        self.only_snapshot(out, proc, exe="growing_leak")

    def shim_warns_once(self, name, env_extra, out=None):
        """Runs growing_leak with the shim and env_extra: it must run normally and the shim
        must print exactly one line, naming name."""
        self.need(SHIM, "the shim")
        binary = os.path.join(SAMPLE_BIN, "growing_leak")
        self.need(binary, "sample binary")
        env = clean_env(LD_PRELOAD=SHIM, LEAKDIFF_OUTPUT=out or self.mkdir("out"))
        env.update(env_extra)
        proc = run([binary, "5"], env=env)
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertIn("handled 5 requests", proc.stdout, describe(proc))
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 1, "expected one warning line:" + describe(proc))
        self.assertIn(name, lines[0], "the warning names %s" % name)
        return proc

    def test_bad_depth_warns_once(self):
        out = self.mkdir("out")
        self.shim_warns_once("LEAKDIFF_DEPTH", {"LEAKDIFF_DEPTH": "abc"}, out=out)
        self.only_snapshot(out)  # the default depth was used; tracing went on

    def test_unwritable_output_dir(self):
        """An output directory that cannot be created or written to: the program runs on,
        unaffected, and the shim says so once."""
        blocker = os.path.join(self.tmp, "a-file")
        with open(blocker, "w") as f:
            f.write("not a directory\n")
        target = os.path.join(blocker, "snaps")  # mkdir fails with ENOTDIR, even for root
        self.shim_warns_once(target, {}, out=target)
        # An existing directory nobody may write to (for root too: procfs).
        self.shim_warns_once("/proc/self", {}, out="/proc/self")
        # Through `leakdiff run`: the program's status still passes through.
        binary = os.path.join(SAMPLE_BIN, "growing_leak")
        proc = self.leakdiff("run", "-o", target, "--", binary, "3", expect=None)
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertIn("handled 3 requests", proc.stdout, describe(proc))


class BadInput(Case):
    def good_snapshot(self):
        binary = os.path.join(SAMPLE_BIN, "simple_leak")
        self.need(binary, "sample binary")
        snap, _ = self.run_traced([binary])
        with open(snap, "rb") as f:
            return f.read()

    def rejects(self, path, *why, command="top"):
        """`leakdiff COMMAND path` exits 3 with one line on stderr naming the file."""
        proc = self.leakdiff(command, path, expect=3)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, "one line of error:" + describe(proc))
        self.assertIn(path, lines[0], "the message names the file:" + describe(proc))
        for w in why:
            self.assertIn(w, lines[0].lower(), describe(proc))

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_missing_file(self):
        self.rejects(os.path.join(self.tmp, "no-such.snap"))
        self.rejects(os.path.join(self.tmp, "no-such.snap"), command="info")

    def test_not_a_snapshot(self):
        self.rejects(self.write("text.snap", b"hello, I am not a snapshot\n" * 10))
        self.rejects(self.write("empty.snap", b""))
        self.rejects(os.path.join(ROOT, "Makefile"), command="info")
        self.rejects(self.tmp)  # a directory

    def test_truncated(self):
        data = self.good_snapshot()
        for keep in (len(data) - 1, len(data) // 2, 100, 48, 47, 9):
            self.rejects(self.write("cut-%d.snap" % keep, data[:keep]))

    def test_corrupted_byte(self):
        data = self.good_snapshot()
        for pos in sorted({0, 9, 20, 30, 45, 48, 60, 120, len(data) // 2, len(data) - 1}):
            bad = bytearray(data)
            bad[pos] ^= 0x40
            self.rejects(self.write("flip-%d.snap" % pos, bytes(bad)))

    def test_version(self):
        """A newer major version is refused by name; a newer minor version is read."""
        data = self.good_snapshot()
        fields = list(HEADER.unpack_from(data))
        self.assertEqual(fields[8], lkd_checksum(data[:40]),
                         "header checksum differs from format.h's lkd_fmt_checksum")

        def with_version(major, minor):
            f = list(fields)
            f[1], f[2] = major, minor
            head = HEADER.pack(*f)
            head = head[:40] + struct.pack("<Q", lkd_checksum(head[:40]))
            return head + data[HEADER.size:]

        self.rejects(self.write("major.snap", with_version(fields[1] + 1, 0)), "version")
        minor = self.write("minor.snap", with_version(fields[1], fields[2] + 7))
        doc = self.top(minor)
        exp = Expect(os.path.join(SAMPLE_SRC, "simple_leak.c"))
        self.assertEqual((doc["totals"]["bytes"], doc["totals"]["blocks"]), exp.total)

    def test_usage_errors(self):
        path = self.write("good.snap", self.good_snapshot())
        for args in (["top", "--no-such-flag", path], ["--no-such-flag"], ["frobnicate"],
                     ["run", "--no-such-flag", "--", "/bin/true"], ["run"],
                     ["top"], ["diff", path], ["top", "--format", "yaml", path],
                     ["top", "--by", "colour", path], ["top", "-n", "many", path], []):
            proc = self.leakdiff(*args, expect=None)
            self.assertEqual(proc.returncode, 2, "usage error:" + describe(proc))
            self.assertTrue(proc.stderr.strip(), "a usage message on stderr:" + describe(proc))


# --------------------------------------------------------------------------------------------
# The runner: parallel, one summary line.

# Slow tests first, so that they overlap with the many quick ones.
SLOW_FIRST = ("test_python3", "test_sqlite3", "test_thread_leaks", "test_cpp_leak")


def collect(pattern):
    loader = unittest.TestLoader()
    tests = []
    for cls in (Foreign, Samples, Comments, Diff, Reports, Process, BadInput):
        for name in loader.getTestCaseNames(cls):
            test = cls(name)
            if not pattern or pattern in test.id():
                tests.append(test)
    tests.sort(key=lambda t: (t.id().split(".")[-1] not in SLOW_FIRST, t.id()))
    return tests


def run_one(test):
    result = unittest.TestResult()
    start = time.monotonic()
    test.run(result)
    tmp = getattr(test, "tmp", None)
    if tmp and not (result.failures or result.errors):
        shutil.rmtree(tmp, ignore_errors=True)
    return test, result, time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-k", dest="pattern", help="only tests whose id contains this")
    ap.add_argument("-j", dest="jobs", type=int, default=max(2, os.cpu_count() or 2),
                    help="tests run at once (default: CPUs, at least 2)")
    ap.add_argument("-v", dest="verbose", action="store_true", help="print each test's doc")
    args = ap.parse_args()

    tests = collect(args.pattern)
    passed = failed = skipped = 0
    reports = []
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for test, result, secs in pool.map(run_one, tests):
            name = test.id().replace("__main__.", "")
            problems = result.failures + result.errors
            if problems:
                failed += 1
                status = "FAIL"
                kept = getattr(test, "tmp", None)
                for _, tb in problems:
                    reports.append("FAIL %s\n%s%s" % (name, tb,
                                   "  (files kept in %s)\n" % kept if kept else ""))
            elif result.skipped:
                skipped += 1
                status = "skip"
                reports.append("skip %s: %s" % (name, result.skipped[0][1]))
            else:
                passed += 1
                status = "ok  "
            doc = (" - " + test.shortDescription()) if args.verbose and test.shortDescription() else ""
            print("%s %-58s %6.1fs%s" % (status, name, secs, doc), flush=True)
    for r in reports:
        print("\n" + r.rstrip())
    print("\n(%d tests in %.1fs, %d at a time)" % (len(tests), time.monotonic() - start,
                                                   args.jobs))
    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    print(summary)
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main())
