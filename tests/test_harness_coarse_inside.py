"""A float64 function computed in float32 inside (a cast in the forward and the backward):
its VJP is linear only to float32's rounding. The linearity check FAILed it at some seeds
and not at others (3 of 8); a homogeneous VJP (``vjp(2 v) / 2 = vjp(v)``, exact for a
linear formula at any internal precision) within float32's rounding of linear is not a
linearity FAIL. A cotangent ignored or squared is not homogeneous and still FAILs; the
function's change is rounded to float32 at float64's steps, so the gradient itself is not
verifiable there (INCONCLUSIVE, never PASS, right or wrong)."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import FAIL, PASS, check_vjp

F32 = np.float32


def sin_inside(x):
    return np.sin(x.astype(F32)).astype(np.float64)


def sin_inside_vjp(xs, gs, scale=1.0, power=1):
    v = np.asarray(gs[0]).astype(F32) ** power
    return ((v * np.cos(xs[0].astype(F32)) * F32(scale)).astype(np.float64),)


def tanh_sum_inside(x):
    return np.asarray(np.tanh(x.astype(F32)).sum(dtype=F32), np.float64)


def tanh_sum_inside_vjp(xs, gs):
    t = np.tanh(xs[0].astype(F32))
    return ((np.asarray(gs[0]).astype(F32) * (F32(1) - t * t)).astype(np.float64),)


X = np.random.default_rng(0).standard_normal((3, 3))


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("f, vjp", [(sin_inside, sin_inside_vjp),
                                    (tanh_sum_inside, tanh_sum_inside_vjp)])
def test_a_float32_computation_inside_a_float64_function_never_fails(f, vjp, mode):
    for seed in range(8):
        r = check_vjp(f, vjp, [X], mode=mode, seed=seed)
        assert r.verdict != FAIL, str(r)


@pytest.mark.parametrize("power", [0, 2])
def test_a_cotangent_ignored_or_squared_still_fails_linearity(power):
    bad = lambda xs, gs: sin_inside_vjp(xs, gs, power=power)
    for seed in range(3):
        r = check_vjp(sin_inside, bad, [X], mode="full", seed=seed)
        assert r.check("hygiene.linearity").verdict == FAIL, str(r)


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("scale", [1.001, 2.0])
def test_a_wrong_formula_computed_in_float32_never_passes(mode, scale):
    # the forward's change is rounded to float32 at float64's steps: nothing is verified
    # there (ROUNDED_AWAY), right or wrong - never a PASS
    bad = lambda xs, gs: sin_inside_vjp(xs, gs, scale=scale)
    for seed in range(3):
        assert check_vjp(sin_inside, bad, [X], mode=mode, seed=seed).verdict != PASS


def test_a_homogeneous_fault_in_a_float64_vjp_is_not_excused():
    # 1e-4 |v| added to one entry: homogeneous (|2 v| = 2 |v|) but not linear, and its
    # gradient is float64, not float32 numbers; the linearity check FAILs it
    def bad(xs, gs):
        g = gs[0] * (1 - np.tanh(xs[0]) ** 2)
        g[1] += 1e-4 * abs(g[1])
        return (g,)

    x = np.random.default_rng(1).uniform(0.5, 1.5, 8)
    for seed in range(3):
        r = check_vjp(np.tanh, bad, [x], mode="full", seed=seed)
        assert r.check("hygiene.linearity").verdict == FAIL, str(r)
