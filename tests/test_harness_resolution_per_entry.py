"""Issue 10, items 4 and 5: resolution is judged per output entry (a fault on an output
1e17 times smaller than its neighbours is still a fault), and full mode pays at most 2
forward evaluations per input element on smooth functions, plus a constant that does not
grow with the input."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import FAIL, PASS, check_gradients, check_vjp


def _tiny_beside_large(n: int):
    """y = x * s with s = 3 on the first half and 1e-17 on the second; the VJP scales the
    second half's gradient by ``k`` (k = 1: correct)."""
    s = np.where(np.arange(n) < n // 2, 3.0, 1e-17)
    fault = lambda k: np.where(np.arange(n) < n // 2, 1.0, k)
    return (lambda x: x * s), (lambda k: (lambda xs, gs: (gs[0] * s * fault(k),)))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("k", [1 + 1e-5, 2.0, 0.0])
def test_full_mode_resolves_a_fault_on_the_tiny_output_entries(k, seed):
    f, vjp = _tiny_beside_large(8)
    x = np.linspace(1.0, 2.0, 8)
    assert check_vjp(f, vjp(1.0), [x], mode="full", seed=seed).verdict == PASS
    r = check_vjp(f, vjp(k), [x], mode="full", seed=seed)
    assert r.verdict == FAIL, str(r)
    bad = {e.index for e in r.check("gradient").worst if e.verdict == FAIL}
    assert bad and all(i[0] >= 4 for i in bad)  # pinned to the tiny half


@pytest.mark.xfail(strict=True, reason=(
    "fast mode: one random cotangent over outputs of size 3 and 1e-17 is dominated by the "
    "large ones, so a factor-2 fault on the tiny ones is below every probe's round-off "
    "(resolved_rtol ~1e-9 of the whole gradient, not of each output entry)"))
@pytest.mark.parametrize("seed", range(3))
def test_fast_mode_resolves_a_fault_on_the_tiny_output_entries(seed):
    f, vjp = _tiny_beside_large(300)
    x = np.linspace(1.0, 2.0, 300)
    assert check_vjp(f, vjp(1.0), [x], mode="fast", seed=seed).verdict == PASS
    assert check_vjp(f, vjp(2.0), [x], mode="fast", seed=seed).verdict == FAIL


def _tanh_vjp(xs, gs):
    return (gs[0] * (1 - np.tanh(xs[0]) ** 2),)


def test_full_mode_costs_two_forward_evaluations_per_element_plus_a_constant():
    rng = np.random.default_rng(0)
    extra = set()
    for n in (1, 7, 50, 300):
        x = rng.standard_normal(n)
        r = check_vjp(np.tanh, _tanh_vjp, [x], mode="full")
        assert r.verdict == PASS, str(r)
        extra.add(r.evaluations["forward"] - 2 * n)
    for m, k in ((3, 4), (8, 8), (12, 12)):
        a, b = rng.standard_normal((m, k)), rng.standard_normal((k, m))
        r = check_gradients(lambda a, b: tf.matmul(a, b), [a, b], mode="full")
        assert r.verdict == PASS, str(r)
        extra.add(r.evaluations["forward"] - 2 * (a.size + b.size))
    # the constant: hygiene (2) and the noise/stability samples; the same at every size
    assert len(extra) == 1 and 0 <= extra.pop() <= 16


def test_a_two_entry_fault_cannot_hide_behind_probe_signs():
    # equal inputs at the two entries, faults +d and -d: a probe sees d (u_i - u_j), which
    # sign-only directions (u_i = +-|x_i|) zero in half the draws (1 in 16 over 4 directions,
    # so ~4 misses in 60 seeds); continuous directions never do (miss < c^-4, README)
    misses = []
    for seed in range(60):
        x = np.random.default_rng(seed).uniform(0.5, 1.5, 300)
        x[20] = x[10]

        def bad(xs, gs):
            g = gs[0] * (1 - np.tanh(xs[0]) ** 2)
            d = 1e-5 * g[10]  # linear in the cotangent: only the probes can see it
            g[10] += d
            g[20] -= d
            return (g,)
        if check_vjp(np.tanh, bad, [x], mode="fast", seed=seed).verdict != FAIL:
            misses.append(seed)
    assert not misses
