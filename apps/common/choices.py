"""The names the command line offers: cells and tf.distribute strategies.

Plain data, so that `--help` can list them without importing Keras.
"""

# --cell NAME -> the kerasrnn layer of that cell (its cell class adds "Cell"),
# for both apps.
CELLS = {
    "lstm": "LSTM",
    "gru": "GRU",
    "rnn": "SimpleRNN",
    "layernorm-lstm": "LayerNormLSTM",
    "layernorm-gru": "LayerNormGRU",
    "layernorm-rnn": "LayerNormSimpleRNN",
    "peephole-lstm": "PeepholeLSTM",
    "mingru": "MinGRU",
    "minlstm": "MinLSTM",
}
# The cells whose gates read the input alone (Feng et al. 2024); textgen
# stacks them in residual blocks.
MINIMAL_CELLS = ("mingru", "minlstm")


def keras_name(cell):
    """`--cell NAME` as part of a Keras layer or model name (no hyphens)."""
    return cell.replace("-", "_")


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
