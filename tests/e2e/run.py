#!/usr/bin/python3
"""End-to-end tests: the real shim preloaded into real programs, figures asserted exactly.

Run with Debian's interpreter from the top of the tree, after `make all samples`:

    /usr/bin/python3 tests/e2e/run.py [-k SUBSTRING] [-j JOBS] [-v]

What is checked:
  * every sample (samples/*.c, *.cc, *.py) under `leakdiff run`: its exit status passes
    through, it writes exactly the snapshots its opening comment says (the exit snapshot,
    API snapshots, a fork child's), `leakdiff run` names them all, and `leakdiff top` and
    `leakdiff diff` report the totals, sites and growth its EXPECT lines state - bytes and
    blocks, exactly; valgrind (--run-libc-freeres=no --run-cxx-freeres=no) is the oracle:
    its "in use at exit" must equal the exit snapshot's totals, for fork children too;
  * `leakdiff diff` of two runs of growing_leak with different request counts (different
    processes, different ASLR) shows exactly the growth the sample's comment predicts;
  * python3 (PYTHONMALLOC=malloc) and sqlite3, programs nobody here wrote: they behave as
    without the shim, and their snapshot totals equal valgrind's;
  * snapshots on request: `leakdiff snap PID` on a running program (exact, with and without
    --label), its refusals (untraced, gone, zombie, another user's, LEAKDIFF_SIGNAL=none,
    signal ignored: exit 3 and no signal sent), a timeout, requests queued while a 1M-block
    snapshot is written, LEAKDIFF_INTERVAL, LEAKDIFF_START=0, labels that try to escape the
    output directory;
  * the program API with and without the shim (traced memory, peak, reset_peak; ctypes);
  * the lifecycle: fork, exec through a shell, LEAKDIFF_CHILDREN=0, vfork and posix_spawn,
    a dlclose'd plugin, snapshots while threads start and exit, a main that pthread_exits;
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
import collections
import concurrent.futures
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

# Test modules next to this file (test_*.py) `import run`: let them share this very module.
sys.modules.setdefault("run", sys.modules[__name__])

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
SAMPLE_TIMEOUT = 60  # seconds for a sample under `leakdiff run` (each takes 1-3)

# <exe>.<pid>.<seq>.<label>.snap; exe and label may contain dots: the shortest label wins, as
# in the analyzer (lkd_snap_parse_name).
SNAP_NAME = re.compile(r"^(?P<exe>.+)\.(?P<pid>\d+)\.(?P<seq>\d{4,})\.(?P<label>[^/]+?)\.snap$")
SnapFile = collections.namedtuple("SnapFile", "name path exe pid seq label")
VG_IN_USE = re.compile(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks")

# --------------------------------------------------------------------------------------------
# The EXPECT lines of a sample's opening comment.


class Figures:
    """Expected figures of one snapshot (or of every snapshot of one scope)."""

    def __init__(self):
        self.total = None
        self.other = None
        self.sites = {}
        self.direct = None  # reachability verdicts of the exit snapshot: (bytes, blocks)
        self.indirect = None


class Expect:
    """What a sample's opening comment (C) or docstring (Python) promises.

    Grammar, one per line inside the first /* ... */ comment or the module docstring:
        EXPECT [@SCOPE] total bytes=N blocks=N              live memory of the snapshot(s)
        EXPECT [@SCOPE] site function=NAME bytes=N blocks=N one group of `top --by function`
        EXPECT [@SCOPE] other bytes=N blocks=N              live memory in no listed site
        EXPECT [@SCOPE] direct bytes=N blocks=N    leaked blocks nothing points to (verdicts
        EXPECT [@SCOPE] indirect bytes=N blocks=N    of an exit snapshot; 0 when not given)
        EXPECT per-request function=NAME bytes=N blocks=N   growth per request (growing_leak)
        EXPECT diff OLD NEW total bytes=N blocks=N          growth from the main process's
        EXPECT diff OLD NEW function=NAME bytes=N blocks=N    snapshot OLD to NEW (labels)
        EXPECT snapshots=N             files the whole run writes (default 1: the exit snapshot)
        EXPECT valgrind bytes=N blocks=N  valgrind's "in use at exit" when it differs from the
                                          exit snapshot by design (the comment says why)
        EXPECT status=N                                     exit status (default 0)
    SCOPE: none = the exit snapshot of the program leakdiff started; @LABEL = every snapshot
    that program wrote with that label (at least one); @child = the exit snapshot of every
    other process (at least one; a fork child), which valgrind must also agree with.
    NAME runs up to " bytes=" and may contain spaces (C++ signatures).
    "EXPECT total" is required (for the exit snapshot) unless the sample is a Python script.
    Every exit snapshot's leaks (direct + indirect) must equal valgrind's definitely +
    indirectly lost, for the program and each fork child.
    """

    LINE = re.compile(r"^\s*[*#]?\s*EXPECT\s+(?:@(?P<scope>[\w.-]+)\s+)?(?P<kind>[\w-]+)"
                      r"(?P<rest>.*)$")
    COUNTS = re.compile(r"^\s*bytes=(\d+)\s+blocks=(\d+)\s*$")
    SITE = re.compile(r"^\s*function=(.+?)\s+bytes=(\d+)\s+blocks=(\d+)\s*$")
    DIFF = re.compile(r"^\s*(?P<old>[\w.-]+)\s+(?P<new>[\w.-]+)\s+(?:total|function=(?P<fn>.+?))"
                      r"\s+bytes=(?P<bytes>\d+)\s+blocks=(?P<blocks>\d+)\s*$")

    def __init__(self, path):
        self.path = path
        self.name, ext = os.path.splitext(os.path.basename(path))
        self.python = ext == ".py"
        self.scopes = {"exit": Figures()}  # "exit", a label, or "child"
        self.status = 0
        self.snapshots = 1
        self.valgrind = None
        self.per_request = {}
        self.diffs = {}  # (old, new) -> {"total" or function name: (bytes, blocks)}
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for n, line in enumerate(self._opening(text).splitlines(), 1):
            m = self.LINE.match(line)
            if m:
                self._parse(m.group("scope"), m.group("kind"), m.group("rest"),
                            "%s:%d" % (path, n))
        if self.total is None and not self.python:
            raise ValueError("%s: no 'EXPECT total' line in its opening comment" % path)

    def _opening(self, text):
        if self.python:
            if not text.startswith('"""') or text.count('"""') < 2:
                raise ValueError("%s: does not open with a docstring" % self.path)
            return text[3: text.index('"""', 3)]
        if not text.startswith("/*") or "*/" not in text:
            raise ValueError("%s: does not open with a comment" % self.path)
        return text[: text.index("*/")]

    # The exit snapshot's figures, as before scopes existed.
    total = property(lambda self: self.scopes["exit"].total)
    other = property(lambda self: self.scopes["exit"].other)
    sites = property(lambda self: self.scopes["exit"].sites)

    def _parse(self, scope, kind, rest, where):
        fig = self.scopes.setdefault(scope or "exit", Figures())
        if scope and kind not in ("total", "other", "site", "direct", "indirect"):
            raise ValueError("%s: @%s applies to total, site, other, direct and indirect only"
                             % (where, scope))
        if kind in ("total", "other", "direct", "indirect"):
            m = self.COUNTS.match(rest)
            if not m:
                raise ValueError("%s: expected 'EXPECT %s bytes=N blocks=N'" % (where, kind))
            setattr(fig, kind, (int(m.group(1)), int(m.group(2))))
        elif kind in ("site", "per-request"):
            m = self.SITE.match(rest)
            if not m:
                raise ValueError("%s: expected 'EXPECT %s function=NAME bytes=N blocks=N'"
                                 % (where, kind))
            table = fig.sites if kind == "site" else self.per_request
            if m.group(1) in table:
                raise ValueError("%s: function %s listed twice" % (where, m.group(1)))
            table[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        elif kind == "diff":
            m = self.DIFF.match(rest)
            if not m:
                raise ValueError("%s: expected 'EXPECT diff OLD NEW total|function=NAME "
                                 "bytes=N blocks=N'" % where)
            key = m.group("fn") or "total"
            self.diffs.setdefault((m.group("old"), m.group("new")), {})[key] = (
                int(m.group("bytes")), int(m.group("blocks")))
        elif kind == "valgrind":
            m = self.COUNTS.match(rest)
            if not m:
                raise ValueError("%s: expected 'EXPECT valgrind bytes=N blocks=N'" % where)
            self.valgrind = (int(m.group(1)), int(m.group(2)))
        elif kind.startswith(("status", "snapshots")):
            m = re.match(r"^(status|snapshots)=(\d+)$", (kind + rest).strip())
            if not m:
                raise ValueError("%s: expected 'EXPECT %s=N'" % (where, kind))
            setattr(self, m.group(1), int(m.group(2)))
        else:
            raise ValueError("%s: unknown EXPECT kind %r" % (where, kind))


def sample_sources():
    """samples/*.c, samples/*.cc and samples/*.py, sorted by name."""
    return sorted(os.path.join(SAMPLE_SRC, f) for f in os.listdir(SAMPLE_SRC)
                  if f.endswith((".c", ".cc", ".py")))


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
    """Runs cmd; returns CompletedProcess with text stdout/stderr (undecodable bytes kept).

    cmd runs in a session of its own, stdin empty unless input is given; on a timeout the
    whole session is killed (a hung grandchild too) and the test fails, naming the command."""
    with subprocess.Popen(cmd, env=env if env is not None else clean_env(), cwd=cwd,
                          stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="backslashreplace", start_new_session=True) as p:
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_session(p.pid)
            out, err = p.communicate()
            raise AssertionError("timed out after %s s, killed:%s" % (
                timeout, describe(subprocess.CompletedProcess(cmd, None, out, err))))
    kill_session(p.pid)  # what is left of its session once it ended would hang around
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def kill_session(sid):
    """SIGKILL to every process of session sid (what a hung test leaves behind)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) == sid:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def valgrind_lost(log):
    """valgrind's "definitely lost" + "indirectly lost" (bytes, blocks) in a log; (0, 0) when
    it has no leak summary (nothing was in use at exit)."""
    lost = [0, 0]
    for kind in ("definitely", "indirectly"):
        m = re.search(r"%s lost: ([\d,]+) bytes in ([\d,]+) blocks" % kind, log)
        if m:
            lost[0] += int(m.group(1).replace(",", ""))
            lost[1] += int(m.group(2).replace(",", ""))
    return tuple(lost)


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

    def leakdiff(self, *args, expect=0, env=None, input=None, timeout=TIMEOUT):
        """Runs build/leakdiff ARGS and asserts its exit status."""
        self.need(LEAKDIFF, "the analyzer")
        proc = run([LEAKDIFF] + list(args), env=env, input=input, timeout=timeout)
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

    def snapshots_in(self, out, proc=None, writing=False):
        """Every file in out, each a snapshot with a proper name and mode 0600: SnapFiles,
        oldest first (by pid, then sequence). writing: skip the shim's temporary files (dot
        files), for directories a running process writes to."""
        files = []
        for name in sorted(os.listdir(out)):
            if writing and name.startswith("."):
                continue
            m = SNAP_NAME.match(name)
            self.assertIsNotNone(m, "%r in %s is not <exe>.<pid>.<seq>.<label>.snap%s"
                                 % (name, out, describe(proc) if proc is not None else ""))
            path = os.path.join(out, name)
            mode = os.stat(path).st_mode & 0o777
            self.assertEqual(mode, 0o600, "%s has mode %o, not 0600" % (path, mode))
            files.append(SnapFile(name, path, m.group("exe"), int(m.group("pid")),
                                  int(m.group("seq")), m.group("label")))
        return sorted(files, key=lambda f: (f.pid, f.seq))

    def valgrind_per_process(self, cmd, env=None, input=None):
        """valgrind's "in use at exit" (bytes, blocks) for cmd's own process and, as a dict by
        pid, for each process it forked (valgrind follows forks, not execs); run as
        valgrind_in_use runs it."""
        if not os.access(VALGRIND, os.X_OK):
            self.skipTest("valgrind is not installed (the oracle); `make deps` installs it")
        log = os.path.join(self.tmp, "vg.%d" % time.monotonic_ns())
        proc = subprocess.Popen([VALGRIND, "--tool=memcheck", "--run-libc-freeres=no",
                                 "--run-cxx-freeres=no", "--leak-check=summary",
                                 "--log-file=" + log + ".%p"] + list(cmd),
                                env=env if env is not None else clean_env(),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="backslashreplace")
        out, err = proc.communicate(input, timeout=TIMEOUT)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        figures = {}
        self.valgrind_leaks = {}  # pid -> definitely + indirectly lost (bytes, blocks)
        prefix = os.path.basename(log) + "."
        for name in os.listdir(self.tmp):
            if name.startswith(prefix):
                with open(os.path.join(self.tmp, name), errors="replace") as f:
                    text = f.read()
                m = VG_IN_USE.search(text)
                self.assertIsNotNone(m, "no 'in use at exit' in valgrind's log %s:%s"
                                     % (name, describe(done)))
                pid = int(name[len(prefix):])
                figures[pid] = (int(m.group(1).replace(",", "")),
                                int(m.group(2).replace(",", "")))
                self.valgrind_leaks[pid] = valgrind_lost(text)
        self.assertIn(proc.pid, figures, "no valgrind log for the program itself:"
                      + describe(done))
        self.valgrind_leaks["main"] = self.valgrind_leaks.pop(proc.pid)
        main = figures.pop(proc.pid)
        return main, figures

    def valgrind_in_use(self, cmd, env=None, input=None):
        """valgrind's "in use at exit" (bytes, blocks) for cmd, run exactly as the shim saw it
        except for the tool: libc and libstdc++ are not told to free their memory at exit."""
        if not os.access(VALGRIND, os.X_OK):
            self.skipTest("valgrind is not installed (the oracle); `make deps` installs it")
        log = os.path.join(self.tmp, "valgrind.%d.log" % time.monotonic_ns())
        proc = run([VALGRIND, "--tool=memcheck", "--run-libc-freeres=no",
                    "--run-cxx-freeres=no", "--leak-check=summary", "--log-file=" + log]
                   + list(cmd), env=env, input=input)
        with open(log, errors="replace") as f:
            text = f.read()
        self.valgrind_lost = valgrind_lost(text)  # kept for the caller
        m = VG_IN_USE.search(text)
        self.assertIsNotNone(m, "no 'in use at exit' in valgrind's log %s:%s" % (log, describe(proc)))
        return (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))), proc

    def assert_totals_add_up(self, doc, what):
        """The groups of a report account for its totals exactly."""
        t = doc["totals"]
        self.assertEqual((sum(g["bytes"] for g in doc["groups"]),
                          sum(g["blocks"] for g in doc["groups"])),
                         (t["bytes"], t["blocks"]), "groups do not add up to totals in " + what)

    def verdicts(self, path):
        """The reachability verdicts of an exit snapshot (`leakdiff info --format json`)."""
        doc = self.json_of("info", "--format", "json", path)
        self.assertIsNotNone(doc["reachability"], "%s has no reachability verdicts" % path)
        return doc["reachability"]

    def leaks_of(self, path):
        v = self.verdicts(path)
        return (v["direct_bytes"] + v["indirect_bytes"], v["direct_blocks"] + v["indirect_blocks"])

    def groups_by_key(self, doc):
        keys = [g["key"] for g in doc["groups"]]
        self.assertEqual(len(keys), len(set(keys)), "duplicate group keys: %s" % keys)
        return {g["key"]: g for g in doc["groups"]}


# --------------------------------------------------------------------------------------------
# The samples.


class Samples(Case):
    """One test per sample, generated below from the samples directory."""

    def figure_problems(self, doc, fig, what):
        """How the top report doc differs from the expected figures fig (a list of lines)."""
        problems = []
        got_total = (doc["totals"]["bytes"], doc["totals"]["blocks"])
        if fig.total is not None and got_total != fig.total:
            problems.append("%s total: comment says bytes=%d blocks=%d, snapshot has bytes=%d "
                            "blocks=%d" % ((what,) + fig.total + got_total))
        groups = self.groups_by_key(doc)
        for fn, want in sorted(fig.sites.items()):
            g = groups.get(fn)
            got = (g["bytes"], g["blocks"]) if g else None
            if got != want:
                problems.append("%s site %s: comment says bytes=%d blocks=%d, snapshot has %s"
                                % (what, fn, want[0], want[1],
                                   "bytes=%d blocks=%d" % got if got else "no such group"))
        if fig.other is not None:
            other = (sum(g["bytes"] for k, g in groups.items() if k not in fig.sites),
                     sum(g["blocks"] for k, g in groups.items() if k not in fig.sites))
            if other != fig.other:
                problems.append("%s other (groups not listed): comment says bytes=%d blocks=%d, "
                                "snapshot has bytes=%d blocks=%d" % ((what,) + fig.other + other))
        if problems:
            problems.append("groups in %s:\n      %s" % (doc["snapshots"][-1]["path"], "\n      ".join(
                "%s  %s B in %s blocks" % (g["key"], g["bytes"], g["blocks"])
                for g in doc["groups"][:30]) or "(none)"))
        return problems

    def leak_problems(self, f, vg, what):
        got = self.leaks_of(f.path)
        if got != vg:
            return ["%s: valgrind has bytes=%d blocks=%d definitely + indirectly lost, the "
                    "snapshot's leaks (direct + indirect) bytes=%d blocks=%d" % ((what,) + vg + got)]
        return []

    def verdict_problems(self, path, fig, what):
        """The EXPECT direct/indirect lines against the snapshot's verdicts."""
        v = self.verdicts(path)
        problems = []
        for kind in ("direct", "indirect"):
            if fig.direct is None and fig.indirect is None:
                break  # no EXPECT line: valgrind is the judge (C samples)
            want = getattr(fig, kind) or (0, 0)
            got = (v[kind + "_bytes"], v[kind + "_blocks"])
            if got != want:
                problems.append("%s %s leaks: comment says bytes=%d blocks=%d, snapshot has "
                                "bytes=%d blocks=%d" % ((what, kind) + want + got))
        return problems

    def scope_snapshots(self, scope, files, main):
        """The snapshots an EXPECT scope applies to."""
        if scope == "exit":
            return [main]
        if scope == "child":
            return [f for f in files if f.pid != main.pid and f.label == "exit"]
        return [f for f in files if f.pid == main.pid and f.label == scope]

    def diff_problems(self, exp, files, main):
        problems = []
        for (old, new), want in sorted(exp.diffs.items()):
            pair = [self.scope_snapshots(label, files, main) for label in (old, new)]
            if [len(p) for p in pair] != [1, 1]:
                problems.append("diff %s %s: want one snapshot of each label, found %s"
                                % (old, new, [f.name for f in files]))
                continue
            doc = self.json_of("diff", "--format", "json", "-n", "0", pair[0][0].path,
                               pair[1][0].path)
            groups = self.groups_by_key(doc)
            for key, w in sorted(want.items()):
                if key == "total":
                    got = (doc["totals"]["bytes_diff"], doc["totals"]["blocks_diff"])
                else:
                    g = groups.get(key)
                    got = (g["bytes_diff"], g["blocks_diff"]) if g else None
                if got != w:
                    problems.append("diff %s %s %s: comment says bytes=%d blocks=%d, the diff "
                                    "has %s" % (old, new, key, w[0], w[1], got))
        return problems

    def valgrind_problems(self, exp, cmd, files, main):
        """valgrind's figures for the program (and its fork children) against the snapshots."""
        vg_main, vg_children = self.valgrind_per_process(cmd)
        got = self.top(main.path)["totals"]
        got = (got["bytes"], got["blocks"])
        want = exp.valgrind or got
        problems = []
        if vg_main != want:
            problems.append("valgrind has bytes=%d blocks=%d in use at exit, %s bytes=%d "
                            "blocks=%d" % (vg_main + ("the comment says" if exp.valgrind
                                                      else "the snapshot has",) + want))
        problems += self.leak_problems(main, self.valgrind_leaks["main"], "the program")
        children = self.scope_snapshots("child", files, main)
        child_leaks = sorted(v for k, v in self.valgrind_leaks.items() if k != "main")
        got_leaks = sorted(self.leaks_of(f.path) for f in children)
        if child_leaks != got_leaks:
            problems.append("children: valgrind has %s definitely + indirectly lost, the "
                            "snapshots' leaks are %s" % (child_leaks, got_leaks))
        if children or vg_children:
            want_children = sorted(tuple(self.top(f.path)["totals"][k] for k in ("bytes", "blocks"))
                                   for f in children)
            if sorted(vg_children.values()) != want_children:
                problems.append("children: valgrind has %s in use at exit, the snapshots %s"
                                % (sorted(vg_children.values()), want_children))
        return problems

    def check_sample(self, src):
        exp = Expect(src)
        if exp.python:
            self.need(PYTHON, "Debian's python3")
            cmd = [PYTHON, src]
        else:
            cmd = [os.path.join(SAMPLE_BIN, exp.name)]
            self.need(cmd[0], "sample binary")
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", *cmd, expect=exp.status,
                             timeout=SAMPLE_TIMEOUT)
        files = self.snapshots_in(out, proc)
        self.assertEqual(len(files), exp.snapshots, "%s: the comment says the run writes %d "
                         "snapshot(s), found %s%s" % (exp.name, exp.snapshots,
                                                      [f.name for f in files], describe(proc)))
        m = re.search(r"^leakdiff: exit snapshot: (.+)$", proc.stderr, re.M)
        self.assertIsNotNone(m, "`leakdiff run` does not name its exit snapshot:" + describe(proc))
        mains = [f for f in files if f.path == m.group(1)]
        self.assertEqual(len(mains), 1, "`leakdiff run` names %s, not in %s"
                         % (m.group(1), [f.name for f in files]))
        main = mains[0]
        self.assertEqual(main.label, "exit")
        if len(files) > 1:
            for f in files:
                self.assertIn("%-7d %-10s %s" % (f.pid, f.label, f.path), proc.stderr,
                              "`leakdiff run` lists every snapshot of the run:" + describe(proc))
        problems = []
        for scope, fig in sorted(exp.scopes.items()):
            chosen = self.scope_snapshots(scope, files, main)
            if not chosen:
                problems.append("@%s: no such snapshot among %s" % (scope, [f.name for f in files]))
            for f in chosen:
                doc = self.top(f.path)
                self.assertEqual(doc.get("command"), "top")
                self.assert_totals_add_up(doc, "top of " + f.path)
                problems += self.figure_problems(doc, fig, "" if scope == "exit" else "@" + scope)
                if f.label == "exit":
                    problems += self.verdict_problems(f.path, fig, "" if scope == "exit"
                                                      else "@" + scope)
        problems += self.diff_problems(exp, files, main)
        if not exp.python:
            problems += self.valgrind_problems(exp, cmd, files, main)
        if problems:
            self.fail("%s (snapshots in %s):\n  - %s" % (exp.name, out, "\n  - ".join(problems)))


def _sample_test(src):
    def test(self):
        self.check_sample(src)
    test.__doc__ = ("sample %s: exact totals and sites of every snapshot, equal to valgrind"
                    % os.path.basename(src))
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
            for scope, fig in exp.scopes.items():
                sites = (sum(b for b, _ in fig.sites.values()),
                         sum(n for _, n in fig.sites.values()))
                if fig.other is not None and fig.total is not None:
                    self.assertEqual((sites[0] + fig.other[0], sites[1] + fig.other[1]),
                                     fig.total, "%s: sites + other != total in its comment (%s)"
                                     % (src, scope))
                elif fig.total is not None:
                    self.assertLessEqual(sites[0], fig.total[0], src)
                    self.assertLessEqual(sites[1], fig.total[1], src)
            for (old, new), want in exp.diffs.items():
                if "total" in want and all(label in exp.scopes and exp.scopes[label].total
                                           for label in (old, new)):
                    o, n = exp.scopes[old].total, exp.scopes[new].total
                    self.assertEqual(want["total"], (n[0] - o[0], n[1] - o[1]),
                                     "%s: diff %s %s total != @%s total - @%s total"
                                     % (src, old, new, new, old))


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
        self.assertEqual(self.leaks_of(snap), self.valgrind_lost,
                         "leaks (direct + indirect) vs valgrind's definitely + indirectly lost, "
                         "for %s (snapshot %s)" % (" ".join(cmd), snap))
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
                     ["top", "--by", "colour", path], ["top", "-n", "many", path], [],
                     ["snap"], ["snap", "abc"], ["snap", "0"], ["snap", "-5"], ["snap", "1", "2"],
                     ["snap", "--timeout", "0", "1"], ["snap", "--timeout", "x", "1"],
                     ["snap", "--label"], ["top", "--label", "x", path],
                     ["run", "--timeout", "1", "--", "/bin/true"]):
            proc = self.leakdiff(*args, expect=None)
            self.assertEqual(proc.returncode, 2, "usage error:" + describe(proc))
            self.assertTrue(proc.stderr.strip(), "a usage message on stderr:" + describe(proc))


# --------------------------------------------------------------------------------------------
# Snapshots on request: the program API, `leakdiff snap PID`, the signal, the interval timer.

ENOSYS = 38
REQUEST_SIGNAL = 40  # the shim's default, SIGRTMIN+6 with glibc


class Target:
    """build/samples/snap_target --serve under the shim, driven one command line at a time."""

    def __init__(self, case, out, env=None, cwd=None, preexec_fn=None):
        binary = os.path.join(SAMPLE_BIN, "snap_target")
        case.need(binary, "sample binary")
        case.need(SHIM, "the shim")
        full = clean_env(LD_PRELOAD=SHIM, LEAKDIFF_OUTPUT=out)
        full.update(env or {})
        self.case = case
        self.proc = subprocess.Popen([binary, "--serve"], env=full, cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0, preexec_fn=preexec_fn)
        case.addCleanup(self.kill)
        self.pid = self.proc.pid
        ready = self.line(30)
        case.assertEqual(ready, "ready %d" % self.pid, "snap_target did not start")

    def line(self, timeout=60):
        """The next line the target writes (without its newline)."""
        data = b""
        deadline = time.monotonic() + timeout
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.case.fail("snap_target %d: no answer in %d s (got %r)"
                               % (self.pid, timeout, data))
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                self.case.fail("snap_target %d ended (got %r; stderr %r)"
                               % (self.pid, data, self.stderr()))
            data += chunk
        return data.decode("utf-8", "backslashreplace")[:-1]

    def ask(self, command, timeout=60):
        """Sends one command; returns the words after "ok"."""
        self.proc.stdin.write(command.encode() + b"\n")
        answer = self.line(timeout)
        self.case.assertTrue(answer == "ok" or answer.startswith("ok "),
                             "snap_target: %r answered %r" % (command, answer))
        return answer.split()[1:]

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        return self.proc.stderr.read().decode("utf-8", "backslashreplace") \
            if self.proc.poll() is not None else "(running)"

    def quit(self):
        """Asks it to exit; returns (status, stderr)."""
        self.proc.stdin.write(b"quit\n")
        self.proc.stdin.close()
        status = self.proc.wait(timeout=60)
        return status, self.proc.stderr.read().decode("utf-8", "backslashreplace")

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()


class OnRequest(Case):
    """Snapshots taken while a program runs, each exact."""

    def sites(self, path):
        doc = self.top(path)
        self.assert_totals_add_up(doc, path)
        return ((doc["totals"]["bytes"], doc["totals"]["blocks"]),
                {g["key"]: (g["bytes"], g["blocks"]) for g in doc["groups"]})

    def snap(self, pid, *args, expect=0):
        """`leakdiff snap ARGS PID`; returns (path printed last, CompletedProcess)."""
        proc = self.leakdiff("snap", *(list(args) + [str(pid)]), expect=expect)
        lines = proc.stdout.splitlines()
        return (lines[-1] if lines else None), proc

    def wait_for_files(self, out, count, label, timeout=60):
        """Waits until out holds count snapshots with label; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [f for f in self.snapshots_in(out, writing=True) if f.label == label]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def test_snap_live_process(self):
        """`leakdiff snap PID` twice on a running program (default label, then --label):
        each snapshot exact, their diff exact, the path the last line of stdout."""
        out = self.mkdir("out")
        t = Target(self, out)
        t.ask("leak 7")
        path, proc = self.snap(t.pid)
        self.assertTrue(os.path.isabs(path) and os.path.dirname(path) == out,
                        "snap prints the absolute path of the new file:" + describe(proc))
        self.assertEqual(os.path.basename(path), "snap_target.%d.0001.signal.snap" % t.pid)
        self.assertEqual(self.sites(path), ((700, 7), {"keep_records": (700, 7)}))
        t.ask("leak 3")
        path2, _ = self.snap(t.pid, "--label", "after-3", "--timeout", "20")
        self.assertEqual(os.path.basename(path2), "snap_target.%d.0002.after-3.snap" % t.pid)
        self.assertEqual(self.sites(path2), ((1000, 10), {"keep_records": (1000, 10)}))
        doc = self.json_of("diff", "--format", "json", "-n", "0", path, path2)
        self.assertEqual((doc["totals"]["bytes_diff"], doc["totals"]["blocks_diff"]), (300, 3))
        path3, _ = self.snap(t.pid, "--label", "../x y")
        self.assertEqual(os.path.basename(path3), "snap_target.%d.0003._._x_y.snap" % t.pid)
        self.assertEqual(t.quit(), (0, ""))
        names = [f.name for f in self.snapshots_in(out)]  # no request file left behind
        self.assertEqual(names, ["snap_target.%d.000%d.%s.snap" % (t.pid, i + 1, label)
                                 for i, label in enumerate(("signal", "after-3", "_._x_y",
                                                            "exit"))])
        self.assertEqual(self.sites(os.path.join(out, names[-1]))[0], (1000, 10))

    def test_snap_other_signal_relative_output(self):
        """LEAKDIFF_SIGNAL=SIGUSR2 and a relative LEAKDIFF_OUTPUT: snap reads both from the
        process's environment (the directory relative to its working directory)."""
        t = Target(self, "rel/snaps", env={"LEAKDIFF_SIGNAL": "SIGUSR2"}, cwd=self.tmp)
        t.ask("leak 2")
        path, proc = self.snap(t.pid)
        self.assertEqual(os.path.dirname(path), os.path.join(self.tmp, "rel", "snaps"),
                         describe(proc))
        self.assertEqual(self.sites(path)[0], (200, 2))
        self.assertEqual(t.quit(), (0, ""))

    def test_snap_refuses_untraced_gone_and_zombie(self):
        """No signal ever reaches a process that is not traced: it is refused (exit 3) and
        stays alive; a gone pid and a zombie are refused too."""
        sleeper = subprocess.Popen(["sleep", "60"], env=clean_env())
        self.addCleanup(lambda: (sleeper.kill(), sleeper.wait()))
        _, proc = self.snap(sleeper.pid, expect=3)
        self.assertEqual(proc.stderr, "leakdiff: PID %d is not traced by leakdiff (no "
                         "libleakdiff.so in it); not signalling it\n" % sleeper.pid)
        self.assertEqual(proc.stdout, "")
        time.sleep(0.2)
        self.assertIsNone(sleeper.poll(), "the untraced process must not be killed")
        with open("/proc/%d/status" % sleeper.pid) as f:
            pending = [line for line in f if line.startswith(("SigPnd", "ShdPnd"))]
        self.assertTrue(all(line.split()[1] == "0" * 16 for line in pending), pending)

        gone = subprocess.Popen(["true"])
        gone.wait()
        _, proc = self.snap(gone.pid, expect=3)
        self.assertEqual(proc.stderr, "leakdiff: PID %d: no such process\n" % gone.pid)

        zombie = subprocess.Popen(["true"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % zombie.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.02)
        _, proc = self.snap(zombie.pid, expect=3)
        self.assertIn("has exited", proc.stderr)
        zombie.wait()

    def test_snap_refuses_signal_none_and_ignored(self):
        """A traced process with LEAKDIFF_SIGNAL=none, and one that started with the request
        signal ignored (the shim then leaves it alone): refused, and both keep running."""
        out = self.mkdir("out")
        t = Target(self, out, env={"LEAKDIFF_SIGNAL": "none"})
        _, proc = self.snap(t.pid, expect=3)
        self.assertIn("PID %d has LEAKDIFF_SIGNAL=none" % t.pid, proc.stderr)
        self.assertEqual(t.ask("tracing"), ["1"], "still running")

        ignored = Target(self, out, preexec_fn=lambda: signal.signal(REQUEST_SIGNAL,
                                                                     signal.SIG_IGN))
        _, proc = self.snap(ignored.pid, expect=3)
        self.assertIn("PID %d does not handle signal 40 (SIGRTMIN+6)" % ignored.pid,
                      proc.stderr)
        self.assertEqual(ignored.ask("tracing"), ["1"], "still running")
        status, err = ignored.quit()
        self.assertEqual(status, 0)
        self.assertEqual(len(err.splitlines()), 1, "the shim warns once that the signal "
                         "was not at its default disposition: %r" % err)
        self.assertEqual(t.quit(), (0, ""))
        self.assertEqual(sorted(f.label for f in self.snapshots_in(out)), ["exit", "exit"])

    def test_snap_refuses_when_the_program_takes_the_signal(self):
        """A program that installs its own handler for the request signal after start-up:
        snap works before, is refused after (exit 3, no signal sent: the program's handler
        never runs), the shim warns once, and the program keeps running."""
        out = self.mkdir("out")
        t = Target(self, out)
        path, _ = self.snap(t.pid)
        self.assertTrue(os.path.exists(path))
        self.assertEqual(t.ask("handle"), ["0"])
        _, proc = self.snap(t.pid, expect=3)
        self.assertIn("PID %d catches signal 40 (SIGRTMIN+6) with a handler of its own"
                      % t.pid, proc.stderr)
        self.assertEqual(t.ask("handled"), ["0"], "the program's handler never ran")
        status, err = t.quit()
        self.assertEqual(status, 0)
        self.assertEqual(err.splitlines(), ["leakdiff: the program set its own handler for "
                                            "signal 40; snapshots on signal are off (set "
                                            "LEAKDIFF_SIGNAL to another signal)"])
        self.assertEqual(sorted(f.label for f in self.snapshots_in(out)), ["exit", "signal"])

    def test_snap_refuses_other_users_process(self):
        """A process of another user: a clear refusal, exit 3."""
        out = self.mkdir("out")
        t = Target(self, out)
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if not setpriv:
                self.skipTest("running as root and setpriv (util-linux) is missing")
            cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", LEAKDIFF,
                   "snap", str(t.pid)]
            proc = run(cmd)
            self.assertEqual(proc.returncode, 3, describe(proc))
            self.assertIn("PID %d is not ours" % t.pid, proc.stderr)
        else:
            _, proc = self.snap(1, expect=3)
            self.assertIn("PID 1 is not ours", proc.stderr)
        self.assertEqual(t.quit(), (0, ""))
        self.assertEqual([f.label for f in self.snapshots_in(out)], ["exit"])

    def test_snap_timeout_then_request_kept(self):
        """A stopped process cannot answer: snap times out (exit 1) and removes its label
        request; once the process continues, the pending signal still gives a snapshot."""
        out = self.mkdir("out")
        t = Target(self, out)
        t.ask("leak 1")
        os.kill(t.pid, signal.SIGSTOP)
        try:
            _, proc = self.snap(t.pid, "--label", "late", "--timeout", "0.5", expect=1)
        finally:
            os.kill(t.pid, signal.SIGCONT)
        self.assertIn("no snapshot labelled late from PID %d" % t.pid, proc.stderr)
        found = self.wait_for_files(out, 1, "signal")
        self.assertEqual(len(found), 1, "the pending request was served after SIGCONT")
        self.assertEqual(self.sites(found[0].path)[0], (100, 1))
        self.assertEqual(t.quit(), (0, ""))
        self.assertEqual([f.label for f in self.snapshots_in(out)], ["signal", "exit"])

    def test_requests_while_writing_are_queued(self):
        """Three signals sent at once to a process with 1M live blocks: three snapshots,
        each with all 1M blocks."""
        out = self.mkdir("out")
        t = Target(self, out)
        t.ask("tiny 1000000", timeout=120)
        for _ in range(3):
            os.kill(t.pid, REQUEST_SIGNAL)
        found = self.wait_for_files(out, 3, "signal", timeout=120)
        self.assertEqual([f.seq for f in found], [1, 2, 3], [f.name for f in found])
        self.assertEqual(t.quit()[0], 0)
        for f in found:
            self.assertEqual(self.sites(f.path), ((16000000, 1000000),
                                                  {"keep_tiny": (16000000, 1000000)}))

    def test_interval(self):
        """LEAKDIFF_INTERVAL=1 on a program that runs 2.5 s: at least two interval
        snapshots, each exact, all listed by `leakdiff run`."""
        binary = os.path.join(SAMPLE_BIN, "snap_target")
        self.need(binary, "sample binary")
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", binary, "--sleep", "2500",
                             env=clean_env(LEAKDIFF_INTERVAL="1"))
        files = self.snapshots_in(out, proc)
        intervals = [f for f in files if f.label == "interval"]
        self.assertGreaterEqual(len(intervals), 2, [f.name for f in files])
        self.assertLessEqual(len(intervals), 3, [f.name for f in files])
        self.assertEqual([f.label for f in files], ["interval"] * len(intervals) + ["exit"])
        for f in files:
            self.assertEqual(self.sites(f.path), ((1000, 10), {"keep_records": (1000, 10)}))
            self.assertIn(f.path, proc.stderr, "`leakdiff run` lists it")

    def test_start_paused(self):
        """LEAKDIFF_START=0: nothing is recorded until the signal (snap) or leakdiff_start();
        frees of blocks never recorded change nothing."""
        out = self.mkdir("out")
        t = Target(self, out, env={"LEAKDIFF_START": "0"})
        self.assertEqual(t.ask("tracing"), ["0"])
        t.ask("leak 5")
        self.assertEqual(t.ask("memory"), ["0", "0", "0"])
        path, _ = self.snap(t.pid)
        self.assertEqual(self.sites(path), ((0, 0), {}), "the signal starts tracing, then snaps")
        self.assertEqual(t.ask("tracing"), ["1"])
        t.ask("leak 3")
        self.assertEqual(t.quit(), (0, ""))
        exit_snap = [f for f in self.snapshots_in(out) if f.label == "exit"]
        self.assertEqual(self.sites(exit_snap[0].path), ((300, 3), {"keep_records": (300, 3)}))

        out2 = self.mkdir("out2")
        t = Target(self, out2, env={"LEAKDIFF_START": "0"})
        t.ask("leak 5")
        self.assertEqual(t.ask("start"), ["0"])
        self.assertEqual(t.ask("tracing"), ["1"])
        t.ask("leak 2")
        self.assertEqual(t.ask("snap api"), ["0"])
        t.ask("free")  # 7 blocks, 5 of them never recorded
        self.assertEqual(t.quit(), (0, ""))
        files = self.snapshots_in(out2)
        self.assertEqual([f.label for f in files], ["api", "exit"])
        self.assertEqual(self.sites(files[0].path), ((200, 2), {"keep_records": (200, 2)}))
        self.assertEqual(self.sites(files[1].path), ((0, 0), {}))

    def test_bad_labels_stay_inside_the_output_directory(self):
        """Labels with slashes, dots, 300 characters, empty or NULL: sanitized file names in
        the output directory, nothing anywhere else."""
        out = self.mkdir("out")
        t = Target(self, out)
        labels = ["../x", "a/b", "y" * 300, "", None, "..", "/etc/passwd"]
        for label in labels:
            command = "snapnull" if label is None else ("snap " + label if label else "snap")
            self.assertEqual(t.ask(command), ["0"], command)
        path, _ = self.snap(t.pid, "--label", "../../evil/x")
        self.assertEqual(t.quit(), (0, ""))
        want = ["_._x", "a_b", "y" * 63, "snapshot", "snapshot", "snapshot", "_etc_passwd",
                "_._.._evil_x", "exit"]
        names = sorted(os.listdir(out))
        self.assertEqual(names, ["snap_target.%d.%04d.%s.snap" % (t.pid, i + 1, label)
                                 for i, label in enumerate(want)])
        self.assertEqual(os.listdir(self.tmp), ["out"], "nothing outside the output directory")
        for name in names:
            self.assertEqual(self.sites(os.path.join(out, name))[0], (0, 0))


class Api(Case):
    """The program API, with and without the shim."""

    def values(self, proc):
        """The "name = value" lines a sample printed, as a dict of lists of ints."""
        got = collections.defaultdict(list)
        for line in proc.stdout.splitlines():
            name, _, value = line.partition(" = ")
            got[name].append(int(value))
        return got

    def test_without_the_shim(self):
        """A program built against include/leakdiff.h runs without the shim: every call
        returns -ENOSYS (is_tracing 0, traced memory 0/0) and no file is written."""
        for name in ("api_usage", "stop_start"):
            binary = os.path.join(SAMPLE_BIN, name)
            self.need(binary, "sample binary")
            proc = run([binary], cwd=self.tmp)
            self.assertEqual((proc.returncode, proc.stderr), (0, ""), describe(proc))
            for key, values in self.values(proc).items():
                want = 0 if key.startswith(("is_tracing", "current", "peak")) else -ENOSYS
                self.assertEqual(values, [want] * len(values), "%s: %s" % (name, key))
        self.assertEqual(os.listdir(self.tmp), [])
        self.need(PYTHON, "Debian's python3")
        proc = run([PYTHON, os.path.join(SAMPLE_SRC, "python_api.py")], cwd=self.tmp)
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertIn("not running under leakdiff", proc.stdout)

    def test_traced_memory_and_peak(self):
        """api_usage's traced memory: +1,000 B between the snapshots, the peak exactly 1 MiB
        above the current bytes after the scratch block, reset_peak brings it down; the
        snapshots carry the same figures."""
        binary = os.path.join(SAMPLE_BIN, "api_usage")
        self.need(binary, "sample binary")
        self.need(SHIM, "the shim")
        out = self.mkdir("out")
        proc = run([binary], env=clean_env(LD_PRELOAD=SHIM, LEAKDIFF_OUTPUT=out))
        self.assertEqual((proc.returncode, proc.stderr), (0, ""), describe(proc))
        v = self.values(proc)
        for key in ("is_tracing",):
            self.assertEqual(v[key], [1])
        for key in ("snapshot_before", "snapshot_after", "memory", "reset_peak", "stop", "start"):
            self.assertEqual(set(v[key]), {0}, key)
        cur0, cur1 = v["current_before"][0], v["current_after"][0]
        self.assertEqual(cur1 - cur0, 1000)
        self.assertEqual(v["peak_after"], [cur1 + (1 << 20)])
        self.assertEqual(v["peak_reset"], [cur1])
        files = {f.label: f for f in self.snapshots_in(out, proc)}
        self.assertEqual(sorted(files), ["after", "before", "exit"])
        before = self.json_of("info", "--format", "json", files["before"].path)["totals"]
        after = self.json_of("info", "--format", "json", files["after"].path)["totals"]
        self.assertEqual(before["bytes"], cur0)
        self.assertEqual((after["bytes"], after["peak_bytes"]), (cur1, cur1),
                         "the after snapshot follows reset_peak")

    def test_python_traced_memory(self):
        """python_api.py reads leakdiff_traced_memory through ctypes: it grows by exactly
        what the native code kept."""
        self.need(PYTHON, "Debian's python3")
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", PYTHON,
                             os.path.join(SAMPLE_SRC, "python_api.py"))
        m = re.search(r"traced memory (\d+) B before, (\d+) B after", proc.stdout)
        self.assertIsNotNone(m, describe(proc))
        self.assertEqual(int(m.group(2)) - int(m.group(1)), 101200)


# --------------------------------------------------------------------------------------------
# fork, exec, dlclose and threads.


class Lifecycle(Case):
    def exit_figures(self, path):
        doc = self.top(path)
        return ((doc["totals"]["bytes"], doc["totals"]["blocks"]),
                {g["key"]: (g["bytes"], g["blocks"]) for g in doc["groups"]})

    def test_fork_child_has_its_own_pid_and_sequence(self):
        binary = os.path.join(SAMPLE_BIN, "fork_leak")
        self.need(binary, "sample binary")
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", binary)
        files = self.snapshots_in(out, proc)
        self.assertEqual(len(files), 2)
        parent = [f for f in files if "exit snapshot: " + f.path in proc.stderr]
        child = [f for f in files if f not in parent]
        self.assertEqual((len(parent), len(child)), (1, 1), describe(proc))
        self.assertEqual((parent[0].seq, child[0].seq), (1, 1))
        info = self.json_of("info", "--format", "json", child[0].path)
        self.assertEqual((info["process"]["pid"], info["process"]["ppid"]),
                         (child[0].pid, parent[0].pid))

    def test_shell_runs_traced_child(self):
        """`leakdiff run -- sh -c 'simple_leak; true'`: the child's snapshot is listed, and
        exact (Debian's sh, dash, ends with _exit(): it writes none itself); the status is
        the shell's. bash, which exits normally, writes its own, and the report is bash's."""
        binary = os.path.join(SAMPLE_BIN, "simple_leak")
        self.need(binary, "sample binary")
        exp = Expect(os.path.join(SAMPLE_SRC, "simple_leak.c"))
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", "/bin/sh", "-c", binary + "; true")
        files = self.snapshots_in(out, proc)
        self.assertEqual([f.exe for f in files], ["simple_leak"], describe(proc))
        self.assertIn("leakdiff: 1 snapshot written during the run (pid, label, file):\n"
                      "leakdiff:   %-7d %-10s %s\n" % (files[0].pid, "exit", files[0].path),
                      proc.stderr)
        total, sites = self.exit_figures(files[0].path)
        self.assertEqual(total, exp.total)
        for fn, want in exp.sites.items():
            self.assertEqual(sites.get(fn), want, fn)
        self.leakdiff("run", "-o", self.mkdir("out2"), "--", "/bin/sh", "-c",
                      binary + "; exit 3", expect=3)
        out = self.mkdir("out3")
        proc = self.leakdiff("run", "-o", out, "--", "/bin/bash", "-c", binary + "; true")
        files = self.snapshots_in(out, proc)
        self.assertEqual(sorted(f.exe for f in files), ["bash", "simple_leak"], describe(proc))
        for f in files:
            self.assertIn("%-7d %-10s %s" % (f.pid, "exit", f.path), proc.stderr)
        self.assertIn("exit snapshot: " + [f for f in files if f.exe == "bash"][0].path,
                      proc.stderr, "the report is the shell's own")

    def test_children_off(self):
        """LEAKDIFF_CHILDREN=0: the shim takes itself out of LD_PRELOAD (keeping the rest),
        so exec'd children write nothing."""
        binary = os.path.join(SAMPLE_BIN, "simple_leak")
        self.need(binary, "sample binary")
        out = self.mkdir("out")
        other = "/lib/x86_64-linux-gnu/libm.so.6"
        proc = self.leakdiff("run", "-o", out, "--", "/bin/bash", "-c",
                             binary + '; echo "LD_PRELOAD=[$LD_PRELOAD]"',
                             env=clean_env(LEAKDIFF_CHILDREN="0", LD_PRELOAD=other))
        self.assertIn("LD_PRELOAD=[%s]" % other, proc.stdout, describe(proc))
        self.assertEqual([f.exe for f in self.snapshots_in(out, proc)], ["bash"])

    def test_vfork_and_posix_spawn(self):
        """Python starts simple_leak with subprocess (vfork) and os.posix_spawn: both
        children are traced and exact."""
        self.need(PYTHON, "Debian's python3")
        binary = os.path.join(SAMPLE_BIN, "simple_leak")
        self.need(binary, "sample binary")
        code = ("import os, subprocess, sys\n"
                "subprocess.run([sys.argv[1]], check=True)\n"
                "pid = os.posix_spawn(sys.argv[1], [sys.argv[1]], os.environ)\n"
                "assert os.waitpid(pid, 0)[1] == 0\n")
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", PYTHON, "-c", code, binary)
        files = [f for f in self.snapshots_in(out, proc) if f.exe == "simple_leak"]
        self.assertEqual(len(files), 2, describe(proc))
        exp = Expect(os.path.join(SAMPLE_SRC, "simple_leak.c"))
        for f in files:
            self.assertEqual(self.exit_figures(f.path)[0], exp.total, f.name)

    def test_dlclosed_module_is_kept(self):
        """plugin: after dlclose the snapshot still has the plugin's module (marked
        unloaded), and its records keep their site."""
        binary = os.path.join(SAMPLE_BIN, "plugin")
        self.need(binary, "sample binary")
        self.need(os.path.join(SAMPLE_BIN, "libplugin.so"),
                  "the plugin (Makefile rule build/samples/libplugin.so)")
        snap, _ = self.run_traced([binary])
        info = self.json_of("info", "--format", "json", snap)
        plugins = [m for m in info["modules"] if m["path"].endswith("/libplugin.so")]
        self.assertEqual(len(plugins), 1, [m["path"] for m in info["modules"]])
        self.assertTrue(plugins[0]["unloaded"], plugins[0])
        self.assertEqual(self.exit_figures(snap)[1].get("plugin_make_records"), (192, 4))

    def test_snapshots_consistent_while_threads_churn(self):
        """thread_churn, five times: in every snapshot taken while threads start, allocate
        and exit, each live block is counted once (sizes add up, bounded churn)."""
        binary = os.path.join(SAMPLE_BIN, "thread_churn")
        self.need(binary, "sample binary")
        self.need(SHIM, "the shim")
        for i in range(5):
            out = self.mkdir("run%d" % i)
            proc = run([binary], env=clean_env(LD_PRELOAD=SHIM, LEAKDIFF_OUTPUT=out))
            self.assertEqual((proc.returncode, proc.stderr), (0, ""), describe(proc))
            files = self.snapshots_in(out, proc)
            self.assertEqual([f.label for f in files], ["during"] * 20 + ["exit"])
            for f in files[:-1]:
                doc = self.top(f.path)
                self.assert_totals_add_up(doc, f.path)
                sites = {g["key"]: (g["bytes"], g["blocks"]) for g in doc["groups"]}
                self.assertEqual(sites.pop("keep_stable"), (25600, 100), f.name)
                churn = sites.pop("churn_worker", (0, 0))
                self.assertEqual(churn[0], 64 * churn[1], f.name)
                self.assertLessEqual(churn[1], 3 * 32, f.name)
                dtv = sites.pop("allocate_dtv", (0, 0))
                self.assertLessEqual(dtv[1], 6, f.name)
                self.assertEqual(sites, {}, f.name)


# --------------------------------------------------------------------------------------------
# The runner: parallel, one summary line.

# Slow tests first, so that they overlap with the many quick ones.
SLOW_FIRST = ("test_regression_tests_pass_as_without_the_shim",
              "test_requests_while_writing_are_queued", "test_snapshots_consistent_while_threads_churn", "test_interval", "test_python3",
              "test_sqlite3", "test_thread_churn", "test_thread_leaks", "test_cpp_leak")


def extra_classes():
    """Case subclasses from tests/e2e/test_*.py: those modules `import run` for the helpers."""
    import importlib.util
    here = os.path.dirname(os.path.abspath(__file__))
    classes = []
    for name in sorted(os.listdir(here)):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(here, name))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        classes += [c for c in vars(mod).values()
                    if isinstance(c, type) and issubclass(c, Case) and c.__module__ == mod.__name__]
    return classes


def collect(pattern):
    loader = unittest.TestLoader()
    tests = []
    for cls in (Foreign, Samples, Comments, Diff, Reports, Process, OnRequest, Api,
                Lifecycle, BadInput, *extra_classes()):
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
