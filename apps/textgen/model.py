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

`model_parts(model).step` is the same network one character at a time, the
states passed in and out: what generation, the exported step and `inspect`
run.
"""

import dataclasses

import keras
import numpy as np

from kerasrnn.apps.common.choices import MINIMAL_CELLS, keras_name, layer_class

EMBEDDING = 64
MLP_WIDTH = 4  # the MLP's hidden width, in units


def build_model(vocab, cell="gru", units=512, layers=1, dropout=0.0, embedding=EMBEDDING,
                seed=None, counts=None):
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
        counts: How often each character occurs in the training text, in id
            order. The output layer's bias then starts at the characters'
            log-frequencies (`output_bias`), so that the untrained model
            predicts each character as often as the text holds it.
    """
    inputs = keras.Input((None,), dtype="int32", name="ids")
    bias = "zeros" if counts is None else keras.initializers.Constant(output_bias(counts))
    if cell in MINIMAL_CELLS:
        return _residual_model(inputs, vocab, bias, cell, units, layers, dropout, seed)
    h = keras.layers.Embedding(len(vocab), embedding, name="embedding")(inputs)
    for i in range(layers):
        h = layer_class(cell)(
            units, dropout=dropout, recurrent_dropout=0.0, seed=seed,
            return_sequences=True, name=f"{keras_name(cell)}_{i}",
        )(h)
    if dropout:
        h = keras.layers.Dropout(dropout, seed=seed)(h)
    logits = keras.layers.Dense(len(vocab), bias_initializer=bias, name="logits")(h)
    return keras.Model(inputs, logits, name=f"textgen_{keras_name(cell)}")


def output_bias(counts):
    """The log-frequencies of characters counted `counts` times (one more
    each, so that a character the training text lacks is rare, not
    impossible), less their mean (softmax ignores a constant; centred,
    the biases start near zero).

    Why: with the bias at zero, the untrained model gives every character
    the same probability, and Adam lowers a rare character's logit by about
    one learning rate a step. With a vocabulary of hundreds of rare
    characters (a text with CJK, symbols, accented letters) their summed
    probability then stays large for thousands of steps, and every
    character pays for it; starting from the frequencies skips that phase.
    """
    log_frequencies = np.log(np.asarray(counts, "float64") + 1.0)
    return (log_frequencies - log_frequencies.mean()).astype("float32")


def _residual_model(inputs, vocab, bias, cell, units, layers, dropout, seed):
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
    logits = keras.layers.Dense(len(vocab), bias_initializer=bias, name="logits")(x)
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
    """The model's layers in the order a character passes them: the
    embedding, each recurrent layer's cell with its residual block (None for
    a plain stack), and the head; and its step through them."""

    embedding: keras.layers.Layer
    cells: list
    blocks: list
    final_norm: keras.layers.Layer | None
    logits: keras.layers.Layer

    def head(self, x):
        return self.logits(x if self.final_norm is None else self.final_norm(x))

    def step(self, first, states, gates=None):
        """The model's step: one character per row -> logits [batch, vocab], states.

        The forward pass of `build_model`'s network for one character, each
        recurrent layer's state passed in and out (one tensor per state, in
        layer order; an LSTM's two, h and c), every cell computing its own
        step (`project`, `recurrent_step`). Generation, the exported step and
        `inspect` all run the model through this.

        `first` is `first(ids)` for these characters, or rows of
        `first_table()`: the first cell's `project` of its input times its
        kernel in a plain stack; the embedded characters where the first
        layer is a residual block, whose stream carries them past the cell.
        `states` is a list, not one stacked tensor, which spares every
        character a stack and an unstack in a loop. A `gates` list, when
        given, gets every cell's gate activations of this step, read off the
        cell's own step.
        """
        new_states, k, x = [], 0, None
        for i, (cell, block) in enumerate(zip(self.cells, self.blocks, strict=True)):
            if block is not None:  # x + cell(norm(x)), then x + MLP(norm(x))
                x = first if i == 0 else x
                projection = cell.project(keras.ops.matmul(block.norm(x), cell.kernel))
            elif i == 0:
                projection = first
            else:  # a layer above the first reads the one below
                projection = cell.project(keras.ops.matmul(x, cell.kernel))
            n = len(state_sizes(cell))
            if gates is None:
                output, cell_states = cell.recurrent_step(projection, states[k : k + n])
            else:
                output, cell_states, cell_gates = cell.recurrent_step(
                    projection, states[k : k + n], return_gates=True)
                gates.extend(cell_gates[name] for name in cell.gate_names)
            if block is not None:
                x = x + output
                x = x + block.mlp(x)
            else:
                x = output
            if not isinstance(cell_states, (list, tuple)):
                cell_states = [cell_states]
            new_states.extend(cell_states)
            k += n
        return self.head(x), new_states

    def first(self, ids):
        """What `step` takes for these characters (see there)."""
        if self.blocks[0] is not None:
            return self.embedding(ids)
        cell = self.cells[0]
        return cell.project(keras.ops.matmul(self.embedding(ids), cell.kernel))

    def first_table(self):
        """`first` of every character at once, one row per id.

        Generating, the first input is always one of these rows, so a
        gather per character replaces the embedding lookup and, in a plain
        stack, a matmul (docs/speed.md, "Generating text", has what it
        saves). Computed from the weights on each call, so a SavedModel
        stores nothing twice.
        """
        if self.blocks[0] is not None:
            return self.embedding.embeddings
        cell = self.cells[0]
        return cell.project(keras.ops.matmul(self.embedding.embeddings, cell.kernel))


def state_sizes(cell):
    """The sizes of a cell's state tensors, one per tensor (an LSTM's two: h, c)."""
    return cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]


def model_parts(model):
    """The `Parts` of a model `build_model` built (or a loaded copy), found by
    the names `build_model` gives its layers."""
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
