"""``tf.device``, ``ConfigProto``, ``GPUOptions``: accepted and recorded; everything runs on
the CPU.

TF1 programs pin ops to devices and configure sessions; the engine honours the program by
recording the requested device on every op made inside ``with tf.device(...)`` (in TF's
canonical spelling, ``/cpu:0`` -> ``/device:CPU:0``; a function of the op may pick it) and
by keeping the session configuration, which changes nothing about where or how ops run.

>>> import gradverify.engine as tf
>>> with tf.Graph().as_default():
...     with tf.device("/gpu:0"):
...         a = tf.constant(1.0)
...     with tf.device(lambda op: "/cpu:0" if op.type == "Const" else None):
...         b = tf.constant(2.0); c = a + b
...     a.device, b.device, c.device
('/device:GPU:0', '/cpu:0', '')
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from gradverify.engine.graph import get_default_graph
from gradverify.engine.registry import export

__all__ = ["device", "canonical_device", "ConfigProto", "GPUOptions", "GraphOptions",
           "OptimizerOptions", "RunOptions", "RunMetadata"]

_SHORT = re.compile(r"^(cpu|gpu|tpu):(\d+|\*)$", re.IGNORECASE)
_PART = re.compile(r"^(job:[\w.-]+|replica:\d+|task:\d+|device:[\w]+:(\d+|\*)|"
                   r"(cpu|gpu|tpu):(\d+|\*))$", re.IGNORECASE)


def canonical_device(spec: str | None) -> str | None:
    """TF's spelling of a device string; ValueError naming it if it is not one.

    >>> canonical_device("/job:worker/task:1/gpu:0")
    '/job:worker/task:1/device:GPU:0'
    """
    if spec is None or spec == "":
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string or a function, got {spec!r}")
    parts = [p for p in spec.split("/") if p]
    out = []
    for p in parts:
        if not _PART.match(p):
            raise ValueError(f"Unknown attribute: '{p}' in '{spec}'")
        m = _SHORT.match(p)
        out.append(f"device:{m.group(1).upper()}:{m.group(2)}" if m else p)
    return "/" + "/".join(out)


@export("device")
def device(device_name_or_function: Any) -> Any:
    """``with tf.device("/cpu:0"):`` — record the device on the ops built inside."""
    return get_default_graph().device(device_name_or_function)


class _Options:
    """A protobuf-like options message: known fields with defaults, settable by keyword or
    attribute; an unknown field is an error, as in protobuf (ValueError naming it)."""

    _fields: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        for k, v in self._fields.items():
            object.__setattr__(self, k, v() if callable(v) else v)
        for k, v in kwargs.items():
            setattr(self, k, v)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._fields:
            raise AttributeError(f"Protocol message {type(self).__name__} has no "
                                 f"\"{name}\" field.")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        set_ = {k: getattr(self, k) for k, v in self._fields.items()
                if not callable(v) and getattr(self, k) != v}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in set_.items())})"


@export("GPUOptions")
class GPUOptions(_Options):
    """Accepted for compatibility: there is no GPU (``allow_growth``, memory fraction)."""

    _fields: ClassVar[dict[str, Any]] = {
        "per_process_gpu_memory_fraction": 0.0, "allow_growth": False,
        "allocator_type": "", "visible_device_list": "",
        "deferred_deletion_bytes": 0, "polling_active_delay_usecs": 0,
        "force_gpu_compatible": False}


@export("OptimizerOptions")
class OptimizerOptions(_Options):
    _fields: ClassVar[dict[str, Any]] = {
        "do_common_subexpression_elimination": False, "do_constant_folding": False,
        "opt_level": 0, "do_function_inlining": False, "global_jit_level": 0}
    L1, L0 = 0, -1
    OFF, ON_1, ON_2 = -1, 1, 2


@export("GraphOptions")
class GraphOptions(_Options):
    _fields: ClassVar[dict[str, Any]] = {
        "optimizer_options": OptimizerOptions, "enable_bfloat16_sendrecv": False,
        "build_cost_model": 0, "infer_shapes": False, "place_pruned_graph": False}


@export("ConfigProto")
class ConfigProto(_Options):
    """Session configuration, kept on ``Session.config`` and otherwise ignored (one CPU
    thread pool: the NumPy kernels').

    >>> c = ConfigProto(allow_soft_placement=True, gpu_options=GPUOptions(allow_growth=True))
    >>> c.gpu_options.allow_growth, c.log_device_placement
    (True, False)
    """

    _fields: ClassVar[dict[str, Any]] = {
        "device_count": dict, "intra_op_parallelism_threads": 0,
        "inter_op_parallelism_threads": 0, "use_per_session_threads": False,
        "allow_soft_placement": False, "log_device_placement": False,
        "gpu_options": GPUOptions, "graph_options": GraphOptions,
        "operation_timeout_in_ms": 0, "isolate_session_state": False}


@export("RunOptions")
class RunOptions(_Options):
    """Accepted by ``Session.run(options=...)``; tracing is not supported (ignored)."""

    _fields: ClassVar[dict[str, Any]] = {
        "trace_level": 0, "timeout_in_ms": 0, "inter_op_thread_pool": 0,
        "output_partition_graphs": False, "report_tensor_allocations_upon_oom": False}
    NO_TRACE, SOFTWARE_TRACE, HARDWARE_TRACE, FULL_TRACE = 0, 1, 2, 3


@export("RunMetadata")
class RunMetadata(_Options):
    _fields: ClassVar[dict[str, Any]] = {
        "step_stats": None, "cost_graph": None, "partition_graphs": list}
