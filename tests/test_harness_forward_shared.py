"""Fast mode's JVP check reuses the reverse-mode first pass: its directions and central
differences (no forward evaluation of its own), and it still catches a JVP that is off by
a relative 1e-6 or wrong on a few entries, at several seeds."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import FAIL, PASS, check_vjp


def _vjp(xs, gs):
    return (gs[0] * (1 - np.tanh(xs[0]) ** 2),)


def _jvp(xs, us):
    return (us[0] * (1 - np.tanh(xs[0]) ** 2),)


@pytest.mark.parametrize("seed", range(3))
def test_the_jvp_check_spends_no_forward_evaluation(seed):
    x = np.random.default_rng(seed).uniform(-2, 2, 10_000)
    plain = check_vjp(np.tanh, _vjp, [x], mode="fast", seed=seed)
    both = check_vjp(np.tanh, _vjp, [x], mode="fast", seed=seed, jvp=_jvp)
    assert plain.verdict == both.verdict == PASS, str(both)
    assert both.evaluations["forward"] == plain.evaluations["forward"]
    directions = next(c for c in both.checks if c.name == "gradient").details["directions"]
    assert both.evaluations["jvp"] == directions
    assert both.check("jvp").verdict == both.check("jvp.consistency").verdict == PASS


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_slightly_wrong_jvp_fails(seed, dtype):
    x = np.random.default_rng(seed).uniform(-2, 2, 1000).astype(dtype)

    def scaled(xs, us):  # float32 inputs: judged on the float64 evaluation, as the VJP
        return (_jvp(xs, us)[0] * (1 + 1e-6),)

    def two_entries(xs, us):
        t = np.array(_jvp(xs, us)[0])
        t[[7, 70]] += np.array([1e-3, -1e-3]) * np.abs(t[7])
        return (t,)
    for bad in (scaled, two_entries):
        r = check_vjp(np.tanh, _vjp, [x], mode="fast", seed=seed, jvp=bad)
        assert r.check("jvp").verdict == FAIL, (bad.__name__, str(r))
        assert r.check("gradient").verdict == PASS



def _relu(x):
    return np.maximum(x, 0.0)


def _relu_vjp(xs, gs):
    return ((xs[0] > 0) * gs[0],)


def test_a_jvp_at_kinks_is_as_right_as_the_vjp_it_agrees_with():
    # relu over 8 x 8 entries, many of them 0 or 1e-8: one probe's bracket is not Clarke's
    # hull, and the jvp check FAILed at 7 of 8 seeds where the gradient check (judged
    # jointly at its kinks) PASSed; a probe at a kink now takes the gradient's verdict
    x = [np.random.default_rng(3).choice([0.0, 1.0, -1.0, 0.5, 1e-8], size=(8, 8))]
    jvp = lambda xs, us: ((xs[0] > 0) * us[0],)
    for seed in range(8):
        r = check_vjp(_relu, _relu_vjp, x, jvp=jvp, mode="fast", seed=seed)
        assert r.verdict != "FAIL", str(r)
    # a jvp of slope 2 at the zeros is outside the hull, and disagrees with the vjp
    wrong = lambda xs, us: (np.where(xs[0] == 0, 2.0, xs[0] > 0) * us[0],)
    r = check_vjp(_relu, _relu_vjp, x, jvp=wrong, mode="fast", seed=0)
    assert r.verdict == "FAIL" and r.check("jvp.consistency").verdict == "FAIL", str(r)
