"""The character model: Embedding -> 1 to 3 recurrent layers -> Dense(vocabulary).

Trained on windows of `seq_len` characters to predict each next character
(logits). The model holds no vocabulary: training writes it to the run
folder (vocabulary.json), and the SavedModel carries it as its `vocabulary`
signature, so sampling needs no training data around.

The minimal cells (`--cell mingru`, `minlstm`) are stacked as Feng et al.
(2024) stack them for language modelling: their recurrence is linear in the
state, so depth, not the cell, must supply the nonlinearity. Each layer is a
pre-norm residual block (`ResidualBlock`), as in a Transformer with the
attention replaced:

    x = x + MinRNN(LayerNorm(x))
    x = x + MLP(LayerNorm(x)),      MLP = Dense(4·units, GELU) -> Dense(units)

with the embedding as wide as the units, and a last LayerNorm before the
output layer.

One class, `CharacterModel`, holds the layers and both ways through them:
`call` runs whole windows through each layer's fastest path (training,
evaluation), `step` runs one character through the same layers' cells with
the states passed in and out (generation, the exported step, `inspect`).
"""

import keras
import numpy as np

from kerasrnn.apps.common.choices import MINIMAL_CELLS, keras_name, layer_class

EMBEDDING = 64
MLP_WIDTH = 4  # the MLP's hidden width, in units


@keras.saving.register_keras_serializable(package="kerasrnn.textgen")
class CharacterModel(keras.Model):
    """The language model over character ids.

    Built from kerasrnn's layers rather than `keras.layers.RNN(cell)`: the
    same cells and weights, but each layer runs its fastest path
    (docs/speed.md): on TensorFlow, the written-out gradient of
    kerasrnn/bptt.py; for the minimal cells, a scan over the whole window.

    Args:
        vocab_size: Number of characters (ids 0 to vocab_size - 1).
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

    Call arguments:
        ids: int32 [batch, time], character ids.
        training: Whether dropout applies.

    Returns logits [batch, time, vocab_size], each position's prediction of
    the next character.

    Example:

    >>> model = CharacterModel(65, "gru", units=32)
    >>> model(np.zeros((2, 10), "int32")).shape
    (2, 10, 65)
    """

    def __init__(self, vocab_size, cell="gru", units=512, layers=1, dropout=0.0,
                 embedding=EMBEDDING, seed=None, counts=None, **kwargs):
        kwargs.setdefault("name", f"textgen_{keras_name(cell)}")
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.cell_name = cell
        self.units = units
        self.depth = layers
        self.dropout_rate = dropout
        self.embedding_size = embedding
        self.seed = seed
        self.counts = None if counts is None else [int(n) for n in counts]
        residual = cell in MINIMAL_CELLS

        self.embedding = keras.layers.Embedding(
            vocab_size, units if residual else embedding, name="embedding")
        if residual:
            self.recurrent = [ResidualBlock(cell, units, dropout, seed, name=f"block_{i}")
                              for i in range(layers)]
        else:
            self.recurrent = [layer_class(cell)(
                units, dropout=dropout, recurrent_dropout=0.0, seed=seed,
                return_sequences=True, name=f"{keras_name(cell)}_{i}") for i in range(layers)]
        # Dropout before the output layer; a residual block drops its own branches.
        self.dropout = (keras.layers.Dropout(dropout, seed=seed)
                        if dropout and not residual else None)
        self.final_norm = keras.layers.LayerNormalization(name="final_norm") if residual else None
        bias = "zeros" if counts is None else keras.initializers.Constant(output_bias(counts))
        self.logits = keras.layers.Dense(vocab_size, bias_initializer=bias, name="logits")
        # Built at once, as a functional model is: its weights exist from the
        # start (count_params, set_weights, a distribution strategy's scope).
        self.build((None, None))

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "cell": self.cell_name,
                "units": self.units, "layers": self.depth, "dropout": self.dropout_rate,
                "embedding": self.embedding_size, "seed": self.seed, "counts": self.counts}

    def build(self, input_shape):
        self.embedding.build(input_shape)
        shape = (*input_shape, self.embedding.output_dim)
        for layer in self.recurrent:
            layer.build(shape)
            shape = (*input_shape, self.units)
        if self.final_norm is not None:
            self.final_norm.build(shape)
        self.logits.build(shape)

    def call(self, ids, training=False):
        x = self.embedding(ids)
        for layer in self.recurrent:
            x = layer(x, training=training)
        if self.dropout is not None:
            x = self.dropout(x, training=training)
        return self.head(x)

    def head(self, x):
        """The logits of the top layer's output."""
        return self.logits(x if self.final_norm is None else self.final_norm(x))

    @property
    def cells(self):
        """Each recurrent layer's cell, bottom up."""
        return [_rnn(layer).cell for layer in self.recurrent]

    def step(self, first, states, gates=None):
        """`call` for one character per row -> logits [batch, vocab], states.

        Each recurrent layer's state is passed in and out (one tensor per
        state, in layer order; an LSTM's two, h and c), every cell computing
        its own step (`project`, `recurrent_step`). Generation, the exported
        step and `inspect` all run the model through this; no dropout.

        `first` is `first(ids)` for these characters, or rows of
        `first_table()`: the first cell's `project` of its input times its
        kernel in a plain stack; the embedded characters where the first
        layer is a residual block, whose stream carries them past the cell.
        `states` is a list, not one stacked tensor, which spares every
        character a stack and an unstack in a loop. A `gates` list, when
        given, gets every cell's gate activations of this step, read off the
        cell's own step.
        """
        new_states, k, x = [], 0, first
        for i, layer in enumerate(self.recurrent):
            n = len(state_sizes(_rnn(layer).cell))
            if isinstance(layer, ResidualBlock):
                x, layer_states = layer.step(x, states[k : k + n], gates)
            else:
                cell = layer.cell
                # The first layer's projection is `first`; a layer above reads the one below.
                projection = x if i == 0 else cell.project(keras.ops.matmul(x, cell.kernel))
                x, layer_states = cell_step(cell, projection, states[k : k + n], gates)
            new_states.extend(layer_states)
            k += n
        return self.head(x), new_states

    def first(self, ids):
        """What `step` takes for these characters (see there)."""
        if self.final_norm is not None:  # residual blocks
            return self.embedding(ids)
        cell = self.recurrent[0].cell
        return cell.project(keras.ops.matmul(self.embedding(ids), cell.kernel))

    def first_table(self):
        """`first` of every character at once, one row per id.

        Generating, the first input is always one of these rows, so a
        gather per character replaces the embedding lookup and, in a plain
        stack, a matmul (docs/speed.md, "Generating text", has what it
        saves). Computed from the weights on each call, so a SavedModel
        stores nothing twice.
        """
        if self.final_norm is not None:  # residual blocks
            return self.embedding.embeddings
        cell = self.recurrent[0].cell
        return cell.project(keras.ops.matmul(self.embedding.embeddings, cell.kernel))


class ResidualBlock(keras.layers.Layer):
    """x + RNN(LayerNorm(x)), then x + MLP(LayerNorm(x)): one layer of a
    minimal-cell stack (see the module's docstring).

    Args:
        cell: A `--cell` name, one of the minimal cells.
        units: The RNN's units and the stream's width.
        dropout: On each branch's output.
        seed: Seed of the dropout masks.

    Call arguments:
        x: [batch, time, units].
        training: Whether dropout applies.
    """

    def __init__(self, cell, units, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.norm = keras.layers.LayerNormalization(name=f"{self.name}_norm")
        self.rnn = layer_class(cell)(units, return_sequences=True, name=f"{self.name}_rnn")
        self.mlp_norm = keras.layers.LayerNormalization(name=f"{self.name}_mlp_norm")
        self.mlp_in = keras.layers.Dense(MLP_WIDTH * units, activation="gelu",
                                         name=f"{self.name}_mlp_in")
        self.mlp_out = keras.layers.Dense(units, name=f"{self.name}_mlp_out")
        self.dropout = keras.layers.Dropout(dropout, seed=seed) if dropout else None

    def build(self, input_shape):
        for layer in (self.norm, self.rnn, self.mlp_norm, self.mlp_in):
            layer.build(input_shape)
        self.mlp_out.build((*input_shape[:-1], self.mlp_in.units))

    def call(self, x, training=False):
        x = x + self._drop(self.rnn(self.norm(x), training=training), training)
        return x + self._drop(self.mlp(x), training)

    def step(self, x, states, gates=None):
        """`call` for one position: x [batch, units] -> x, the RNN's new states."""
        cell = self.rnn.cell
        projection = cell.project(keras.ops.matmul(self.norm(x), cell.kernel))
        output, states = cell_step(cell, projection, states, gates)
        x = x + output
        return x + self.mlp(x), states

    def mlp(self, x):
        return self.mlp_out(self.mlp_in(self.mlp_norm(x)))

    def _drop(self, x, training):
        return x if self.dropout is None else self.dropout(x, training=training)


def cell_step(cell, projection, states, gates=None):
    """One step of `cell` from its input's projection: -> output, new states
    (a list); appends the step's gate activations to `gates` when given."""
    if gates is None:
        output, new_states = cell.recurrent_step(projection, states)
    else:
        output, new_states, cell_gates = cell.recurrent_step(projection, states,
                                                             return_gates=True)
        gates.extend(cell_gates[name] for name in cell.gate_names)
    if not isinstance(new_states, (list, tuple)):
        new_states = [new_states]
    return output, list(new_states)


def _rnn(layer):
    return layer.rnn if isinstance(layer, ResidualBlock) else layer


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


def state_sizes(cell):
    """The sizes of a cell's state tensors, one per tensor (an LSTM's two: h, c)."""
    return cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]
