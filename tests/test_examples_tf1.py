"""The classic TF1 programs in examples/tf1/ run unchanged on the engine: each trains a few
small steps here (its own arguments or flags) and its loss falls."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

import gradverify.engine as tf

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "tf1"
PROGRAMS = sorted(p.name for p in EXAMPLES.glob("*.py") if p.name != "synthetic_data.py")


def _load(name: str):
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"tf1_example_{name}", EXAMPLES / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


def _falls(losses, k: int) -> bool:
    losses = np.asarray(losses, dtype=np.float64)
    assert np.all(np.isfinite(losses))
    return losses[-k:].mean() < losses[:k].mean()


def test_there_are_at_least_eight_programs_each_starting_with_the_import():
    assert len(PROGRAMS) >= 8, PROGRAMS
    for name in PROGRAMS:
        first = (EXAMPLES / name).read_text().splitlines()[0]
        assert first == "import gradverify.engine as tf", name


def test_mnist_softmax():
    losses = _load("mnist_softmax.py").main(steps=30, batch_size=50)
    assert _falls(losses, 5) and losses[-5:].mean() < 0.5 * losses[0]


def test_mnist_deep_cnn_with_dropout_and_adam():
    losses = _load("mnist_deep.py").main(steps=6, batch_size=8, learning_rate=1e-4,
                                         test_examples=16)
    assert _falls(losses, 2)


def test_notmnist_fully_connected_l2_exponential_decay(capsys):
    losses = _load("notmnist_fc_l2_decay.py").main(num_steps=20, batch_size=64,
                                                   hidden_nodes=256)
    assert _falls(losses, 5)
    assert "Final learning rate: 0.500000 (global step 20)" in capsys.readouterr().out


def test_linear_regression_get_variable_summaries_and_saver(tmp_path):
    logdir = None
    if importlib.util.find_spec("tensorboard") is not None:
        logdir = str(tmp_path / "logs")
    costs, restored_equal = _load("linear_regression.py").main(
        training_epochs=60, display_step=20, logdir=logdir,
        checkpoint_dir=str(tmp_path / "ckpt"))
    assert _falls(costs, 5) and costs[-1] < 0.1 * costs[0]
    assert restored_equal
    kept = sorted(p.name for p in (tmp_path / "ckpt").glob("*.npz"))
    assert kept == ["model.ckpt-20.npz", "model.ckpt-40.npz", "model.ckpt-60.npz"]
    if logdir is not None:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        acc = EventAccumulator(logdir)
        acc.Reload()
        assert [e.step for e in acc.Scalars("cost")] == [20, 40, 60]
        np.testing.assert_allclose([e.value for e in acc.Scalars("cost")],
                                   costs[[19, 39, 59]], rtol=1e-6)


def test_autoencoder_rmsprop():
    losses = _load("autoencoder.py").main(num_steps=80, batch_size=16, display_step=1000)
    assert _falls(losses, 10)


def test_layers_cnn():
    losses = _load("layers_cnn.py").main(steps=5, batch_size=8, learning_rate=0.05,
                                         test_examples=16)
    assert losses[-2:].mean() < losses[:2].mean()
    names = [v.name for v in tf.trainable_variables()]
    assert names == ["conv2d/kernel:0", "conv2d/bias:0", "conv2d_1/kernel:0",
                     "conv2d_1/bias:0", "dense/kernel:0", "dense/bias:0",
                     "dense_1/kernel:0", "dense_1/bias:0"]


def test_word2vec_skipgram_embedding_lookup_and_nce_loss(capsys):
    losses = _load("word2vec_skipgram.py").main(num_steps=60, batch_size=64,
                                                embedding_size=32, num_sampled=16)
    assert _falls(losses, 10) and losses[-10:].mean() < 0.75 * losses[:10].mean()
    assert "embeddings (500, 32)" in capsys.readouterr().out


def test_app_run_with_flags_as_a_script(tmp_path):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "fully_connected_flags.py"), "--max_steps=40",
         "--print_every=5", "--batch_size=50", "--learning_rate=0.1",
         f"--log_dir={tmp_path}"], capture_output=True, text=True, check=True, env=env)
    losses = [float(v) for v in re.findall(r"Step \d+: loss = ([0-9.]+)", out.stdout)]
    assert len(losses) == 9 and _falls(losses, 2)
    assert (tmp_path / "model.ckpt-40.npz").exists()
    bad = subprocess.run([sys.executable, str(EXAMPLES / "fully_connected_flags.py"),
                          "--max_steps=many"], capture_output=True, text=True, env=env,
                         check=False)
    assert bad.returncode == 1 and "flag --max_steps=many" in bad.stderr
