import gradverify.engine as tf

# MNIST softmax regression, as in TensorFlow's "MNIST For ML Beginners" tutorial (r1.x).
#
# The code below is the tutorial's, unchanged except for the first line and the data source:
# ``synthetic_data.read_data_sets`` gives MNIST's shapes (28x28 images flattened to 784, ten
# classes, one-hot labels) without a download. ``python examples/tf1/mnist_softmax.py``.

import numpy as np

from synthetic_data import read_data_sets


def main(steps=1000, batch_size=100, seed=0):
    """Train; returns the cross-entropy of every step's batch (before that step's update)."""
    mnist = read_data_sets("MNIST_data/", one_hot=True, seed=seed)

    # Create the model
    x = tf.placeholder(tf.float32, [None, 784])
    W = tf.Variable(tf.zeros([784, 10]))
    b = tf.Variable(tf.zeros([10]))
    y = tf.matmul(x, W) + b

    # Define loss and optimizer
    y_ = tf.placeholder(tf.float32, [None, 10])
    cross_entropy = tf.reduce_mean(
        tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y))
    train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)

    sess = tf.InteractiveSession()
    tf.global_variables_initializer().run()
    # Train
    losses = []
    for _ in range(steps):
        batch_xs, batch_ys = mnist.train.next_batch(batch_size)
        _, loss = sess.run([train_step, cross_entropy], feed_dict={x: batch_xs, y_: batch_ys})
        losses.append(loss)

    # Test trained model
    correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
    print("test accuracy", sess.run(accuracy, feed_dict={x: mnist.test.images,
                                                         y_: mnist.test.labels}))
    sess.close()
    return np.array(losses)


if __name__ == "__main__":
    main()
