"""audit_step with the optimizers that keep slots: every rule passes on real steps (float32
included, ill-conditioned cases included) and seeded optimizer faults are caught.

Each faulty optimizer below is a plausible implementation bug that leaves an honest
``UpdateRecord`` (the rule it claims to follow, the hyperparameters it was given): only the
auditor's prediction of the variable and slot values can reveal it.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import FAIL, INCONCLUSIVE, PASS, audit_step

OPTIMIZERS = dict(tf.train.OPTIMIZERS)


def _model(dtype=np.float64, seed=0, scale=1.0, extras=True):
    """W (3x2) and b (2) on a softmax-regression loss with an L2 term; with ``extras``
    also a non-trainable scale on the loss path, a trainable variable unconnected to the
    loss and one behind stop_gradient."""
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.standard_normal((6, 3)).astype(dtype))
    y = tf.constant(np.eye(2, dtype=dtype)[rng.integers(0, 2, 6)])
    W = tf.Variable((scale * rng.standard_normal((3, 2))).astype(dtype), name="W")
    b = tf.Variable((scale * rng.standard_normal(2)).astype(dtype), name="b")
    logits = tf.matmul(x, W) + b
    if extras:
        s = tf.Variable(np.asarray(0.5, dtype), trainable=False, name="s")
        tf.Variable(np.ones(4, dtype), name="unconnected")
        stopped = tf.Variable(np.asarray(2.0, dtype), name="stopped")
        logits = logits * (1 + s) + tf.stop_gradient(stopped)
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    return W, b, loss + 0.01 * tf.nn.l2_loss(W)


def _session():
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    return s


def _slot_names(opt, var):
    return sorted(opt.get_slot(var, n).op.name for n in opt.get_slot_names())


# -- every optimizer, every step PASSes -----------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_passes_ten_steps(graph, name, dtype):
    W, b, loss = _model(dtype, seed=3)
    opt = OPTIMIZERS[name]()
    step = opt.minimize(loss)
    s = _session()
    for k in range(10):
        audit = audit_step(s, [step, loss])
        assert audit.verdict == PASS, f"step {k}:\n{audit}"
        slots = _slot_names(opt, W) + _slot_names(opt, b)
        powers = ["beta1_power", "beta2_power"] if name == "adam" else []
        assert sorted(audit.expected) == sorted(["W", "b", *slots, *powers])
        assert sorted(audit.changed) == sorted(audit.expected)
        for n in ("s", "unconnected", "stopped"):
            assert not audit.variable(n).changed
        for n in slots:
            assert audit.variable(n).rule == name and not audit.variable(n).trainable
        if name == "adam":
            assert audit.variable("beta1_power").rule == "scale"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_audits_are_not_flaky_across_seeds(graph, name, seed):
    """The tolerance is rounding-based: a correct float32 step must pass for any data."""
    _, _, loss = _model(np.float32, seed=seed, extras=False)
    step = OPTIMIZERS[name]().minimize(loss)
    s = _session()
    for k in range(10):
        audit = audit_step(s, step)
        assert audit.verdict == PASS, f"seed {seed} step {k}:\n{audit}"
        # the margin is real: the worst entry is well inside its tolerance
        for v in audit.variables:
            if v.expected and v.tolerance > 0 and v.actual is not None:
                assert abs(v.actual - v.predicted) <= 0.5 * v.tolerance, str(audit)


def _linear(dtype, c, init=None):
    """loss = sum(w * c): a constant gradient c, the worst case for moment estimates."""
    w = tf.Variable(np.zeros_like(c, dtype) if init is None else init.astype(dtype), name="w")
    return w, tf.reduce_sum(w * tf.constant(c.astype(dtype)))


ILL_CONDITIONED = {
    # gradients near zero in every optimizer (updates far below the weights' spacing)
    "tiny_gradient_momentum": (lambda: tf.train.MomentumOptimizer(0.1, 0.9), 1e-9, True),
    "tiny_gradient_adagrad": (lambda: tf.train.AdagradOptimizer(0.1), 1e-6, True),
    "tiny_gradient_rmsprop": (lambda: tf.train.RMSPropOptimizer(0.1, momentum=0.9), 1e-19,
                              False),
    # Adam's v in the subnormal range of float32 (g^2 (1 - beta2) < 1.2e-38)
    "adam_subnormal_v": (lambda: tf.train.AdamOptimizer(0.01), 1e-19, False),
    "adam_subnormal_v_tiny_eps": (lambda: tf.train.AdamOptimizer(0.01, epsilon=1e-30), 1e-19,
                                  False),
    # the update's size set by epsilon and sqrt(v) together
    "adam_gradient_near_epsilon": (lambda: tf.train.AdamOptimizer(0.01), 1e-8, True),
    # Adagrad with a tiny accumulator
    "adagrad_tiny_accumulator": (
        lambda: tf.train.AdagradOptimizer(0.01, initial_accumulator_value=1e-30), 1e-16, False),
}


@pytest.mark.parametrize("case", sorted(ILL_CONDITIONED))
def test_float32_ill_conditioned_steps_pass(graph, case):
    make, scale, start_at_one = ILL_CONDITIONED[case]
    c = np.random.default_rng(1).standard_normal(6) * scale
    c[0] = 0.0  # an exactly zero gradient entry too
    _, loss = _linear(np.float32, c, init=np.ones(6) if start_at_one else None)
    step = make().minimize(loss)
    s = _session()
    for k in range(25):
        audit = audit_step(s, step)
        assert audit.verdict == PASS, f"step {k}:\n{audit}"


def test_update_below_rounding_is_not_a_missing_change(graph):
    """0.1 + g^2 rounds back to 0.1 in float32 when |g| ~ 1e-6: the accumulator cannot
    change, and the auditor must not demand it."""
    _, loss = _linear(np.float32, np.full(3, 1e-6), init=np.ones(3))
    opt = tf.train.AdagradOptimizer(0.1)
    step = opt.minimize(loss)
    s = _session()
    audit = audit_step(s, step)
    assert audit.verdict == PASS, str(audit)
    assert not audit.variable("w/Adagrad").changed and audit.variable("w/Adagrad").expected


@pytest.mark.parametrize("decay", [0.5, 0.1])
def test_centered_rmsprop_with_ms_close_to_mg_squared(graph, decay):
    """A constant gradient drives ms - mg^2 to decay^t (1 + g^2 ...): in float32 it soon
    drowns in rounding and TF1's own result becomes noise. The audit says INCONCLUSIVE
    (never FAIL, never a silent PASS) there; in float64 epsilon keeps the root well away
    from zero and every step passes."""
    c = np.random.default_rng(2).standard_normal(5) * 10
    verdicts = {}
    for dtype in (np.float32, np.float64):
        with tf.Graph().as_default():
            _, loss = _linear(dtype, c)
            step = tf.train.RMSPropOptimizer(0.01, decay=decay, momentum=0.5,
                                             centered=True).minimize(loss)
            s = _session()
            verdicts[dtype] = []
            for _ in range(40):
                audit = audit_step(s, step)
                verdicts[dtype].append(audit.verdict)
                if audit.verdict == INCONCLUSIVE:
                    assert "ill-conditioned centered_rmsprop update" in " ".join(
                        audit.reasons)
    assert FAIL not in verdicts[np.float32]
    assert verdicts[np.float32][:3] == [PASS] * 3
    assert INCONCLUSIVE in verdicts[np.float32]
    assert set(verdicts[np.float64]) == {PASS}


def test_centered_rmsprop_well_conditioned_float32_passes(graph):
    """A varying gradient keeps ms - mg^2 (a variance) well above rounding."""
    _, _, loss = _model(np.float32, seed=5, extras=False)
    step = tf.train.RMSPropOptimizer(0.01, decay=0.5, momentum=0.5, centered=True).minimize(
        loss)
    s = _session()
    for k in range(20):
        audit = audit_step(s, step)
        assert audit.verdict == PASS, f"step {k}:\n{audit}"


def test_step_audit_lists_slots_and_beta_powers(graph):
    _, _, loss = _model(extras=False)
    gs = tf.train.get_or_create_global_step()
    opt = tf.train.AdamOptimizer(0.01)
    step = opt.minimize(loss, global_step=gs)
    s = _session()
    audit = audit_step(s, [step, loss])
    assert audit.verdict == PASS, str(audit)
    assert sorted(audit.expected) == ["W", "W/Adam", "W/Adam_1", "b", "b/Adam", "b/Adam_1",
                                      "beta1_power", "beta2_power", "global_step"]
    assert audit.variable("W/Adam_1").rule == "adam"
    assert audit.variable("beta2_power").rule == "scale"
    assert audit.variable("W").paths and not audit.variable("W/Adam").paths
    text = str(audit)
    for name in ("W/Adam_1", "beta1_power", "scale", "adam"):
        assert name in text
    np.testing.assert_allclose(s.run(opt._get_beta_accumulators()), [0.81, 0.998001],
                               rtol=1e-15)


def test_placeholder_learning_rate_and_var_list(graph):
    W, _, loss = _model(np.float32, extras=False)
    lr = tf.placeholder(tf.float32, [])
    opt = tf.train.RMSPropOptimizer(lr, momentum=0.5)
    step = opt.minimize(loss, var_list=[W])
    s = _session()
    for rate in (0.1, 0.01, 0.001):
        audit = audit_step(s, step, {lr: rate})
        assert audit.verdict == PASS, str(audit)
        assert sorted(audit.expected) == ["W", "W/RMSProp", "W/RMSProp_1"]
        assert not audit.variable("b").changed


def test_two_train_ops_sharing_an_optimizer(graph):
    """A variable with slots but no gradient in this train op: neither it nor its slots
    may move."""
    _, _, loss = _model(extras=False)
    u = tf.Variable(np.array([1.0, -1.0]), name="u")
    opt = tf.train.MomentumOptimizer(0.1, 0.9)
    step_all = opt.minimize(loss + tf.reduce_sum(tf.square(u)))
    step_wb = opt.minimize(loss)
    s = _session()
    for _ in range(3):
        assert audit_step(s, step_all).verdict == PASS
    audit = audit_step(s, step_wb)
    assert audit.verdict == PASS, str(audit)
    assert not audit.variable("u").changed and not audit.variable("u/Momentum").changed


# -- seeded optimizer faults ---------------------------------------------------------------------
class AdamDoubleBiasCorrection(tf.train.AdamOptimizer):
    """A graph-op Adam that bias-corrects ``m`` although ``alpha`` already includes the
    correction: the step is divided by ``1 - beta1_power`` twice."""

    def _apply_dense(self, grad, var):
        b1p, b2p = self._get_beta_accumulators(var.graph)
        h = {"beta1_power": self._hyper("beta1_power", b1p, var.dtype),
             "beta2_power": self._hyper("beta2_power", b2p, var.dtype),
             "learning_rate": self._hyper("learning_rate", self._lr, var.dtype),
             "beta1": self._hyper("beta1", self._beta1, var.dtype),
             "beta2": self._hyper("beta2", self._beta2, var.dtype),
             "epsilon": self._hyper("epsilon", self._epsilon, var.dtype)}
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        alpha = h["learning_rate"] * tf.sqrt(1 - h["beta2_power"]) / (1 - h["beta1_power"])
        m_t = tf.assign(m, m + (grad - m) * (1 - h["beta1"]))
        v_t = tf.assign(v, v + (grad * grad - v) * (1 - h["beta2"]))
        m_hat = m_t / (1 - h["beta1_power"])  # the bug: corrected again
        update = tf.assign_sub(var, alpha * m_hat / (tf.sqrt(v_t) + h["epsilon"]))
        return tf.group(update, m_t, v_t), h


class MomentumNotDecayed(tf.train.MomentumOptimizer):
    """``accum += grad`` instead of ``accum = momentum * accum + grad``."""

    def _apply_dense(self, grad, var):
        lr = self._hyper("learning_rate", self._learning_rate, var.dtype)
        mu = self._hyper("momentum", self._momentum, var.dtype)
        accum = tf.assign_add(self.get_slot(var, "momentum"), grad)
        return tf.assign_sub(var, accum * lr), {"learning_rate": lr, "momentum": mu}


class ZeroForNone:
    """Asks for zeros instead of None for variables unconnected to the loss (TF's
    ``unconnected_gradients="zero"``) and applies them."""

    def compute_gradients(self, loss, var_list=None, **kw):
        pairs = super().compute_gradients(loss, var_list=var_list, **kw)
        origin = next(self._origin[g] for g, _ in pairs if g is not None)
        out = []
        for g, v in pairs:
            if g is None:
                g = tf.gradients(loss, [v], unconnected_gradients="zero")[0]
                self._origin[g] = origin  # it is "the gradient of the loss"
            out.append((g, v))
        return out


class ZeroForNoneMomentum(ZeroForNone, tf.train.MomentumOptimizer):
    """Momentum keeps moving a variable whose gradient is None."""


class ZeroForNoneRMSProp(ZeroForNone, tf.train.RMSPropOptimizer):
    """The variable stays (mom stays 0) but its rms slot decays."""


class SlotKeyedByLeafName(tf.train.MomentumOptimizer):
    """Keys its slots by the variable's last name component: ``enc/bias`` and
    ``dec/bias`` share one momentum slot."""

    def _zeros_slot(self, var, slot_name, op_name):
        table = self._slots.setdefault(slot_name, {})
        leaf = var.op.name.split("/")[-1]
        for other, slot in list(table.items()):
            if other.op.name.split("/")[-1] == leaf and other.shape == var.shape:
                table[var] = slot
        return super()._zeros_slot(var, slot_name, op_name)


class DecaysEverySlot(tf.train.MomentumOptimizer):
    """Two-phase momentum: ``accum *= momentum`` for EVERY momentum slot the optimizer
    owns, then ``accum += grad; var -= lr * accum`` for the variables with a gradient.
    Right for those; a variable with a slot but no gradient in this step has its slot
    decayed."""

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        pairs = list(grads_and_vars)
        graph = pairs[0][1].graph
        with graph.as_default():
            with graph.control_dependencies(None), graph.name_scope(""):
                self._create_slots([v for g, v in pairs if g is not None])
            self._decay = {}
            for var, slot in self._slots["momentum"].items():
                mu = self._hyper("momentum", self._momentum, var.dtype)
                self._decay[var] = tf.assign(slot, slot * mu)
        return super().apply_gradients(pairs, global_step, name)

    def _apply_dense(self, grad, var):
        lr = self._hyper("learning_rate", self._learning_rate, var.dtype)
        mu = self._hyper("momentum", self._momentum, var.dtype)
        with tf.control_dependencies([self._decay[var]]):
            accum = tf.assign_add(self.get_slot(var, "momentum"), grad)
        update = tf.assign_sub(var, accum * lr)
        return tf.group(update, *self._decay.values()), {"learning_rate": lr, "momentum": mu}


class DecayAllTrainable(tf.train.AdamOptimizer):
    """Decoupled weight decay in ``_finish``, applied to every trainable variable instead
    of the ones being optimised."""

    def _finish(self, update_ops, name):
        with tf.control_dependencies(update_ops):
            decays = [v.assign_sub(v * 0.001) for v in tf.trainable_variables()]
        return tf.group(super()._finish(update_ops, name), *decays)


class RMSPropNoEpsilon(tf.train.RMSPropOptimizer):
    """A graph-op RMSProp without epsilon whose ``rms`` slot starts at zeros (Keras-style):
    a zero gradient entry gives 0/0 = NaN."""

    def _create_slots(self, var_list):
        for v in var_list:
            self._zeros_slot(v, "rms", self._name)
            self._zeros_slot(v, "momentum", self._name)

    def _apply_dense(self, grad, var):
        h = {k: self._hyper(k, value, var.dtype) for k, value in (
            ("learning_rate", self._learning_rate), ("decay", self._decay),
            ("momentum", self._momentum), ("epsilon", self._epsilon))}
        rms, mom = self.get_slot(var, "rms"), self.get_slot(var, "momentum")
        ms = tf.assign(rms, rms + (grad * grad - rms) * (1 - h["decay"]))
        p = tf.assign(mom, mom * h["momentum"] + grad * h["learning_rate"] / tf.sqrt(ms))
        return tf.group(tf.assign_sub(var, p), ms), h


def test_fault_adam_bias_correction_applied_twice(graph):
    """beta1 = 0.5: by step 12 the extra factor 1 / (1 - 0.5^12) is 1.00024 (the step is
    0.02% too long), still well beyond rounding: every step FAILs on the weights."""
    _, _, loss = _model(np.float32, extras=False)
    step = AdamDoubleBiasCorrection(0.01, beta1=0.5).minimize(loss)
    s = _session()
    for k in range(1, 13):
        audit = audit_step(s, step)
        assert audit.verdict == FAIL, f"step {k}:\n{audit}"
        assert "delta off the adam rule" in audit.variable("W").reason
        assert audit.variable("W/Adam").verdict == PASS  # m and v are right
        assert audit.variable("beta1_power").verdict == PASS
    assert 1 / (1 - 0.5 ** 12) - 1 < 3e-4
    with tf.Graph().as_default():  # control: the real Adam, same model and steps
        _, _, loss = _model(np.float32, extras=False)
        step = tf.train.AdamOptimizer(0.01, beta1=0.5).minimize(loss)
        s = _session()
        assert all(audit_step(s, step).verdict == PASS for _ in range(12))


def test_fault_momentum_slot_not_decayed(graph):
    _, _, loss = _model(extras=False)
    step = MomentumNotDecayed(0.05, 0.9).minimize(loss)
    s = _session()
    first = audit_step(s, step)  # accum = 0: 0 * momentum + g == 0 + g, invisible
    assert first.verdict == PASS, str(first)
    audit = audit_step(s, step)
    assert audit.verdict == FAIL
    assert "delta off the momentum rule" in audit.variable("W/Momentum").reason
    assert "delta off the momentum rule" in audit.variable("W").reason


def test_fault_weight_change_for_a_none_gradient(graph):
    _, _, loss = _model(extras=False)
    u = tf.Variable(np.array([1.0, -1.0, 0.5]), name="u")
    opt = ZeroForNoneMomentum(0.1, 0.9)
    step_all = opt.minimize(loss + tf.reduce_sum(tf.square(u)))
    step_wb = opt.minimize(loss)  # u has no gradient here, yet is "updated" with zeros
    s = _session()
    for _ in range(2):
        assert audit_step(s, step_all).verdict == PASS
    audit = audit_step(s, step_wb)
    assert audit.verdict == FAIL
    assert audit.variable("u").changed  # momentum moved it
    assert "gradient is None" in audit.variable("u").reason
    assert audit.variable("W").verdict == PASS


def test_fault_zero_gradient_touches_only_a_slot_still_fails(graph):
    """RMSProp with a zeros gradient: mom stays 0 so the variable does not move, but its
    rms slot decays; the update of a None-gradient variable is itself the fault."""
    _, _, loss = _model(extras=False)
    tf.Variable(np.array([1.0, -1.0]), name="u")
    step = ZeroForNoneRMSProp(0.01).minimize(loss)
    s = _session()
    audit = audit_step(s, step)
    assert audit.verdict == FAIL
    assert not audit.variable("u").changed and audit.variable("u/RMSProp").changed
    assert "gradient is None" in audit.variable("u").reason


def test_fault_slot_shared_between_two_variables(graph):
    rng = np.random.default_rng(0)
    with tf.name_scope("enc"):
        enc = tf.Variable(rng.standard_normal(3), name="bias")
    with tf.name_scope("dec"):
        dec = tf.Variable(rng.standard_normal(3), name="bias")
    loss = tf.reduce_sum(tf.square(enc - 1.0)) + tf.reduce_sum(tf.exp(dec))
    opt = SlotKeyedByLeafName(0.1, 0.9)
    step = opt.minimize(loss)
    assert opt.get_slot(enc, "momentum") is opt.get_slot(dec, "momentum")
    s = _session()
    audit = audit_step(s, step)
    assert audit.verdict == FAIL
    reason = audit.variable("enc/bias/Momentum").reason
    assert "one slot shared by two variables" in reason
    assert "enc/bias" in reason and "dec/bias" in reason
    with tf.Graph().as_default():  # control: the real optimizer gives each its own slot
        with tf.name_scope("enc"):
            enc = tf.Variable(rng.standard_normal(3), name="bias")
        with tf.name_scope("dec"):
            dec = tf.Variable(rng.standard_normal(3), name="bias")
        opt = tf.train.MomentumOptimizer(0.1, 0.9)
        step = opt.minimize(tf.reduce_sum(tf.square(enc - 1.0)) + tf.reduce_sum(tf.exp(dec)))
        assert opt.get_slot(enc, "momentum") is not opt.get_slot(dec, "momentum")
        assert audit_step(_session(), step).verdict == PASS


def test_fault_slot_changes_for_a_variable_without_gradient(graph):
    _, _, loss = _model(extras=False)
    u = tf.Variable(np.array([1.0, -1.0]), name="u")
    opt = DecaysEverySlot(0.1, 0.9)
    step_all = opt.minimize(loss + tf.reduce_sum(tf.square(u)))
    step_wb = opt.minimize(loss)
    s = _session()
    for _ in range(3):  # every variable has a gradient: the two-phase form is right
        audit = audit_step(s, step_all)
        assert audit.verdict == PASS, str(audit)
    audit = audit_step(s, step_wb)
    assert audit.verdict == FAIL
    assert not audit.variable("u").changed
    assert audit.variable("u/Momentum").reason == (
        "slot 'momentum' (u/Momentum) of u changed, but u was not updated in this step (no "
        "gradient)")
    assert audit.unexpected == ["u/Momentum"]
    assert audit.variable("W").verdict == PASS and audit.variable("W/Momentum").verdict == PASS


def test_fault_trainable_variable_outside_the_update_set_changes(graph):
    W, _, loss = _model(extras=False)
    step = DecayAllTrainable(0.01).minimize(loss, var_list=[W])
    s = _session()
    audit = audit_step(s, step)
    assert audit.verdict == FAIL
    assert audit.unexpected == ["b"]
    assert "changed but not updated by the fetched ops" in audit.variable("b").reason
    assert "delta off the adam rule" in audit.variable("W").reason  # decayed as well


def test_fault_nan_where_the_rule_gives_a_number(graph):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    x[:, 1] = 0.0  # W's row 1 gets an exactly zero gradient
    W = tf.Variable(rng.standard_normal((3, 2)), name="W")
    loss = tf.reduce_sum(tf.square(tf.matmul(tf.constant(x), W)))
    step = RMSPropNoEpsilon(0.01).minimize(loss)
    s = _session()
    audit = audit_step(s, step)
    assert audit.verdict == FAIL
    assert np.isnan(s.run(W)[1]).all()
    reason = audit.variable("W").reason
    assert "delta off the rmsprop rule at [1, " in reason and "got nan" in reason


def test_shared_slot_message_even_when_values_happen_to_agree(graph):
    """Two variables whose updates write one slot: a clash, whatever the values."""
    a = tf.Variable(np.zeros(2), name="a")
    c = tf.Variable(np.zeros(2), name="c")
    opt = tf.train.MomentumOptimizer(0.1, 0.9)
    opt._slots["momentum"] = {}
    shared = tf.Variable(np.zeros(2), trainable=False, name="shared")
    opt._slots["momentum"][a] = opt._slots["momentum"][c] = shared
    step = opt.minimize(tf.reduce_sum(a) * 0.0 + tf.reduce_sum(c) * 0.0)
    audit = audit_step(_session(), step)
    assert audit.verdict == FAIL
    assert "written by the updates of both a and c" in audit.variable("shared").reason
