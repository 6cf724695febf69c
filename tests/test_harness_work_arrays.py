"""Fast mode's work-array reuse must not change any value: the blockwise combination equals
the whole-array one bit for bit, max |a| without an |a| array equals np.abs(a).max() (and
so do the worst index, the finiteness test, the precision check's per-entry errors and the
norm of a product, each made without temporaries of the full size; the linearity
check reads float32 gradients without float64 copies and finds the same residual), and a
forward that returns a view of its input (whose buffer the first pass reuses for x - h u)
is judged as if the buffers were separate."""

import numpy as np
import pytest

from gradverify.harness import check_vjp
from gradverify.harness.hygiene import _combine, _nonlinearity
from gradverify.harness.lines import all_finite, finite_max, worst_index
from gradverify.harness.precision_flush import entry_errors, overflow
from gradverify.harness.probe_sums import BLOCK, product_norm


@pytest.mark.parametrize("shape", [(), (1,), (7,), (BLOCK,), (BLOCK + 1,), (3 * BLOCK - 5,),
                                   (129, 257)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_combine_matches_whole_array_formula(shape, dtype):
    rng = np.random.default_rng(len(shape))
    a = (rng.standard_normal(shape) * 1e3).astype(dtype)
    b = (rng.standard_normal(shape) * 1e-3).astype(dtype)
    want = np.multiply(a, 0.75, dtype=np.float64) + np.multiply(b, -1.5, dtype=np.float64)
    assert np.array_equal(_combine(0.75, a, -1.5, b), want)
    if a.ndim == 2:  # Fortran-ordered and transposed operands take the whole-array path
        want_t = np.multiply(a.T, 0.75, dtype=np.float64) + np.multiply(b.T, -1.5,
                                                                      dtype=np.float64)
        assert np.array_equal(_combine(0.75, a.T, -1.5, b.T), want_t)
        assert np.array_equal(_combine(0.75, a, -1.5, np.asfortranarray(b)), want)


@pytest.mark.parametrize("values", [[-3.0, 2.0], [1.0, 5.0], [-5.0, -1.0], [-0.0], [0.0, -0.0],
                                    [np.inf, -2.0], [-np.inf, 1.0], [np.nan, 1.0], [1e-310]])
def test_finite_max_matches_abs_max(values):
    a = np.array(values)
    top = float(np.max(np.abs(a)))
    want = top if np.isfinite(top) else float(np.max(np.where(np.isinf(a), 0.0, np.abs(a))))
    got = finite_max(a)
    assert (np.isnan(got) and np.isnan(want)) or (got == want and np.copysign(1, got) == 1)


_SPECIAL = [[-3.0, 2.0], [3.0, -3.0], [-3.0, 3.0], [2.0, 2.0, -1.0], [-0.0, 0.0], [5.0],
            [np.inf, -2.0], [1.0, -np.inf, np.inf], [np.nan, 1.0], [2.0, np.nan, -np.inf],
            [1e-310, -1e-310]]


@pytest.mark.parametrize("values", _SPECIAL)
def test_worst_index_and_all_finite_match_their_array_formulas(values):
    a = np.array(values)
    mag = np.abs(a)
    assert worst_index(a) == int(np.argmax(np.where(np.isnan(mag), np.inf, mag)))
    assert all_finite(a) == bool(np.isfinite(a).all())
    assert worst_index(np.zeros(0)) == 0 and all_finite(np.zeros((0, 3)))


@pytest.mark.parametrize("seed", range(4))
def test_entry_errors_and_product_norm_match_their_array_formulas(seed):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(3 * BLOCK + 7) * 10.0 ** rng.integers(-3, 3)
    g = (h * (1 + 1e-6 * rng.standard_normal(h.size))).astype(np.float32)
    if seed % 2:  # overflows of either sign, correctly rounded or not, and NaN
        h[:4] = [1e39, -1e39, 1e39, 3.0]
        g[:4] = [np.inf, -np.inf, -np.inf, np.nan]
    g64 = g.astype(np.float64)
    with np.errstate(invalid="ignore"):
        same_inf = np.isinf(g64) & (g64 == h)
        want = np.where(overflow(g, h, g) | same_inf, 0.0, np.abs(g64 - h))
        assert np.array_equal(entry_errors(g, h, g), want, equal_nan=True)
    t = np.where(np.isfinite(g64), g64, np.inf)
    prod = h * np.where(np.isinf(t), 0.0, np.abs(t))
    assert product_norm(h, t) == pytest.approx(float(np.sqrt(np.sum(prod * prod))), rel=1e-14)


class _Problem:  # what _nonlinearity reads of a Problem
    def __init__(self, x):
        self.xs, self.diff, self.names = [x], [True], ["x"]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
@pytest.mark.parametrize("special", [None, np.inf, np.nan])
def test_linearity_reads_low_precision_gradients_exactly(dtype, special):
    """The residual from the native gradients is |c - (0.75 a - 1.5 b)| of their float64
    values, bit for bit (0 beside a non-finite entry); a linear VJP passes and an ignored
    cotangent FAILs with the float64 values of its worst entry."""
    rng = np.random.default_rng(3)
    n = BLOCK + 5
    x = rng.standard_normal(n).astype(dtype)
    v1 = [rng.standard_normal(n).astype(dtype)]
    a, b = (rng.standard_normal(n).astype(dtype) for _ in range(2))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    for c, linear in (((0.75 * a64 - 1.5 * b64).astype(dtype), True), (a.copy(), False)):
        if special is not None:
            c[7] = special
        worst, residual = _nonlinearity(_Problem(x), v1, [np.tanh(x)], [a], [b], [c])
        want = np.abs(c.astype(np.float64) - (0.75 * a64 - 1.5 * b64))
        if special is not None:
            want[7] = 0.0
        assert np.array_equal(residual[0], want)
        assert bool(worst) is not linear
        for e in worst:
            (i,) = e.index
            assert (e.analytic, e.numeric) == (float(c[i]), 0.75 * a64[i] - 1.5 * b64[i])


@pytest.mark.parametrize("seed", range(3))
def test_forward_returning_a_view_of_its_input(seed):
    x = np.random.default_rng(seed).standard_normal(3000)
    ok = check_vjp(lambda t: t.reshape(30, 100), lambda xs, gs: (gs[0].reshape(-1),), [x],
                   mode="fast", seed=seed)
    bad = check_vjp(lambda t: t.reshape(30, 100), lambda xs, gs: (1.001 * gs[0].reshape(-1),),
                    [x], mode="fast", seed=seed)
    assert ok.verdict == "PASS" and bad.verdict == "FAIL"
    # the first pass decided it: no probe went to the step ladder (2 to 4 directions)
    assert ok.evaluations["forward"] in (6, 8, 10)


@pytest.mark.parametrize("x", [np.array(1000.0), np.array([1000.0]), np.full((1, 1), -3.0)])
def test_size_one_and_0d_inputs_take_the_same_steps(x):
    # the step ranges 2 h |x| are made in place in the scales; a 0-d scale is a scalar
    ok = check_vjp(np.cos, lambda xs, gs: (-gs[0] * np.sin(xs[0]),), [x], mode="fast")
    bad = check_vjp(np.cos, lambda xs, gs: (gs[0] * np.sin(xs[0]),), [x], mode="fast")
    assert ok.verdict == "PASS" and bad.verdict == "FAIL"


def _summary(report):
    grad = report.check("gradient")
    return (report.verdict, report.evaluations, [(e.analytic, e.numeric, e.tolerance)
                                                 for e in grad.worst], grad.details)


def test_work_arrays_pooled_across_checks_change_no_value():
    # the first pass's work arrays outlive a check (probes.FirstPass.release): a check run
    # after others of other shapes and dtypes, or with a check nested in its forward,
    # reports exactly what it reports alone
    x = np.random.default_rng(4).standard_normal(20_000)
    tanh_vjp = lambda xs, gs: (gs[0] * (1 - np.tanh(xs[0]) ** 2),)
    alone = _summary(check_vjp(np.tanh, tanh_vjp, [x], mode="fast", seed=2))
    for other in (np.ones(20_000, np.float32), np.ones((7, 3)), x[:100] * 3):
        check_vjp(np.sin, lambda xs, gs: (gs[0] * np.cos(xs[0]),), [other], mode="fast")
        assert _summary(check_vjp(np.tanh, tanh_vjp, [x], mode="fast", seed=2)) == alone

    def nesting(t):  # a forward that itself runs a check of the same shape
        inner = check_vjp(np.sin, lambda xs, gs: (gs[0] * np.cos(xs[0]),), [t + 1.0],
                          mode="fast")
        assert inner.verdict == "PASS"
        return np.tanh(t)
    assert _summary(check_vjp(nesting, tanh_vjp, [x], mode="fast", seed=2))[:3] == alone[:3]
