"""Misbehaving user code beyond tests/test_harness_robust.py (issue 10, item 6): a gradient
that builds at order 1 but not at order 2, ``sys.exit`` while building, a JVP that hangs, a
time limit through ``check_gradients``, and several misbehaving checks in a row."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import registry
from gradverify.engine.registry import op
from gradverify.harness import FAIL, PASS, check_gradients, check_vjp


@pytest.fixture
def first_order_only():
    """An op whose gradient is built from an op that has no gradient: order 1 builds,
    order 2 cannot (``LookupError`` from ``gradients``)."""

    @op("AuditDoubleNoGrad", api=None)
    def double(x):
        return x * 2.0

    @op("AuditCubeFirstOrderOnly", api=None)
    def cube(x):
        return x ** 3

    @cube.gradient
    def _cube_grad(o, grad):
        x = o.inputs[0]
        return grad * 1.5 * double(x) * x  # 3 x^2, through an op with no gradient

    yield lambda x: cube(x)
    registry.unregister("AuditCubeFirstOrderOnly")
    registry.unregister("AuditDoubleNoGrad")


def test_a_gradient_that_cannot_be_built_at_order_2_is_a_fail_report(first_order_only):
    x = np.array([1.0, -2.0, 0.5])
    assert check_gradients(first_order_only, [x], order=1).verdict == PASS
    r = check_gradients(first_order_only, [x], order=2)
    assert r.verdict == FAIL
    reason = r.check("build").reason
    assert "order 2" in reason and "LookupError" in reason and "AuditDoubleNoGrad" in reason


def test_sys_exit_while_building_is_a_fail_report():
    def f(x):
        sys.exit(4)
    r = check_gradients(f, [np.ones(2)])
    assert r.verdict == FAIL and "SystemExit" in r.check("build").reason


def test_a_jvp_that_never_returns_is_a_named_fail():
    def jvp(xs, ts):
        time.sleep(30)
    start = time.monotonic()
    r = check_vjp(np.sin, lambda xs, gs: (np.cos(xs[0]) * gs[0],), [np.linspace(0, 1, 3)],
                  jvp=jvp, timeout=0.3)
    assert time.monotonic() - start < 10
    assert r.verdict == FAIL and "did not return within 0.3 s" in r.check("jvp").reason
    assert r.check("gradient").verdict == PASS  # the VJP was still verified


def test_time_limit_applies_through_check_gradients():
    # an engine function whose forward hangs once the check starts differencing
    calls = []

    def slow_tanh(x):
        calls.append(1)
        if len(calls) > 2:
            time.sleep(30)
        return np.tanh(x)

    @op("AuditSlowTanh", api=None)
    def slow(x):
        return slow_tanh(x)

    @slow.gradient
    def _slow_grad(o, grad):
        return grad * (1.0 - tf.tanh(o.inputs[0]) ** 2)

    try:
        start = time.monotonic()
        r = check_gradients(lambda x: slow(x), [np.linspace(-1, 1, 4)], timeout=0.5)
        assert time.monotonic() - start < 10
        assert r.verdict == FAIL and "did not return within 0.5 s" in r.check(
            "forward").reason
    finally:
        registry.unregister("AuditSlowTanh")


def test_misbehaving_checks_in_a_row_each_get_their_own_fail():
    x = np.linspace(-1.0, 1.0, 4)
    good_vjp = lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),)

    def hangs(x):
        time.sleep(30)

    def exits(x):
        sys.exit(0)  # even a "successful" exit code is a misbehaving forward

    def returns_none(x):
        return None
    reports = [check_vjp(fn, good_vjp, [x], timeout=0.3)
               for fn in (hangs, exits, returns_none)]
    assert [r.verdict for r in reports] == [FAIL, FAIL, FAIL]
    reasons = [r.check("forward").reason for r in reports]
    assert "did not return" in reasons[0]
    assert "sys.exit(0)" in reasons[1]
    assert "NoneType" in reasons[2]
    # without a time limit (no worker thread) the same exit is caught the same way
    assert "sys.exit(0)" in check_vjp(exits, good_vjp, [x]).check("forward").reason
    assert check_vjp(np.tanh, good_vjp, [x], timeout=5).verdict == PASS
