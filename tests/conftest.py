"""Shared fixtures: every test builds in a fresh default graph."""

from __future__ import annotations

import numpy as np
import pytest

import gradverify.engine as tf


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
