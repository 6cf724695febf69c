"""Fast-mode sensitivity at every seed: the float64 targets of the sensitivity tests
(``tests/test_harness_sensitivity.py``) swept over seeds instead of one.

    python benchmarks/sweep_sensitivity.py [--seeds 50] [--mode fast] [--cases tanh,xent]
                                           [--entries 1]

For each case (matmul 64x64, tanh on 1e5 elements, mean softmax cross-entropy 128x10) and
seed: the correct gradient must not FAIL, and a gradient off by 1e-6 relative on every entry
or by 1e-5 on one entry must FAIL (the entry a third of the way in, or with ``--entries K``
each of K entries spread evenly over the first input, whatever its |x| and gradient; a miss
is then printed as seed:entry with the entry's |gradient| over the largest). Prints one line
per case with the misses (seeds at which a fault PASSed or was INCONCLUSIVE), the false
FAILs, the worst resolved relative error and the forward evaluations of the correct check;
exits 1 on any miss or false FAIL.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import numpy as np
from test_harness_sensitivity import CASES, _one_entry, _uniform

from gradverify.harness import FAIL, check_vjp


def _at(vjp, k: int, rtol: float):
    """The gradient with entry ``k`` of the first input's off by ``rtol``."""
    def bad(xs, gs):
        out = [np.array(g, dtype=np.float64) for g in vjp(xs, gs)]
        out[0].reshape(-1)[k] *= 1 + rtol
        return tuple(out)
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--mode", default="fast", choices=["fast", "auto"])
    ap.add_argument("--cases", default="", help="comma-separated substrings of case names")
    ap.add_argument("--entries", type=int, default=1,
                    help="one-entry faults at this many entries spread over the input")
    args = ap.parse_args(argv)
    wanted = [c for c in args.cases.split(",") if c]
    bad = 0
    for name, (f, vjp, inputs) in CASES.items():
        if wanted and not any(w in name for w in wanted):
            continue
        t0 = time.process_time()
        false_fail, missed_u, missed_1, worst, evals = [], [], [], 0.0, set()
        for seed in range(args.seeds):
            good = check_vjp(f, vjp, inputs, mode=args.mode, seed=seed)
            if good.verdict == FAIL:
                false_fail.append(seed)
            worst = max(worst, good.resolved_rtol or float("inf"))
            evals.add(good.evaluations["forward"])
            if check_vjp(f, _uniform(vjp, 1e-6), inputs, mode=args.mode,
                         seed=seed).verdict != FAIL:
                missed_u.append(seed)
            if args.entries == 1:
                if check_vjp(f, _one_entry(vjp, 1e-5), inputs, mode=args.mode,
                             seed=seed).verdict != FAIL:
                    missed_1.append(seed)
                continue
            g = np.abs(vjp(inputs, [np.ones(np.shape(f(*inputs)))])[0]).ravel()
            for k in np.linspace(0, g.size - 1, args.entries).astype(int).tolist():
                if check_vjp(f, _at(vjp, k, 1e-5), inputs, mode=args.mode,
                             seed=seed).verdict != FAIL:
                    missed_1.append(f"{seed}:{k} ({g[k] / g.max():.2g})")
        bad += len(false_fail) + len(missed_u) + len(missed_1)
        print(f"{name:<22} seeds 0..{args.seeds - 1}: false FAIL {false_fail or 'none'}; "
              f"1e-6 uniform missed {missed_u or 'none'}; 1e-5 one entry missed "
              f"{missed_1 or 'none'}; worst resolved_rtol {worst:.2g}; forward evaluations "
              f"{min(evals)}-{max(evals)}; {time.process_time() - t0:.1f} s", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
