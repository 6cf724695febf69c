"""The bytes of TensorFlow's ``Summary`` protocol buffer, for scalar and histogram values.

A summary op's output must be a real serialized ``Summary`` (users pass it to
``FileWriter.add_summary``, and merging summaries is byte concatenation, because repeated
fields of concatenated messages append), yet the ops must work without the optional
TensorBoard extra that brings the protobuf classes. So the two messages they emit are
encoded here, field by field, from the ``summary.proto`` schema:

- ``Summary { repeated Value value = 1; }``
- ``Value { string tag = 1; float simple_value = 2; HistogramProto histo = 5; }``
- ``HistogramProto { double min = 1; double max = 2; double num = 3; double sum = 4;
  double sum_squares = 5; repeated double bucket_limit = 6 [packed]; repeated double
  bucket = 7 [packed]; }``

The tests decode these bytes with TensorBoard's own protobuf classes.

>>> scalar_summary("loss", 1.0).hex()
'0a0b0a046c6f737315' + '0000803f'
"""

from __future__ import annotations

import struct
import sys

import numpy as np

__all__ = ["scalar_summary", "histogram_summary", "DEFAULT_BUCKET_LIMITS"]

_LEN, _I64, _I32 = 2, 1, 5  # wire types: length-delimited, 64-bit, 32-bit


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, _LEN) + _varint(len(payload)) + payload


def _double_field(field: int, x: float) -> bytes:
    return _key(field, _I64) + struct.pack("<d", x)


def _summary(value: bytes) -> bytes:
    return _bytes_field(1, value)


def scalar_summary(tag: str, value: float) -> bytes:
    """A serialized ``Summary`` with one ``simple_value`` (stored as float32, as in TF)."""
    return _summary(_bytes_field(1, tag.encode("utf-8"))
                    + _key(2, _I32) + struct.pack("<f", np.float32(value)))


def _default_bucket_limits() -> np.ndarray:
    # TF's histogram::Histogram default: limits growing by 10% from 1e-12 to 1e20, mirrored
    # for negatives, with 0 between and +-DBL_MAX at the ends. Same float steps as TF's loop.
    pos = []
    v = 1.0e-12
    while v < 1.0e20:
        pos.append(v)
        v *= 1.1
    pos.append(sys.float_info.max)
    return np.array([-x for x in reversed(pos)] + [0.0] + pos)


DEFAULT_BUCKET_LIMITS = _default_bucket_limits()


def histogram_summary(tag: str, values: np.ndarray) -> bytes:
    """A serialized ``Summary`` with the histogram of ``values`` in TF's default buckets
    (bucket i counts values below ``bucket_limit[i]``; runs of empty buckets collapse into
    one, as TF's ``EncodeToProto``). ``values`` must be finite."""
    x = np.asarray(values, dtype=np.float64).ravel()
    counts = np.bincount(np.searchsorted(DEFAULT_BUCKET_LIMITS, x, side="right"),
                         minlength=len(DEFAULT_BUCKET_LIMITS))[:len(DEFAULT_BUCKET_LIMITS)]
    limits, kept = [], []
    i, n = 0, len(counts)
    while i < n:
        end, count = DEFAULT_BUCKET_LIMITS[i], counts[i]
        i += 1
        if count <= 0:
            while i < n and counts[i] <= 0:
                end, count = DEFAULT_BUCKET_LIMITS[i], counts[i]
                i += 1
        limits.append(end)
        kept.append(float(count))
    lo = float(x.min()) if x.size else sys.float_info.max
    hi = float(x.max()) if x.size else -sys.float_info.max
    histo = (_double_field(1, lo) + _double_field(2, hi) + _double_field(3, float(x.size))
             + _double_field(4, float(x.sum())) + _double_field(5, float(np.dot(x, x)))
             + _bytes_field(6, struct.pack(f"<{len(limits)}d", *limits))
             + _bytes_field(7, struct.pack(f"<{len(kept)}d", *kept)))
    return _summary(_bytes_field(1, tag.encode("utf-8")) + _bytes_field(5, histo))
