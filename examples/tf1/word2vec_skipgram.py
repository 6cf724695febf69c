import gradverify.engine as tf

# Skip-gram word2vec with noise-contrastive estimation, as in TF1's ``word2vec_basic.py``:
# a sliding-window batch generator over the corpus, ``embedding_lookup`` into a
# ``random_uniform`` embedding matrix, ``nce_loss`` with sampled negative classes, plain SGD
# at rate 1.0, then cosine similarity of a few validation words to every word.
#
# Unchanged except the first line and the corpus (``synthetic_data.skipgram_corpus``: a
# token stream with co-occurrence structure, already as ids). ``python
# examples/tf1/word2vec_skipgram.py``.

import collections
import math
import random

import numpy as np

from synthetic_data import skipgram_corpus

data_index = 0


def generate_batch(data, batch_size, num_skips, skip_window):
    global data_index
    assert batch_size % num_skips == 0
    assert num_skips <= 2 * skip_window
    batch = np.ndarray(shape=(batch_size), dtype=np.int32)
    labels = np.ndarray(shape=(batch_size, 1), dtype=np.int32)
    span = 2 * skip_window + 1  # [ skip_window target skip_window ]
    buffer = collections.deque(maxlen=span)
    if data_index + span > len(data):
        data_index = 0
    buffer.extend(data[data_index:data_index + span])
    data_index += span
    for i in range(batch_size // num_skips):
        context_words = [w for w in range(span) if w != skip_window]
        words_to_use = random.sample(context_words, num_skips)
        for j, context_word in enumerate(words_to_use):
            batch[i * num_skips + j] = buffer[skip_window]
            labels[i * num_skips + j, 0] = buffer[context_word]
        if data_index == len(data):
            buffer.extend(data[0:span])
            data_index = span
        else:
            buffer.append(data[data_index])
            data_index += 1
    # Backtrack a little bit to avoid skipping words in the end of a batch
    data_index = (data_index + len(data) - span) % len(data)
    return batch, labels


def main(num_steps=100001, batch_size=128, embedding_size=128, num_sampled=64,
         vocabulary_size=500, seed=0):
    """Train; returns every step's NCE loss (before that step's update)."""
    global data_index
    data_index = 0
    random.seed(seed)
    data = skipgram_corpus(vocabulary_size, seed=seed)

    skip_window = 1       # How many words to consider left and right.
    num_skips = 2         # How many times to reuse an input to generate a label.
    valid_size = 16       # Random set of words to evaluate similarity on.
    valid_window = 100    # Only pick dev samples in the head of the distribution.
    valid_examples = np.random.RandomState(seed).choice(valid_window, valid_size,
                                                        replace=False)

    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        # Input data.
        train_inputs = tf.placeholder(tf.int32, shape=[batch_size])
        train_labels = tf.placeholder(tf.int32, shape=[batch_size, 1])
        valid_dataset = tf.constant(valid_examples, dtype=tf.int32)

        # Ops and variables pinned to the CPU because of missing GPU implementation
        with tf.device('/cpu:0'):
            # Look up embeddings for inputs.
            embeddings = tf.Variable(
                tf.random_uniform([vocabulary_size, embedding_size], -1.0, 1.0))
            embed = tf.nn.embedding_lookup(embeddings, train_inputs)

            # Construct the variables for the NCE loss
            nce_weights = tf.Variable(
                tf.truncated_normal([vocabulary_size, embedding_size],
                                    stddev=1.0 / math.sqrt(embedding_size)))
            nce_biases = tf.Variable(tf.zeros([vocabulary_size]))

        # Compute the average NCE loss for the batch.
        # tf.nn.nce_loss automatically draws a new sample of the negative labels each
        # time we evaluate the loss.
        loss = tf.reduce_mean(
            tf.nn.nce_loss(weights=nce_weights, biases=nce_biases, labels=train_labels,
                           inputs=embed, num_sampled=num_sampled,
                           num_classes=vocabulary_size))

        # Construct the SGD optimizer using a learning rate of 1.0.
        optimizer = tf.train.GradientDescentOptimizer(1.0).minimize(loss)

        # Compute the cosine similarity between minibatch examples and all embeddings.
        norm = tf.sqrt(tf.reduce_sum(tf.square(embeddings), 1, keep_dims=True))
        normalized_embeddings = embeddings / norm
        valid_embeddings = tf.nn.embedding_lookup(normalized_embeddings, valid_dataset)
        similarity = tf.matmul(valid_embeddings, normalized_embeddings, transpose_b=True)

        # Add variable initializer.
        init = tf.global_variables_initializer()

    losses = []
    with tf.Session(graph=graph) as session:
        init.run()
        print('Initialized')
        average_loss = 0
        for step in range(num_steps):
            batch_inputs, batch_labels = generate_batch(data, batch_size, num_skips,
                                                        skip_window)
            feed_dict = {train_inputs: batch_inputs, train_labels: batch_labels}
            _, loss_val = session.run([optimizer, loss], feed_dict=feed_dict)
            losses.append(loss_val)
            average_loss += loss_val
            if step % 2000 == 0:
                if step > 0:
                    average_loss /= 2000
                print('Average loss at step ', step, ': ', average_loss)
                average_loss = 0
        sim = similarity.eval()
        nearest = (-sim[0, :]).argsort()[1:9]
        print('Nearest to word %d:' % valid_examples[0], nearest.tolist())
        final_embeddings = normalized_embeddings.eval()
        print('embeddings', final_embeddings.shape)
    return np.array(losses)


if __name__ == '__main__':
    main()
