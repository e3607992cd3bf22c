"""Recurrent layers that compute the input matmul of all time steps at once.

`keras.layers.RNN(cell)` calls the cell once per time step, so a sequence of
T steps costs T small `x_t · kernel` matmuls, and its gradient T more. But
every input is known before the loop starts. These layers compute
`inputs · kernel` for the whole sequence in one large matmul and run only the
cell's `recurrent_step` inside the loop, which is what cuDNN and PyTorch's
`nn.LSTM` do. The arithmetic is the same, and so are the weights: a layer's
`cell` is our cell, and the weights of `keras.layers.SimpleRNN` / `LSTM` /
`GRU` load into it unchanged.

Whether that is faster depends on where it runs (README, Speed): on a GPU,
under JAX and PyTorch, it was; in TensorFlow's loop on a 2-core CPU it was
not, and `keras.layers.RNN(cell)` stayed the faster choice there.

    from kerasrnn import LSTM
    model = keras.Sequential([keras.Input((28, 28)), LSTM(128), keras.layers.Dense(10)])
"""

import keras
from keras import ops, tree

# `keras.layers.RNN` drives its loop with this backend function; it is not
# exported under `keras.ops`, so it is imported from where Keras defines it.
from keras.src.backend import rnn as backend_rnn

from kerasrnn.cells import GRUCell, LSTMCell, SimpleRNNCell, _masked_matmul

__all__ = ["SimpleRNN", "LSTM", "GRU"]

# Arguments that belong to the layer; every other keyword goes to the cell.
_RNN_ARGUMENTS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
    "activity_regularizer",
    "name",
    "dtype",
    "trainable",
)
# Keys that the cell's config carries too, but that belong to the layer.
_LAYER_OWNED_KEYS = ("name", "dtype", "trainable")


def _over_time(mask):
    """A per-sequence dropout mask `(batch, features)`, broadcast over time."""
    if mask is None:
        return None
    if isinstance(mask, (list, tuple)):
        return [ops.expand_dims(m, 1) for m in mask]
    return ops.expand_dims(mask, 1)


class _InputProjectedRNN(keras.layers.RNN):
    """`keras.layers.RNN` over one of our cells, input matmul out of the loop.

    Subclasses set `cell_class`. Everything `keras.layers.RNN` offers works
    the same (state, masking, `go_backwards`, `stateful`, `unroll`,
    `Bidirectional`); only `inner_loop`, the loop itself, differs.
    """

    cell_class = None

    def __init__(self, units, **kwargs):
        layer_kwargs = {k: kwargs.pop(k) for k in _RNN_ARGUMENTS if k in kwargs}
        cell = self.cell_class(
            units,
            dtype=layer_kwargs.get("dtype"),
            trainable=layer_kwargs.get("trainable", True),
            name=f"{self.cell_class.__name__.lower()[:-4]}_cell",
            **kwargs,
        )
        super().__init__(cell, **layer_kwargs)

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        for key in _LAYER_OWNED_KEYS:
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @property
    def units(self):
        return self.cell.units

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        # `RNN.call` drew this sequence's dropout masks before calling us, so
        # these are lookups, and every step below sees the same masks.
        input_mask, recurrent_mask = cell._dropout_masks(
            sequences[:, 0, :], tree.flatten(initial_state)[0], training
        )

        projections = _masked_matmul(sequences, cell.kernel, _over_time(input_mask))

        def step(projection, states):
            if keras.backend.backend() == "torch" and self.stateful:
                # As `keras.layers.RNN` does: autograd must not see in-place
                # updates of the states it saved.
                states = tree.map_structure(ops.copy, states)
            output, new_states = cell.recurrent_step(projection, states, recurrent_mask)
            if not tree.is_nested(new_states):
                new_states = [new_states]
            return output, new_states

        if not tree.is_nested(initial_state):
            initial_state = [initial_state]
        if tree.is_nested(mask):
            mask = mask[0]
        return backend_rnn(
            step,
            projections,
            initial_state,
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )


@keras.saving.register_keras_serializable(package="kerasrnn")
class SimpleRNN(_InputProjectedRNN):
    """A SimpleRNN layer: `SimpleRNNCell` with the input matmul out of the loop.

    Args:
        units: Positive integer, size of the hidden state.
        **kwargs: The arguments of `SimpleRNNCell` (activation, initializers,
            regularizers, constraints, dropout, ...) and of
            `keras.layers.RNN` (`return_sequences`, `return_state`,
            `go_backwards`, `stateful`, `unroll`, ...).

    Example:

    >>> SimpleRNN(4, return_sequences=True)(np.zeros((2, 3, 5))).shape
    (2, 3, 4)
    """

    cell_class = SimpleRNNCell


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTM(_InputProjectedRNN):
    """An LSTM layer: `LSTMCell` with the input matmul out of the loop.

    Args:
        units: Positive integer, size of the hidden state.
        **kwargs: The arguments of `LSTMCell` (activations,
            `unit_forget_bias`, initializers, dropout, ...) and of
            `keras.layers.RNN` (`return_sequences`, `return_state`,
            `go_backwards`, `stateful`, `unroll`, ...).

    Example:

    >>> output, state_h, state_c = LSTM(4, return_state=True)(np.zeros((2, 3, 5)))
    >>> output.shape, state_c.shape
    ((2, 4), (2, 4))
    """

    cell_class = LSTMCell


@keras.saving.register_keras_serializable(package="kerasrnn")
class GRU(_InputProjectedRNN):
    """A GRU layer: `GRUCell` with the input matmul out of the loop.

    Args:
        units: Positive integer, size of the hidden state.
        **kwargs: The arguments of `GRUCell` (activations, `reset_after`,
            initializers, dropout, ...) and of `keras.layers.RNN`
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, ...).

    Example:

    >>> GRU(4)(np.zeros((2, 3, 5))).shape
    (2, 4)
    """

    cell_class = GRUCell
