"""The error budget, term by term: each term grows when (and only when) its cause does."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import check_vjp
from gradverify.harness.budget import ErrorBudget, noise_level, tolerance
from gradverify.harness.ecnoise import noise
from gradverify.harness.numeric import Line, quick, refine

H = 6e-6


def test_tolerance_is_safety_times_the_sum_of_the_terms():
    b = ErrorBudget.zeros(3)
    for k, name in enumerate(b.terms):
        getattr(b, name)[:] = 10.0 ** -(k + 8)
    assert np.allclose(tolerance(b, 4.0), 4.0 * sum(10.0 ** -(k + 8) for k in range(6)))
    assert b.dominant() == ["truncation"] * 3


def test_truncation_term_grows_with_curvature_not_with_size():
    flat = quick(Line(lambda t: np.array([1e6 * (1 + t)])), H)
    curved = quick(Line(lambda t: np.array([np.exp(30 * t)])), H)
    assert flat.budget.truncation[0] < 1e-3 * curved.budget.truncation[0]
    assert curved.budget.truncation[0] >= abs(curved.value[0] - 30.0)


def test_output_roundoff_term_scales_with_the_outputs_magnitude():
    small = quick(Line(lambda t: np.array([1.0 + t])), H)
    large = quick(Line(lambda t: np.array([1e8 + t])), H)
    assert large.budget.output_roundoff[0] == pytest.approx(
        1e8 * small.budget.output_roundoff[0], rel=1e-4)


def test_cancellation_term_sees_noise_that_eps_times_f_cannot():
    # (1e8 + t) - 1e8 is ~t: |f| is tiny, yet its rounding noise is eps * 1e8
    cancel = Line(lambda t: np.array([(1e8 + 0.37 + t) - 1e8]))
    sigma = noise(cancel, 1e-3)
    assert 1e-10 < sigma[0] < 1e-7
    smooth = Line(lambda t: np.array([0.37 + t + 0.1 * t * t]))
    assert noise(smooth, 1e-3)[0] < 1e-15
    est = quick(cancel, 1e-3, sigma=sigma)
    assert est.budget.cancellation[0] > est.budget.output_roundoff[0]


def test_noise_level_ignores_a_kink_or_a_jump_at_x():
    for phi in (lambda t: np.array([abs(t)]), lambda t: np.array([1.0 if t > 0 else 0.0])):
        assert noise(Line(phi), 1e-3)[0] == 0.0


def test_noise_level_refines_its_spacing_when_curvature_dominates():
    # sin at a huge argument: the default spacing sees curvature, a finer one only the
    # genuine noise (x (1 + t) rounds by eps * x = 1.5e-10)
    x = 659872.0
    line = Line(lambda t: np.array([np.sin(x * (1 + t))]))
    assert noise(line, H)[0] < 1e-9
    assert noise_level(np.sin(x * (1 + H / 8 * np.arange(5)))[:, None])[0] > 1e-6


def test_argument_rounding_term_is_charged_at_large_x():
    # sin(33799 + t) - the argument's own rounding moves f by eps * 33799
    x = np.array([33799.0])
    r = check_vjp(np.sin, lambda xs, gs: (gs[0] * np.cos(xs[0]),), [x], mode="full")
    assert r.verdict == "PASS"
    line = Line(lambda t: (np.array([np.sin(x[0] * (1 + t))]), np.array([1.0]),
                           np.array([x[0] * 32])), paired=True)
    est = quick(line, H)
    assert est.budget.argument_rounding[0] > est.budget.output_roundoff[0]


@pytest.mark.parametrize("estimate", [quick, refine])
def test_roundoff_terms_do_not_underflow_on_subnormal_lines(estimate):
    # phi ~ 1e-310: eps |phi| underflows to 0 although eps |phi| / h is representable;
    # a budget of 0 FAILed x -> [x] at x = 2.2e-311 (fast mode, seed 19)
    x = 2.2e-311
    line = Line(lambda t: (np.array([x * t]), np.array([x]), np.array([x])), paired=True)
    est = estimate(line, H)
    assert est.budget.output_roundoff[0] > 0 and est.budget.argument_rounding[0] > 0
    normal = Line(lambda t: (np.array([t]), np.array([1.0]), np.array([1.0])), paired=True)
    ref = estimate(normal, H).budget
    assert est.budget.output_roundoff[0] == pytest.approx(x * ref.output_roundoff[0], rel=1e-3)


def test_analytic_rounding_and_float32_terms_enter_the_judgement():
    from gradverify.harness.judge import judge
    est = refine(Line(lambda t: np.array([2.0 * t])), H)
    tight = judge(np.array([2.0 + 1e-6]), np.zeros(1), est)
    loose = judge(np.array([2.0 + 1e-6]), np.full(1, 1e-6), est)
    f32 = judge(np.array([2.0 + 1e-6]), np.zeros(1), est, float32=1e-6)
    assert tight.verdict[0] == "FAIL"
    assert loose.verdict[0] == "PASS" and f32.verdict[0] == "PASS"
    assert loose.budget.analytic_rounding[0] == 1e-6 and f32.budget.float32[0] == 1e-6


def test_noise_of_a_coarse_staircase_is_never_read_as_zero():
    # z - z * y at z = 15625 lands on multiples of ulp(15625), far coarser than its own ulp:
    # five samples often have exactly zero third differences; the grid floor must see it
    from gradverify.harness.ecnoise import noise_samples

    rng = np.random.default_rng(0)
    for _ in range(200):
        u = rng.standard_normal(2) * np.array([15625.0, 1.0]) * 6e-6 / 8
        ks = (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5)
        z = 15625.0 + np.array(ks) * u[0]
        y = 0.999999 + np.array(ks) * u[1]
        assert noise_samples(list((z - z * y)[:, None]))[0] >= 2.0 ** -39 / 4


def test_grid_floor_ignores_ordinary_results_and_step_functions():
    from gradverify.harness.budget import quantum_level

    x = np.linspace(0.1, 0.2, 10)
    assert quantum_level(np.exp(x)[:, None])[0] < 1e-16
    assert quantum_level(np.array([[1.0], [2.0], [1.0], [2.0]]))[0] == 0.0
    assert quantum_level(np.full((10, 1), 3.0))[0] == 0.0


def test_full_modes_first_pass_is_the_shared_round_off_budget():
    # central_tolerance (full mode) is central_roundoff with the Jacobian's own terms:
    # argument C_ROUND |a| (|x|/d + h), analytic C_ROUND eps |a| + residual, noise per row
    from gradverify.harness.budget import (
        C_NOISE,
        C_ROUND,
        SAFETY,
        central_roundoff,
        central_tolerance,
    )
    rng = np.random.default_rng(0)
    # one value per judged entry
    mag, slope, xd = rng.uniform(0, 3, 20), rng.uniform(0, 2, 20), rng.uniform(0, 9, 20)
    res, sigma = rng.uniform(0, 1e-14, 20), rng.uniform(0, 1e-15, 20)
    eps, h = 2.0 ** -52, 6e-6
    expected = SAFETY * (C_ROUND * eps * mag / h + C_ROUND * eps * slope * (xd + h) / h
                         + C_ROUND * eps * slope + C_NOISE * sigma / h + res)
    got = central_tolerance(mag, slope, xd, sigma, res, eps, h)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    # a probe's terms: output C_ROUND eps |phi| / h, argument eps A / h, analytic rounding
    one = central_roundoff(np.array([2.0]), np.array([5.0]), np.array([1e-15]), 0.0, eps, h)
    np.testing.assert_allclose(one, SAFETY * (C_ROUND * eps * 2 / h + eps * 5 / h + 1e-15))


# -- coarser steps for what round-off hides at h ---------------------------------------------
def test_ladder_reaches_coarser_steps_in_float64_only():
    from gradverify.harness.budget import default_step, ladder_top
    h64 = default_step(np.finfo(np.float64).eps)
    h32 = default_step(np.finfo(np.float32).eps)
    assert ladder_top(np.finfo(np.float64).eps, h64) == pytest.approx(256 * h64)
    assert ladder_top(np.finfo(np.float32).eps, h32) == pytest.approx(16 * h32)
    # a user's large step is never extended
    assert ladder_top(np.finfo(np.float64).eps, 1e-3) == pytest.approx(16e-3)


def test_a_roundoff_dominated_estimate_settles_on_a_coarse_rung():
    # a loss of size 2.5 whose slope is 1e-4: round-off, not truncation, limits the
    # estimate, so the best rung is above the classic 16h (whose Richardson bound is ~8e-10
    # for 32 ulps of 2.5) and resolves ten times more; its curvature (scale 1/10) shows
    # the h^2 regime on the coarse rungs, which a coarse rung must show to count
    line = Line(lambda t: np.array([2.5 + 1e-5 * np.sin(10 * t)]))
    est = refine(line, H)
    assert est.step[0] > 16 * H
    assert abs(est.value[0] - 1e-4) <= est.bound[0] < 8e-11
    # float32's ladder is not extended (its h is coarse already)
    est32 = refine(Line(lambda t: np.array([2.5 + 1e-4 * np.sin(t)]), np.float32),
                   float(np.finfo(np.float32).eps) ** (1 / 3))
    assert est32.step[0] <= 16 * float(np.finfo(np.float32).eps) ** (1 / 3) * (1 + 1e-12)


def test_measured_rounding_is_floored_and_capped():
    from gradverify.harness.budget import C_MEASURED, ROUND_FLOOR, measured_rounding
    eps, mag = 2.0 ** -52, np.full(4, 3.0)
    sigma = np.array([0.0, 0.5 * eps * 3.0, 1e-10, np.nan])
    r = measured_rounding(sigma, mag, eps) / (eps * 3.0)
    assert r[0] == pytest.approx(ROUND_FLOOR)          # no noise seen: the floor
    assert r[1] == pytest.approx(0.5 * C_MEASURED)     # measured
    assert r[2] == pytest.approx(32.0)                 # never above the a-priori model
    assert r[3] == pytest.approx(32.0)                 # not measured: the a-priori model


def _xent(z):
    z = z - z.max(axis=1, keepdims=True)
    return np.asarray(-(z[:, 0] - np.log(np.exp(z).sum(axis=1))).mean())


def _xent_vjp(xs, gs):
    z = xs[0] - xs[0].max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p[:, 0] -= 1
    return (p * gs[0] / len(z),)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_mode_sharpens_a_scalar_loss_and_only_it(seed):
    z = np.random.default_rng(seed).standard_normal((40, 10))  # 1/40 of the loss per row
    r = check_vjp(_xent, _xent_vjp, [z], mode="full", seed=seed)
    grad = next(c for c in r.checks if c.name == "gradient")
    assert r.verdict == "PASS", str(r)
    assert grad.details["sharpened_entries"] == z.size
    assert r.resolved_rtol < 2e-8   # the first step alone resolves ~1e-7 here
    off = check_vjp(_xent, lambda xs, gs: tuple(g * (1 + 1e-7) for g in _xent_vjp(xs, gs)),
                    [z], mode="full", seed=seed)
    assert off.verdict == "FAIL"
    # an entry-sized output (tanh) resolves the goal at the first step: nothing sharpened
    x = np.random.default_rng(seed).standard_normal(30)
    t = check_vjp(np.tanh, lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),), [x],
                  mode="full", seed=seed)
    assert next(c for c in t.checks if c.name == "gradient").details["sharpened_entries"] == 0
