"""``tf.train.Saver``: save and restore variables of a session (format: ``checkpoint.py``).

A Saver fixes, when it is built, which variables it handles and under which names (TF1: the
op name, ``dense/kernel``). ``save`` reads their values in a session and writes one
checkpoint atomically, then updates the ``checkpoint`` index and deletes checkpoints beyond
``max_to_keep``; ``restore`` checks every variable against the file first (a missing one is
``NotFoundError``, a shape or dtype mismatch ``InvalidArgumentError`` naming the variable and
both shapes) and only then assigns, so a failed restore changes nothing.

>>> import os, tempfile
>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     w = tf.Variable([1.0, 2.0], name="w")
...     saver = tf.train.Saver(max_to_keep=2)
...     with tf.Session() as s:
...         _ = s.run(w.initializer)
...         path = saver.save(s, os.path.join(tempfile.mkdtemp(), "model.ckpt"), global_step=7)
...         _ = s.run(w.assign([0.0, 0.0]))
...         saver.restore(s, tf.train.latest_checkpoint(os.path.dirname(path)))
...         os.path.basename(path), s.run(w).tolist()
('model.ckpt-7', [1.0, 2.0])
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from gradverify.engine import checkpoint as _ckpt
from gradverify.engine import errors
from gradverify.engine.graph import GraphKeys, Tensor, get_default_graph
from gradverify.engine.registry import export
from gradverify.engine.variables import Variable

__all__ = ["Saver"]


def _named_variables(var_list: Any) -> dict[str, Variable]:
    """checkpoint name -> Variable, from a list (names are op names) or a dict."""
    if isinstance(var_list, Mapping):
        items = list(var_list.items())
        for name, _ in items:
            if not isinstance(name, str):
                raise TypeError(f"Saver var_list keys must be names (str), got {name!r}")
    else:
        if isinstance(var_list, (Variable, Tensor)):
            var_list = [var_list]
        items = [(v.op.name if isinstance(v, Variable) else repr(v), v) for v in var_list]
    out: dict[str, Variable] = {}
    for name, v in items:
        if not isinstance(v, Variable):
            raise TypeError(f"Variable to save is not a Variable: {v!r}")
        if name in out:
            raise ValueError(f"At least two variables have the same name: {name}")
        out[name] = v
    return out


@export("train.Saver")
class Saver:
    """Saves and restores variables (TF1 ``tf.train.Saver``).

    var_list: None (every global variable existing now), a list of Variables (saved under
    their op names) or a dict name -> Variable. max_to_keep: how many recent checkpoints
    this Saver keeps on disk (None or 0: all, and the index lists only the newest).
    keep_checkpoint_every_n_hours: additionally keep one checkpoint per that many hours.
    reshape: allow restoring a value of another shape with the same number of elements.

    >>> import gradverify.engine as tf
    >>> with tf.Graph().as_default():
    ...     _ = tf.Variable(1.0, name="a"); _ = tf.Variable(2.0, name="b")
    ...     sorted(tf.train.Saver()._variables)
    ['a', 'b']
    """

    def __init__(self, var_list: Any = None, reshape: bool = False, sharded: bool = False,
                 max_to_keep: int | None = 5, keep_checkpoint_every_n_hours: float = 10000.0,
                 name: str | None = None, restore_sequentially: bool = False,
                 saver_def: Any = None, builder: Any = None, defer_build: bool = False,
                 allow_empty: bool = False, write_version: int = 2,
                 pad_step_number: bool = False, save_relative_paths: bool = False,
                 filename: str | None = None) -> None:
        if var_list is None:
            var_list = get_default_graph().get_collection(GraphKeys.GLOBAL_VARIABLES)
        self._variables = _named_variables(var_list)
        if not self._variables and not allow_empty:
            raise ValueError("No variables to save")
        self._reshape = bool(reshape)
        self._max_to_keep = max_to_keep
        self._keep_every = float(keep_checkpoint_every_n_hours) * 3600.0
        self._next_keep_time = time.time() + self._keep_every
        self._pad_step_number = bool(pad_step_number)
        self._filename = filename
        self._last: list[tuple[str, float]] = []  # (prefix, time saved), oldest first

    def build(self) -> None:
        """Nothing to build: the engine's Saver adds no ops to the graph."""

    # -- the kept checkpoints --------------------------------------------------------------
    @property
    def last_checkpoints(self) -> list[str]:
        """Prefixes of the checkpoints this Saver still keeps, oldest first."""
        return [p for p, _ in self._last]

    def set_last_checkpoints(self, last_checkpoints: list[str]) -> None:
        """Replace the kept list (without touching files)."""
        self._last = [(p, time.time()) for p in last_checkpoints]

    def recover_last_checkpoints(self, checkpoint_paths: list[str]) -> None:
        """Adopt the checkpoints of an earlier run that still exist (e.g. from
        ``get_checkpoint_state(dir).all_model_checkpoint_paths``), so ``max_to_keep``
        counts them."""
        self._last = [(p, os.path.getmtime(p + _ckpt.DATA_SUFFIX))
                      for p in checkpoint_paths if _ckpt.checkpoint_exists(p)]

    def _record(self, prefix: str) -> list[str]:
        """Add ``prefix`` to the kept list; return the prefixes to delete."""
        if not self._max_to_keep:
            return []
        self._last = [(p, t) for p, t in self._last if p != prefix]
        self._last.append((prefix, time.time()))
        doomed = []
        while len(self._last) > self._max_to_keep:
            p, t = self._last.pop(0)
            if t > self._next_keep_time:  # one checkpoint per keep_checkpoint_every_n_hours
                self._next_keep_time += self._keep_every
            else:
                doomed.append(p)
        return doomed

    # -- save / restore --------------------------------------------------------------------
    def save(self, sess: Any, save_path: str, global_step: Any = None,
             latest_filename: str | None = None, meta_graph_suffix: str = "meta",
             write_meta_graph: bool = True, write_state: bool = True,
             strip_default_attrs: bool = False, save_debug_info: bool = False) -> str | None:
        """Write the variables' values in ``sess`` to ``save_path`` (``-<global_step>``
        appended when given); returns the checkpoint prefix. The meta graph is not written
        (``write_meta_graph`` is accepted and ignored)."""
        if not self._variables:
            return None
        if global_step is not None:
            step = sess.run(global_step) if isinstance(global_step, (Tensor, Variable)) \
                else global_step
            step = int(np.asarray(step))
            save_path = (f"{save_path}-{step:08d}" if self._pad_step_number
                         else f"{save_path}-{step}")
        directory = os.path.dirname(os.path.abspath(save_path))
        if not os.path.isdir(directory):
            raise ValueError(f"Parent directory of {save_path} doesn't exist, can't save.")
        names = list(self._variables)
        values = sess.run([self._variables[n].value() for n in names])
        _ckpt.write_arrays(save_path, dict(zip(names, values)))
        if write_state:
            doomed = self._record(save_path)
            _ckpt.update_checkpoint_state(directory, save_path, self.last_checkpoints,
                                          latest_filename)
            for p in doomed:  # only after the index no longer names them
                _ckpt.remove_checkpoint(p)
        return save_path

    def restore(self, sess: Any, save_path: str | None) -> None:
        """Set every variable of this Saver in ``sess`` from checkpoint ``save_path``.

        All are checked before any is assigned: a variable missing from the file raises
        NotFoundError, a shape or dtype mismatch InvalidArgumentError, each naming the
        variable (and both shapes)."""
        if save_path is None:
            raise ValueError("Can't load save_path when it is None.")
        if not _ckpt.checkpoint_exists(save_path):
            raise ValueError(f"The passed save_path is not a valid checkpoint: {save_path}")
        arrays = _ckpt.read_arrays(save_path)
        ready = []
        for name, var in self._variables.items():
            ready.append((var, self._checked(name, var, arrays, save_path)))
        for var, value in ready:
            var.load(value, sess)

    def _checked(self, name: str, var: Variable, arrays: dict[str, np.ndarray],
                 save_path: str) -> np.ndarray:
        if name not in arrays:
            raise errors.NotFoundError(
                None, var.op, f"Restoring from checkpoint failed: key {name} (variable "
                f"{var.name}) not found in checkpoint {save_path}")
        value = arrays[name]
        want = var.shape
        if not want.is_compatible_with(value.shape):
            if self._reshape and want.is_fully_defined() and \
                    int(np.prod(want.as_list())) == value.size:
                value = value.reshape(want.as_list())
            else:
                raise errors.InvalidArgumentError(
                    None, var.op, f"Restoring from checkpoint failed: shape mismatch for "
                    f"variable {var.op.name}: the graph has shape {want.as_tf_str()}, "
                    f"checkpoint {save_path} has shape {list(value.shape)}")
        if value.dtype != var.dtype.np:
            raise errors.InvalidArgumentError(
                None, var.op, f"Restoring from checkpoint failed: dtype mismatch for "
                f"variable {var.op.name} of shape {want.as_tf_str()}: expected dtype "
                f"{var.dtype.name} does not equal original dtype {value.dtype.name} (shape "
                f"{list(value.shape)}) in checkpoint {save_path}")
        return value
