import gradverify.engine as tf

# notMNIST: one hidden layer of ReLUs with L2 regularisation and a decaying learning rate —
# the Udacity "Deep Learning" course, assignment 3 (regularization), problem 4, as students
# wrote it: placeholders of a fixed batch size, validation and test sets as constants,
# ``beta * (l2_loss(w1) + l2_loss(w2))`` added to the loss, ``exponential_decay`` driven by a
# ``global_step`` that ``minimize`` increments.
#
# Unchanged except the first line and the data (``synthetic_data.notmnist``: the reformatted
# pickles' shapes). ``python examples/tf1/notmnist_fc_l2_decay.py``.

import numpy as np

from synthetic_data import notmnist

image_size = 28
num_labels = 10


def accuracy(predictions, labels):
    return (100.0 * np.sum(np.argmax(predictions, 1) == np.argmax(labels, 1))
            / predictions.shape[0])


def main(num_steps=3001, batch_size=128, hidden_nodes=1024, beta=0.001, seed=0):
    """Train; returns every step's minibatch loss (before that step's update)."""
    (train_dataset, train_labels, valid_dataset, valid_labels, test_dataset,
     test_labels) = notmnist(seed=seed)

    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        # Input data. For the training data, we use a placeholder that will be fed
        # at run time with a training minibatch.
        tf_train_dataset = tf.placeholder(tf.float32,
                                          shape=(batch_size, image_size * image_size))
        tf_train_labels = tf.placeholder(tf.float32, shape=(batch_size, num_labels))
        tf_valid_dataset = tf.constant(valid_dataset)
        tf_test_dataset = tf.constant(test_dataset)

        # Variables.
        weights1 = tf.Variable(tf.truncated_normal(
            [image_size * image_size, hidden_nodes], stddev=np.sqrt(2.0 / (image_size ** 2))))
        biases1 = tf.Variable(tf.zeros([hidden_nodes]))
        weights2 = tf.Variable(tf.truncated_normal(
            [hidden_nodes, num_labels], stddev=np.sqrt(2.0 / hidden_nodes)))
        biases2 = tf.Variable(tf.zeros([num_labels]))

        def model(data):
            hidden = tf.nn.relu(tf.matmul(data, weights1) + biases1)
            return tf.matmul(hidden, weights2) + biases2

        # Training computation.
        logits = model(tf_train_dataset)
        loss = tf.reduce_mean(
            tf.nn.softmax_cross_entropy_with_logits(labels=tf_train_labels, logits=logits))
        loss = loss + beta * (tf.nn.l2_loss(weights1) + tf.nn.l2_loss(weights2))

        # Optimizer with learning rate decay.
        global_step = tf.Variable(0)  # count the number of steps taken.
        learning_rate = tf.train.exponential_decay(0.5, global_step, 1000, 0.65,
                                                   staircase=True)
        optimizer = tf.train.GradientDescentOptimizer(learning_rate).minimize(
            loss, global_step=global_step)

        # Predictions for the training, validation, and test data.
        train_prediction = tf.nn.softmax(logits)
        valid_prediction = tf.nn.softmax(model(tf_valid_dataset))
        test_prediction = tf.nn.softmax(model(tf_test_dataset))

    losses = []
    with tf.Session(graph=graph) as session:
        tf.global_variables_initializer().run()
        print("Initialized")
        for step in range(num_steps):
            offset = (step * batch_size) % (train_labels.shape[0] - batch_size)
            batch_data = train_dataset[offset:(offset + batch_size), :]
            batch_labels = train_labels[offset:(offset + batch_size), :]
            feed_dict = {tf_train_dataset: batch_data, tf_train_labels: batch_labels}
            _, l, predictions = session.run(
                [optimizer, loss, train_prediction], feed_dict=feed_dict)
            losses.append(l)
            if step % 500 == 0:
                print("Minibatch loss at step %d: %f" % (step, l))
                print("Minibatch accuracy: %.1f%%" % accuracy(predictions, batch_labels))
                print("Validation accuracy: %.1f%%" % accuracy(
                    valid_prediction.eval(), valid_labels))
        print("Test accuracy: %.1f%%" % accuracy(test_prediction.eval(), test_labels))
        print("Final learning rate: %f (global step %d)"
              % tuple(session.run([learning_rate, global_step])))
    return np.array(losses)


if __name__ == "__main__":
    main()
