"""What sharing evaluations saves the adapters, measured A/B in one process: each round
times the same check with the sharing on (as shipped) and off (the harness calling the
function afresh each time), back to back (which one first alternates), CPU time.

    python benchmarks/bench_adapter_shared_calls.py torch|jax [--repeats N]

"Off" undoes, by patching the running process only: f(x) settled after two agreeing
evaluations (harness/calls.py), the torch adapter's autograd evaluation taken as the
harness's first f(x) (``take_evaluation``; the adapter then evaluates once more, as
before), and several VJPs/JVPs per call (``vjp.many``/``jvp.many``: one call each instead).
The cases are those of bench_torch_adapter.py / bench_jax_adapter.py.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from gradverify.harness import calls


@contextlib.contextmanager
def sharing_off(framework: str) -> Iterator[None]:
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    patch(calls.Problem, "_remember_at_x", lambda self, ys: None)
    patch(calls.Problem, "vjps", lambda self, xs, cts, fn=None: [self.vjp(xs, c, fn)
                                                                 for c in cts])
    patch(calls.Problem, "jvps", lambda self, xs, ts: [self.jvp(xs, t) for t in ts])
    if framework == "torch":
        from gradverify.adapters.torch_function import TorchFunction
        patch(TorchFunction, "take_evaluation", lambda self, arrays: None)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


def _cases(framework: str) -> list[tuple[str, Callable[[], Any]]]:
    if framework == "torch":
        import torch

        from gradverify.torch import gradcheck
        try:
            from benchmarks.bench_torch_adapter import cases
        except ImportError:  # run as a script from the repository root
            from bench_torch_adapter import cases
        torch.set_num_threads(1)
        return [(name, lambda f=fn, x=inputs: gradcheck(f, x, fast_mode=True))
                for name, fn, inputs, _ in cases()]
    from gradverify.jax import check_grads
    try:
        from benchmarks.bench_jax_adapter import cases
    except ImportError:  # run as a script from the repository root
        from bench_jax_adapter import cases
    return [(name, lambda f=fn, x=inputs: check_grads(f, x, order=1, mode="fast"))
            for name, fn, inputs, _ in cases()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=["torch", "jax"])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(f"{args.framework}: CPU time, median of {args.repeats} rounds (on / off back to "
          "back)")
    print(f"{'case':<30}{'shared':>10}{'afresh':>10}{'ratio':>8}{'range':>14}")
    for name, run in _cases(args.framework):
        run()
        with sharing_off(args.framework):
            run()
        on, off = [], []
        for k in range(args.repeats):
            for shared in ((True, False) if k % 2 else (False, True)):  # either first
                with contextlib.nullcontext() if shared else sharing_off(args.framework):
                    t = time.process_time()
                    run()
                    (on if shared else off).append(time.process_time() - t)
        ratios = [a / b for a, b in zip(on, off)]
        print(f"{name:<30}{statistics.median(on) * 1e3:>8.2f}ms"
              f"{statistics.median(off) * 1e3:>8.2f}ms{statistics.median(ratios):>7.2f}x"
              f"{min(ratios):>7.2f}-{max(ratios):.2f}x")


if __name__ == "__main__":
    main()
