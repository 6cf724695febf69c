"""tf.summary: tags as TF1 names them, the Summary bytes (decoded with TensorBoard's own
protobuf classes), histogram bucketing, errors, and FileWriter event files read back with
TensorBoard's EventAccumulator. Tests needing the ``tensorboard`` extra skip without it
(``tox -e summaries`` installs it)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradverify.engine as tf
from gradverify.engine import errors
from gradverify.engine.summary_proto import DEFAULT_BUCKET_LIMITS, histogram_summary


def _tb():
    return pytest.importorskip("tensorboard.compat.proto.summary_pb2")


# -- ops and tags (no extra needed) ----------------------------------------------------------
def test_tags_follow_name_scopes_uniquing_family_and_cleaning(graph):
    a = tf.summary.scalar("loss", 1.0)
    b = tf.summary.scalar("loss", 2.0)
    with tf.name_scope("train"):
        c = tf.summary.scalar("acc uracy", 3.0)
    d = tf.summary.histogram("w", [1.0], family="weights")
    tags = [t.op.get_attr("tag") for t in (a, b, c, d)]
    assert tags == ["loss", "loss_1", "train/acc_uracy", "weights/weights/w"]
    assert [t.op.name for t in (a, b, c)] == ["loss", "loss_1", "train/acc_uracy"]
    assert tf.get_collection(tf.GraphKeys.SUMMARIES) == [a, b, c, d]


def test_collections_argument_and_merge_all(graph):
    assert tf.summary.merge_all() is None
    s = tf.summary.scalar("x", 1.0, collections=["mine"])
    assert tf.get_collection(tf.GraphKeys.SUMMARIES) == []
    merged = tf.summary.merge_all(key="mine")
    assert merged.op.type == "MergeSummary" and merged.op.name == "Merge/MergeSummary"
    assert merged.op.inputs == (s,)
    with pytest.raises(ValueError, match="at least one"):
        tf.summary.merge([])


def test_scalar_summary_bytes_follow_the_wire_format(graph):
    # Summary{value: [Value{tag: "loss" (field 1), simple_value: 1.0f (field 2)}]}
    out = tf.Session().run(tf.summary.scalar("loss", tf.constant(1.0)))
    assert out == bytes.fromhex("0a0b" "0a046c6f7373" "15" "0000803f")


def test_merge_concatenates_serialized_summaries(graph):
    a = tf.summary.scalar("a", tf.constant(1.5))
    b = tf.summary.histogram("b", tf.constant([1.0, 2.0]))
    s = tf.Session()
    va, vb, vm = s.run([a, b, tf.summary.merge([a, b])])
    assert vm == va + vb


def test_scalar_of_non_scalar_is_an_error_at_build_or_run(graph):
    with pytest.raises(ValueError, match=r"not the same shape: \[\] != \[2\]"):
        tf.summary.scalar("v", tf.zeros([2]))
    p = tf.placeholder(tf.float32, None)
    s = tf.summary.scalar("v", p)
    with pytest.raises(errors.InvalidArgumentError, match=r"\[3\].*tag 'v_1'") as e:
        tf.Session().run(s, {p: [1.0, 2.0, 3.0]})
    assert e.value.op is s.op


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_histogram_of_non_finite_values_is_invalid_argument(graph, bad):
    p = tf.placeholder(tf.float64, [3])
    h = tf.summary.histogram("weights", p)
    with pytest.raises(errors.InvalidArgumentError, match="Nan in summary histogram for: "
                                                          "weights"):
        tf.Session().run(h, {p: [1.0, bad, 2.0]})


def test_summary_ops_take_integers(graph):
    s = tf.Session()
    assert s.run(tf.summary.scalar("n", tf.constant(3, tf.int64)))[-4:] == \
        np.float32(3).tobytes()
    s.run(tf.summary.histogram("h", tf.constant([1, 2, 2], tf.int32)))


# -- decoded with TensorBoard's protobuf classes ---------------------------------------------
_HARD = st.one_of(
    st.floats(-1e30, 1e30, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-12, -1e-12, 1e-15, 1e20, -1e20, 1.0, 1.1, 5e-324]))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                               max_side=6), elements=_HARD))
def test_histogram_matches_its_definition(values):
    summary_pb2 = _tb()
    (v,) = summary_pb2.Summary.FromString(histogram_summary("h", values)).value
    h = v.histo
    x = values.ravel()
    assert v.tag == "h" and h.num == x.size
    assert h.sum == pytest.approx(x.sum(), rel=1e-12, abs=1e-300)
    assert h.sum_squares == pytest.approx(np.dot(x, x), rel=1e-12, abs=1e-300)
    if x.size:
        assert (h.min, h.max) == (x.min(), x.max())
    limits, counts = np.array(h.bucket_limit), np.array(h.bucket)
    assert len(limits) == len(counts) >= 1 and np.all(np.diff(limits) > 0)
    assert set(limits) <= set(DEFAULT_BUCKET_LIMITS)
    # every value lies in the first listed bucket whose upper limit exceeds it
    expect = np.zeros(len(limits))
    for value in x:
        expect[np.argmax(limits > value)] += 1
    np.testing.assert_array_equal(counts, expect)
    assert counts.sum() == x.size
    # runs of empty buckets are collapsed: no two empty buckets are adjacent
    assert not np.any((counts[:-1] == 0) & (counts[1:] == 0))


def test_scalar_decodes_with_tensorboard(graph):
    summary_pb2 = _tb()
    with tf.name_scope("eval"):
        s = tf.summary.scalar("loss", tf.constant(0.1, tf.float64))
    (v,) = summary_pb2.Summary.FromString(tf.Session().run(s)).value
    assert v.tag == "eval/loss" and v.simple_value == np.float32(0.1)


# -- FileWriter ------------------------------------------------------------------------------
def test_file_writer_without_the_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    for mod in [m for m in sys.modules if m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, mod, None)
    with pytest.raises(ImportError, match=r"gradverify\[tensorboard\]"):
        tf.summary.FileWriter(str(tmp_path))


def test_file_writer_events_read_back_by_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 2], name="x")
        with tf.device("/cpu:0"):
            w = tf.Variable([[1.0], [-1.0]], name="w")
        loss = tf.reduce_mean(tf.square(tf.matmul(x, w)))
        step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
        tf.summary.scalar("loss", loss)
        tf.summary.histogram("w", w)  # tag w_1, as in TF1: the op name "w" is taken
        merged = tf.summary.merge_all()
        feed = {x: np.random.default_rng(0).normal(size=(8, 2))}
        expected = {}
        with tf.Session() as s:
            writer = tf.summary.FileWriter(str(tmp_path), s.graph)
            s.run(tf.global_variables_initializer())
            for i in (0, 5, 10, 15):
                summ, value, _ = s.run([merged, loss, step], feed)
                writer.add_summary(summ, global_step=i)
                expected[i] = np.float32(value)
            writer.flush()
            writer.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"loss"} and acc.Tags()["histograms"] == ["w_1"]
    events = acc.Scalars("loss")
    assert [e.step for e in events] == [0, 5, 10, 15]
    assert [e.value for e in events] == [expected[i] for i in (0, 5, 10, 15)]
    assert expected[15] < expected[0]
    assert [h.histogram_value.num for h in acc.Histograms("w_1")] == [2, 2, 2, 2]
    nodes = {n.name: n for n in acc.Graph().node}
    assert nodes["MatMul"].op == "MatMul" and list(nodes["MatMul"].input) == ["x", "w/read"]
    assert nodes["w"].device == "/device:CPU:0"


def test_file_writer_rejects_non_summaries_and_closed_writes(tmp_path):
    pytest.importorskip("tensorboard")
    writer = tf.summary.FileWriter(str(tmp_path))
    with pytest.raises(TypeError, match="serialized Summary"):
        writer.add_summary(3.0)
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.add_summary(b"")
    writer.reopen()
    writer.add_summary(b"", global_step=1)
    writer.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
