"""What a random training model does between its loss and its update: the gradient
pipelines and learning-rate schedules people write, as TF1 code lines.

``PIPELINES``: ``minimize`` (one call), or ``compute_gradients`` → a transformation →
``apply_gradients`` (``clip_by_global_norm``, ``clip_by_value``, ``clip_by_norm``, a
``scale``, seeded Gaussian ``noise``), or ``hand_written``: ``tf.gradients`` and one
``assign_sub(learning_rate * grad)`` per variable (plus ``assign_add(global_step, 1)``),
grouped. A ``schedule`` learning rate is ``exponential_decay`` on the global step.

>>> PIPELINES[0], "hand_written" in PIPELINES
('minimize', True)
"""

from __future__ import annotations

from typing import Any

__all__ = ["PIPELINES", "TRANSFORMS", "train_lines", "schedule_lines"]

TRANSFORMS = {
    "clip_by_value": "tf.clip_by_value(g, -0.05, 0.05)",
    "clip_by_norm": "tf.clip_by_norm(g, 0.1)",
    "scale": "g * 0.5",
    "noise": "g + tf.random_normal(g.shape.as_list(), stddev=0.01, seed={k}, dtype={dt})",
}
PIPELINES = ("minimize", "clip_by_global_norm", *TRANSFORMS, "hand_written")


def schedule_lines(dt: str, base: float) -> list[str]:
    """A learning rate decaying by half every 2 steps, read from the pre-step global step."""
    return ["global_step = tf.train.get_or_create_global_step()",
            f"learning_rate = tf.cast(tf.train.exponential_decay({base!r}, global_step, 2, "
            f"0.5), {dt})"]


def train_lines(model: Any, var_list: str | None, lr: str) -> list[str]:
    """The lines from ``loss`` to ``train_op`` for ``model.pipeline``; ``var_list`` is the
    code of the var_list argument (or None), ``lr`` the learning rate's code."""
    step = ", global_step=global_step" if model.global_step else ""
    listed = f", var_list={var_list}" if var_list is not None else ""
    kind = model.pipeline
    if kind == "minimize":
        return [f"train_op = optimizer.minimize(loss{step}{listed})"]
    if kind == "hand_written":
        names = var_list or "tf.trainable_variables()"
        lines = [f"tvars = {names}",
                 "pairs = [(g, v) for g, v in zip(tf.gradients(loss, tvars), tvars) "
                 "if g is not None]",
                 f"updates = [v.assign_sub({lr} * g) for g, v in pairs]"]
        if model.global_step:
            lines.append("updates.append(tf.assign_add(global_step, 1))")
        return [*lines, "train_op = tf.group(*updates)"]
    lines = [f"pairs = [(g, v) for g, v in optimizer.compute_gradients(loss{listed}) "
             "if g is not None]"]
    if kind == "clip_by_global_norm":
        lines.append("grads, _ = tf.clip_by_global_norm([g for g, _ in pairs], 0.5)")
    else:
        code = TRANSFORMS[kind].format(k="k", dt=f"tf.{model.dtype}")
        lines.append(f"grads = [{code} for k, (g, _) in enumerate(pairs)]")
    lines.append(f"train_op = optimizer.apply_gradients(zip(grads, [v for _, v in pairs])"
                 f"{step})")
    return lines
