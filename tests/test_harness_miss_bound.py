"""Fast mode's miss bound per direction (``probes.direction_rtol``): a fault ``e`` hides below
a tolerance T in a direction u drawn uniformly on [-s, s] with probability at most
``sqrt(2) T / ||e s||`` (Ball's cube slicing bound), measured here on the harness's own
draws for the extreme cases: one entry, two equal entries (where the bound is attained) and
many entries of mixed signs and sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradverify.harness import PASS, check_vjp
from gradverify.harness.lines import Ref
from gradverify.harness.probes import FirstPass, Outcome, direction_rtol

DRAWS = 40_000


def _directions(x: np.ndarray, seed: int) -> np.ndarray:
    """DRAWS directions u as fast mode draws them at x (``FirstPass.steps`` / h)."""
    from gradverify.harness.calls import Problem
    from gradverify.harness.checker import Options

    p = Problem(np.sin, lambda xs, gs: (gs[0] * np.cos(xs[0]),), [x],
                rng=np.random.default_rng(seed))
    p.opts = Options()
    ref = Ref.native(p, p.forward(p.xs))
    first = FirstPass(p, ref, [[np.ones_like(x)]], [[np.cos(x)]], [np.zeros_like(x)], 1e-3)
    return np.array([first.steps()[0] / first.h for _ in range(DRAWS)])


@pytest.mark.parametrize("fault", ["one entry", "two equal entries", "many entries"])
def test_a_fault_hides_no_more_often_than_the_bound(fault):
    rng = np.random.default_rng(5)
    x = rng.uniform(-3, 3, 12)
    x[3] = 0.0  # a zero entry: its scale is the input's RMS
    u = _directions(x, seed=1)
    s = np.abs(u).max(axis=0)  # ~ the half-widths s
    e = np.zeros_like(x)
    if fault == "one entry":
        e[7] = 2.5
    elif fault == "two equal entries":
        e[2], e[9] = 1.0 / s[2], -1.0 / s[9]  # |e_i s_i| equal: the worst case
    else:
        e = rng.standard_normal(12) * rng.uniform(0.01, 10, 12)
    size = float(np.linalg.norm(e * s))
    hidden = np.abs(u @ e)
    for share in (0.02, 0.05, 0.1):
        t = share * size
        bound = math.sqrt(2) * t / size
        observed = float(np.mean(hidden <= t))
        # 5 binomial standard deviations above the bound would be a broken bound
        assert observed <= bound + 5 * math.sqrt(bound / DRAWS), (fault, share, observed)
    if fault == "two equal entries":  # the bound is attained there: the constant is sharp
        t = 0.02 * size
        assert float(np.mean(hidden <= t)) > 0.8 * math.sqrt(2) * t / size


def test_the_resolution_is_relative_to_the_gradient_not_to_the_value_drawn():
    spread = [10.0, 20.0]
    near_zero = [Outcome(0, 1e-12, 1e-12, 1e-9, True), Outcome(1, 3.0, 3.0, 1e-9, True)]
    # the worst cotangent sets it: sqrt(2) tolerance / ||g s||
    assert direction_rtol(near_zero, spread) == pytest.approx(math.sqrt(2) * 1e-10)
    assert direction_rtol([*near_zero[:1], Outcome(1, 3.0, 3.0, 1e-9, False)],
                          spread) == math.inf  # an undecided probe: counts for nothing
    assert direction_rtol(near_zero, [0.0, 20.0]) == math.inf  # no gradient: no bound


def test_fast_mode_stops_at_fewer_directions_only_within_the_bound():
    # tanh on 1e5 entries resolves ~6e-10 of ||g s|| per direction: two directions bound
    # the miss of a 1e-6 fault ((6e-4)^2 < 1e-6), not of a 2e-7 one ((3e-3)^2 > 1e-6),
    # which takes three ((3e-3)^3 < 1e-6)
    x = np.random.default_rng(2).standard_normal(100_000)
    vjp = lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),)
    for seed in range(3):
        for detect, directions in ((1e-6, 2), (2e-7, 3)):
            r = check_vjp(np.tanh, vjp, [x], mode="fast", seed=seed, detect_rtol=detect)
            assert r.verdict == PASS
            assert r.check("gradient").details["directions"] == directions


def test_probe_ranges_lift_entries_near_zero_but_never_cross_it():
    from gradverify.harness.budget import default_step
    from gradverify.harness.probe_sums import PROBE_SPREAD, probe_scales

    rng = np.random.default_rng(4)
    x = rng.standard_normal(20_000) * rng.choice([1e-9, 1e-3, 1.0, 1e3], 20_000)
    x[:3] = 0.0
    s = probe_scales([x])[0]
    a = np.abs(x)
    nz = a > 0
    rms = float(np.sqrt(np.mean(a[nz] ** 2)))  # the zeros' own range (lines.scales)
    assert np.all(s[nz] >= a[nz]) and np.all(s[nz] <= PROBE_SPREAD * a[nz])
    # raised toward the RMS: every entry's range is as near it as the cap allows
    assert np.allclose(s[nz], np.clip(rms, a[nz], PROBE_SPREAD * a[nz]))
    assert np.allclose(s[:3], rms)  # zeros step like the RMS
    # the largest step fast mode takes (h s) stays far inside |x|: no kink at 0 is crossed
    assert np.all(default_step(np.finfo(np.float64).eps) * s[nz] < 1e-3 * a[nz])
    # huge and tiny magnitudes: no overflow or underflow in the RMS
    big = probe_scales([np.array([1e200, -1e-300, 0.0])])[0]
    assert np.all(np.isfinite(big)) and big[0] == 1e200 and big[1] == 16e-300
