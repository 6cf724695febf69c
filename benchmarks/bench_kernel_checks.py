"""Benchmark: what checking kernel outputs costs a repeated ``Session.run``.

Runs the notMNIST training step of ``bench_training_step.py`` three ways in one process,
interleaved (so machine load hits all three alike), and reports median per-step times:

- ``unchecked``: the plan's unchecked function called directly, i.e. ``run`` as it was
  before kernel outputs were checked (the baseline);
- ``run``: ``Session.run`` as shipped: outputs checked on the first run for a feed-shape
  signature, the unchecked plan afterwards;
- ``always``: every kernel output checked on every run (``GRADVERIFY_CHECK_KERNELS=always``).

    python benchmarks/bench_kernel_checks.py [--quick] [--json FILE]

Target: ``run / unchecked <= 1.02`` at N = 200 rows (the small step, where per-run
overhead shows most).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from bench_training_step import EngineStep, make_data

import gradverify.engine as tf
from gradverify.engine import session as session_module

TARGET = 1.02


def _unchecked_runner(eng: EngineStep):
    """``run`` without the output checks: the flattened plan's unchecked function."""
    sess = eng.session
    sess.run(eng.fetches)  # compile and verify once
    plan = sess._plans[(tuple(eng.fetches), ())]

    def run():
        return plan.fn([], sess._state)
    return run


def bench(n: int, repeats: int, steps: int) -> dict:
    x, y, w0, b0 = make_data(n)
    eng = EngineStep(x, y, w0, b0)
    runners = {"unchecked": _unchecked_runner(eng), "run": eng.step}

    def always():
        session_module._ALWAYS_CHECK = True
        try:
            return eng.step()
        finally:
            session_module._ALWAYS_CHECK = False
    runners["always"] = always
    for fn in runners.values():  # warm-up
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in runners}
    names = list(runners)
    for r in range(repeats):
        for name in names[r % 3:] + names[:r % 3]:  # rotate who goes first
            fn = runners[name]
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            times[name].append((time.perf_counter() - t0) / steps)
    eng.session.close()
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {"n": n, "repeats": repeats, "steps": steps, "ms": med,
            "run_over_unchecked": med["run"] / med["unchecked"],
            "always_over_unchecked": med["always"] / med["unchecked"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    args = ap.parse_args(argv)
    repeats, steps = (3, 5) if args.quick else (15, 20)
    results = [bench(n, repeats, steps) for n in (200, 10000)]
    ok = True
    for r in results:
        ms = r["ms"]
        print(f"N={r['n']:>5}: unchecked {ms['unchecked']:8.3f} ms  run {ms['run']:8.3f} ms  "
              f"always {ms['always']:8.3f} ms  run/unchecked {r['run_over_unchecked']:.3f}  "
              f"always/unchecked {r['always_over_unchecked']:.3f}")
        if r["n"] == 200 and r["run_over_unchecked"] > TARGET:
            ok = False
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "target": TARGET, "engine": tf.__name__}, f,
                      indent=2)
    return 0 if ok or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
