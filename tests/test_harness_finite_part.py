"""An output that overflows at x: the finite entries are judged (a wrong gradient there
FAILs), the overflowing ones set aside and reported; INCONCLUSIVE only when nothing finite
is left."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import check_gradients, check_vjp
from gradverify.harness.reasons import Reason


def _exp_vjp(xs, gs, scale=1.0):
    return (gs[0] * np.exp(xs[0]) * scale,)


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("seed", [0, 1])
def test_finite_entries_are_judged_and_the_overflow_set_aside(mode, seed):
    r = check_vjp(np.exp, _exp_vjp, [np.array([1.0, 800.0, -3.0])], mode=mode, seed=seed)
    assert r.verdict == "PASS", str(r)
    grad = r.check("gradient")
    assert grad.details["set_aside"] == {"outputs_not_finite": 1,
                                         "inputs_reaching_only_them": 1}
    assert "set aside" in grad.reason


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("scale", [1.01, -1.0, 0.0])
def test_a_wrong_gradient_on_the_finite_entries_still_fails(mode, scale):
    r = check_vjp(np.exp, lambda xs, gs: _exp_vjp(xs, gs, scale),
                  [np.array([1.0, 800.0, -3.0])], mode=mode)
    assert r.verdict == "FAIL", str(r)


def test_nothing_finite_left_is_inconclusive():
    r = check_vjp(np.exp, _exp_vjp, [np.array([1000.0, 800.0])])
    assert r.verdict == "INCONCLUSIVE" and r.codes == [Reason.OUTPUT_NOT_FINITE], str(r)


@pytest.mark.parametrize("seed", [0, 1])
def test_float32_overflow_beside_finite_entries(seed):
    # exp(100) overflows in float32 only: the float64 reference is restricted alike
    r = check_gradients(tf.exp, [np.array([1.0, 100.0, -3.0], np.float32)], seed=seed)
    assert r.verdict == "PASS", str(r)


def test_a_product_with_an_overflowing_factor_sets_its_inputs_aside():
    # pow(10, 400) overflows: both of its inputs reach only that output
    r = check_gradients(lambda x, y: tf.pow(x, y),
                        [np.array([10.0, 2.0]), np.array([400.0, 3.0])])
    assert r.verdict == "PASS", str(r)
    assert r.check("gradient").details["set_aside"]["inputs_reaching_only_them"] == 2
