"""End-to-end tests of the CI leak gate (issue 5): `leakdiff run --check` and `leakdiff check`.

The real shim writes the verdicts; the figures the gate reports must be exactly the exit
snapshot's (`leakdiff info`), the samples' EXPECT lines (reach_scenarios), or what a program
built here leaks by construction. Covered: clean programs pass with nothing configured
(/bin/true, python3 -c pass, C and C++ samples), exit statuses (23, --leak-exitcode, the
command's own status passing through, 125 when there is nothing to check), a process tree
(each process judged on its own), the three check modes (leaks, growth, trend) on runs of
growing_leak, suppressions (used counts, unused warnings, malformed lines stop the command
before it runs), baselines, every output format's shape (SARIF fields, JUnit XML, GitHub
annotations), snapshots without verdicts, and usage errors.
"""

import json
import os
import re
import xml.etree.ElementTree as ET

import run

REACH = os.path.join(run.SAMPLE_BIN, "reach_scenarios")
GROWING = os.path.join(run.SAMPLE_BIN, "growing_leak")
API = os.path.join(run.SAMPLE_BIN, "api_usage")
CLEAN_SAMPLES = ("no_leak", "simple_leak", "cpp_leak")

SUMMARY = re.compile(r"^SUMMARY: leakdiff: (\d+) byte\(s\) leaked in (\d+) allocation\(s\)\.$",
                     re.M)

# A program that leaks by construction: parent_leak() drops 100 bytes; with a second
# argument it first forks a child that drops 200 bytes in child_leak(). Its exit status is
# its first argument. The stack is scrubbed afterwards, so no dead frame keeps a pointer.
TREE_LEAK_C = r"""
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#define SITE __attribute__((noipa))
SITE static void parent_leak(void) { void *volatile p = malloc(100); p = 0; (void)p; }
SITE static void child_leak(void) { void *volatile p = malloc(200); p = 0; (void)p; }
SITE static void scrub(void) { volatile char b[65536]; memset((char *)b, 0, sizeof b); }
int main(int argc, char **argv)
{
    if (argc > 2) {
        pid_t pid = fork();
        if (pid == 0) {
            child_leak();
            scrub();
            exit(0);
        }
        waitpid(pid, NULL, 0);
    }
    parent_leak();
    scrub();
    return argc > 1 ? atoi(argv[1]) : 0;
}
"""


class Check(run.Case):
    """leakdiff run --check and leakdiff check on real programs."""

    # ---- helpers --------------------------------------------------------------------------

    def tree_leak(self):
        """Builds TREE_LEAK_C in the test's directory; returns the binary."""
        src = os.path.join(self.tmp, "tree_leak.c")
        exe = os.path.join(self.tmp, "tree_leak")
        with open(src, "w") as f:
            f.write(TREE_LEAK_C)
        proc = run.run(["cc", "-O0", "-g", "-fno-omit-frame-pointer", "-o", exe, src])
        self.assertEqual(proc.returncode, 0, "cannot build tree_leak:" + run.describe(proc))
        return exe

    def run_check(self, cmd, *opts, expect, out=None, env=None):
        """`leakdiff run --check OPTS -o OUT -- CMD`; asserts the status; returns the
        CompletedProcess and the output directory."""
        out = out or self.mkdir("out")
        proc = self.leakdiff("run", "--check", *opts, "-o", out, "--", *cmd, expect=expect,
                             env=env)
        return proc, out

    def check_json(self, *args, expect):
        proc = self.leakdiff("check", "--format", "json", *args, expect=expect)
        try:
            doc = json.loads(proc.stdout)
        except ValueError as e:
            self.fail("not JSON (%s):%s" % (e, run.describe(proc)))
        self.assertEqual(doc["version"], 1)
        self.assertEqual(doc["command"], "check")
        return doc

    def snap_of(self, cmd, name="out", env=None, status=0):
        path, _ = self.run_traced(cmd, out=self.mkdir(name), env=env, status=status)
        return path

    def summaries(self, text):
        return [(int(b), int(n)) for b, n in SUMMARY.findall(text)]

    def expect_leaks(self, doc, direct, indirect):
        """doc's "leaks" equal direct and indirect (bytes, blocks)."""
        got = doc["leaks"]
        self.assertEqual(((got["direct_bytes"], got["direct_blocks"]),
                          (got["indirect_bytes"], got["indirect_blocks"])), (direct, indirect))
        self.assertEqual((got["bytes"], got["blocks"]),
                         (direct[0] + indirect[0], direct[1] + indirect[1]))
        self.assertEqual(sum(g["bytes"] for g in doc["groups"]), got["bytes"])

    # ---- run --check ----------------------------------------------------------------------

    def test_clean_programs_pass_with_nothing_configured(self):
        """/bin/true, python3 -c pass and the samples that leak nothing pass run --check."""
        cmds = [["/bin/true"], [run.PYTHON, "-c", "pass"]]
        cmds += [[os.path.join(run.SAMPLE_BIN, s)] for s in CLEAN_SAMPLES]
        for i, cmd in enumerate(cmds):
            self.need(cmd[0], "program")
            proc, _ = self.run_check(cmd, expect=0, out=self.mkdir("o%d" % i))
            self.assertEqual(self.summaries(proc.stderr), [(0, 0)], run.describe(proc))
            self.assertIn("leakdiff: no leaks in process ", proc.stderr)

    def test_leaks_exit_23_with_an_lsan_report(self):
        self.need(REACH, "sample binary")
        exp = run.Expect(os.path.join(run.SAMPLE_SRC, "reach_scenarios.c")).scopes["exit"]
        proc, out = self.run_check([REACH], expect=23)
        leaked = (exp.direct[0] + exp.indirect[0], exp.direct[1] + exp.indirect[1])
        self.assertEqual(self.summaries(proc.stderr), [leaked], run.describe(proc))
        snap = self.only_snapshot(out, proc)
        pid = int(run.SNAP_NAME.match(os.path.basename(snap)).group("pid"))
        self.assertIn("==%d==ERROR: leakdiff: detected memory leaks in process %d (%s)"
                      % (pid, pid, os.path.realpath(REACH)), proc.stderr)
        for kind, fn in (("Direct", "drop"), ("Direct", "self_pointer"), ("Indirect", "lost_tree"),
                         ("Direct", "lost_tree"), ("Indirect", "lost_cycle")):
            self.assertRegex(proc.stderr, r"%s leak of \d+ byte\(s\) in \d+ object\(s\) allocated "
                             r"from:\n    #0 0x[0-9a-f]+ in %s " % (kind, fn))
        self.assertIn("leakdiff: FAIL: %d byte(s) leaked, more than --max-leaked 0" % leaked[0],
                      proc.stderr)
        # the same figures from `leakdiff check` on the snapshot, and the snapshot's own
        doc = self.check_json(snap, expect=1)
        self.expect_leaks(doc, exp.direct, exp.indirect)
        v = self.verdicts(snap)
        self.assertEqual(doc["leaks"]["direct_bytes"], v["direct_bytes"])
        self.assertEqual(doc["leaks"]["indirect_blocks"], v["indirect_blocks"])
        self.assertFalse(doc["passed"])
        # the limit is inclusive
        self.leakdiff("check", "--max-leaked", str(leaked[0]), snap, expect=0)
        self.leakdiff("check", "--max-leaked", str(leaked[0] - 1), snap, expect=1)
        self.run_check([REACH], "--max-leaked", str(leaked[0]), expect=0, out=self.mkdir("o2"))
        self.run_check([REACH], "--leak-exitcode", "9", expect=9, out=self.mkdir("o3"))

    def test_status_passes_through(self):
        exe = self.tree_leak()
        proc, _ = self.run_check([exe, "5"], expect=5)
        self.assertEqual(self.summaries(proc.stderr), [(100, 1)], run.describe(proc))
        proc, _ = self.run_check([exe, "0"], expect=23, out=self.mkdir("o2"))
        self.assertRegex(proc.stderr, r"Direct leak of 100 byte\(s\) in 1 object\(s\) allocated "
                         r"from:\n    #0 0x[0-9a-f]+ in parent_leak ")
        self.run_check(["/bin/false"], expect=1, out=self.mkdir("o3"))

    def test_process_tree_each_process_judged(self):
        exe = self.tree_leak()
        proc, out = self.run_check([exe, "0", "fork"], "--format", "json", expect=23)
        files = self.snapshots_in(out, proc)
        self.assertEqual(len(files), 2, run.describe(proc))
        doc = json.loads(proc.stdout)
        by_pid = {p["pid"]: p for p in doc["processes"]}
        self.assertEqual(sorted(by_pid), sorted(f.pid for f in files))
        leaks = sorted((p["leaks"]["direct_bytes"], p["leaks"]["direct_blocks"])
                       for p in doc["processes"])
        self.assertEqual(leaks, [(100, 1), (200, 1)])
        self.assertEqual(doc["leaks"]["bytes"], 300)
        self.assertFalse(doc["passed"])
        sites = sorted((g["frames"][0]["function"], g["pid"]) for g in doc["groups"])
        self.assertEqual([s[0] for s in sites], ["child_leak", "parent_leak"])
        # text names each process
        proc, out = self.run_check([exe, "0", "fork"], expect=23, out=self.mkdir("o2"))
        for f in self.snapshots_in(out, proc):
            self.assertIn("==%d==ERROR: leakdiff: detected memory leaks in process %d"
                          % (f.pid, f.pid), proc.stderr)
        self.assertEqual(sorted(self.summaries(proc.stderr)), [(100, 1), (200, 1)])
        self.assertIn("leakdiff check: FAILED: 2 of 2 processes leaked beyond the limit",
                      proc.stderr)
        # a limit that both meet
        self.run_check([exe, "0", "fork"], "--max-leaked", "200", expect=0, out=self.mkdir("o3"))

    def test_nothing_to_check(self):
        """No exit snapshot (LEAKDIFF_AT_EXIT=0) or no verdicts: 125, with the reason."""
        self.need(REACH, "sample binary")
        proc, _ = self.run_check([REACH], expect=125,
                                 env=run.clean_env(LEAKDIFF_AT_EXIT="0"))
        self.assertIn("nothing to check", proc.stderr)
        proc, _ = self.run_check([REACH], expect=125, out=self.mkdir("o2"),
                                 env=run.clean_env(LEAKDIFF_REACHABILITY="0"))
        self.assertIn("no leak verdicts", proc.stderr)
        self.assertIn("LEAKDIFF_REACHABILITY=0", proc.stderr)

    # ---- leakdiff check: modes ---------------------------------------------------------------

    def test_three_modes_on_growing_leak(self):
        """growing_leak keeps its last log line (a global points to it) and drops the others:
        R requests leak 17 * (R - 1) bytes in R - 1 blocks, all from log_request."""
        self.need(GROWING, "sample binary")
        snaps = [self.snap_of([GROWING, str(r)], name="r%d" % r) for r in (10, 20, 30)]
        for r, snap in zip((10, 20, 30), snaps):
            doc = self.check_json(snap, expect=1)
            self.expect_leaks(doc, (17 * (r - 1), r - 1), (0, 0))
            self.assertEqual([g["key"] for g in doc["groups"]], ["log_request"])
            self.assertEqual(doc["mode"], "leaks")
        # two snapshots: growth of leaked memory
        doc = self.check_json(snaps[0], snaps[1], expect=1)
        self.assertEqual(doc["mode"], "growth")
        proc = doc["processes"][0]
        self.assertEqual((proc["measure"], proc["measured"], proc["growth"]), ("leaked", 170, 170))
        self.assertEqual([(g["key"], g["kind"], g["growth"]) for g in doc["groups"]],
                         [("log_request", "growth", 170)])
        self.leakdiff("check", "--max-growth", "170", snaps[0], snaps[1], expect=0)
        self.leakdiff("check", "--max-growth", "169", snaps[0], snaps[1], expect=1)
        # three: steady growth in every interval
        doc = self.check_json(*snaps, expect=1)
        self.assertEqual(doc["mode"], "trend")
        g = doc["groups"][0]
        self.assertEqual((g["key"], g["series"], g["growth"], g["failing"]),
                         ("log_request", [153, 323, 493], 170, True))
        self.leakdiff("check", "--max-growth", "170", *snaps, expect=0)
        # the same snapshot three times: no growth
        self.leakdiff("check", snaps[0], snaps[0], snaps[0], expect=0)
        # --each: every snapshot on its own
        doc = self.check_json("--each", *snaps, expect=1)
        self.assertEqual([p["measured"] for p in doc["processes"]], [153, 323, 493])

    def test_growth_of_live_memory_between_api_snapshots(self):
        """Snapshots taken while the program runs have no verdicts: growth is of live memory
        (api_usage keeps 25 x 40 B between "before" and "after")."""
        self.need(API, "sample binary")
        out = self.mkdir("out")
        self.leakdiff("run", "-o", out, "--", API)
        files = {f.label: f.path for f in self.snapshots_in(out)}
        doc = self.check_json(files["before"], files["after"], expect=1)
        p = doc["processes"][0]
        self.assertEqual((p["measure"], p["measured"]), ("live", 1000))
        self.assertEqual([(g["key"], g["bytes_diff"], g["blocks_diff"]) for g in doc["groups"]],
                         [("leak_between", 1000, 25)])
        self.leakdiff("check", "--max-growth", "1000", files["before"], files["after"], expect=0)
        # one of them alone cannot be checked for leaks
        proc = self.leakdiff("check", files["before"], expect=3)
        self.assertIn("not an exit snapshot (label 'before')", proc.stderr)

    # ---- suppressions and baseline ---------------------------------------------------------

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_suppressions(self):
        self.need(REACH, "sample binary")
        snap = self.snap_of([REACH])
        full = self.check_json(snap, expect=1)["leaks"]
        supp = self.write("app.supp", "# the tree is known\nleak:lost_tree\n\n"
                          "leak:^dead_frame$\nleak:no_such_function\n")
        proc = self.leakdiff("check", "--format", "json", "--suppressions", supp, snap, expect=1)
        doc = json.loads(proc.stdout)
        used = {(s["pattern"], s["line"]): (s["used"], s["blocks"], s["bytes"])
                for s in doc["suppressed"] if not s["builtin"]}
        # lost_tree: the root (110 B, direct) and its two children (111 + 112 B, indirect)
        self.assertEqual(used, {("lost_tree", 2): (True, 3, 333), ("^dead_frame$", 4): (True, 1, 115),
                                ("no_such_function", 5): (False, 0, 0)})
        self.assertEqual(doc["leaks"]["bytes"], full["bytes"] - 333 - 115)
        self.assertEqual(doc["leaks"]["suppressed_bytes"], 448)
        self.assertIn("leakdiff: warning: %s:5: suppression leak:no_such_function matched no leak"
                      % supp, proc.stderr)
        # text: LeakSanitizer's table
        proc = self.leakdiff("check", "--suppressions", supp, snap, expect=1)
        self.assertRegex(proc.stdout, r"Suppressions used:\n  count      bytes template\n"
                         r"      3        333 leak:lost_tree \(.*app.supp:2\)\n")
        # everything suppressed: pass
        everything = self.write("all.supp", "leak:main\n")
        self.leakdiff("check", "--suppressions", everything, snap, expect=0)
        self.run_check([REACH], "--suppressions", everything, expect=0)

    def test_malformed_suppressions_stop_before_the_command_runs(self):
        bad = self.write("bad.supp", "leak:fine\n# ok\nrace:not_for_leaks\n")
        self.need(REACH, "sample binary")
        snap = self.snap_of([REACH])
        proc = self.leakdiff("check", "--suppressions", bad, snap, expect=2)
        self.assertEqual(proc.stderr.strip(),
                         "leakdiff: %s:3: unknown suppression type 'race' (leakdiff knows "
                         "leak:PATTERN and leak_site:PATTERN)" % bad)
        out = self.mkdir("not_run")
        proc = self.leakdiff("run", "--check", "--suppressions", bad, "-o", out, "--", REACH,
                             expect=2)
        self.assertEqual(os.listdir(out), [], "the command ran:" + run.describe(proc))
        proc = self.leakdiff("check", "--suppressions", os.path.join(self.tmp, "missing"), snap,
                             expect=2)
        self.assertIn("cannot read suppressions", proc.stderr)

    def test_builtin_list_shown_and_switched_off(self):
        proc = self.leakdiff("check", "--print-default-suppressions")
        rules = [l for l in proc.stdout.splitlines() if l and not l.startswith("#")]
        self.assertTrue(rules and all(re.match(r"^leak(_site)?:\S", l) for l in rules), rules)
        path = self.write("defaults.supp", proc.stdout)
        self.need(REACH, "sample binary")
        snap = self.snap_of([REACH])
        a = self.check_json(snap, expect=1)["leaks"]
        b = self.check_json("--no-default-suppressions", "--suppressions", path, snap,
                            expect=1)["leaks"]
        self.assertEqual(a, b)

    def test_baseline(self):
        self.need(GROWING, "sample binary")
        small = self.snap_of([GROWING, "10"], name="small")
        large = self.snap_of([GROWING, "20"], name="large")
        # the baseline explains everything: pass
        doc = self.check_json("--baseline", large, small, expect=0)
        self.assertEqual([(g["key"], g["baseline"], g["failing"]) for g in doc["groups"]],
                         [("log_request", "known", False)])
        self.assertEqual(doc["processes"][0]["measured"], 0)
        self.assertEqual(doc["baseline"]["path"], large)
        # larger than the baseline: only the excess counts
        doc = self.check_json("--baseline", small, large, expect=1)
        self.assertEqual([(g["key"], g["baseline"], g["baseline_bytes"], g["bytes"])
                          for g in doc["groups"]], [("log_request", "larger", 153, 323)])
        self.assertEqual(doc["processes"][0]["measured"], 170)
        self.leakdiff("check", "--baseline", small, "--max-leaked", "170", large, expect=0)
        # a baseline of another program: every leak is new
        self.need(REACH, "sample binary")
        doc = self.check_json("--baseline", self.snap_of([REACH], name="reach"), small, expect=1)
        self.assertEqual([g["baseline"] for g in doc["groups"]], ["new"])
        # run --check with a baseline
        self.run_check([GROWING, "10"], "--baseline", large, expect=0)
        self.run_check([GROWING, "30"], "--baseline", large, expect=23, out=self.mkdir("o2"))

    # ---- formats --------------------------------------------------------------------------

    def test_sarif(self):
        self.need(REACH, "sample binary")
        snap = self.snap_of([REACH])
        proc = self.leakdiff("check", "--format", "sarif", snap, expect=1)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["version"], "2.1.0")
        self.assertIn("sarif", doc["$schema"])
        (r,) = doc["runs"]
        self.assertEqual(r["tool"]["driver"]["name"], "leakdiff")
        rule_ids = [x["id"] for x in r["tool"]["driver"]["rules"]]
        groups = self.check_json(snap, expect=1)["groups"]
        self.assertEqual(len(r["results"]), len(groups))
        cwd = self.json_of("info", "--format", "json", snap)["process"]["cwd"]
        src = os.path.join(run.SAMPLE_SRC, "reach_scenarios.c")
        for res, g in zip(r["results"], groups):
            self.assertEqual(res["level"], "error")
            self.assertEqual(res["ruleId"], "leakdiff/%s-leak" % g["kind"])
            self.assertEqual(rule_ids[res["ruleIndex"]], res["ruleId"])
            self.assertTrue(res["message"]["text"].startswith(
                "%s leak of %d byte(s) in %d object(s) allocated from %s"
                % (g["kind"].capitalize(), g["bytes"], g["blocks"], g["key"])), res)
            (loc,) = res["locations"]
            phys = loc["physicalLocation"]
            self.assertEqual(phys["artifactLocation"]["uri"], os.path.relpath(src, cwd))
            self.assertEqual(phys["artifactLocation"]["uriBaseId"], "SRCROOT")
            self.assertEqual(phys["region"]["startLine"], g["frames"][0]["line"])
            self.assertEqual(res["properties"]["bytes"], g["bytes"])
        self.assertEqual(r["originalUriBaseIds"]["SRCROOT"]["uri"], "file://%s/" % cwd)
        # clean: no results
        clean = self.snap_of([os.path.join(run.SAMPLE_BIN, "no_leak")], name="clean")
        doc = json.loads(self.leakdiff("check", "--format", "sarif", clean).stdout)
        self.assertEqual(doc["runs"][0]["results"], [])

    def test_junit(self):
        exe = self.tree_leak()
        out = self.mkdir("out")
        proc, _ = self.run_check([exe, "0", "fork"], "--format", "junit", "--report-file",
                                 os.path.join(self.tmp, "junit.xml"), expect=23, out=out)
        self.assertEqual(proc.stdout, "")
        root = ET.parse(os.path.join(self.tmp, "junit.xml")).getroot()
        self.assertEqual((root.tag, root.get("tests"), root.get("failures")),
                         ("testsuites", "2", "2"))
        cases = root.findall("./testsuite/testcase")
        self.assertEqual(len(cases), 2)
        for c in cases:
            self.assertRegex(c.get("name"), r"^tree_leak \(pid \d+\)$")
            failure = c.find("failure")
            self.assertIsNotNone(failure)
            self.assertRegex(failure.get("message"), r"^[12]00 byte\(s\) leaked in 1 allocation")
            self.assertIn("SUMMARY: leakdiff:", failure.text)
        snap = self.snap_of([os.path.join(run.SAMPLE_BIN, "no_leak")], name="clean")
        root = ET.fromstring(self.leakdiff("check", "--format", "junit", snap).stdout)
        self.assertEqual(root.get("failures"), "0")
        self.assertIsNone(root.find("./testsuite/testcase/failure"))

    def test_github_annotations(self):
        self.need(REACH, "sample binary")
        snap = self.snap_of([REACH])
        groups = self.check_json(snap, expect=1)["groups"]
        proc = self.leakdiff("check", "--format", "github", snap, expect=1)
        cwd = self.json_of("info", "--format", "json", snap)["process"]["cwd"]
        rel = os.path.relpath(os.path.join(run.SAMPLE_SRC, "reach_scenarios.c"), cwd)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("::")]
        self.assertEqual(len(lines), len(groups) + 1)
        for line, g in zip(lines, groups):
            self.assertTrue(line.startswith("::error file=%s,line=%d,title=leakdiff %s leak::%s "
                                            "leak of %d byte(s)"
                                            % (rel, g["frames"][0]["line"], g["kind"],
                                               g["kind"].capitalize(), g["bytes"])), line)
            self.assertIn("%0A    #0 0x", line)
        self.assertTrue(lines[-1].startswith("::error title=leakdiff check failed::process "))
        self.assertEqual(len(self.summaries(proc.stdout)), 1)

    # ---- bad input and usage --------------------------------------------------------------

    def test_no_verdicts(self):
        self.need(REACH, "sample binary")
        snap = self.snap_of([REACH], env=run.clean_env(LEAKDIFF_REACHABILITY="0"))
        proc = self.leakdiff("check", snap, expect=3)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("%s: no leak verdicts in this exit snapshot" % snap, proc.stderr)
        self.assertIn("without LEAKDIFF_REACHABILITY=0", proc.stderr)
        good = self.snap_of([REACH], name="good")
        self.leakdiff("check", "--baseline", snap, good, expect=3)
        out = self.mkdir("not_run")  # a useless baseline stops run --check before CMD runs
        proc = self.leakdiff("run", "--check", "--baseline", snap, "-o", out, "--", REACH,
                             expect=3)
        self.assertEqual(os.listdir(out), [], "the command ran:" + run.describe(proc))
        self.assertIn("no leak verdicts", proc.stderr)
        # growth needs no verdicts: live memory
        doc = self.check_json(snap, snap, expect=0)
        self.assertEqual(doc["processes"][0]["measure"], "live")

    def test_usage_errors(self):
        self.need(REACH, "sample binary")
        snap = self.snap_of([REACH])
        cases = [
            (["check"], "missing argument"),
            (["check", "--baseline", snap, snap, snap], "--baseline compares one exit snapshot"),
            (["check", "--max-leaked", "lots", snap], "bad --max-leaked 'lots'"),
            (["check", "--format", "collapsed", snap], "not a check format"),
            (["check", "--cumulative", snap], "--cumulative does not go with a check"),
            (["check", "--leak-exitcode", "3", snap], "--leak-exitcode is an option of run"),
            (["top", "--max-leaked", "1", snap], "--max-leaked is an option of check"),
            (["top", "--format", "sarif", snap], "--format sarif is for check"),
            (["run", "--max-leaked", "1", "--", "/bin/true"], "--max-leaked needs --check"),
            (["run", "--check", "--leak-exitcode", "0", "--", "/bin/true"],
             "bad --leak-exitcode '0'"),
            (["check", "--frobnicate", snap], "unknown option '--frobnicate'"),
        ]
        for args, why in cases:
            proc = self.leakdiff(*args, expect=2)
            self.assertIn(why, proc.stderr.splitlines()[0], run.describe(proc))
        proc = self.leakdiff("check", os.path.join(self.tmp, "missing.snap"), expect=3)
        self.assertIn("missing.snap", proc.stderr)
