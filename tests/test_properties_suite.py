"""The property suite itself: strategies draw the hard cases on purpose, every op is
reached with complete metadata, missing metadata fails loudly, and the seeded faults are
caught by the generated properties."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from gradverify import engine
from gradverify.engine import meta as m
from gradverify.engine.registry import op, unregister
from gradverify.properties import op_cases, op_properties, shapes, validate, values_in
from gradverify.properties.checks import checkable, property_test
from gradverify.properties.profiles import PROFILES, active_profile
from tests import seeded_faults

SEEDED = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                  phases=[Phase.generate])

# Ops the op-level properties do not apply to (sources, state, random), with the test
# module that covers each. A new op of this kind must be added here deliberately.
COVERED_ELSEWHERE = {
    "Const": "test_graph", "Placeholder": "test_session", "NoOp": "test_session",
    "VariableV2": "test_variables", "Assign": "test_variables",
    "AssignAdd": "test_variables", "AssignSub": "test_variables",
    "ApplyGradientDescent": "test_train", "ApplyMomentum": "test_optimizers",
    "ApplyAdam": "test_optimizers", "ApplyAdagrad": "test_optimizers",
    "ApplyRMSProp": "test_optimizers", "ApplyCenteredRMSProp": "test_optimizers",
    "RandomStandardNormal": "test_ops_random", "TruncatedNormal": "test_ops_random",
    "RandomUniform": "test_ops_random", "RandomUniformInt": "test_ops_random",
    "LogUniformCandidateSampler": "test_ops_embedding",
}


class _EnoughError(Exception):
    """Every wanted feature has been drawn: stop generating (the generate phase ends at the
    first exception, and there is no shrink phase to replay it)."""


def _collect(strategy, feature, want=None):
    """The features of up to 300 drawn values; stops early once ``want`` are all found."""
    found = set()

    @SEEDED
    @given(strategy)
    def run(value):
        found.update(feature(value))
        if want is not None and found >= want:
            raise _EnoughError

    with contextlib.suppress(_EnoughError):
        run()
    return found


# -- strategies --------------------------------------------------------------------------------
def test_values_produce_every_special_kind():
    def kinds(x):
        out = set()
        a = np.abs(x)
        out |= {"zero"} if (x == 0).any() else set()
        out |= {"kink"} if (x == 2.0).any() else set()
        out |= {"one"} if (np.abs(x) == 1).any() else set()
        out |= {"huge"} if (a >= 1e3).any() else set()
        out |= {"tiny"} if ((a > 0) & (a <= 1e-6)).any() else set()
        out |= {"negative"} if (x < 0).any() else set()
        out |= {"duplicate"} if len(np.unique(x)) < x.size else set()
        return out
    special = {"zero", "kink", "one", "huge", "tiny", "negative", "duplicate"}
    found = _collect(values_in(m.reals, (4,), kinks=(2.0,)), kinds, want=special)
    assert found >= special


def test_values_stay_in_their_domain():
    @SEEDED
    @given(st.sampled_from([m.positive, m.nonnegative, m.nonzero, m.bounded(-1, 1),
                            m.probabilities]).flatmap(
        lambda d: st.tuples(st.just(d), values_in(d, (2, 3)))))
    def run(pair):
        domain, x = pair
        assert domain.contains(x), (domain, x)
        if domain.kind == "probabilities":
            np.testing.assert_allclose(x.sum(-1), 1.0, rtol=1e-12)
    run()


def test_index_inputs_get_duplicates_and_stay_in_range():
    found = _collect(values_in(m.indices(of="params"), (5,), dtype=np.int32, of_shape=(3,)),
                     lambda a: {"dup"} if len(set(a.tolist())) < 5 else {"nodup"},
                     want={"dup"})
    assert "dup" in found

    @SEEDED
    @given(values_in(m.labels(of="logits"), (4,), dtype=np.int64, of_shape=(4, 7)))
    def run(a):
        assert a.dtype == np.int64 and ((a >= 0) & (a < 7)).all()
    run()


def test_shapes_cover_ranks_unit_and_non_square_dims():
    def kinds(s):
        out = {f"rank{len(s)}"}
        if 1 in s:
            out.add("unit")
        if len(s) >= 2 and s[-1] != s[-2]:
            out.add("non-square")
        return out
    every = {"rank0", "rank1", "rank2", "rank3", "rank4", "unit", "non-square"}
    found = _collect(shapes(), kinds, want=every)
    assert found >= every


def test_op_cases_draw_ties_broadcasting_negative_axes_and_batched_matmul():
    maximum = engine.registry.lookup("Maximum")
    found = _collect(op_cases(maximum), lambda c: (
        {"tie"} if np.any(np.broadcast_arrays(*c.checked)[0]
                          == np.broadcast_arrays(*c.checked)[1]) else set())
        | ({"broadcast"} if c.checked[0].shape != c.checked[1].shape else set()),
        want={"tie", "broadcast"})
    assert found == {"tie", "broadcast"}
    total = engine.registry.lookup("Sum")  # its attribute is a tuple of axes, or None
    axes = _collect(op_cases(total), lambda c: {"none"} if c.attrs["axis"] is None else {
        "empty" if not c.attrs["axis"] else "several" if len(c.attrs["axis"]) > 1 else "one",
        *("negative" for a in c.attrs["axis"] if a < 0),
        *("positive" for a in c.attrs["axis"] if a >= 0)},
        want={"none", "empty", "one", "several", "negative", "positive"})
    assert axes == {"none", "empty", "one", "several", "negative", "positive"}
    concat = engine.registry.lookup("ConcatV2")  # a single int axis
    axes = _collect(op_cases(concat), lambda c: {"negative" if c.attrs["axis"] < 0
                                                 else "positive"},
                    want={"negative", "positive"})
    assert axes == {"negative", "positive"}
    matmul = engine.registry.lookup("MatMul")  # batched when rank >= 3
    ranks = _collect(op_cases(matmul), lambda c: {"batched"} if max(
        x.ndim for x in c.checked) >= 3 else set(), want={"batched"})
    assert ranks == {"batched"}


def test_kinks_are_hit_exactly():
    relu = engine.registry.lookup("Relu")
    found = _collect(op_cases(relu), lambda c: {"kink"} if (c.checked[0] == 0).any()
                     else set(), want={"kink"})
    assert found == {"kink"}


@pytest.mark.parametrize("call", [
    lambda: shapes(min_rank=-1), lambda: shapes(min_rank=3, max_rank=2),
    lambda: shapes(max_side=1.5), lambda: values_in("reals", (2,)),
    lambda: op_cases("Relu"), lambda: op_cases(engine.registry.lookup("Relu"), dtype="bool"),
])
def test_strategies_validate_arguments_eagerly(call):
    with pytest.raises(InvalidArgument):
        call()


# -- completeness --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(engine.registry.ops()))
def test_every_op_has_complete_metadata_and_is_reached(name):
    opdef = engine.registry.lookup(name)
    assert validate(opdef) == [], f"{name}: {validate(opdef)}"
    if checkable(opdef):
        props = op_properties(opdef)
        assert "shapes" in props
        assert ("gradient" in props) or ("no_gradient" in props) or not opdef.differentiable
    else:
        assert name in COVERED_ELSEWHERE, (
            f"op {name} is not reached by the generated properties (a source, state or "
            "random op): cover it in a test module and list it in COVERED_ELSEWHERE")


def test_covered_elsewhere_lists_only_real_uncheckable_ops():
    for name in COVERED_ELSEWHERE:
        assert not checkable(engine.registry.lookup(name)), name


def test_missing_metadata_fails_loudly_naming_the_op():
    @op("GvNoGradient", inputs={"x": m.reals})
    def no_gradient(x):
        return x * 2

    @op("GvNoShapeRule", inputs={"x": m.reals}, signature="custom",
        choices={"nope": (1, 2)})
    def no_shape(x):
        return x
    try:
        assert any("no gradient" in p for p in validate(no_gradient))
        problems = validate(no_shape)
        assert any("shape_rule" in p for p in problems)
        assert any("'nope'" in p for p in problems)
        from gradverify.properties.plugin import run_property
        with pytest.raises(AssertionError, match="GvNoGradient"):
            run_property(no_gradient, "metadata")
    finally:
        unregister("GvNoGradient")
        unregister("GvNoShapeRule")


def test_profiles():
    assert active_profile({"CI": "true"}) == "ci"
    assert active_profile({"CI": "0"}) == "dev"
    assert active_profile({"HYPOTHESIS_PROFILE": "thorough", "CI": "1"}) == "thorough"
    with pytest.raises(ValueError, match="unknown Hypothesis profile"):
        active_profile({"HYPOTHESIS_PROFILE": "nope"})
    ci = PROFILES["ci"]
    assert ci["derandomize"] and ci["deadline"] is None and ci["print_blob"]
    assert ci["database"] is None


# -- the seeded faults are caught by the generated suite (dev profile's budget) --------------------
@pytest.fixture(scope="module")
def faults():
    catalogue = seeded_faults.register()
    yield {f.op: f for f in catalogue}
    seeded_faults.unregister()


DEV = settings(settings.get_profile("dev"), derandomize=True, database=None,
               phases=[Phase.explicit, Phase.generate])


# Faults the generated suite takes longest to catch (large matmuls, many examples), measured
# with --durations: where another fault of the same kind exists, that one runs by default.
_COSTLY = {"FaultMatMulFactorOrder", "FaultMatMulNoTranspose", "FaultL2LossDouble",
           "FaultL2LossTiny", "FaultMatMulTiny"}


def _one_of_each_kind() -> list:
    """Every seeded faulty op; the default run keeps one of each bug pattern (row) and one
    of the one-part-in-a-million ("Tiny") faults, the rest run under ``tox -e thorough``."""
    catalogue = sorted(seeded_faults.register(), key=lambda f: (f.op in _COSTLY, f.op))
    seeded_faults.unregister()
    seen: set = set()
    params = []
    for f in catalogue:
        if any(p.values[0] == f.op for p in params):
            continue   # one op seeded with several cases (e.g. auto and fast mode)
        kind = "tiny" if f.op.endswith("Tiny") else f.row
        params.append(pytest.param(f.op, id=f.op, marks=() if kind not in seen
                                   else pytest.mark.slow))
        seen.add(kind)
    return sorted(params, key=lambda p: p.values[0])


SEEDED_OPS = _one_of_each_kind()


def test_every_seeded_fault_is_listed(faults):
    assert sorted(faults) == [p.values[0] for p in SEEDED_OPS]


@pytest.mark.parametrize("name", SEEDED_OPS)
def test_seeded_fault_is_caught_by_the_generated_suite(faults, name):
    opdef = engine.registry.lookup(name)
    caught = []
    for prop in op_properties(opdef):
        try:
            DEV(property_test(opdef, prop))()
        # GradientError / PropertyError, or the engine rejecting a case the fault's own
        # metadata allows (a real finding of the suite too)
        except (AssertionError, ExceptionGroup, engine.errors.OpError) as e:
            caught.append((prop, type(e).__name__))
            break
    assert caught, f"{opdef.type}: no generated property fails"
