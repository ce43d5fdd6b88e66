"""End-to-end tests of the default mode's unwinder (preload/cfi.c).

  * samples/unwind_edges.c, built as distributions build code (-O2, no frame pointers):
    the tracebacks of plain rsp-based frames, an rbp-based (alloca) frame, a recursion cut
    at LEAKDIFF_DEPTH, a thread, and the cases left to libunwind (signal handlers, an
    alternate signal stack, a makecontext stack) are whole;
  * the check build (build/check/libleakdiff.so) compares every stack the unwinder gives
    with libunwind's unw_backtrace at the same point, under python3, sqlite3 and samples:
    no stack may differ.

Collected by tests/e2e/run.py.
"""

import os
import re

import run

CHECK_SHIM = os.path.join(run.BUILD, "check", "libleakdiff.so")
CHECK_LINE = re.compile(r"leakdiff cfi check: (\d+) stacks, (\d+) differ, (\d+) same as the "
                        r"last, (\d+) left to libunwind, (\d+) from the memo")


class Unwind(run.Case):
    def tracebacks(self, binary):
        self.need(binary, "the sample")
        snap, _ = self.run_traced([binary])
        doc = self.top(snap, by="traceback")
        return {g["frames"][0]["function"]: [f["function"] for f in g["frames"]]
                for g in doc["groups"]}

    def test_edges_keep_their_whole_stacks(self):
        """Each block of unwind_edges has the stack its code says, to main or the thread's
        start; the recursion 100 deep is cut at 64 frames, all of them `deep`."""
        tb = self.tracebacks(os.path.join(run.SAMPLE_BIN, "unwind_edges"))
        start = ["__libc_start_call_main", "__libc_start_main_impl"]
        self.assertEqual(tb["leaf"][:6], ["leaf", "middle", "outer", "main"] + start, tb["leaf"])
        self.assertEqual(tb["with_alloca"][:4], ["with_alloca", "main"] + start,
                         tb["with_alloca"])
        self.assertEqual(tb["deep"], ["deep"] * 64, tb["deep"])
        self.assertEqual(tb["in_thread"][:2], ["in_thread", "start_thread"], tb["in_thread"])
        for handler in ("on_usr1", "on_usr2"):  # through the signal frame, by libunwind
            self.assertEqual(tb[handler][0], handler, tb[handler])
            self.assertIn("main", tb[handler], tb[handler])
        self.assertEqual(tb["in_context"][0], "in_context", tb["in_context"])
        self.assertEqual(tb["wrapper"][:3], ["wrapper", "by_pointer", "main"], tb["wrapper"])
        self.assertEqual(tb["by_pointer"][:2], ["by_pointer", "main"], tb["by_pointer"])

    def checked(self, cmd, env=None, input=None):
        """Runs cmd under the check build; returns the sums of its processes' check lines."""
        self.need(CHECK_SHIM, "the check build (make build/check/libleakdiff.so)")
        proc = run.run(cmd, env=run.clean_env(LD_PRELOAD=CHECK_SHIM,
                                              LEAKDIFF_OUTPUT=self.mkdir("out"),
                                              **(env or {})), input=input)
        self.assertEqual(proc.returncode, 0, run.describe(proc))
        lines = CHECK_LINE.findall(proc.stderr)
        self.assertTrue(lines, "no check line:" + run.describe(proc))
        self.assertNotIn("frames, libunwind", proc.stderr, run.describe(proc))
        return [sum(int(x[i]) for x in lines) for i in range(5)]

    def test_check_build_agrees_on_the_edges(self):
        """Seven stacks by the unwinder (plain, alloca, the recursion, the thread, the thread's
        TLS, the two by a pointer), three left to libunwind (two signal handlers, the
        makecontext stack)."""
        stacks, differ, _, left, _ = self.checked([os.path.join(run.SAMPLE_BIN, "unwind_edges")])
        self.assertEqual((stacks, differ, left), (7, 0, 3))

    def test_check_build_agrees_under_python3(self):
        """The stacks the thread's memo gives (without walking) are checked like the others:
        thousands of them, in a run this short (the memo starts after 1,000 captures, and
        rests while start-up's stacks do not come back)."""
        self.need(run.PYTHON, "Debian's python3")
        stacks, differ, same, _, memo = self.checked(
            [run.PYTHON, "-c", run.PY_CODE], env={"PYTHONMALLOC": "malloc"})
        self.assertEqual(differ, 0)
        self.assertGreater(stacks, 10000)
        self.assertGreater(same, 0)
        self.assertGreater(memo, 1000, "the memo gave %d of %d stacks" % (memo, stacks))

    def test_check_build_agrees_under_sqlite3(self):
        if not os.access(run.SQLITE, os.X_OK):
            self.skipTest("sqlite3 is not installed; `make deps` installs it")
        stacks, differ, _, _, memo = self.checked([run.SQLITE, "-batch", ":memory:"],
                                                  env={"HOME": self.tmp}, input=run.SQL_SCRIPT)
        self.assertEqual(differ, 0)
        self.assertGreater(stacks, 1000)
        self.assertGreater(memo, 1000, "the memo gave %d of %d stacks" % (memo, stacks))

    def test_check_build_agrees_on_samples(self):
        """C++ (exceptions), threads, fork, dlopen/dlclose (the rules are forgotten) and code
        without unwind tables (left to libunwind)."""
        for name in ("cpp_leak", "thread_leaks", "fork_leak", "plugin", "no_unwind_info"):
            with self.subTest(sample=name):
                binary = os.path.join(run.SAMPLE_BIN, name)
                self.need(binary, "the sample")
                stacks, differ, _, left, _ = self.checked([binary])
                self.assertEqual(differ, 0)
                if name == "no_unwind_info":
                    self.assertGreaterEqual(left, 3)
                else:
                    self.assertGreater(stacks, 0)
