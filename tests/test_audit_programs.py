"""The step auditor on the training programs people write: gradient pipelines, schedules,
hand-written and locked updates, get_variable/variable_scope reuse, several train ops.
Every correct program PASSes on every step in float32 and float64; every seeded faulty one
FAILs with a reason that names the variable and the rule."""

from __future__ import annotations

import pytest

import gradverify.engine as tf
from gradverify.harness import FAIL, PASS, audit_step
from tests.seeded_programs import PROGRAMS, build

CORRECT = [p for p in PROGRAMS if p.fails is None]
FAULTY = [p for p in PROGRAMS if p.fails is not None]
DTYPES = [tf.float32, tf.float64]


def _session(before=None):
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    return s


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("program", CORRECT, ids=lambda p: p.name)
def test_correct_program_passes_every_step(graph, program, dtype):
    fetches, feed, first = build(program, dtype)
    s = _session()
    if first is not None:
        s.run(first, feed(0))
    for step in range(5):
        audit = audit_step(s, fetches, feed(step))
        assert audit.verdict == PASS, f"step {step}:\n{audit}"
        assert audit.changed == audit.expected or set(audit.changed) <= set(audit.expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("program", FAULTY, ids=lambda p: p.name)
def test_faulty_program_fails_naming_the_variable_and_the_rule(graph, program, dtype):
    fetches, feed, first = build(program, dtype)
    s = _session()
    if first is not None:
        s.run(first, feed(0))
    variable, rule = program.fails
    verdicts = []
    for step in range(3):   # every step: the bug is in the program, not in one value
        audit = audit_step(s, fetches, feed(step))
        verdicts.append(audit.verdict)
        va = audit.variable(variable)
        assert va.verdict == FAIL, f"step {step}:\n{audit}"
        assert f"(rule: {rule})" in va.reason and variable in va.reason, va.reason
    assert verdicts == [FAIL] * 3


def test_pipeline_and_sources_are_reported(graph):
    program = next(p for p in PROGRAMS if p.name == "clip_by_global_norm_adam")
    fetches, feed, _ = build(program, tf.float32)
    audit = audit_step(_session(), fetches, feed(0))
    w = audit.variable("w")
    assert w.pipeline == ["loss", "gradients", "clip_by_global_norm", "apply(adam)"]
    assert w.sources == ["Adam (adam)"]
    assert "pipeline: loss → gradients → clip_by_global_norm → apply(adam)" in str(audit)
    assert audit.variable("w/Adam").sources == ["Adam (adam)"]


def test_the_wrong_pairing_names_both_gradients(graph):
    program = next(p for p in PROGRAMS if p.name == "gradient_paired_with_wrong_variable")
    fetches, feed, _ = build(program, tf.float64)
    audit = audit_step(_session(), fetches, feed(0))
    assert "the gradient applied to enc is the gradient of dec" in audit.variable(
        "enc").reason
    assert "the gradient applied to dec is the gradient of enc" in audit.variable(
        "dec").reason


def test_schedule_is_predicted_with_the_pre_step_global_step(graph):
    program = next(p for p in PROGRAMS if p.name == "exponential_decay_on_the_global_step")
    fetches, feed, _ = build(program, tf.float64)
    s = _session()
    gs = tf.train.get_global_step()
    lrs = []
    for step in range(4):
        audit = audit_step(s, fetches, feed(step))
        assert audit.verdict == PASS, str(audit)
        assert audit.variable("global_step").rule == "assign_add"
        used = audit.variable("w").schedule   # the schedule at the pre-step global step
        assert used["global_step"] == step
        assert used["learning_rate"] == pytest.approx(0.3 * 0.5 ** (step / 2), rel=1e-6)
        lrs.append(s.run(gs))
    assert lrs == [1, 2, 3, 4]


def test_post_step_schedule_reason_says_off_by_one(graph):
    program = next(p for p in PROGRAMS if p.name == "schedule_at_the_post_step_global_step")
    fetches, feed, _ = build(program, tf.float32)
    audit = audit_step(_session(), fetches, feed(0))
    reason = audit.variable("w").reason
    assert "sees global_step = 1, but the step starts at global_step = 0" in reason
    assert "post-step" in reason and "off by 1" in reason


def test_gan_each_variable_from_its_own_optimizer(graph):
    program = next(p for p in PROGRAMS if p.name == "gan_two_optimizers")
    fetches, feed, _ = build(program, tf.float32)
    audit = audit_step(_session(), fetches, feed(0))
    assert audit.variable("generator/w").rule == "rmsprop"
    assert audit.variable("discriminator/w").rule == "adam"
    assert len(audit.variable("discriminator/w").paths) == 2   # used twice: both paths


def test_overlapping_var_lists_are_reported(graph):
    program = next(p for p in PROGRAMS if p.name == "second_optimizer_touches_the_first")
    fetches, feed, _ = build(program, tf.float32)
    audit = audit_step(_session(), fetches, feed(0))
    assert any("optimizers D and G both update discriminator/w" in n for n in audit.notes)
    reason = audit.variable("discriminator/w").reason
    assert "written by the updates of both" in reason


def test_hand_written_update_with_control_dependencies_and_locking(graph):
    program = next(p for p in PROGRAMS if p.name == "hand_written_sgd_with_l2")
    fetches, feed, _ = build(program, tf.float64)
    audit = audit_step(_session(), fetches, feed(0))
    assert audit.verdict == PASS, str(audit)
    assert audit.variable("w").rule == "assign_sub" and audit.variable("b").rule == (
        "assign_sub")
    assert audit.variable("w").pipeline == ["loss", "gradients", "mul", "assign_sub"]


def test_a_wrong_hand_written_kernel_is_off_its_own_graph(graph, monkeypatch):
    # the prediction follows the graph: an engine whose AssignSub adds is caught
    program = next(p for p in PROGRAMS if p.name == "hand_written_sgd_with_l2")
    fetches, feed, _ = build(program, tf.float64)
    s = _session()
    real_run = s.run

    def run(f, feed_dict=None, **kw):
        out = real_run(f, feed_dict, **kw)
        if f is fetches:   # the audited step: corrupt what AssignSub wrote to w
            w = next(v for v in tf.global_variables() if v.op.name == "w")
            w.load(real_run(w) + 1e-3, s)
        return out
    monkeypatch.setattr(s, "run", run)
    audit = audit_step(s, fetches, feed(0))
    assert audit.verdict == FAIL and "delta off the assign_sub rule" in audit.variable(
        "w").reason


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_a_layer_variable_reused_by_two_towers_gets_both_paths(graph, dtype):
    """tf.layers on get_variable with AUTO_REUSE: one kernel, two uses; the audit predicts
    its update from the summed gradient and leaves the unconnected variables alone."""
    program = next(p for p in PROGRAMS if p.name == "layers_dense_shared_by_two_towers")
    fetches, feed, _ = build(program, dtype)
    audit = audit_step(_session(), fetches, feed(0))
    assert audit.verdict == PASS, str(audit)
    kernel = audit.variable("tower/hidden/kernel")
    assert kernel.changed and kernel.rule == "adam" and len(kernel.paths) == 2
    assert not audit.variable("w").changed and not audit.variable("w").expected
