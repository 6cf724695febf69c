"""gradverify.jax.check_grads against jax.test_util.check_grads, same process.

    python benchmarks/bench_jax_adapter.py [--repeats N] [--json FILE] [--x64]
    (or tox -e bench-jax-adapter)

Native ops, order 1, modes ("fwd", "rev"), float32 (JAX's default): matmul 64x64, mean
softmax cross-entropy 128x10, tanh on 1e5 elements; ours in fast mode (random probes, as
jax's). jax's checker is run with tolerances loose enough to accept these float32 cases (its
defaults reject the cross-entropy: see the README); both must accept every case.
"""

from __future__ import annotations

import argparse
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads as theirs

from gradverify.jax import check
from gradverify.jax import check_grads as ours

try:
    from benchmarks._adapter_bench import bare_harness, compare, evaluations
except ImportError:  # run as a script from the repository root
    from _adapter_bench import bare_harness, compare, evaluations


def cases() -> list[tuple[str, object, tuple, np.ndarray]]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 128)

    def xent(logits):
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(128), labels])

    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
    return [("matmul 64x64", jnp.matmul, (f32(64, 64), f32(64, 64)), labels),
            ("softmax cross-entropy 128x10", xent, (f32(128, 10),), labels),
            ("tanh on 1e5 elements", jnp.tanh, (f32(100_000),), labels)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", default=None)
    parser.add_argument("--wall", action="store_true",
                        help="wall-clock time instead of the process's CPU time")
    parser.add_argument("--x64", action="store_true",
                        help="turn jax_enable_x64 on (same float32 inputs): gradverify then "
                             "compiles the checked programs with jax.jit")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    rows, counts = [], {}
    for name, fn, inputs, labels in cases():
        ours(fn, inputs, order=1, mode="fast")
        counts[name] = evaluations(check(fn, inputs, order=1, mode="fast"))
        theirs(fn, inputs, order=1, atol=5e-2, rtol=5e-2)
        rows.append((name, lambda f=fn, x=inputs: ours(f, x, order=1, mode="fast"),
                     lambda f=fn, x=inputs: theirs(f, x, order=1, atol=5e-2, rtol=5e-2),
                     bare_harness(name, labels, inputs)))
    print(f"jax {jax.__version__}, x64 {'on' if args.x64 else 'off'}, "
          f"{'wall-clock' if args.wall else 'CPU'} time, median of {args.repeats}; "
          "harness = check_vjp on NumPy "
          "versions (same float32 inputs); overhead = gradverify / harness")
    compare(rows, repeats=args.repeats, theirs="jax", json_path=args.json, counts=counts,
            clock="wall" if args.wall else "cpu")


if __name__ == "__main__":
    main()
