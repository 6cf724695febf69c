"""Slivers, jumps near x and infinite gradients: the verdicts the checker owes them.

A piece narrower than every step (clip's ``t`` between ``lo = -1e-30`` and ``hi = 0``) is
never a FAIL of a right gradient, yet wrong tie conventions there still FAIL; a jump seen
at every step but not at the smallest move of x is no discontinuity at x; an infinite
gradient where the function is smooth is a FAIL.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.harness import check_gradients, check_vjp
from gradverify.harness.reasons import Reason
from gradverify.harness.report import FAIL, INCONCLUSIVE, NOT_APPLICABLE, PASS

MODES = ["full", "fast"]


def _clip(t, lo, hi):
    return np.maximum(np.minimum(t, hi), lo)


def _clip_vjp(to_t, to_lo, to_hi):
    """A clip VJP from three mask rules (each a function of t, lo, hi)."""
    def vjp(xs, gs):
        t, lo, hi = np.broadcast_arrays(*xs)
        g = gs[0]
        outs = []
        for rule, x in zip((to_t, to_lo, to_hi), xs):
            full = g * rule(t, lo, hi)
            axes = tuple(range(full.ndim - np.ndim(x)))
            full = full.sum(axis=axes) if axes else full
            for i, n in enumerate(np.shape(x)):
                if n == 1 and full.shape[i] != 1:
                    full = full.sum(axis=i, keepdims=True)
            outs.append(full)
        return tuple(outs)
    return vjp


TF_CLIP = _clip_vjp(lambda t, lo, hi: (t >= lo) & (t <= hi),
                    lambda t, lo, hi: (t < lo) | (hi < lo),
                    lambda t, lo, hi: (t > hi) & (hi >= lo))
# wrong conventions at the tie t == hi: the full gradient to both, or to neither
BOTH = _clip_vjp(lambda t, lo, hi: (t >= lo) & (t <= hi),
                 lambda t, lo, hi: (t < lo) | (hi < lo),
                 lambda t, lo, hi: (t >= hi) & (hi >= lo))
NONE = _clip_vjp(lambda t, lo, hi: (t >= lo) & (t < hi),
                 lambda t, lo, hi: (t < lo) | (hi < lo),
                 lambda t, lo, hi: (t > hi) & (hi >= lo))

# t == hi = 0 with lo 1e-30 below: the piece out = t is a 1e-30 sliver; and lo > hi beside
SLIVER = [np.array(0.0), np.array([0.0, -1e-30, 1.8479e-201]), np.array(0.0)]


@pytest.mark.parametrize("mode", MODES)
def test_a_sliver_piece_is_never_a_fail_of_tf_convention(mode):
    for seed in range(3):
        r = check_vjp(_clip, TF_CLIP, SLIVER, mode=mode, seed=seed)
        assert r.verdict != FAIL, str(r)
        assert set(r.codes) <= {Reason.STRUCTURE_BELOW_STEP}, str(r)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wrong", [BOTH, NONE], ids=["both", "none"])
def test_wrong_tie_conventions_beside_a_sliver_still_fail(mode, wrong):
    # the same outputs with the tie t == hi exact (lo = -1: no sliver): still a fault
    xs = [np.array(0.0), np.array([0.0, -1.0, -1e-30]), np.array(0.0)]
    assert check_vjp(_clip, wrong, xs, mode=mode, seed=0).verdict == FAIL


def test_the_noise_of_tiny_values_does_not_blind_the_small_scale():
    # hi holds a 1 and a 5.2e-95: the second sampling radius is 5.2e-95, where the
    # sliver's slope 1 shows; the row's noise at the common step (1e-46) must not swamp it
    xs = [np.array(0.0), np.array([0.0, 0.0, 0.0, -1e-30]),
          np.array([[[0.0] * 4], [[0.0] * 4], [[0.0, 0.0, 1.0, 5.19903511e-95]]])]
    for seed in range(3):
        assert check_vjp(_clip, TF_CLIP, xs, mode="full", seed=seed).verdict == PASS


@pytest.mark.parametrize("mode", MODES)
def test_a_jump_beyond_the_smallest_move_is_not_at_x(mode):
    r = check_gradients(lambda z: tf.nn.softmax(z), [np.array([1e30, 1e30 + 1e15])],
                        mode=mode, seed=0)
    assert r.verdict == INCONCLUSIVE, str(r)
    assert Reason.STRUCTURE_BELOW_STEP in r.codes


@pytest.mark.parametrize("mode", MODES)
def test_a_jump_at_x_stays_not_applicable(mode):
    zero = lambda xs, gs: (np.zeros_like(gs[0]),)
    r = check_vjp(np.sign, zero, [np.array([0.0])], mode=mode, seed=0)
    assert r.verdict == NOT_APPLICABLE, str(r)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_an_infinite_gradient_at_a_smooth_point_fails(mode, dtype):
    xs = [np.array([0.3, 1.2, -0.7], dtype)]
    r = check_vjp(np.sin, lambda xs, gs: (gs[0] * np.inf,), xs, mode=mode, seed=0)
    assert r.verdict == FAIL, str(r)
    one = lambda xs, gs: (gs[0] * np.cos(xs[0]) * np.array([1, np.inf, 1], dtype),)
    assert check_vjp(np.sin, one, xs, mode=mode, seed=1).verdict == FAIL


# Dev-profile seed 6: t shared by four rows through broadcasting, t == lo == hi = 0 in one
# of them (TF's gradient 1 to t is the piece lo < t < hi), hi also tied within 1e-211 and
# 4.5e-243 of other rows' bounds, beside bounds of 1000: the small radius (1e-294) meets
# the slivers, but a probe there carries the round-off of the 1000s and tells nothing.
SEED6 = [np.array([[[0.4735575530502132, 0.0], [-1000.0, 0.0], [-1.0, 6.402410105464309e-07],
                    [1.1349741389255453e-294, 3.0]]]),
         np.array([[[0.0, 0.616688821], [0.0, 0.0], [0.0, -7.0859653e-211], [0.0, 0.0]],
                   [[2.17295066, -0.448355038], [0.0, 2.83390314], [0.0, 2.33111065],
                    [2.99750163, 0.343737482]],
                   [[0.0537573562, -0.42171275], [0.0, -1.33196925], [0.0, 0.0],
                    [1e-30, 1000.0]],
                   [[0.0, -2.48261975], [0.0, 0.2], [0.0, 4.49242617e-243], [0.0, 0.0]]]),
         np.array([0.0, 0.0])]


def _seed6_like(big: float, below: float, above: float) -> list[np.ndarray]:
    """SEED6 with its large bound and its two slivers' widths changed: the class, not the
    example (the old model FAILed every one of these with a large bound of 100 or 1000)."""
    t, lo, hi = (x.copy() for x in SEED6)
    lo[2, 3, 1], lo[0, 2, 1], lo[3, 2, 1] = big, -below, above
    return [t, lo, hi]


@pytest.mark.parametrize("mode", MODES)
def test_a_sliver_only_an_uninformative_radius_meets_is_judged_row_by_row(mode):
    # A probe's small-radius samples carry the round-off of every output it weighs; a
    # sliver only they meet is judged on the rows (each with its own round-off) instead.
    for seed in range(3):
        assert check_vjp(_clip, TF_CLIP, SEED6, mode=mode, seed=seed).verdict == PASS
    for big, below, above in [(100.0, 1e-30, 1e-40), (1000.0, 1e-12, 1e-15),
                              (1000.0, 1e-300, 1e-310), (100.0, 7e-211, 4.5e-243)]:
        xs = _seed6_like(big, below, above)
        assert check_vjp(_clip, TF_CLIP, xs, mode=mode, seed=1).verdict == PASS


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wrong", [BOTH, NONE], ids=["both", "none"])
def test_wrong_tie_conventions_among_unseen_slivers_still_fail(mode, wrong):
    for seed in range(2):
        r = check_vjp(_clip, wrong, SEED6, mode=mode, seed=seed)
        assert r.verdict == FAIL
        # several probes reach the same entries: each shows once, at its worst
        shown = [(e.input, e.index, e.output, e.kind) for c in r.checks for e in c.worst
                 if e.index is not None]
        assert len(shown) == len(set(shown)), str(r)
