"""Fast mode on functions whose central difference's truncation stands above round-off at
the first pass's step (their scale is their argument's, or shorter): the directions are
decided on Richardson's estimate at 2h and 4h (``harness/probe_rungs.py``), at a cost that
does not depend on the input size, and a fault still FAILs. Before, every probe of every
direction went to the full machinery: 150-800 forward evaluations on 1 000 entries."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import FAIL, PASS, check_vjp

RNG = np.random.default_rng(5)


def _elementwise(f, df, x):
    return f, (lambda xs, gs: (gs[0] * df(xs[0]),)), x


# (function, derivative, input of 1 000 entries)
CURVED = {
    "log near 0": _elementwise(np.log, lambda x: 1 / x,
                               np.abs(RNG.standard_normal(1000)) * 1e-3 + 1e-6),
    "1/x": _elementwise(lambda x: 1 / x, lambda x: -1 / x ** 2, RNG.uniform(0.01, 1, 1000)),
    "x^3": _elementwise(lambda x: x ** 3, lambda x: 3 * x ** 2, RNG.standard_normal(1000)),
    "sin(100 x)": _elementwise(lambda x: np.sin(100 * x), lambda x: 100 * np.cos(100 * x),
                               RNG.standard_normal(1000)),
    # outputs from 1e-304 to 1e304: the outputs' round-off walk squares past 1e308
    "exp, |x| up to 700": _elementwise(np.exp, np.exp, RNG.uniform(-700, 700, 1000)),
}
# 2 at x, 2 per direction and 4 per direction a rung decides, up to 8 directions
MOST_FORWARDS = 2 + 6 * 8


@pytest.mark.parametrize("name", list(CURVED))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curved_functions_are_decided_without_the_full_machinery(name, seed):
    f, vjp, x = CURVED[name]
    r = check_vjp(f, vjp, [x], mode="fast", seed=seed)
    assert r.verdict == PASS, str(r)
    assert r.evaluations["forward"] <= MOST_FORWARDS, r.evaluations


@pytest.mark.parametrize("name", ["log near 0", "x^3", "sin(100 x)"])
def test_their_cost_does_not_depend_on_the_input_size(name):
    f, vjp, x = CURVED[name]
    big = np.resize(x, 100_000) * np.repeat(RNG.uniform(0.9, 1.1, 100), 1000)
    counts = [check_vjp(f, vjp, [a], mode="fast", seed=3).evaluations["forward"]
              for a in (x[:10], x, big)]
    assert max(counts) <= MOST_FORWARDS, counts


@pytest.mark.parametrize("name", list(CURVED))
def test_a_gradient_off_by_1e6_still_fails(name):
    f, vjp, x = CURVED[name]
    bad = lambda xs, gs: (vjp(xs, gs)[0] * (1 + 1e-6),)
    assert check_vjp(f, bad, [x], mode="fast", seed=1).verdict == FAIL


def test_a_kink_is_not_smoothed_over():
    # relu'(0) reported as 1 on entries tied at 0 of a max: the central differences are
    # the average of the one-sided slopes at every step, so Richardson moves nothing and
    # the fault goes to the full machinery, which FAILs it
    x = np.zeros(50)
    f = lambda a: np.maximum(a, 0.0) ** 2 + np.maximum(a, 0.0)
    bad = lambda xs, gs: (gs[0] * (1.0 + 2 * np.maximum(xs[0], 0.0)) * 2,)
    assert check_vjp(f, bad, [x], mode="fast", seed=0).verdict == FAIL
