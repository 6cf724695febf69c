"""The harness catches every seeded fault and never fails a tricky but correct gradient."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import FAIL, PASS, check_gradients
from tests import seeded_faults

CATALOGUE = seeded_faults.register()  # built once for the parameter ids ...
seeded_faults.unregister()            # ... and registered only while these tests run


@pytest.fixture(scope="module", autouse=True)
def _registered_faults():
    seeded_faults.register()
    yield
    seeded_faults.unregister()


def _failing_text(report) -> str:
    parts = [report.diagnosis or ""]
    parts += [f"{c.name}: {c.reason}" for c in report.checks if c.verdict == FAIL]
    return " | ".join(parts)


def test_the_catalogue_covers_every_bug_pattern():
    rows = {f.row for f in CATALOGUE + seeded_faults.COMPOSITES} | {18, 19}  # + machinery
    assert rows >= set(range(1, 23))
    assert len(CATALOGUE) + len(seeded_faults.COMPOSITES) + 2 >= 30


@pytest.mark.parametrize("fault", CATALOGUE + seeded_faults.COMPOSITES,
                         ids=lambda f: f"row{f.row}-{f.op}")
def test_seeded_fault_is_caught(fault):
    inputs = fault.inputs(np.random.default_rng(0))
    report = check_gradients(fault.call, inputs, order=fault.order, mode=fault.mode)
    assert report.verdict == FAIL, str(report)
    text = _failing_text(report)
    for expected in fault.expect:
        assert expected in text, f"{expected!r} not in {text!r}\n{report}"


@pytest.mark.parametrize("fault", [f for f in CATALOGUE if f.order == 2],
                         ids=lambda f: f.op)
def test_second_order_faults_are_right_at_first_order(fault):
    inputs = fault.inputs(np.random.default_rng(0))
    assert check_gradients(fault.call, inputs, order=1).verdict == PASS


def test_stop_gradient_leak_is_caught(monkeypatch):
    seeded_faults.leak_stop_gradient(monkeypatch)
    report = check_gradients(lambda x: tf.stop_gradient(x) * x, [np.array([1.0, -2.0, 3.0])])
    assert report.verdict == FAIL, str(report)


def test_assert_gradients_raises_on_fail_and_on_inconclusive_only_when_strict():
    from gradverify.harness import GradientError, assert_gradients
    seeded_faults.register()
    with pytest.raises(GradientError, match="sign flipped"):
        assert_gradients(lambda x: seeded_faults_op("FaultTanhSign")(x), [np.ones(3)])
    # INCONCLUSIVE: the change of x is rounded away inside the function
    rounded = lambda x: (x * 1e-3 + 1e10) - 1e10
    assert assert_gradients(rounded, [np.array([1.0, 2.0])]).verdict == "INCONCLUSIVE"
    with pytest.raises(GradientError):
        assert_gradients(rounded, [np.array([1.0, 2.0])], strict=True)
    # NOT_APPLICABLE is not a failure, even when strict: there is nothing to verify
    jump = lambda x: tf.sign(x) * 1.0
    assert assert_gradients(jump, [np.array([0.0])], strict=True).verdict == "NOT_APPLICABLE"


def seeded_faults_op(name):
    return tf.registry.lookup(name)


def test_stop_gradient_without_the_leak_passes():
    report = check_gradients(lambda x: tf.stop_gradient(x) * x, [np.array([1.0, -2.0, 3.0])])
    assert report.verdict == PASS, str(report)


def test_dropped_aggregation_is_caught(monkeypatch):
    seeded_faults.drop_aggregation(monkeypatch)
    report = check_gradients(lambda x: x * x + tf.exp(x), [np.array([0.5, -1.0, 2.0])])
    assert report.verdict == FAIL, str(report)


# -- tricky but correct: never FAIL ---------------------------------------------------------
def _xent(z, y):
    return tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=z)


TRICKY = [
    ("relu at exact zeros", tf.nn.relu, lambda: [np.array([0.0, 0.0, 1.0, -1.0, 0.0])]),
    ("abs at zero", tf.abs, lambda: [np.array([0.0, -2.0, 0.0, 3.0])]),
    ("maximum with exact ties", tf.maximum,
     lambda: [np.array([1.0, 2.0, -3.0]), np.array([1.0, 0.5, -3.0])]),
    ("minimum with exact ties", tf.minimum,
     lambda: [np.array([1.0, 2.0, -3.0]), np.array([1.0, 0.5, -3.0])]),
    ("reduce_max with ties", lambda x: tf.reduce_max(x, axis=1),
     lambda: [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])]),
    ("clip_by_value at its bounds", lambda x: tf.clip_by_value(x, -1.0, 1.0),
     lambda: [np.array([-1.0, 1.0, 0.5, -2.0, 1.0])]),
    ("relu6 at both kinks", tf.nn.relu6, lambda: [np.array([0.0, 6.0, 3.0, 7.0])]),
    ("huge magnitudes in matmul", tf.matmul,
     lambda: [np.array([[1e8, -2e8], [3e8, 1e7]]), np.array([[2e-3, 1e5], [-4e4, 7e2]])]),
    ("tanh saturated", tf.tanh, lambda: [np.array([30.0, -40.0, 1e4, 0.3])]),
    ("tiny gradients", lambda x: x * 1e-300, lambda: [np.array([1.0, -2.0])]),
    ("log near 0+", tf.log, lambda: [np.array([1e-300, 1e-12, 3.0])]),
    ("exp of large inputs", tf.exp, lambda: [np.array([700.0, 650.0, -700.0])]),
    ("softmax with one dominant logit", tf.nn.softmax,
     lambda: [np.array([[1e4, 0.0, -3.0], [0.5, 0.2, 0.1]])]),
    ("cross-entropy with a dominant logit", _xent,
     lambda: [np.array([[50.0, 0.0, -3.0]]), np.array([[0.0, 1.0, 0.0]])]),
    ("sigmoid cross-entropy at extreme logits",
     lambda z, y: tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z),
     lambda: [np.array([1e4, -1e4, 0.0]), np.array([0.0, 1.0, 0.5])]),
    ("reduce_prod with zeros", tf.reduce_prod, lambda: [np.array([2.0, 0.0, 3.0, 0.0])]),
    ("gather with duplicate indices",
     lambda p: tf.gather(p, np.array([0, 2, 2, 0, 2], np.int32)),
     lambda: [np.arange(12.0).reshape(4, 3)]),
    ("a tensor used three times", lambda x: x * x * tf.sin(x) + x,
     lambda: [np.array([0.3, -1.2, 2.0])]),
]


@pytest.mark.parametrize(("name", "f", "inputs"), TRICKY, ids=[t[0] for t in TRICKY])
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_tricky_but_correct_is_never_fail(name, f, inputs, mode):
    for seed in range(3):
        report = check_gradients(f, inputs(), mode=mode, seed=seed)
        assert report.verdict != FAIL, str(report)


@pytest.mark.parametrize(("name", "f", "inputs"), TRICKY[:9], ids=[t[0] for t in TRICKY[:9]])
def test_tricky_kinks_and_ties_pass_outright(name, f, inputs):
    assert check_gradients(f, inputs(), mode="full").verdict == PASS


# -- the sensitivity bar ----------------------------------------------------------------------
SENSITIVE = [
    ("matmul", tf.matmul, lambda r: [r.standard_normal((3, 4)), r.standard_normal((4, 2))]),
    ("tanh", tf.tanh, lambda r: [r.standard_normal(5)]),
    ("l2_loss", tf.nn.l2_loss, lambda r: [r.standard_normal(6)]),
    ("softmax cross-entropy", _xent,
     lambda r: [r.standard_normal((3, 5)), np.eye(5)[r.integers(0, 5, 3)]]),
]


@pytest.mark.parametrize(("name", "f", "inputs"), SENSITIVE, ids=[s[0] for s in SENSITIVE])
def test_correct_gradients_never_fail_across_seeds(name, f, inputs):
    for seed in range(20):
        x = inputs(np.random.default_rng(seed))
        for mode in ("full", "fast"):
            report = check_gradients(f, x, mode=mode, seed=seed)
            assert report.verdict == PASS, str(report)


@pytest.mark.parametrize("fault", [f for f in CATALOGUE if f.op.endswith("Tiny")],
                         ids=lambda f: f.op)
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_one_part_in_a_million_is_caught_in_both_modes(fault, mode):
    for seed in range(5):
        x = fault.inputs(np.random.default_rng(seed))
        report = check_gradients(fault.call, x, mode=mode, seed=seed)
        assert report.verdict == FAIL, str(report)
