import gradverify.engine as tf

# An autoencoder on MNIST trained with RMSProp, in the style of the classic TF1 example
# collections ("TensorFlow-Examples" autoencoder): 784 -> 256 -> 128 sigmoid encoder, a
# mirrored decoder, mean squared reconstruction error, ``RMSPropOptimizer(0.01)``.
#
# Unchanged except the first line, the synthetic MNIST-shaped data, and ``main``'s
# arguments. ``python examples/tf1/autoencoder.py``.

import numpy as np

from synthetic_data import read_data_sets


def main(num_steps=30000, batch_size=256, learning_rate=0.01, display_step=1000, seed=0):
    """Train; returns every step's minibatch loss (before that step's update)."""
    mnist = read_data_sets("/tmp/data/", one_hot=True, seed=seed)
    tf.reset_default_graph()
    tf.set_random_seed(seed)

    # Network Parameters
    num_hidden_1 = 256  # 1st layer num features
    num_hidden_2 = 128  # 2nd layer num features (the latent dim)
    num_input = 784  # MNIST data input (img shape: 28*28)

    # tf Graph input (only pictures)
    X = tf.placeholder("float", [None, num_input])

    weights = {
        'encoder_h1': tf.Variable(tf.random_normal([num_input, num_hidden_1])),
        'encoder_h2': tf.Variable(tf.random_normal([num_hidden_1, num_hidden_2])),
        'decoder_h1': tf.Variable(tf.random_normal([num_hidden_2, num_hidden_1])),
        'decoder_h2': tf.Variable(tf.random_normal([num_hidden_1, num_input])),
    }
    biases = {
        'encoder_b1': tf.Variable(tf.random_normal([num_hidden_1])),
        'encoder_b2': tf.Variable(tf.random_normal([num_hidden_2])),
        'decoder_b1': tf.Variable(tf.random_normal([num_hidden_1])),
        'decoder_b2': tf.Variable(tf.random_normal([num_input])),
    }

    # Building the encoder
    def encoder(x):
        # Encoder Hidden layer with sigmoid activation #1
        layer_1 = tf.nn.sigmoid(tf.add(tf.matmul(x, weights['encoder_h1']),
                                       biases['encoder_b1']))
        # Encoder Hidden layer with sigmoid activation #2
        layer_2 = tf.nn.sigmoid(tf.add(tf.matmul(layer_1, weights['encoder_h2']),
                                       biases['encoder_b2']))
        return layer_2

    # Building the decoder
    def decoder(x):
        layer_1 = tf.nn.sigmoid(tf.add(tf.matmul(x, weights['decoder_h1']),
                                       biases['decoder_b1']))
        layer_2 = tf.nn.sigmoid(tf.add(tf.matmul(layer_1, weights['decoder_h2']),
                                       biases['decoder_b2']))
        return layer_2

    # Construct model
    encoder_op = encoder(X)
    decoder_op = decoder(encoder_op)

    # Prediction
    y_pred = decoder_op
    # Targets (Labels) are the input data.
    y_true = X

    # Define loss and optimizer, minimize the squared error
    loss = tf.reduce_mean(tf.pow(y_true - y_pred, 2))
    optimizer = tf.train.RMSPropOptimizer(learning_rate).minimize(loss)

    # Initialize the variables (i.e. assign their default value)
    init = tf.global_variables_initializer()

    losses = []
    # Start Training
    with tf.Session() as sess:
        # Run the initializer
        sess.run(init)

        # Training
        for i in range(1, num_steps + 1):
            # Prepare Data
            # Get the next batch of MNIST data (only images are needed, not labels)
            batch_x, _ = mnist.train.next_batch(batch_size)

            # Run optimization op (backprop) and cost op (to get loss value)
            _, l = sess.run([optimizer, loss], feed_dict={X: batch_x})
            losses.append(l)
            # Display logs per step
            if i % display_step == 0 or i == 1:
                print('Step %i: Minibatch Loss: %f' % (i, l))
    return np.array(losses)


if __name__ == "__main__":
    main()
