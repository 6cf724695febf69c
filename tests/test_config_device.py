"""tf.device (recorded on ops, canonical spelling, functions, nesting, None), ConfigProto,
GPUOptions and Session(config=...)."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf


def test_device_is_recorded_on_ops_tensors_and_variables(graph):
    with tf.device("/gpu:1"):
        a = tf.constant(1.0)
        v = tf.Variable(2.0, name="v")
        with tf.device("/job:worker/task:0/cpu:0"):
            b = a * 2.0
        with tf.device(None):
            c = a + 1.0
        d = a - 1.0
    e = a / 2.0
    assert a.device == a.op.device == "/device:GPU:1"
    assert v.device == v.op.device == "/device:GPU:1"
    assert b.device == "/job:worker/task:0/device:CPU:0"
    assert (c.device, d.device, e.device) == ("", "/device:GPU:1", "")
    with tf.Session() as s:  # everything still runs, on the CPU
        s.run(v.initializer)
        assert s.run([b, c, d, e, v]) == [2.0, 2.0, 0.0, 0.5, 2.0]


def test_device_function_picks_per_op(graph):
    def assign_device(op):
        return "/cpu:0" if op.type.startswith("Variable") else "/gpu:0"
    with tf.device(assign_device):
        v = tf.Variable(1.0, name="v")
        y = v * 3.0
    assert v.op.device == "/cpu:0" and y.op.device == "/gpu:0"


def test_device_per_thread_stack_is_restored_after_errors(graph):
    with pytest.raises(RuntimeError), tf.device("/cpu:0"):
        raise RuntimeError
    assert tf.constant(1.0).device == ""
    with pytest.raises(ValueError, match="Unknown attribute: 'bogus'"), tf.device("/bogus"):
        pass


def test_config_proto_and_gpu_options():
    config = tf.ConfigProto(allow_soft_placement=True, log_device_placement=False,
                            device_count={"GPU": 0})
    config.gpu_options.allow_growth = True
    config.gpu_options.per_process_gpu_memory_fraction = 0.4
    assert config.gpu_options.allow_growth and config.device_count == {"GPU": 0}
    assert tf.ConfigProto().gpu_options.allow_growth is False  # fields are per instance
    with pytest.raises(AttributeError, match="no \"allow_grwth\" field"):
        tf.GPUOptions(allow_grwth=True)
    tf.ConfigProto(gpu_options=tf.GPUOptions(per_process_gpu_memory_fraction=0.5))


def test_session_takes_a_config_and_rejects_other_objects(graph):
    x = tf.constant(np.arange(3.0))
    config = tf.ConfigProto(gpu_options=tf.GPUOptions(allow_growth=True))
    with tf.Session(config=config) as s:
        assert s.config is config
        assert s.run(x).tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(TypeError, match=r"config must be a tf\.ConfigProto"):
        tf.Session(config={"allow_soft_placement": True})
    opts = tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)
    with tf.Session() as s:
        assert s.run(x, options=opts, run_metadata=tf.RunMetadata()).shape == (3,)
