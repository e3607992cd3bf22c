"""The character model: Embedding -> 1 to 3 recurrent layers -> Dense(vocabulary).

Trained on windows of `seq_len` characters to predict each next character
(logits). The vocabulary lives in the model's config, so a saved model can
sample with no training data around.
"""

import keras

import kerasrnn

# Our layers rather than `keras.layers.RNN(cell)`: the same cells and weights,
# but on TensorFlow their gradient is kerasrnn/bptt.py's, which trained the
# 60-minute recipe's model 1.17 times as fast on the 2-core CPU
# (benchmarks/textgen_training.py).
LAYERS = {"lstm": kerasrnn.LSTM, "gru": kerasrnn.GRU, "rnn": kerasrnn.SimpleRNN}

EMBEDDING = 64


def build_model(vocab, cell="gru", units=512, layers=1, dropout=0.0, embedding=EMBEDDING,
                seed=None):
    """The language model, uncompiled. Its name records the vocabulary size."""
    layer_class = LAYERS[cell]
    inputs = keras.Input((None,), dtype="int32", name="ids")
    h = keras.layers.Embedding(len(vocab), embedding, name="embedding")(inputs)
    for i in range(layers):
        h = layer_class(
            units, dropout=dropout, recurrent_dropout=0.0, seed=seed,
            return_sequences=True, name=f"{cell}_{i}",
        )(h)
    if dropout:
        h = keras.layers.Dropout(dropout, seed=seed)(h)
    logits = keras.layers.Dense(len(vocab), name="logits")(h)
    return keras.Model(inputs, logits, name=f"textgen_{cell}")


def recurrent_cells(model):
    """The model's cells, in order, and the embedding and output layers around them."""
    cells = [layer.cell for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    return model.get_layer("embedding"), cells, model.get_layer("logits")
