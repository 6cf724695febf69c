"""gradverify.torch.gradcheck against torch.autograd.gradcheck, fast mode, same process.

    python benchmarks/bench_torch_adapter.py [--repeats N] [--json FILE]
    (or tox -e bench-torch-adapter)

Native ops in float64 (torch's checker needs float64 to pass them): matmul 64x64, mean
softmax cross-entropy 128x10, tanh on 1e5 elements. Both checkers must return True on every
case (the script asserts it): a faster wrong answer would not count.
"""

from __future__ import annotations

import argparse
import warnings

import torch

from gradverify.torch import check
from gradverify.torch import gradcheck as ours

try:
    from benchmarks._adapter_bench import bare_harness, compare, evaluations
except ImportError:  # run as a script from the repository root
    from _adapter_bench import bare_harness, compare, evaluations


def cases() -> list[tuple[str, object, tuple, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    labels = torch.randint(0, 10, (128,), generator=g)
    xent = lambda logits: torch.nn.functional.cross_entropy(logits, labels)
    return [("matmul 64x64", torch.mm, (rand(64, 64), rand(64, 64)), labels),
            ("softmax cross-entropy 128x10", xent, (rand(128, 10),), labels),
            ("tanh on 1e5 elements", torch.tanh, (rand(100_000),), labels)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", default=None)
    parser.add_argument("--wall", action="store_true",
                        help="wall-clock time instead of the process's CPU time")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    rows, counts = [], {}
    for name, fn, inputs, labels in cases():
        assert ours(fn, inputs, fast_mode=True), name
        counts[name] = evaluations(check(fn, inputs, mode="fast"))
        assert torch.autograd.gradcheck(fn, inputs, fast_mode=True), name
        arrays = [t.detach().numpy() for t in inputs]
        rows.append((name, lambda f=fn, x=inputs: ours(f, x, fast_mode=True),
                     lambda f=fn, x=inputs: torch.autograd.gradcheck(f, x, fast_mode=True),
                     bare_harness(name, labels.numpy(), arrays)))
    print(f"torch {torch.__version__}, 1 thread, {'wall-clock' if args.wall else 'CPU'} "
          f"time, median of {args.repeats}; harness = "
          "check_vjp on NumPy versions; overhead = gradverify / harness")
    compare(rows, repeats=args.repeats, theirs="torch", json_path=args.json, counts=counts,
            clock="wall" if args.wall else "cpu")


if __name__ == "__main__":
    main()
