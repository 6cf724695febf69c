"""Evaluations that serve twice (harness/calls.py): f(x) once two evaluations there agreed,
an evaluation a framework adapter already made (``forward.take_evaluation``), and several
VJPs/JVPs in one call (``vjp.many``, ``jvp.many``) - each saving calls without weakening
a check: the determinism check still compares two real evaluations, the linearity check
still sees a VJP that ignores its cotangent, a wrong JVP still FAILs."""

from __future__ import annotations

import numpy as np
import pytest

from gradverify.harness import FAIL, PASS, check_vjp


class Counted:
    """np.tanh, counting its calls at the point ``x`` and elsewhere."""

    def __init__(self, x: np.ndarray, offset: float = 0.0):
        self.x, self.offset, self.at_x, self.moved = x, offset, 0, 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.dtype == self.x.dtype and np.array_equal(x, self.x):
            self.at_x += 1
        else:
            self.moved += 1
        return np.tanh(x) + np.asarray(self.offset, x.dtype)


def _vjp(xs, gs):
    return (gs[0] * (1 - np.tanh(xs[0]) ** 2),)


def _jvp(xs, us):
    return (us[0] * (1 - np.tanh(xs[0]) ** 2),)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("size", [1, 7, 1000])
def test_float32_check_evaluates_twice_at_x(seed, size):
    # y0 and the determinism check's; the precision check's f(x) is the settled one
    x = np.random.default_rng(seed).uniform(-2, 2, size).astype(np.float32)
    f = Counted(x)
    r = check_vjp(f, _vjp, [x], mode="fast", seed=seed)
    assert r.verdict == PASS, str(r)
    assert f.at_x == 2
    assert r.evaluations["forward"] == f.at_x + f.moved


class Drifting:
    """A forward that changes from call to call by a tiny amount (a hidden counter)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return np.tanh(x) + (self.calls * np.finfo(x.dtype).eps).astype(x.dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_drifting_forward_is_never_served_from_memory(dtype):
    x = np.linspace(-1, 1, 50).astype(dtype)
    r = check_vjp(Drifting(), _vjp, [x], mode="fast")
    assert r.check("hygiene.deterministic").verdict == FAIL


class Prepared:
    """A forward offering an evaluation it made already (as the torch adapter's does)."""

    def __init__(self, x: np.ndarray, offered: np.ndarray):
        self.x, self.offered, self.asked, self.calls = x, offered, [], 0

    def __call__(self, x):
        self.calls += 1
        return np.tanh(x)

    def take_evaluation(self, xs):
        self.asked.append(np.array_equal(xs[0], self.x))
        offered, self.offered = self.offered, None
        return None if offered is None else (offered,)


def test_an_offered_evaluation_serves_once_and_is_counted():
    x = np.linspace(-2, 2, 300)
    f = Prepared(x, np.tanh(x))
    r = check_vjp(f, _vjp, [x], mode="fast")
    assert r.verdict == PASS, str(r)
    assert r.evaluations["forward"] == f.calls + 1  # the offered one counts


def test_the_determinism_check_compares_the_offered_evaluation_with_a_real_one():
    x = np.linspace(-2, 2, 300)
    f = Prepared(x, np.tanh(x) + 1e-15)  # not what the function computes now
    r = check_vjp(f, _vjp, [x], mode="fast")
    assert r.check("hygiene.deterministic").verdict == FAIL


def test_an_evaluation_is_taken_only_at_the_checked_point():
    x = np.linspace(-2, 2, 300)
    f = Prepared(x, np.tanh(x))
    r = check_vjp(f, _vjp, [x], mode="full")
    assert r.verdict == PASS
    # asked at x only (y0 takes it, the determinism check's call gets None), never at one
    # of the 600 moved points of full mode
    assert f.asked == [True, True]


class ManyVJP:
    """A VJP offering several cotangents per call; ``ignore`` drops the cotangent."""

    def __init__(self, ignore: bool = False):
        self.ignore, self.single, self.batched = ignore, 0, 0

    def _one(self, xs, gs):
        g = np.ones_like(gs[0]) if self.ignore else gs[0]
        return (g * (1 - np.tanh(xs[0]) ** 2),)

    def __call__(self, xs, gs):
        self.single += 1
        return self._one(xs, gs)

    def many(self, xs, cts):
        self.batched += 1
        return [self._one(xs, c) for c in cts]


@pytest.mark.parametrize("seed", range(3))
def test_linearity_takes_both_cotangents_in_one_call(seed):
    x = np.random.default_rng(seed).uniform(-2, 2, 500)
    vjp = ManyVJP()
    r = check_vjp(np.tanh, vjp, [x], mode="fast", seed=seed)
    plain = check_vjp(np.tanh, _vjp, [x], mode="fast", seed=seed)
    assert r.verdict == plain.verdict == PASS
    assert vjp.batched == 1
    assert r.evaluations == plain.evaluations  # each cotangent still counts
    assert r.check("gradient").details == plain.check("gradient").details


def test_a_batched_vjp_ignoring_its_cotangent_fails_linearity():
    vjp = ManyVJP(ignore=True)
    r = check_vjp(np.tanh, vjp, [np.linspace(-2, 2, 50)], mode="fast")
    assert r.check("hygiene.linearity").verdict == FAIL
    # the pair (v2, a v1 + b v2), then (v1, -2 v1) for the homogeneity a FAIL must fail too
    assert vjp.batched == 2


class ManyJVP:
    def __init__(self, scale: float = 1.0):
        self.scale, self.batched = scale, 0

    def __call__(self, xs, us):
        return (_jvp(xs, us)[0] * self.scale,)

    def many(self, xs, tangents):
        self.batched += 1
        return [self(xs, t) for t in tangents]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_jvps_of_fast_mode_come_in_one_call(seed, dtype):
    x = np.random.default_rng(seed).uniform(-2, 2, 2000).astype(dtype)
    good, bad = ManyJVP(), ManyJVP(1 + 1e-5)
    r = check_vjp(np.tanh, _vjp, [x], mode="fast", seed=seed, jvp=good)
    assert r.verdict == PASS, str(r)
    assert good.batched == 1
    assert r.evaluations["jvp"] == r.check("gradient").details["directions"]
    r = check_vjp(np.tanh, _vjp, [x], mode="fast", seed=seed, jvp=bad)
    assert r.check("jvp").verdict == FAIL


def test_a_many_returning_the_wrong_count_is_a_named_fail():
    vjp = ManyVJP()
    vjp.many = lambda xs, cts: [vjp._one(xs, cts[0])]  # one result for two cotangents
    r = check_vjp(np.tanh, vjp, [np.linspace(-2, 2, 50)], mode="fast")
    assert r.verdict == FAIL and r.check("vjp") is not None, str(r)
    assert "1 for 2 inputs" in r.check("vjp").reason
