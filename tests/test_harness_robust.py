"""Misbehaving user functions, not-applicable checks, reasons, and the forward-mode seam."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import FAIL, INCONCLUSIVE, PASS, check_gradients, check_vjp
from gradverify.harness.reasons import Reason
from gradverify.harness.report import NOT_APPLICABLE


def tanh_vjp(xs, gs):
    return (gs[0] * (1 - np.tanh(xs[0]) ** 2),)


X = np.linspace(-1.0, 1.0, 4)


# -- time limit, sys.exit ----------------------------------------------------------------------
def test_a_forward_that_never_returns_is_a_named_fail_and_the_harness_goes_on():
    calls = []

    def forward(x):
        calls.append(1)
        if len(calls) > 2:        # hangs once the check starts differencing
            time.sleep(30)
        return np.tanh(x)
    start = time.monotonic()
    r = check_vjp(forward, tanh_vjp, [X], timeout=0.5)
    assert time.monotonic() - start < 10
    assert r.verdict == FAIL
    assert "did not return within 0.5 s" in r.check("forward").reason
    # the next check runs normally
    assert check_vjp(np.tanh, tanh_vjp, [X], timeout=5).verdict == PASS


def test_a_vjp_that_never_returns_is_a_named_fail():
    def vjp(xs, gs):
        time.sleep(30)
    r = check_vjp(np.tanh, vjp, [X], timeout=0.3)
    assert r.verdict == FAIL and "did not return" in r.check("vjp").reason


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_sys_exit_in_user_code_is_a_named_fail(timeout):
    def forward(x):
        sys.exit(3)
    r = check_vjp(forward, tanh_vjp, [X], timeout=timeout)
    assert r.verdict == FAIL
    assert "sys.exit(3)" in r.check("forward").reason

    def vjp(xs, gs):
        raise SystemExit("bye")
    r = check_vjp(np.tanh, vjp, [X], timeout=timeout)
    assert r.verdict == FAIL and "SystemExit" in r.check("vjp").reason


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_keyboard_interrupt_still_stops_the_run(timeout):
    def forward(x):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        check_vjp(forward, tanh_vjp, [X], timeout=timeout)


# -- hygiene of what comes back -------------------------------------------------------------
@pytest.mark.parametrize(("out", "words"), [
    (lambda x: None, "output 0 is NoneType"),
    (lambda x: "tanh", "output 0 is str"),
    (lambda x: np.array([object()] * x.size), "dtype object"),
    (lambda x: (np.tanh(x), None), "output 1 is NoneType"),
    (lambda x: np.tanh(x) + 0j, "dtype complex128"),
])
def test_forward_returning_no_real_array_is_a_named_fail(out, words):
    r = check_vjp(out, tanh_vjp, [X])
    assert r.verdict == FAIL
    assert words in r.check("forward").reason


@pytest.mark.parametrize(("grad", "words"), [
    (lambda x: "oops", "gradient is str"),
    (lambda x: np.array([object()] * x.size), "dtype object"),
])
def test_vjp_returning_no_real_array_is_a_named_fail(grad, words):
    r = check_vjp(np.tanh, lambda xs, gs: (grad(xs[0]),), [X])
    assert r.verdict == FAIL
    assert words in r.check("hygiene.gradient_type").reason


def test_vjp_returning_the_wrong_dtype_is_a_named_fail():
    r = check_vjp(np.tanh, lambda xs, gs: (tanh_vjp(xs, gs)[0].astype(np.float32),), [X])
    assert r.verdict == FAIL and r.check("hygiene.gradient_shape").verdict == FAIL


# -- not applicable, build failures ---------------------------------------------------------
def test_cast_to_int_is_not_applicable_not_inconclusive():
    r = check_gradients(lambda x: tf.cast(x, tf.int32), [np.array([1.5, -2.0])])
    assert r.verdict == NOT_APPLICABLE
    assert r.check("gradient").code is Reason.NO_FLOAT_OUTPUTS
    r.raise_for_failure(strict=True)  # nothing to verify is not a failure
    r = check_vjp(lambda x: x.astype(int), lambda xs, gs: (None,), [np.array([1, 2])])
    assert r.verdict == NOT_APPLICABLE and r.check("gradient").code is Reason.NO_FLOAT_INPUTS


@pytest.mark.parametrize("order", [1, 2])
def test_a_function_that_fails_to_build_is_a_fail_report_at_any_order(order):
    def f(x):
        raise RuntimeError("no such op")
    r = check_gradients(f, [np.ones(3)], order=order)
    assert r.verdict == FAIL
    assert "no such op" in r.check("build").reason and f"order {order}" in r.check(
        "build").reason


def test_inconclusive_reasons_carry_their_code():
    r = check_vjp(lambda x: (x * 1e-3 + 1e10) - 1e10, lambda xs, gs: (gs[0] * 1e-3,),
                  [np.array([1.0, 2.0])])
    assert r.verdict == INCONCLUSIVE
    assert r.codes == [Reason.ROUNDED_AWAY]
    assert r.to_dict()["checks"][-2]["code"] in {c.name for c in Reason}


# -- forward mode ---------------------------------------------------------------------------------
def _sin_jvp(scale=1.0, entry=None):
    def jvp(xs, ts):
        t = np.cos(xs[0]) * ts[0] * scale
        if entry is not None:
            t = t.copy()
            t[entry] *= 1.5
        return (t,)
    return jvp


def _sin_vjp(xs, gs):
    return (np.cos(xs[0]) * gs[0],)


@pytest.mark.parametrize(("mode", "n"), [("full", 6), ("fast", 6), ("fast", 5000)])
def test_jvp_checked_in_both_modes(mode, n):
    x = np.linspace(-2, 2, n)
    r = check_vjp(np.sin, _sin_vjp, [x], jvp=_sin_jvp(), mode=mode)
    assert r.verdict == PASS, str(r)
    assert r.check("jvp").verdict == PASS
    r = check_vjp(np.sin, _sin_vjp, [x], jvp=_sin_jvp(entry=n // 2), mode=mode)
    assert r.verdict == FAIL and r.check("jvp").verdict == FAIL
    assert r.check("gradient").verdict == PASS  # the vjp is right


def test_jvp_vjp_consistency_is_checked_in_fast_mode():
    x = np.linspace(-2, 2, 300)
    r = check_vjp(np.sin, _sin_vjp, [x], jvp=_sin_jvp(scale=1 + 1e-7), mode="fast")
    assert r.check("jvp.consistency").verdict == FAIL


def test_jvp_with_wrong_output_shape_fails():
    r = check_vjp(np.sin, _sin_vjp, [X], jvp=lambda xs, ts: (ts[0][:2],), mode="fast")
    assert r.check("jvp").verdict == FAIL


@pytest.mark.parametrize("mode", ["auto", "full", "fast"])
def test_an_empty_input_passes_with_its_reason_and_a_wrong_shape_fails(mode):
    sin_vjp = lambda xs, gs: (gs[0] * np.cos(xs[0]),)
    r = check_vjp(np.sin, sin_vjp, [np.zeros((0, 3))], mode=mode)
    assert r.verdict == "PASS" and "no entries" in r.check("gradient").reason, str(r)
    bad = check_vjp(np.sin, lambda xs, gs: (np.zeros(3),), [np.zeros((0, 3))], mode=mode)
    assert bad.verdict == "FAIL" and bad.check("hygiene.gradient_shape").verdict == "FAIL"


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_an_ignored_cotangent_fails_the_gradient_check_too(mode):
    # the linearity FAIL names it; its non-linearity is not charged to the gradient check's
    # budget as rounding (that made it INCONCLUSIVE beside the FAIL)
    r = check_vjp(np.sin, lambda xs, gs: (np.cos(xs[0]),), [np.linspace(-1, 1, 5)],
                  mode=mode, seed=0)
    assert r.check("hygiene.linearity").verdict == FAIL
    assert r.check("gradient").verdict == FAIL, str(r)
    assert r.diagnosis.startswith("ignores the upstream gradient")


@pytest.mark.parametrize("mode", ["fast", "auto", "full"])
def test_an_empty_input_beside_others_is_held_fixed(mode):
    # fast mode raised ValueError (a maximum over no entries) on the empty input's ranges
    f = lambda x, y: x.sum() + 2 * y
    good = lambda xs, gs: (np.full(xs[0].shape, gs[0]), 2 * gs[0])
    xs = [np.zeros(0), np.array(1.5)]
    assert check_vjp(f, good, xs, mode=mode).verdict == "PASS"
    assert check_vjp(f, lambda xs, gs: (good(xs, gs)[0], 3 * gs[0]), xs,
                     mode=mode).verdict == "FAIL"
    assert check_vjp(f, lambda xs, gs: (np.zeros(3), 2 * gs[0]), xs,
                     mode=mode).verdict == "FAIL"  # its gradient's shape is still checked
