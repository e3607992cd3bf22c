"""What the two apps share: configuration plumbing, click options, model
lookup, resumable training, seeds, data-source checks and tf.distribute.

Imports run one way: the apps import this toolkit, the toolkit imports the
library (`kerasrnn.cells`, `kerasrnn.layers`) and `kerasrnn.serving`, never
an app.
"""
