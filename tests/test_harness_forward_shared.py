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
