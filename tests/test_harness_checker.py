"""check_vjp on plain NumPy functions: verdicts, hygiene, modes, cost, reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradverify.harness import FAIL, INCONCLUSIVE, PASS, GradientError, check_vjp
from gradverify.harness.reasons import Reason
from gradverify.harness.report import NOT_APPLICABLE

RNG = np.random.default_rng(7)


def tanh_vjp(xs, gs):
    return (gs[0] * (1 - np.tanh(xs[0]) ** 2),)


def matmul_vjp(xs, gs):
    a, b = xs
    return (gs[0] @ b.T, a.T @ gs[0])


def relu(x):
    return np.maximum(x, 0)


def relu_vjp(xs, gs):
    return (gs[0] * (xs[0] > 0),)


# -- verdicts on correct functions ---------------------------------------------------------
@pytest.mark.parametrize("mode", ["full", "fast"])
def test_correct_functions_pass(mode):
    x = RNG.standard_normal((3, 4))
    assert check_vjp(np.tanh, tanh_vjp, [x], mode=mode).verdict == PASS
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 5))
    assert check_vjp(np.matmul, matmul_vjp, [a, b], mode=mode).verdict == PASS


def test_several_outputs_and_broadcasting():
    def f(x, y):
        return x * y, np.sum(x, axis=0)

    def vjp(xs, gs):
        x, y = xs
        g1, g2 = gs
        gx = g1 * y + g2
        gy = np.sum(g1 * x, axis=0, keepdims=True)
        return gx, gy
    x, y = RNG.standard_normal((4, 3)), RNG.standard_normal((1, 3))
    assert check_vjp(f, vjp, [x, y]).verdict == PASS
    assert check_vjp(f, vjp, [x, y], mode="fast").verdict == PASS


def test_integer_inputs_are_not_differentiated():
    def f(x, k):
        return x * k
    r = check_vjp(f, lambda xs, gs: (gs[0] * xs[1], None), [np.ones(3), np.arange(3)])
    assert r.verdict == PASS


def test_none_gradient_is_zero_and_is_checked():
    # f depends on y, but the vjp says None for it: that is "zero where non-zero".
    r = check_vjp(lambda x, y: x * y, lambda xs, gs: (gs[0] * xs[1], None),
                  [np.ones(3), np.full(3, 2.0)])
    assert r.verdict == FAIL
    assert "zero where non-zero" in r.diagnosis


# -- hygiene ---------------------------------------------------------------------------------
def test_nondeterministic_forward_fails():
    noise = np.random.default_rng(0)
    r = check_vjp(lambda x: x + noise.standard_normal(x.shape) * 1e-3,
                  lambda xs, gs: (gs[0],), [np.ones(3)])
    assert r.check("hygiene.deterministic").verdict == FAIL
    assert "not deterministic" in r.check("hygiene.deterministic").reason


def test_forward_mutating_its_input_fails():
    def f(x):
        x *= 2
        return x
    r = check_vjp(f, lambda xs, gs: (2 * gs[0],), [np.ones(3)])
    assert r.check("hygiene.input_unchanged").verdict == FAIL
    assert "x0" in r.check("hygiene.input_unchanged").reason
    assert r.diagnosis.startswith("writes into its inputs"), str(r)


def test_vjp_mutating_its_input_fails():
    def vjp(xs, gs):
        xs[0][...] = 0
        return (gs[0],)
    r = check_vjp(lambda x: x + 0, vjp, [np.ones(3)])
    assert r.check("hygiene.input_unchanged").verdict == FAIL
    assert "by the vjp" in r.check("hygiene.input_unchanged").reason
    assert r.diagnosis.startswith("writes into its inputs"), str(r)


def test_callers_arrays_are_never_touched():
    x = np.ones(3)

    def f(x):
        x *= 2
        return x
    check_vjp(f, lambda xs, gs: (2 * gs[0],), [x])
    assert np.array_equal(x, np.ones(3))


def test_wrong_number_of_gradients_fails():
    r = check_vjp(lambda x, y: x * y, lambda xs, gs: (gs[0],), [np.ones(2), np.ones(2)])
    assert r.check("hygiene.arity").verdict == FAIL
    assert "1 gradients for 2 inputs" in r.check("hygiene.arity").reason


def test_gradient_not_reduced_to_the_input_shape_fails():
    # x (1, 3) broadcast against y (4, 3); the vjp forgets to sum over the broadcast axis.
    r = check_vjp(lambda x, y: x * y, lambda xs, gs: (gs[0] * xs[1], gs[0] * xs[0]),
                  [np.ones((1, 3)), np.ones((4, 3))])
    check = r.check("hygiene.gradient_shape")
    assert check.verdict == FAIL
    assert "(4, 3)" in check.reason and "(1, 3)" in check.reason


def test_gradient_dtype_must_match():
    r = check_vjp(np.tanh, lambda xs, gs: (tanh_vjp(xs, gs)[0].astype(np.float32),),
                  [np.ones(3)])
    assert r.check("hygiene.gradient_shape").verdict == FAIL


def test_ignoring_the_upstream_gradient_fails_linearity():
    r = check_vjp(np.tanh, lambda xs, gs: (1 - np.tanh(xs[0]) ** 2,), [RNG.random(4)])
    assert r.check("hygiene.linearity").verdict == FAIL
    assert r.verdict == FAIL
    assert "ignores the upstream gradient" in r.diagnosis


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", ["fast", "full"])
def test_an_ignored_cotangent_at_a_large_entry_is_not_excused_by_a_tiny_one(mode, seed):
    # The floor of a gradient's natural size grows like 1 / |x_i| below |x| = 1; an entry
    # at 1.7e-8 must not lend its floor to the entry at 7.25 beside it (a fuzz found it).
    x = np.array([2.5e-06, 7.25, 1.7e-08, -0.0055, -0.31, 0.0, -1.0, 2.8e-08, -1.0])
    r = check_vjp(lambda x: np.maximum(x, 0.0), lambda xs, gs: ((xs[0] > 0) * 1.0,),
                  [x.reshape(3, 3, 1)], mode=mode, seed=seed)
    assert r.check("hygiene.linearity").verdict == FAIL
    assert r.verdict == FAIL


@pytest.mark.parametrize("seed", range(4))
def test_a_gradient_of_pure_cancellation_is_linear_if_exactly_odd_homogeneous(seed):
    # 0.1 v + 0.2 v - 0.3 v rounds to ~5e-17 v, a different rounding for every v: no
    # tolerance from the gradient's size (or the output's, 0 at 0) covers it, yet it is
    # linear (a fuzz of torch programs found one at a nine-way tie of a max, output 0);
    # an ignored cotangent with the same noise is not
    f = lambda x: x * 0.1 + x * 0.2 - x * 0.3
    linear = lambda xs, gs: (gs[0] * 0.1 + gs[0] * 0.2 - gs[0] * 0.3,)
    ignored = lambda xs, gs: (np.ones_like(gs[0]) * 0.1 + 0.2 - 0.3,)
    x = [np.array([0.0, 1.0, -2.0])]
    assert check_vjp(f, linear, x, seed=seed).check("hygiene.linearity").verdict == PASS
    assert check_vjp(f, ignored, x, seed=seed).check("hygiene.linearity").verdict == FAIL


def test_nan_gradient_where_numeric_is_finite():
    # d/dx x^2 written as 2 x^2 / x: NaN at 0 where the derivative is 0.
    def vjp(xs, gs):
        with np.errstate(all="ignore"):
            return (gs[0] * 2 * xs[0] ** 2 / xs[0],)
    r = check_vjp(np.square, vjp, [np.array([0.0, 1.0, -2.0])])
    assert r.check("hygiene.finite").verdict == FAIL
    assert r.verdict == FAIL


def test_function_that_raises_is_reported_not_crashing():
    def f(x):
        raise ZeroDivisionError("boom")
    r = check_vjp(f, lambda xs, gs: (gs[0],), [np.ones(2)])
    assert r.verdict == FAIL
    assert "ZeroDivisionError: boom" in r.check("forward").reason
    r = check_vjp(np.tanh, lambda xs, gs: 1 / 0, [np.ones(2)])
    assert "vjp" in [c.name for c in r.checks] and r.verdict == FAIL


def test_output_shape_changing_under_perturbation_fails():
    # The output keeps the positive entries: its shape depends on the values.
    x = np.array([1e-12, 1.0, 2.0])
    r = check_vjp(lambda x: x[x > 1e-12 * (1 + 1e-9)], lambda xs, gs: (
        np.concatenate([[0.0], gs[0]]) if gs[0].size == 2 else gs[0],), [x], mode="full")
    assert r.verdict == FAIL
    assert "output shape/dtype changes under perturbation" in r.check("gradient").reason


# -- modes and cost --------------------------------------------------------------------------
def test_auto_mode_picks_full_when_small_and_fast_when_large():
    assert check_vjp(np.tanh, tanh_vjp, [np.ones(10)]).mode == "full"
    assert check_vjp(np.tanh, tanh_vjp, [np.ones(1000)]).mode == "fast"


def test_full_mode_costs_at_most_four_forward_evaluations_per_element():
    x = RNG.standard_normal(50)
    r = check_vjp(np.tanh, tanh_vjp, [x], mode="full")
    assert r.verdict == PASS
    hygiene = 2  # forward at x, twice (determinism)
    assert r.evaluations["forward"] <= 4 * x.size + hygiene


def _tanh_times(s):
    return (lambda x: np.tanh(x) * s), (lambda xs, gs: (gs[0] * s * (1 - np.tanh(xs[0]) ** 2),))


def _cost(n: int, spread: bool, seed: int, **options) -> dict:
    """tanh on n elements of [0.5, 2] (times 1e-17 on half the outputs if ``spread``)."""
    x = np.random.default_rng(seed).uniform(0.5, 2.0, n)
    s = np.where(np.arange(n) < n // 2, 3.0, 3e-17) if spread else np.ones(n)
    f, vjp = _tanh_times(s)
    r = check_vjp(f, vjp, [x], mode="fast", seed=seed, **options)
    assert r.verdict == PASS, str(r)
    assert r.check("gradient").details["bands"] == spread  # one band: its VJPs
    return dict(r.evaluations)


def test_fast_mode_cost_does_not_depend_on_input_size():
    # For a given resolution the count is the rule's, whatever the size: with a
    # detect_rtol no probe reaches, every direction is made (4 + 4 extra: 2 + 16 forward),
    # plus one band's 3 VJPs when half the outputs are 1e-17 times the rest (its two
    # cotangents and their combination, which measures the VJP's rounding at its scale).
    for seed in range(2):
        for spread in (False, True):
            counts = [_cost(n, spread, seed, detect_rtol=1e-12) for n in (10, 100_000)]
            assert counts[0] == counts[1] == {"forward": 18, "backward": 3 + 3 * spread}
    # By default the directions stop once they bound the miss (probes.enough_directions),
    # which depends on the resolution drawn, not on the size: 2 or 3 directions (one more
    # after the band's), the same VJPs, at both sizes.
    for seed in range(3):
        for n in (10, 100_000):
            assert _cost(n, False, seed) in ({"forward": 6, "backward": 3},
                                             {"forward": 8, "backward": 3})
            assert _cost(n, True, seed) in ({"forward": 8, "backward": 6},
                                            {"forward": 10, "backward": 6})


def test_fast_mode_localises_a_single_bad_entry_by_multi_index():
    def vjp(xs, gs):
        g = tanh_vjp(xs, gs)[0].copy()
        g[123, 45] *= 1.5
        return (g,)
    # inputs 8 and 9: the located entry's error is below the probes' (sums over 60 000
    # entries); the report must still show it first
    for s in (0, 8, 9):
        x = np.random.default_rng(s).standard_normal((300, 200))
        r = check_vjp(np.tanh, vjp, [x], mode="fast")
        assert r.verdict == FAIL
        assert r.check("gradient").worst[0].index == (123, 45), str(r)
        # one entry found wrong, the rest right: not a scaled gradient (it said so)
        assert "wrong at x0[123, 45] only" in r.diagnosis and "scaled" not in r.diagnosis
        assert r.evaluations["forward"] < 2000  # bisection, not a Jacobian of 60000 columns


def test_fast_mode_pins_a_fault_on_every_entry_to_eight_entries_cheaply():
    # every entry off by 1e-6: each half of the bisection disagrees, so the search reaches
    # `localise` single entries; the halves are chosen on the quick estimate (4 forward
    # evaluations each), only the entries reached pay for noise and the ladder (~30 each),
    # which took 4 350 evaluations (the localisation budget) when every half paid for both
    def vjp(xs, gs):
        return (tanh_vjp(xs, gs)[0] * (1 + 1e-6),)
    x = np.random.default_rng(0).standard_normal((300, 200))
    r = check_vjp(np.tanh, vjp, [x], mode="fast", seed=0)
    assert r.verdict == FAIL, str(r)
    worst = r.check("gradient").worst
    assert len(worst) == 8 and all(e.verdict == FAIL for e in worst), str(r)
    assert r.evaluations["forward"] < 2500


def test_design_example_two_kinks_in_one_probe_pass():
    # relu(x1) - relu(x2) at (0, 0): along (1, -1) it is exactly t, yet relu'(0) = 0 gives
    # <J^T v, u> = 0. Bisection pins the probe to single entries, where the kink rule holds.
    f = lambda a, b: relu(a) - relu(b)
    vjp = lambda xs, gs: (gs[0] * (xs[0] > 0), -gs[0] * (xs[1] > 0))
    for mode in ("fast", "full"):
        for seed in range(5):
            r = check_vjp(f, vjp, [np.zeros(3), np.zeros(3)], mode=mode, seed=seed)
            assert r.verdict == PASS, str(r)


def test_kink_with_a_value_outside_the_one_sided_range_fails():
    r = check_vjp(relu, lambda xs, gs: (gs[0] * np.where(xs[0] == 0, 2.0, xs[0] > 0),),
                  [np.array([0.0, 1.0, -1.0])])
    assert r.verdict == FAIL
    worst = r.check("gradient").worst[0]
    assert worst.kind == "kink" and worst.index == (0,)


# -- inconclusive, never a silent pass ------------------------------------------------------
def test_non_finite_values_near_x_are_inconclusive():
    r = check_vjp(np.sqrt, lambda xs, gs: (gs[0] * 0.5 / np.sqrt(xs[0]),),
                  [np.array([0.0, 1.0])])
    assert r.verdict in (INCONCLUSIVE, FAIL)
    assert r.verdict != PASS


def test_a_jump_has_no_derivative_to_verify():
    # sign at 0 jumps: that entry is not applicable; the entry at 1 is still verified.
    zero = lambda xs, gs: (np.zeros_like(gs[0]),)
    r = check_vjp(np.sign, zero, [np.array([0.0])])
    assert r.verdict == NOT_APPLICABLE
    assert r.check("gradient").code is Reason.DISCONTINUOUS
    r = check_vjp(np.sign, zero, [np.array([0.0, 1.0])])
    assert r.verdict == PASS and r.check("gradient").details["not_applicable"] == 1
    assert "discontinuous" in r.check("gradient").reason
    # a wrong value where the function is smooth is still found next to the jump
    r = check_vjp(np.sign, lambda xs, gs: (np.ones_like(gs[0]),), [np.array([0.0, 1.0])])
    assert r.verdict == FAIL


def test_rounded_away_change_is_inconclusive_not_fail():
    f = lambda x: (x * 1e-3 + 1e10) - 1e10
    r = check_vjp(f, lambda xs, gs: (gs[0] * 1e-3,), [np.array([1.0, 2.0])])
    assert r.verdict == INCONCLUSIVE
    assert r.check("gradient").code is Reason.ROUNDED_AWAY


# -- reports -----------------------------------------------------------------------------------
def _bad_tanh(xs, gs):
    return (-tanh_vjp(xs, gs)[0],)


def test_report_text_names_verdict_diagnosis_entries_and_reproduction():
    r = check_vjp(np.tanh, _bad_tanh, [np.array([[0.5, -1.0], [2.0, 0.1]])], seed=3,
                  names=["logits"])
    text = str(r)
    assert "FAIL" in text and "diagnosis: sign flipped" in text
    assert "logits[" in text and "seed=3" in text and "reproduce:" in text
    assert "forward" in text and "backward" in text


def test_report_dict_is_json_and_deterministic():
    x = RNG.standard_normal(500)
    a = check_vjp(np.tanh, _bad_tanh, [x], seed=11).to_dict()
    b = check_vjp(np.tanh, _bad_tanh, [x], seed=11).to_dict()
    assert json.dumps(a) == json.dumps(b)
    assert a["verdict"] == FAIL and a["seed"] == 11 and a["diagnosis"] == "sign flipped"


def test_raise_for_failure():
    with pytest.raises(GradientError) as info:
        check_vjp(np.tanh, _bad_tanh, [np.ones(2)]).raise_for_failure()
    assert isinstance(info.value, AssertionError)
    assert "sign flipped" in str(info.value)
    inconclusive = check_vjp(lambda x: (x * 1e-3 + 1e10) - 1e10,
                             lambda xs, gs: (gs[0] * 1e-3,), [np.array([1.0, 2.0])])
    assert inconclusive.verdict == INCONCLUSIVE
    assert inconclusive.raise_for_failure() is inconclusive
    with pytest.raises(GradientError):
        inconclusive.raise_for_failure(strict=True)


# -- diagnosis -------------------------------------------------------------------------------
def test_diagnosis_scaled_by_a_constant():
    r = check_vjp(np.tanh, lambda xs, gs: (2 * tanh_vjp(xs, gs)[0],), [RNG.random(5)])
    assert r.diagnosis == "scaled by a constant (2x)"


def test_diagnosis_zero_where_non_zero():
    r = check_vjp(np.tanh, lambda xs, gs: (np.zeros_like(xs[0]),), [RNG.random(5)])
    assert r.diagnosis == "zero where non-zero"


def test_diagnosis_transposed():
    b = RNG.standard_normal((3, 3))
    r = check_vjp(lambda a: a @ b, lambda xs, gs: ((gs[0] @ b.T).T,),
                  [RNG.standard_normal((3, 3))], mode="full")
    assert "transposed (x0)" in r.diagnosis


def test_diagnosis_wrong_for_one_input_only():
    r = check_vjp(np.matmul, lambda xs, gs: (matmul_vjp(xs, gs)[0], -matmul_vjp(xs, gs)[1]),
                  [RNG.standard_normal((2, 3)), RNG.standard_normal((3, 2))],
                  names=["a", "b"])
    assert "wrong for input 1 (b) only" in r.diagnosis
    assert "sign flipped" in r.diagnosis


def test_diagnosis_wrong_only_near_special_values():
    # sqrt(x^2 + 1) - 1 has derivative x / sqrt(x^2 + 1); the bug returns 1 at x == 0.
    def vjp(xs, gs):
        x = xs[0]
        return (gs[0] * np.where(x == 0, 1.0, x / np.sqrt(x * x + 1)),)
    r = check_vjp(lambda x: np.sqrt(x * x + 1) - 1, vjp, [np.array([0.0, 0.5, -1.5, 2.0])])
    assert r.verdict == FAIL
    assert "wrong only near special values (zero)" in r.diagnosis


# -- float32 -----------------------------------------------------------------------------------
def test_float32_is_checked_against_float64():
    x = RNG.standard_normal(6).astype(np.float32)
    r = check_vjp(np.tanh, tanh_vjp, [x])
    assert r.verdict == PASS
    assert r.check("precision").verdict == PASS


def test_float32_downcast_is_caught_as_low_precision():
    def vjp(xs, gs):
        g = tanh_vjp(xs, gs)[0]
        return (g.astype(np.float16).astype(g.dtype),) if g.dtype == np.float32 else (g,)
    r = check_vjp(np.tanh, vjp, [RNG.standard_normal(6).astype(np.float32)])
    assert r.check("precision").verdict == FAIL
    assert r.check("gradient").verdict == PASS  # the float64 formula is right
    assert "wrong only in low precision (float32)" in r.diagnosis


def test_sensitivity_relative_error_of_one_in_a_million():
    x = RNG.standard_normal(8)
    r = check_vjp(np.tanh, lambda xs, gs: (tanh_vjp(xs, gs)[0] * (1 + 1e-6),), [x])
    assert r.verdict == FAIL
    r = check_vjp(np.tanh, lambda xs, gs: (tanh_vjp(xs, gs)[0] * (1 + 1e-6),), [x],
                  mode="fast")
    assert r.verdict == FAIL
