"""The names the command line offers: cells and tf.distribute strategies.

Plain data, so that `--help` can list them without importing Keras.
"""

# --cell NAME -> the kerasrnn layer of that cell (its cell class adds "Cell").
CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}

# default: this device; mirrored: every local GPU; multiworker: TF_CONFIG's hosts.
STRATEGIES = ("default", "mirrored", "multiworker")


def cell_class(name):
    """kerasrnn's cell class for `--cell NAME`, e.g. `LSTMCell` for "lstm"."""
    import kerasrnn

    return getattr(kerasrnn, CELLS[name] + "Cell")


def layer_class(name):
    """kerasrnn's layer class for `--cell NAME`, e.g. `LSTM` for "lstm"."""
    import kerasrnn

    return getattr(kerasrnn, CELLS[name])
