"""Flush-to-zero in the precision check: a float32 evaluation that flushes subnormal inputs,
results and intermediates to zero (as XLA on CPU does) never FAILs when its gradient is the
float64 gradient at the flushed point, or when a flushed intermediate may explain the
difference; a real float32 fault at the same points still FAILs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradverify.harness import check_vjp
from gradverify.harness.reasons import Reason
from tests import flush_to_zero as ftz

SEEDS = [0, 1, 2]
SUB = float(np.finfo(np.float32).smallest_subnormal)  # 1.4e-45
TINY = float(np.finfo(np.float32).tiny)  # 1.18e-38, the smallest normal


def _f32(*values):
    return np.array(values, np.float32)


def _plus_one(a, b):  # normal outputs: nothing to excuse but the flushed inputs
    return ftz.maximum(a, b) + a.dtype.type(1)


@pytest.mark.parametrize("seed", SEEDS)
def test_subnormal_tie_is_the_flushed_gradient(seed):
    a, b = _f32(SUB, 1.0, 1e-40, -3e-39), _f32(0.0, 0.0, -1e-40, 2e-39)
    r = check_vjp(ftz.maximum, ftz.maximum_vjp, [a, b], seed=seed)
    assert r.verdict == "PASS", str(r)
    prec = r.check("precision")
    assert prec.verdict == "PASS" and prec.details["flush_explained"] >= 3, str(r)


@pytest.mark.parametrize("seed", SEEDS)
def test_flushed_input_at_a_singularity_gives_inf_as_float64_does_there(seed):
    r = check_vjp(ftz.sqrt, ftz.sqrt_vjp, [_f32(1e-40, 1.0, 4.0)], seed=seed)
    assert r.verdict == "PASS", str(r)
    assert r.check("precision").details["flush_explained"] == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_flushed_intermediate_is_inconclusive_not_fail(seed):
    r = check_vjp(ftz.relu_scaled, ftz.relu_scaled_vjp, [_f32(1e-10, 1.0)], seed=seed)
    assert r.verdict == "INCONCLUSIVE", str(r)
    assert Reason.SUBNORMAL_FLUSHED in r.codes


@pytest.mark.parametrize("seed", SEEDS)
def test_intermediate_flushed_out_of_sight_is_inconclusive_not_fail(seed):
    x = _f32(1e-10, 2.0, -1.0)
    r = check_vjp(ftz.relu_scaled_back, ftz.relu_scaled_back_vjp, [x], seed=seed)
    assert r.verdict == "INCONCLUSIVE", str(r)
    assert Reason.SUBNORMAL_FLUSHED in r.codes


@pytest.mark.parametrize("seed", SEEDS)
def test_gradients_flushed_near_the_smallest_normal_stay_linear(seed):
    x = np.random.default_rng(seed).standard_normal(9).astype(np.float32) * 3
    r = check_vjp(ftz.scaled, ftz.scaled_vjp, [x], seed=seed)
    assert r.verdict == "PASS", str(r)


@pytest.mark.parametrize("seed", SEEDS)
def test_float32_fault_at_flushed_inputs_still_fails(seed):
    vjp = lambda xs, gs: ftz.maximum_vjp(xs, gs, scale32=1.5)
    a, b = _f32(SUB, 2.0, 1e-40), _f32(0.0, 1.0, -1e-40)
    r = check_vjp(_plus_one, vjp, [a, b], seed=seed)
    assert r.verdict == "FAIL" and r.check("precision").verdict == "FAIL", str(r)
    assert (r.diagnosis or "").startswith("wrong only in low precision"), str(r)


@pytest.mark.parametrize("seed", SEEDS)
def test_float32_fault_only_at_the_flushed_tie_still_fails(seed):
    # The float32 path splits a tie 1/4 : 3/4, the float64 path (same function) 1/2 : 1/2:
    # the flushed point does not explain it.
    def vjp(xs, gs):
        share = 0.25 if xs[0].dtype == np.float32 else 0.5
        return ftz.maximum_vjp(xs, gs, scale_tie=share)
    a, b = _f32(SUB, 2.0, 1e-40), _f32(0.0, 1.0, -1e-40)
    r = check_vjp(_plus_one, vjp, [a, b], seed=seed)
    assert r.check("precision").verdict == "FAIL", str(r)


def _with_subnormals(shape):
    special = st.sampled_from([0.0, -0.0, SUB, -SUB, 1e-40, -1e-40, 3e-39, TINY, 1.0, -2.0])
    return hnp.arrays(np.float32, shape, elements=st.one_of(
        special, st.floats(-3, 3, width=32)))


pairs = hnp.array_shapes(min_dims=1, max_dims=2, max_side=4).flatmap(
    lambda s: st.tuples(_with_subnormals(s), _with_subnormals(s)))


@given(pairs, st.integers(0, 3))
def test_flushing_maximum_never_fails(ab, seed):
    a, b = ab
    r = check_vjp(ftz.maximum, ftz.maximum_vjp, [a, b], seed=seed)
    assert r.verdict != "FAIL", str(r)


@given(pairs, st.integers(0, 3))
def test_float32_fault_of_flushing_maximum_always_fails(ab, seed):
    a, b = ab
    # At a tie (or within float32 rounding of one) every share is within rounding of x, so
    # the fault shows only at an entry apart from its partner after the flush.
    fa, fb = ftz.ftz(a).astype(np.float64), ftz.ftz(b).astype(np.float64)
    assume(np.any(np.abs(fa - fb) > 1e-5 * (np.abs(fa) + np.abs(fb))))
    vjp = lambda xs, gs: ftz.maximum_vjp(xs, gs, scale32=1.5)
    r = check_vjp(_plus_one, vjp, [a, b], seed=seed)
    assert r.verdict == "FAIL", str(r)


@pytest.mark.parametrize("seed", range(4))
def test_a_float32_fault_beside_an_input_the_output_ignores_fails(seed):
    # maximum(1, 1.25): moving 1 alone leaves the output unchanged, which the rounding
    # sensitivity took for a saturated output and moved 1 by half of itself - past 1.25, so
    # the float64 gradient moved by the whole cotangent and excused a 1.5x float32 gradient
    vjp = lambda xs, gs: ftz.maximum_vjp(xs, gs, scale32=1.5)
    for a, b in ((1.0, 1.25), (-2.0, -0.5), (3.0, 1.0)):
        ab = [np.array([a], np.float32), np.array([b], np.float32)]
        r = check_vjp(_plus_one, vjp, ab, seed=seed)
        assert r.check("precision").verdict == "FAIL", str(r)
        assert check_vjp(_plus_one, ftz.maximum_vjp, ab, seed=seed).verdict == "PASS"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_intermediate_flushed_in_the_backward_pass_is_inconclusive_not_fail(seed, mode):
    # Outputs and gradient at x are ordinary: only v * 1e-38 inside the VJP is subnormal.
    # Scaling the cotangent by 2^64 (exact) brings it back: the range, not the formula.
    r = check_vjp(ftz.through_tiny, ftz.through_tiny_vjp, [_f32(2.0, -5.0, 300.0)],
                  seed=seed, mode=mode)
    assert r.verdict == "INCONCLUSIVE", str(r)
    assert r.codes == [Reason.SUBNORMAL_FLUSHED], str(r)
    assert "scaled by 2^64" in r.check("precision").reason


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scale32", [1.01, -1.0, 0.5])
def test_float32_fault_beside_a_backward_flush_still_fails(seed, scale32):
    vjp = lambda xs, gs: ftz.through_tiny_vjp(xs, gs, scale32=scale32)
    r = check_vjp(ftz.through_tiny, vjp, [_f32(2.0, -5.0, 300.0)], seed=seed)
    assert r.verdict == "FAIL" and r.check("precision").verdict == "FAIL", str(r)
