"""Graph construction: names, scopes, default graphs, collections, control dependencies,
static shape and dtype checks (spec/tf1-semantics.md section 1, errors of section 7)."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine.shapes import TensorShape


def _run(fetches, feed_dict=None):
    with tf.Session() as s:
        return s.run(fetches, feed_dict)


# -- op and tensor names ---------------------------------------------------------------------
def test_default_op_name_is_op_type_and_repeats_are_uniquified(graph):
    a = tf.constant([[1.0, 2.0]])
    b = tf.constant([[3.0], [4.0]])
    m0 = tf.matmul(a, b)
    m1 = tf.matmul(a, b)
    m2 = tf.matmul(a, b)
    assert [a.op.name, b.op.name] == ["Const", "Const_1"]
    assert [m0.op.name, m1.op.name, m2.op.name] == ["MatMul", "MatMul_1", "MatMul_2"]
    assert m0.op.type == "MatMul"
    assert [op.name for op in graph.get_operations()] == [
        "Const", "Const_1", "MatMul", "MatMul_1", "MatMul_2"]


def test_uniquification_is_case_insensitive(graph):
    a = tf.constant([[1.0]])
    first = tf.matmul(a, a)
    second = tf.matmul(a, a)
    lower = tf.matmul(a, a, name="matmul")  # collides with "MatMul" ignoring case, like TF
    assert (first.op.name, second.op.name, lower.op.name) == ("MatMul", "MatMul_1", "matmul_2")


def test_explicit_name_is_used_and_uniquified(graph):
    x = tf.constant(1.0, name="x")
    x1 = tf.constant(2.0, name="x")
    assert (x.name, x1.name) == ("x:0", "x_1:0")


def test_unique_name_skips_names_already_taken(graph):
    a = tf.constant(1.0, name="c_1")
    b = tf.constant(1.0, name="c")
    c = tf.constant(1.0, name="c")  # "c_1" is taken: the next free suffix is used
    assert (a.op.name, b.op.name) == ("c_1", "c")
    assert c.op.name == "c_2"


def test_tensor_name_is_op_name_colon_output_index(graph):
    c = tf.constant([1.0, 2.0], name="k")
    assert c.name == "k:0"
    assert c.value_index == 0
    assert c.op.outputs == (c,)
    assert c.graph is graph


# -- name scopes ---------------------------------------------------------------------------
def test_name_scope_prefixes_op_names(graph):
    with tf.name_scope("layer") as scope:
        c = tf.constant(1.0)
        d = tf.constant(1.0, name="bias")
    assert scope == "layer/"
    assert c.name == "layer/Const:0"
    assert d.name == "layer/bias:0"
    assert tf.constant(1.0).name == "Const:0"  # scope closed again


def test_reopened_name_scope_gets_suffix(graph):
    with tf.name_scope("s") as first:
        a = tf.constant(1.0)
    with tf.name_scope("s") as second:
        b = tf.constant(1.0)
    with tf.name_scope("s") as third:
        c = tf.constant(1.0)
    assert (first, second, third) == ("s/", "s_1/", "s_2/")
    assert (a.name, b.name, c.name) == ("s/Const:0", "s_1/Const:0", "s_2/Const:0")


def test_nested_name_scopes(graph):
    with tf.name_scope("outer"):
        with tf.name_scope("inner") as inner:
            c = tf.constant(1.0)
        d = tf.constant(1.0)
    assert inner == "outer/inner/"
    assert c.name == "outer/inner/Const:0"
    assert d.name == "outer/Const:0"


def test_name_scope_with_trailing_slash_is_reused_verbatim(graph):
    with tf.name_scope("s") as scope:
        a = tf.constant(1.0)
    with tf.name_scope(scope) as again:  # "s/": re-enter the same scope, no "_1"
        b = tf.constant(1.0)
    assert again == "s/"
    assert (a.name, b.name) == ("s/Const:0", "s/Const_1:0")


def test_name_scope_none_resets_to_top_level(graph):
    with tf.name_scope("outer"):
        with tf.name_scope(None) as top:
            c = tf.constant(1.0)
        with tf.name_scope("") as top2:
            d = tf.constant(1.0)
    assert top == "" and top2 == ""
    assert (c.name, d.name) == ("Const:0", "Const_1:0")


def test_python_scalar_constant_is_named_under_the_op(graph):
    x = tf.constant(1.0)
    y = x + 2.0
    assert y.op.name == "add"
    assert y.op.inputs[1].op.type == "Const"
    assert y.op.inputs[1].name == "add/y:0"


# -- Python operators ----------------------------------------------------------------------
def test_python_operators_name_ops_like_tf(graph):
    a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    b = tf.constant([[5.0, 6.0], [7.0, 8.0]])
    s, d, p, q, mm, n = a + b, a - b, a * b, a / b, a @ b, -a
    assert [t.op.name for t in (s, d, p, q, mm, n)] == [
        "add", "sub", "mul", "truediv", "matmul", "Neg"]
    assert [t.op.type for t in (s, d, p, q, mm, n)] == [
        "Add", "Sub", "Mul", "RealDiv", "MatMul", "Neg"]
    va, vb = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0, 6.0], [7.0, 8.0]])
    got = _run([s, d, p, q, mm, n])
    for g, want in zip(got, [va + vb, va - vb, va * vb, va / vb, va @ vb, -va]):
        np.testing.assert_allclose(g, want, rtol=1e-6)
    again = a + b
    assert again.op.name == "add_1"


def test_pow_operator_names_op_pow(graph):
    a = tf.constant([2.0, 3.0])
    p = a ** 2.0
    assert p.op.name == "pow"
    np.testing.assert_allclose(_run(p), [4.0, 9.0])


def test_reflected_operators_put_the_scalar_first(graph):
    x = tf.constant([1.0, 4.0])
    r = 2.0 - x
    q = 8.0 / x
    assert r.op.name == "sub" and q.op.name == "truediv"
    assert r.op.inputs[1] is x and q.op.inputs[1] is x
    np.testing.assert_array_equal(_run(r), [1.0, -2.0])
    np.testing.assert_array_equal(_run(q), [8.0, 2.0])


def test_numpy_array_on_the_left_defers_to_tensor(graph):
    x = tf.constant([1.0, 2.0])
    y = np.array([10.0, 20.0], dtype=np.float32) + x
    assert isinstance(y, tf.Tensor)
    np.testing.assert_array_equal(_run(y), [11.0, 22.0])


def test_python_scalar_operand_takes_float32_tensor_dtype(graph):
    x = tf.constant([1.5, 2.5])  # float32
    y = x + 2
    assert y.dtype == tf.float32
    const = y.op.inputs[1]
    assert const.op.type == "Const" and const.dtype == tf.float32
    out = _run(y)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [3.5, 4.5])


def test_python_scalar_operand_is_exact_in_float64(graph):
    x = tf.constant(1.0, dtype=tf.float64)
    y = x + 0.1
    assert y.dtype == tf.float64
    assert y.op.inputs[1].dtype == tf.float64
    out = _run(y)
    assert out.dtype == np.float64
    assert out == 1.0 + 0.1  # through float32 it would be 1.100000001490116
    assert _run(y.op.inputs[1]) == np.float64(0.1)


def test_python_float_operand_for_integer_tensor_is_a_type_error(graph):
    i = tf.constant(1)
    assert i.dtype == tf.int32
    assert (i + 2).dtype == tf.int32
    with pytest.raises(TypeError, match=r"Expected int32, got 2\.5"):
        i + 2.5


# -- Variables' ops ------------------------------------------------------------------------
def test_variable_creates_its_four_ops(graph):
    v = tf.Variable([1.0, 2.0])
    names = {op.name: op.type for op in graph.get_operations()}
    assert set(names) == {"Variable", "Variable/initial_value", "Variable/Assign",
                          "Variable/read"}
    assert names["Variable/initial_value"] == "Const"
    assert names["Variable/Assign"] == "Assign"
    assert names["Variable/read"] == "Identity"
    assert v.name == "Variable:0"
    assert v.op.name == "Variable"
    assert v.initializer.name == "Variable/Assign"
    assert v.value().name == "Variable/read:0"
    v2 = tf.Variable(0.0)
    assert v2.name == "Variable_1:0"
    assert v2.initializer.name == "Variable_1/Assign"


# -- which graph an op goes into -------------------------------------------------------------
def test_new_op_goes_into_graph_of_first_tensor_input():
    g1 = tf.Graph()
    with g1.as_default():
        a = tf.constant(1.0)
    g2 = tf.Graph()
    with g2.as_default():
        b = tf.identity(a)  # default is g2, but the input lives in g1
        c = a + 1.0
    assert b.graph is g1 and c.graph is g1
    assert c.op.inputs[1].graph is g1
    assert g2.get_operations() == []
    assert b.op in g1.get_operations()


def test_op_without_inputs_goes_into_default_graph():
    g = tf.Graph()
    with g.as_default():
        c = tf.constant(1.0)
    assert c.graph is g
    assert tf.constant(2.0).graph is tf.get_default_graph()
    assert tf.get_default_graph() is not g


def test_mixing_graphs_raises_value_error():
    g1, g2 = tf.Graph(), tf.Graph()
    with g1.as_default():
        a = tf.constant(1.0)
    with g2.as_default():
        b = tf.constant(2.0)
    with pytest.raises(ValueError, match="must be from the same graph"):
        tf.add(a, b)
    with pytest.raises(ValueError, match="must be from the same graph"):
        a + b
    with pytest.raises(ValueError, match="must be from the same graph"):
        tf.matmul(tf.reshape(a, [1, 1]), tf.reshape(b, [1, 1]))
    assert [op.type for op in g1.get_operations()].count("Add") == 0


# -- the default graph ---------------------------------------------------------------------
def test_as_default_pushes_and_pops():
    outer = tf.get_default_graph()
    g1, g2 = tf.Graph(), tf.Graph()
    with g1.as_default() as entered:
        assert entered is g1
        assert tf.get_default_graph() is g1
        with g2.as_default():
            assert tf.get_default_graph() is g2
        assert tf.get_default_graph() is g1
    assert tf.get_default_graph() is outer


def test_global_default_graph_is_lazy_and_stable():
    g = tf.get_default_graph()
    assert tf.get_default_graph() is g
    tf.reset_default_graph()
    assert tf.get_default_graph() is not g


def test_default_graph_is_per_thread():
    pushed = tf.Graph()
    global_graph = tf.get_default_graph()
    seen = {}

    def other_thread():
        seen["other"] = tf.get_default_graph()

    with pushed.as_default():
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert tf.get_default_graph() is pushed
    assert seen["other"] is not pushed
    assert seen["other"] is global_graph  # nothing pushed there: the global graph


def test_graph_pushed_in_another_thread_is_not_default_here():
    mine = tf.get_default_graph()
    entered = threading.Event()
    release = threading.Event()
    seen = {}

    def other_thread():
        g = tf.Graph()
        with g.as_default():
            seen["graph"] = g
            seen["inside"] = tf.get_default_graph()
            entered.set()
            release.wait(5)

    t = threading.Thread(target=other_thread)
    t.start()
    try:
        assert entered.wait(5)
        assert tf.get_default_graph() is mine
        assert seen["inside"] is seen["graph"]
    finally:
        release.set()
        t.join()


def test_reset_default_graph_inside_as_default_raises():
    g = tf.Graph()
    with g.as_default():
        with pytest.raises(AssertionError, match="nested graphs"):
            tf.reset_default_graph()
        assert tf.get_default_graph() is g


def test_reset_default_graph_gives_fresh_names():
    tf.constant(1.0)
    tf.reset_default_graph()
    assert tf.constant(1.0).name == "Const:0"
    assert len(tf.get_default_graph().get_operations()) == 1


# -- collections ---------------------------------------------------------------------------
def test_collections_keep_creation_order(graph):
    items = [tf.constant(float(i), name=f"c{i}") for i in range(5)]
    for t in items[::1]:
        tf.add_to_collection("things", t)
    assert tf.get_collection("things") == items
    assert graph.get_collection("things") == items
    assert tf.get_collection("missing") == []


def test_get_collection_returns_a_copy(graph):
    tf.add_to_collection("k", 1)
    got = tf.get_collection("k")
    got.append(2)
    got.clear()
    assert tf.get_collection("k") == [1]
    ref = tf.get_collection_ref("k")
    ref.append(3)
    assert tf.get_collection("k") == [1, 3]


def test_get_collection_scope_filters_by_name_prefix(graph):
    with tf.name_scope("a"):
        va = tf.Variable(1.0)
    with tf.name_scope("b"):
        vb = tf.Variable(2.0)
    assert tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES) == [va, vb]
    assert tf.get_collection(tf.GraphKeys.GLOBAL_VARIABLES, scope="b") == [vb]


# -- control dependencies --------------------------------------------------------------------
def test_control_dependencies_are_recorded(graph):
    a = tf.constant(1.0)
    b = tf.constant(2.0)
    with tf.control_dependencies([a, b.op]):
        c = tf.constant(3.0)
        with tf.control_dependencies([c]):
            d = tf.identity(a)
    e = tf.constant(4.0)
    assert c.op.control_inputs == [a.op, b.op]
    assert d.op.control_inputs == [a.op, b.op, c.op]
    assert e.op.control_inputs == []
    assert d.op.node_def["input"] == ["Const:0", "^Const", "^Const_1", "^Const_2"]


def test_control_dependencies_none_clears_outer(graph):
    a = tf.constant(1.0)
    with tf.control_dependencies([a]):
        with tf.control_dependencies(None):
            b = tf.constant(2.0)
            c = tf.constant(2.5)
            with tf.control_dependencies([c]):
                d = tf.constant(3.0)
        e = tf.constant(4.0)
    assert b.op.control_inputs == []
    assert d.op.control_inputs == [c.op]
    assert e.op.control_inputs == [a.op]


def test_control_dependencies_reject_non_ops(graph):
    with pytest.raises(TypeError, match="Control input must be Operation or Tensor"), \
            tf.control_dependencies([3]):
        pass


# -- static shapes and dtypes ----------------------------------------------------------------
def test_matmul_static_shape_mismatch_has_tf_message(graph):
    a = tf.constant(np.ones((2, 3), np.float32))
    b = tf.constant(np.ones((4, 2), np.float32))
    n_ops = len(graph.get_operations())
    with pytest.raises(ValueError) as info:
        tf.matmul(a, b)
    assert str(info.value) == ("Dimensions must be equal, but are 3 and 4 for 'MatMul' (op: "
                               "'MatMul') with input shapes: [2,3], [4,2].")
    assert len(graph.get_operations()) == n_ops  # the failed op was not added


def test_broadcast_static_shape_mismatch_is_value_error_naming_op(graph):
    a = tf.constant(np.ones((2, 3), np.float32))
    b = tf.constant(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError) as info:
        tf.add(a, b, name="plus")
    msg = str(info.value)
    assert "Dimensions must be equal, but are 3 and 4" in msg
    assert "'plus' (op: 'Add')" in msg
    assert "[2,3], [2,4]" in msg


def test_static_shape_inference_at_build_time(graph):
    x = tf.placeholder(tf.float32, [None, 784])
    w = tf.constant(np.ones((784, 10), np.float32))
    y = tf.matmul(x, w)
    assert y.shape.as_list() == [None, 10]
    s = tf.reduce_sum(y, axis=1)
    assert s.shape.as_list() == [None]
    assert tf.reduce_sum(y).shape.as_list() == []
    t = tf.transpose(y)
    assert t.shape.as_list() == [10, None]
    e = tf.expand_dims(s, 0)
    assert e.shape.as_list() == [1, None]
    r = tf.reshape(x, [-1, 28, 28])
    assert r.shape.as_list() == [None, 28, 28]


def test_unknown_dims_merge(graph):
    a = tf.placeholder(tf.float32, [None, 3])
    b = tf.placeholder(tf.float32, [2, None])
    assert (a + b).shape.as_list() == [2, 3]
    c = tf.placeholder(tf.float32, [None, None])
    assert (a * c).shape.as_list() == [None, 3]
    m1 = tf.matmul(tf.placeholder(tf.float32, [None, 3]), tf.placeholder(tf.float32, [None, 5]))
    assert m1.shape.as_list() == [None, 5]
    m2 = tf.matmul(tf.placeholder(tf.float32, [4, None]), tf.placeholder(tf.float32, [3, 5]))
    assert m2.shape.as_list() == [4, 5]
    u = tf.placeholder(tf.float32)  # unknown rank
    assert (u + a).shape.ndims is None


def test_set_shape_merges_and_rejects_conflicts(graph):
    p = tf.placeholder(tf.float32, [None, 3])
    p.set_shape([5, None])
    assert p.shape.as_list() == [5, 3]
    with pytest.raises(ValueError):
        p.set_shape([4, 3])
    assert p.shape.as_list() == [5, 3]


def test_dtype_mismatch_is_type_error_with_tf_message(graph):
    x = tf.constant(1.0)
    y = tf.constant(1.0, dtype=tf.float64)
    with pytest.raises(TypeError) as info:
        tf.add(x, y)
    assert str(info.value) == ("Input 'y' of 'Add' Op has type float64 that does not match "
                               "type float32 of argument 'x'.")
    with pytest.raises(TypeError, match="Input 'b' of 'MatMul' Op has type float64"):
        tf.matmul(tf.reshape(x, [1, 1]), tf.reshape(y, [1, 1]))


def test_tensor_bool_and_len_raise_type_error(graph):
    x = tf.constant([1.0, 2.0])
    with pytest.raises(TypeError, match=re.escape(
            "Using a `tf.Tensor` as a Python `bool` is not allowed")):
        bool(x)
    with pytest.raises(TypeError, match=re.escape("Using a `tf.Tensor`")):
        if x:
            pass
    with pytest.raises(TypeError, match="len is not well defined for symbolic Tensors"):
        len(x)


def test_tensors_hash_by_identity(graph):
    a = tf.constant(1.0)
    b = tf.constant(1.0)
    d = {a: 1, b: 2}
    assert d[a] == 1 and d[b] == 2
    same = a
    assert (a == same) is True and (a == b) is False


# -- lookups by name -----------------------------------------------------------------------
def test_get_tensor_and_operation_by_name(graph):
    with tf.name_scope("s"):
        c = tf.constant(1.0, name="c")
    assert graph.get_tensor_by_name("s/c:0") is c
    assert graph.get_operation_by_name("s/c") is c.op
    assert graph.as_graph_element("s/c:0") is c
    assert graph.as_graph_element("s/c") is c.op


def test_get_tensor_by_name_errors(graph):
    tf.constant(1.0, name="c")
    with pytest.raises(KeyError, match=re.escape(
            "The name 'nope:0' refers to a Tensor which does not exist. The operation, "
            "'nope', does not exist")):
        graph.get_tensor_by_name("nope:0")
    with pytest.raises(KeyError, match="exists but only has 1 outputs"):
        graph.get_tensor_by_name("c:1")
    with pytest.raises(ValueError, match="looks a like an Operation name, not a Tensor name"):
        graph.get_tensor_by_name("c")
    with pytest.raises(TypeError):
        graph.get_tensor_by_name(3)


def test_get_operation_by_name_errors(graph):
    with pytest.raises(KeyError, match="The name 'nope' refers to an Operation not in the "
                                       "graph"):
        graph.get_operation_by_name("nope")
    with pytest.raises(TypeError):
        graph.get_operation_by_name(None)


def test_as_graph_element_rejects_other_graphs(graph):
    other = tf.Graph()
    with other.as_default():
        c = tf.constant(1.0)
    with pytest.raises(ValueError, match="is not an element of this graph"):
        graph.as_graph_element(c)


# -- TensorShape -----------------------------------------------------------------------------
def test_tensor_shape_printing():
    assert str(TensorShape([None, 784])) == "(?, 784)"
    assert str(TensorShape([3])) == "(3,)"
    assert str(TensorShape([])) == "()"
    assert str(TensorShape(None)) == "<unknown>"
    assert TensorShape([None, 784]).as_tf_str() == "[?,784]"


def test_placeholder_shape_prints_like_tf(graph):
    p = tf.placeholder(tf.float32, [None, 784])
    assert str(p.shape) == "(?, 784)"
    assert p.get_shape().as_list() == [None, 784]
    assert p.name == "Placeholder:0"
    assert repr(p) == "<tf.Tensor 'Placeholder:0' shape=(?, 784) dtype=float32>"


def test_tensor_shape_merge_and_compatibility():
    s = TensorShape([None, 784])
    assert s.merge_with([32, None]).as_list() == [32, 784]
    assert s.merge_with(None).as_list() == [None, 784]
    assert TensorShape(None).merge_with(s) == s
    assert s.is_compatible_with([5, 784])
    assert s.is_compatible_with(TensorShape(None))
    assert not s.is_compatible_with([5, 783])
    assert not s.is_compatible_with([784])
    with pytest.raises(ValueError):
        s.merge_with([1, 2])
    with pytest.raises(ValueError):
        s.merge_with([1, 784, 1])
    assert not s.is_fully_defined()
    assert s.num_elements() is None
    assert TensorShape([2, 3]).num_elements() == 6
    assert s.ndims == 2 and TensorShape(None).ndims is None
    assert s[0].value is None and s[1].value == 784
    assert TensorShape([2, 3]) == [2, 3]
    assert TensorShape([2, None]) != [2, 3]
