"""Random training models: does each ``session.run`` change exactly the variables it should?

``training_models()`` draws a small TF1 training program: 1-5 variables of random shapes
(ranks 0-2, size-1 and non-square dimensions) in random roles - the weights of a linear
layer on a placeholder-fed batch, its bias, an output scale, an extra term of the loss, a
term behind ``tf.stop_gradient``, or not in the loss at all - with random ``trainable``
flags; a loss (squared error, softmax / sparse softmax / sigmoid cross-entropy) plus
``beta * tf.nn.l2_loss(v)`` on a random subset; a random ``var_list`` (None, or a subset
that may hold non-trainable variables and variables without a gradient path); a learning
rate that is a Python float, a placeholder fed a different value every run, a Variable, or
an ``exponential_decay`` schedule of the global step; an optimizer from
``engine.train.OPTIMIZERS``; with or without a global step; and a gradient pipeline from
``properties.pipelines`` (``minimize``; ``compute_gradients`` → clip / scale / seeded
noise → ``apply_gradients``; or hand-written ``assign_sub(learning_rate * grad)`` updates).

The model is a program: ``repr(model)`` is its TF1 code, and ``model.build()`` executes
exactly that code, so a failing example shows what ran.

``model_property_test(optimizer)`` is the property: a fresh graph, the variables
initialised, then several steps under ``audit_step(session, [train_op, loss], feed)``; every
step must PASS, and the variables the audit expects to change must be exactly those the
model's structure says (a gradient path from the loss, and in the effective ``var_list``):
an independent oracle, so an optimizer that silently skips a variable fails too.

>>> from hypothesis import given, settings
>>> @settings(max_examples=5, database=None)
... @given(training_models(optimizers=["sgd"], dtype="float64"))
... def test(model):
...     assert model.optimizer == "sgd" and model.should_update
>>> test()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import gradverify.engine as tf
from gradverify.engine import train
from gradverify.harness import PASS, audit_step
from gradverify.properties.checks import PropertyError
from gradverify.properties.pipelines import PIPELINES, schedule_lines, train_lines

__all__ = ["HEADS", "OPTIMIZER_NAMES", "PIPELINES", "ROLES", "BuiltModel", "ModelPropertyError",
           "TrainingModel", "VariableSpec", "make_optimizer", "model_property_test",
           "no_gradient_test", "run_model", "training_models"]

OPTIMIZER_NAMES: tuple[str, ...] = tuple(name for name, _ in train.OPTIMIZERS)
# Roles a variable plays in the loss; the first three shape the linear layer (one each).
ROLES = ("weights", "bias", "scale", "extra", "stopped", "unconnected")
CONNECTED_ROLES = ("weights", "bias", "scale", "extra")
HEADS = ("mse", "softmax", "sparse_softmax", "sigmoid")
LEARNING_RATES = ("float", "placeholder", "variable", "schedule")
_LR_ATTRIBUTES = ("_learning_rate", "_lr")


@dataclass(frozen=True)
class VariableSpec:
    """One variable of a model: its role in the loss, shape, trainable flag, whether the
    loss has a ``beta * l2_loss`` term on it, and the form of its term (extra: ``tanh`` or
    ``sin``; stopped: ``add`` or ``scale``)."""

    name: str
    role: str
    shape: tuple[int, ...]
    trainable: bool = True
    l2: bool = False
    form: str = ""

    @property
    def connected(self) -> bool:
        """Whether gradient reaches it from the loss (stop_gradient cuts; l2 connects)."""
        return self.role in CONNECTED_ROLES or self.l2


@dataclass(frozen=True, eq=False)
class BuiltModel:
    """A model built in the default graph: the program's namespace and what a step needs."""

    model: TrainingModel
    namespace: dict[str, Any]

    @property
    def train_op(self) -> Any:
        return self.namespace["train_op"]

    @property
    def loss(self) -> Any:
        return self.namespace["loss"]

    @property
    def optimizer(self) -> Any:
        return self.namespace["optimizer"]

    @property
    def variables(self) -> dict[str, Any]:
        return {v.name: self.namespace[v.name] for v in self.model.variables}

    def feed(self, step: int) -> dict[Any, np.ndarray]:
        """The feed of run ``step`` (0-based): a new batch, and the learning rate if fed."""
        ns, m = self.namespace, self.model
        rng = np.random.default_rng([m.seed, step])
        dt = np.dtype(m.dtype)
        rows = rng.integers(0, m.n_outputs, m.batch)
        feed = {ns["x"]: rng.standard_normal((m.batch, m.n_features)).astype(dt)}
        if m.head == "mse":
            feed[ns["y"]] = rng.standard_normal((m.batch, m.n_outputs)).astype(dt)
        elif m.head == "softmax":
            feed[ns["y"]] = np.eye(m.n_outputs, dtype=dt)[rows]
        elif m.head == "sparse_softmax":
            feed[ns["y"]] = rows.astype(np.int32)
        else:
            feed[ns["y"]] = rng.random((m.batch, m.n_outputs)).astype(dt)
        if m.learning_rate == "placeholder":
            feed[ns["learning_rate"]] = np.asarray(
                m.base_learning_rate() * m.lr_factors[step % len(m.lr_factors)], dt)
        return feed


def make_optimizer(name: str, learning_rate: Any = None) -> Any:
    """``engine.train.OPTIMIZERS[name]()``, looked up now (so a test may patch the table),
    with its learning rate replaced by ``learning_rate`` (a tensor) if given."""
    factories = dict(train.OPTIMIZERS)
    if name not in factories:
        raise KeyError(f"no optimizer {name!r} in engine.train.OPTIMIZERS "
                       f"({', '.join(factories)})")
    opt = factories[name]()
    if learning_rate is not None:
        attr = next((a for a in _LR_ATTRIBUTES if hasattr(opt, a)), None)
        if attr is None:
            raise TypeError(f"{type(opt).__name__} keeps its learning rate in none of "
                            f"{_LR_ATTRIBUTES}: cannot give it a tensor learning rate")
        setattr(opt, attr, learning_rate)
    return opt


def _base_learning_rate(name: str) -> float:
    opt = make_optimizer(name)
    value = next((getattr(opt, a) for a in _LR_ATTRIBUTES if hasattr(opt, a)), 0.01)
    return float(value) if isinstance(value, (int, float, np.floating)) else 0.01


@dataclass(frozen=True, eq=False)
class TrainingModel:
    """A drawn training program (see the module docstring). ``repr`` is its TF1 code;
    ``build()`` runs that code in the default graph; ``should_update`` names the variables
    a step must update; ``features`` the structures it contains."""

    dtype: str
    batch: int
    n_features: int
    n_outputs: int
    head: str
    variables: tuple[VariableSpec, ...]
    beta: float
    var_list: tuple[str, ...] | None
    learning_rate: str
    optimizer: str
    global_step: bool
    seed: int
    steps: int = 3
    lr_factors: tuple[float, ...] = (1.0,)
    lr_trainable: bool = False
    batch_unknown: bool = True
    pipeline: str = "minimize"

    # -- what must happen -------------------------------------------------------------------
    def effective_var_list(self) -> tuple[str, ...]:
        """The variables ``minimize`` differentiates for (var_list, else the trainable)."""
        if self.var_list is not None:
            return self.var_list
        return tuple(v.name for v in self.variables if v.trainable)

    @property
    def should_update(self) -> frozenset[str]:
        """Variables each step must update: a gradient path from the loss and in the
        effective var_list."""
        chosen = set(self.effective_var_list())
        return frozenset(v.name for v in self.variables if v.connected and v.name in chosen)

    @property
    def valid(self) -> bool:
        """Whether ``minimize`` accepts it (some variable in the var_list gets a gradient)."""
        return bool(self.should_update)

    def base_learning_rate(self) -> float:
        return _base_learning_rate(self.optimizer)

    def variable(self, name: str) -> VariableSpec:
        return next(v for v in self.variables if v.name == name)

    @property
    def features(self) -> frozenset[str]:
        """The structures the model contains (computed from it), for coverage tests."""
        out = {self.dtype, f"optimizer:{self.optimizer}", f"head:{self.head}",
               f"lr:{self.learning_rate}", f"variables:{len(self.variables)}",
               f"pipeline:{self.pipeline}"}
        out |= {f"role:{v.role}" for v in self.variables}
        out |= {f"rank{len(v.shape)}" for v in self.variables}
        if self.global_step:
            out.add("global_step")
        if self.batch_unknown:
            out.add("batch_unknown")
        if any(1 in v.shape for v in self.variables):
            out.add("size1_dim")
        if any(len(v.shape) == 2 and v.shape[0] != v.shape[1] for v in self.variables):
            out.add("nonsquare")
        if any(not v.trainable for v in self.variables):
            out.add("non_trainable")
        if any(not v.trainable and v.connected for v in self.variables):
            out.add("non_trainable_connected")
        if any(not v.connected for v in self.variables):
            out.add("unconnected")
        l2 = [v.l2 for v in self.variables]
        if any(l2):
            out.add("l2")
            if not all(l2):
                out.add("l2_subset")
        if self.var_list is None:
            out.add("var_list_default")
        else:
            listed = [self.variable(n) for n in self.var_list]
            if len(listed) < len(self.variables):
                out.add("var_list_subset")
            if any(not v.connected for v in listed):
                out.add("var_list_unconnected")
            if any(not v.trainable for v in listed):
                out.add("var_list_non_trainable")
        if any(v.name not in self.should_update and v.connected for v in self.variables):
            out.add("connected_not_updated")
        return frozenset(out)

    # -- the program -----------------------------------------------------------------------
    def initial_values(self) -> dict[str, np.ndarray]:
        """Each variable's initial value (from the model's seed)."""
        out = {}
        for k, v in enumerate(self.variables):
            rng = np.random.default_rng([self.seed, 1000 + k])
            noise = rng.standard_normal(v.shape)
            value = {"weights": 0.5 * noise, "bias": 0.1 * noise,
                     "scale": 1.0 + 0.1 * noise}.get(v.role, noise)
            out[v.name] = np.asarray(value, dtype=self.dtype)
        return out

    def program(self) -> list[str]:
        """The model as TF1 code lines (``init`` holds the initial values)."""
        dt = f"tf.{self.dtype}"
        batch = "None" if self.batch_unknown else str(self.batch)
        lines = [f"x = tf.placeholder({dt}, [{batch}, {self.n_features}], name='x')"]
        if self.head == "sparse_softmax":
            lines.append(f"y = tf.placeholder(tf.int32, [{batch}], name='y')")
        else:
            lines.append(f"y = tf.placeholder({dt}, [{batch}, {self.n_outputs}], name='y')")
        for v in self.variables:
            flag = "" if v.trainable else ", trainable=False"
            lines.append(f"{v.name} = tf.Variable(init['{v.name}']{flag}, "
                         f"name='{v.name}')  # {v.shape}")
        lines.append("logits = x")
        by_role = {v.role: v for v in self.variables}
        if "weights" in by_role:
            lines.append(f"logits = tf.matmul(logits, {by_role['weights'].name})")
        if "bias" in by_role:
            lines.append(f"logits = logits + {by_role['bias'].name}")
        if "scale" in by_role:
            lines.append(f"logits = logits * {by_role['scale'].name}")
        head = {
            "mse": "tf.reduce_mean(tf.square(logits - y))",
            "softmax": "tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits("
                       "labels=y, logits=logits))",
            "sparse_softmax": "tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits("
                              "labels=y, logits=logits))",
            "sigmoid": "tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits("
                       "labels=y, logits=logits))",
        }[self.head]
        lines.append(f"loss = {head}")
        for v in self.variables:
            if v.role == "extra":
                term = (f"tf.reduce_sum(tf.tanh({v.name}))" if v.form == "tanh"
                        else f"tf.reduce_mean(tf.sin({v.name}) * {v.name})")
                lines.append(f"loss = loss + 0.1 * {term}")
            elif v.role == "stopped":
                if v.form == "scale":
                    lines.append(f"loss = loss * (1.0 + 0.1 * tf.reduce_mean(tf.square("
                                 f"tf.stop_gradient({v.name}))))")
                else:
                    lines.append(f"loss = loss + 0.1 * tf.reduce_sum(tf.stop_gradient("
                                 f"{v.name}))")
        for v in self.variables:
            if v.l2:
                lines.append(f"loss = loss + {self.beta!r} * tf.nn.l2_loss({v.name})")
        base = self.base_learning_rate()
        if self.learning_rate == "float":
            lines.append(f"optimizer = make_optimizer('{self.optimizer}')  # learning rate "
                         f"{base!r}")
        elif self.learning_rate == "schedule":
            lines += schedule_lines(dt, base)
            lines.append(f"optimizer = make_optimizer('{self.optimizer}', "
                         "learning_rate=learning_rate)")
        else:
            if self.learning_rate == "placeholder":
                factors = ", ".join(f"{f:.3g}" for f in self.lr_factors)
                lines.append(f"learning_rate = tf.placeholder({dt}, [], name='learning_rate')"
                             f"  # fed {base!r} * [{factors}]")
            else:
                flag = "True" if self.lr_trainable else "False"
                lines.append(f"learning_rate = tf.Variable(np.{self.dtype}({base!r}), "
                             f"trainable={flag}, name='learning_rate')")
            lines.append(f"optimizer = make_optimizer('{self.optimizer}', "
                         "learning_rate=learning_rate)")
        if self.global_step and self.learning_rate != "schedule":
            lines.append("global_step = tf.train.get_or_create_global_step()")
        var_list = None if self.var_list is None else f"[{', '.join(self.var_list)}]"
        lr = repr(base) if self.learning_rate == "float" else "learning_rate"
        return lines + train_lines(self, var_list, lr)

    def build(self) -> BuiltModel:
        """Run :meth:`program` in the default graph (raises what ``minimize`` raises)."""
        namespace: dict[str, Any] = {"tf": tf, "np": np, "init": self.initial_values(),
                                     "make_optimizer": make_optimizer}
        code = compile("\n".join(self.program()), f"<training model {self.optimizer}>",
                       "exec")
        exec(code, namespace)  # the program shown by repr is exactly what runs
        return BuiltModel(self, namespace)

    def __repr__(self) -> str:
        head = (f"# TrainingModel: {self.optimizer}, {self.dtype}, batch {self.batch}, "
                f"{self.steps} steps, data seed {self.seed}; should update: "
                f"{sorted(self.should_update) or 'nothing'}")
        return "\n".join([head, *self.program()])

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # Hypothesis's falsifying example
        p.text(repr(self))


# -- drawing ---------------------------------------------------------------------------------
def _shape(draw: Any, max_rank: int = 2) -> tuple[int, ...]:
    side = st.one_of(st.just(1), st.integers(1, 4))
    return tuple(draw(st.lists(side, max_size=max_rank)))


@st.composite
def _models(draw: Any, optimizers: tuple[str, ...], dtypes: tuple[str, ...],
            max_variables: int, steps: int, gradientless: bool,
            pipelines: tuple[str, ...] = PIPELINES) -> TrainingModel:
    dtype = draw(st.sampled_from(dtypes))
    batch = draw(st.integers(1, 4))
    d = draw(st.one_of(st.just(1), st.integers(1, 4)))
    k = draw(st.one_of(st.just(1), st.integers(1, 4)))
    n = draw(st.integers(1, max_variables))
    specs: list[VariableSpec] = []
    taken: set[str] = set()
    for i in range(n):
        if gradientless and i == n - 1:  # a variable no gradient reaches
            role = draw(st.sampled_from(["unconnected", "stopped"]))
        else:
            role = draw(st.sampled_from(CONNECTED_ROLES if i == 0 else ROLES))
        if role in taken and role in ("weights", "bias", "scale"):
            role = "extra"
        taken.add(role)
        specs.append(VariableSpec(
            name="", role=role, shape=(), trainable=draw(st.sampled_from([True, True, False])),
            l2=role != "unconnected" and not (gradientless and i == n - 1)
            and draw(st.booleans()),
            form=draw(st.sampled_from(["tanh", "sin"] if role == "extra" else
                                      ["add", "scale"] if role == "stopped" else [""]))))
    if "weights" not in taken:
        k = d  # the logits are x itself
    head = draw(st.sampled_from(HEADS if k >= 2 else ("mse", "sigmoid")))
    for i, v in enumerate(specs):
        if v.role == "weights":
            shape = (d, k)
        elif v.role in ("bias", "scale"):
            shape = draw(st.sampled_from([(k,), (1, k), ()]))
        else:
            shape = _shape(draw)
        specs[i] = replace(v, name=v.role if v.role in ("weights", "bias", "scale")
                           else f"{v.role}_{i}", shape=shape)
    names = [v.name for v in specs]
    var_list = None
    if draw(st.booleans()):
        var_list = tuple(draw(st.lists(st.sampled_from(names), min_size=1, unique=True)))
    specs, var_list = (_gradientless if gradientless else _valid)(draw, specs, var_list)
    learning_rate = draw(st.sampled_from(LEARNING_RATES))
    pipeline = "minimize" if gradientless else draw(st.sampled_from(pipelines))
    optimizer = draw(st.sampled_from(optimizers))
    global_step = learning_rate == "schedule" or draw(st.booleans())
    return TrainingModel(
        dtype=dtype, batch=batch, n_features=d, n_outputs=k, head=head,
        variables=tuple(specs), beta=draw(st.sampled_from([0.01, 0.1, 0.5])),
        var_list=var_list, learning_rate=learning_rate,
        optimizer=optimizer, global_step=global_step, pipeline=pipeline,
        seed=draw(st.integers(0, 2**32 - 1)), steps=steps,
        lr_factors=tuple(draw(st.lists(st.sampled_from([1.0, 0.5, 2.0, 0.25, 1.5]),
                                       min_size=steps, max_size=steps))),
        lr_trainable=draw(st.booleans()), batch_unknown=draw(st.booleans()))


def _valid(draw: Any, specs: list[VariableSpec], var_list: tuple[str, ...] | None,
           ) -> tuple[list[VariableSpec], tuple[str, ...] | None]:
    """Make sure some variable of the effective var_list gets a gradient."""
    connected = [i for i, v in enumerate(specs) if v.connected]
    chosen = set(var_list) if var_list is not None else {v.name for v in specs if v.trainable}
    if any(specs[i].name in chosen for i in connected):
        return specs, var_list
    i = draw(st.sampled_from(connected))
    if var_list is None:
        specs[i] = replace(specs[i], trainable=True)
        return specs, None
    return specs, (*var_list, specs[i].name)


def _gradientless(draw: Any, specs: list[VariableSpec], var_list: tuple[str, ...] | None,
                  ) -> tuple[list[VariableSpec], tuple[str, ...] | None]:
    """Make the effective var_list non-empty with no variable a gradient reaches."""
    cut = [v.name for v in specs if not v.connected]
    if var_list is not None:
        return specs, tuple(draw(st.lists(st.sampled_from(cut), min_size=1, unique=True)))
    specs = [v if not v.connected else replace(v, trainable=False) for v in specs]
    if not any(v.trainable for v in specs):
        i = next(i for i, v in enumerate(specs) if not v.connected)
        specs[i] = replace(specs[i], trainable=True)
    return specs, None


def _names(optimizers: Iterable[str] | None) -> tuple[str, ...]:
    known = tuple(name for name, _ in train.OPTIMIZERS)
    if optimizers is None:
        return known
    if isinstance(optimizers, str):
        optimizers = [optimizers]
    chosen = tuple(optimizers)
    unknown = [o for o in chosen if o not in known]
    if unknown or not chosen:
        raise InvalidArgument(f"optimizers={list(chosen)!r}: choose from {', '.join(known)}"
                              + (f" ({', '.join(map(repr, unknown))} unknown)"
                                 if unknown else ""))
    return chosen


def _dtypes(dtype: Any) -> tuple[str, ...]:
    if dtype is None:
        return ("float32", "float64")
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise InvalidArgument(f"dtype={dtype!r} must be float32, float64 or None (both)")
    return (name,)


def training_models(*, optimizers: Sequence[str] | str | None = None, dtype: Any = None,
                    max_variables: int = 5, steps: int = 3, gradientless: bool = False,
                    pipelines: Sequence[str] | None = None,
                    ) -> st.SearchStrategy[TrainingModel]:
    """Random training models (see the module docstring).

    optimizers: names from ``engine.train.OPTIMIZERS`` to draw from (default: all).
    dtype: ``float32``, ``float64`` or None (drawn). max_variables: 1-10 variables.
    steps: session runs the property makes. gradientless: draw only models whose effective
    ``var_list`` is non-empty and no variable in it gets a gradient, so ``minimize`` raises
    ``ValueError("No gradients provided for any variable ...")`` (the valid models always
    have a variable to update). pipelines: names from ``properties.pipelines.PIPELINES``
    to draw from (default: all).

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, database=None)
    ... @given(training_models(gradientless=True))
    ... def test(model):
    ...     assert not model.should_update and model.effective_var_list()
    >>> test()
    """
    names = _names(optimizers)
    dtypes = _dtypes(dtype)
    for arg, value, hi in (("max_variables", max_variables, 10), ("steps", steps, 100)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= hi:
            raise InvalidArgument(f"{arg}={value!r} must be an integer in [1, {hi}]")
    chosen = PIPELINES if pipelines is None else tuple(pipelines)
    if not chosen or any(p not in PIPELINES for p in chosen):
        raise InvalidArgument(f"pipelines={list(chosen)!r}: choose from "
                              f"{', '.join(PIPELINES)}")
    return _models(names, dtypes, max_variables, steps, bool(gradientless), chosen)


# -- the properties --------------------------------------------------------------------------
class ModelPropertyError(PropertyError):
    """A training step changed other variables than it should, or changed them wrongly."""


def run_model(model: TrainingModel) -> list[Any]:
    """Build ``model`` in a fresh graph, initialise, and audit ``model.steps`` runs of
    ``[train_op, loss]``; raises :class:`ModelPropertyError` at the first step that does
    not PASS or updates other variables than ``model.should_update``. Returns the audits."""
    audits = []
    with tf.Graph().as_default() as graph:
        built = model.build()
        session = tf.Session(graph=graph)
        try:
            session.run(tf.global_variables_initializer())
            own = {v.name for v in model.variables}
            for step in range(model.steps):
                audit = audit_step(session, [built.train_op, built.loss], built.feed(step))
                audits.append(audit)
                where = f"step {step + 1} of {model.steps}"
                if audit.verdict != PASS:
                    raise ModelPropertyError(f"{where}: {audit}\n\nmodel:\n{model!r}")
                expected = own.intersection(audit.expected)
                if expected != model.should_update:
                    raise ModelPropertyError(
                        f"{where}: the update ops update {sorted(expected)}, the model's "
                        f"structure says {sorted(model.should_update)}\n{audit}\n\n"
                        f"model:\n{model!r}")
        finally:
            session.close()
    return audits


def model_property_test(optimizer: str | None = None, *, dtype: Any = None,
                        max_variables: int = 5, steps: int = 3) -> Callable[[], None]:
    """A zero-argument Hypothesis test: for a drawn model (optimizer ``optimizer``, or any),
    every one of ``steps`` audited runs PASSes and updates exactly ``should_update``.
    Nothing in the models is random, so INCONCLUSIVE fails too.

    >>> from hypothesis import settings
    >>> settings(max_examples=3, database=None)(model_property_test("sgd"))()
    """
    models = training_models(optimizers=None if optimizer is None else [optimizer],
                             dtype=dtype, max_variables=max_variables, steps=steps)
    def prop(model: TrainingModel) -> None:
        run_model(model)

    test = given(model=models)(prop)
    label = optimizer or "any"
    test._hypothesis_internal_add_digest = f"gradverify:model:{label}:{dtype}".encode()
    test.__name__ = f"training_model[{label}]"
    return test


def no_gradient_test(optimizer: str | None = None) -> Callable[[], None]:
    """A zero-argument Hypothesis test: for a drawn model whose effective ``var_list`` gets
    no gradient, ``minimize`` raises TF1's ``ValueError("No gradients provided for any
    variable ...")``.

    >>> from hypothesis import settings
    >>> settings(max_examples=3, database=None)(no_gradient_test())()
    """
    models = training_models(optimizers=None if optimizer is None else [optimizer],
                             gradientless=True)

    def prop(model: TrainingModel) -> None:
        with tf.Graph().as_default():
            try:
                model.build()
            except ValueError as e:
                if "No gradients provided for any variable" in str(e):
                    return
                raise ModelPropertyError(f"minimize raised {e!r}, not 'No gradients provided "
                                         f"for any variable'\n\nmodel:\n{model!r}") from e
        raise ModelPropertyError(f"minimize accepted a var_list without gradients\n\n"
                                 f"model:\n{model!r}")

    test = given(model=models)(prop)
    test._hypothesis_internal_add_digest = f"gradverify:no_gradient:{optimizer}".encode()
    test.__name__ = f"no_gradient[{optimizer or 'any'}]"
    return test
