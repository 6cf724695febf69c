"""Fast mode compares both sides of a probe along the steps as taken: the moved points
x +- h u round, their differences with x do not (Sterbenz), so the argument's rounding
leaves the first pass's tolerance and the directions resolve about twice as much
(``probes.FirstPass.central``; what it moves in the miss bound: ``miss_bound.atom_miss``)."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import FAIL, PASS, check_vjp
from gradverify.harness.calls import Problem
from gradverify.harness.lines import Ref
from gradverify.harness.miss_bound import atom_miss
from gradverify.harness.probes import FirstPass

RNG = np.random.default_rng(21)


def _first_pass(x: np.ndarray) -> FirstPass:
    p = Problem(lambda a: 3.0 * a, lambda xs, gs: (3.0 * gs[0],), [x])
    ref = Ref.native(p, [x])
    v = [RNG.standard_normal(x.shape)]
    return FirstPass(p, ref, [v], [[3.0 * v[0]]], [np.zeros(x.shape)], h=6e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_direction_is_the_one_the_moved_points_took(dtype):
    # entries whose ulp is large beside the step: x + h u rounds visibly
    x = (RNG.uniform(1, 2, 500) * 2.0 ** RNG.integers(-30, 30, 500)).astype(dtype)
    first = _first_pass(x)
    steps = first.steps()
    d = steps[0].copy()
    assert first.central(steps) is not None
    # the moved points as the first pass makes them: x +- d in float64, rounded to x's dtype
    up = np.add(x, d, out=np.empty_like(x), casting="unsafe").astype(np.float64)
    down = np.subtract(x, d, out=np.empty_like(x), casting="unsafe").astype(np.float64)
    np.testing.assert_allclose(first.taken()[0] * (2 * first.h), up - down, rtol=1e-15)
    if dtype == np.float32:  # the rounding is real there: the drawn steps are not taken
        assert not np.array_equal(up - down, 2 * d)


def test_a_linear_map_is_judged_exactly_along_its_steps():
    # matmul 64x64: without the argument's rounding each direction resolves ~8e-10, and
    # two directions bound the miss of a 1e-6 fault (6 forward evaluations, not 8)
    a, b = RNG.standard_normal((64, 64)), RNG.standard_normal((64, 64))
    good = lambda xs, gs: (gs[0] @ xs[1].T, xs[0].T @ gs[0])
    for seed in range(4):
        r = check_vjp(lambda p, q: p @ q, good, [a, b], mode="fast", seed=seed)
        assert r.verdict == PASS, str(r)
        assert r.evaluations["forward"] == 6, r.evaluations
        bad = lambda xs, gs: tuple(g * (1 + 1e-6) for g in good(xs, gs))
        assert check_vjp(lambda p, q: p @ q, bad, [a, b], mode="fast",
                         seed=seed).verdict == FAIL


def test_the_rounding_of_the_moved_points_is_charged_to_the_miss_bound():
    x = RNG.standard_normal(10 ** 5)
    assert _first_pass(x).atoms == pytest.approx(atom_miss(x.size, 2.0 ** -52 / 6e-6))
    assert atom_miss(x.size, 2.0 ** -52 / 6e-6) < 1.2 * atom_miss(x.size)  # float64
    # float32 inputs: eps / h is 2e-2 of a range; at 1e5 entries it adds 1e-2 per direction
    assert atom_miss(10 ** 5, 2.0 ** -23 / 6e-6) > 1e-2
