"""Output entries whose change is rounded away inside the function, met by the joint kink
judgement: log_softmax at a saturated logit (torch's formulation, ``(x - m) - log(sum
exp(x - m))``) makes its largest entry ``-log(1 + 2e-30)`` a difference of values near 1,
quantised at 2.2e-16, so it is flat at every step the kink samples take. Its slope is real;
the flat samples are not a measurement of it: never FAIL. A gradient through a function
that is flat at every scale (stop_gradient leaking) still FAILs there."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradverify.harness import FAIL, check_vjp


def log_softmax(x):
    m = x.max()
    return (x - m) - np.log(np.exp(x - m).sum())


def log_softmax_vjp(xs, gs):
    p = np.exp(log_softmax(xs[0]))
    return (gs[0] - p * gs[0].sum(),)


@pytest.mark.parametrize("mode", ["full", "auto", "fast"])
@pytest.mark.parametrize("gap", [29.5, 30.0, 30.5, 33.0, 36.6])
def test_saturated_log_softmax_is_never_a_fail(gap, mode):
    for seed in range(3):
        r = check_vjp(log_softmax, log_softmax_vjp, [np.array([gap, 0.0, 0.0])], mode=mode,
                      seed=seed)
        assert r.verdict != FAIL, str(r)


@settings(max_examples=25, deadline=None)
@given(gap=st.floats(24.0, 40.0), rest=st.lists(st.floats(-1.0, 1.0), min_size=1,
                                                max_size=4), seed=st.integers(0, 2 ** 16))
def test_saturated_log_softmax_class(gap, rest, seed):
    x = np.array([gap + rest[0], *rest])
    r = check_vjp(log_softmax, log_softmax_vjp, [x], mode="full", seed=seed)
    assert r.verdict != FAIL, str(r)


@pytest.mark.parametrize("gap", [30.0, 33.0])
def test_a_wrong_log_softmax_gradient_still_fails_there(gap):
    wrong = lambda xs, gs: tuple(-g for g in log_softmax_vjp(xs, gs))
    r = check_vjp(log_softmax, wrong, [np.array([gap, 0.0, 0.0])], mode="full", seed=0)
    assert r.verdict == FAIL


def test_a_gradient_leaking_through_a_flat_output_at_a_tie_fails():
    # out[0] = max(a, b) at the tie (a kink group over a, b); out[1] is flat in both
    # (stop_gradient), but its VJP leaks the upstream gradient into a: outside the hull
    # of its pieces (all 0) by far more than any round-off
    def f(x):
        return np.array([max(x[0], x[1]), 3.0])

    def vjp(xs, gs):
        g = np.zeros(2)
        g[0] = 0.5 * gs[0][0] + gs[0][1]
        g[1] = 0.5 * gs[0][0]
        return (g,)

    for seed in range(3):
        r = check_vjp(f, vjp, [np.array([1.0, 1.0])], mode="full", seed=seed)
        assert r.verdict == FAIL, str(r)


# Full mode, a column flat on its whole ladder and far beyond it: in the mean of
# [1, 2.2e-16, -1], a move of the middle entry by up to a tenth of itself is rounded away
# against the 1s. Flatness bounds the slope only to the rounding of the output's terms
# (1/3 here, though the mean itself is 7e-17): never a FAIL, at any of the step draws
# (seed 45 FAILed when the bound used the output's own size). A fault that flatness does
# refute (a slope of 1e6 on the middle entry) still can FAIL; one on a 1 still does.
@pytest.mark.parametrize("reduce", [np.sum, np.mean])
def test_flat_column_of_a_cancelling_sum_is_never_a_fail(reduce):
    x = [np.array([1.0, 2.220446049250313e-16, -1.0])]
    n = 1.0 if reduce is np.sum else 3.0

    def vjp(xs, gs, bad=1.0):
        g = np.full(3, gs[0] / n)
        g[0] *= bad
        return (g,)
    for seed in range(40, 52):
        r = check_vjp(lambda x: np.asarray(reduce(x)), vjp, x, mode="full", seed=seed)
        assert r.verdict != FAIL, str(r)
    assert check_vjp(lambda x: np.asarray(reduce(x)), lambda xs, gs: vjp(xs, gs, 1.5), x,
                     mode="full", seed=45).verdict == FAIL


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_a_change_rounded_away_by_an_intermediate_of_one_is_not_a_fail(mode):
    # log(1 + x^4) at x = -1e-6: 1 + 1e-24 rounds to 1, the output is 0 at every step the
    # checker takes, and the derivative -4e-18 is right (a fuzz of torch programs found
    # it); a wrong gradient of a function that really is constant still FAILs
    f = lambda x: np.log(x ** 4 + 1)
    vjp = lambda xs, gs: (gs[0] * 4 * xs[0] ** 3 / (xs[0] ** 4 + 1),)
    for seed in range(4):
        assert check_vjp(f, vjp, [np.array([-1e-6])], mode=mode, seed=seed).verdict != FAIL
    one = lambda xs, gs: (np.ones_like(xs[0]) * gs[0],)
    assert check_vjp(lambda x: x - x, one, [np.array([1.0, 2.0])], mode=mode).verdict == FAIL


def _log_outer(x):
    return np.log(np.abs(x.T @ x) + 1)


def _log_outer_vjp(xs, gs, bad=1.0):
    x = xs[0]
    t = x.T @ x
    gt = gs[0] * np.sign(t) / (np.abs(t) + 1)
    return (bad * (x @ (gt + gt.T)),)


def test_a_joint_kink_rounded_flat_by_an_intermediate_of_one_is_not_a_fail():
    # log(|x^T x| + 1) at (3e-6, -2e-6): the off-diagonal outputs are 6e-12, but 1 + 6e-12
    # rounds at 2.2e-16, so the samples around the kinks the ladder reads are flat while
    # the derivative 2e-6 is right (a fuzz of torch programs found it: it FAILed at every
    # seed, "rounded away" only below the round-off of the 6e-12 output itself)
    x = [np.array([[3e-6, -2e-6]])]
    for seed in range(6):
        r = check_vjp(_log_outer, _log_outer_vjp, x, mode="full", seed=seed)
        assert r.verdict != FAIL, str(r)


def test_a_wrong_gradient_at_that_rounded_joint_kink_still_fails():
    # a sign flip, and a gradient leaking the upstream sum into every entry, predict
    # changes the flat samples do refute
    x = [np.array([[3e-6, -2e-6]])]
    leak = lambda xs, gs: (_log_outer_vjp(xs, gs)[0] + gs[0].sum(),)
    for seed in range(3):
        for vjp in (lambda xs, gs: _log_outer_vjp(xs, gs, -1.0), leak):
            r = check_vjp(_log_outer, vjp, x, mode="full", seed=seed)
            assert r.verdict == FAIL, str(r)
