import gradverify.engine as tf

# Linear regression with ``get_variable``, TensorBoard summaries and a Saver round trip, in the
# style of the classic TF1 example collections: variables made with ``tf.get_variable`` inside
# a ``variable_scope``, ``tf.summary.scalar``/``histogram`` merged with ``merge_all`` and
# written by a ``FileWriter`` each few steps, a checkpoint saved with the global step, then a
# fresh session restoring ``latest_checkpoint`` and getting the same predictions.
#
# Unchanged except the first line and the data (noisy points on a line).
# ``python examples/tf1/linear_regression.py /tmp/linreg`` (the FileWriter needs the
# ``tensorboard`` extra; pass ``logdir=None`` to ``main`` to train without it).

import os
import sys
import tempfile

import numpy as np

rng = np.random.RandomState(0)
train_X = rng.uniform(-1.0, 1.0, 100).astype(np.float32)
train_Y = (2.0 * train_X + 0.5 + rng.normal(0.0, 0.1, 100)).astype(np.float32)
n_samples = train_X.shape[0]


def main(training_epochs=1000, display_step=50, learning_rate=0.1, logdir=None,
         checkpoint_dir=None):
    """Train; returns (every epoch's cost, the restored session's predictions match)."""
    checkpoint_dir = checkpoint_dir or tempfile.mkdtemp()
    os.makedirs(checkpoint_dir, exist_ok=True)
    tf.reset_default_graph()

    # tf Graph Input
    X = tf.placeholder(tf.float32, name="X")
    Y = tf.placeholder(tf.float32, name="Y")

    # Set model weights
    with tf.variable_scope("linear"):
        W = tf.get_variable("weight", [], initializer=tf.random_normal_initializer(seed=1))
        b = tf.get_variable("bias", [], initializer=tf.zeros_initializer())

    # Construct a linear model
    pred = tf.add(tf.multiply(X, W), b)

    # Mean squared error
    cost = tf.reduce_sum(tf.pow(pred - Y, 2)) / (2 * n_samples)
    global_step = tf.train.get_or_create_global_step()
    optimizer = tf.train.GradientDescentOptimizer(learning_rate).minimize(
        cost, global_step=global_step)

    tf.summary.scalar("cost", cost)
    tf.summary.histogram("weight", W)
    merged = tf.summary.merge_all()
    saver = tf.train.Saver(max_to_keep=3)
    init = tf.global_variables_initializer()

    costs = []
    with tf.Session() as sess:
        sess.run(init)
        writer = tf.summary.FileWriter(logdir, sess.graph) if logdir else None
        for epoch in range(training_epochs):
            summary, c, _ = sess.run([merged, cost, optimizer],
                                     feed_dict={X: train_X, Y: train_Y})
            costs.append(c)
            if (epoch + 1) % display_step == 0:
                if writer is not None:
                    writer.add_summary(summary, epoch + 1)
                print("Epoch:", "%04d" % (epoch + 1), "cost=", "{:.9f}".format(c),
                      "W=", sess.run(W), "b=", sess.run(b))
                saver.save(sess, os.path.join(checkpoint_dir, "model.ckpt"),
                           global_step=global_step)
        if writer is not None:
            writer.close()
        print("Optimization Finished!")
        trained = sess.run(pred, feed_dict={X: train_X})
        print("Training cost=", sess.run(cost, feed_dict={X: train_X, Y: train_Y}),
              "W=", sess.run(W), "b=", sess.run(b))

    # A new session knows nothing: restore the latest checkpoint.
    with tf.Session() as sess:
        saver.restore(sess, tf.train.latest_checkpoint(checkpoint_dir))
        restored = sess.run(pred, feed_dict={X: train_X})
        print("Restored", tf.train.latest_checkpoint(checkpoint_dir), "step",
              sess.run(global_step))
    return np.array(costs), bool(np.array_equal(trained, restored))


if __name__ == "__main__":
    main(logdir=sys.argv[1] if len(sys.argv) > 1 else None)
