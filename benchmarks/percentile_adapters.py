"""Our adapter check against the framework's own checker, check by check, in one process:
low percentiles of each side's CPU time, which a loaded machine disturbs less than medians.

    python benchmarks/percentile_adapters.py torch|jax [--checks N]

The cases and the calls are those of ``bench_torch_adapter.py`` / ``bench_jax_adapter.py``
(fast mode; jax's checker with ``atol=rtol=5e-2``). After a warm-up, the two checkers
alternate check by check, ``--checks`` times per small case (a tenth of that for ``tanh``
on 1e5 elements); printed per case: the 10th percentile and the median of each side's CPU
time in ms, and their ratios, then each side's minor page faults per check (median and
largest: a fresh array of 1e5 float64 entries faults ~200 pages in, and a check's time
follows its faults). Load from other processes only adds time, so the low percentile is
the closer estimate of what a check costs.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any


def _cases(framework: str) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    if framework == "torch":
        import torch

        from gradverify.torch import gradcheck
        try:
            from benchmarks.bench_torch_adapter import cases
        except ImportError:
            from bench_torch_adapter import cases
        torch.set_num_threads(1)
        return [(name, lambda f=fn, x=xs: gradcheck(f, x, fast_mode=True),
                 lambda f=fn, x=xs: torch.autograd.gradcheck(f, x, fast_mode=True))
                for name, fn, xs, _ in cases()]
    from jax.test_util import check_grads

    from gradverify.jax import check_grads as ours
    try:
        from benchmarks.bench_jax_adapter import cases
    except ImportError:
        from bench_jax_adapter import cases
    return [(name, lambda f=fn, x=xs: ours(f, x, order=1, mode="fast"),
             lambda f=fn, x=xs: check_grads(f, x, order=1, atol=5e-2, rtol=5e-2))
            for name, fn, xs, _ in cases()]


def _quantile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=["torch", "jax"])
    parser.add_argument("--checks", type=int, default=600)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"{'case':<30}{'ours p10':>9}{'p50':>8}{'theirs p10':>11}{'p50':>8}"
          f"{'ratio p10':>10}{'p50':>6}   (CPU ms per check)")
    for name, ours, theirs in _cases(args.framework):
        n = max(args.checks // 10, 10) if "tanh" in name else args.checks
        for _ in range(3):  # warm-up: imports, tracing, compilation
            ours()
            theirs()
        mine, other, faults = [], [], ([], [])
        for _ in range(n):
            for run, times, counts in ((ours, mine, faults[0]), (theirs, other, faults[1])):
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                start = time.process_time()
                run()
                times.append(time.process_time() - start)
                counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        m10, m50, o10, o50 = (_quantile(t, q) for t in (mine, other) for q in (0.1, 0.5))
        print(f"{name:<30}{m10 * 1e3:>9.3f}{m50 * 1e3:>8.3f}{o10 * 1e3:>11.3f}"
              f"{o50 * 1e3:>8.3f}{m10 / o10:>10.2f}{m50 / o50:>6.2f}   page faults "
              f"{_quantile(faults[0], 0.5)}/{max(faults[0])} against "
              f"{_quantile(faults[1], 0.5)}/{max(faults[1])}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
