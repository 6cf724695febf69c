"""What makes the gate cheaper without changing a number: the workers' collector setting,
and the engine adapter's builds (one forward plan when nothing is frozen; an order-2
check's cotangent shapes from a forward-only build)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import engine_adapter
from gradverify.harness.engine_adapter import EngineFunction, check_gradients


def test_a_worker_freezes_what_the_parent_imported():
    code = ("import gc; from gradverify.workers import _worker_init; "
            "before = gc.get_freeze_count(); _worker_init(); "
            "print(before, gc.get_freeze_count() > 1000)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["0", "True"]


@pytest.mark.parametrize("frozen", [False, True])
def test_the_base_point_and_later_forwards_agree(frozen):
    def f(x, y):
        z = tf.stop_gradient(x * y) if frozen else x * y
        return tf.tanh(z) + x, tf.reduce_sum(y)
    x, y = np.linspace(-1, 1, 6).reshape(2, 3), np.arange(6.0).reshape(2, 3) / 7
    fn = EngineFunction(f, [x.shape, y.shape], [x.dtype, y.dtype])
    assert bool(fn.frozen) is frozen
    first, again = fn.forward(x, y), fn.forward(x, y)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert [a.shape for a in first] == [(2, 3), ()]


def test_order2_cotangents_come_from_a_forward_only_build(monkeypatch):
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    built = []
    real = EngineFunction.__init__

    def counting(self, f, shapes, dtypes, order=1):
        built.append(order)
        real(self, f, shapes, dtypes, order)
    monkeypatch.setattr(EngineFunction, "__init__", counting)
    r = check_gradients(lambda a: tf.nn.softmax(a) * a, [x], order=2, seed=4)
    assert r.verdict == "PASS" and built == [2]  # no order-1 build for the shapes
    ys = engine_adapter._outputs_at(lambda a: (tf.nn.softmax(a), tf.argmax(a, 1)), [x])
    assert [(y.shape, y.dtype) for y in ys] == [((2, 2), np.float64), ((2,), np.int64)]


def test_order2_build_failure_is_still_a_fail_report():
    def broken(a):
        raise ValueError("no graph for you")
    r = check_gradients(broken, [np.ones(3)], order=2)
    assert r.verdict == "FAIL" and "no graph for you" in r.checks[0].reason
