"""Where an adapter check's CPU time goes: the framework's own work, the adapter's glue and
the harness, per benchmark case, beside the framework's own checker.

    python benchmarks/profile_adapters.py torch|jax [--repeats N]

Each case (the cases of ``bench_torch_adapter.py`` / ``bench_jax_adapter.py``) is checked
``--repeats`` times in fast mode after a warm-up; a handful of functions are wrapped with
exclusive CPU-time accounting (time spent inside a wrapped call is charged to it and to
nothing around it):

- ``framework``: the checked function's evaluations and its VJPs/JVPs, inside the
  framework (torch: the function's calls and ``torch.autograd.grad``/forward-mode AD;
  JAX: the programs' calls and the wait for their results);
- ``adapter``: the rest of ``TorchFunction`` / ``JaxFunction`` and the drop-in wrapper
  (conversions, graph reuse, argument handling);
- ``harness``: everything else (``check_vjp``: hygiene, fast mode's probes, the precision
  and forward-mode checks, the report).

Also printed per check: minor page faults (a fresh array of 1e5 float64 entries faults in
~200 pages) and the evaluation counts. CPU time of the process (all threads), medians are
not used here: means over the repeats. "ours" and "theirs" are timed first, without the
wrappers (which add a few µs per wrapped call to "timed").
"""

from __future__ import annotations

import argparse
import collections
import functools
import resource
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

_STACK: list[str] = []
_SPENT: collections.Counter = collections.Counter()


def _charged(label: str, fn: Callable) -> Callable:
    """``fn`` with its exclusive CPU time charged to ``label``."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        now = time.process_time()
        if _STACK:
            _SPENT[_STACK[-1]] += now
        _STACK.append(label)
        _SPENT[label] -= now
        try:
            return fn(*args, **kwargs)
        finally:
            end = time.process_time()
            _SPENT[_STACK.pop()] += end
            if _STACK:
                _SPENT[_STACK[-1]] -= end
    return run


def _wrap(owner: Any, names: list[str], label: str) -> None:
    for name in names:
        setattr(owner, name, _charged(label, getattr(owner, name)))


def _torch_setup() -> tuple[list, Callable, Callable, Callable, Callable]:
    import torch

    import gradverify.adapters.torch_function as tfm
    from gradverify.torch import check, gradcheck
    try:
        from benchmarks.bench_torch_adapter import cases
    except ImportError:
        from bench_torch_adapter import cases
    torch.set_num_threads(1)

    def instrument() -> None:
        tfm.torch.autograd.grad = _charged("framework", torch.autograd.grad)
        _wrap(tfm.TorchFunction, ["_call"], "framework")
        _wrap(tfm.TorchFunction, ["__init__", "forward", "vjp", "take_evaluation"],
              "adapter")
    ours = lambda fn, x: gradcheck(fn, x, fast_mode=True)
    theirs = lambda fn, x: torch.autograd.gradcheck(fn, x, fast_mode=True)
    counts = lambda fn, x: check(fn, x, mode="fast")
    return [(n, f, x) for n, f, x, _ in cases()], ours, theirs, counts, instrument


def _jax_setup() -> tuple[list, Callable, Callable, Callable, Callable]:
    from jax.test_util import check_grads

    import gradverify.adapters.jax_function as jfm
    from gradverify.jax import check
    from gradverify.jax import check_grads as ours_grads
    try:
        from benchmarks.bench_jax_adapter import cases
    except ImportError:
        from bench_jax_adapter import cases

    def instrument() -> None:
        _wrap(jfm.JaxFunction, ["_program"], "framework")
        jfm._to_numpy = _charged("framework", jfm._to_numpy)  # waits for the async result
        _wrap(jfm.JaxFunction, ["__init__", "forward", "vjp", "jvp", "vjp_many",
                                "jvp_many"], "adapter")
    ours = lambda fn, x: ours_grads(fn, x, order=1, mode="fast")
    theirs = lambda fn, x: check_grads(fn, x, order=1, atol=5e-2, rtol=5e-2)
    counts = lambda fn, x: check(fn, x, order=1, mode="fast")
    return [(n, f, x) for n, f, x, _ in cases()], ours, theirs, counts, instrument


def _per_check(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """CPU seconds and minor page faults per call of ``fn``."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return ((time.process_time() - start) / repeats,
            (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=["torch", "jax"])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    cases, ours, theirs, counts, instrument = (_torch_setup if args.framework == "torch"
                                               else _jax_setup)()
    clean = {}
    for name, fn, x in cases:  # first without the accounting wrappers: the true totals
        for _ in range(2):
            ours(fn, x)
            theirs(fn, x)
        clean[name] = (_per_check(lambda f=fn, a=x: ours(f, a), args.repeats),
                       _per_check(lambda f=fn, a=x: theirs(f, a), args.repeats)[0])
    instrument()
    print(f"{args.framework}: CPU ms per check (means over {args.repeats} checks); "
          "framework / adapter / harness: exclusive times of an instrumented run, whose "
          "total is in 'timed'")
    print(f"{'case':<30}{'ours':>7}{'theirs':>8}{'timed':>7}{'framework':>10}{'adapter':>8}"
          f"{'harness':>8}{'faults':>7}  evaluations, directions")
    for name, fn, x in cases:
        ours(fn, x)
        report = counts(fn, x)
        ev = report.evaluations
        evals = "+".join(f"{ev[k]}{k[0]}" for k in ("forward", "backward", "jvp") if k in ev)
        directions = report.check("gradient").details.get("directions")
        _SPENT.clear()
        total, _ = _per_check(lambda f=fn, a=x: ours(f, a), args.repeats)
        spent = {k: v / args.repeats for k, v in _SPENT.items()}
        framework, adapter = spent.get("framework", 0.0), spent.get("adapter", 0.0)
        (mine, faults), other = clean[name]
        print(f"{name:<30}{mine * 1e3:>7.2f}{other * 1e3:>8.2f}{total * 1e3:>7.2f}"
              f"{framework * 1e3:>10.2f}{adapter * 1e3:>8.2f}"
              f"{(total - framework - adapter) * 1e3:>8.2f}{faults:>7.0f}  {evals}, "
              f"{directions}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
