"""End-to-end test: CPython's own regression tests for threads, fork, subprocess, os and
signals (Debian's libpython3.11-testsuite) pass under the shim as they pass without it.

Both runs go at once, each `python3 -m test -j2 -w` (failures rerun once, as CPython's CI
does, so one slow moment on a shared machine is not a verdict). The shimmed run uses
PYTHONMALLOC=malloc, so every allocation of the interpreter and of the hundreds of
processes the tests fork and exec goes through the shim, and LEAKDIFF_INTERVAL=1, so
snapshots are written while threads start and exit and processes fork. The modules failing
under the shim must be a subset of those failing without it (on a healthy machine: none),
and the snapshots written must be readable. Collected by tests/e2e/run.py.
"""

import os
import re
import subprocess
import time

import run

MODULES = ["test_fork1", "test_threading", "test_subprocess", "test_os", "test_signal"]
TESTSUITE = "/usr/lib/python3.11/test/regrtest.py"
RESULT = re.compile(r"^Tests result: (.*)$", re.M)
# "2 tests failed:\n    test_a test_b" (possibly wrapped) in regrtest's final summary; a
# module whose worker died is "omitted", one that left threads or files behind "altered the
# execution environment": all three count as not passing.
NOT_PASSED = re.compile(r"tests? (?:failed(?: again)?|omitted|altered the execution "
                        r"environment):\n((?:    .*\n)+)")


def failed_modules(output):
    """Modules the final summary (after the rerun, when there was one) does not pass."""
    summary = output[output.rfind("== Tests result"):]
    return {m for block in NOT_PASSED.findall(summary) for m in block.split()}


class CPython(run.Case):
    def test_regression_tests_pass_as_without_the_shim(self):
        if not os.path.exists(TESTSUITE):
            self.fail("%s is missing: `make deps` installs libpython3.11-testsuite" % TESTSUITE)
        out = self.mkdir("out")
        cmd = [run.PYTHON, "-m", "test", "-j2", "-w"] + MODULES
        shimmed = run.clean_env(LD_PRELOAD=run.SHIM, LEAKDIFF_OUTPUT=out, LEAKDIFF_INTERVAL="1",
                                PYTHONMALLOC="malloc")
        procs = {}
        for name, env in (("plain", run.clean_env()), ("shim", shimmed)):
            procs[name] = subprocess.Popen(cmd, env=env, cwd=self.tmp, text=True,
                                           errors="backslashreplace", start_new_session=True,
                                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT)
        results = {}
        deadline = time.monotonic() + run.TIMEOUT
        for name, p in procs.items():
            try:
                text, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                for q in procs.values():
                    run.kill_session(q.pid)
                self.fail("regrtest (%s) did not finish in %d s" % (name, run.TIMEOUT))
            run.kill_session(p.pid)
            results[name] = (p.returncode, text)
            with open(os.path.join(self.tmp, name + ".log"), "w") as f:
                f.write(text)

        def verdict(name):
            status, text = results[name]
            m = RESULT.findall(text)
            return status, (m[-1] if m else None), failed_modules(text)

        plain, shim = verdict("plain"), verdict("shim")
        self.assertIsNotNone(plain[1], "no result line without the shim; see plain.log")
        self.assertIsNotNone(shim[1], "no result line under the shim; see shim.log")
        self.assertLessEqual(shim[2], plain[2],
                             "modules failing only under the shim (logs kept): %s\n%s"
                             % (sorted(shim[2] - plain[2]), results["shim"][1][-3000:]))
        if plain[0] == 0:
            self.assertEqual(shim[0], 0, "regrtest failed only under the shim: %s\n%s"
                             % (shim[1], results["shim"][1][-3000:]))

        # The run wrote snapshots (exit and interval ones, from many processes); a sample of
        # them, including the main process's exit snapshot, reads cleanly.
        # writing=True: a process regrtest SIGKILLs (a timed-out worker) may leave the temp
        # file of a snapshot it was writing; the snapshots themselves must all be whole.
        snaps = self.snapshots_in(out, writing=True)
        self.assertGreater(len(snaps), 50, "too few snapshots: %d" % len(snaps))
        self.assertIn("interval", {s.label for s in snaps})
        main = [s for s in snaps if s.pid == procs["shim"].pid]
        self.assertEqual([s.label for s in main if s.label == "exit"], ["exit"],
                         "the regrtest process's exit snapshot")
        for s in main[-1:] + snaps[::max(1, len(snaps) // 10)]:
            self.leakdiff("info", s.path)
