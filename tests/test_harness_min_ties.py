"""Issue 10, item 2, for the minimum side: at ties of ``minimum`` and ``reduce_min`` every
convention the hull admits ("all to one input", "split equally") PASSes and "the full
gradient to every tied input" and "to none of them" FAIL, in both modes (tests/
test_harness_kinks.py covers maximum and reduce_max with every rule)."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import FAIL, PASS, check_vjp

SHARES = {"first": (1.0, 0.0), "second": (0.0, 1.0), "split": (0.5, 0.5),
          "both": (1.0, 1.0), "none": (0.0, 0.0)}
VERDICT = {"first": PASS, "second": PASS, "split": PASS, "both": FAIL, "none": FAIL}
SEEDS = (0, 5)  # the joint judgement is sampled: two check seeds
# fast mode's joint judgement at ties costs seconds per check; tests/test_harness_kinks.py
# runs the same kind (maximum, reduce_max) in fast mode in the default run
MODES = ["full", pytest.param("fast", marks=pytest.mark.slow)]


def _minimum_vjp(rule):
    def vjp(xs, gs):
        a, b = xs
        g = gs[0]
        sa, sb = SHARES[rule]
        tie = a == b
        return (np.where(a < b, g, 0.0) + np.where(tie, sa * g, 0.0),
                np.where(b < a, g, 0.0) + np.where(tie, sb * g, 0.0))
    return vjp


def _reduce_min_vjp(rule):
    def vjp(xs, gs):
        x = xs[0]
        hit = (x == x.min(axis=1, keepdims=True)).astype(float)
        count = hit.sum(axis=1, keepdims=True)
        if rule == "first":
            w = np.zeros_like(x)
            w[np.arange(len(x)), x.argmin(axis=1)] = 1.0
        elif rule == "second":  # the last tied minimum: another vertex of the hull
            w = np.zeros_like(x)
            w[np.arange(len(x)), x.shape[1] - 1 - x[:, ::-1].argmin(axis=1)] = 1.0
        elif rule == "split":
            w = hit / count
        elif rule == "both":
            w = hit
        else:
            w = hit * (count == 1)
        return (w * gs[0][:, None],)
    return vjp


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rule", list(SHARES))
def test_minimum_tie_rules(rule, mode):
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    b[1::2] = a[1::2]
    for seed in SEEDS:
        r = check_vjp(np.minimum, _minimum_vjp(rule), [a, b], mode=mode, seed=seed)
        assert r.verdict == VERDICT[rule], str(r)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rule", list(SHARES))
def test_reduce_min_tie_rules(rule, mode):
    x = np.array([[-1.0, -3.0, -3.0, 2.0], [0.5, 0.5, 0.5, 0.9], [2.0, -1.0, 0.0, 1.0]])
    for seed in SEEDS:
        r = check_vjp(lambda x: x.min(axis=1), _reduce_min_vjp(rule), [x], mode=mode,
                      seed=seed)
        assert r.verdict == VERDICT[rule], str(r)
