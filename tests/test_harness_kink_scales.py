"""Joint kinks between coordinates of very different scales (``kink_samples.middle_scale``).

The second derivative of elu at x = 0 jumps from 1 to 0. Checking it at order 2 makes each
row ``v elu'(x)`` depend on x and on the cotangent v jointly; with x = 0 beside 1.5e5 in the
same input, x is stepped on the scale 1.5e5 and the common sampling radius moves v (0.6) by
100 %: the piece gradient ``v exp(x)`` curves across it. The small radius (the 2e-7 to the
nearest entry) rounds the large coordinate's differences away. The coordinates' smallest
own scale judges the row.
"""

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import check_vjp
from gradverify.harness.engine_adapter import check_gradients

# the input a gate run drew (seed 412), and seeds of the check that FAILed it
FEATURES = np.zeros((4, 5))
FEATURES[3, 3:] = 2.1610970248172804e-07, 152535.0


@pytest.mark.parametrize("seed", [131, 966, 1079, 24967])
def test_elu_order2_at_zero_beside_a_huge_entry_never_fails(seed):
    report = check_gradients(tf.nn.elu, [FEATURES], mode="full", order=2, seed=seed)
    assert report.verdict == "PASS", report


def _elu_slope(x):
    return np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0)))


def _slope_vjp(curvature_at_zero):
    """The VJP of (x, v) -> v elu'(x), with elu''(0) = ``curvature_at_zero``."""
    def vjp(inputs, cts):
        x, v = inputs
        (g,) = cts
        curve = np.where(x > 0, 0.0, np.exp(np.minimum(x, 0.0)))
        curve = np.where(x == 0, curvature_at_zero, curve)
        return g * v * curve, g * _elu_slope(x)
    return vjp


X = np.array([0.0, 0.0, 2.2e-7, -0.7, 1.5e5])
V = np.array([0.63, -1.1, 0.4, 0.9, 0.2])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("at_zero", [0.0, 1.0, 0.5])
def test_either_one_sided_curvature_passes_and_a_value_outside_fails(seed, at_zero):
    def forward(x, v):
        return v * _elu_slope(x)

    good = check_vjp(forward, _slope_vjp(at_zero), [X, V], mode="full", seed=seed)
    assert good.verdict == "PASS", good
    bad = check_vjp(forward, _slope_vjp(2.0), [X, V], mode="full", seed=seed)
    assert bad.verdict == "FAIL", bad


@pytest.mark.parametrize("radius", [1.0, 1e-3, None])
def test_each_coordinates_round_off_budget_bounds_its_sampled_differences(radius):
    # One absolute difference step for all coordinates (ties are orderings in x), gradients
    # per unit of each coordinate's scale: the round-off of the large-scale coordinate is
    # larger by the ratio of the scales (1e5 here), and its budget must say so.
    from gradverify.harness.budget import C_ROUND, SAFETY
    from gradverify.harness.calls import Problem
    from gradverify.harness.kink_samples import piece_gradients
    from gradverify.harness.lines import Ref

    x, y = np.array([0.0, 1e5]), np.array([0.5])

    def f(a, b):
        return a[:1] + b + 1e3   # values of 1e3: every difference carries their round-off

    p = Problem(f, lambda xs, gs: (np.concatenate([gs[0], [0.0]]), gs[0]), [x, y])
    ref = Ref.native(p, [f(x, y)])
    coords = [(0, 0, 1e5), (1, 0, 1.0)]
    grads, mag, steps = piece_gradients(p, ref, coords, 6e-6, scale=radius)
    err = np.max(np.abs(grads[:, 0, :] - np.array([1e5, 1.0])), axis=0)
    budget = SAFETY * C_ROUND * ref.eps * mag[0] / steps
    assert np.all(err <= budget)
    assert err[0] > budget[1]   # the smaller coordinate's budget would not cover it


def _lse0(x):
    m = np.max(x, axis=0, keepdims=True)
    return np.squeeze(m + np.log(np.sum(np.exp(x - m), axis=0, keepdims=True)), axis=0)


def _lse0_vjp(xs, gs):
    e = np.exp(xs[0] - np.max(xs[0], axis=0, keepdims=True))
    return (e / e.sum(axis=0, keepdims=True) * gs[0][None],)


LSE_X = np.array([0.0265, -9.58e-05, -1.80e-08, -0.00621, 0.00523, -143.0, 77.4, -338.5,
                  3.83e-05, 47.7, -148.2, 6.82, -0.00421, 0.0325, 2.66e-07, -3.91e-06,
                  -23.7, -6.17e-08]).reshape(3, 3, 2)


@pytest.mark.parametrize("mode", ["full", "auto"])
def test_a_joint_test_that_cannot_resolve_the_fault_does_not_pass_it(mode):
    # Gradient 2.2e-4 (and -2.2e-4) on two entries that out[2, 0] does not depend on:
    # numeric 0 along each, so they look flat and go to the joint judgement, whose step
    # beside x = 2.7e-7 and -3.9e-6 is 1e-12 - its round-off as large as the fault.
    def faulty(xs, gs):
        (g,) = _lse0_vjp(xs, gs)
        g.flat[14] += 2.2e-4 * gs[0].flat[4]
        g.flat[15] -= 2.2e-4 * gs[0].flat[4]
        return (g,)
    for seed in range(3):
        report = check_vjp(_lse0, faulty, [LSE_X], mode=mode, seed=seed)
        assert report.verdict != "PASS", report
        assert check_vjp(_lse0, _lse0_vjp, [LSE_X], mode=mode, seed=seed).verdict == "PASS"


def _cosine_to_ones(x):
    return np.sum(x, axis=-1) / np.sqrt(np.sum(x * x, axis=-1)) / 2.0


def _cosine_to_ones_vjp(xs, gs):
    x, g = xs[0], gs[0][..., None]
    n = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    return (g * (1.0 / n - np.sum(x, axis=-1, keepdims=True) * x / n ** 3) / 2.0,)


# a row of length 1e-8 beside rows of length 1: its zeros, tied with each other, step like
# the other rows (0.8), where the function's structure is 1e-8 wide
NEAR_ZERO_ROW = np.array([[1.0, -1.0, 0.5, 1.0], [0.0, 1e-8, 0.0, 0.0],
                          [-0.5, -0.5, 1.0, 1.0]])


@pytest.mark.parametrize("seed", range(4))
def test_structure_at_the_common_radius_is_not_noise_at_the_small_one(seed):
    # The common radius sees the row vary by 5e-4: measured as the output's noise, it made
    # the small radius (1e-8, where the pieces agree to 2e-5) uninformative, and the row
    # FAILed; the small radius's own differences show its noise (``kinks.seen_noise``).
    x = NEAR_ZERO_ROW
    assert check_vjp(_cosine_to_ones, _cosine_to_ones_vjp, [x], mode="full",
                     seed=seed).verdict == "PASS"

    def flipped(xs, gs):
        (g,) = _cosine_to_ones_vjp(xs, gs)
        g[1] = -g[1]
        return (g,)
    assert check_vjp(_cosine_to_ones, flipped, [x], mode="full", seed=seed).verdict == "FAIL"


@pytest.mark.parametrize("mode", ["full", "auto"])
@pytest.mark.parametrize("seed", range(3))
def test_a_small_fault_on_a_row_of_its_own_small_scale_fails(mode, seed):
    # The row's zeros tie, so the joint test judges it; the common radius (set by the
    # rows of length 1) samples pieces that differ by orders of magnitude, and the row is
    # judged at its own scale, where the pieces agree to 2e-5. The coordinatewise
    # tolerances set for the common step are carried there in proportion to the radius
    # (``kink_samples.carried_side``): carried whole, they admitted this 1 % fault.
    def off_by(rel):
        def vjp(xs, gs):
            (g,) = _cosine_to_ones_vjp(xs, gs)
            g[1] *= 1.0 + rel
            return (g,)
        return vjp
    for rel in (1e-2, -1e-3):
        report = check_vjp(_cosine_to_ones, off_by(rel), [NEAR_ZERO_ROW], mode=mode,
                           seed=seed)
        assert report.verdict == "FAIL", report
