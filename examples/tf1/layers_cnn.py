import gradverify.engine as tf

# A convolutional network built with ``tf.layers``, as in TF1's "A Guide to TF Layers:
# Building a Convolutional Neural Network" (``cnn_mnist.py``): conv2d 5x5x32 (same, relu) ->
# max_pooling2d 2x2 -> conv2d 5x5x64 -> max_pooling2d -> dense 1024 (relu) -> dropout 0.4
# (only when training) -> dense 10, sparse softmax cross-entropy. The tutorial wraps this in
# an Estimator; here the same model function is trained with a plain Session loop, the
# ``training`` flag a boolean placeholder.
#
# Unchanged apart from the first line and the synthetic MNIST-shaped data.
# ``python examples/tf1/layers_cnn.py``.

import numpy as np

from synthetic_data import read_data_sets


def cnn_model_fn(features, training):
    """Model function for CNN: logits [N, 10]."""
    # Input Layer
    input_layer = tf.reshape(features, [-1, 28, 28, 1])

    # Convolutional Layer #1
    conv1 = tf.layers.conv2d(inputs=input_layer, filters=32, kernel_size=[5, 5],
                             padding="same", activation=tf.nn.relu)
    # Pooling Layer #1
    pool1 = tf.layers.max_pooling2d(inputs=conv1, pool_size=[2, 2], strides=2)

    # Convolutional Layer #2 and Pooling Layer #2
    conv2 = tf.layers.conv2d(inputs=pool1, filters=64, kernel_size=[5, 5], padding="same",
                             activation=tf.nn.relu)
    pool2 = tf.layers.max_pooling2d(inputs=conv2, pool_size=[2, 2], strides=2)

    # Dense Layer
    pool2_flat = tf.layers.flatten(pool2)
    dense = tf.layers.dense(inputs=pool2_flat, units=1024, activation=tf.nn.relu)
    dropout = tf.layers.dropout(inputs=dense, rate=0.4, training=training)

    # Logits Layer
    return tf.layers.dense(inputs=dropout, units=10)


def main(steps=20000, batch_size=100, learning_rate=0.001, seed=0, test_examples=1000):
    """Train; returns every step's minibatch loss (before that step's update)."""
    mnist = read_data_sets("MNIST_data", one_hot=False, seed=seed)
    tf.reset_default_graph()
    tf.set_random_seed(seed)

    x = tf.placeholder(tf.float32, [None, 784], name="x")
    labels = tf.placeholder(tf.int64, [None], name="labels")
    training = tf.placeholder_with_default(False, [], name="training")
    logits = cnn_model_fn(x, training)
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    train_op = tf.train.GradientDescentOptimizer(learning_rate).minimize(
        loss, global_step=tf.train.get_or_create_global_step())
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.float32))

    losses = []
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(steps):
            batch_x, batch_y = mnist.train.next_batch(batch_size)
            _, l = sess.run([train_op, loss],
                            feed_dict={x: batch_x, labels: batch_y, training: True})
            losses.append(l)
            if step % 50 == 0:
                print("step %d, loss = %.4f" % (step, l))
        print("test accuracy: %.3f" % sess.run(accuracy, feed_dict={
            x: mnist.test.images[:test_examples], labels: mnist.test.labels[:test_examples]}))
    return np.array(losses)


if __name__ == "__main__":
    main()
