"""Synthetic stand-ins for the tutorials' datasets, with the real shapes (no download).

- ``read_data_sets(...)``: MNIST as ``tensorflow.examples.tutorials.mnist.input_data`` gives
  it — ``mnist.train.next_batch(100)`` -> (images [100, 784] in [0, 1], labels one-hot [100,
  10] or class ids), ``mnist.test.images`` / ``mnist.test.labels``. Each image is one of ten
  smooth random 28x28 "digit" prototypes, randomly scaled, shifted and noised, so a model
  can learn it.
- ``notmnist(...)``: the Udacity notMNIST pickles' layout, flattened and one-hot as the
  assignments reformat them (values in [-0.5, 0.5]).
- ``skipgram_corpus(...)``: a token stream for word2vec, drawn from a Zipf vocabulary with
  topical structure (words co-occur with their neighbours), as integer ids.

>>> mnist = read_data_sets("MNIST_data/", one_hot=True, train_size=200)
>>> xs, ys = mnist.train.next_batch(50)
>>> xs.shape, ys.shape, float(ys.sum())
((50, 784), (50, 10), 50.0)
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

Datasets = namedtuple("Datasets", ["train", "validation", "test"])


def _prototypes(rng, n_classes, size, lo, hi):
    raw = rng.standard_normal((n_classes, size + 6, size + 6))
    box = np.ones(7) / 7.0
    smooth = np.apply_along_axis(lambda r: np.convolve(r, box, mode="valid"), 2, raw)
    smooth = np.apply_along_axis(lambda c: np.convolve(c, box, mode="valid"), 1, smooth)
    mn = smooth.min(axis=(1, 2), keepdims=True)
    mx = smooth.max(axis=(1, 2), keepdims=True)
    return lo + (hi - lo) * (smooth - mn) / (mx - mn)


def _images(rng, prototypes, n, lo, hi, noise):
    labels = rng.integers(0, len(prototypes), n)
    contrast = rng.uniform(0.5, 1.0, (n, 1, 1))
    shift = rng.uniform(-0.1, 0.1, (n, 1, 1)) * (hi - lo)
    pixels = rng.normal(0.0, noise * (hi - lo), (n, *prototypes.shape[1:]))
    images = np.clip(contrast * prototypes[labels] + shift + pixels, lo, hi)
    return images.reshape(n, -1).astype(np.float32), labels


def _one_hot(labels, n_classes):
    return (np.arange(n_classes) == labels[:, None]).astype(np.float32)


class DataSet:
    """One split: ``images``, ``labels``, ``num_examples`` and shuffled ``next_batch``."""

    def __init__(self, images, labels, seed):
        self.images = images
        self.labels = labels
        self.num_examples = len(images)
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(self.num_examples)
        self._pos = 0

    def next_batch(self, batch_size):
        if self._pos + batch_size > self.num_examples:
            self._order = self._rng.permutation(self.num_examples)
            self._pos = 0
        idx = self._order[self._pos:self._pos + batch_size]
        self._pos += batch_size
        return self.images[idx], self.labels[idx]


def _strokes(rng, n_classes, size):
    """Ten sparse "digits": the top ~20% of a smooth random field is ink (MNIST has ~19%
    non-zero pixels), the rest exactly 0."""
    field = _prototypes(rng, n_classes, size, 0.0, 1.0)
    cut = np.quantile(field, 0.8, axis=(1, 2), keepdims=True)
    return np.where(field > cut, (field - cut) / (1.0 - cut) * 0.7 + 0.3, 0.0)


def _digits(rng, strokes, n):
    shifted = np.stack([[np.roll(s, (dy, dx), axis=(0, 1)) for dy in range(-2, 3)
                         for dx in range(-2, 3)] for s in strokes])   # [class, shift, 28, 28]
    labels = rng.integers(0, len(strokes), n)
    images = shifted[labels, rng.integers(0, shifted.shape[1], n)]
    images = images * rng.uniform(0.6, 1.0, (n, 1, 1)) + rng.normal(0, 0.15, images.shape)
    return np.clip(images, 0.0, 1.0).reshape(n, -1).astype(np.float32), labels


def read_data_sets(train_dir=None, one_hot=False, seed=0, train_size=5000,
                   validation_size=500, test_size=1000):
    """MNIST-shaped splits (``train_dir`` is accepted and ignored: nothing is read)."""
    rng = np.random.default_rng(seed)
    strokes = _strokes(rng, 10, 28)
    splits = []
    for i, n in enumerate((train_size, validation_size, test_size)):
        images, labels = _digits(rng, strokes, n)
        splits.append(DataSet(images, _one_hot(labels, 10) if one_hot else labels,
                              seed + 1 + i))
    return Datasets(*splits)


def notmnist(seed=0, train_size=2000, valid_size=500, test_size=500):
    """``(train_dataset, train_labels, valid_dataset, valid_labels, test_dataset,
    test_labels)`` as the notMNIST assignments have them after ``reformat``: images [N,
    784] float32 in [-0.5, 0.5], labels one-hot [N, 10]."""
    rng = np.random.default_rng(seed)
    protos = _prototypes(rng, 10, 28, -0.5, 0.5)
    out = []
    for n in (train_size, valid_size, test_size):
        images, labels = _images(rng, protos, n, -0.5, 0.5, noise=0.6)
        out += [images, _one_hot(labels, 10)]
    return tuple(out)


def skipgram_corpus(vocabulary_size=500, length=20000, seed=0):
    """A token stream (int32 ids in [0, vocabulary_size)): each word is followed mostly by
    one of a few 'related' words, so skip-gram pairs carry signal."""
    rng = np.random.default_rng(seed)
    frequency = 1.0 / np.arange(1, vocabulary_size + 1)
    frequency /= frequency.sum()
    related = rng.integers(0, vocabulary_size, (vocabulary_size, 3))
    words = np.empty(length, np.int32)
    words[0] = 0
    for i in range(1, length):
        if rng.random() < 0.7:
            words[i] = related[words[i - 1], rng.integers(0, 3)]
        else:
            words[i] = rng.choice(vocabulary_size, p=frequency)
    return words
