"""What a FAIL costs in full mode: matmul NxN with a correct gradient and with one input's
gradient scaled by 1 + 1e-6 (every column of that input undecided after the first pass;
the step ladder stops once the FAIL is certain, ``harness/full_ladder.py``), process CPU
time of this process, median of the repeats.

    python benchmarks/bench_full_fail.py [--n 64] [--repeats 3]

Prints the two times, their ratio (the faulty check against the correct one, measured in
the same process, so the ratio does not depend on the machine's load), the forward
evaluations and the ladder columns. No timed assertion anywhere: figures for the README.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from gradverify.harness import check_vjp


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b


def _good(xs, gs):
    return gs[0] @ xs[1].T, xs[0].T @ gs[0]


def _bad(xs, gs):
    return gs[0] @ xs[1].T * (1 + 1e-6), xs[0].T @ gs[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((args.n, args.n)), rng.standard_normal((args.n, args.n))]
    times: dict[str, list[float]] = {"correct": [], "faulty": []}
    info = {}
    for _ in range(args.repeats):
        for name, vjp in (("correct", _good), ("faulty", _bad)):
            t0 = time.process_time()
            r = check_vjp(_mm, vjp, inputs, mode="full", seed=0)
            times[name].append(time.process_time() - t0)
            grad = next(c for c in r.checks if c.name == "gradient")
            info[name] = (r.verdict, r.evaluations["forward"],
                          grad.details.get("ladder_columns"),
                          grad.details.get("not_confirmed", {}).get("entries", 0))
    med = {k: statistics.median(v) for k, v in times.items()}
    for name in ("correct", "faulty"):
        verdict, fwd, ladder, unconfirmed = info[name]
        print(f"matmul {args.n}x{args.n} full, {name}: {verdict}, {med[name]:.2f} s CPU "
              f"(median of {args.repeats}), {fwd} forward evaluations, {ladder} ladder columns"
              f", {unconfirmed} entries not confirmed")
    print(f"faulty / correct: {med['faulty'] / med['correct']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
