"""``tf.summary.FileWriter``: TensorBoard event files, written by TensorBoard's own writer.

The event file format (TFRecord framing with masked CRC32C, ``Event`` protocol buffers) is
TensorBoard's; this module only builds the ``Event`` messages and hands them to
``tensorboard.summary.writer.event_file_writer.EventFileWriter``, which queues them and
writes ``events.out.tfevents.<time>.<host>`` files from a background thread. It needs the
optional extra: ``pip install 'gradverify[tensorboard]'``.

>>> import tempfile
>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     loss = tf.summary.scalar("loss", tf.constant(0.25))
...     with tf.Session() as s:
...         w = tf.summary.FileWriter(tempfile.mkdtemp(), s.graph)
...         w.add_summary(s.run(loss), global_step=3)
...         w.close()
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from gradverify.engine.dtypes import DType
from gradverify.engine.shapes import TensorShape

__all__ = ["FileWriter", "graph_def"]

_EXTRA_HINT = ("tf.summary.FileWriter writes TensorBoard event files with the 'tensorboard' "
               "package, which is not installed. Install the optional extra: "
               "pip install 'gradverify[tensorboard]'  (or: pip install tensorboard)")


def _tensorboard() -> Any:
    """TensorBoard's writer and protobuf modules, or ImportError naming the extra."""
    try:
        from tensorboard.compat.proto import (
            attr_value_pb2,
            event_pb2,
            graph_pb2,
            summary_pb2,
            tensor_shape_pb2,
            types_pb2,
        )
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as e:
        raise ImportError(_EXTRA_HINT) from e
    return {"EventFileWriter": EventFileWriter, "event": event_pb2, "graph": graph_pb2,
            "summary": summary_pb2, "attr": attr_value_pb2, "shape": tensor_shape_pb2,
            "types": types_pb2}


def _shape_proto(tb: dict, shape: TensorShape) -> Any:
    proto = tb["shape"].TensorShapeProto()
    if shape.ndims is None:
        proto.unknown_rank = True
        return proto
    for d in shape.as_list():
        proto.dim.add(size=-1 if d is None else int(d))
    return proto


def _attr(tb: dict, value: Any) -> Any:
    """An ``AttrValue`` for the attribute kinds TensorBoard shows; None for the rest."""
    a = tb["attr"].AttrValue()
    if isinstance(value, DType):
        a.type = tb["types"].DataType.Value("DT_" + value.proto_name.upper())
    elif isinstance(value, bool):
        a.b = value
    elif isinstance(value, (int, np.integer)):
        a.i = int(value)
    elif isinstance(value, (float, np.floating)):
        a.f = float(value)
    elif isinstance(value, str):
        a.s = value.encode("utf-8")
    elif isinstance(value, TensorShape):
        a.shape.CopyFrom(_shape_proto(tb, value))
    else:
        return None
    return a


def graph_def(graph: Any) -> Any:
    """The ``GraphDef`` TensorBoard draws: every op with its type, inputs (``^`` for
    control inputs), device, simple attributes and ``_output_shapes``."""
    tb = _tensorboard()
    gd = tb["graph"].GraphDef()
    for op in graph.get_operations():
        node = gd.node.add(name=op.name, op=op.type, device=op.device)
        node.input.extend([t.name[:-2] if t.name.endswith(":0") else t.name
                           for t in op.inputs] + ["^" + c.name for c in op.control_inputs])
        for key, value in op.attrs.items():
            a = _attr(tb, value)
            if a is not None:
                node.attr[key].CopyFrom(a)
        if op.outputs:
            shapes = node.attr["_output_shapes"].list.shape
            shapes.extend([_shape_proto(tb, t.shape) for t in op.outputs])
    return gd


class FileWriter:
    """Writes summaries and the graph to an event file in ``logdir`` (TF1 signature).

    ``add_summary`` takes what a summary op returned from ``session.run`` (serialized
    bytes) or a ``Summary`` protobuf; ``global_step`` becomes the event's step.
    """

    def __init__(self, logdir: str, graph: Any = None, max_queue: int = 10,
                 flush_secs: float = 120, graph_def: Any = None,
                 filename_suffix: str | None = None, session: Any = None) -> None:
        self._tb = _tensorboard()
        self._logdir = str(logdir)
        self._args = (max_queue, flush_secs, filename_suffix or "")
        self._writer = self._open()
        self._closed = False
        if graph is not None or graph_def is not None:
            self.add_graph(graph, graph_def=graph_def)

    def _open(self) -> Any:
        max_queue, flush_secs, suffix = self._args
        return self._tb["EventFileWriter"](self._logdir, max_queue_size=max_queue,
                                           flush_secs=flush_secs, filename_suffix=suffix)

    def get_logdir(self) -> str:
        return self._logdir

    def add_event(self, event: Any) -> None:
        """Write an ``Event`` protobuf as is."""
        if self._closed:
            raise RuntimeError("FileWriter is closed; call reopen() to write again.")
        self._writer.add_event(event)

    def _event(self, global_step: Any, **fields: Any) -> Any:
        event = self._tb["event"].Event(wall_time=time.time(), **fields)
        if global_step is not None:
            event.step = int(np.asarray(global_step))
        return event

    def add_summary(self, summary: Any, global_step: Any = None) -> None:
        """Write one summary (bytes from ``session.run`` or a ``Summary`` protobuf)."""
        proto_class = self._tb["summary"].Summary
        if isinstance(summary, np.ndarray):
            summary = summary.item()
        if isinstance(summary, (bytes, bytearray)):
            summary = proto_class.FromString(bytes(summary))
        if not isinstance(summary, proto_class):
            raise TypeError(f"add_summary expects a serialized Summary (the value of a "
                            f"summary op) or a Summary protobuf, got {type(summary).__name__}")
        self.add_event(self._event(global_step, summary=summary))

    def add_graph(self, graph: Any, global_step: Any = None, graph_def: Any = None) -> None:
        """Write ``graph`` (an engine Graph) or a ``GraphDef`` for TensorBoard's graph tab."""
        gd = graph_def if graph_def is not None else globals()["graph_def"](graph)
        self.add_event(self._event(global_step, graph_def=gd.SerializeToString()))

    def add_session_log(self, session_log: Any, global_step: Any = None) -> None:
        self.add_event(self._event(global_step, session_log=session_log))

    def flush(self) -> None:
        """Write everything queued to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the file; ``reopen`` starts a new one."""
        if not self._closed:
            self._writer.close()
            self._closed = True

    def reopen(self) -> None:
        if self._closed:
            self._writer = self._open()
            self._closed = False

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
