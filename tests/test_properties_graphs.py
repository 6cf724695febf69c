"""Composite-graph properties: the strategy draws the hard structures, the property holds on
the engine (forward against NumPy, gradients against numeric), and it fails when the
engine's gradients or kernels are broken."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import InvalidArgument

import gradverify.engine as tf
from gradverify.engine import registry
from gradverify.harness import FAIL, GradientError, check_gradients
from gradverify.properties.checks import PropertyError
from gradverify.properties.graphs import (
    OPS,
    CompositeGraph,
    Node,
    check_forward,
    composite_graph_test,
    composite_graphs,
)

STRUCTURES = {"fan_out", "used_twice", "op:stop_gradient", "broadcast", "broadcast_both",
              "rank_broadcast", "broadcast_chain", "scalar_output", "tensor_output",
              "inputs:1", "inputs:2", "inputs:3"}
engine_gradients = importlib.import_module("gradverify.engine.gradients")  # not tf.gradients
# Mutation runs: derandomised, no database, the first failure reported unshrunk.
SEARCH = settings(max_examples=150, database=None, derandomize=True, deadline=None,
                  report_multiple_bugs=False, phases=[Phase.generate],
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _run(g: CompositeGraph) -> np.ndarray:
    with tf.Graph().as_default():
        out = g.build(*[tf.constant(x) for x in g.inputs])
        with tf.Session() as s:
            return np.asarray(s.run(out))


# -- the strategy draws what it promises ------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_strategy_draws_every_structure_and_op(dtype):
    seen: set[str] = set()
    sizes: set[int] = set()

    @settings(max_examples=200, database=None, derandomize=True, deadline=None)
    @given(composite_graphs(dtype=dtype))
    def collect(g):
        assert 3 <= g.n_ops <= 8 and 1 <= len(g.inputs) <= 3
        assert all(x.dtype == np.dtype(dtype) for x in g.inputs)
        assert all(x.ndim <= 2 and x.size <= 16 for x in g.twin_values())
        seen.update(g.features)
        sizes.add(g.n_ops)

    collect()
    missing = (STRUCTURES | {f"op:{name}" for name in OPS}) - seen
    assert not missing, f"never drawn in 200 graphs: {sorted(missing)}"
    assert sizes == set(range(3, 9))


@settings(max_examples=40, database=None, deadline=None)
@given(composite_graphs(min_ops=1, max_ops=2))
def test_op_count_bounds_are_honoured(g):
    assert 1 <= g.n_ops <= 2
    # every node feeds the output: each one but the last is consumed later
    consumed = {i for node in g.nodes for i in node.args}
    assert consumed >= set(range(len(g.inputs) + g.n_ops - 1))


@settings(max_examples=40, database=None, deadline=None)
@given(composite_graphs())
def test_drawn_values_stay_away_from_kinks_and_overflow(g):
    values = g.twin_values()
    for node, out in zip(g.nodes, values[len(g.inputs):]):
        args = [values[i] for i in node.args]
        assert np.all(np.isfinite(out))
        if node.op == "maximum":
            assert np.min(np.abs(args[0] - args[1])) > 0
        if node.op == "abs":
            assert np.min(np.abs(args[0])) > 0
        if node.op in ("log", "divide"):
            assert np.min(np.abs(args[-1])) >= 0.2


@pytest.mark.parametrize("kwargs, message", [
    ({"min_ops": 0}, "min_ops=0"),
    ({"max_ops": 21}, "max_ops=21"),
    ({"min_ops": 5, "max_ops": 4}, "min_ops=5 must be <= max_ops=4"),
    ({"min_ops": True}, "min_ops=True"),
    ({"dtype": "int32"}, "float32 or float64"),
    ({"dtype": "nope"}, "float32 or float64"),
])
def test_invalid_arguments_fail_eagerly(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        composite_graphs(**kwargs)
    with pytest.raises(InvalidArgument, match=message):
        composite_graph_test(**kwargs)


# -- the program object ------------------------------------------------------------------------
def _hand_graph() -> CompositeGraph:
    # t2 = t0 + t1 (broadcast both ways); t3 = t2 * t2; t4 = stop_gradient(t2);
    # t5 = t3 - t4 (fan-out of t2); t6 = reduce_sum(t5)
    return CompositeGraph(
        inputs=[np.array([[0.5], [-1.0], [2.0]]), np.array([[1.0, -0.25, 0.75, 1.5]])],
        nodes=(Node("add", (0, 1)), Node("multiply", (2, 2)), Node("stop_gradient", (2,)),
               Node("subtract", (3, 4)),
               Node("reduce_sum", (5,), (("axis", None), ("keepdims", False)))))


def test_features_are_read_off_the_program():
    g = _hand_graph()
    assert {"fan_out", "used_twice", "op:stop_gradient", "broadcast", "broadcast_both",
            "scalar_output", "inputs:2"} <= g.features
    assert "rank_broadcast" not in g.features and "tensor_output" not in g.features


def test_repr_is_the_program_and_runs():
    g = _hand_graph()
    text = repr(g)
    assert "t2 = t0 + t1" in text and "t3 = t2 * t2" in text
    assert "t4 = tf.stop_gradient(t2)" in text and "return t6" in text
    namespace = {"tf": tf, "np": np}
    exec("\n".join(text.splitlines()[1:]), namespace)  # the def and the inputs line
    with tf.Graph().as_default():
        out = namespace["f"](*[tf.constant(x) for x in namespace["inputs"]])
        with tf.Session() as s:
            got = s.run(out)
    a, b = g.inputs
    want = np.sum((a + b) ** 2 - (a + b))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(g.twin(), want, rtol=1e-12)


def test_hand_graph_gradient_matches_the_hand_derived_one():
    g = _hand_graph()
    a, b = g.inputs
    with tf.Graph().as_default():
        xs = [tf.constant(x) for x in g.inputs]
        grads = tf.gradients(g.build(*xs), xs)
        with tf.Session() as s:
            ga, gb = s.run(grads)
    s_ = a + b  # d/ds sum(s*s - stop(s)) = 2 s (the stopped branch contributes nothing)
    np.testing.assert_allclose(ga, np.sum(2 * s_, axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(gb, np.sum(2 * s_, axis=0, keepdims=True), rtol=1e-12)


# -- the property holds on the engine ----------------------------------------------------------
def test_composite_property_float64():
    settings(max_examples=60, deadline=None)(composite_graph_test())()


def test_composite_property_float32():
    settings(max_examples=30, deadline=None)(composite_graph_test(dtype="float32"))()


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_zero_by_cancellation_is_never_a_fail(mode):
    # (t0 / t1) * t1 does not depend on t1: its gradient is rounding noise; the harness
    # itself must not call that FAIL (no property-side downgrade any more).
    g = CompositeGraph(inputs=[np.array([[0.5], [-0.75], [-0.11]]),
                               np.array([[-1.81, -1.95, -0.5]])],
                       nodes=(Node("divide", (0, 1)), Node("multiply", (2, 1)),
                              Node("tanh", (3,)), Node("l2_loss", (4,))))
    for seed in range(3):
        report = check_gradients(g.build, g.inputs, mode=mode, seed=seed)
        assert report.verdict != FAIL, str(report)


# -- mutations: the property fails when the engine is wrong ------------------------------------
def _failing_graphs(n: int = 120) -> list[CompositeGraph]:
    """Graphs among ``n`` drawn whose gradient check FAILs (beyond rounding)."""
    failing: list[CompositeGraph] = []

    @settings(SEARCH, max_examples=n)
    @given(composite_graphs())
    def collect(g):
        report = check_gradients(g.build, g.inputs, mode="full", seed=0)
        if report.verdict == FAIL:
            failing.append(g)

    collect()
    return failing


def test_dropped_gradient_contributions_need_fan_out_or_reuse(monkeypatch):
    # aggregation keeps only the last gradient arriving at a tensor
    monkeypatch.setattr(engine_gradients, "_aggregate",
                        lambda grads: grads[-1] if grads else None)
    with pytest.raises(GradientError):
        SEARCH(composite_graph_test())()
    failing = _failing_graphs()
    assert len(failing) >= 5
    for g in failing:  # only a tensor with several consumers can lose a contribution
        assert g.features & {"fan_out", "used_twice"}, repr(g)


def test_unbroadcast_by_mean_needs_broadcasting(monkeypatch):
    def mean_unbroadcast(grad, like, *, op_name, input_index):
        shape, gshape = np.shape(like), np.shape(grad)
        if gshape == shape:
            return grad
        lead = len(gshape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(shape) if s == 1 and gshape[lead + i] != 1)
        return np.mean(grad, axis=axes).astype(grad.dtype).reshape(shape)

    monkeypatch.setattr(registry.lookup("Unbroadcast"), "kernel", mean_unbroadcast)
    with pytest.raises(GradientError):
        SEARCH(composite_graph_test())()
    failing = _failing_graphs()
    assert len(failing) >= 5
    for g in failing:
        assert "broadcast" in g.features, repr(g)


def test_sign_flipped_tanh_gradient_fails(monkeypatch):
    def flipped(op, grad):
        y = op.outputs[0]
        return grad * (y * y - 1.0)

    monkeypatch.setattr(registry.lookup("Tanh"), "grad_fn", flipped)
    with pytest.raises(GradientError) as info:
        SEARCH(composite_graph_test())()
    assert "tf.tanh(" in str(info.value.__cause__)  # the program is shown
    failing = _failing_graphs()
    assert len(failing) >= 5
    for g in failing:
        assert "op:tanh" in g.features, repr(g)


def test_wrong_kernel_fails_the_forward_check(monkeypatch):
    sigmoid = registry.lookup("Sigmoid")
    real = sigmoid.kernel
    monkeypatch.setattr(sigmoid, "kernel", lambda x: (real(x) * 1.001).astype(x.dtype))
    g = CompositeGraph(inputs=[np.array([0.5, -1.0])], nodes=(Node("sigmoid", (0,)),))
    with pytest.raises(PropertyError, match="NumPy twin"):
        check_forward(g)
    with pytest.raises(PropertyError, match="NumPy twin"):
        SEARCH(composite_graph_test())()
