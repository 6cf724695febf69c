"""Gradient-check cost: wall time and evaluation counts of representative checks.

    python benchmarks/bench_harness.py [--repeats N] [--json FILE]

Cases (float64, seed 0): fast mode on matmul 64x64, on mean softmax cross-entropy 128x10
and on tanh of 1e5 elements, full mode on matmul 16x16 and 24x24, and fast mode on tanh at
10 and 100 000 elements to show the forward-evaluation count does not depend on the input
size. Times are CPU time of this process (the machine is shared). The comparison with
torch.autograd.gradcheck is ``benchmarks/bench_torch.py`` (``tox -e bench-torch``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import gradverify.engine as tf
from gradverify.harness import check_gradients


def _xent(logits, labels):
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels,
                                                                      logits=logits))


def cases() -> list[tuple[str, object, list[np.ndarray], str]]:
    rng = np.random.default_rng(0)
    labels = np.eye(10)[rng.integers(0, 10, 128)]
    out = [
        ("fast matmul 64x64", tf.matmul, [rng.standard_normal((64, 64)),
                                          rng.standard_normal((64, 64))], "fast"),
        ("fast softmax xent 128x10", _xent, [rng.standard_normal((128, 10)), labels], "fast"),
        ("full matmul 16x16", tf.matmul, [rng.standard_normal((16, 16)),
                                          rng.standard_normal((16, 16))], "full"),
    ]
    out.append(("full matmul 24x24", tf.matmul, [rng.standard_normal((24, 24)),
                                                 rng.standard_normal((24, 24))], "full"))
    for n in (10, 100_000):
        out.append((f"fast tanh {n} (eval count)", tf.tanh, [rng.standard_normal(n)],
                    "fast"))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    results = {}
    print(f"{'case':<34}{'verdict':<10}{'median':>10}{'forward':>10}{'backward':>10}")
    for name, f, inputs, mode in cases():
        times, report = [], None
        for _ in range(args.repeats):
            t0 = time.process_time()
            report = check_gradients(f, inputs, mode=mode, seed=0)
            times.append(time.process_time() - t0)
        med = statistics.median(times)
        results[name] = {"verdict": report.verdict, "seconds": med, **report.evaluations}
        print(f"{name:<34}{report.verdict:<10}{med * 1e3:>8.1f}ms"
              f"{report.evaluations['forward']:>10}{report.evaluations['backward']:>10}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


if __name__ == "__main__":
    main()
