"""The character model: Embedding -> 1 to 3 recurrent layers -> Dense(vocabulary).

Trained on windows of `seq_len` characters to predict each next character
(logits). The model holds no vocabulary: training writes it to the run
folder (vocabulary.json), and the SavedModel carries it as its `vocabulary`
signature, so sampling needs no training data around.

The minimal cells (`--cell mingru`, `minlstm`) are stacked as Feng et al.
(2024) stack them for language modelling: their recurrence is linear in the
state, so depth, not the cell, must supply the nonlinearity. Each layer is a
pre-norm residual block, as in a Transformer with the attention replaced:

    x = x + MinRNN(LayerNorm(x))
    x = x + MLP(LayerNorm(x)),      MLP = Dense(4·units, GELU) -> Dense(units)

with the embedding as wide as the units, and a last LayerNorm before the
output layer.
"""

import dataclasses

import keras

from kerasrnn.apps.common.choices import MINIMAL_CELLS, keras_name, layer_class

EMBEDDING = 64
MLP_WIDTH = 4  # the MLP's hidden width, in units


def build_model(vocab, cell="gru", units=512, layers=1, dropout=0.0, embedding=EMBEDDING,
                seed=None):
    """The language model, uncompiled.

    Built from kerasrnn's layers rather than `keras.layers.RNN(cell)`: the
    same cells and weights, but each layer runs its fastest path
    (docs/speed.md): on TensorFlow, the written-out gradient of
    kerasrnn/bptt.py; for the minimal cells, a scan over the whole window.

    Args:
        vocab: The characters, in id order; only their number is used.
        cell: A `--cell` name (kerasrnn.apps.common.choices.CELLS).
        units: Size of each recurrent layer's state.
        layers: Stacked recurrent layers (or blocks), each returning its
            whole sequence.
        dropout: On each recurrent layer's input, and before the output
            layer; in residual blocks, on each branch's output.
        embedding: Size of the character embedding (residual blocks: `units`).
        seed: Seed of the dropout masks.
    """
    inputs = keras.Input((None,), dtype="int32", name="ids")
    if cell in MINIMAL_CELLS:
        return _residual_model(inputs, vocab, cell, units, layers, dropout, seed)
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


def _residual_model(inputs, vocab, cell, units, layers, dropout, seed):
    x = keras.layers.Embedding(len(vocab), units, name="embedding")(inputs)
    for i in range(layers):
        block = f"block_{i}"
        h = keras.layers.LayerNormalization(name=f"{block}_norm")(x)
        h = layer_class(cell)(units, return_sequences=True, name=f"{keras_name(cell)}_{i}")(h)
        if dropout:
            h = keras.layers.Dropout(dropout, seed=seed)(h)
        x = keras.layers.Add(name=f"{block}_add")([x, h])
        h = keras.layers.LayerNormalization(name=f"{block}_mlp_norm")(x)
        h = keras.layers.Dense(MLP_WIDTH * units, activation="gelu", name=f"{block}_mlp_in")(h)
        h = keras.layers.Dense(units, name=f"{block}_mlp_out")(h)
        if dropout:
            h = keras.layers.Dropout(dropout, seed=seed)(h)
        x = keras.layers.Add(name=f"{block}_mlp_add")([x, h])
    x = keras.layers.LayerNormalization(name="final_norm")(x)
    logits = keras.layers.Dense(len(vocab), name="logits")(x)
    return keras.Model(inputs, logits, name=f"textgen_{keras_name(cell)}")


@dataclasses.dataclass
class Block:
    """The layers around a residual block's cell, for stepping it by hand."""

    norm: keras.layers.Layer
    mlp_norm: keras.layers.Layer
    mlp_in: keras.layers.Layer
    mlp_out: keras.layers.Layer

    def mlp(self, x):
        return self.mlp_out(self.mlp_in(self.mlp_norm(x)))


@dataclasses.dataclass
class Parts:
    """What a generator steps, in order: the embedding, each recurrent layer's
    cell with its residual block (None for a plain stack), and the head."""

    embedding: keras.layers.Layer
    cells: list
    blocks: list
    final_norm: keras.layers.Layer | None
    logits: keras.layers.Layer

    def head(self, x):
        return self.logits(x if self.final_norm is None else self.final_norm(x))


def model_parts(model):
    """The model's `Parts`."""
    names = {layer.name for layer in model.layers}
    rnns = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    blocks = []
    for i in range(len(rnns)):
        block = f"block_{i}"
        blocks.append(Block(*(model.get_layer(f"{block}_{part}")
                              for part in ("norm", "mlp_norm", "mlp_in", "mlp_out")))
                      if f"{block}_norm" in names else None)
    return Parts(model.get_layer("embedding"), [layer.cell for layer in rnns], blocks,
                 model.get_layer("final_norm") if "final_norm" in names else None,
                 model.get_layer("logits"))
