"""Benchmark: a LeNet-style training step on the engine vs. the same math hand-written in NumPy.

N = 64 images 28x28x1, float32: conv 5x5x32 (SAME) + bias + relu -> max-pool 2x2/2 ->
conv 5x5x64 (SAME) + bias + relu -> max-pool 2x2/2 -> dense 3136 -> 10 -> mean softmax
cross-entropy; ``GradientDescentOptimizer(0.01).minimize(loss)``; one ``session.run([train,
loss], feed_dict)`` per step, the classic deep-MNIST program. The NumPy side does the same
work per step as a competent user would write it: im2col + one matmul per convolution (the
patch matrix kept from the forward pass for the filter gradient), pooling by reshaping into
2x2 blocks, col2im by adding the 25 shifted slices, an SGD update.

Before timing, one engine step and one NumPy step from the same start are checked to give
the same loss and weights (so the comparison is of identical work). Timing interleaves engine
and NumPy blocks (so drift in machine load hits both) and reports the median per-step time.

    python benchmarks/bench_lenet.py [--quick] [--json FILE]

Target: engine/NumPy <= 1.5 (wall-clock medians). The process CPU-time ratio is printed too:
on a shared machine it is the steadier figure. ``OPENBLAS_NUM_THREADS=1`` (or the variable
of your BLAS) keeps BLAS threads from competing with other processes.
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

N, H, C1, C2, K, CLASSES = 64, 28, 32, 64, 5, 10
LR = 0.01
TARGET = 1.5
SEED = 0


def make_data(seed: int = SEED) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return {"x": rng.uniform(0, 1, (N, H, H, 1)).astype(f32),
            "y": np.eye(CLASSES, dtype=f32)[rng.integers(0, CLASSES, N)],
            "w1": (0.1 * rng.standard_normal((K, K, 1, C1))).astype(f32),
            "b1": np.full(C1, 0.1, f32),
            "w2": (0.1 * rng.standard_normal((K, K, C1, C2))).astype(f32),
            "b2": np.full(C2, 0.1, f32),
            "w3": (0.05 * rng.standard_normal((7 * 7 * C2, CLASSES))).astype(f32),
            "b3": np.zeros(CLASSES, f32)}


# -- the engine program (classic TF1) -------------------------------------------------------
class EngineStep:
    def __init__(self, d: dict[str, np.ndarray]):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.x = tf.placeholder(tf.float32, [None, H, H, 1])
            self.y = tf.placeholder(tf.float32, [None, CLASSES])
            self.params = {k: tf.Variable(d[k]) for k in ("w1", "b1", "w2", "b2", "w3", "b3")}
            p = self.params
            h1 = tf.nn.relu(tf.nn.conv2d(self.x, p["w1"], [1, 1, 1, 1], "SAME") + p["b1"])
            p1 = tf.nn.max_pool(h1, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
            h2 = tf.nn.relu(tf.nn.conv2d(p1, p["w2"], [1, 1, 1, 1], "SAME") + p["b2"])
            p2 = tf.nn.max_pool(h2, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
            logits = tf.matmul(tf.reshape(p2, [-1, 7 * 7 * C2]), p["w3"]) + p["b3"]
            self.loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(
                labels=self.y, logits=logits))
            self.train = tf.train.GradientDescentOptimizer(LR).minimize(self.loss)
            init = tf.global_variables_initializer()
        self.session = tf.Session(graph=self.graph)
        self.session.run(init)
        self.feed = {self.x: d["x"], self.y: d["y"]}

    def step(self):
        return self.session.run([self.train, self.loss], self.feed)[1]

    def weights_now(self) -> dict[str, np.ndarray]:
        return self.session.run(self.params)


# -- the same math in NumPy -----------------------------------------------------------------
def _im2col(xp: np.ndarray, out: int) -> np.ndarray:
    n, _, _, c = xp.shape
    cols = np.empty((n, out, out, K * K, c), xp.dtype)
    for i in range(K):
        for j in range(K):
            cols[:, :, :, i * K + j, :] = xp[:, i:i + out, j:j + out, :]
    return cols.reshape(n * out * out, K * K * c)


def _col2im(dcols: np.ndarray, n: int, out: int, c: int) -> np.ndarray:
    dcols = dcols.reshape(n, out, out, K * K, c)
    dxp = np.zeros((n, out + K - 1, out + K - 1, c), dcols.dtype)
    for i in range(K):
        for j in range(K):
            dxp[:, i:i + out, j:j + out, :] += dcols[:, :, :, i * K + j, :]
    return dxp[:, 2:2 + out, 2:2 + out, :]


def _pool(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, s, _, c = h.shape
    blocks = h.reshape(n, s // 2, 2, s // 2, 2, c)
    m = blocks.max(axis=(2, 4))
    return m, blocks


def _unpool(dm: np.ndarray, blocks: np.ndarray, m: np.ndarray) -> np.ndarray:
    mask = blocks == m[:, :, None, :, None, :]
    d = mask * dm[:, :, None, :, None, :]
    n, a, _, b, _, c = d.shape
    return d.reshape(n, 2 * a, 2 * b, c)


class NumpyStep:
    def __init__(self, d: dict[str, np.ndarray]):
        self.x, self.y = d["x"], d["y"]
        self.p = {k: d[k].copy() for k in ("w1", "b1", "w2", "b2", "w3", "b3")}
        self.lr = np.float32(LR)

    def step(self):
        p, x, y = self.p, self.x, self.y
        n = x.shape[0]
        pad = ((0, 0), (2, 2), (2, 2), (0, 0))
        cols1 = _im2col(np.pad(x, pad), H)
        z1 = (cols1 @ p["w1"].reshape(-1, C1)).reshape(n, H, H, C1) + p["b1"]
        h1 = np.maximum(z1, 0)
        m1, blocks1 = _pool(h1)
        cols2 = _im2col(np.pad(m1, pad), H // 2)
        z2 = (cols2 @ p["w2"].reshape(-1, C2)).reshape(n, H // 2, H // 2, C2) + p["b2"]
        h2 = np.maximum(z2, 0)
        m2, blocks2 = _pool(h2)
        flat = m2.reshape(n, -1)
        logits = flat @ p["w3"] + p["b3"]
        zl = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(zl)
        s = e.sum(axis=1, keepdims=True)
        loss = np.mean(np.sum(y * (np.log(s) - zl), axis=1))
        d_logits = (e / s - y) / np.float32(n)
        g = {"w3": flat.T @ d_logits, "b3": d_logits.sum(axis=0)}
        d_m2 = (d_logits @ p["w3"].T).reshape(m2.shape)
        d_z2 = _unpool(d_m2, blocks2, m2) * (z2 > 0)
        d2 = d_z2.reshape(-1, C2)
        g["w2"] = (cols2.T @ d2).reshape(p["w2"].shape)
        g["b2"] = d2.sum(axis=0)
        d_m1 = _col2im(d2 @ p["w2"].reshape(-1, C2).T, n, H // 2, C1)
        d_z1 = _unpool(d_m1, blocks1, m1) * (z1 > 0)
        d1 = d_z1.reshape(-1, C1)
        g["w1"] = (cols1.T @ d1).reshape(p["w1"].shape)
        g["b1"] = d1.sum(axis=0)
        for k, v in g.items():
            p[k] = p[k] - self.lr * v
        return loss


def verify() -> None:
    """One step each from the same start: the same loss and new weights."""
    d = make_data(seed=1)
    eng, ref = EngineStep(d), NumpyStep(d)
    l_e, l_n = eng.step(), ref.step()
    if not np.allclose(l_e, l_n, rtol=1e-4):
        raise SystemExit(f"engine and NumPy disagree on the loss: {l_e} vs {l_n}")
    w = eng.weights_now()
    for k, v in ref.p.items():
        if not np.allclose(w[k], v, rtol=1e-3, atol=1e-5):
            raise SystemExit(f"engine and NumPy disagree on {k} after one step (max |diff| "
                             f"{np.max(np.abs(w[k] - v)):.3g})")
        if k.startswith("w") and np.allclose(v, d[k]):
            raise SystemExit(f"the step did not change {k}")
    eng.session.close()


def bench(repeats: int, steps: int) -> dict:
    d = make_data()
    eng, ref = EngineStep(d), NumpyStep(d)
    for _ in range(2):                                   # warm-up: plan compile, caches
        eng.step()
        ref.step()
    wall: dict[str, list[float]] = {"engine": [], "numpy": []}
    cpu: dict[str, list[float]] = {"engine": [], "numpy": []}
    for r in range(repeats):
        order = (eng, ref) if r % 2 == 0 else (ref, eng)  # alternate who goes first
        for impl in order:
            who = "engine" if impl is eng else "numpy"
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps):
                impl.step()
            wall[who].append((time.perf_counter() - t0) / steps)
            cpu[who].append((time.process_time() - c0) / steps)
    eng.session.close()
    m = {k: statistics.median(v) for k, v in wall.items()}
    c = {k: statistics.median(v) for k, v in cpu.items()}
    ratio = m["engine"] / m["numpy"]
    return {"n": N, "seed": SEED, "repeats": repeats, "steps_per_repeat": steps,
            "engine_ms": m["engine"] * 1e3, "numpy_ms": m["numpy"] * 1e3, "ratio": ratio,
            "cpu_engine_ms": c["engine"] * 1e3, "cpu_numpy_ms": c["numpy"] * 1e3,
            "cpu_ratio": c["engine"] / c["numpy"], "target": TARGET,
            "meets_target": ratio <= TARGET,
            "engine_all_ms": [t * 1e3 for t in wall["engine"]],
            "numpy_all_ms": [t * 1e3 for t in wall["numpy"]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    args = ap.parse_args(argv)
    verify()
    res = bench(*((4, 1) if args.quick else (15, 2)))
    status = "ok" if res["meets_target"] else "MISSES TARGET"
    print(f"LeNet step N={N} (seed {SEED}): engine {res['engine_ms']:8.2f} ms/step   numpy "
          f"{res['numpy_ms']:8.2f} ms/step   ratio {res['ratio']:.3f} (target <= {TARGET}) "
          f"{status}\n  process CPU time: engine {res['cpu_engine_ms']:.2f} ms/step, numpy "
          f"{res['cpu_numpy_ms']:.2f} ms/step, ratio {res['cpu_ratio']:.3f} (steadier than "
          "wall-clock on a loaded machine)")
    if args.json:
        meta = {"python": sys.version.split()[0], "numpy": np.__version__,
                "platform": platform.platform(), "quick": args.quick}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": [res]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
