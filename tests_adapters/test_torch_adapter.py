"""gradverify.torch: seeded faulty custom Functions FAIL with the right check and
diagnosis; correct functions that torch's own gradcheck rejects PASS; the drop-in
conventions (True or GradcheckError, flags) hold. Run by ``tox -e torch``."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

from gradverify.adapters.strategies import arrays, broadcastable, matmul_operands  # noqa: E402
from gradverify.torch import (  # noqa: E402
    ComplexInputError,
    GradcheckError,
    GradverifyWarning,
    InconclusiveWarning,
    check,
    gradcheck,
    gradgradcheck,
    torch_suite,
)
from tests_adapters.torch_faults import FAULTS, params, second_order_fault  # noqa: E402

SEEDS = [0, 1, 2]


def _torch_rejects(fn, inputs, **kwargs) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return not torch.autograd.gradcheck(fn, inputs, raise_exception=False, **kwargs)
        except RuntimeError:
            return True


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", params(pytest))
def test_fault_fails_with_diagnosis(fault, seed):
    report = check(fault.fn, fault.inputs(seed), seed=seed)
    assert report.verdict == "FAIL", str(report)
    assert report.check(fault.check).verdict == "FAIL", str(report)
    if fault.diagnosis:
        assert (report.diagnosis or "").startswith(fault.diagnosis), str(report)


@pytest.mark.parametrize("fault", params(pytest))
def test_fault_raises_in_drop_in_fast_mode(fault):
    with pytest.raises(GradcheckError) as info:
        gradcheck(fault.fn, fault.inputs(0), fast_mode=True)
    assert isinstance(info.value, RuntimeError)      # torch's GradcheckError contract
    assert isinstance(info.value, AssertionError)    # gradverify's GradientError contract
    assert "FAIL" in str(info.value) and info.value.report.verdict == "FAIL"


def test_second_order_fault_only_in_gradgradcheck():
    fn = second_order_fault()
    x = torch.linspace(-2, 2, 5, dtype=torch.float64, requires_grad=True)
    assert gradcheck(fn, (x,))
    with pytest.raises(GradcheckError, match="FAIL"):
        gradgradcheck(fn, (x,))
    assert gradgradcheck(lambda t: t ** 3, (x,))


# -- correct functions that torch's own checker rejects --------------------------------------
def _f32(*values):
    return torch.tensor(values, dtype=torch.float32, requires_grad=True)


def _kink_inputs():
    return torch.tensor([0.0, 1.5, -2.0, 0.0], dtype=torch.float64, requires_grad=True)


def _first_wins(a, b):
    """max(a, b) with the valid convention 'ties go to a' (a subgradient at ties)."""
    return torch.where(a >= b, a, b)


TORCH_REJECTS = [
    ("relu at its kink", torch.relu, lambda: (_kink_inputs(),)),
    ("clamp at its bound", lambda t: t.clamp(min=0.0), lambda: (_kink_inputs(),)),
    ("max tie to the first", _first_wins,
     lambda: (torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64, requires_grad=True),
              torch.tensor([1.0, 0.5, -1.0], dtype=torch.float64, requires_grad=True))),
    ("tanh in float32", torch.tanh, lambda: (_f32(0.3, 1.0, -2.0),)),
    ("matmul in float32", torch.mm, lambda: (
        torch.randn(8, 5, generator=torch.Generator().manual_seed(0)).requires_grad_(),
        torch.randn(5, 3, generator=torch.Generator().manual_seed(1)).requires_grad_())),
    ("softmax in float32", lambda t: torch.softmax(t, -1),
     lambda: (_f32(1.0, 2.0, 3.0, 1.0),)),
]


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize(("name", "fn", "inputs"), TORCH_REJECTS,
                         ids=[c[0] for c in TORCH_REJECTS])
def test_correct_cases_torch_rejects_pass(name, fn, inputs, fast_mode):
    assert _torch_rejects(fn, inputs(), fast_mode=fast_mode), f"torch accepts {name}"
    for seed in SEEDS:
        assert gradcheck(fn, inputs(), fast_mode=fast_mode, seed=seed)


# Native ops a fuzz of gradverify.torch.check found FAILed at some seeds, each with an exact
# gradient (mpmath agrees with torch to 1e-16): layer_norm's output 0 at an entry equal to
# its row's mean is a cancellation of terms of size 1 (torch forms x * rstd - mean * rstd),
# so it rounds like them, not like itself (full mode FAILed 74 seeds of 400); tanh in
# float32 where every entry saturates, float64 included (tanh(-16.4) = -1 + 1e-14).
NATIVE_FOUND = [
    ("layer_norm at its rows' means", lambda t: torch.nn.functional.layer_norm(t, (5,)),
     lambda: (torch.tensor([[-2.0, 2, -2, -1, 0], [-2, 1, 1, 1, -1], [0, -2, -1, -2, 1],
                            [1, 1, 1, 0, 2], [2, -2, -1, 1, 2]], dtype=torch.float64,
                           requires_grad=True),), range(40), "full"),
    ("tanh saturated in float32", torch.tanh,
     lambda: (_f32(586.0659, -16.441826, -277.97726, -279.0121, -376.25803),), range(4),
     "auto"),
]


@pytest.mark.parametrize(("name", "fn", "inputs", "seeds", "mode"), NATIVE_FOUND,
                         ids=[c[0] for c in NATIVE_FOUND])
def test_native_ops_a_fuzz_found_are_never_a_fail(name, fn, inputs, seeds, mode):
    for seed in seeds:
        report = check(fn, inputs(), mode=mode, seed=seed)
        assert report.verdict != "FAIL", str(report)


LOW_PRECISION_OPS = [
    ("tanh", torch.tanh, [(7,)]),
    ("softmax", lambda t: torch.softmax(t, -1), [(4, 10)]),
    ("matmul", torch.mm, [(16, 32), (32, 8)]),
    ("logsumexp", lambda t: torch.logsumexp(t, 0), [(50,)]),
    ("mse", lambda a, b: ((a - b) ** 2).mean(), [(20,), (20,)]),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("name", "fn", "shapes"), LOW_PRECISION_OPS,
                         ids=[c[0] for c in LOW_PRECISION_OPS])
def test_low_precision_checked_against_float64(name, fn, shapes, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    xs = tuple(torch.randn(*s, generator=g).to(dtype).requires_grad_() for s in shapes)
    report = check(fn, xs, seed=seed)
    assert report.verdict == "PASS", str(report)
    precision = [c for c in report.checks if c.name.startswith("precision")]
    assert precision and all(c.verdict == "PASS" for c in precision)
    assert report.inputs[0]["dtype"] == str(dtype).removeprefix("torch.")


def test_bfloat16_gradient_wrong_only_in_bfloat16_fails():
    class Sloppy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            scale = 1.5 if x.dtype == torch.bfloat16 else 1.0  # a low-precision-only path
            return g * x.cos() * scale

    x = torch.linspace(-2, 2, 7, dtype=torch.bfloat16, requires_grad=True)
    report = check(Sloppy.apply, (x,))
    assert report.verdict == "FAIL" and report.check("precision.bfloat16").verdict == "FAIL"


def test_complex_input_is_a_clear_error():
    z = torch.ones(2, 3, dtype=torch.complex128, requires_grad=True)
    with pytest.raises(ComplexInputError, match=r"input 0 is complex .*shape \(2, 3\)"):
        gradcheck(torch.sin, (z,))


def test_complex_output_is_a_clear_error():
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ComplexInputError, match="output 0 is complex"):
        check(lambda t: t * (1 + 1j), (x,))


def test_no_input_requiring_grad_is_torchs_error():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(torch.sin, (torch.ones(2, dtype=torch.float64),))


def test_tensors_requiring_grad_inside_a_tuple_input_are_a_clear_error():
    # held fixed silently, a faulty gradient of h would pass (torch raises IndexError)
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    h = torch.ones(3, dtype=torch.float64, requires_grad=True)
    for nested in ((h,), [x, (h,)], {"h": h}):
        with pytest.raises(TypeError, match=r"input 1 is a .* holding tensors that require"):
            gradcheck(lambda a, b: a, (x, nested))
    fixed = (torch.ones(3, dtype=torch.float64),)  # not requiring grad: held fixed, fine
    assert gradcheck(lambda a, b: a * b[0], (x, fixed))


def test_grad_outputs_of_the_wrong_shape_are_the_callers_error():
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match=r"grad_outputs\[0\] has shape \(4,\), output 0 "
                       r"of sin has shape \(3,\)"):
        gradgradcheck(torch.sin, (x,), (torch.ones(4, dtype=torch.float64),))


def test_non_tensor_and_integer_inputs_are_held_fixed():
    x = torch.linspace(0.1, 1, 4, dtype=torch.float64, requires_grad=True)
    idx = torch.tensor([3, 0, 0])
    assert gradcheck(lambda t, i, p: t[i] ** p, (x, idx, 3))
    const = torch.ones(4, dtype=torch.float64)  # float, but not requiring grad: fixed
    report = check(lambda a, b: a * b, (x, const))
    assert [i["name"] for i in report.inputs] == ["a"]


def test_raise_exception_false_returns_false():
    fault = FAULTS[1]
    assert gradcheck(fault.fn, fault.inputs(0), raise_exception=False) is False


class _SinNoJvp(torch.autograd.Function):
    """A correct custom Function without a jvp: no forward mode."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sin()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x.cos()


def test_forward_ad_checked_and_unsupported_reported():
    x = torch.linspace(-1, 1, 4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(torch.sin, (x,), check_forward_ad=True)
    report = check(_SinNoJvp.apply, (x,), forward_ad=True)
    assert report.check("forward_mode").verdict == "INCONCLUSIVE"
    assert report.check("gradient").verdict == "PASS"
    with pytest.raises(GradcheckError, match="forward-mode AD is not supported"):
        gradcheck(_SinNoJvp.apply, (x,), check_forward_ad=True)
    with pytest.warns(InconclusiveWarning):
        assert gradcheck(_SinNoJvp.apply, (x,), check_forward_ad=True,
                         allow_inconclusive=True)


def test_wrong_forward_ad_fails():
    class BadJvp(_SinNoJvp):
        @staticmethod
        def jvp(ctx, t):
            return -t * ctx.saved_x.cos()  # sign flipped in forward mode only

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            ctx.saved_x = x
            return x.sin()

    x = torch.linspace(-1, 1, 4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(BadJvp.apply, (x,))
    with pytest.raises(GradcheckError, match="FAIL"):
        gradcheck(BadJvp.apply, (x,), check_forward_ad=True)


def test_undefined_output_gradient_must_act_as_zero():
    class Pair(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            ctx.save_for_backward(x)
            return x * 2, x.sin()

        @staticmethod
        def backward(ctx, g1, g2):
            (x,) = ctx.saved_tensors
            return g1 * 2 + g2 * x.cos()  # raises when either is undefined (None)

    x = torch.linspace(-1, 1, 4, dtype=torch.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match="undefined"):
        gradcheck(Pair.apply, (x,))
    assert gradcheck(Pair.apply, (x,), check_undefined_grad=False)


def test_nondet_tol_fixes_the_generator():
    # 64 entries: two dropout masks agree by chance with probability 2^-64 (with 6, one
    # run in 64 drew the same mask twice and found the forward deterministic)
    x = torch.linspace(-1, 1, 64, dtype=torch.float64, requires_grad=True)
    dropout = lambda t: torch.nn.functional.dropout(t, 0.5, training=True)
    with pytest.raises(GradcheckError, match="not deterministic"):
        gradcheck(dropout, (x,))
    assert gradcheck(dropout, (x,), nondet_tol=1e-12)


def test_batched_grad_not_performed_is_said():
    x = torch.ones(2, dtype=torch.float64, requires_grad=True)
    with pytest.warns(GradverifyWarning, match="check_batched_grad"):
        gradcheck(torch.sin, (x,), check_batched_grad=True)


def test_gradgradcheck_with_given_grad_outputs():
    x = torch.linspace(-1, 1, 3, dtype=torch.float64, requires_grad=True)
    v = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert gradgradcheck(torch.tanh, (x,), (v,))
    with pytest.raises(GradcheckError):
        gradgradcheck(second_order_fault(), (x,), (v,))


def test_same_seed_same_report():
    fault = FAULTS[0]
    a = check(fault.fn, fault.inputs(0), seed=3).to_dict()
    b = check(fault.fn, fault.inputs(0), seed=3).to_dict()
    assert a == b and a["seed"] == 3


# -- one-line suites -----------------------------------------------------------------------
test_relu_suite = torch_suite(torch.relu, inputs=arrays(kinks=(0.0,)))
test_maximum_suite = torch_suite(torch.maximum, inputs=broadcastable(2))
test_matmul_suite = torch_suite(torch.matmul, inputs=matmul_operands(batch=True))
test_mul_float32_suite = torch_suite(lambda a, b: a * b, inputs=broadcastable(2),
                                     dtype=torch.float32)


def test_suite_finds_a_fault():
    bad = FAULTS[4]  # abs with gradient g everywhere: wrong for x < 0
    suite = torch_suite(bad.fn, inputs=arrays(kinks=(0.0,)))
    with pytest.raises(AssertionError, match="FAIL"):
        suite()


@pytest.mark.parametrize("seed", SEEDS)
def test_every_evaluation_is_counted_and_the_autograd_one_serves_as_f_of_x(seed):
    # the adapter's forward with autograd (made for the VJPs) is the harness's first
    # evaluation at x: the report counts every call of the function, none more
    calls = []

    def f(t):
        calls.append(torch.is_grad_enabled())
        return torch.tanh(t)

    x = torch.randn(2000, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    report = check(f, (x.requires_grad_(),), mode="fast", seed=seed)
    assert report.verdict == "PASS", str(report)
    assert report.evaluations["forward"] == len(calls)
    assert calls[:2] == [True, True]  # both evaluations at x run with autograd


def test_a_function_rounding_differently_without_autograd_is_deterministic():
    # (nn.MultiheadAttention takes a fast path without autograd): the two evaluations the
    # determinism check compares both run with autograd, as the one the VJPs come from
    def f(t):
        return t.sin() + (0.0 if torch.is_grad_enabled() else 1e-13)

    x = torch.linspace(-2, 2, 50, dtype=torch.float64, requires_grad=True)
    assert gradcheck(f, (x,), fast_mode=True)
    assert check(f, (x,), mode="full").verdict == "PASS"


def test_integer_output_is_not_applicable_and_raises_unless_allowed():
    # torch's gradcheck returns True here (nothing to differentiate); ours says that
    # nothing was verified
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)

    def sign(t):
        return (t > 0).long()

    assert check(sign, (x,)).verdict == "NOT_APPLICABLE"
    with pytest.raises(GradcheckError, match="NOT_APPLICABLE"):
        gradcheck(sign, (x,))
    assert gradcheck(sign, (x,), raise_exception=False) is False
    with pytest.warns(InconclusiveWarning, match="NOT_APPLICABLE"):
        assert gradcheck(sign, (x,), allow_inconclusive=True)


def test_a_forward_writing_into_its_input_is_blamed_as_the_forward():
    # it was reported as written "(by the vjp)": the harness's first forward was served
    # from the autograd evaluation, made on private copies
    def scales_its_input(t):
        t.data.mul_(1.001)
        return t.sin()

    x = torch.linspace(0.1, 1, 4, dtype=torch.float64, requires_grad=True)
    report = check(scales_its_input, (x,))
    reason = report.check("hygiene.input_unchanged").reason
    assert report.verdict == "FAIL" and reason.startswith("input mutated: t,"), reason
