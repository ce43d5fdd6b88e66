"""End-to-end tests: what the shim must not change in the traced process.

  * file descriptors: a traced program sees exactly the descriptors it would see without the
    shim (libunwind's memory-check pipe is served without one, preload/intercept.c), in the
    program itself and in a traced child it execs;
  * frames without unwind info: libunwind's frame-pointer fallback, whose memory checks the
    shim answers, still yields the whole stack (samples/no_unwind_info.c);
  * disk full: a snapshot that does not fit leaves no temporary file behind, costs one
    warning, and the program goes on (a real tmpfs of 64 KiB in a private mount namespace);
  * `leakdiff run` forwards SIGTERM and SIGINT to the program.

Collected by tests/e2e/run.py.
"""

import json
import os
import signal
import subprocess

import run

# Prints the program's open descriptors as JSON, then the same for a child it execs.
LIST_FDS = r"""
import json, os, subprocess, sys
mine = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
child = subprocess.run([sys.executable, "-c",
                        "import os; print(sorted(int(f) for f in os.listdir('/proc/self/fd')))"],
                       capture_output=True, text=True, close_fds=True).stdout
print(json.dumps({"self": mine, "child": json.loads(child)}))
"""

# Keeps 100,000 small blocks (PYTHONMALLOC=malloc) so that no snapshot fits in 64 KiB, asks
# for one through the API, reports the return value, and goes on working.
FILL_DISK = r"""
import ctypes, os, sys
api = ctypes.CDLL(None).leakdiff_snapshot
api.argtypes = [ctypes.c_char_p]
api.restype = ctypes.c_int
kept = [str(i) * 3 for i in range(100000)]
rc = api(b"big")
print("snapshot returned", rc)
print("after:", sum(len(s) for s in kept))
"""


class Process(run.Case):
    def test_no_extra_file_descriptors(self):
        """A traced python3 and the traced child it execs see the same descriptors as they
        do untraced (before the fix libunwind's pipe added two to each)."""
        plain = run.run([run.PYTHON, "-c", LIST_FDS])
        self.assertEqual(plain.returncode, 0, run.describe(plain))
        out = self.mkdir("out")
        traced = run.run([run.PYTHON, "-c", LIST_FDS],
                         env=run.clean_env(LD_PRELOAD=run.SHIM, LEAKDIFF_OUTPUT=out))
        self.assertEqual(traced.returncode, 0, run.describe(traced))
        self.assertEqual(traced.stderr, "", run.describe(traced))
        self.assertEqual(json.loads(traced.stdout), json.loads(plain.stdout),
                         "descriptors differ (traced, untraced):" + run.describe(traced)
                         + run.describe(plain))
        # Both processes were traced: the parent's and the child's exit snapshots.
        snaps = self.snapshots_in(out, traced)
        self.assertEqual([s.label for s in snaps], ["exit", "exit"], snaps)
        self.assertEqual(len({s.pid for s in snaps}), 2, snaps)

    def test_frames_without_unwind_info_keep_the_whole_stack(self):
        """no_unwind_info.c has no unwind tables: libunwind walks its frames by the frame
        pointers and checks each read, and the stack still reads inner <- outer <- main."""
        binary = os.path.join(run.SAMPLE_BIN, "no_unwind_info")
        self.need(binary, "the sample")
        snap, _ = self.run_traced([binary])
        doc = self.top(snap, by="traceback")
        self.assertEqual(len(doc["groups"]), 1, doc["groups"])
        group = doc["groups"][0]
        self.assertEqual((group["bytes"], group["blocks"]), (300, 3))
        functions = [f["function"] for f in group["frames"]]
        self.assertEqual(functions[:3], ["inner", "outer", "main"], functions)

    def test_frame_pointer_mode_stops_at_a_wild_frame_pointer(self):
        """LEAKDIFF_UNWIND=fp keeps the whole frame-pointer chain of inner <- outer <- main and
        stops at with_rbp, which calls malloc with rbp = -16, -8 and an odd number: no crash
        (-16 used to wrap the bounds check around), all 7 blocks recorded. libunwind follows
        the unwind info and sees main behind with_rbp."""
        binary = os.path.join(run.SAMPLE_BIN, "wild_frame_pointer")
        self.need(binary, "the sample")
        for unwind, behind in (("fp", []), ("libunwind", ["main"])):
            env = dict(os.environ, LEAKDIFF_UNWIND=unwind)
            snap, _ = self.run_traced([binary], out=self.mkdir(unwind), env=env)
            groups = self.top(snap, by="traceback")["groups"]
            # with_rbp has symbols but no line info: it reads with_rbp+0x9.
            stacks = sorted(([f["function"].split("+")[0] for f in g["frames"]], g["bytes"],
                             g["blocks"])
                            for g in groups)
            if unwind == "fp":
                self.assertEqual(stacks[0][0][:3], ["inner", "outer", "main"], stacks)
                self.assertEqual(stacks[0][1:], (400, 4), stacks)
                self.assertEqual(stacks[1], (["with_rbp"], 300, 3), stacks)
                self.assertEqual(len(stacks), 2, stacks)
            else:
                self.assertEqual(len(stacks), 4, stacks)
                for frames, size, blocks in stacks[1:]:
                    self.assertEqual((frames[:2], size, blocks), (["with_rbp"] + behind, 100, 1),
                                     stacks)

    def test_programs_valgrind_runs(self):
        """The shim preloaded into programs valgrind runs (a traced test suite that runs
        valgrind itself): /proc/self/maps then lists valgrind's own memory, which valgrind
        unmaps while the exit scan runs. Scanned as roots, it faulted (SIGSEGV in the scan of
        a mapping listed a moment before) in 2 or 3 of these 8 runs, a different 2 or 3 each
        time. Valgrind's memory is not scanned: every run exits 0 with its exit snapshot."""
        if not os.access(run.VALGRIND, os.X_OK):
            self.skipTest("valgrind is not installed; `make deps` installs it")
        for sample in ("unwind_edges", "thread_leaks", "plugin", "many_leaks"):
            binary = os.path.join(run.SAMPLE_BIN, sample)
            self.need(binary, "the sample")
            for tool in (["--tool=none"], ["--tool=callgrind", "--callgrind-out-file=/dev/null"]):
                with self.subTest(sample=sample, tool=tool[0]):
                    out = self.mkdir("out-%s-%s" % (sample, tool[0][7:]))
                    snap, _ = self.run_traced([run.VALGRIND, "-q"] + tool + [binary], out=out)
                    if sample == "unwind_edges":
                        t = self.top(snap)["totals"]
                        self.assertEqual((t["bytes"], t["blocks"]), (992, 10), t)

    def test_disk_full(self):
        """On a full 64 KiB tmpfs: leakdiff_snapshot returns -ENOSPC, the program goes on and
        exits 0, one warning names the directory and the error, no temp file is left, and
        the exit snapshot (written once the interpreter has freed its objects) fits."""
        out = self.mkdir("small")
        script = os.path.join(self.tmp, "fill.py")
        with open(script, "w") as f:
            f.write(FILL_DISK)
        # A private mount namespace: the tmpfs disappears with the shell, even on failure.
        shell = ('mount -t tmpfs -o size=64k leakdiff-e2e "$1" || exit 99; '
                 'env LD_PRELOAD="$2" LEAKDIFF_OUTPUT="$1" PYTHONMALLOC=malloc "$3" "$4"; '
                 'echo "status $?"; ls -A "$1"; cp "$1"/*.snap "$5"')
        kept = self.mkdir("kept")
        proc = run.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell,
                        "sh", out, run.SHIM, run.PYTHON, script, kept])
        self.assertNotEqual(proc.returncode, 99, "cannot mount a tmpfs (needs root):"
                            + run.describe(proc))
        self.assertEqual(proc.returncode, 0, run.describe(proc))
        lines = proc.stdout.split("\n")
        enospc = -28
        self.assertEqual(lines[:3], ["snapshot returned %d" % enospc, "after: %d" % sum(
            len(str(i) * 3) for i in range(100000)), "status 0"], run.describe(proc))
        # Only the exit snapshot is in the directory: the failed one's temp file is gone.
        self.assertEqual(len(lines), 5, run.describe(proc))
        m = run.SNAP_NAME.match(lines[3])
        self.assertIsNotNone(m, run.describe(proc))
        self.assertEqual((m.group("seq"), m.group("label")), ("0002", "exit"), lines[3])
        self.leakdiff("info", os.path.join(kept, lines[3]))
        warnings = [l for l in proc.stderr.splitlines() if l.startswith("leakdiff:")]
        self.assertEqual(len(warnings), 1, run.describe(proc))
        self.assertIn(out, warnings[0])
        self.assertIn("ENOSPC", warnings[0])


# Waits for SIGTERM (exit 7 after saying so) or SIGINT (Python's default: KeyboardInterrupt,
# then death by SIGINT); the snapshot is written at its normal exit.
WAIT_FOR_SIGNAL = r"""
import os, signal, sys, time
def term(*_):
    os.write(1, b"got TERM\n")  # not print: the signal may land inside print("ready")
    sys.exit(7)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
time.sleep(60)
"""


class Forwarding(run.Case):
    def run_and_signal(self, sig):
        out = self.mkdir("out")
        p = subprocess.Popen([run.LEAKDIFF, "run", "-o", out, "--", run.PYTHON, "-c",
                              WAIT_FOR_SIGNAL], env=run.clean_env(), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        try:
            self.assertEqual(p.stdout.readline(), "ready\n")
            os.kill(p.pid, sig)  # to leakdiff only, as kill(1) would
            stdout, stderr = p.communicate(timeout=30)
        finally:
            run.kill_session(p.pid)
        return p.returncode, stdout, stderr, out

    def test_sigterm_reaches_the_program(self):
        """SIGTERM sent to `leakdiff run` reaches the program, whose handler exits 7:
        leakdiff exits 7 and reports the exit snapshot."""
        status, stdout, stderr, out = self.run_and_signal(signal.SIGTERM)
        self.assertEqual((status, stdout), (7, "got TERM\n"), stderr)
        self.assertEqual([s.label for s in self.snapshots_in(out)], ["exit"])

    def test_sigint_reaches_the_program(self):
        """SIGINT: Python's KeyboardInterrupt ends the program by SIGINT; leakdiff exits
        128+2 like a shell, and the interpreter's exit snapshot is there."""
        status, _, stderr, out = self.run_and_signal(signal.SIGINT)
        self.assertEqual(status, 128 + signal.SIGINT, stderr)
        self.assertIn("KeyboardInterrupt", stderr)
        self.assertEqual([s.label for s in self.snapshots_in(out)], ["exit"])
