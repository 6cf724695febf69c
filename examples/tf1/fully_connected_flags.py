import gradverify.engine as tf

# Trains and evaluates a two-hidden-layer MNIST network driven by command-line flags, in the
# style of TF1's ``fully_connected_feed.py`` ("TensorFlow Mechanics 101"): hyperparameters
# are ``tf.app.flags``, ``main(_)`` builds the graph in ``tf.Graph().as_default()``, fills a
# feed dict per step, prints the loss every ``print_every`` steps and saves a checkpoint at
# the end; ``tf.app.run()`` parses the flags and calls ``main``.
#
# Unchanged except the first line and the synthetic MNIST-shaped data.
#   python examples/tf1/fully_connected_flags.py --max_steps=500 --learning_rate=0.05

import math
import os
import tempfile
import time

from synthetic_data import read_data_sets

flags = tf.app.flags
FLAGS = flags.FLAGS
flags.DEFINE_float('learning_rate', 0.01, 'Initial learning rate.')
flags.DEFINE_integer('max_steps', 2000, 'Number of steps to run trainer.')
flags.DEFINE_integer('hidden1', 128, 'Number of units in hidden layer 1.')
flags.DEFINE_integer('hidden2', 32, 'Number of units in hidden layer 2.')
flags.DEFINE_integer('batch_size', 100, 'Batch size.  Must divide evenly into the dataset sizes.')
flags.DEFINE_integer('print_every', 100, 'Print the loss every this many steps.')
flags.DEFINE_string('log_dir', os.path.join(tempfile.gettempdir(), 'fully_connected_feed'),
                    'Directory to put the checkpoints.')
flags.DEFINE_boolean('fake_data', False, 'If true, uses fake data for unit testing.')

NUM_CLASSES = 10
IMAGE_PIXELS = 28 * 28


def inference(images, hidden1_units, hidden2_units):
    """Build the MNIST model up to where it may be used for inference."""
    with tf.name_scope('hidden1'):
        weights = tf.Variable(tf.truncated_normal(
            [IMAGE_PIXELS, hidden1_units], stddev=1.0 / math.sqrt(float(IMAGE_PIXELS))),
            name='weights')
        biases = tf.Variable(tf.zeros([hidden1_units]), name='biases')
        hidden1 = tf.nn.relu(tf.matmul(images, weights) + biases)
    with tf.name_scope('hidden2'):
        weights = tf.Variable(tf.truncated_normal(
            [hidden1_units, hidden2_units], stddev=1.0 / math.sqrt(float(hidden1_units))),
            name='weights')
        biases = tf.Variable(tf.zeros([hidden2_units]), name='biases')
        hidden2 = tf.nn.relu(tf.matmul(hidden1, weights) + biases)
    with tf.name_scope('softmax_linear'):
        weights = tf.Variable(tf.truncated_normal(
            [hidden2_units, NUM_CLASSES], stddev=1.0 / math.sqrt(float(hidden2_units))),
            name='weights')
        biases = tf.Variable(tf.zeros([NUM_CLASSES]), name='biases')
        logits = tf.matmul(hidden2, weights) + biases
    return logits


def loss(logits, labels):
    labels = tf.to_int64(labels)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits, name='xentropy'), name='xentropy_mean')


def training(loss, learning_rate):
    tf.summary.scalar('loss', loss)
    optimizer = tf.train.GradientDescentOptimizer(learning_rate)
    global_step = tf.Variable(0, name='global_step', trainable=False)
    return optimizer.minimize(loss, global_step=global_step)


def evaluation(logits, labels):
    correct = tf.equal(tf.argmax(logits, 1), tf.to_int64(labels))
    return tf.reduce_sum(tf.cast(correct, tf.int32))


def run_training():
    data_sets = read_data_sets(FLAGS.log_dir, one_hot=False)
    with tf.Graph().as_default():
        images_placeholder = tf.placeholder(tf.float32, shape=(FLAGS.batch_size, IMAGE_PIXELS))
        labels_placeholder = tf.placeholder(tf.int32, shape=(FLAGS.batch_size,))
        logits = inference(images_placeholder, FLAGS.hidden1, FLAGS.hidden2)
        loss_op = loss(logits, labels_placeholder)
        train_op = training(loss_op, FLAGS.learning_rate)
        eval_correct = evaluation(logits, labels_placeholder)
        init = tf.global_variables_initializer()
        saver = tf.train.Saver()
        config = tf.ConfigProto(allow_soft_placement=True,
                                gpu_options=tf.GPUOptions(allow_growth=True))
        sess = tf.Session(config=config)
        sess.run(init)
        for step in range(FLAGS.max_steps):
            start_time = time.time()
            images_feed, labels_feed = data_sets.train.next_batch(FLAGS.batch_size)
            feed_dict = {images_placeholder: images_feed, labels_placeholder: labels_feed}
            _, loss_value = sess.run([train_op, loss_op], feed_dict=feed_dict)
            duration = time.time() - start_time
            if step % FLAGS.print_every == 0 or step + 1 == FLAGS.max_steps:
                print('Step %d: loss = %.4f (%.3f sec)' % (step, loss_value, duration))
        true_count = 0
        steps_per_epoch = data_sets.test.num_examples // FLAGS.batch_size
        for _ in range(steps_per_epoch):
            images_feed, labels_feed = data_sets.test.next_batch(FLAGS.batch_size)
            true_count += sess.run(eval_correct, feed_dict={images_placeholder: images_feed,
                                                            labels_placeholder: labels_feed})
        num_examples = steps_per_epoch * FLAGS.batch_size
        print('Test: Num examples: %d  Num correct: %d  Precision @ 1: %0.04f'
              % (num_examples, true_count, float(true_count) / num_examples))
        os.makedirs(FLAGS.log_dir, exist_ok=True)
        print('Saved', saver.save(sess, os.path.join(FLAGS.log_dir, 'model.ckpt'),
                                  global_step=FLAGS.max_steps))


def main(_):
    run_training()


if __name__ == '__main__':
    tf.app.run()
