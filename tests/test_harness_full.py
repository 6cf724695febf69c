"""Full mode judges only the entries where either Jacobian is non-zero; these tests check
that nothing is lost by skipping the exact zeros, and that the reports keep both Jacobians."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from gradverify.harness import check_vjp
from gradverify.harness.full_pass import Jacobians


def _mm(a, b):
    return a @ b


def _mm_vjp(xs, gs):
    return gs[0] @ xs[1].T, xs[0].T @ gs[0]


def _gradient(report):
    return next(c for c in report.checks if c.name == "gradient")


@pytest.fixture
def ab():
    rng = np.random.default_rng(3)
    return [rng.standard_normal((5, 3)), rng.standard_normal((3, 4))]


def test_counts_cover_every_entry_and_only_non_zeros_are_judged(ab):
    r = check_vjp(_mm, _mm_vjp, ab, mode="full")
    g = _gradient(r)
    assert r.verdict == "PASS"
    assert g.details["compared"] == 20 * (15 + 12)      # every Jacobian entry is counted
    assert g.details["judged_entries"] == 20 * 3 + 20 * 3  # the structural non-zeros
    assert np.array_equal(g.arrays["numeric"] != 0, g.arrays["analytic"] != 0)


@pytest.mark.parametrize("where", ["structural zero", "non-zero"])
def test_one_wrong_entry_fails_wherever_it_is(ab, where):
    # d(a @ b)[0, 0] / d a[1, 0] is a structural zero: a gradient leaking into it is
    # non-zero only on the analytic side, and must be judged all the same.
    def vjp(xs, gs):
        ga, gb = _mm_vjp(xs, gs)
        if where == "structural zero":
            ga = ga + np.where(np.arange(5)[:, None] == 1, gs[0][0, 0], 0.0) * (
                np.arange(3) == 0)
        else:
            ga = ga.copy()
            ga[0, 0] *= 1 + 1e-5
        return ga, gb
    r = check_vjp(_mm, vjp, ab, mode="full")
    assert r.verdict == "FAIL"
    bad = [e for e in _gradient(r).worst if e.verdict == "FAIL"]
    assert bad and all(e.input == 0 for e in bad)


def test_nan_in_the_analytic_jacobian_is_judged(ab):
    def vjp(xs, gs):
        ga, gb = _mm_vjp(xs, gs)
        ga = ga.copy()
        ga[2, 1] = np.nan
        return ga, gb
    assert check_vjp(_mm, vjp, ab, mode="full").verdict == "FAIL"


def test_numeric_jacobian_is_built_on_demand_and_survives_pickling(ab):
    r = check_vjp(_mm, _mm_vjp, ab, mode="full")
    g = pickle.loads(pickle.dumps(r)).checks
    arrays = _gradient(r).arrays
    again = next(c for c in g if c.name == "gradient").arrays
    assert sorted(arrays) == ["analytic", "numeric"]
    np.testing.assert_allclose(again["numeric"], arrays["analytic"], rtol=1e-6, atol=1e-9)


def test_jacobians_mapping_behaves_like_a_dict():
    calls = []
    j = Jacobians(np.eye(2), lambda: calls.append(1) or np.ones((2, 2)))
    assert len(j) == 2 and "numeric" in j and not calls  # nothing built yet
    assert j.get("numeric")[0, 1] == 1.0 and j["numeric"] is j["numeric"]
    assert calls == [1]
    j["numeric"] = np.zeros((2, 2))
    del j["analytic"]
    assert list(j) == ["numeric"] and j["numeric"].sum() == 0


@pytest.mark.parametrize("x", [[0.7], [[1.0, -2.0], [0.5, 3.0]], [-3.0, -1.0, 0.0, 2.5]])
def test_each_failing_entry_is_shown_once_as_what_it_is(x):
    # softplus with sigmoid(-x) as its derivative: every entry FAILs on a smooth function.
    # Each shows once (not again among "the closest to their tolerance"), and an entry
    # whose numeric value merely looks flat beside the error (x = -2: 0.12 against 0.88)
    # stays a smooth entry with its step, not a "joint kink" of one input.
    x = np.array(x)
    r = check_vjp(lambda t: np.log1p(np.exp(t)),
                  lambda xs, gs: (gs[0] / (1 + np.exp(xs[0])),), [x], mode="full", seed=0)
    g = _gradient(r)
    assert r.verdict == "FAIL"
    where = [(e.input, e.index, e.output) for e in g.worst]
    assert len(where) == len(set(where)) == np.count_nonzero(x)  # sigmoid(0) is right
    assert all(e.kind == "smooth" and e.step > 0 for e in g.worst), str(r)


def test_row_terms_are_each_rows_largest_other_term():
    from gradverify.harness.full_pass import SparseJacobian
    j = SparseJacobian.from_dense(np.array([[1.0, 2.0, -3.0], [0.0, 4.0, 0.0],
                                            [5.0, 5.0, np.inf]]))
    d = np.array([1.0, 0.5, 1.0])
    # row 0 terms 1, 1, 3; row 1 only its own; row 2: 5, 2.5 (inf is not a size)
    assert j.row_terms(np.array([0, 1, 2]), d, skip=2).tolist() == [1.0, 2.0, 5.0]
    assert j.row_terms(np.array([2, 0]), d, skip=0).tolist() == [2.5, 3.0]
    assert j.row_terms(np.array([1]), d, skip=1).tolist() == [0.0]


def test_a_cancelling_outputs_round_off_follows_its_terms():
    # a line whose output stays ~1e-16 (a difference of terms of size 1): charged at |phi|
    # its round-off is nothing; with the terms' size it is what rounding 1 does
    from gradverify.harness.numeric import Line, refine
    plain, with_terms = (Line(lambda t: np.array([3e-16 + 0.5 * t])) for _ in range(2))
    with_terms.terms = np.array([1.0])
    a, b = refine(plain, 6e-6), refine(with_terms, 6e-6)
    assert a.value[0] == b.value[0]
    assert b.budget.output_roundoff[0] > 1e3 * a.budget.output_roundoff[0]
    # the same bound as an output of size 1 itself
    big = refine(Line(lambda t: np.array([1.0 + 0.5 * t])), 6e-6)
    assert b.budget.output_roundoff[0] == pytest.approx(big.budget.output_roundoff[0], rel=0.1)
