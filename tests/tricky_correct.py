"""Tricky but correct gradients: every input here once made the checker FAIL a correct
engine (or is a classic trap). Each must PASS, or be INCONCLUSIVE / NOT_APPLICABLE with
the reason given - never FAIL, in any mode, at any seed.

``CASES``: (name, function of engine tensors, inputs, order, allowed non-PASS codes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import gradverify.engine as tf
from gradverify.engine.ops.math_ops import _clip_by_value
from gradverify.engine.ops.nn_ops import _softmax_xent
from gradverify.harness.reasons import Reason

F32 = np.float32


def _sce(z: Any, y: Any) -> Any:
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)


def _softmax_xent_both(z: Any, y: Any) -> Any:
    # both outputs of the raw op (loss and backprop), as the op property checks them
    return list(_softmax_xent(z, y))


def _clip_raw(t: Any, lo: Any, hi: Any) -> Any:
    # the raw op, as the op property checks it (bounds may broadcast beyond t's shape)
    return _clip_by_value(t, lo, hi)


def _tiny_next_to_large(x: Any) -> Any:
    # out[1] ~ 1e-17 while out[0] ~ 3: resolution is judged per output entry
    return tf.stack([x[0] * 3.0, x[1] * 1e-17])


def _tanh_sum_sigmoid(t0: Any, t1: Any) -> Any:
    return tf.tanh(tf.reduce_sum(tf.sigmoid(tf.matmul(t1, t0)))) + tf.tanh(t0)


_MAX_ROWS = np.array([
    [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1e3], [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0], [0, 0, 0, 0, 1e3], [0, 0, 0, 0, 1], [1e3, 0, 0, 0, 0],
    [0, 0, 0, 0, 1], [-1, 0, -1, 0, -1], [0, 0, -1, -1, -5.5112105e-07], [0, 0, 0, 0, 1],
    [0, 0, 0, 0, 1], [0, 0, 0, 0, 1e3], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1e3]], np.float32)

CASES: list[tuple[str, Callable, list[np.ndarray], int, set[Reason]]] = [
    # kinks closer to x than the smallest step, next to exact ties
    ("clip t~1e-30 bounds 0/1", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.array([1e-30, 0.3, 1e-212, 0.0]), np.array(0.0), np.array(1.0)], 1, set()),
    ("clip zeros and 1e-30 at bounds", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.array([[0.0, 1e-30, 1.0], [0.0, 0.0, 0.0]]), np.array([1.0, -1.0, 0.0]),
      np.array([[0.0], [1000.0]])], 1, set()),
    ("maximum f32 ~1e-29", lambda x, y: tf.maximum(x, y),
     [np.array([1e-29, 0.0, -1e-29, 2.0], F32), np.array([0.0, 0.0, 1e-29, 2.0], F32)], 1,
     set()),
    ("minimum f32 ~1e-29", lambda x, y: tf.minimum(x, y),
     [np.array([1e-29, 0.0, -1e-29], F32), np.array([0.0, 0.0, 1e-29], F32)], 1, set()),
    ("relu f32 ~1e-29", lambda x: tf.nn.relu(x), [np.array([1e-29, -1e-29, 0.0, 1.0], F32)],
     1, set()),
    ("maximum kink 9e-7 away", lambda x, y: tf.maximum(x, y),
     [np.array([0.0, 0.0, 0.0, 9.110234352882105e-07]), np.array([1.0, 1.0, 1000.0, 0.0])],
     1, set()),
    ("elu order 2 at 0, 1e-8, 1e-154", lambda x: tf.nn.elu(x),
     [np.array([0.0, 1e-8, 1e-154, -0.5])], 2, set()),
    # elu' at 0 beside 2.8e-8: the slope change of elu' is ~1e-8 of its size at the steps
    # of x = 0, above round-off on two rungs of the ladder only
    ("elu order 2 at 0 beside 2.8e-8", lambda x: tf.nn.elu(x),
     [np.array([[2.799675041303274e-08, 0.0]])], 2, set()),
    ("abs at 1e-163", lambda x: tf.abs(x), [np.array(1.0134183090010149e-163)], 1, set()),
    ("select of 2.5e-201", lambda c, x, y: tf.where(c, x, y),
     [np.array(False), np.array(0.0), np.array(2.533276239517163e-201)], 1, set()),
    # cancellation inside the function that eps * |f| cannot see
    ("reduce_sum [0, 1, 65534, -65535]", lambda x: tf.reduce_sum(x),
     [np.array([0.0, 1.0, 65534.0, -65535.0])], 1, {Reason.ROUNDED_AWAY}),
    ("reduce_sum [1, eps, -1]", lambda x: tf.reduce_sum(x),
     [np.array([1.0, 2.220446049250313e-16, -1.0])], 1, {Reason.ROUNDED_AWAY}),
    ("reduce_mean [1, eps, -1]", lambda x: tf.reduce_mean(x),
     [np.array([1.0, 2.220446049250313e-16, -1.0])], 1, {Reason.ROUNDED_AWAY}),
    ("sigmoid xent at logit 1e5 f32", _sce,
     [np.array([1e5, -1e5, 0.5], F32), np.array([1.0, 0.0, 0.3], F32)], 1,
     {Reason.ROUNDOFF_DOMINATED, Reason.ROUNDED_AWAY}),
    # a result on the grid of its large intermediates (z - z y at z = 15625): samples of
    # that staircase often have zero third differences
    ("sigmoid xent logit 15625 label 0.999999", _sce,
     [np.array([15625.0, 15625.0]), np.array([0.999999, 0.9999999])], 1,
     {Reason.ROUNDOFF_DOMINATED, Reason.ROUNDED_AWAY}),
    # softmax - labels = 1/3 - 1/3 = 0 exactly, flat along a logit of 1.2e-239 even at a
    # tenth of its scale: |y| = 0 yet the change is rounded away at the size of 1/3
    ("softmax xent backprop, logit 1.2e-239", _softmax_xent_both,
     [np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.21094024333819e-239, 0.0],
               [0.0, 0.0, 203513.0]]),
      np.array([1 / 3, 1 / 3, 1 / 3])], 1,
     {Reason.ROUNDOFF_DOMINATED, Reason.ROUNDED_AWAY}),
    ("output 1e-17 beside outputs ~3", _tiny_next_to_large, [np.array([1.0, 2.0])], 1,
     set()),
    # joint kinks
    ("relu(a) - relu(b) at the origin", lambda a, b: tf.nn.relu(a) - tf.nn.relu(b),
     [np.zeros(3), np.zeros(3)], 1, set()),
    ("maximum at exact ties", lambda x, y: tf.maximum(x, y),
     [np.array([1.0, 2.0, -3.0, 0.0]), np.array([1.0, 0.5, -3.0, 0.0])], 1, set()),
    ("reduce_max three-way tie", lambda x: tf.reduce_max(x, axis=1),
     [np.array([[0.5, 0.5, 0.5, 0.1], [1.0, 3.0, 3.0, -2.0]])], 1, set()),
    # the joint samples of (t, lo) at their common scale land next to hi = 1: a central
    # difference across hi mixes two pieces and loses the vertex (1, 0)
    ("clip t == lo, hi within the sample radius", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 211380.0]]), np.array([0.0, 0.0, 13212.0]),
      np.array([[1.0], [-1.0]])], 1, set()),
    ("clip t == lo, a sample point on hi", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 220188.0]]), np.array([0.0, 0.0, 13762.0]),
      np.array([[1.0], [-1.0]])], 1, set()),
    ("clip t == lo == hi", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.array([0.0, 1.0, 0.5]), np.array(0.5), np.array(0.5)], 1, set()),
    # t == lo == hi in several output entries (scalar or broadcast bounds): a probe mixes
    # the tie conventions of several outputs (Minkowski sum of their hulls), and t alone is
    # flat while TF gives it the gradient; in the (t, lo) plane at hi fixed the piece
    # lo < t < hi shows only at one signed ordering (lo below t below 0)
    ("clip t == lo == hi = 0, scalar bounds", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.zeros(6), np.array(0.0), np.array(0.0)], 1, set()),
    ("clip ties per entry, bounds per entry", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.array([0.0, 1.0, 0.0, 1.0, 0.5, 0.0]), np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0]),
      np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0])], 1, set()),
    ("clip f32 ties, broadcast bounds", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.array([[0.0, 1.0, 0.0], [1.0, 0.5, 0.0]], F32), np.array([0.0, 0.0, 1.0], F32),
      np.array([[1.0], [0.0]], F32)], 1, set()),
    # an entry at 0 beside window maxima 2.2e-313 and 4.1e-7 (kinks inside every step of
    # one coordinate, at different distances in different windows): a probe's bracket for
    # that entry mixes the windows; each window's own hull decides
    ("max_pool entry at 0 beside maxima 2e-313 and 4e-7",
     lambda x: tf.nn.max_pool(x, ksize=(1, 3, 3, 1), strides=(1, 1, 1, 1), padding="SAME"),
     [np.array([[[[4.0800240563237266e-07], [0.0], [-110485.78206484772], [-991911.1381657828]],
                 [[-3.1726372939761182e-06], [-1.0], [-1e-09], [-2.1757743706615447]],
                 [[1.555425819607569], [-893585.5322269641], [-5.125915165886191e-07],
                  [-2.468152283003038e-07]],
                 [[2.2250738585e-313], [-0.1762216233203171], [-1.0],
                  [-6.365286766767256e-265]]]])], 1, set()),
    # hi kinked in one output (lo = -1 below it) and flat in the next (lo == hi == 0, t =
    # 1e-30 above both): its failing entry there is judged with that row's own kinks
    ("clip f32 t = 1e-30, lo [0, -1], hi 0", _clip_raw,
     [np.array(1e-30, F32), np.array([0.0, -1.0], F32), np.array(0.0, F32)], 1, set()),
    # hi = 0 owns the output only between lo = -2e-7 (or -6e-8) and t = 5.8e-7: a sliver far
    # below hi's own step; sampled at the distance to those entries
    ("clip f32 hi's piece a 2e-7 sliver", _clip_raw,
     [np.array([5.768902724412328e-07], F32),
      np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                 [0.0, -1.0, -2.1622837209633872e-07]]], F32), np.array(0.0, F32)], 1, set()),
    ("clip f32 hi's piece a 6e-8 sliver", _clip_raw,
     [np.array([5.768902724412328e-07], F32),
      np.array([[[0.0, 0.0, 999999.0, 0.0], [0.0, 0.0, 0.0, 0.0],
                 [0.0, -5.960464477539063e-08, 0.0, 0.0]]], F32), np.array(0.0, F32)], 1, set()),
    # t == hi = 0 and lo just below: t owns the output only on (lo, 0), a sliver no step of
    # t reaches and no entry shows a kink at; sampled at the distance to lo
    ("clip t == hi = 0, lo = -7e-79", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.array(0.0), np.array(-7.220313444789499e-79), np.array(0.0)], 1, set()),
    ("clip f32 t == hi = 0, lo = -1e-30", lambda t, a, b: tf.clip_by_value(t, a, b),
     [np.array(0.0, F32), np.array(-1e-30, F32), np.array(0.0, F32)], 1, set()),
    # t shared by two outputs: tied with lo and hi in the first, with lo in the second; the
    # second output's group (t, lo[1]) cannot show the first output's pieces
    ("clip f32 t = 0 shared, lo [0, 0], hi [0, 1]", _clip_raw,
     [np.array(0.0, F32), np.array([0.0, 0.0], F32), np.array([0.0, 1.0], F32)], 1, set()),
    # t == lo == hi = 0 in three outputs and t == hi = 0 with lo a sliver below in the
    # fourth: t alone is flat both ways in every output (clipped by hi up, by lo down) and
    # hi only "jumps" by the sliver, yet TF sends the gradient to t; only joint moves (lo
    # down, hi up) meet the piece out = t (fast mode FAILed at every seed)
    ("clip t == hi = 0, lo [0, 0, 0, -1e-300]", _clip_raw,
     [np.zeros(4), np.array([0.0, 0.0, 0.0, -1e-300]), np.array(0.0)], 1, set()),
    ("clip t == hi = 0, lo [0, 0, 0, -6e-87]", _clip_raw,
     [np.zeros(4), np.array([0.0, 0.0, 0.0, -6e-87]), np.array(0.0)], 1, set()),
    ("clip t == hi = 0, lo [0, 0, 0, -1e-10]", _clip_raw,
     [np.zeros(4), np.array([0.0, 0.0, 0.0, -1e-10]), np.array(0.0)], 1, set()),
    ("clip f32 t = 5.8e-7, lo [2.2e-16, -1e-5], hi 0", _clip_raw,
     [np.full((4, 2), 5.8e-7, F32), np.array([2.2e-16, -1e-5], F32),
      np.zeros((4, 1, 2), F32)], 1, set()),
    # hi linked with lo = 0 in the first row's outputs (a joint group at their common
    # scale, 333 here), while out[3, 1] = hi only on the sliver (-1e-5, 5.8e-7): that row
    # moves with hi alone, a 1-D kink its own ladder judged (gate seed 1, float32)
    ("clip f32 t = 5.8e-7, lo (4, 3) with 2.2e-16, -1e-5, hi 0", _clip_raw,
     [np.array(5.768902724412328e-07, F32),
      np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0],
                [2.220446049250313e-16, -9.999999747378752e-06, 1000.0]], F32),
      np.array(0.0, F32)], 1, set()),
    # float32 x / y rounds to -0 while the forward's x - q y used q = -1 (out = 2.0)
    ("floormod f32 at x = -1.4e-45", lambda x, y: tf.floormod(x, y),
     [np.array([-1.4e-45, 1.4e-45, -3.5], F32), np.array([2.0, -2.0, 2.0], F32)], 1, set()),
    # a gradient that is rounding noise around 0: verified small, relatively unresolvable
    ("x / x", lambda x: x / x, [np.array([0.5, -2.0, 3.0])], 1,
     {Reason.ROUNDOFF_DOMINATED}),
    # float32: the gradient is 0 in float64 but two terms of size |v / t| cancel to a few
    # float32 ulps of them (the dev profile's false FAIL of the precision check), and at
    # t ~ 1e-20 the terms are 1e20 (y * y would underflow: the gradient divides twice)
    ("(t + t) / (t + t) f32", lambda t: (t + t) / (t + t),
     [np.array([-0.13210486, 0.64042264, 0.10490011, -0.5356694, 0.36159506], F32)], 1,
     {Reason.ROUNDOFF_DOMINATED}),
    ("(t + t) / (t + t) f32 at 1e-20", lambda t: (t + t) / (t + t),
     [np.array([-7.4349926e-21, -9.2172534e-21, -4.5772584e-21, 2.2019512e-21], F32)], 1,
     {Reason.ROUNDOFF_DOMINATED}),
    # the seed sweep's minimised ClipByValue cases: the engine's gradient (every output to
    # its t) is the Jacobian at t = 0, lo = (-d, -d, lo[2]), hi = d for any small d > 0
    # (exact rationals), so it lies in Clarke's generalized Jacobian at x; output 2's piece
    # lo < t < hi lives in a sliver of width |lo[2]| beside the exact ties of outputs 0, 1
    ("clip t == hi = 0 tied in two outputs, lo = -6e-87 in a third", _clip_raw,
     [np.zeros(3), np.array([0.0, 0.0, -6e-87]), np.array(0.0)], 1, set()),
    ("clip f32 t == hi = 0 tied in two outputs, lo = -1e-30 in a third", _clip_raw,
     [np.zeros(3, F32), np.array([0.0, 0.0, -1e-30], F32), np.array(0.0, F32)], 1, set()),
    ("clip t == hi = 0 per entry, lo = -6e-87 in the third", _clip_raw,
     [np.zeros(3), np.array([0.0, 0.0, -6e-87]), np.zeros(3)], 1, set()),
    # dev-profile run 5: d/dx sum_i v_i x^y_i at x = 1e-30 (float32) has terms -v_i x^-2 ~
    # -1e60, beyond float32's range: their float32 sum is inf - inf = NaN when the cotangent
    # entries differ in sign (TF's formula, TF's result); the float64 gradient (~1e59) is
    # beyond float32's range too, so no float32 value could be checked
    ("pow f32 x = 1e-30, y with two -1 entries: overflowing terms of both signs",
     lambda x, y: tf.pow(x, y),
     [np.array(1e-30, F32), np.array([[[0.0, 0.0, 0.0]], [[-1.0, 0.0, -1.0]]], F32)], 1,
     {Reason.GRADIENT_OVERFLOWS}),
    # dev-profile run 2 (ExpandDims, float64): a subnormal x stepped relative to itself
    # rounds to a few spacings and eps |x| underflows to 0: steps and argument rounding
    # are scaled from the smallest normal number there
    # (fast mode at seed 27 of 0-39: the finer rungs' subnormal quantisation reads as
    # structure below the step, an abstention, on the previous releases too)
    ("expand_dims at subnormal 2.2e-311", lambda x: tf.expand_dims(x, 0),
     [np.array(2.225073858507e-311)], 1, {Reason.STRUCTURE_BELOW_STEP}),
    ("3 x at subnormals beside 1", lambda x: x * 3.0,
     [np.array([1e-310, -3e-315, 5e-324, 1.0])], 1, set()),
    # a period far below the steps (the joint kink judgement used to FAIL them): every
    # step crosses many jumps, the derivative at x exists but no difference resolves it -
    # the harness says so itself, per output entry
    ("floormod f32 (3e4, 0.01): period below the step", lambda x, y: tf.floormod(x, y),
     [np.array([3e4], F32), np.array([0.01], F32)], 1,
     {Reason.JUMPS_WITHIN_STEP, Reason.STRUCTURE_BELOW_STEP}),
    ("floormod (1e15, 3): period below the step", lambda x, y: tf.floormod(x, y),
     [np.array([1e15]), np.array([3.0])], 1, {Reason.JUMPS_WITHIN_STEP}),
    ("floormod (7e5, 2.5) beside ordinary entries", lambda x, y: tf.floormod(x, y),
     [np.array([7e5, 1.3, -2.2, 4e9]), np.array([2.5, 0.7, 0.9, -1.5])], 1,
     {Reason.JUMPS_WITHIN_STEP}),
    # (fast mode at seed 33 of 0-39: the probe's rungs read as truncation, not jumps; with
    # wider ranges at small entries, as structure below the step - an abstention each way)
    ("floormod f32 (-5e5, 0.3), (2e3, -0.05)", lambda x, y: tf.floormod(x, y),
     [np.array([-5e5, 2e3], F32), np.array([0.3, -0.05], F32)], 1,
     {Reason.JUMPS_WITHIN_STEP, Reason.TRUNCATION_DOMINATED, Reason.STRUCTURE_BELOW_STEP}),
    # the sweep's two FloorMod inputs once the metadata was gone: dev-profile run 3 (a
    # probe mixing the jittering x = 893672.5 entry with smooth ones: judged per output
    # entry now, the jittering one left out) and gate seed 1 (a scalar x broadcast against
    # periods from 0.01 to 8.5e5: FAILed, and shrinking it ran past the 300 s limit)
    ("floormod f32 893672.5 mod 1 broadcast beside ordinary entries",
     lambda x, y: tf.floormod(x, y),
     [np.array([[893672.5, 1.5], [-2.3, 0.2]], F32), np.array([1.0], F32)], 1,
     # (y's jumps, 1.1e-6 apart, lie within every step: at fast mode's seed 9 the finer
     # rungs of a probe fall between two of them and disagree with the coarser ones)
     {Reason.JUMPS_WITHIN_STEP, Reason.STRUCTURE_BELOW_STEP}),
    ("floormod x = -999999.9999999999 against y (3, 1, 4)", lambda x, y: tf.floormod(x, y),
     [np.array(-999999.9999999999),
      np.array([[[1.1341417738343, 0.01, -1.0, -1.0]],
                [[1.0, 365510.0986613576, 1.0, -852068.4906293008]],
                [[647545.3337529815, 2.273249734129153, -1.0 / 3.0, 2.4001361124319605]]])],
     1, {Reason.JUMPS_WITHIN_STEP}),
    # x / y ratios from 1e3 to 1e15 (float64) and 1e3 to 1e7 (float32), negative periods,
    # an ordinary entry beside them; in a sum with smooth terms; beside a smooth output
    ("floormod ratios 1e3..1e15 with negative y", lambda x, y: tf.floormod(x, y),
     [np.array([3e3, -7.1e6, 2.5e9, -4.4e12, 9e15, 0.37]),
      np.array([1.3, 0.7, -2.9, 5.5, -3.0, 0.9])], 1,
     {Reason.JUMPS_WITHIN_STEP, Reason.ROUNDED_AWAY}),
    ("floormod f32 ratios 1e3..1e7 with negative y", lambda x, y: tf.floormod(x, y),
     [np.array([3e3, -7.1e4, 2.5e5, -4.4e6, 1.7e7, 0.37], F32),
      np.array([1.3, 0.7, -2.9, 5.5, -3.0, 0.9], F32)], 1, {Reason.JUMPS_WITHIN_STEP}),
    ("floormod in a sum with smooth terms",
     lambda x, y: tf.floormod(x, y) * 3.0 + tf.sin(x) * y,
     [np.array([[8.9e5, 1.5, -2.3], [4e11, -0.2, 7.7]]), np.array([[1.0], [-0.3]])], 1,
     {Reason.JUMPS_WITHIN_STEP}),
    ("floormod beside a smooth output", lambda x, y: (tf.floormod(x, y), tf.square(x) + y),
     [np.array([6.1e8, 1.5, -2.3]), np.array([0.5, 2.0, -1.1])], 1,
     {Reason.JUMPS_WITHIN_STEP}),
    # staircases: jumps crossed by the coarse rungs only (judged on the fine rungs), or by
    # every rung (whole multiples of one jump). Gate seed 6 without FloorMod's metadata:
    # order 2's -v floor(x / y) at x / y = 1056900.5 (beside a jump at x, 1 / 0.5)
    ("floormod order 2 at x / y = 1056900.5 (gate seed 6)", lambda x, y: tf.floormod(x, y),
     [np.array([[[1.0]], [[528450.25]]]), np.array(0.5)], 2,
     {Reason.JUMPS_WITHIN_STEP, Reason.ROUNDED_AWAY}),
    ("floormod f32 order 2 at x / y = 1056900.5", lambda x, y: tf.floormod(x, y),
     [np.array([[[1.0]], [[528450.25]]], F32), np.array(0.5, F32)], 2,
     {Reason.JUMPS_WITHIN_STEP, Reason.ROUNDED_AWAY}),
    ("floormod staircases in y, x / y 1e3..1e5", lambda x, y: tf.floormod(x, y),
     [np.array([1000.3, 52345.25, -7.7e4]), np.array([0.7, 0.5, 1.3])], 1,
     {Reason.JUMPS_WITHIN_STEP}),
    ("floormod order 2 staircases in y, x / y 1e3..1e5", lambda x, y: tf.floormod(x, y),
     [np.array([1000.3, 52345.25, -7.7e4]), np.array([0.7, 0.5, 1.3])], 2,
     {Reason.JUMPS_WITHIN_STEP}),
    ("floormod f32 staircases in y", lambda x, y: tf.floormod(x, y),
     [np.array([300.5, -1234.4], F32), np.array([0.25, 0.7], F32)], 1,
     {Reason.JUMPS_WITHIN_STEP}),
    ("floormod f32 order 2 staircases in y", lambda x, y: tf.floormod(x, y),
     [np.array([300.5, -1234.4], F32), np.array([0.25, 0.7], F32)], 2,
     {Reason.JUMPS_WITHIN_STEP}),
    # dev-profile run 4 of this round: a 0 beside -100124 is stepped at the array's scale
    # (~6e4), far above softmax's own length, and -p1 p2 is extreme at p1 = p2: the joint
    # samples around x (with the tied 1e-9 beside it) all lie on one side of the gradient;
    # the hull is widened by how far the pieces move between the two sampling radii
    ("softmax, a 0 and 1e-9 beside -100124", lambda z: tf.nn.softmax(z),
     [np.concatenate([np.zeros(23), [3.54547068e-192, -100124.0, 0.0, 1e-09]]).reshape(3, 3, 3)],
     1,
     {Reason.ROUNDED_AWAY}),
    # equal huge logits: softmax is a ramp of width ~1 between two flat sides, and float64's
    # spacing there is 1.4e14 (1e30) or 1.6e4 (1e20): every step lands on a flat side, so
    # the pieces sampled around the tie (0) are not the ramp's (both modes FAILed)
    ("softmax at tied logits 1e30", lambda z: tf.nn.softmax(z),
     [np.array([1e30, 1e30])], 1, {Reason.STRUCTURE_BELOW_STEP}),
    ("softmax at tied logits 1e20 beside 5", lambda z: tf.nn.softmax(z),
     [np.array([[1e20, 1e20, 5.0], [1.0, 2.0, 3.0]])], 1, {Reason.STRUCTURE_BELOW_STEP}),
    # -- derivatives beyond float32's range though v times them fits (stress screen) -----
    # 1 / x at x = 5e-20: TF's RealDiv gradient (-x / y) / y forms -4e38 before the
    # cotangent weights it (inf in float32); the float64 gradient v * -4e38 fits
    ("1 / x f32 at 5e-20 beside tied 1e-30 and 1e6", lambda x: 1.0 / x,
     [np.array([[1e-30, 1e-30], [5e-20, 1e6]], F32)], 1, {Reason.GRADIENT_OVERFLOWS}),
    ("reciprocal f32 at 5e-20 beside tied 1e-30 and 1e6", lambda x: tf.reciprocal(x),
     [np.array([[1e-30, 1e-30], [5e-20, 1e6]], F32)], 1, {Reason.GRADIENT_OVERFLOWS}),
    ("reciprocal f32 at 5e-20, order 2", lambda x: tf.reciprocal(x),
     [np.array([5e-20, 2.0], F32)], 2, {Reason.GRADIENT_OVERFLOWS}),
    # dev-profile run at --hypothesis-seed 6 (full mode, every seed): t shared by four
    # outputs, linked with hi[2] through the third (lo = -1 below both); the fourth output
    # moves with t alone, whose piece lo < t < hi is a 1e-30 sliver - that linked group
    # leaves such a row to t's ladder, so the row is judged on its own at the sliver's scale
    ("clip t = 0 shared, lo [0, 0, -1, -1e-30], hi 0 per entry", _clip_raw,
     [np.array(0.0), np.array([0.0, 0.0, -1.0, -1e-30]), np.zeros(4)], 1, set()),
    # dev-profile seed 6 again, after the fix above: hi (3, 1, 4) with a 1 and a 5.2e-95
    # puts the second sampling radius at 5.2e-95, where the sliver's slope 1 shows - but
    # the row's measured noise (1e-46, the round-off of its 1e-30 values at the common
    # step) divided by that radius's difference step admitted anything (full mode FAILed)
    ("clip t = 0, lo [0, 0, 0, -1e-30], hi (3, 1, 4) zeros, 1 and 5.2e-95", _clip_raw,
     [np.array(0.0), np.array([0.0, 0.0, 0.0, -1e-30]),
      np.array([[[0.0] * 4], [[0.0] * 4], [[0.0, 0.0, 1.0, 5.19903511e-95]]])], 1, set()),
    # lo > hi in the first output (out = lo), t's piece a 1e-30 sliver in the second: the
    # steps read it as a jump at x, so t's own entry agrees only with that output left
    # out, and the probe's disagreement had no entry to be judged on (fast mode FAILed)
    ("clip t == hi = 0, lo [1.8e-201, -1e-30]", _clip_raw,
     [np.array(0.0), np.array([1.8479e-201, -1e-30]), np.array(0.0)], 1,
     {Reason.STRUCTURE_BELOW_STEP}),
    # dev-profile seed 6, float32 (fast mode, every seed): t = 0 tied with eleven zero
    # bounds (too many to judge jointly) and undecided alone; lo = -1.7e-43 (a subnormal)
    # bounds a sliver below every radius that can be sampled beside bounds of 1e-5
    ("clip f32 t = 0 beside lo (4, 4, 2) with -1.7e-43, hi [0, -0.86]", _clip_raw,
     [np.array([[[0.473557553], [0.0], [-42276.8063], [0.384507407]]], F32),
      np.array([[[2.15244319, 2.25050981], [1.13497414e-294, 3.0], [-2.22952232, 0.0],
                 [2.42967662, 0.0]],
                [[1.95386755, -2.46512842], [0.0, 2.0], [0.0, 2.17295066], [0.0, 1e-05]],
                [[-0.502995066, 0.0], [-5.76712895e-222, -0.929871551],
                 [2.33111065, -1.86527044], [0.0, 0.0]],
                [[1.46270461, -4.14595125e-268], [-1.712236e-43, 5.96621384e-74],
                 [0.0, -2.48261975], [1.04918341e-54, 0.25]]], F32),
      np.array([0.0, -0.86320884], F32)], 1, {Reason.STRUCTURE_BELOW_STEP}),
    # dev-profile seed 26, float32 (full mode, 14 seeds in 20): t1's gradient goes through
    # 1 - tanh(S)^2 = 1.8e-4 at S = 5.01, which float32 rounds by 3e-4 of itself; moving t0
    # too lets tanh(t0) set the output's change (the precision check moved t1 alone never)
    ("tanh(sum(sigmoid(t1 t0))) + tanh(t0) f32", _tanh_sum_sigmoid,
     [np.array([[1.1365519762039185, 0.0, 0.0], [0.0, 0.0, 0.0]], F32),
      np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]], F32)], 1, set()),
    # gate seed 17, dev profile, float32 (fast mode, 4 seeds in 12; float64 too): hi's line
    # meets t = 1e-30 within every step and t = 5.8e-7 within the coarser ones, so the
    # finest three rungs' one-sided gap was not steady and the line was judged smooth
    ("clip t = [5.8e-7, -3.4e-8, 1e-30] f32, lo = -1, hi = 0", _clip_raw,
     [np.array([[5.826170763612026e-07], [-3.4404497029072445e-08],
                [1.0000000031710769e-30]], F32), np.array(-1.0, F32), np.array(0.0, F32)],
     1, set()),
    # dev-profile seed 27, float32 (9 seeds in 10): the gradient at the 0 is the product of
    # the others, formed through 1e-5 * 1.18e-38 = 1.18e-43, a subnormal of three digits,
    # so float32 is 1.4e-3 off; moving the inputs near the smallest normal by rounding
    # units never shows it
    ("reduce_prod f32 through a subnormal intermediate", lambda t: tf.reduce_prod(t),
     [np.array([[0.0, 1, 1, 1], [1, 1, 1, 1000], [1000, 1000, 1e-5, 1.1754943508222875e-38]],
               F32)], 1, {Reason.SUBNORMAL_FLUSHED}),
    # a softmax row (1e30, 1e30 + 1e15): its ramp sits 7 spacings of 1e30 from x, so the
    # differences jump at every step, yet not at a one-spacing move: no jump at x
    # (it was NOT_APPLICABLE "discontinuous at x")
    ("softmax at (1e30, 1e30 + 1e15)", lambda z: tf.nn.softmax(z),
     [np.array([1e30, 1e30 + 1e15])], 1, {Reason.STRUCTURE_BELOW_STEP}),
    # torch's log_softmax tried by hand (full mode, every seed): out[0] = -log(1 + 2e-30)
    # is a difference of values near 1, quantised at 2.2e-16, flat at every step the joint
    # kink samples take; the flat pieces were read as the pieces' gradients (0)
    # TF's gradient sigmoid(x) - z cancelled two numbers near 1 (x = 20, z = 1: 3.6e-8 of
    # the gradient lost, a FAIL at every seed in both modes); the rule is now cancellation-
    # free
    ("sigmoid cross-entropy at saturated logits, label 1", _sce,
     [np.array([20.0, 30.0, -30.0, 0.3]), np.array([1.0, 1.0, 1.0, 0.5])], 1, set()),
    ("log_softmax at a logit gap of 30", lambda z: tf.nn.log_softmax(z),
     [np.array([[30.0, 0.0, 0.0]])], 1, {Reason.ROUNDED_AWAY}),
    ("sparse softmax cross-entropy per example, a logit gap of 30",
     lambda z: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=np.array([0, 2]),
                                                              logits=z),
     [np.array([[30.0, 0.0, 0.0], [1.0, 2.0, 3.0]])], 1, {Reason.ROUNDED_AWAY}),
    # gate seed 8 (float32 property, fast mode seed 1): rows of 5 with 14 tied zeros beside
    # entries of 1 and 1e3. The zeros step by the RMS (~500 h = 2.5 in float32), across
    # the 1s of other rows; bisection found 10 of the kink entries, and the rest of the
    # probe read as a smooth slope that disagreed (a FAIL); it is judged row by row now
    ("reduce_max f32 rows of 5: 14 tied zeros beside 1 and 1e3",
     lambda x: tf.reduce_max(x, axis=1), [_MAX_ROWS], 1, set()),
]
