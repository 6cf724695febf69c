"""A FAIL must stand on the step ladder as a whole (``harness/rung_agreement.py``): gelu
formed as ``x (1 + erf(x / sqrt 2)) / 2`` rounds ``1 + erf`` at one spacing of 1, so in
its left tail the computed function is frozen on stairs wider than the fine steps, whose
differences then show a slope that is not the derivative (found by a fuzz of torch's
``gelu``: FAIL in fast mode from x = -5, in every mode at -7.5; fast mode's probes are a
known gap)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf, erfc

from gradverify.harness import check_vjp


def _gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def _gelu_slope(x):
    # accurate in the tail: erfc keeps what 1 + erf rounds away
    return 0.5 * erfc(-x / np.sqrt(2.0)) + x * np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _vjp(scale=1.0):
    return lambda xs, gs: (gs[0] * _gelu_slope(xs[0]) * scale,)


@pytest.mark.parametrize("mode", ["full", "auto"])
@pytest.mark.parametrize("x", [-5.0, -5.5, -6.0, -7.5])
def test_gelu_in_its_left_tail_is_never_a_fail(mode, x):
    for seed in range(3):
        report = check_vjp(_gelu, _vjp(), [np.array([x, 0.3])], mode=mode, seed=seed)
        assert report.verdict in ("PASS", "INCONCLUSIVE"), report


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_faults_beside_the_tail_still_fail(mode):
    # the entries at ordinary x resolve a 1e-6 fault; at -7.5 a sign flip is beyond every
    # rung (the tail's slope is known to ~100 %, its sign is not in doubt)
    x = np.array([-7.5, -1.0, 0.5, 2.0])
    assert check_vjp(_gelu, _vjp(1 + 1e-6), [x], mode=mode, seed=0).verdict == "FAIL"
    flipped = lambda xs, gs: (gs[0] * _gelu_slope(xs[0]) * np.where(xs[0] < -7, -1, 1),)
    assert check_vjp(_gelu, flipped, [x[:1]], mode=mode, seed=0).verdict == "FAIL"


def test_the_reason_names_the_contradiction():
    report = check_vjp(_gelu, _vjp(), [np.array([-7.5])], mode="full", seed=0)
    assert report.verdict == "INCONCLUSIVE", report
    assert "contradicts itself" in str(report)
