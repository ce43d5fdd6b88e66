"""End-to-end tests of the analyses (issue 4): --cumulative, filters, trend, survivors,
collapsed stacks, and the header flag of a diff between different programs.

Figures come from the samples' EXPECT lines (growing_leak, simple_leak, api_usage), so
they are exact; --cumulative is checked against an oracle computed here from the same
snapshot's `--by traceback` report, on python3, whose stacks really recurse.
"""

import json
import os
import re

import run

GROWING = os.path.join(run.SAMPLE_BIN, "growing_leak")
SIMPLE = os.path.join(run.SAMPLE_BIN, "simple_leak")
API = os.path.join(run.SAMPLE_BIN, "api_usage")

# "#1 samples/simple_leak.c:31 (leak_table): size=5.0 KiB, count=2, average=2.5 KiB"
SIZE = r"\d+(?:\.\d)? (?:B|KiB|MiB|GiB)"
TOP_LINE = re.compile(r"^#\d+ (?P<title>.+): size=%s, count=\d+(?:, average=%s)?$" % (SIZE, SIZE))
DIFF_LINE = re.compile(r"^#\d+ (?P<title>.+): size=%s \([+-]%s\), count=\d+ \([+-]\d+\)"
                       r"(?:, average=%s)?$" % (SIZE, SIZE, SIZE))


def function_key(frame):
    """The --by function key of a JSON frame: the function without a "+0x1a" offset, unless
    the name is the module's own ("libfoo.so+0x1234"), as lkd_function_base_len does."""
    fn, module = frame["function"], frame["module"] or ""
    m = re.match(r"^(.*)\+0x[0-9a-fA-F]+$", fn)
    if not m or m.group(1) in (module, os.path.basename(module)):
        return fn
    return m.group(1)


def line_key(frame):
    if frame["file"] and frame["line"]:
        return "%s:%d" % (frame["file"], frame["line"])
    return frame["function"]


class Analysis(run.Case):
    """leakdiff top/diff --cumulative and filters, trend, survivors, --format collapsed."""

    def snap_of(self, binary, *args, name="out"):
        self.need(binary, "sample binary")
        path, _ = self.run_traced([binary] + list(args), out=self.mkdir(name))
        return path

    def growing_runs(self, *requests):
        return [self.snap_of(GROWING, str(r), name="r%d" % r) for r in requests]

    def sample_expect(self, name):
        return run.Expect(os.path.join(run.SAMPLE_SRC, name))

    # ---- keys and --cumulative ----------------------------------------------------------

    def test_keys_and_text_lines(self):
        """--by line/file/module are the site's, as tracemalloc's lineno/filename; text lines
        read `file:line (function): size=..., count=..., average=...`."""
        exp = self.sample_expect("simple_leak.c")
        snap = self.snap_of(SIMPLE)
        lines = self.top(snap, "line")
        for g in lines["groups"]:
            self.assertRegex(g["key"], r"simple_leak\.c:\d+$", "--by line key")
            self.assertEqual(g["key"], line_key(g["frames"][0]), "the site's file:line")
        files = self.groups_by_key(self.top(snap, "file"))
        self.assertEqual(len(files), 1, "every site is in simple_leak.c: %s" % sorted(files))
        (key, g), = files.items()
        self.assertTrue(key.endswith("samples/simple_leak.c"), key)
        self.assertEqual((g["bytes"], g["blocks"]), exp.total)
        modules = self.groups_by_key(self.top(snap, "module"))
        self.assertEqual((modules[SIMPLE]["bytes"], modules[SIMPLE]["blocks"]), exp.total)
        text = self.leakdiff("top", "--by", "line", "-n", "0", snap).stdout.splitlines()
        rows = [l for l in text if l.startswith("#")]
        self.assertEqual(len(rows), len(lines["groups"]), "\n".join(text))
        for row in rows:
            m = TOP_LINE.match(row)
            self.assertIsNotNone(m, "not a tracemalloc-like line: %r" % row)
            self.assertRegex(m.group("title"),
                             r"simple_leak\.c:\d+ \((leak_names|leak_table|main)\)$")

    def test_cumulative_simple_leak(self):
        """Every caller of a site counts its blocks: main holds all of them, once."""
        exp = self.sample_expect("simple_leak.c")
        snap = self.snap_of(SIMPLE)
        doc = self.json_of("top", "--cumulative", "--format", "json", "-n", "0", snap)
        self.assertIs(doc["cumulative"], True)
        groups = self.groups_by_key(doc)
        self.assertEqual((groups["main"]["bytes"], groups["main"]["blocks"]), exp.total)
        for fn in ("leak_names", "leak_table"):
            self.assertEqual((groups[fn]["bytes"], groups[fn]["blocks"]), exp.sites[fn], fn)
        self.assertEqual((doc["totals"]["bytes"], doc["totals"]["blocks"]), exp.total)
        text = self.leakdiff("top", "--cumulative", snap).stdout
        self.assertIn("by function (cumulative):", text)
        proc = self.leakdiff("top", "--cumulative", "--by", "traceback", snap, expect=2)
        self.assertIn("--cumulative does not go with --by traceback", proc.stderr)

    def cumulative_oracle(self, traceback_doc, key):
        """Cumulative figures per key from a --by traceback report: each stack's bytes and
        blocks go to every key among its frames, once per stack."""
        sums = {}
        for g in traceback_doc["groups"]:
            for k in {key(f) for f in g["frames"]}:
                b, n = sums.get(k, (0, 0))
                sums[k] = (b + g["bytes"], n + g["blocks"])
        return sums

    def test_cumulative_recursion_python(self):
        """python3's C stacks recurse (the eval loop calls itself through imports and
        calls): --cumulative counts a recurring location once per block, exactly as an
        oracle computed from the whole stacks says."""
        env = run.clean_env(PYTHONMALLOC="malloc")
        out = self.mkdir("py")
        code = "import json; x = json.loads('[' * 60 + ']' * 60); print(len(str(x)))"
        proc = self.leakdiff("run", "-o", out, "--", run.PYTHON, "-c", code, env=env)
        snap = self.only_snapshot(out, proc)
        tb = self.json_of("top", "--by", "traceback", "--format", "json", "-n", "0", snap)
        recursive = [g for g in tb["groups"]
                     if len({f["address"] for f in g["frames"]}) < len(g["frames"])]
        self.assertTrue(recursive, "no stack with a recurring frame: the test proves nothing")
        total = (tb["totals"]["bytes"], tb["totals"]["blocks"])
        for by, key in (("function", function_key), ("line", line_key)):
            want = self.cumulative_oracle(tb, key)
            doc = self.json_of("top", "--cumulative", "--by", by, "--format", "json", "-n", "0",
                               snap)
            got = {g["key"]: (g["bytes"], g["blocks"]) for g in doc["groups"]}
            self.assertEqual(got, want, "--cumulative --by %s differs from the oracle" % by)
            for k, (b, n) in got.items():
                self.assertLessEqual((b, n), total, "%s counted more than once" % k)

    # ---- filters ------------------------------------------------------------------------

    def test_include_exclude(self):
        exp = self.sample_expect("simple_leak.c")
        snap = self.snap_of(SIMPLE)

        def groups(*args):
            doc = self.json_of("top", "--format", "json", "-n", "0", *args, snap)
            self.assert_totals_add_up({"groups": doc["groups"], "totals": doc["filter"]},
                                      "filtered top " + " ".join(args))
            return {g["key"]: (g["bytes"], g["blocks"]) for g in doc["groups"]}

        self.assertEqual(groups("--include", "leak_names"), {"leak_names": exp.sites["leak_names"]})
        # any frame counts, plumbing too: the two strdup'd strings of leak_names (6 + 14 B)
        self.assertEqual(groups("--include", "*strdup"), {"leak_names": (20, 2)})
        # file and module names match by base name or path; includes are alternatives
        self.assertEqual(sum(b for b, _ in groups("--include", "simple_leak.c").values()),
                         exp.total[0])
        self.assertEqual(set(groups("--include", "leak_table", "--include", "*/simple_leak")),
                         set(exp.sites))
        # exclude wins over include
        self.assertEqual(groups("--exclude", "leak_*"), {"main": exp.sites["main"]})
        self.assertEqual(groups("--include", "leak_*", "--exclude", "leak_names"),
                         {"leak_table": exp.sites["leak_table"]})
        text = self.leakdiff("top", "--include", "leak_*", snap).stdout
        self.assertIn("  filter: --include 'leak_*': 5.0 KiB in 5 blocks selected\n", text)

    def test_glob_matching_nothing_is_a_note(self):
        snap = self.snap_of(SIMPLE)
        proc = self.leakdiff("top", "--include", "no_such_function", "--exclude", "main", snap)
        self.assertIn("leakdiff: note: --include 'no_such_function' matches no frame of the "
                      "snapshot\n", proc.stderr)
        self.assertNotIn("--exclude 'main'", proc.stderr, "main matches: no note")
        self.assertIn("No group passes the filters.", proc.stdout)

    def test_min_bytes_top_and_diff(self):
        exp = self.sample_expect("growing_leak.c")
        snap = self.growing_runs(1000)[0]
        # at or above the minimum stays: build_cache has exactly 16 KiB
        doc = self.json_of("top", "--format", "json", "--min-bytes", "16K", "-n", "0", snap)
        self.assertEqual(doc["filter"]["min_bytes"], 16384)
        self.assertEqual(len(doc["groups"]), 3)
        doc = self.json_of("top", "--format", "json", "--min-bytes", "16385", "-n", "0", snap)
        self.assertEqual([g["key"] for g in doc["groups"]], ["remember_session", "log_request"])
        self.assertEqual(doc["filter"]["dropped_groups"], 1)
        old, new = self.growing_runs(100, 300)
        n = 200
        # diff: the absolute change counts; build_cache (16 KiB, +0) is dropped
        growth = exp.per_request["remember_session"][0] * n
        doc = self.json_of("diff", "--format", "json", "-n", "0", "--min-bytes", str(growth),
                           old, new)
        self.assertEqual([(g["key"], g["bytes_diff"]) for g in doc["groups"]],
                         [("remember_session", growth)])
        self.assertEqual(doc["filter"]["dropped_groups"], 2)
        # ... also when it shrinks: the same pair the other way round
        doc = self.json_of("diff", "--format", "json", "-n", "0", "--min-bytes", str(growth),
                           new, old)
        self.assertEqual([(g["key"], g["bytes_diff"]) for g in doc["groups"]],
                         [("remember_session", -growth)])
        for bad in ("-1", "12X", "1KB", ""):
            self.leakdiff("top", "--min-bytes", bad, old, expect=2)

    # ---- trend --------------------------------------------------------------------------

    def test_trend_growing_leak(self):
        """Three runs of 100, 200, 300 requests: the per-request sites grow in every
        interval by their exact amount, the one-time cache does not."""
        exp = self.sample_expect("growing_leak.c")
        reqs = (100, 200, 300)
        snaps = self.growing_runs(*reqs)
        doc = self.json_of("trend", "--format", "json", "-n", "0", *snaps)
        self.assertEqual(doc["command"], "trend")
        self.assertEqual([s["path"] for s in doc["snapshots"]], snaps)
        groups = self.groups_by_key(doc)
        cache = exp.sites["build_cache"]
        for fn, (per_bytes, per_blocks) in exp.per_request.items():
            g = groups[fn]
            if per_bytes:
                self.assertEqual(g["series"], [per_bytes * r for r in reqs], fn)
                self.assertEqual(g["blocks_series"], [per_blocks * r for r in reqs], fn)
                self.assertIs(g["growing"], True, fn)
                self.assertEqual(g["growth_per_snapshot"], per_bytes * 100, fn)
            else:
                self.assertEqual(g["series"], [cache[0]] * 3, fn)
                self.assertIs(g["growing"], False, fn)
                self.assertEqual(g["growth_per_snapshot"], 0, fn)
        self.assertEqual([g["key"] for g in doc["groups"]],
                         ["remember_session", "log_request", "build_cache"],
                         "growing first, then by growth")
        total = [cache[0] + sum(b for b, _ in exp.per_request.values()) * r for r in reqs]
        self.assertEqual(doc["totals"]["series"], total)
        text = self.leakdiff("trend", *snaps).stdout
        self.assertIn("Top 3 by function, growing first:\n#1 remember_session", text)
        self.assertIn("    growing, +4.7 KiB per snapshot: 4.7 KiB -> 9.4 KiB -> 14.1 KiB\n",
                      text)
        self.assertIn("    not growing, +0 B per snapshot: 16.0 KiB -> 16.0 KiB -> 16.0 KiB\n",
                      text)
        # filters apply as in top and diff
        doc = self.json_of("trend", "--format", "json", "--include", "log_*", *snaps)
        self.assertEqual([g["key"] for g in doc["groups"]], ["log_request"])
        doc = self.json_of("trend", "--format", "json", "--min-bytes", "5000", *snaps)
        self.assertEqual([g["key"] for g in doc["groups"]], ["remember_session"])

    def test_trend_needs_two_snapshots(self):
        snap = self.snap_of(SIMPLE)
        proc = self.leakdiff("trend", snap, expect=2)
        self.assertIn("trend: missing argument (want at least two snapshots)", proc.stderr)
        self.leakdiff("trend", expect=2)

    # ---- survivors ----------------------------------------------------------------------

    def api_snapshots(self):
        self.need(API, "sample binary")
        out = self.mkdir("api")
        proc = self.leakdiff("run", "-o", out, "--", API)
        files = {f.label: f.path for f in self.snapshots_in(out, proc)}
        self.assertEqual(set(files), {"before", "after", "exit"}, describe_files(files))
        return files

    def test_survivors_api_usage(self):
        """Blocks born after "before" and still live in "after" are leak_between's 25."""
        exp = self.sample_expect("api_usage.c")
        want = exp.diffs[("before", "after")]
        snaps = self.api_snapshots()
        for new in ("after", "exit"):
            doc = self.json_of("survivors", "--format", "json", "-n", "0", snaps["before"],
                               snaps[new])
            self.assertEqual(doc["command"], "survivors")
            groups = {g["key"]: (g["bytes"], g["blocks"]) for g in doc["groups"]}
            self.assertEqual(groups, {"leak_between": want["leak_between"]}, new)
            t = doc["totals"]
            self.assertEqual((t["survivor_bytes"], t["survivor_blocks"]), want["total"])
            self.assertEqual((t["bytes"], t["blocks"]), exp.scopes["after"].total)
        text = self.leakdiff("survivors", snaps["before"], snaps["after"]).stdout
        self.assertIn("  survivors: 1000 B in 25 blocks born after OLD was written", text)
        self.assertRegex(text, r"\n#1 leak_between \(\S*api_usage\.c:\d+\): size=1000 B, "
                               r"count=25, average=40 B\n")
        # nothing born after "after" lives at exit
        text = self.leakdiff("survivors", snaps["after"], snaps["exit"]).stdout
        self.assertIn("No survivors", text)
        # three snapshots: born between the first two, still live in the third
        doc = self.json_of("survivors", "--format", "json", snaps["before"], snaps["after"],
                           snaps["exit"])
        self.assertEqual([s["label"] for s in doc["snapshots"]], ["before", "after", "exit"])
        self.assertEqual({g["key"]: (g["bytes"], g["blocks"]) for g in doc["groups"]},
                         {"leak_between": want["leak_between"]})
        self.assertLess(doc["totals"]["birth_from"], doc["totals"]["birth_to"])
        text = self.leakdiff("survivors", snaps["before"], snaps["after"], snaps["exit"]).stdout
        self.assertIn("born after OLD and before MID were written", text)

    def test_survivors_refuses_wrong_pairs(self):
        snaps = self.api_snapshots()
        proc = self.leakdiff("survivors", snaps["after"], snaps["before"], expect=2)
        self.assertIn("was not written before", proc.stderr)
        self.assertEqual(proc.stdout, "")
        self.leakdiff("survivors", snaps["after"], snaps["after"], expect=2)
        proc = self.leakdiff("survivors", snaps["before"], snaps["exit"], snaps["after"],
                             expect=2)
        self.assertIn("MID %s (seq 3) was not written before NEW" % snaps["exit"], proc.stderr)
        self.leakdiff("survivors", snaps["before"], snaps["after"], snaps["exit"],
                      snaps["exit"], expect=2)
        other = self.snap_of(SIMPLE)
        proc = self.leakdiff("survivors", snaps["before"], other, expect=2)
        self.assertIn("are snapshots of different processes", proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.leakdiff("survivors", snaps["before"], expect=2)
        self.leakdiff("survivors", snaps["before"], os.path.join(self.tmp, "missing.snap"),
                      expect=3)

    # ---- collapsed stacks ---------------------------------------------------------------

    def folded(self, text):
        """{stack tuple (root first): value} of collapsed output; every line well-formed."""
        stacks = {}
        for line in text.splitlines():
            m = re.match(r"^(\S.*) (\d+)$", line)
            self.assertIsNotNone(m, "not a folded line: %r" % line)
            frames = tuple(m.group(1).split(";"))
            self.assertNotIn(frames, stacks, "stack twice: %r" % line)
            stacks[frames] = int(m.group(2))
        return stacks

    def test_collapsed_top_and_diff(self):
        exp = self.sample_expect("simple_leak.c")
        snap = self.snap_of(SIMPLE)
        stacks = self.folded(self.leakdiff("top", "--format", "collapsed", snap).stdout)
        by_leaf = {}
        for frames, value in stacks.items():
            self.assertIn("main", frames, "root first, down to the site: %r" % (frames,))
            by_leaf[frames[-1]] = by_leaf.get(frames[-1], 0) + value
        self.assertEqual(by_leaf, {fn: b for fn, (b, _) in exp.sites.items()})
        self.assertEqual(sum(stacks.values()), exp.total[0])
        # diff: the growth; sites that did not grow are left out
        gexp = self.sample_expect("growing_leak.c")
        old, new = self.growing_runs(100, 300)
        stacks = self.folded(self.leakdiff("diff", "--format", "collapsed", old, new).stdout)
        leaves = {frames[-1]: v for frames, v in stacks.items()}
        self.assertEqual(leaves, {fn: b * 200 for fn, (b, _) in gexp.per_request.items() if b})
        for frames in stacks:
            self.assertEqual(frames[-2], "handle_request", frames)

    def test_collapsed_from_run_and_bad_combinations(self):
        self.need(SIMPLE, "sample binary")
        out = self.mkdir("out")
        proc = self.leakdiff("run", "--format", "collapsed", "-o", out, "--", SIMPLE)
        self.assertEqual(sum(self.folded(proc.stdout).values()),
                         self.sample_expect("simple_leak.c").total[0])
        snap = self.only_snapshot(out, proc)
        self.leakdiff("top", "--format", "collapsed", "--cumulative", snap, expect=2)
        self.leakdiff("info", "--format", "collapsed", snap, expect=2)
        proc = self.leakdiff("top", "--format", "folded", snap, expect=2)
        self.assertIn("text, json or collapsed", proc.stderr)

    # ---- diff of different programs -----------------------------------------------------

    def test_diff_of_different_programs_is_flagged(self):
        a = self.snap_of(SIMPLE, name="a")
        b = self.snap_of(GROWING, "10", name="b")
        text = self.leakdiff("diff", a, b).stdout
        header = text.split("\nTop ")[0]
        self.assertIn("  note: different executables: %s and %s" % (SIMPLE, GROWING), header)
        for row in (l for l in text.splitlines() if l.startswith("#")):
            self.assertRegex(row, DIFF_LINE)
        doc = self.json_of("diff", "--format", "json", a, b)
        self.assertIs(doc["different_programs"], True)
        doc = self.json_of("diff", "--format", "json", a, a)
        self.assertIs(doc["different_programs"], False)


def describe_files(files):
    return "snapshots: %s" % json.dumps(files)
