"""Benchmark: what auditing a training step costs, as a ratio to the plain step.

Two programs, float32, 784 -> 10 logistic regression with L2 on N rows: ``minimize`` with
SGD (the notMNIST example's step), and ``compute_gradients`` → ``clip_by_global_norm`` →
Adam ``apply_gradients`` with an ``exponential_decay`` schedule. For each, blocks of plain
``session.run([train_op, loss])`` and of ``audit_step(session, [train_op, loss])`` are
interleaved (machine-load drift hits both) and the median per-step times compared. An
audited step evaluates what the update uses before the step, so a ratio near 2 is the floor.

    python benchmarks/bench_audit.py [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import gradverify.engine as tf
from gradverify.harness import PASS, audit_step


def build(kind: str, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.uniform(-0.5, 0.5, (n, 784)).astype(np.float32))
    y = tf.constant(np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)])
    w = tf.Variable(rng.standard_normal((784, 10)).astype(np.float32) * 0.1, name="w")
    b = tf.Variable(np.zeros(10, np.float32), name="b")
    logits = tf.matmul(x, w) + b
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=logits))
    loss = loss + 0.01 * tf.nn.l2_loss(w)
    if kind == "sgd":
        return tf.train.GradientDescentOptimizer(0.5).minimize(loss), loss
    gs = tf.train.get_or_create_global_step()
    opt = tf.train.AdamOptimizer(tf.train.exponential_decay(0.01, gs, 10, 0.9))
    grads, tvars = zip(*opt.compute_gradients(loss))
    clipped, _ = tf.clip_by_global_norm(grads, 1.0)
    return opt.apply_gradients(zip(clipped, tvars), global_step=gs), loss


def measure(kind: str, n: int, blocks: int, per_block: int) -> tuple[float, float]:
    with tf.Graph().as_default():
        step, loss = build(kind, n)
        s = tf.Session()
        s.run(tf.global_variables_initializer())
        fetches = [step, loss]
        assert audit_step(s, fetches).verdict == PASS   # warm both plans; a correct step
        s.run(fetches)
        plain, audited = [], []
        for _ in range(blocks):
            t = time.perf_counter()
            for _ in range(per_block):
                s.run(fetches)
            plain.append((time.perf_counter() - t) / per_block)
            t = time.perf_counter()
            for _ in range(per_block):
                audit_step(s, fetches)
            audited.append((time.perf_counter() - t) / per_block)
        return statistics.median(plain), statistics.median(audited)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    blocks, per_block = (3, 3) if args.quick else (7, 5)
    print(f"rows {args.rows}, {blocks} blocks of {per_block} steps, medians")
    for kind in ("sgd", "clip+adam+schedule"):
        plain, audited = measure("sgd" if kind == "sgd" else "adam", args.rows, blocks,
                                 per_block)
        print(f"  {kind:<20} plain {plain * 1e3:8.2f} ms   audited {audited * 1e3:8.2f} ms"
              f"   ratio {audited / plain:5.2f}")


if __name__ == "__main__":
    main()
