"""Momentum, Nesterov, Adam, Adagrad and RMSProp (plain and centered): TF1 trajectories,
slot variables, uninitialised slots, tensor hyperparameters.

The model: ``loss = 0.5 * sum((X W + b - T)^2) + 0.1 * l2_loss(W)`` with a non-square
matrix ``W`` (3x2) and a vector ``b`` (2), whose gradients are derived by hand:
``r = X W + b - T``, ``dW = X^T r + 0.1 W``, ``db = sum_rows(r)``. The reference optimizers
below are written from TF1's ``training_ops.cc`` formulas in their textbook form (decay
written as ``beta * m + (1 - beta) * g``, beta powers kept as running products), not from
the engine's kernels.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors

RTOL, ATOL = 1e-12, 1e-13
STEPS = 20


class Model:
    """Trainable W (3x2) and b (2); ``u`` (trainable, unconnected to the loss)."""

    def __init__(self, seed=0, dtype=np.float64, unconnected=False):
        rng = np.random.default_rng(seed)
        self.dtype = dtype
        self.X = rng.standard_normal((5, 3)).astype(dtype)
        self.T = rng.standard_normal((5, 2)).astype(dtype)
        self.W0 = rng.standard_normal((3, 2)).astype(dtype)
        self.b0 = rng.standard_normal(2).astype(dtype)
        self.W = tf.Variable(self.W0, name="W")
        self.b = tf.Variable(self.b0, name="b")
        self.u = tf.Variable(np.ones(4, dtype), name="u") if unconnected else None
        r = tf.matmul(tf.constant(self.X), self.W) + self.b - tf.constant(self.T)
        self.loss = 0.5 * tf.reduce_sum(tf.square(r)) + 0.1 * tf.nn.l2_loss(self.W)

    @property
    def variables(self):
        return {"W": self.W, "b": self.b}

    def grads(self, p):
        r = self.X @ p["W"] + p["b"] - self.T
        return {"W": self.X.T @ r + 0.1 * p["W"], "b": r.sum(axis=0)}

    def initial(self):
        return {"W": self.W0.astype(np.float64), "b": self.b0.astype(np.float64)}


# -- independent NumPy references (TF1 training_ops.cc, textbook form) -------------------------
class RefMomentum:
    def __init__(self, lr, momentum, nesterov=False):
        self.lr, self.mu, self.nesterov = lr, momentum, nesterov

    def init(self, p):
        self.slots = {"momentum": {k: np.zeros_like(v) for k, v in p.items()}}

    def step(self, p, g, t):
        lr, mu = _at(self.lr, t), _at(self.mu, t)
        for k in p:
            a = mu * self.slots["momentum"][k] + g[k]
            self.slots["momentum"][k] = a
            p[k] = p[k] - (lr * g[k] + lr * mu * a if self.nesterov else lr * a)


class RefAdam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, epsilon

    def init(self, p):
        self.slots = {"m": {k: np.zeros_like(v) for k, v in p.items()},
                      "v": {k: np.zeros_like(v) for k, v in p.items()}}
        self.powers = {"beta1_power": self.b1, "beta2_power": self.b2}

    def step(self, p, g, t):
        b1p, b2p = self.powers["beta1_power"], self.powers["beta2_power"]
        lr_t = _at(self.lr, t) * np.sqrt(1 - b2p) / (1 - b1p)
        for k in p:
            m = self.b1 * self.slots["m"][k] + (1 - self.b1) * g[k]
            v = self.b2 * self.slots["v"][k] + (1 - self.b2) * g[k] ** 2
            self.slots["m"][k], self.slots["v"][k] = m, v
            p[k] = p[k] - lr_t * m / (np.sqrt(v) + self.eps)
        self.powers = {"beta1_power": b1p * self.b1, "beta2_power": b2p * self.b2}


class RefAdagrad:
    def __init__(self, lr, initial_accumulator_value=0.1):
        self.lr, self.init_acc = lr, initial_accumulator_value

    def init(self, p):
        self.slots = {"accumulator": {k: np.full_like(v, self.init_acc) for k, v in p.items()}}

    def step(self, p, g, t):
        for k in p:
            acc = self.slots["accumulator"][k] + g[k] ** 2
            self.slots["accumulator"][k] = acc
            p[k] = p[k] - _at(self.lr, t) * g[k] / np.sqrt(acc)


class RefRMSProp:
    def __init__(self, lr, decay=0.9, momentum=0.0, epsilon=1e-10, centered=False):
        self.lr, self.rho, self.mu, self.eps, self.centered = (lr, decay, momentum, epsilon,
                                                                centered)

    def init(self, p):
        self.slots = {"rms": {k: np.ones_like(v) for k, v in p.items()},
                      "momentum": {k: np.zeros_like(v) for k, v in p.items()}}
        if self.centered:
            self.slots["mg"] = {k: np.zeros_like(v) for k, v in p.items()}

    def step(self, p, g, t):
        rho = self.rho
        for k in p:
            ms = rho * self.slots["rms"][k] + (1 - rho) * g[k] ** 2
            self.slots["rms"][k] = ms
            denom = ms + self.eps
            if self.centered:
                mg = rho * self.slots["mg"][k] + (1 - rho) * g[k]
                self.slots["mg"][k] = mg
                denom = ms - mg ** 2 + self.eps
            mom = self.mu * self.slots["momentum"][k] + _at(self.lr, t) * g[k] / np.sqrt(denom)
            self.slots["momentum"][k] = mom
            p[k] = p[k] - mom


def _at(h, t):
    """A hyperparameter that may change per step (a list of values, one per step)."""
    return h[t] if isinstance(h, (list, tuple)) else h


CASES = {
    "momentum": (lambda: tf.train.MomentumOptimizer(0.05, 0.9), lambda: RefMomentum(0.05, 0.9)),
    "nesterov": (lambda: tf.train.MomentumOptimizer(0.04, 0.7, use_nesterov=True),
                 lambda: RefMomentum(0.04, 0.7, nesterov=True)),
    "adam": (lambda: tf.train.AdamOptimizer(0.05), lambda: RefAdam(0.05)),
    "adam_custom": (lambda: tf.train.AdamOptimizer(0.02, beta1=0.8, beta2=0.95, epsilon=1e-4),
                    lambda: RefAdam(0.02, 0.8, 0.95, 1e-4)),
    "adagrad": (lambda: tf.train.AdagradOptimizer(0.1), lambda: RefAdagrad(0.1)),
    "adagrad_init": (lambda: tf.train.AdagradOptimizer(0.2, initial_accumulator_value=0.7),
                     lambda: RefAdagrad(0.2, 0.7)),
    "rmsprop": (lambda: tf.train.RMSPropOptimizer(0.01), lambda: RefRMSProp(0.01)),
    "rmsprop_momentum": (
        lambda: tf.train.RMSPropOptimizer(0.01, decay=0.8, momentum=0.5, epsilon=1e-6),
        lambda: RefRMSProp(0.01, 0.8, 0.5, 1e-6)),
    "centered_rmsprop": (lambda: tf.train.RMSPropOptimizer(0.01, centered=True),
                         lambda: RefRMSProp(0.01, centered=True)),
    "centered_rmsprop_momentum": (
        lambda: tf.train.RMSPropOptimizer(0.02, decay=0.7, momentum=0.5, epsilon=1e-6,
                                          centered=True),
        lambda: RefRMSProp(0.02, 0.7, 0.5, 1e-6, centered=True)),
}


def _session():
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    return s


def _state_fetches(opt, model, ref):
    """{("var", name) | (slot, name) | (power,): engine variable} for everything ref keeps."""
    out = {("var", k): v for k, v in model.variables.items()}
    for slot in ref.slots:
        for k, v in model.variables.items():
            out[(slot, k)] = opt.get_slot(v, slot)
    for power, var in zip(("beta1_power", "beta2_power"),
                          opt._get_beta_accumulators() if isinstance(ref, RefAdam) else ()):
        out[(power,)] = var
    assert all(v is not None for v in out.values()), out
    return out


def _ref_state(ref, p):
    out = {("var", k): v for k, v in p.items()}
    for slot, table in ref.slots.items():
        out.update({(slot, k): v for k, v in table.items()})
    for power, value in getattr(ref, "powers", {}).items():
        out[(power,)] = value
    return out


def _run_parity(opt, ref, model, steps=STEPS, feeds=None, rtol=RTOL, atol=ATOL):
    step = opt.minimize(model.loss)
    s = _session()
    p = model.initial()
    ref.init(p)
    fetch = _state_fetches(opt, model, ref)
    keys = list(fetch)
    got0 = dict(zip(keys, s.run([fetch[k] for k in keys])))
    want0 = _ref_state(ref, p)
    for k in keys:
        np.testing.assert_allclose(got0[k], want0[k], rtol=rtol, atol=atol, err_msg=str(k))
    for t in range(steps):
        g = model.grads(p)
        ref.step(p, g, t)
        s.run(step, None if feeds is None else feeds(t))
        got = dict(zip(keys, s.run([fetch[k] for k in keys])))
        want = _ref_state(ref, p)
        for k in keys:
            np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol,
                                       err_msg=f"step {t + 1}, {k}")
    return s, p


# -- 1. parity: 20-step trajectories of variables, slots and beta powers ------------------------
@pytest.mark.parametrize("case", sorted(CASES))
def test_twenty_step_trajectory_matches_numpy_reference(graph, case):
    make, make_ref = CASES[case]
    model = Model(seed=1)
    s, p = _run_parity(make(), make_ref(), model)
    # the optimizer actually moved the weights (a no-op would fail the parity checks too,
    # but say it plainly)
    assert not np.allclose(p["W"], model.W0)
    assert s.run(model.W).dtype == np.float64


def test_adam_trajectory_reduces_the_loss(graph):
    model = Model(seed=2)
    step = tf.train.AdamOptimizer(0.05).minimize(model.loss)
    s = _session()
    first = s.run(model.loss)
    for _ in range(STEPS):
        s.run(step)
    assert s.run(model.loss) < first


def test_adam_first_step_is_lr_times_sign_of_gradient(graph):
    """With zero slots, the bias-corrected first step is lr * g / (|g| + eps/sqrt(1-b2))."""
    model = Model(seed=3)
    opt = tf.train.AdamOptimizer(0.1, epsilon=0.0)
    step = opt.minimize(model.loss)
    s = _session()
    g = model.grads(model.initial())
    s.run(step)
    np.testing.assert_allclose(s.run(model.W), model.W0 - 0.1 * np.sign(g["W"]), rtol=1e-13)
    np.testing.assert_allclose(s.run(opt._get_beta_accumulators()), [0.81, 0.998001],
                               rtol=1e-15)


def test_nesterov_differs_from_momentum_by_the_lookahead(graph):
    """Second step: Nesterov moves by lr*(g2 + mu*(mu*g1 + g2)), momentum by lr*(mu*g1 + g2)."""
    x = tf.Variable(np.array([0.0, 0.0]), name="x")
    c = np.array([1.0, -2.0])
    loss = tf.reduce_sum(x * tf.constant(c))  # constant gradient c
    plain = tf.train.MomentumOptimizer(0.1, 0.5).minimize(loss, var_list=[x])
    s = _session()
    s.run(plain)
    s.run(plain)
    np.testing.assert_allclose(s.run(x), -0.1 * c - 0.1 * (0.5 * c + c), rtol=1e-15)
    y = tf.Variable(np.array([0.0, 0.0]), name="y")
    nest = tf.train.MomentumOptimizer(0.1, 0.5, use_nesterov=True).minimize(
        tf.reduce_sum(y * tf.constant(c)), var_list=[y])
    s = _session()
    s.run(nest)
    s.run(nest)
    a1, a2 = c, 0.5 * c + c
    np.testing.assert_allclose(s.run(y), -(0.1 * c + 0.05 * a1) - (0.1 * c + 0.05 * a2),
                               rtol=1e-15)


def test_rmsprop_epsilon_is_inside_the_square_root(graph):
    """TF1: g * lr / sqrt(ms + eps), not / (sqrt(ms) + eps): visible with a large eps."""
    x = tf.Variable(np.array([0.0]), name="x")
    step = tf.train.RMSPropOptimizer(1.0, decay=0.0, epsilon=3.0).minimize(
        tf.reduce_sum(x * 1.0))
    s = _session()
    s.run(step)
    np.testing.assert_allclose(s.run(x), [-1.0 / np.sqrt(1.0 + 3.0)], rtol=1e-15)


def test_adagrad_uses_the_updated_accumulator(graph):
    x = tf.Variable(np.array([0.0]), name="x")
    step = tf.train.AdagradOptimizer(1.0, initial_accumulator_value=0.25).minimize(
        tf.reduce_sum(x * 1.5))
    s = _session()
    s.run(step)
    np.testing.assert_allclose(s.run(x), [-1.5 / np.sqrt(0.25 + 1.5 ** 2)], rtol=1e-15)


# -- 2. slot names and structure ------------------------------------------------------------------
def _names(variables):
    return [v.op.name for v in variables]


@pytest.mark.parametrize("make, slot_names, slot_ops, extra", [
    (lambda: tf.train.MomentumOptimizer(0.1, 0.9), ["momentum"], {"momentum": "Momentum"}, []),
    (lambda: tf.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True), ["momentum"],
     {"momentum": "Momentum"}, []),
    (lambda: tf.train.AdamOptimizer(), ["m", "v"], {"m": "Adam", "v": "Adam_1"},
     ["beta1_power", "beta2_power"]),
    (lambda: tf.train.AdagradOptimizer(0.1), ["accumulator"], {"accumulator": "Adagrad"}, []),
    (lambda: tf.train.RMSPropOptimizer(0.1), ["momentum", "rms"],
     {"rms": "RMSProp", "momentum": "RMSProp_1"}, []),
    (lambda: tf.train.RMSPropOptimizer(0.1, centered=True), ["mg", "momentum", "rms"],
     {"rms": "RMSProp", "mg": "RMSProp_1", "momentum": "RMSProp_2"}, []),
])
def test_slot_names_and_collections(graph, make, slot_names, slot_ops, extra):
    model = Model(unconnected=True)
    frozen = tf.Variable(2.0, trainable=False, name="frozen")
    opt = make()
    opt.minimize(model.loss + tf.cast(frozen, tf.float64))
    assert opt.get_slot_names() == slot_names
    slots = []
    for var_name, var in model.variables.items():
        for slot, op_name in slot_ops.items():
            v = opt.get_slot(var, slot)
            assert v is not None and v.op.name == f"{var_name}/{op_name}"
            assert v.name == f"{var_name}/{op_name}:0"
            assert v.shape.as_list() == var.shape.as_list() and v.dtype is var.dtype
            assert not v.trainable
            slots.append(v)
    # slots only for variables that got a gradient: u (unconnected) and frozen have none
    for slot in slot_ops:
        assert opt.get_slot(model.u, slot) is None
        assert opt.get_slot(frozen, slot) is None
    assert opt.get_slot(model.W, "no_such_slot") is None
    non_slot = [v for v in tf.global_variables() if v.op.name in extra]
    assert _names(non_slot) == extra
    assert sorted(_names(opt.variables())) == sorted(_names(slots) + extra)
    assert _names(opt.variables()) == sorted(_names(opt.variables()))  # TF1: sorted by name
    glob, train = tf.global_variables(), tf.trainable_variables()
    for v in slots + non_slot:
        assert v in glob and v not in train and not v.trainable
    assert _names(train) == ["W", "b", "u"]
    assert not any(n.startswith(("u/", "frozen/")) for n in _names(glob))


def test_slot_initial_values(graph):
    model = Model()
    mom, adam = tf.train.MomentumOptimizer(0.1, 0.9), tf.train.AdamOptimizer(0.1, 0.75, 0.5)
    ada, ada2 = tf.train.AdagradOptimizer(0.1), tf.train.AdagradOptimizer(0.1, 0.3)
    rms = tf.train.RMSPropOptimizer(0.1, centered=True)
    for opt in (mom, adam, ada, ada2, rms):
        opt.minimize(model.loss)
    s = _session()
    W = model.W
    np.testing.assert_array_equal(s.run(mom.get_slot(W, "momentum")), np.zeros((3, 2)))
    np.testing.assert_array_equal(s.run(adam.get_slot(W, "m")), np.zeros((3, 2)))
    np.testing.assert_array_equal(s.run(adam.get_slot(W, "v")), np.zeros((3, 2)))
    assert list(s.run(adam._get_beta_accumulators())) == [0.75, 0.5]
    np.testing.assert_array_equal(s.run(ada.get_slot(W, "accumulator")), np.full((3, 2), 0.1))
    np.testing.assert_array_equal(s.run(ada2.get_slot(model.b, "accumulator")),
                                  np.full(2, 0.3))
    np.testing.assert_array_equal(s.run(rms.get_slot(W, "rms")), np.ones((3, 2)))
    np.testing.assert_array_equal(s.run(rms.get_slot(W, "mg")), np.zeros((3, 2)))
    np.testing.assert_array_equal(s.run(rms.get_slot(W, "momentum")), np.zeros((3, 2)))
    # two Adam optimizers in one graph: their beta powers get unique names
    assert _names(adam.variables())[-2:] == ["beta1_power", "beta2_power"]
    other = tf.train.AdamOptimizer()
    other.minimize(model.loss)
    assert sorted(_names(other.variables()))[-2:] == ["beta1_power_1", "beta2_power_1"]
    assert _names(other.variables())[:2] == ["W/Adam_2", "W/Adam_3"]


def test_slots_follow_var_list_and_nested_names(graph):
    with tf.name_scope("layer"):
        w = tf.Variable(np.ones((2, 3)), name="kernel")
    v = tf.Variable(np.ones(3), name="bias")
    loss = tf.reduce_sum(tf.square(tf.matmul(tf.constant(np.ones((1, 2))), w) + v))
    opt = tf.train.AdamOptimizer()
    opt.minimize(loss, var_list=[w])
    assert opt.get_slot(v, "m") is None
    assert _names(opt.variables()) == ["beta1_power", "beta2_power", "layer/kernel/Adam",
                                       "layer/kernel/Adam_1"]
    # a second minimize adds slots for the new variable, keeps the first ones and the powers
    opt.minimize(loss, var_list=[w, v])
    assert _names(opt.variables()) == ["beta1_power", "beta2_power", "bias/Adam",
                                       "bias/Adam_1", "layer/kernel/Adam",
                                       "layer/kernel/Adam_1"]


def test_variables_lists_only_the_current_graph(graph):
    opt = tf.train.MomentumOptimizer(0.1, 0.9)
    opt.minimize(Model().loss)
    assert len(opt.variables()) == 2
    with tf.Graph().as_default():
        assert opt.variables() == []
        opt.minimize(Model().loss)
        assert _names(opt.variables()) == ["W/Momentum", "b/Momentum"]
    assert len(opt.variables()) == 2


@pytest.mark.parametrize("value", [0.0, -0.1])
def test_adagrad_non_positive_initial_accumulator_raises(value):
    with pytest.raises(ValueError, match="initial_accumulator_value must be positive"):
        tf.train.AdagradOptimizer(0.1, initial_accumulator_value=value)


def test_constructor_signatures_and_defaults():
    adam = tf.train.AdamOptimizer()
    assert (adam._lr, adam._beta1, adam._beta2, adam._epsilon) == (0.001, 0.9, 0.999, 1e-8)
    assert adam.get_name() == "Adam"
    rms = tf.train.RMSPropOptimizer(0.1)
    assert (rms._decay, rms._momentum, rms._epsilon, rms._centered) == (0.9, 0.0, 1e-10, False)
    assert rms.get_name() == "RMSProp"
    assert tf.train.AdagradOptimizer(0.1)._initial_accumulator_value == 0.1
    assert tf.train.MomentumOptimizer(0.1, 0.9).get_name() == "Momentum"
    assert tf.train.MomentumOptimizer(0.1, 0.9, False, "M", True)._use_nesterov
    assert tf.train.AdamOptimizer(name="MyAdam").get_name() == "MyAdam"
    names = [n for n, _ in tf.train.OPTIMIZERS]
    assert names == ["sgd", "momentum", "nesterov", "adam", "adagrad", "rmsprop",
                     "centered_rmsprop"]


def test_custom_optimizer_name_names_the_slots(graph):
    model = Model()
    opt = tf.train.AdamOptimizer(name="Fancy")
    step = opt.minimize(model.loss)
    assert opt.get_slot(model.W, "m").op.name == "W/Fancy"
    assert opt.get_slot(model.W, "v").op.name == "W/Fancy_1"
    assert step.name == "Fancy"


# -- 3. uninitialised slots ---------------------------------------------------------------------
@pytest.mark.parametrize("make, names", [
    (lambda: tf.train.MomentumOptimizer(0.1, 0.9), ["w/Momentum"]),
    (lambda: tf.train.AdagradOptimizer(0.1), ["w/Adagrad"]),
    (lambda: tf.train.RMSPropOptimizer(0.1), ["w/RMSProp", "w/RMSProp_1"]),
    (lambda: tf.train.RMSPropOptimizer(0.1, centered=True),
     ["w/RMSProp", "w/RMSProp_1", "w/RMSProp_2"]),
    (lambda: tf.train.AdamOptimizer(0.1), ["w/Adam", "w/Adam_1", "beta1_power",
                                           "beta2_power"]),
])
def test_train_op_before_slot_initialisation_raises_naming_the_slot(graph, make, names):
    w = tf.Variable(np.array([1.0, -2.0]), name="w")
    init = tf.global_variables_initializer()  # built before minimize: misses the slots
    opt = make()
    step = opt.minimize(tf.reduce_sum(w * w))
    s = tf.Session()
    s.run(init)
    with pytest.raises(errors.FailedPreconditionError) as info:
        s.run(step)
    assert info.value.error_code == 9
    found = re.search(r"uninitialized value (\S+)", info.value.message)
    assert found and found.group(1) in names, info.value.message
    np.testing.assert_array_equal(s.run(w), [1.0, -2.0])  # nothing was written
    # initialising the optimizer's variables afterwards makes the step work
    s.run(tf.variables_initializer(opt.variables()))
    s.run(step)
    assert not np.array_equal(s.run(w), [1.0, -2.0])


def test_momentum_slot_named_in_the_error_and_global_init_after_minimize_works(graph):
    w = tf.Variable(np.array([1.0, -2.0]), name="w")
    early = tf.global_variables_initializer()
    step = tf.train.MomentumOptimizer(0.1, 0.9).minimize(tf.reduce_sum(w * w))
    s = tf.Session()
    s.run(early)
    with pytest.raises(errors.FailedPreconditionError, match="w/Momentum"):
        s.run(step)
    s.run(tf.global_variables_initializer())  # built after minimize: covers the slot
    s.run(step)
    np.testing.assert_allclose(s.run(w), [1.0 - 0.1 * 2.0, -2.0 + 0.1 * 4.0], rtol=1e-15)


# -- 4. hyperparameters as tensors, variables, callables; float32 models -----------------------
def test_learning_rate_placeholder_fed_differently_each_run(graph):
    model = Model(seed=4)
    lrs = [0.1 / (1 + t) for t in range(8)]
    lr = tf.placeholder(tf.float64, [])
    _run_parity(tf.train.MomentumOptimizer(lr, 0.9), RefMomentum(lrs, 0.9), model, steps=8,
                feeds=lambda t: {lr: lrs[t]})


@pytest.mark.parametrize("kind", ["adam", "rmsprop", "adagrad", "nesterov"])
def test_float32_learning_rate_placeholder_is_cast_to_the_model_dtype(graph, kind):
    model = Model(seed=5)
    lrs = [0.0625, 0.03125, 0.125, 0.25, 0.015625]  # exact in float32
    lr = tf.placeholder(tf.float32, [])
    opt, ref = {
        "adam": (tf.train.AdamOptimizer(lr), RefAdam(lrs)),
        "rmsprop": (tf.train.RMSPropOptimizer(lr, momentum=0.5, centered=True),
                    RefRMSProp(lrs, momentum=0.5, centered=True)),
        "adagrad": (tf.train.AdagradOptimizer(lr), RefAdagrad(lrs)),
        "nesterov": (tf.train.MomentumOptimizer(lr, 0.5, use_nesterov=True),
                     RefMomentum(lrs, 0.5, nesterov=True)),
    }[kind]
    _run_parity(opt, ref, model, steps=5, feeds=lambda t: {lr: lrs[t]})


def test_momentum_as_tensor_and_as_variable_changed_between_runs(graph):
    model = Model(seed=6)
    mu = tf.Variable(0.75, name="mu")  # float32 variable, cast to float64 (exactly)
    opt = tf.train.MomentumOptimizer(tf.constant(0.05, tf.float64), mu)
    ref = RefMomentum(0.05, [0.75] * 3 + [0.5] * 3)
    step = opt.minimize(model.loss, var_list=[model.W, model.b])
    assert mu not in [v for v in opt.variables()]
    s = _session()
    p = model.initial()
    ref.init(p)
    for t in range(6):
        if t == 3:
            s.run(mu.assign(0.5))
        ref.step(p, model.grads(p), t)
        s.run(step)
        np.testing.assert_allclose(s.run(model.W), p["W"], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(s.run(opt.get_slot(model.b, "momentum")),
                                   ref.slots["momentum"]["b"], rtol=RTOL, atol=ATOL)
    assert s.run(mu) == 0.5  # a hyperparameter variable is read, never trained


def test_adam_hyperparameters_as_variable_tensor_and_callable(graph):
    model = Model(seed=7)
    beta1 = tf.Variable(np.float64(0.5), trainable=False, name="beta1")
    opt = tf.train.AdamOptimizer(lambda: 0.03, beta1=beta1,
                                 beta2=lambda: tf.constant(0.875, tf.float64),
                                 epsilon=tf.constant(1e-6, tf.float64))
    _run_parity(opt, RefAdam(0.03, 0.5, 0.875, 1e-6), model, steps=10)


def test_rmsprop_and_adagrad_hyperparameters_as_tensors(graph):
    model = Model(seed=8)
    decay = tf.placeholder_with_default(tf.constant(0.8, tf.float64), [])
    opt = tf.train.RMSPropOptimizer(tf.constant(0.01, tf.float64), decay=decay,
                                    momentum=tf.constant(0.25, tf.float64),
                                    epsilon=lambda: 1e-6)
    _run_parity(opt, RefRMSProp(0.01, 0.8, 0.25, 1e-6), model, steps=6)
    with tf.Graph().as_default():
        model = Model(seed=9)
        _run_parity(tf.train.AdagradOptimizer(lambda: tf.constant(0.3, tf.float64)),
                    RefAdagrad(0.3), model, steps=6)


def _tf_float32_step(kind, hyper, w, slots, g):
    """One step in float32, in the evaluation order of TF1's training_ops.cc CPU kernels
    (hyperparameters cast to float32 first). Returns (new var, new slots)."""
    f = np.float32
    h = {k: f(v) for k, v in hyper.items()}
    if kind in ("momentum", "nesterov"):
        a = slots["momentum"] * h["momentum"] + g
        if kind == "nesterov":
            return w - (g * h["lr"] + a * h["momentum"] * h["lr"]), {"momentum": a}
        return w - a * h["lr"], {"momentum": a}
    if kind == "adam":
        alpha = h["lr"] * np.sqrt(f(1) - h["b2p"]) / (f(1) - h["b1p"])
        m = slots["m"] + (g - slots["m"]) * (f(1) - h["beta1"])
        v = slots["v"] + (g * g - slots["v"]) * (f(1) - h["beta2"])
        return w - (m * alpha) / (np.sqrt(v) + h["eps"]), {"m": m, "v": v}
    if kind == "adagrad":
        acc = slots["accumulator"] + g * g
        return w - g * h["lr"] * (f(1) / np.sqrt(acc)), {"accumulator": acc}
    ms = slots["rms"] + (g * g - slots["rms"]) * (f(1) - h["decay"])
    out = {"rms": ms}
    if kind == "centered_rmsprop":
        mg = slots["mg"] + (g - slots["mg"]) * (f(1) - h["decay"])
        denom = (ms - mg * mg) + h["eps"]
        out["mg"] = mg
    else:
        denom = ms + h["eps"]
    mom = slots["momentum"] * h["momentum"] + (g * h["lr"]) / np.sqrt(denom)
    out["momentum"] = mom
    return w - mom, out


@pytest.mark.parametrize("kind", ["momentum", "nesterov", "adam", "adagrad", "rmsprop",
                                  "centered_rmsprop"])
def test_float32_model_with_python_hyperparameters_is_bit_exact(graph, kind):
    """Python floats become float32 constants (as TF1's float32 tensors); the kernels
    compute in float32 in TF's order: three steps agree bit for bit with a float32
    evaluation of the training_ops.cc expressions, and stay float32."""
    model = Model(seed=10, dtype=np.float32)
    hyper = {"momentum": {"lr": 0.1, "momentum": 0.9}, "nesterov": {"lr": 0.1, "momentum": 0.9},
             "adam": {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
             "adagrad": {"lr": 0.1}, "rmsprop": {"lr": 0.1, "decay": 0.9, "momentum": 0.5,
                                                  "eps": 1e-10},
             "centered_rmsprop": {"lr": 0.1, "decay": 0.9, "momentum": 0.5, "eps": 1e-10}}[kind]
    opt = {"momentum": lambda: tf.train.MomentumOptimizer(0.1, 0.9),
           "nesterov": lambda: tf.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True),
           "adam": lambda: tf.train.AdamOptimizer(0.1),
           "adagrad": lambda: tf.train.AdagradOptimizer(0.1),
           "rmsprop": lambda: tf.train.RMSPropOptimizer(0.1, momentum=0.5),
           "centered_rmsprop": lambda: tf.train.RMSPropOptimizer(0.1, momentum=0.5,
                                                                 centered=True)}[kind]()
    grads = tf.gradients(model.loss, [model.W, model.b])
    step = opt.minimize(model.loss)
    s = _session()
    names = opt.get_slot_names()
    state = {v: (s.run(v), {n: s.run(opt.get_slot(v, n)) for n in names})
             for v in (model.W, model.b)}
    powers = [np.float32(0.9), np.float32(0.999)]
    for _ in range(3):
        g_vals, _ = s.run([grads, step])  # gradients at the pre-step values
        for v, g in zip((model.W, model.b), g_vals):
            h = dict(hyper, b1p=powers[0], b2p=powers[1])
            w_new, slots_new = _tf_float32_step(kind, h, state[v][0], state[v][1], g)
            got = s.run(v)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, w_new)
            for n in names:
                slot = s.run(opt.get_slot(v, n))
                assert slot.dtype == np.float32
                np.testing.assert_array_equal(slot, slots_new[n], err_msg=n)
            state[v] = (w_new, slots_new)
        powers = [powers[0] * np.float32(0.9), powers[1] * np.float32(0.999)]
        if kind == "adam":
            got = s.run(opt._get_beta_accumulators())
            assert [p.dtype for p in got] == [np.float32, np.float32]
            np.testing.assert_array_equal(got, powers)


def test_float32_model_follows_the_float64_reference_closely(graph):
    model = Model(seed=11, dtype=np.float32)
    _run_parity(tf.train.AdamOptimizer(0.02, beta1=0.8), RefAdam(0.02, 0.8), model, steps=10,
                rtol=2e-5, atol=2e-6)


# -- global step, apply_gradients ---------------------------------------------------------------
def test_global_step_increments_after_adam_updates_and_beta_powers(graph):
    model = Model(seed=12)
    gs = tf.train.get_or_create_global_step()
    opt = tf.train.AdamOptimizer(0.01)
    step = opt.minimize(model.loss, global_step=gs)
    s = _session()
    for k in range(3):
        assert s.run([step, gs])[1] == k
    assert s.run(gs) == 3
    np.testing.assert_allclose(s.run(opt._get_beta_accumulators()), [0.9 ** 4, 0.999 ** 4],
                               rtol=1e-15)


def test_apply_gradients_with_a_none_gradient_leaves_that_variable_and_makes_no_slot(graph):
    model = Model(seed=13, unconnected=True)
    opt = tf.train.RMSPropOptimizer(0.01, momentum=0.5)
    pairs = opt.compute_gradients(model.loss)
    assert [g is None for g, _ in pairs] == [False, False, True]
    step = opt.apply_gradients(pairs)
    assert opt.get_slot(model.u, "rms") is None
    s = _session()
    for _ in range(3):
        s.run(step)
    np.testing.assert_array_equal(s.run(model.u), np.ones(4))


def test_slot_shape_mismatch_in_the_kernel_is_a_build_time_error(graph):
    from gradverify.engine.ops.state_ops import apply_momentum
    w = tf.Variable(np.ones((2, 3)), name="w")
    acc = tf.Variable(np.ones((3, 2)), name="acc")
    with pytest.raises(ValueError, match="Shapes must be equal"):
        apply_momentum(w, acc, tf.constant(0.1, tf.float64), tf.constant(np.ones((2, 3))),
                       tf.constant(0.9, tf.float64))
    with pytest.raises(ValueError, match="rank 0"):
        apply_momentum(w, w, tf.constant([0.1, 0.2], tf.float64), tf.constant(np.ones((2, 3))),
                       tf.constant(0.9, tf.float64))
