"""Random-model training properties: the strategy draws the hard cases, every optimizer's
steps change exactly the variables they should, gradient-less var_lists raise TF1's
error, and faulty optimizers make the property fail."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import InvalidArgument

import gradverify.engine as tf
from gradverify.engine import train
from gradverify.engine.ops.state_ops import apply_gradient_descent
from gradverify.harness import PASS
from gradverify.properties.models import (
    HEADS,
    OPTIMIZER_NAMES,
    PIPELINES,
    ModelPropertyError,
    TrainingModel,
    VariableSpec,
    model_property_test,
    no_gradient_test,
    run_model,
    training_models,
)

STRUCTURES = {
    "non_trainable", "non_trainable_connected", "unconnected", "role:stopped",
    "role:unconnected", "role:weights", "role:bias", "role:scale", "role:extra",
    "var_list_default", "var_list_subset", "var_list_unconnected", "var_list_non_trainable",
    "connected_not_updated", "lr:float", "lr:placeholder", "lr:variable", "lr:schedule",
    "global_step", *(f"pipeline:{p}" for p in PIPELINES),
    "l2", "l2_subset", "rank0", "rank1", "rank2", "size1_dim", "nonsquare", "batch_unknown",
    "float32", "float64", *(f"variables:{n}" for n in range(1, 6)),
    *(f"head:{h}" for h in HEADS), *(f"optimizer:{o}" for o in OPTIMIZER_NAMES)}
# Mutation runs: derandomised, no database, the first failure reported unshrunk.
SEARCH = settings(max_examples=150, database=None, derandomize=True, deadline=None,
                  report_multiple_bugs=False, phases=[Phase.generate],
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_optimizer_names_are_the_table():
    assert tuple(name for name, _ in train.OPTIMIZERS) == OPTIMIZER_NAMES
    assert set(OPTIMIZER_NAMES) >= {"sgd", "momentum", "nesterov", "adam", "adagrad",
                                     "rmsprop", "centered_rmsprop"}


# -- the strategy draws what it promises ------------------------------------------------------
def test_strategy_draws_every_structure_and_optimizer():
    seen: set[str] = set()

    @settings(max_examples=300, database=None, derandomize=True, deadline=None)
    @given(training_models())
    def collect(model):
        assert 1 <= len(model.variables) <= 5 and model.valid
        assert len({v.name for v in model.variables}) == len(model.variables)
        seen.update(model.features)

    collect()
    missing = STRUCTURES - seen
    assert not missing, f"never drawn in 300 models: {sorted(missing)}"


@settings(max_examples=60, database=None, deadline=None)
@given(training_models())
def test_should_update_follows_the_structure(model):
    chosen = model.var_list if model.var_list is not None else [
        v.name for v in model.variables if v.trainable]
    for v in model.variables:
        path = v.role in ("weights", "bias", "scale", "extra") or v.l2
        assert (v.name in model.should_update) == (path and v.name in chosen)
    assert model.should_update  # a valid model always updates something


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizers": ["nope"]}, "'nope' unknown"),
    ({"optimizers": []}, "choose from"),
    ({"dtype": "int32"}, "float32, float64 or None"),
    ({"max_variables": 0}, "max_variables=0"),
    ({"max_variables": 11}, "max_variables=11"),
    ({"steps": 0}, "steps=0"),
])
def test_invalid_arguments_fail_eagerly(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        training_models(**kwargs)


# -- the program object ------------------------------------------------------------------------
def _model(**changes) -> TrainingModel:
    base = dict(
        dtype="float64", batch=3, n_features=2, n_outputs=3, head="softmax",
        variables=(VariableSpec("weights", "weights", (2, 3), l2=True),
                   VariableSpec("bias", "bias", (3,), trainable=False),
                   VariableSpec("stopped_2", "stopped", (1, 4), form="scale"),
                   VariableSpec("unconnected_3", "unconnected", ())),
        beta=0.1, var_list=None, learning_rate="placeholder", optimizer="momentum",
        global_step=True, seed=7, lr_factors=(1.0, 0.5, 2.0))
    base.update(changes)
    return TrainingModel(**base)


def test_repr_is_the_program_that_runs():
    model = _model()
    text = repr(model)
    for line in ("x = tf.placeholder(tf.float64, [None, 2], name='x')",
                 "bias = tf.Variable(init['bias'], trainable=False, name='bias')",
                 "logits = tf.matmul(logits, weights)",
                 "tf.stop_gradient(stopped_2)",
                 "loss = loss + 0.1 * tf.nn.l2_loss(weights)",
                 "optimizer = make_optimizer('momentum', learning_rate=learning_rate)",
                 "train_op = optimizer.minimize(loss, global_step=global_step)"):
        assert line in text
    with tf.Graph().as_default():
        built = model.build()
        with tf.Session() as s:
            s.run(tf.global_variables_initializer())
            feed = built.feed(0)
            loss = s.run(built.loss, feed)
            w, b = model.initial_values()["weights"], model.initial_values()["bias"]
            stopped = model.initial_values()["stopped_2"]
            x, y = feed[built.namespace["x"]], feed[built.namespace["y"]]
            logits = x @ w + b
            z = logits - logits.max(axis=1, keepdims=True)
            xent = np.mean(np.log(np.exp(z).sum(axis=1)) - np.sum(y * z, axis=1))
            want = xent * (1 + 0.1 * np.mean(stopped ** 2)) + 0.1 * 0.5 * np.sum(w ** 2)
            np.testing.assert_allclose(loss, want, rtol=1e-12)
            assert feed[built.namespace["learning_rate"]] == 0.02  # momentum's 0.02 * 1.0


def test_hand_model_updates_exactly_the_trainable_connected_variables():
    model = _model()
    assert model.should_update == {"weights"}
    audits = run_model(model)
    assert [a.verdict for a in audits] == [PASS] * 3
    for a in audits:
        assert sorted(a.changed) == ["global_step", "weights", "weights/Momentum"]


def test_explicit_var_list_with_non_trainable_and_unconnected_variables():
    # TF1: an explicit var_list is honoured even for non-trainable variables; a variable in
    # it without a gradient is skipped (no update, no slot)
    model = _model(var_list=("bias", "unconnected_3", "stopped_2"), optimizer="adam",
                   learning_rate="variable")
    assert model.should_update == {"bias"}
    audits = run_model(model)
    assert all(a.verdict == PASS for a in audits)
    assert "unconnected_3" not in audits[0].expected
    assert "bias" in audits[0].changed and "weights" not in audits[0].changed


# -- the property holds for every optimizer ---------------------------------------------------
@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_model_property(optimizer):
    settings(max_examples=40, deadline=None)(model_property_test(optimizer))()


def test_model_property_any_optimizer_float32():
    settings(max_examples=40, deadline=None)(model_property_test(dtype="float32"))()


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_gradient_pipeline_passes_in_float32_and_float64(pipeline):
    # clipped, scaled, noisy (seeded) and hand-written updates, with every optimizer and
    # learning-rate form (schedules included): each run PASSes, each variable the oracle
    # names is updated
    @settings(max_examples=12, deadline=None, database=None)
    @given(training_models(pipelines=[pipeline], steps=4))
    def prop(model):
        assert model.pipeline == pipeline
        run_model(model)
    prop()


def test_var_list_without_gradients_raises_tf1_error():
    settings(max_examples=20, deadline=None)(no_gradient_test())()
    model = _model(var_list=("unconnected_3", "stopped_2"))
    assert not model.valid
    with tf.Graph().as_default(), pytest.raises(
            ValueError, match="No gradients provided for any variable"):
        model.build()


@settings(max_examples=20, database=None, deadline=None)
@given(training_models(gradientless=True))
def test_gradientless_models_have_no_variable_to_update(model):
    assert not model.should_update and model.effective_var_list()
    assert "unconnected" in model.features


# -- mutations: faulty optimizers make the property fail ---------------------------------------
class UpdatesEverything(tf.train.GradientDescentOptimizer):
    """Differentiates for every float global variable, claiming the var_list defaulted."""

    def compute_gradients(self, loss, var_list=None, **kw):
        every = [v for v in tf.global_variables() if v.dtype.is_floating]
        pairs = super().compute_gradients(loss, var_list=every, **kw)
        for g, _ in pairs:
            if g is not None:
                self._origin[g] = (loss, None)
        return pairs


class SkipsOne(tf.train.GradientDescentOptimizer):
    """Silently drops the last variable that has a gradient (when there are several)."""

    def compute_gradients(self, loss, var_list=None, **kw):
        pairs = super().compute_gradients(loss, var_list=var_list, **kw)
        live = [k for k, (g, _) in enumerate(pairs) if g is not None]
        if len(live) >= 2:
            pairs[live[-1]] = (None, pairs[live[-1]][1])
        return pairs


class DoubleStep(tf.train.GradientDescentOptimizer):
    """Applies twice the learning rate it reports."""

    def _apply_dense(self, grad, var):
        lr = self._hyper("learning_rate", self._learning_rate, var.dtype)
        return apply_gradient_descent(var, lr * 2.0, grad), {"learning_rate": lr}


def _with_sgd(monkeypatch, cls) -> None:
    table = tuple((name, (lambda: cls(0.05)) if name == "sgd" else make)
                  for name, make in train.OPTIMIZERS)
    monkeypatch.setattr(train, "OPTIMIZERS", table)


@pytest.mark.parametrize("cls, message", [
    (UpdatesEverything, r"not trainable|the model's structure says"),
    (SkipsOne, r"the model's structure says"),
    (DoubleStep, r"delta off the sgd rule"),
])
def test_faulty_optimizer_fails_the_property(monkeypatch, cls, message):
    _with_sgd(monkeypatch, cls)
    with pytest.raises(ModelPropertyError, match=message) as info:
        SEARCH(model_property_test("sgd"))()
    assert "train_op = " in str(info.value)  # the model is shown


def test_skipped_variable_passes_the_audit_but_not_the_oracle(monkeypatch):
    # the audit alone cannot see a variable the optimizer never touched: no update record,
    # no change; the model's structure says it should have been updated
    _with_sgd(monkeypatch, SkipsOne)
    model = _model(optimizer="sgd", variables=(
        VariableSpec("weights", "weights", (2, 3)), VariableSpec("bias", "bias", (3,))))
    with pytest.raises(ModelPropertyError, match="the model's structure says") as info:
        run_model(model)
    assert "step audit: PASS" in str(info.value)
