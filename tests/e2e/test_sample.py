"""End-to-end tests of the sampled mode (LEAKDIFF_SAMPLE, issue 6).

  * estimates: samples/sampled_mix keeps blocks of known sizes from four sites (its EXPECT
    lines, which the Samples test checks exactly and against valgrind); run sampled, every
    site's estimated bytes and blocks must lie within 5 standard deviations of the truth.
    The deviations are computed here from the known sizes and the rate: a block of size s
    is recorded with probability p = 1 - exp(-s/R) and then counts s/p bytes and 1/p blocks,
    so the estimate of n such blocks has variance n s^2 (1-p)/p (bytes) and n (1-p)/p
    (blocks). LEAKDIFF_SAMPLE_SEED fixes the draws, so the runs are reproducible (checked);
    the bound is what makes the check meaningful for any seed (one failure in ~1.7 million);
  * every output says "sampled": top and diff text, JSON ("sampled": {"rate", "mixed"}),
    info, the report of `leakdiff run`, collapsed stacks (on stderr); a diff of a sampled
    with an unsampled snapshot works and is flagged;
  * frees of blocks never recorded are not unknown frees; a sampled exit snapshot carries
    no reachability verdicts (see preload/track.c, exit_snapshot);
  * bad LEAKDIFF_SAMPLE values: one warning naming the variable, every allocation recorded;
  * threads, fork and python3 under sampling.

Collected by tests/e2e/run.py.
"""

import json
import math
import os

import run

MIX = os.path.join(run.SAMPLE_BIN, "sampled_mix")
RATE = 4096
# site -> list of (size, count) of the blocks it keeps (samples/sampled_mix.c)
MIX_SITES = {
    "keep_small": [(32, 20000)],
    "keep_medium": [(1000, 2000)],
    "keep_large": [(100000, 50)],
    "grow_buffers": [(4096, 1000)],
}


def expected(blocks, rate):
    """(true bytes, true blocks, sd of the bytes estimate, sd of the blocks estimate)."""
    nbytes = nblocks = var_bytes = var_blocks = 0.0
    for size, count in blocks:
        p = -math.expm1(-size / rate)
        nbytes += size * count
        nblocks += count
        var_bytes += count * size * size * (1 - p) / p
        var_blocks += count * (1 - p) / p
    return nbytes, nblocks, math.sqrt(var_bytes), math.sqrt(var_blocks)


class Sampled(run.Case):
    def traced(self, cmd, sample=RATE, seed=None, name="out", extra=None):
        """Runs cmd under the shim (not `leakdiff run`) with LEAKDIFF_SAMPLE; returns the
        one exit snapshot and the process."""
        self.need(run.SHIM, "the shim")
        out = self.mkdir(name)
        env = run.clean_env(LD_PRELOAD=run.SHIM, LEAKDIFF_OUTPUT=out)
        if sample is not None:
            env["LEAKDIFF_SAMPLE"] = str(sample)
        if seed is not None:
            env["LEAKDIFF_SAMPLE_SEED"] = str(seed)
        env.update(extra or {})
        proc = run.run(cmd, env=env)
        self.assertEqual(proc.returncode, 0, run.describe(proc))
        return self.only_snapshot(out, proc), proc

    def mix(self, seed, name="out"):
        self.need(MIX, "sample binary")
        return self.traced([MIX], seed=seed, name=name)[0]

    def estimate_problems(self, doc, what, slack=1.0):
        """Sites (and the total) of a top report of sampled_mix whose estimates lie more than
        5 sd (times slack) from the truth."""
        problems = []
        groups = self.groups_by_key(doc)
        everything = [b for blocks in MIX_SITES.values() for b in blocks]
        for site, blocks in list(MIX_SITES.items()) + [("total", everything)]:
            g = doc["totals"] if site == "total" else groups.get(site, {"bytes": 0, "blocks": 0})
            nbytes, nblocks, sd_bytes, sd_blocks = expected(blocks, RATE)
            for kind, got, want, sd in (("bytes", g["bytes"], nbytes, sd_bytes),
                                        ("blocks", g["blocks"], nblocks, sd_blocks)):
                bound = 5 * sd * slack + 1  # + 1: rounding
                if abs(got - want) > bound:
                    problems.append("%s %s: %s estimated %d, true %d, bound +-%.0f (5 sd)"
                                    % (what, site, kind, got, want, bound))
        return problems

    def test_estimates_within_five_sd(self):
        """Each site of sampled_mix, run sampled with 6 seeds: every estimate within 5 sd of
        the true figure, and their mean within 5 sd / sqrt(6) (a bias would show there)."""
        runs = [self.top(self.mix(seed, name="s%d" % seed)) for seed in range(1, 7)]
        problems = []
        for seed, doc in enumerate(runs, 1):
            self.assertEqual(doc["sampled"], {"rate": RATE, "mixed": False})
            self.assert_totals_add_up(doc, "top of seed %d" % seed)
            problems += self.estimate_problems(doc, "seed %d" % seed)
        sites = [dict(self.groups_by_key(d), total=d["totals"]) for d in runs]
        mean = {"totals": {k: sum(s["total"][k] for s in sites) / len(runs)
                           for k in ("bytes", "blocks")},
                "groups": [{"key": site, **{k: sum(s.get(site, {k: 0})[k] for s in sites)
                                            / len(runs) for k in ("bytes", "blocks")}}
                           for site in MIX_SITES]}
        problems += self.estimate_problems(mean, "mean of 6 seeds", 1 / math.sqrt(len(runs)))
        self.assertEqual(problems, [], "\n".join(problems))

    def test_same_seed_same_snapshot(self):
        """LEAKDIFF_SAMPLE_SEED makes a run's sampling reproducible."""
        a, b = self.top(self.mix(77, "a")), self.top(self.mix(77, "b"))
        figures = [{g["key"]: (g["bytes"], g["blocks"]) for g in d["groups"]} for d in (a, b)]
        self.assertEqual(figures[0], figures[1])
        c = self.top(self.mix(78, "c"))
        self.assertNotEqual(figures[0], {g["key"]: (g["bytes"], g["blocks"]) for g in c["groups"]})

    def test_info_totals_and_frees(self):
        """Frees of blocks never recorded are not unknown frees; the counts of a sampled
        snapshot are of recorded blocks; no reachability verdicts."""
        info = self.json_of("info", "--format", "json", self.mix(5))
        t = info["totals"]
        self.assertEqual(info["sampled"], {"rate": RATE})
        self.assertIn("sampled", info["process"]["flags"])
        self.assertEqual(info["process"]["sample_rate"], RATE)
        self.assertEqual(t["unknown_frees"], 0, "100,000 frees of unrecorded blocks")
        self.assertLess(info["blocks"], 5000, "~1,270 of 23,050 blocks recorded")
        self.assertLess(t["total_allocs"], 20000, "allocations recorded, of 126,050")
        self.assertGreaterEqual(t["peak_bytes"], t["bytes"])
        self.assertIsNone(info["reachability"], "verdicts of a sampled exit snapshot")
        text = self.leakdiff("info", self.mix(5, "again")).stdout
        self.assertIn("totals (sampled: estimates of the whole heap)", text)
        self.assertIn("unknown frees not counted (sampled)", text)

    def test_every_output_says_sampled(self):
        """top/diff text and JSON, collapsed stacks, the report of `leakdiff run`; a diff of
        a sampled and an unsampled snapshot works and says so."""
        sampled = self.mix(9)
        text = self.leakdiff("top", sampled).stdout
        self.assertIn("sampled (LEAKDIFF_SAMPLE=%d, one sample per ~4.0 KiB allocated): sizes "
                      "and counts are estimates" % RATE, text)
        collapsed = self.leakdiff("top", "--format", "collapsed", sampled)
        self.assertIn("is sampled (LEAKDIFF_SAMPLE=%d): its figures are estimates" % RATE,
                      collapsed.stderr)
        self.assertNotIn("sampled (", collapsed.stdout)
        plain = self.traced([MIX], sample=None, name="plain")[0]
        self.assertIsNone(self.top(plain)["sampled"])
        self.assertNotIn("sampled (", self.leakdiff("top", plain).stdout)
        diff = self.leakdiff("diff", plain, sampled).stdout
        self.assertIn("note: %s is sampled and %s is not: each change sets an estimate against "
                      "an exact figure" % (sampled, plain), diff)
        doc = self.json_of("diff", "--format", "json", plain, sampled)
        self.assertEqual(doc["sampled"], {"rate": RATE, "mixed": True})
        doc = self.json_of("diff", "--format", "json", sampled, sampled)
        self.assertEqual(doc["sampled"], {"rate": RATE, "mixed": False})
        self.assertEqual(doc["totals"]["bytes_diff"], 0)
        out = self.mkdir("run")
        proc = self.leakdiff("run", "-o", out, "--", MIX,
                             env=run.clean_env(LEAKDIFF_SAMPLE="4K", LEAKDIFF_SAMPLE_SEED="3"))
        self.assertIn("sampled (LEAKDIFF_SAMPLE=4096", proc.stderr, run.describe(proc))
        self.only_snapshot(out, proc)

    def test_trend_of_sampled_snapshots(self):
        """A trend of sampled runs of growing_leak: estimates, said so, and the leak grows."""
        binary = os.path.join(run.SAMPLE_BIN, "growing_leak")
        self.need(binary, "sample binary")
        snaps = [self.traced([binary, str(n)], sample=1024, seed=n, name="r%d" % n)[0]
                 for n in (2000, 4000, 8000)]
        doc = self.json_of("trend", "--format", "json", *snaps)
        self.assertEqual(doc["sampled"], {"rate": 1024, "mixed": False})
        groups = self.groups_by_key(doc)
        self.assertTrue(groups["remember_session"]["growing"], groups["remember_session"])
        # 48-byte sessions: 48,000 B per 1000 requests; at the last run, 384,000 B, sd ~1.5%
        got = groups["remember_session"]["bytes"]
        p = -math.expm1(-48 / 1024)
        sd = math.sqrt(8000 * 48 * 48 * (1 - p) / p)
        self.assertLess(abs(got - 384000), 5 * sd + 1, "remember_session estimate %d" % got)

    def test_bad_values_warn_once(self):
        """A bad LEAKDIFF_SAMPLE: one warning naming it; every allocation recorded, exactly."""
        exp = run.Expect(os.path.join(run.SAMPLE_SRC, "sampled_mix.c"))
        for i, bad in enumerate(("abc", "-1", "2T", "1.5K", "", "4096 ")):
            snap, proc = self.traced([MIX], sample=bad, name="bad%d" % i)
            lines = proc.stderr.splitlines()
            self.assertEqual(len(lines), 1, "one warning for %r:%s" % (bad, run.describe(proc)))
            self.assertIn("LEAKDIFF_SAMPLE=%s is not" % bad, lines[0])
            doc = self.top(snap)
            self.assertIsNone(doc["sampled"])
            self.assertEqual((doc["totals"]["bytes"], doc["totals"]["blocks"]), exp.total)
        snap, proc = self.traced([MIX], sample=0, name="zero")
        self.assertEqual(proc.stderr, "", "LEAKDIFF_SAMPLE=0 is valid: " + run.describe(proc))
        self.assertEqual(self.top(snap)["totals"]["bytes"], exp.total[0])
        snap, proc = self.traced([MIX], seed="x", name="seed")
        self.assertEqual(len(proc.stderr.splitlines()), 1, run.describe(proc))
        self.assertIn("LEAKDIFF_SAMPLE_SEED=x is not", proc.stderr)
        self.assertEqual(self.top(snap)["sampled"]["rate"], RATE, "sampling goes on")

    def test_threads_fork_python(self):
        """Sampling in threads (thread_churn), across fork (fork_leak: both processes'
        snapshots sampled), and in python3 (PYTHONMALLOC=malloc)."""
        churn = os.path.join(run.SAMPLE_BIN, "thread_churn")
        self.need(churn, "sample binary")
        out = self.mkdir("churn")
        proc = run.run([churn], env=run.clean_env(LD_PRELOAD=run.SHIM, LEAKDIFF_OUTPUT=out,
                                                  LEAKDIFF_SAMPLE="1024"))
        self.assertEqual(proc.returncode, 0, run.describe(proc))
        files = self.snapshots_in(out, proc)
        self.assertEqual(len(files), 21)
        for f in files:
            self.assertEqual(self.top(f.path)["sampled"], {"rate": 1024, "mixed": False})
        fork = os.path.join(run.SAMPLE_BIN, "fork_leak")
        self.need(fork, "sample binary")
        out = self.mkdir("fork")
        proc = run.run([fork], env=run.clean_env(LD_PRELOAD=run.SHIM, LEAKDIFF_OUTPUT=out,
                                                 LEAKDIFF_SAMPLE="64"))
        self.assertEqual(proc.returncode, 0, run.describe(proc))
        files = self.snapshots_in(out, proc)
        self.assertEqual(len({f.pid for f in files}), 2, [f.name for f in files])
        for f in files:
            self.assertEqual(self.top(f.path)["sampled"]["rate"], 64)
        self.need(run.PYTHON, "Debian's python3")
        code = ("import ctypes; kept = [bytearray(1000) for _ in range(5000)]; "
                "print(ctypes.CDLL(None).leakdiff_snapshot(b'live'))")
        out = self.mkdir("python")
        proc = run.run([run.PYTHON, "-c", code],
                       env=run.clean_env(LD_PRELOAD=run.SHIM, LEAKDIFF_OUTPUT=out,
                                         LEAKDIFF_SAMPLE="65536", PYTHONMALLOC="malloc"))
        self.assertEqual((proc.returncode, proc.stdout), (0, "0\n"), run.describe(proc))
        live = [f for f in self.snapshots_in(out, proc) if f.label == "live"]
        self.assertEqual(len(live), 1)
        doc = self.top(live[0].path)
        self.assertEqual(doc["sampled"], {"rate": 65536, "mixed": False})
        # 5000 x 1001 B (with CPython's NUL): ~76 of them recorded, sd ~12%
        self.assertGreater(doc["totals"]["bytes"], 5000 * 1001 // 2, json.dumps(doc["totals"]))
