"""Shared fixtures: every test builds in a fresh default graph. This repository's own suite
runs under gradverify's Hypothesis profile (``ci`` when ``CI`` is set, else ``dev``;
``HYPOTHESIS_PROFILE`` overrides): the plugin itself loads no profile."""

from __future__ import annotations

import os

# One BLAS thread per process: the default run spreads the tests over every core with
# pytest-xdist, and OpenBLAS's own threads (one per core in each worker, spinning while they
# wait) then fight the workers for the same cores; a 784x256 float32 matmul took 15 ms
# instead of 0.2 ms, and the autoencoder example's 80 steps took 8-15 s of CPU instead of
# 0.2 s. Set before the xdist workers and the tests' subprocesses (the CLI, pytester) start,
# so they inherit it and load OpenBLAS single-threaded; the value set outside wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest

import gradverify.engine as tf
from gradverify.properties.profiles import load_profile

load_profile()


@pytest.fixture(autouse=True)
def _fresh_default_graph():
    """Each test starts with an empty global default graph and no default session."""
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


@pytest.fixture
def graph():
    """A new graph, installed as the default for the test's duration."""
    g = tf.Graph()
    with g.as_default():
        yield g


@pytest.fixture
def rng():
    """A seeded generator: tests are deterministic."""
    return np.random.default_rng(20261124)
