"""Benchmark: the seed training step on the engine vs. the same math hand-written in NumPy.

The step is the notMNIST L2 example's (``examples/notmnist_l2.py``), float32, 784 -> 10:
``logits = X W + b``; ``loss = mean(softmax_xent(Y, logits)) + beta * l2_loss(W)``;
``GradientDescentOptimizer(0.5).minimize(loss)``; one ``session.run([optimizer, loss,
train_prediction])`` per step. The NumPy side does the same work per step, vectorised as a
competent user would write it: forward loss, softmax prediction, gradient, SGD update.

Before timing, one engine step and one NumPy step from the same start are checked to give
the same weights (so the comparison is of identical work). Timing interleaves engine and
NumPy blocks (so drift in machine load hits both) and reports the median per-step time.

    python benchmarks/bench_training_step.py [--quick] [--json FILE]

Targets: engine/NumPy <= 1.10 at N = 10000 rows and <= 1.6 at N = 200 rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np

import gradverify.engine as tf

D, C = 28 * 28, 10
LR, BETA = 0.5, 0.01
TARGETS = {10000: 1.10, 200: 1.6}


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (n, D)).astype(np.float32)
    y = np.eye(C, dtype=np.float32)[rng.integers(0, C, n)]
    w0 = np.clip(rng.standard_normal((D, C)), -2, 2).astype(np.float32)
    b0 = np.zeros(C, np.float32)
    return x, y, w0, b0


# -- the engine program (as in the example) -------------------------------------------------------
class EngineStep:
    def __init__(self, x, y, w0, b0):
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf_train_dataset = tf.constant(x)
            tf_train_labels = tf.constant(y)
            self.weights = tf.Variable(w0)
            self.biases = tf.Variable(b0)
            logits = tf.matmul(tf_train_dataset, self.weights) + self.biases
            self.loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
                labels=tf_train_labels, logits=logits)) + tf.multiply(
                    BETA, tf.nn.l2_loss(self.weights))
            self.optimizer = tf.train.GradientDescentOptimizer(LR).minimize(self.loss)
            self.train_prediction = tf.nn.softmax(logits)
            init = tf.global_variables_initializer()
        self.session = tf.Session(graph=self.graph)
        self.session.run(init)
        self.fetches = [self.optimizer, self.loss, self.train_prediction]

    def step(self):
        return self.session.run(self.fetches)

    def weights_now(self):
        return self.session.run([self.weights, self.biases])


# -- the same math in NumPy ---------------------------------------------------------------------
class NumpyStep:
    def __init__(self, x, y, w0, b0):
        self.x, self.y = x, y
        self.w, self.b = w0.copy(), b0.copy()
        self.lr = np.float32(LR)
        self.beta = np.float32(BETA)

    def step(self):
        x, y, w, b = self.x, self.y, self.w, self.b
        n = x.shape[0]
        logits = x @ w + b
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        prediction = e / s
        log_p = z - np.log(s)
        loss = -np.sum(y * log_p) / n + self.beta * (0.5 * np.sum(w * w))
        d_logits = (prediction - y) / np.float32(n)
        grad_w = x.T @ d_logits + self.beta * w
        grad_b = d_logits.sum(axis=0)
        self.w = w - self.lr * grad_w
        self.b = b - self.lr * grad_b
        return None, loss, prediction


def verify(n: int) -> None:
    """One step each from the same start: same loss, prediction and new weights."""
    x, y, w0, b0 = make_data(n, seed=1)
    eng, ref = EngineStep(x, y, w0, b0), NumpyStep(x, y, w0, b0)
    _, l_e, p_e = eng.step()
    _, l_n, p_n = ref.step()
    w_e, b_e = eng.weights_now()
    checks = {"loss": (l_e, l_n), "prediction": (p_e, p_n), "weights": (w_e, ref.w),
              "biases": (b_e, ref.b)}
    for what, (a, b) in checks.items():
        if not np.allclose(a, b, rtol=1e-4, atol=1e-5):
            raise SystemExit(f"N={n}: engine and NumPy disagree on {what} "
                             f"(max |diff| {np.max(np.abs(np.asarray(a) - b)):.3g})")
    if np.allclose(w_e, w0):
        raise SystemExit(f"N={n}: the step did not change the weights")
    eng.session.close()


def bench(n: int, repeats: int, steps: int) -> dict:
    x, y, w0, b0 = make_data(n)
    eng, ref = EngineStep(x, y, w0, b0), NumpyStep(x, y, w0, b0)
    for _ in range(3):                                   # warm-up: plan compile, caches
        eng.step()
        ref.step()
    t_eng, t_np = [], []
    clock = time.perf_counter
    for r in range(repeats):
        order = (eng, ref) if r % 2 == 0 else (ref, eng)  # alternate who goes first
        for impl in order:
            t0 = clock()
            for _ in range(steps):
                impl.step()
            dt = (clock() - t0) / steps
            (t_eng if impl is eng else t_np).append(dt)
    eng.session.close()
    m_eng, m_np = statistics.median(t_eng), statistics.median(t_np)
    return {"n": n, "repeats": repeats, "steps_per_repeat": steps,
            "engine_ms": m_eng * 1e3, "numpy_ms": m_np * 1e3, "ratio": m_eng / m_np,
            "target": TARGETS.get(n), "meets_target": m_eng / m_np <= TARGETS.get(n, np.inf),
            "engine_all_ms": [t * 1e3 for t in t_eng], "numpy_all_ms": [t * 1e3 for t in t_np]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    args = ap.parse_args(argv)
    plans = {10000: (5, 10), 200: (5, 200)} if args.quick else {10000: (21, 20),
                                                                200: (21, 500)}
    results = []
    for n, (repeats, steps) in plans.items():
        verify(n)
        res = bench(n, repeats, steps)
        results.append(res)
        status = "ok" if res["meets_target"] else "MISSES TARGET"
        print(f"N={n:>5}: engine {res['engine_ms']:8.3f} ms/step   numpy "
              f"{res['numpy_ms']:8.3f} ms/step   ratio {res['ratio']:.3f} "
              f"(target <= {res['target']}) {status}")
    if args.json:
        meta = {"python": sys.version.split()[0], "numpy": np.__version__,
                "platform": platform.platform(), "quick": args.quick}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
