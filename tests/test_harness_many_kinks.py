"""Many exact kinks at once: relu / abs / maximum / reduce_max at tens to hundreds of exact
ties. A fast-mode probe meets more kinks than its joint judgement handles (12); the kinks
are separable row by row, so the whole Jacobian (full mode, once per check) judges them:
correct rules PASS, tie faults FAIL, at every count, with a bounded cost."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import FAIL, PASS, check_vjp
from gradverify.harness.kink_samples import grow_like_jumps
from gradverify.harness.probe_kinks import FULL_FALLBACK

# 300 exact ties repeats the 100 case at three times the cost: `tox -e thorough` runs it
COUNTS = [10, 100, pytest.param(300, marks=pytest.mark.slow)]
N = 1000


def _with_zeros(count: int, seed: int = 0) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(N)
    at = rng.choice(N, count, replace=False)
    x[at] = 0.0
    return rng, x, at


def _relu(x):
    return np.maximum(x, 0)


def _maximum_case(count):
    rng, a, at = _with_zeros(count)
    b = rng.standard_normal(N)
    b[at] = a[at] = rng.standard_normal(count)  # exact ties away from 0
    return [a, b]


def _rmax_case(count):
    # reduce_max over rows of 4 with two tied maxima in `count` rows
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N // 4, 4))
    rows = rng.choice(N // 4, min(count, N // 4), replace=False)
    x[rows, 1] = x[rows, 3] = np.abs(x[rows]).max(axis=1) + 0.5
    return [x]


def _max_vjp(rule):
    def vjp(xs, gs):
        a, b = xs
        g = gs[0]
        first = {"tf": a >= b, "both": a >= b, "none": a > b}[rule]
        second = {"tf": a < b, "both": a <= b, "none": a < b}[rule]
        return g * first, g * second
    return vjp


def _rmax_vjp(rule):
    def vjp(xs, gs):
        x = xs[0]
        hit = (x == x.max(axis=1, keepdims=True)) * 1.0
        share = hit / hit.sum(axis=1, keepdims=True) if rule == "split" else hit
        return (gs[0][:, None] * share,)
    return vjp


# (name, function, inputs for a count, correct VJP, faulty VJPs)
CASES = {
    "relu": (_relu, lambda c: [_with_zeros(c)[1]],
             lambda xs, gs: (gs[0] * (xs[0] > 0),),
             {"relu'(0) = 2": lambda xs, gs: (gs[0] * np.where(xs[0] == 0, 2.0, xs[0] > 0),)}),
    "relu'(0) = 1": (_relu, lambda c: [_with_zeros(c)[1]],
                     lambda xs, gs: (gs[0] * (xs[0] >= 0),), {}),
    "abs": (np.abs, lambda c: [_with_zeros(c)[1]],
            lambda xs, gs: (gs[0] * np.sign(xs[0]),),
            {"abs'(0) = 2": lambda xs, gs: (gs[0] * np.where(xs[0] == 0, 2.0,
                                                              np.sign(xs[0])),)}),
    "maximum": (np.maximum, _maximum_case, _max_vjp("tf"),
                {"both": _max_vjp("both"), "none": _max_vjp("none")}),
    "reduce_max": (lambda x: np.max(x, axis=1), _rmax_case, _rmax_vjp("split"),
                   {"all": _rmax_vjp("all")}),
}


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("mode", ["fast", pytest.param("auto", marks=pytest.mark.slow)])
def test_correct_rules_pass_at_many_exact_kinks(name, count, mode):
    f, inputs, vjp, _ = CASES[name]
    r = check_vjp(f, vjp, inputs(count), mode=mode, seed=0)
    assert r.verdict == PASS, str(r)
    # bounded: at most the whole Jacobian's cost (2 per element, a ladder per kink column,
    # a joint sampling per tied pair) on top of the probes, never the >50 000 evaluations
    # a search of every probe's kinks cost
    assert r.evaluations["forward"] < 250 * count + 12_000, r.evaluations


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize(("name", "fault"), [(n, k) for n in sorted(CASES) for k in CASES[n][3]])
def test_tie_faults_fail_at_many_exact_kinks(name, fault, count):
    f, inputs, _, faults = CASES[name]
    r = check_vjp(f, faults[fault], inputs(count), mode="fast", seed=0)
    assert r.verdict == FAIL, str(r)


@pytest.mark.parametrize("seed", range(1, 4))
@pytest.mark.parametrize("name", ["maximum", "relu'(0) = 1"])
def test_many_kinks_pass_at_other_seeds(name, seed):
    f, inputs, vjp, _ = CASES[name]
    assert check_vjp(f, vjp, inputs(30), mode="fast", seed=seed).verdict == PASS


def test_full_mode_samples_separable_ties_once():
    # 40 tied pairs of maximum: one sample set per signed ordering serves every pair
    # (about 60 evaluations), not 60 per pair; faults are still decided pair by pair
    f, inputs, vjp, faults = CASES["maximum"]
    r = check_vjp(f, vjp, inputs(40), mode="full", seed=0)
    assert r.verdict == PASS
    per_pair = check_vjp(f, faults["both"], inputs(40), mode="full", seed=0)
    assert per_pair.verdict == FAIL
    assert r.evaluations["forward"] < per_pair.evaluations["forward"] - 60 * 30


@pytest.mark.slow
def test_the_fallback_is_bounded_by_size():
    # beyond FULL_FALLBACK elements the whole Jacobian is not built: the documented reason
    x = np.zeros(FULL_FALLBACK + 4)
    x[::2] = np.linspace(-1, 1, x[::2].size)
    x[x == 0] = 0.0
    r = check_vjp(lambda a, b: _relu(a) - _relu(b),
                  lambda xs, gs: (gs[0] * (xs[0] >= 0), -gs[0] * (xs[1] >= 0)),
                  [x, x.copy()], mode="fast", seed=0)
    assert r.verdict != FAIL, str(r)


def test_jitter_is_told_from_a_kink_closer_than_the_steps():
    steps = [4.0 ** -k for k in range(8)]
    smooth = [np.array([2 * t]) for t in steps]
    near_kink = [np.array([1e-9]) for _ in steps]        # constant: the kink's offset
    saturating = [np.array([-min(t, 0.01)]) for t in steps]  # clip reaching its bound
    jitter = [np.array([v]) for v in (1.2, -0.38, 1.4, 1.1, 0.25, 0.88, 1.0, 1.8)]
    period_at_coarse_steps = [np.array([v]) for v in (
        0.021, 0.00073, 0.00019, 4.8e-05, -0.01, 0.0077, 0.0019, 0.00048)]
    for lipschitz in (smooth, near_kink, saturating):
        assert not grow_like_jumps(lipschitz, steps)[0]
    assert grow_like_jumps(jitter, steps)[0]
    assert grow_like_jumps(period_at_coarse_steps, steps)[0]
