"""The character model: Embedding -> 1 to 3 recurrent layers -> Dense(vocabulary).

Trained on windows of `seq_len` characters to predict each next character
(logits). The model holds no vocabulary: training writes it to the run
folder (vocabulary.json), and the SavedModel carries it as its `vocabulary`
signature, so sampling needs no training data around.
"""

import keras

from kerasrnn.apps.common.choices import keras_name, layer_class

EMBEDDING = 64


def build_model(vocab, cell="gru", units=512, layers=1, dropout=0.0, embedding=EMBEDDING,
                seed=None):
    """The language model, uncompiled.

    Built from kerasrnn's layers rather than `keras.layers.RNN(cell)`: the
    same cells and weights, but on TensorFlow their gradient is the
    written-out one of kerasrnn/bptt.py, which trains faster (docs/speed.md).

    Args:
        vocab: The characters, in id order; only their number is used.
        cell: A `--cell` name (kerasrnn.apps.common.choices.CELLS).
        units: Size of each recurrent layer's state.
        layers: Stacked recurrent layers, each returning its whole sequence.
        dropout: On each recurrent layer's input, and before the output layer.
        embedding: Size of the character embedding.
        seed: Seed of the dropout masks.
    """
    inputs = keras.Input((None,), dtype="int32", name="ids")
    h = keras.layers.Embedding(len(vocab), embedding, name="embedding")(inputs)
    for i in range(layers):
        h = layer_class(cell)(
            units, dropout=dropout, recurrent_dropout=0.0, seed=seed,
            return_sequences=True, name=f"{keras_name(cell)}_{i}",
        )(h)
    if dropout:
        h = keras.layers.Dropout(dropout, seed=seed)(h)
    logits = keras.layers.Dense(len(vocab), name="logits")(h)
    return keras.Model(inputs, logits, name=f"textgen_{keras_name(cell)}")


def recurrent_cells(model):
    """The model's cells, in order, and the embedding and output layers around them."""
    cells = [layer.cell for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    return model.get_layer("embedding"), cells, model.get_layer("logits")
