"""gradverify's checker against torch.autograd.gradcheck on the same NumPy functions.

    python benchmarks/bench_torch.py [--repeats N] [--json FILE] [--skip-full] [--faults N]

Needs torch (``tox -e bench-torch`` installs it; never part of the default test run). Each
case is one NumPy forward and its NumPy VJP: gradverify checks them with ``check_vjp``;
torch wraps the same two functions in a ``torch.autograd.Function`` and runs
``gradcheck`` (default mode: full Jacobians; ``fast_mode=True``: one random projection).
Both run interleaved in this process, so the ratio (gradverify / torch, median of the
repeats, CPU time of this process) does not depend on what else the machine is doing.
Sensitivity is reported too: whether each checker FAILs a gradient scaled by 1 + 1e-6.
``--faults N``: then N more alternating checks per fast case, with each side's CPU time and
minor page faults per check (a fresh large array faults its pages in; torch's time on
``tanh`` follows them).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable

import numpy as np

from gradverify.harness import check_vjp


def _cases(rng: np.random.Generator) -> list[tuple[str, str, Callable, Callable, list]]:
    def mm(a, b):
        return a @ b

    def mm_vjp(xs, gs):
        return gs[0] @ xs[1].T, xs[0].T @ gs[0]

    labels = np.eye(10)[rng.integers(0, 10, 128)]

    def xent(z):
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return np.asarray(-(labels * logp).sum(axis=1).mean())

    def xent_vjp(xs, gs):
        z = xs[0] - xs[0].max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return ((p - labels) * gs[0] / len(z),)

    def tanh_vjp(xs, gs):
        return (gs[0] * (1 - np.tanh(xs[0]) ** 2),)

    ab = [rng.standard_normal((64, 64)), rng.standard_normal((64, 64))]
    return [
        ("full", "matmul 64x64", mm, mm_vjp, ab),
        ("fast", "matmul 64x64", mm, mm_vjp, ab),
        ("fast", "softmax xent 128x10", xent, xent_vjp, [rng.standard_normal((128, 10))]),
        ("fast", "tanh 1e5", np.tanh, tanh_vjp, [rng.standard_normal(100_000)]),
    ]


def _torch_check(torch, forward: Callable, vjp: Callable, inputs: list, fast: bool) -> bool:
    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.save_for_backward(*xs)
            return torch.from_numpy(np.asarray(forward(*[x.detach().numpy() for x in xs])))

        @staticmethod
        def backward(ctx, g):
            xs = [x.detach().numpy() for x in ctx.saved_tensors]
            gs = vjp(xs, [g.detach().numpy()])
            return tuple(torch.from_numpy(np.ascontiguousarray(t)) for t in gs)

    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    try:
        return bool(torch.autograd.gradcheck(Fn.apply, ts, fast_mode=fast,
                                             raise_exception=True))
    except RuntimeError:  # gradcheck's "Jacobian mismatch"
        return False


def _scaled(vjp: Callable, factor: float) -> Callable:
    return lambda xs, gs: tuple(g * factor for g in vjp(xs, gs))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--skip-full", action="store_true", help="skip full mode (slow)")
    ap.add_argument("--faults", type=int, default=0, metavar="N",
                    help="N more checks per fast case: CPU time and page faults per check")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    # Warm both checkers up on a tiny case (imports, first-call caches) before timing.
    small = [rng.standard_normal((4, 4)), rng.standard_normal((4, 4))]
    _, _, mm, mm_vjp, _ = _cases(np.random.default_rng(0))[0]
    check_vjp(mm, mm_vjp, small, mode="full", seed=0)
    _torch_check(torch, mm, mm_vjp, small, False)
    results = {}
    print(f"{'mode':<6}{'case':<22}{'gradverify':>12}{'torch':>10}{'ratio':>8}"
          f"  verdicts (correct; 1e-6 fault); gradverify's cost and resolution")
    for mode, name, f, vjp, inputs in _cases(rng):
        if mode == "full" and args.skip_full:
            continue
        ours, theirs = [], []
        for _ in range(args.repeats):
            t0 = time.process_time()
            report = check_vjp(f, vjp, inputs, mode=mode, seed=0)
            ours.append(time.process_time() - t0)
            t0 = time.process_time()
            ok = _torch_check(torch, f, vjp, inputs, mode == "fast")
            theirs.append(time.process_time() - t0)
        bad = check_vjp(f, _scaled(vjp, 1 + 1e-6), inputs, mode=mode, seed=0).verdict
        bad_torch = _torch_check(torch, f, _scaled(vjp, 1 + 1e-6), inputs, mode == "fast")
        a, b = statistics.median(ours), statistics.median(theirs)
        results[f"{mode} {name}"] = {
            "gradverify_s": a, "torch_s": b, "ratio": a / b, "verdict": report.verdict,
            "torch_passes": ok, "fault_1e-6": bad, "torch_fault_1e-6_passes": bad_torch,
            "evaluations": report.evaluations, "resolved_rtol": report.resolved_rtol}
        print(f"{mode:<6}{name:<22}{a:>11.4f}s{b:>9.4f}s{a / b:>8.2f}  "
              f"{report.verdict}/{'pass' if ok else 'fail'}; "
              f"{bad}/{'pass' if bad_torch else 'fail'}; evaluations "
              f"{report.evaluations['forward']}+{report.evaluations['backward']}, "
              f"resolved_rtol {report.resolved_rtol:.2g}")
    if args.faults:
        _faults(torch, _cases(np.random.default_rng(0)), args.faults)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


def _faults(torch, cases: list, n: int) -> None:
    import resource

    def measured(run: Callable) -> tuple[float, int]:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.process_time()
        run()
        return (time.process_time() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                - before)

    print(f"\n{'case':<22}  per check: CPU ms p10/p50/max and minor page faults min-max")
    for mode, name, f, vjp, inputs in cases:
        if mode != "fast":
            continue
        sides: dict[str, list[tuple[float, int]]] = {"gradverify": [], "torch": []}
        ours = functools.partial(check_vjp, f, vjp, inputs, mode="fast", seed=0)
        theirs = functools.partial(_torch_check, torch, f, vjp, inputs, True)
        for _ in range(n):
            sides["gradverify"].append(measured(ours))
            sides["torch"].append(measured(theirs))
        for side, got in sides.items():
            ms = sorted(t * 1e3 for t, _ in got)
            faults = [k for _, k in got]
            print(f"{name:<22}  {side:<10} {ms[len(ms) // 10]:.2f}/{ms[len(ms) // 2]:.2f}/"
                  f"{ms[-1]:.2f} ms, {min(faults)}-{max(faults)} faults")


if __name__ == "__main__":
    main()
