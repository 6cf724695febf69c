"""train.Saver: round trips, the checkpoint index, max_to_keep, restore errors, and crash
safety (a save killed at any moment never corrupts the previous checkpoint)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.engine import errors


def _model(graph: tf.Graph):
    with graph.as_default():
        w = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
        b = tf.Variable(np.zeros(3, np.float64), name="scope/b")
        step = tf.train.get_or_create_global_step()
    return w, b, step


def test_round_trip_restores_values_dtypes_and_shapes(tmp_path):
    g = tf.Graph()
    w, b, _ = _model(g)
    with g.as_default():
        saver = tf.train.Saver()
    with tf.Session(graph=g) as s:
        s.run(tf.variables_initializer([w, b]))
        s.run(b.assign([1.5, -2.0, 3.25]))
        s.run(g.get_collection(tf.GraphKeys.GLOBAL_STEP)[0].initializer)
        path = saver.save(s, str(tmp_path / "model.ckpt"))
        assert path == str(tmp_path / "model.ckpt")
    with tf.Session(graph=g) as s2:  # a fresh session: nothing initialised
        saver.restore(s2, path)
        got_w, got_b = s2.run([w, b])
    assert got_w.dtype == np.float32 and got_b.dtype == np.float64
    np.testing.assert_array_equal(got_w, np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(got_b, [1.5, -2.0, 3.25])
    assert sorted(tf.train.list_variables(path)) == [
        ("global_step", []), ("scope/b", [3]), ("w", [2, 3])]
    np.testing.assert_array_equal(tf.train.load_variable(str(tmp_path), "scope/b:0"),
                                  [1.5, -2.0, 3.25])


def test_global_step_suffix_from_int_tensor_and_variable(tmp_path):
    g = tf.Graph()
    w, _, step = _model(g)
    with g.as_default():
        saver = tf.train.Saver([w])
        bump = step.assign_add(41)
    with tf.Session(graph=g) as s:
        s.run(tf.variables_initializer([w, step]))
        assert saver.save(s, str(tmp_path / "m"), global_step=3).endswith("m-3")
        s.run(bump)
        assert saver.save(s, str(tmp_path / "m"), global_step=step).endswith("m-41")
        assert saver.save(s, str(tmp_path / "m"), global_step=np.int64(5)).endswith("m-5")
    assert tf.train.latest_checkpoint(str(tmp_path)) == str(tmp_path / "m-5")


def test_index_file_is_tf_text_format_with_relative_paths(tmp_path):
    g = tf.Graph()
    w, _, _ = _model(g)
    with g.as_default():
        saver = tf.train.Saver({"renamed": w}, max_to_keep=3)
    with tf.Session(graph=g) as s:
        s.run(w.initializer)
        for i in (1, 2):
            saver.save(s, str(tmp_path / "model.ckpt"), global_step=i)
    text = (tmp_path / "checkpoint").read_text()
    assert text.splitlines() == [
        'model_checkpoint_path: "model.ckpt-2"',
        'all_model_checkpoint_paths: "model.ckpt-1"',
        'all_model_checkpoint_paths: "model.ckpt-2"']
    assert list(np.load(tmp_path / "model.ckpt-2.npz").files) == ["renamed"]
    moved = tmp_path.parent / (tmp_path.name + "_moved")  # relative paths survive a move
    shutil.copytree(tmp_path, moved)
    assert tf.train.latest_checkpoint(str(moved)) == str(moved / "model.ckpt-2")
    state = tf.train.get_checkpoint_state(str(moved))
    assert state.all_model_checkpoint_paths == [str(moved / "model.ckpt-1"),
                                                str(moved / "model.ckpt-2")]


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_max_to_keep_deletes_the_oldest(tmp_path, keep):
    g = tf.Graph()
    w, _, _ = _model(g)
    with g.as_default():
        saver = tf.train.Saver([w], max_to_keep=keep)
    with tf.Session(graph=g) as s:
        s.run(w.initializer)
        for i in range(5):
            saver.save(s, str(tmp_path / "c"), global_step=i)
        saver.save(s, str(tmp_path / "c"), global_step=4)  # re-saving a kept one: no dup
    expected = [f"c-{i}" for i in range(5 - keep, 5)]
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [e + ".npz" for e in expected]
    assert saver.last_checkpoints == [str(tmp_path / e) for e in expected]
    assert tf.train.get_checkpoint_state(str(tmp_path)).all_model_checkpoint_paths == \
        saver.last_checkpoints


@pytest.mark.parametrize("keep", [None, 0])
def test_max_to_keep_none_keeps_every_file_and_indexes_the_newest(tmp_path, keep):
    g = tf.Graph()
    w, _, _ = _model(g)
    with g.as_default():
        saver = tf.train.Saver([w], max_to_keep=keep)
    with tf.Session(graph=g) as s:
        s.run(w.initializer)
        for i in range(4):
            saver.save(s, str(tmp_path / "c"), global_step=i)
    assert len(list(tmp_path.glob("*.npz"))) == 4
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert state.all_model_checkpoint_paths == [str(tmp_path / "c-3")]


def test_recover_last_checkpoints_counts_an_earlier_runs_files(tmp_path):
    g = tf.Graph()
    w, _, _ = _model(g)
    with g.as_default():
        first, second = tf.train.Saver([w], max_to_keep=2), tf.train.Saver([w], max_to_keep=2)
    with tf.Session(graph=g) as s:
        s.run(w.initializer)
        for i in range(2):
            first.save(s, str(tmp_path / "c"), global_step=i)
        second.recover_last_checkpoints(
            tf.train.get_checkpoint_state(str(tmp_path)).all_model_checkpoint_paths)
        second.save(s, str(tmp_path / "c"), global_step=2)
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["c-1.npz", "c-2.npz"]


def _saved_with_w(tmp_path, value, dtype=np.float32, name="w"):
    g = tf.Graph()
    with g.as_default():
        v = tf.Variable(np.asarray(value, dtype), name=name)
        saver = tf.train.Saver()
        with tf.Session() as s:
            s.run(v.initializer)
            return saver.save(s, str(tmp_path / "src"))


def test_restore_missing_variable_is_not_found_naming_it(tmp_path):
    path = _saved_with_w(tmp_path, [1.0, 2.0])
    with tf.Graph().as_default():
        w = tf.Variable([0.0, 0.0], name="w")
        extra = tf.Variable(5.0, name="layer/extra")
        saver = tf.train.Saver()
        with tf.Session() as s:
            s.run(tf.global_variables_initializer())
            with pytest.raises(errors.NotFoundError, match="layer/extra") as e:
                saver.restore(s, path)
            assert e.value.op is extra.op
            assert s.run(w).tolist() == [0.0, 0.0]  # nothing assigned: all checked first


def test_restore_shape_mismatch_names_variable_and_both_shapes(tmp_path):
    path = _saved_with_w(tmp_path, [[1.0, 2.0, 3.0]])
    with tf.Graph().as_default():
        tf.Variable(np.zeros((3, 1), np.float32), name="w")
        saver = tf.train.Saver()
        with tf.Session() as s, pytest.raises(errors.InvalidArgumentError) as e:
            saver.restore(s, path)
    msg = str(e.value)
    assert "variable w" in msg and "[3,1]" in msg and "[1, 3]" in msg


def test_restore_with_reshape_accepts_same_size(tmp_path):
    path = _saved_with_w(tmp_path, [[1.0, 2.0, 3.0]])
    with tf.Graph().as_default():
        w = tf.Variable(np.zeros((3, 1), np.float32), name="w")
        saver = tf.train.Saver(reshape=True)
        with tf.Session() as s:
            saver.restore(s, path)
            assert s.run(w).ravel().tolist() == [1.0, 2.0, 3.0]


def test_restore_dtype_mismatch_is_invalid_argument(tmp_path):
    path = _saved_with_w(tmp_path, [1.0, 2.0], dtype=np.float64)
    with tf.Graph().as_default():
        tf.Variable(np.zeros(2, np.float32), name="w")
        saver = tf.train.Saver()
        with tf.Session() as s, pytest.raises(errors.InvalidArgumentError,
                                              match=r"w.*float32.*float64"):
            saver.restore(s, path)


def test_bad_paths_and_arguments(tmp_path):
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="No variables to save"):
            tf.train.Saver()
        v = tf.Variable(1.0, name="v")
        with pytest.raises(ValueError, match="same name: v"):
            tf.train.Saver([v, v])
        with pytest.raises(TypeError, match="not a Variable"):
            tf.train.Saver([v.value()])
        saver = tf.train.Saver()
        with tf.Session() as s:
            with pytest.raises(ValueError, match="None"):
                saver.restore(s, None)
            with pytest.raises(ValueError, match="not a valid checkpoint"):
                saver.restore(s, str(tmp_path / "nothing"))
            with pytest.raises(ValueError, match="Parent directory"):
                saver.save(s, str(tmp_path / "no" / "dir" / "m"))
            with pytest.raises(errors.FailedPreconditionError, match="uninitialized"):
                saver.save(s, str(tmp_path / "m"))
    assert tf.train.latest_checkpoint(str(tmp_path)) is None
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(errors.DataLossError):
        tf.train.list_variables(str(tmp_path / "x"))


# -- crash safety ----------------------------------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import numpy.lib.format as fmt
    import gradverify.engine as tf

    directory, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with tf.Graph().as_default():
        a = tf.Variable(tf.zeros([n]), name="a")
        b = tf.Variable(tf.zeros([n]), name="b")
        saver = tf.train.Saver(max_to_keep=2)
        with tf.Session() as s:
            s.run(tf.global_variables_initializer())
            step = 0
            while True:
                step += 1
                if mode == "pause" and step == 2:   # stop half-way through one array
                    real = fmt.write_array
                    def torn(fp, array, *args, **kw):
                        fp.write(array.tobytes()[: array.nbytes // 2])
                        fp.flush()
                        print("MID", flush=True)
                        time.sleep(600)
                    fmt.write_array = torn
                a.load(np.full(n, step, np.float32), s)
                b.load(np.full(n, -step, np.float32), s)
                saver.save(s, directory + "/model.ckpt", global_step=step)
                print(step, flush=True)
""")


def _start_writer(directory, mode, n):
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(directory), mode, str(n)],
                            stdout=subprocess.PIPE, text=True)


def _assert_latest_is_consistent(directory):
    latest = tf.train.latest_checkpoint(str(directory))
    assert latest is not None
    step = int(latest.rsplit("-", 1)[1])
    with tf.Graph().as_default():
        a = tf.Variable(tf.zeros([1]), name="a", validate_shape=False)
        b = tf.Variable(tf.zeros([1]), name="b", validate_shape=False)
        saver = tf.train.Saver()
        with tf.Session() as s:
            saver.restore(s, latest)
            got_a, got_b = s.run([a, b])
    assert np.all(got_a == step) and np.all(got_b == -step)
    return step


def test_save_killed_mid_write_keeps_the_previous_checkpoint(tmp_path):
    proc = _start_writer(tmp_path, "pause", 200_000)
    try:
        assert proc.stdout.readline().strip() == "1"
        assert proc.stdout.readline().strip() == "MID"  # checkpoint 2 is half written
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert _assert_latest_is_consistent(tmp_path) == 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers, "the torn save should have been a temporary file"
    assert not (tmp_path / "model.ckpt-2.npz").exists()


@pytest.mark.parametrize("seed", [0, 1])
def test_save_killed_at_random_moments_never_corrupts(tmp_path, seed):
    delays = np.random.default_rng(seed).uniform(0.0, 0.05, size=3)
    proc = _start_writer(tmp_path, "loop", 300_000)
    try:
        assert proc.stdout.readline().strip() == "1"
        for d in delays:  # kill, check, restart from the surviving files, repeat
            time.sleep(d)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            _assert_latest_is_consistent(tmp_path)
            proc = _start_writer(tmp_path, "loop", 300_000)
            assert proc.stdout.readline().strip() == "1"
    finally:
        proc.kill()
        proc.wait(timeout=30)
