"""What the two apps share: configuration plumbing, click options, model
lookup, resumable training, seeds, data-source checks, tf.distribute, and
the quiet start of TensorFlow.

Imports run one way: the apps import this toolkit, the toolkit imports the
library (`kerasrnn`, `kerasrnn.serving`), never an app.
"""
