"""Side-by-side timing shared by the adapter benchmarks: each case runs gradverify's adapter,
the framework's own checker and the bare harness (``check_vjp`` on hand-written NumPy
forward/VJP pairs of the same functions: the adapter's overhead is the difference) in the
same process, interleaved, after a warm-up call of each, and reports medians and ratios.

Times are CPU time of the process (all its threads: XLA's and torch's pools count), which
a shared machine disturbs far less than wall-clock time; ``--wall`` in the scripts
measures wall-clock time instead."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradverify.harness import check_vjp

CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}


def _timed(fn: Callable[[], Any], clock: Callable[[], float] = time.process_time) -> float:
    start = clock()
    fn()
    return clock() - start


def numpy_pairs(labels: np.ndarray) -> dict[str, tuple[Callable, Callable]]:
    """NumPy forward/VJP pairs of the benchmarked functions (mean cross-entropy against
    integer ``labels``)."""
    def xent(z):
        shifted = z - z.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(labels)), labels].mean()

    def xent_vjp(xs, gs):
        z = xs[0]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(labels)), labels] -= 1
        return (gs[0] * p / len(labels),)

    return {"matmul 64x64": (np.matmul, lambda xs, gs: (gs[0] @ xs[1].T, xs[0].T @ gs[0])),
            "softmax cross-entropy 128x10": (xent, xent_vjp),
            "tanh on 1e5 elements": (np.tanh, lambda xs, gs: (
                gs[0] * (1 - np.tanh(xs[0]) ** 2),))}


def bare_harness(name: str, labels: np.ndarray, arrays: Sequence[np.ndarray],
                 mode: str = "fast") -> Callable[[], Any]:
    forward, vjp = numpy_pairs(labels)[name]
    return lambda: check_vjp(forward, vjp, arrays, mode=mode)


def evaluations(report: Any) -> str:
    """A report's evaluation counts, e.g. ``90f+6b+4j`` (forward, backward, jvp)."""
    ev = report.evaluations
    return "+".join(f"{ev[k]}{k[0]}" for k in ("forward", "backward", "jvp") if k in ev)


def compare(cases: Sequence[tuple[str, Callable[[], Any], Callable[[], Any],
                                  Callable[[], Any]]], *,
            repeats: int, theirs: str, json_path: str | None = None,
            counts: dict[str, str] | None = None, clock: str = "cpu") -> None:
    """Print a table: medians of ours, theirs and the bare harness, ours / theirs (the
    median of the per-round ratios, and their range: each round times the three back to
    back, so a burst of load on the machine hits both sides of a ratio), and
    (``counts``) how many evaluations our check spent."""
    rows = []
    counts = counts or {}
    now = CLOCK[clock]
    print(f"{'case':<30}{'gradverify':>12}{theirs:>10}{'harness':>10}{'ratio':>8}"
          f"{'range':>13}{'overhead':>10}  evaluations")
    for name, mine, other, bare in cases:
        for fn in (mine, other, bare):
            fn()  # warm-up: first-call costs (imports, tracing) are not the steady state
        t_mine, t_other, t_bare = [], [], []
        for _ in range(repeats):
            t_other.append(_timed(other, now))
            t_mine.append(_timed(mine, now))
            t_bare.append(_timed(bare, now))
        m, o, b = (statistics.median(t) for t in (t_mine, t_other, t_bare))
        ratios = [a / c for a, c in zip(t_mine, t_other)]
        r, lo, hi = statistics.median(ratios), min(ratios), max(ratios)
        rows.append({"case": name, "ours_s": m, "theirs_s": o, "harness_s": b,
                     "ratio": r, "ratio_min": lo, "ratio_max": hi, "adapter_overhead": m / b,
                     "repeats": repeats, "clock": clock,
                     "evaluations": counts.get(name, "")})
        print(f"{name:<30}{m * 1e3:>10.1f}ms{o * 1e3:>8.1f}ms{b * 1e3:>8.1f}ms"
              f"{r:>7.2f}x{lo:>6.2f}-{hi:.2f}x{m / b:>9.2f}x  {counts.get(name, '')}")
    if json_path:
        with open(json_path, "w") as fh:
            json.dump(rows, fh, indent=1)
