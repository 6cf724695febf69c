"""``gradverify explain`` / ``audit`` on the training programs of issue 12: the gradient
pipeline per variable, the schedule's current value, where each update comes from, the same
in DOT, and a faulty program's rule in the audit."""

from __future__ import annotations

import re

from gradverify.cli import main

PIPELINE_SCRIPT = '''
import numpy as np
import gradverify.engine as tf

x = tf.placeholder(tf.float32, [None, 3])
w = tf.Variable(np.ones((3, 1), np.float32), name="w")
counter = tf.Variable(0.0, trainable=False, name="counter")
loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - 1.0))
global_step = tf.train.get_or_create_global_step()
learning_rate = tf.train.exponential_decay(0.1, global_step, 10, 0.5)
opt = tf.train.AdamOptimizer(learning_rate)
grads, tvars = zip(*opt.compute_gradients(loss))
clipped, _ = tf.clip_by_global_norm(grads, 1.0)
train_op = tf.group(opt.apply_gradients(zip(clipped, tvars), global_step=global_step),
                    counter.assign_add(1.0))


def make_feed(step):
    return {x: np.random.default_rng(step).standard_normal((4, 3)).astype(np.float32)}
'''

OFF_BY_ONE_SCRIPT = PIPELINE_SCRIPT.replace(
    "exponential_decay(0.1, global_step, 10, 0.5)",
    "exponential_decay(0.1, global_step + 1, 10, 0.5)")


def _section(text: str, name: str) -> str:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"  {name} "))
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"  \S", lines[i])),
               len(lines))
    return "\n".join(lines[start:end])


def test_explain_shows_pipeline_schedule_and_sources(tmp_path, capsys):
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE_SCRIPT)
    dot = tmp_path / "g.dot"
    assert main(["explain", str(script), "--dot", str(dot)]) == 0
    out = capsys.readouterr().out
    w = _section(out, "w")
    assert re.search(r"updated by \S+: adam — ", w)
    assert "pipeline: loss → gradients → clip_by_global_norm → apply(adam)" in w
    assert "learning_rate = 0.1 at step 0" in w
    assert "from: Adam (adam)" in w
    counter = _section(out, "counter")
    assert "assign_add by hand" in counter and "(hand-written)" in counter
    assert "incremented by 1" in _section(out, "global_step")
    text = dot.read_text()
    assert "clip_by_global_norm → apply(adam)" in text
    assert text.count("{") == text.count("}")


def test_audit_passes_the_pipeline_and_fails_the_off_by_one_schedule(tmp_path, capsys):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(PIPELINE_SCRIPT)
    bad.write_text(OFF_BY_ONE_SCRIPT)
    assert main(["audit", str(good), "--steps", "3"]) == 0
    assert "PASS: 3 steps, 0 failed" in capsys.readouterr().out
    assert main(["audit", str(bad), "--steps", "2"]) == 1
    out = capsys.readouterr().out
    assert "(rule: schedule step)" in out and "w: the learning_rate of w's update" in out
    assert "pipeline: loss → gradients → clip_by_global_norm → apply(adam)" in out
