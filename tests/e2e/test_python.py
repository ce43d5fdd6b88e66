"""End-to-end tests of python attribution and of the three Python stories (issue 4).

run.py collects this module; run it alone with `/usr/bin/python3 tests/e2e/run.py -k Python`.
The samples' own EXPECT lines (exact figures with pymalloc, the interpreter's default) are
checked by run.py's Samples tests; here the same samples run under `leakdiff run --python`
(PYTHONMALLOC=malloc), the weakref fix of py_cycle, the peak of py_bigint, the attribution
with and without python mode, and `leakdiff run`'s --python message and hint. Every figure
is exact and computed from the sizes the very same CPython reports (sys.getsizeof,
sys.int_info), not copied from a run.
"""

import json
import os
import re
import tempfile

import run
from run import PYTHON, SAMPLE_BIN, SAMPLE_SRC, describe

PYTHONMALLOC_NOTE = ("leakdiff: --python: PYTHONMALLOC=malloc for %s, so that pymalloc does "
                     "not hide objects of 512 B or less\n")
HINT = re.compile(r"^leakdiff: hint: (.+) runs CPython: add --python \(PYTHONMALLOC=malloc\), "
                  r"or pymalloc hides objects of 512 B or less$", re.M)


def sample(name):
    return os.path.join(SAMPLE_SRC, name)


class PythonCase(run.Case):
    def setUp(self):
        super().setUp()
        self.need(PYTHON, "Debian's python3")

    def measure(self, code):
        """Runs code in Debian's python3 (no shim, samples/ on sys.path); its stdout as JSON."""
        proc = run.run([PYTHON, "-c", "import json, sys\nsys.path.insert(0, %r)\n%s"
                        % (SAMPLE_SRC, code)])
        self.assertEqual(proc.returncode, 0, describe(proc))
        return json.loads(proc.stdout)

    def traced(self, cmd, *options, out=None, env=None):
        """`leakdiff run OPTIONS -o OUT -- CMD`: (snapshots of the main process by label,
        the CompletedProcess)."""
        out = out or tempfile.mkdtemp(prefix="out-", dir=self.tmp)
        proc = self.leakdiff("run", *options, "-o", out, "--", *cmd, env=env)
        files = self.snapshots_in(out, proc)
        by_label = {}
        for f in files:
            self.assertNotIn(f.label, by_label, "two snapshots labelled %s: %s"
                             % (f.label, [g.name for g in files]))
            by_label[f.label] = f.path
        return by_label, proc

    def sites(self, snap, *options):
        doc = self.json_of("top", "--format", "json", "-n", "0", *options, snap)
        self.assert_totals_add_up(doc, snap)
        return {k: (g["bytes"], g["blocks"]) for k, g in self.groups_by_key(doc).items()}

    def diff(self, old, new, *options):
        return self.json_of("diff", "--format", "json", "-n", "0", *options, old, new)


class PythonRun(PythonCase):
    """leakdiff run --python sets PYTHONMALLOC=malloc and says so; otherwise a hint."""

    SHOW = "import os; print(os.environ.get('PYTHONMALLOC'))"

    def test_python_sets_pythonmalloc(self):
        _, proc = self.traced([PYTHON, "-c", self.SHOW], "--python")
        self.assertEqual(proc.stdout.splitlines()[0], "malloc", describe(proc))
        self.assertEqual(proc.stderr.count(PYTHONMALLOC_NOTE % PYTHON), 1, describe(proc))
        self.assertIsNone(HINT.search(proc.stderr), describe(proc))
        # The user's own PYTHONMALLOC gives way to --python, which says so.
        _, proc = self.traced([PYTHON, "-c", self.SHOW], "--python",
                              env=run.clean_env(PYTHONMALLOC="pymalloc"))
        self.assertEqual(proc.stdout.splitlines()[0], "malloc", describe(proc))

    def test_hint_for_cpython_commands(self):
        _, proc = self.traced([PYTHON, "-c", self.SHOW])
        self.assertEqual(proc.stdout.splitlines()[0], "None", "no --python: untouched")
        self.assertEqual([m.group(1) for m in HINT.finditer(proc.stderr)], [PYTHON],
                         "one hint line:" + describe(proc))
        # A script whose #! line names python, found through $PATH.
        bindir = self.mkdir("bin")
        script = os.path.join(bindir, "tool")
        with open(script, "w") as f:
            f.write("#!%s\nprint('tool')\n" % PYTHON)
        os.chmod(script, 0o755)
        env = run.clean_env(PATH=bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
        _, proc = self.traced(["tool"], env=env)
        self.assertEqual([m.group(1) for m in HINT.finditer(proc.stderr)], ["tool"],
                         describe(proc))
        # No hint when PYTHONMALLOC is already chosen, nor for programs that are not CPython.
        _, proc = self.traced([PYTHON, "-c", "pass"], env=run.clean_env(PYTHONMALLOC="malloc"))
        self.assertNotIn("leakdiff: hint", proc.stderr, describe(proc))
        binary = os.path.join(SAMPLE_BIN, "simple_leak")
        self.need(binary, "sample binary")
        _, proc = self.traced([binary])
        self.assertNotIn("leakdiff: hint", proc.stderr, describe(proc))
        self.assertNotIn("PYTHONMALLOC", proc.stderr, describe(proc))


class PythonStories(PythonCase):
    """The three stories of the README, under `leakdiff run --python`."""

    def test_extension_leaks_attributed_to_its_functions(self):
        """py_leaky_ext.py: the lost PyMem_Malloc buffers and the bytes objects whose
        Py_DECREF was forgotten, each at the extension's own C function, exactly."""
        self.need(os.path.join(SAMPLE_BIN, "leaky_ext.so"), "the extension (make samples)")
        sizes = self.measure("print(json.dumps([sys.getsizeof(bytes(1000)), "
                             "len(bytes(range(256)) * 16)]))")
        want = {"leaky_checksum": (10 * sizes[1], 10), "leaky_remember": (5 * sizes[0], 5)}
        self.assertEqual(want, {"leaky_checksum": (40960, 10), "leaky_remember": (5165, 5)},
                         "the figures samples/leaky_ext.c and py_leaky_ext.py state")
        snaps, proc = self.traced([PYTHON, sample("py_leaky_ext.py")], "--python")
        self.assertEqual(proc.stderr.count(PYTHONMALLOC_NOTE % PYTHON), 1, describe(proc))
        text = proc.stderr
        for fn in want:
            self.assertRegex(text, r"#\d+ %s \(.*samples/leaky_ext\.c:\d+\): " % fn,
                             "the run's own report names the site:" + describe(proc))
        exit_snap = snaps["exit"]
        for options in ((), ("--python",)):  # automatic for a snapshot of CPython
            sites = self.sites(exit_snap, *options)
            for fn, figures in want.items():
                self.assertEqual(sites.get(fn), figures, "%s %s: %s" % (fn, options, sites))
        # Without python attribution the forgotten DECREF is CPython's: that is the point.
        plain = self.sites(exit_snap, "--no-python")
        self.assertNotIn("leaky_remember", plain)
        self.assertEqual(plain.get("PyBytes_FromStringAndSize"), want["leaky_remember"], plain)
        # The traceback from the site outward starts in the extension, then the interpreter.
        doc = self.json_of("top", "--format", "json", "-n", "0", "--by", "traceback", exit_snap)
        stacks = [g for g in doc["groups"] if g["frames"][0]["function"] == "leaky_remember"]
        self.assertEqual(sum(g["bytes"] for g in stacks), want["leaky_remember"][0])
        self.assertTrue(stacks and all(os.path.basename(g["frames"][1]["module"] or "")
                                       .startswith("python3") for g in stacks), stacks)

    def test_embedding_program_with_libpython(self):
        """build/samples/leaky_ext embeds CPython (libpython3.11.so): its fork child's
        snapshot is recognized as CPython's by its module map, and the same sites come out;
        with --no-python the bytes objects are libpython's PyBytes_FromStringAndSize."""
        binary = os.path.join(SAMPLE_BIN, "leaky_ext")
        self.need(binary, "sample binary")
        out = self.mkdir("out")
        proc = self.leakdiff("run", "-o", out, "--", binary)
        files = self.snapshots_in(out, proc)
        children = [f for f in files if f.pid != proc_pid(proc)]
        self.assertEqual(len(children), 1, describe(proc))
        sites = self.sites(children[0].path)
        self.assertEqual(sites.get("leaky_checksum"), (40960, 10), sites)
        self.assertEqual(sites.get("leaky_remember"), (5165, 5), sites)
        plain = self.sites(children[0].path, "--no-python")
        self.assertEqual(plain.get("PyBytes_FromStringAndSize"), (5165, 5), plain)
        info = self.json_of("info", "--format", "json", children[0].path)
        self.assertTrue(any("libpython3" in m.get("path", "") for m in info.get("modules", [])),
                        "libpython3.x is in the module map")

    def test_cycle_grows_and_weakref_fix_does_not(self):
        """py_cycle.py under --python: every request leaves its two Nodes and their payloads
        (the cycle collector is off); with --weakref nothing grows, with or without --python."""
        fig = self.measure("import py_cycle\n"
                           "print(json.dumps([py_cycle.REQUESTS, sys.getsizeof(py_cycle.Node()),"
                           " sys.getsizeof(bytes(py_cycle.PAYLOAD))]))")
        requests, node, payload = fig
        self.assertEqual((node, payload), (56, 1033), "the sizes samples/py_cycle.py states")
        snaps, proc = self.traced([PYTHON, sample("py_cycle.py")], "--python")
        doc = self.diff(snaps["before"], snaps["after"])
        t = doc["totals"]
        self.assertEqual((t["bytes_diff"], t["blocks_diff"]),
                         (2 * requests * (node + payload), 4 * requests),
                         "growth of %d leaky requests:%s" % (requests, describe(proc)))
        growing = [g for g in doc["groups"] if g["bytes_diff"]]
        self.assertTrue(growing and all(g["bytes_diff"] > 0 for g in growing), growing)
        self.assertIn("+%s" % human(2 * requests * (node + payload)),
                      self.leakdiff("diff", snaps["before"], snaps["after"]).stdout)
        for options in (("--python",), ()):
            snaps, proc = self.traced([PYTHON, sample("py_cycle.py"), "--weakref"], *options,
                                      )
            self.assertIn("weakref", proc.stdout)
            doc = self.diff(snaps["before"], snaps["after"])
            t = doc["totals"]
            self.assertEqual((t["bytes_diff"], t["blocks_diff"]), (0, 0),
                             "weakref fix %s:%s" % (options, describe(proc)))
            self.assertEqual([g for g in doc["groups"] if g["bytes_diff"] or g["blocks_diff"]],
                             [], "no group changes")

    def test_bigint_site_and_peak(self):
        """py_bigint.py under --python: the diff is the one block of the result at
        _PyLong_New, exactly; the snapshot's peak is what the program read through
        leakdiff_traced_memory and covers factor and product alive at once."""
        header, digit, bits, squarings = self.measure(
            "import py_bigint\n"
            "n = py_bigint.SQUARINGS\n"
            "print(json.dumps([sys.getsizeof(1) - sys.int_info.sizeof_digit,"
            " sys.int_info.sizeof_digit, sys.int_info.bits_per_digit, n]))")

        def digits(k):  # digits of 3 ** 2 ** k once normalized
            return -(-(3 ** 2 ** k).bit_length() // bits)

        product = header + digit * 2 * digits(squarings - 1)  # k_mul: asize + bsize digits
        factor = header + digit * 2 * digits(squarings - 2)
        self.assertEqual((product, factor), (443216, 221624), "the figures py_bigint.py states")
        snaps, proc = self.traced([PYTHON, sample("py_bigint.py")], "--python")
        doc = self.diff(snaps["before"], snaps["after"])
        # What grew; the interpreter sometimes frees a small cache entry meanwhile
        # (e.g. -63 B in PyObject_GetAttrString, about 1 run in 6), which is not growth.
        growing = {g["key"]: (g["bytes_diff"], g["blocks_diff"])
                   for g in doc["groups"] if g["bytes_diff"] > 0 or g["blocks_diff"] > 0}
        self.assertEqual(growing, {"_PyLong_New": (product, 1)}, describe(proc))
        after = self.json_of("info", "--format", "json", snaps["after"])["totals"]
        before = self.json_of("info", "--format", "json", snaps["before"])["totals"]
        m = re.search(r"traced memory (\d+) B, peak (\d+) B", proc.stdout)
        self.assertIsNotNone(m, describe(proc))
        self.assertEqual(after["peak_bytes"], int(m.group(2)),
                         "the snapshot's peak is the one the program read just before it")
        self.assertGreaterEqual(after["peak_bytes"] - before["bytes"], factor + product)
        self.assertGreaterEqual(after["peak_bytes"] - after["bytes"], factor)
        top = self.leakdiff("top", "-n", "3", snaps["after"]).stdout
        self.assertIn("peak %s" % human(after["peak_bytes"]), top)
        self.assertRegex(top, r"#\d+ _PyLong_New \(python3\.11\): ")


def proc_pid(proc):
    """The pid of the program `leakdiff run` started (from its "exit snapshot" line)."""
    m = re.search(r"^leakdiff: exit snapshot: .*\.(\d+)\.\d{4,}\.exit\.snap$", proc.stderr, re.M)
    if not m:
        raise AssertionError("no exit snapshot line:" + describe(proc))
    return int(m.group(1))


def human(n):
    """Sizes as the text reports print them (lkd_human_size): exact below 1 KiB, else one
    decimal of KiB, MiB or GiB."""
    if n < 1024:
        return "%d B" % n
    v, units = n / 1024.0, ["KiB", "MiB", "GiB"]
    while v >= 1023.95 and len(units) > 1:
        v /= 1024
        units.pop(0)
    return "%.1f %s" % (v, units[0])
