"""The op registry: registering custom ops end to end, duplicate and gradient registration
errors, lookups, public names, unregistering, and the gradient machinery's checks on what a
registered gradient returns (DESIGN.md "Op definition", spec sections 4 and 7)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors, registry
from gradverify.engine import meta as m
from gradverify.engine.registry import unregister
from tests._util import second_order, vjp


@pytest.fixture
def temp_ops():
    """Types registered during the test (append to the list); unregistered afterwards."""
    types: list[str] = []
    try:
        yield types
    finally:
        for t in types:
            if t in registry.list_ops():
                unregister(t)


def _registration_line(message: str) -> str:
    """The source line that a "(Previous registration was in FILE:LINE)" message points at."""
    found = re.search(r"was in (.+):(\d+)\)", message)
    assert found, message
    path, line = found.group(1), int(found.group(2))
    with open(path) as f:
        return f.read().splitlines()[line - 1]


# -- a custom op end to end ------------------------------------------------------------------
def test_custom_op_forward_gradient_and_second_order(temp_ops):
    temp_ops.append("ScaledSquareT")

    @tf.op("ScaledSquareT", inputs={"x": m.reals}, attrs={"scale": 1.0},
           api=("scaled_square_t", "nn.scaled_square_t"))
    def scaled_square(x, *, scale):
        return (scale * x * x).astype(x.dtype)

    @scaled_square.gradient
    def _(op, grad):
        return grad * (2.0 * op.get_attr("scale")) * op.inputs[0]

    assert registry.lookup("ScaledSquareT") is scaled_square
    assert tf.scaled_square_t is scaled_square
    assert tf.nn.scaled_square_t is scaled_square

    x = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.5]])
    y, (gx,), w = vjp(lambda t: tf.nn.scaled_square_t(t, scale=3.0), [x], seed=1)
    np.testing.assert_allclose(y, 3.0 * x * x, rtol=1e-12)
    np.testing.assert_allclose(gx, w * 6.0 * x, rtol=1e-12)

    h, w2, v = second_order(lambda t: scaled_square(t, scale=3.0), x, seed=2)
    np.testing.assert_allclose(h, 6.0 * w2 * v, rtol=1e-12)

    with tf.Graph().as_default():
        p = tf.placeholder(tf.float32, [None, 2])
        out = tf.scaled_square_t(p, scale=2.0, name="sq")
        assert out.op.name == "sq" and out.op.type == "ScaledSquareT"
        assert out.shape.as_list() == [None, 2]
        assert out.dtype == tf.float32
        with tf.Session() as sess:
            got = sess.run(out, {p: [[1.0, 2.0]]})
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, [[2.0, 8.0]])


def test_custom_op_metadata_is_kept(temp_ops):
    temp_ops.append("MetaT")

    @tf.op("MetaT", inputs={"x": m.reals, "y": m.positive}, signature="broadcast",
           kinks=(0.0,), ties=True, order=1, reference=np.add)
    def meta_t(x, y):
        return x + y

    assert meta_t.type == "MetaT"
    assert list(meta_t.inputs) == ["x", "y"]
    assert meta_t.inputs["y"] is m.positive
    assert meta_t.signature == "broadcast"
    assert (meta_t.kinks, meta_t.ties, meta_t.order) == ((0.0,), True, 1)
    assert meta_t.reference is np.add
    assert meta_t.grad_fn is None
    assert meta_t.api_names == []
    with tf.Graph().as_default():
        z = meta_t(tf.constant(np.ones((2, 1), np.float32)), tf.constant(np.ones(3, np.float32)))
        assert z.shape.as_list() == [2, 3]


def test_gufunc_signature_shape_rule(temp_ops):
    temp_ops.append("OuterT")

    @tf.op("OuterT", inputs={"a": m.reals, "b": m.reals}, signature="(m),(n)->(m,n)")
    def outer_t(a, b):
        return a[..., :, None] * b[..., None, :]

    with tf.Graph().as_default():
        a = tf.placeholder(tf.float32, [None, 3])
        b = tf.placeholder(tf.float32, [4])
        out = outer_t(a, b)
        assert out.shape.as_list() == [None, 3, 4]
        with tf.Session() as sess:
            got = sess.run(out, {a: np.ones((2, 3)), b: np.arange(4.0)})
        assert got.shape == (2, 3, 4)
        np.testing.assert_array_equal(got[1, 2], np.arange(4.0))


def test_custom_shape_rule_and_its_build_time_error(temp_ops):
    temp_ops.append("FirstRowT")

    @tf.op("FirstRowT", inputs={"x": m.reals}, signature="custom")
    def first_row(x):
        return x[0]

    @first_row.shape_rule
    def _(ctx):
        s = ctx.rank_at_least(0, 1)
        return s[1:]

    with tf.Graph().as_default():
        assert first_row(tf.zeros([3, 4])).shape.as_list() == [4]
        with pytest.raises(ValueError, match="Shape must be at least rank 1 but is rank 0 "
                                             "for 'FirstRowT_1' \\(op: 'FirstRowT'\\)"):
            first_row(tf.constant(1.0))


def test_custom_signature_without_shape_rule_cannot_build(temp_ops):
    temp_ops.append("NoRuleT")

    @tf.op("NoRuleT", inputs={"x": m.reals}, signature="custom")
    def no_rule(x):
        return x

    with tf.Graph().as_default(), pytest.raises(NotImplementedError, match="no @shape_rule"):
        no_rule(tf.constant(1.0))


def test_stateful_kernel_gets_run_context(temp_ops):
    temp_ops.append("CtxT")
    seen = []

    @tf.op("CtxT", inputs={"x": m.reals}, stateful=True)
    def ctx_t(ctx, x):
        seen.append(ctx.op.name)
        return x

    with tf.Graph().as_default():
        y = ctx_t(tf.constant([1.0]), name="with_ctx")
        with tf.Session() as sess:
            sess.run(y)
            sess.run(y)  # stateful: never folded, runs every time
    assert seen == ["with_ctx", "with_ctx"]


# -- registration errors -------------------------------------------------------------------
def test_duplicate_registration_names_the_earlier_definition(temp_ops):
    temp_ops.append("DupT")

    @tf.op("DupT", inputs={"x": m.reals})  # the first definition: this line is named
    def first(x):
        return x

    with pytest.raises(KeyError) as info:
        @tf.op("DupT", inputs={"x": m.reals})
        def second(x):
            return x

    message = info.value.args[0]
    assert message.startswith("Registering two ops with name 'DupT'!")
    assert __file__ in message
    assert "the first definition: this line is named" in _registration_line(message)
    assert registry.lookup("DupT") is first


def test_duplicate_registration_of_a_builtin_names_its_file(temp_ops):
    before = registry.lookup("MatMul")
    with pytest.raises(KeyError) as info:
        @tf.op("MatMul", inputs={"x": m.reals})
        def fake(x):
            return x
    message = info.value.args[0]
    assert "Registering two ops with name 'MatMul'!" in message
    assert "math_ops.py" in message
    assert "MatMul" in _registration_line(message)
    assert registry.lookup("MatMul") is before


def test_second_gradient_registration_is_key_error(temp_ops):
    temp_ops.append("TwoGradsT")

    @tf.op("TwoGradsT", inputs={"x": m.reals})
    def two(x):
        return x

    @two.gradient  # the first gradient: this line is named
    def first_grad(op, grad):
        return grad

    with pytest.raises(KeyError) as info:
        @two.gradient
        def second_grad(op, grad):
            return -grad
    message = info.value.args[0]
    assert message.startswith("Registering two gradients for op type 'TwoGradsT'!")
    assert "the first gradient: this line is named" in _registration_line(message)
    assert two.grad_fn is first_grad


def test_gradient_on_non_differentiable_op_is_key_error(temp_ops):
    temp_ops.append("NonDiffT")

    @tf.op("NonDiffT", inputs={"x": m.reals}, differentiable=False)
    def non_diff(x):
        return x

    with pytest.raises(KeyError, match="Op type 'NonDiffT' is declared not differentiable"):
        @non_diff.gradient
        def _(op, grad):
            return grad
    assert non_diff.grad_fn is None


def test_duplicate_public_name_is_key_error(temp_ops):
    temp_ops.append("ClashT")
    original = tf.add
    with pytest.raises(KeyError, match="Registering two public functions named 'add'!"):
        @tf.op("ClashT", inputs={"x": m.reals}, api="add")
        def clash(x):
            return x
    assert tf.add is original
    assert registry.public_names("")["add"] is original


def test_input_domain_must_be_a_domain():
    with pytest.raises(TypeError, match=r"needs an engine\.meta\.Domain"):
        tf.op("BadDomainT", inputs={"x": "reals"})
    assert "BadDomainT" not in registry.list_ops()


# -- lookups -------------------------------------------------------------------------------
def test_lookup_list_ops_and_ops():
    mm = registry.lookup("MatMul")
    assert mm.type == "MatMul"
    assert registry.get("MatMul") is mm
    names = registry.list_ops()
    for t in ("Const", "Placeholder", "Identity", "MatMul", "Add", "VariableV2", "Assign"):
        assert t in names
    assert names.index("Const") < names.index("MatMul")  # registration order
    table = registry.ops()
    assert list(table) == names
    assert table["MatMul"] is mm
    table.clear()  # a copy
    assert "MatMul" in registry.list_ops()
    with pytest.raises(KeyError, match="Op type not registered 'NoSuchOpT'"):
        registry.lookup("NoSuchOpT")


def test_public_api_names_point_at_registered_ops():
    assert tf.add is registry.public_names("")["add"]
    assert registry.lookup("Add").api_names[:1] == ["add"]
    assert tf.nn.softmax is registry.public_names("nn")["softmax"]
    assert "Softmax" in registry.list_ops()


# -- unregister and exports ------------------------------------------------------------------
def test_export_into_nn_and_unregister_removes_everything(temp_ops):
    temp_ops.append("ExportT")

    @tf.op("ExportT", inputs={"x": m.reals}, api=("export_t", "nn.export_t", "math.export_t"))
    def export_t(x):
        return x * 2

    assert tf.nn.export_t is export_t
    assert tf.export_t is export_t
    assert tf.math.export_t is export_t
    assert registry.public_names("nn")["export_t"] is export_t
    assert export_t.api_names == ["export_t", "nn.export_t", "math.export_t"]
    with tf.Graph().as_default(), tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(tf.nn.export_t([1.0, 2.0])), [2.0, 4.0])

    unregister("ExportT")
    assert "ExportT" not in registry.list_ops()
    assert not hasattr(tf.nn, "export_t")
    assert not hasattr(tf, "export_t")
    assert not hasattr(tf.math, "export_t")
    assert "export_t" not in registry.public_names("nn")
    assert "export_t" not in registry.public_names("")
    with pytest.raises(KeyError, match="Op type not registered 'ExportT'"):
        registry.lookup("ExportT")

    @tf.op("ExportT", inputs={"x": m.reals}, api="nn.export_t")  # the name is free again
    def export_again(x):
        return x

    assert tf.nn.export_t is export_again


def test_unregister_unknown_op_is_key_error():
    with pytest.raises(KeyError):
        unregister("NeverRegisteredT")


# -- what a gradient returns -------------------------------------------------------------------
def test_gradient_returning_wrong_number_of_gradients_is_value_error(temp_ops):
    temp_ops.append("WrongCountT")

    @tf.op("WrongCountT", inputs={"x": m.reals, "y": m.reals}, signature="broadcast")
    def wrong_count(x, y):
        return x + y

    @wrong_count.gradient
    def _(op, grad):
        return [grad]

    with tf.Graph().as_default():
        a, b = tf.constant([1.0]), tf.constant([2.0])
        out = wrong_count(a, b, name="wc")
        with pytest.raises(ValueError) as info:
            tf.gradients(out, [a])
    message = str(info.value)
    assert "Num gradients 1 generated for op wc (op type: WrongCountT)" in message
    assert "num inputs 2" in message


def test_gradient_of_wrong_static_shape_is_value_error(temp_ops):
    temp_ops.append("WrongShapeT")

    @tf.op("WrongShapeT", inputs={"x": m.reals})
    def wrong_shape(x):
        return x

    @wrong_shape.gradient
    def _(op, grad):
        return tf.reshape(grad, [-1, 1]) * tf.ones([1, 3])

    with tf.Graph().as_default():
        a = tf.constant([1.0, 2.0])
        with pytest.raises(ValueError) as info:
            tf.gradients(wrong_shape(a, name="ws"), [a])
    message = str(info.value)
    assert message.startswith("Incompatible shapes between op input and calculated input "
                              "gradient.")
    assert "Forward operation: ws." in message
    assert "(2,)" in message and "(2, 3)" in message


def test_gradient_of_wrong_shape_at_run_time_is_invalid_argument(temp_ops):
    temp_ops.append("WrongShapeDynT")

    @tf.op("WrongShapeDynT", inputs={"x": m.reals})
    def wrong_shape(x):
        return x

    @wrong_shape.gradient
    def _(op, grad):
        return tf.reshape(grad, [-1, 1]) * tf.ones([1, 3])

    with tf.Graph().as_default():
        p = tf.placeholder(tf.float32, [None])
        (g,) = tf.gradients(wrong_shape(p, name="wsd"), [p])  # (?, 3) vs (?,): not provable
        assert g.shape.as_list() == [None]
        with tf.Session() as sess, pytest.raises(errors.InvalidArgumentError) as info:
            sess.run(g, {p: [1.0, 2.0]})
    e = info.value
    assert "Incompatible shapes between op input and calculated input gradient" in e.message
    assert "Forward operation: wsd." in e.message
    assert e.op is g.op


def test_reached_op_without_gradient_is_lookup_error(temp_ops):
    temp_ops.append("NoGradT")

    @tf.op("NoGradT", inputs={"x": m.reals})
    def no_grad(x):
        return x

    with tf.Graph().as_default():
        a = tf.constant([1.0])
        y = no_grad(a, name="mine") * 2.0
        with pytest.raises(LookupError) as info:
            tf.gradients(y, [a])
        assert str(info.value) == ("No gradient defined for operation 'mine' (op type: "
                                   "NoGradT)")
        # not on a path from xs to ys: not reached, no error
        b = tf.constant([3.0])
        (gb,) = tf.gradients(y + b, [b])
        assert gb is not None


def test_non_differentiable_op_passes_none(temp_ops):
    temp_ops.append("BlockT")

    @tf.op("BlockT", inputs={"x": m.reals}, differentiable=False)
    def block(x):
        return x

    with tf.Graph().as_default():
        a = tf.constant([1.0, 2.0])
        assert tf.gradients(block(a), [a]) == [None]
        y = block(a) + a * 3.0
        (g,) = tf.gradients(y, [a])
        with tf.Session() as sess:
            np.testing.assert_array_equal(sess.run(g), [3.0, 3.0])


def test_gradient_returned_in_broadcast_shape_is_reduced_centrally(temp_ops):
    temp_ops.append("BcastMulT")

    @tf.op("BcastMulT", inputs={"x": m.reals, "y": m.reals}, signature="broadcast")
    def bmul(x, y):
        return x * y

    @bmul.gradient
    def _(op, grad):  # no unbroadcasting here: the machinery does it
        return [grad * op.inputs[1], grad * op.inputs[0]]

    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    y = np.array([0.5, -1.0, 2.0])
    _, (gx, gy), w = vjp(lambda a, b: bmul(a, b), [x, y], seed=3)
    np.testing.assert_allclose(gx, w * y, rtol=1e-12)
    np.testing.assert_allclose(gy, np.sum(w * x, axis=0), rtol=1e-12)
