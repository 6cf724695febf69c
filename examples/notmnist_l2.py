"""notMNIST logistic regression with L2 regularisation, as a TF1 user writes it.

The classic exercise (Udacity "Deep Learning", assignment 3, problem 1): multinomial logistic
regression on 28x28 letter images A-J, trained by full-batch gradient descent on a 10,000
image subset, with ``beta * l2_loss(weights)`` added to the loss. The only change from the
TensorFlow original is the first import: ``import gradverify.engine as tf``.

No dataset download: the images are synthetic but notMNIST-shaped, made here with a fixed
seed — ten 28x28 class prototypes (smooth random "glyphs"), each sample a randomly scaled and
shifted prototype plus pixel noise, in [-0.5, 0.5] like the normalised notMNIST pickles.

Run: ``python examples/notmnist_l2.py``. Imported or run by ``gradverify explain`` /
``gradverify audit``, it builds the graph (module-level ``graph``, ``optimizer`` - the train
op - and ``loss``) without training.
"""

from __future__ import annotations

import numpy as np

import gradverify.engine as tf

image_size = 28
num_labels = 10


# -- data ---------------------------------------------------------------------------------------
def make_dataset(seed=0, train_size=10000, valid_size=1000, test_size=1000):
    """Synthetic notMNIST-shaped splits: (dataset [N, 28, 28] float32, labels [N] int)."""
    rng = np.random.default_rng(seed)
    # ten prototypes: random blobs smoothed by a separable box filter, scaled to [-0.5, 0.5]
    raw = rng.standard_normal((num_labels, image_size + 6, image_size + 6))
    kernel = np.ones(7) / 7.0
    smooth = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 2, raw)
    smooth = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 1, smooth)
    lo = smooth.min(axis=(1, 2), keepdims=True)
    hi = smooth.max(axis=(1, 2), keepdims=True)
    prototypes = (smooth - lo) / (hi - lo) - 0.5

    def split(n):
        labels = rng.integers(0, num_labels, n)
        contrast = rng.uniform(0.3, 1.0, (n, 1, 1))
        shift = rng.uniform(-0.2, 0.2, (n, 1, 1))
        noise = rng.normal(0.0, 0.6, (n, image_size, image_size))
        images = np.clip(contrast * prototypes[labels] + shift + noise, -0.5, 0.5)
        return images.astype(np.float32), labels

    return split(train_size), split(valid_size), split(test_size)


def reformat(dataset, labels):
    """Flatten images to [N, 784] and make labels one-hot [N, 10] (float32)."""
    dataset = dataset.reshape((-1, image_size * image_size)).astype(np.float32)
    labels = (np.arange(num_labels) == labels[:, None]).astype(np.float32)
    return dataset, labels


def accuracy(predictions, labels):
    return (100.0 * np.sum(np.argmax(predictions, 1) == np.argmax(labels, 1))
            / predictions.shape[0])


# -- the TF1 program ------------------------------------------------------------------------------
def build_graph(seed=0, train_subset=10000, beta=0.01):
    """The TF1 graph on the synthetic data: returns a dict with the ``graph``, its tensors
    (``loss``, ``optimizer`` - the train op - and the three predictions) and the labels."""
    (train_dataset, train_labels), (valid_dataset, valid_labels), (
        test_dataset, test_labels) = make_dataset(seed, train_size=train_subset)
    train_dataset, train_labels = reformat(train_dataset, train_labels)
    valid_dataset, valid_labels = reformat(valid_dataset, valid_labels)
    test_dataset, test_labels = reformat(test_dataset, test_labels)

    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)

        # Input data: the training subset, validation and test data as constants.
        tf_train_dataset = tf.constant(train_dataset[:train_subset, :])
        tf_train_labels = tf.constant(train_labels[:train_subset])
        tf_valid_dataset = tf.constant(valid_dataset)
        tf_test_dataset = tf.constant(test_dataset)

        # Variables.
        weights = tf.Variable(tf.truncated_normal([image_size * image_size, num_labels]),
                              name="weights")
        biases = tf.Variable(tf.zeros([num_labels]), name="biases")

        # Training computation.
        logits = tf.matmul(tf_train_dataset, weights) + biases
        loss = tf.reduce_mean(
            tf.nn.softmax_cross_entropy_with_logits(labels=tf_train_labels, logits=logits)
        ) + tf.multiply(beta, tf.nn.l2_loss(weights))

        # Optimizer.
        optimizer = tf.train.GradientDescentOptimizer(0.5).minimize(loss)

        # Predictions for the training, validation, and test data.
        train_prediction = tf.nn.softmax(logits)
        valid_prediction = tf.nn.softmax(tf.matmul(tf_valid_dataset, weights) + biases)
        test_prediction = tf.nn.softmax(tf.matmul(tf_test_dataset, weights) + biases)

    return dict(graph=graph, loss=loss, optimizer=optimizer,
                train_prediction=train_prediction, valid_prediction=valid_prediction,
                test_prediction=test_prediction, train_labels=train_labels,
                valid_labels=valid_labels, test_labels=test_labels)


def main(num_steps=401, seed=0, train_subset=10000, beta=0.01, report_every=100,
         verbose=True):
    """Train by full-batch gradient descent; print progress every ``report_every`` steps.

    Returns the history: ``loss`` (every step), ``report_steps`` with the training and
    validation accuracy (%) at each, and the final ``test_accuracy`` (%).
    """
    m = build_graph(seed, train_subset, beta)
    graph, loss, optimizer = m["graph"], m["loss"], m["optimizer"]
    train_prediction, valid_prediction, test_prediction = (
        m["train_prediction"], m["valid_prediction"], m["test_prediction"])
    train_labels, valid_labels, test_labels = (m["train_labels"], m["valid_labels"],
                                               m["test_labels"])

    history = {"loss": [], "train_accuracy": [], "report_steps": [], "valid_accuracy": [],
               "test_accuracy": None}
    with tf.Session(graph=graph) as session:
        tf.global_variables_initializer().run()
        if verbose:
            print("Initialized")
        for step in range(num_steps):
            _, l, predictions = session.run([optimizer, loss, train_prediction])  # noqa: E741
            history["loss"].append(float(l))
            if step % report_every == 0 or step == num_steps - 1:
                train_acc = accuracy(predictions, train_labels[:train_subset, :])
                valid_acc = accuracy(valid_prediction.eval(), valid_labels)
                history["report_steps"].append(step)
                history["train_accuracy"].append(train_acc)
                history["valid_accuracy"].append(valid_acc)
                if verbose:
                    print(f"Loss at step {step}: {l:f}")
                    print(f"Training accuracy: {train_acc:.1f}%")
                    print(f"Validation accuracy: {valid_acc:.1f}%")
        history["test_accuracy"] = accuracy(test_prediction.eval(), test_labels)
        if verbose:
            print(f"Test accuracy: {history['test_accuracy']:.1f}%")
    return history


if __name__ == "__main__":
    main()
else:
    # For `gradverify explain/audit examples/notmnist_l2.py` (the script is run, not as
    # __main__): the graph, its train op and loss at module level, as in the TF1 notebooks.
    # Training runs only as a script.
    _model = build_graph()
    graph, optimizer, loss = _model["graph"], _model["optimizer"], _model["loss"]
