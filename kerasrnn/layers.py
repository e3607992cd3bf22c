"""Recurrent layers that compute the input matmul of all time steps at once.

`keras.layers.RNN(cell)` calls the cell once per time step, so a sequence of
T steps costs T small `x_t · kernel` matmuls, and its gradient T more. But
every input is known before the loop starts. These layers compute
`inputs · kernel` for the whole sequence in one large matmul and run only the
cell's `recurrent_step` inside the loop, which is what cuDNN and PyTorch's
`nn.LSTM` do. The arithmetic is the same, and so are the weights: a layer's
`cell` is our cell, and the weights of `keras.layers.SimpleRNN` / `LSTM` /
`GRU` load into it unchanged.

On TensorFlow their gradient is also written out (kerasrnn/bptt.py), which
takes the gradient of `recurrent_kernel` in one matmul over all steps rather
than one per step. It applies with tanh and sigmoid activations, no mask, no
recurrent dropout, no `unroll` and, for the GRU, `reset_after=True`; any
other configuration runs `keras.layers.RNN`'s loop with autodiff.

Which path is faster on which device and backend is measured in
docs/speed.md (`python benchmarks/cells.py`).

Like `keras.layers.LSTM` and `GRU`, our `LSTM` and `GRU` first offer the
whole sequence to a fused kernel (`use_cudnn="auto"`): the backend's `lstm`
/ `gru` function, which runs cuDNN on a GPU, and on the PyTorch backend
PyTorch's own fused kernels on any device (kerasrnn/torch_fused.py); where
the kernel declines, our loop runs. They are subclasses of Keras's `LSTM`
and `GRU`, so that Keras code that recognises those layers, such as
`Bidirectional`'s single fused call for both directions, recognises ours.

    from kerasrnn import LSTM
    model = keras.Sequential([keras.Input((28, 28)), LSTM(128), keras.layers.Dense(10)])
"""

import keras
from keras import activations, ops, tree

# `keras.layers.RNN` drives its loop with `rnn`, and Keras's LSTM and GRU
# layers reach cuDNN through `lstm`, `gru` and `cudnn_ok`. These backend
# functions are not exported under `keras.ops`, so they are used from where
# Keras's own layers use them.
from keras.src import backend
from keras.src.backend import rnn as backend_rnn

from kerasrnn import bptt
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
        # `keras.layers.RNN`'s constructor by name: LSTM and GRU below also
        # derive from Keras's LSTM and GRU, whose constructors build Keras's
        # cells, not ours.
        keras.layers.RNN.__init__(self, cell, **layer_kwargs)

    def get_config(self):
        config = keras.layers.RNN.get_config(self)  # by name: see __init__
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

    def _has_written_out_backward(self):
        """Whether kerasrnn/bptt.py has this configuration's gradient.

        TensorFlow only: it is where the written-out backward was measured
        and tested (`keras.ops.custom_gradient` takes one output on PyTorch).
        """
        cell = self.cell
        return (
            keras.backend.backend() == "tensorflow"
            and not self.unroll
            and cell.activation is activations.tanh
            and getattr(cell, "recurrent_activation", activations.sigmoid) is activations.sigmoid
        )

    def _written_out_loop(self, projections, initial_state, recurrent_kernel):
        """kerasrnn/bptt.py's `(outputs, *last states)` for these projections,
        already in the order the loop reads them."""
        raise NotImplementedError

    def inner_loop(self, sequences, initial_state, mask, training=False):
        cell = self.cell
        # `RNN.call` drew this sequence's dropout masks before calling us, so
        # these are lookups, and every step below sees the same masks.
        input_mask, recurrent_mask = cell._dropout_masks(
            sequences[:, 0, :], tree.flatten(initial_state)[0], training
        )

        projections = _masked_matmul(sequences, cell.kernel, _over_time(input_mask))
        if tree.is_nested(mask):
            mask = mask[0]
        if mask is None and recurrent_mask is None and self._has_written_out_backward():
            if self.go_backwards:
                projections = ops.flip(projections, axis=1)
            # Tensors, not variables (a stateful layer's states are
            # variables): TensorFlow's custom gradients must not read any.
            states = [ops.copy(state) for state in tree.flatten(initial_state)]
            outputs, *states = self._written_out_loop(
                projections, states, ops.copy(cell.recurrent_kernel)
            )
            return states[0], outputs, states

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


class _CudnnCapableRNN(_InputProjectedRNN):
    """`_InputProjectedRNN` that first offers the sequence to a fused kernel.

    The same hand-over as in `keras.layers.LSTM` / `GRU`: the backend's
    `lstm` / `gru` function runs cuDNN when it can and raises
    `NotImplementedError` when it cannot (no GPU, masking on JAX or PyTorch,
    `unroll`, activations other than tanh and sigmoid, ...), and then our own
    loop runs. On the PyTorch backend, kerasrnn/torch_fused.py takes the
    backend function's place, on the CPU as well as on CUDA. Recurrent
    dropout has no fused form, so it always takes our loop. Subclasses
    implement `_cudnn_loop` and `_cudnn_ok_arguments`.
    """

    def __init__(self, units, use_cudnn="auto", **kwargs):
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"use_cudnn must be 'auto', True or False, got {use_cudnn!r}")
        super().__init__(units, **kwargs)
        self.use_cudnn = use_cudnn
        if (
            use_cudnn in ("auto", True)
            and keras.backend.backend() == "tensorflow"
            and backend.cudnn_ok(**self._cudnn_ok_arguments())
        ):
            # TensorFlow's cuDNN ops cannot be compiled by XLA.
            self.supports_jit = False

    def get_config(self):
        return {**super().get_config(), "use_cudnn": self.use_cudnn}

    def _cudnn_ok_arguments(self):
        cell = self.cell
        return dict(
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            unroll=self.unroll,
            use_bias=cell.use_bias,
        )

    def _cudnn_arguments(self):
        """The keyword arguments of the backend's `lstm` and `gru` functions."""
        cell = self.cell
        return dict(
            kernel=cell.kernel,
            recurrent_kernel=cell.recurrent_kernel,
            bias=cell.bias,
            activation=cell.activation,
            recurrent_activation=cell.recurrent_activation,
            return_sequences=self.return_sequences,
            go_backwards=self.go_backwards,
            unroll=self.unroll,
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if tree.is_nested(mask):
            mask = mask[0]
        if self.use_cudnn in ("auto", True) and not self.cell.recurrent_dropout:
            # The input dropout mask, drawn once per sequence; our own loop
            # below looks up the same mask if cuDNN declines.
            input_mask, _ = self.cell._dropout_masks(sequences[:, 0, :], None, training)
            if input_mask is not None:
                dropped = sequences * _over_time(input_mask)
            else:
                dropped = sequences
            try:
                return self._cudnn_loop(dropped, tree.flatten(initial_state), mask)
            except NotImplementedError:
                pass
        if self.use_cudnn is True:
            raise ValueError(
                "use_cudnn=True, but the backend has no cuDNN kernel for this "
                "configuration on this device; pass use_cudnn='auto' to fall back"
            )
        return super().inner_loop(sequences, initial_state, mask, training)


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

    def _written_out_loop(self, projections, initial_state, recurrent_kernel):
        if self.cell.use_bias:
            projections = ops.add(projections, self.cell.bias)
        return bptt.simple_rnn(projections, *initial_state, recurrent_kernel)


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTM(_CudnnCapableRNN, keras.layers.LSTM):
    """An LSTM layer: `LSTMCell` with the input matmul out of the loop.

    Args:
        units: Positive integer, size of the hidden state.
        use_cudnn: `"auto"` (default) runs cuDNN where the backend can, as
            `keras.layers.LSTM` does; `False` always runs our loop; `True`
            raises an error where cuDNN cannot run.
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

    def _written_out_loop(self, projections, initial_state, recurrent_kernel):
        if self.cell.use_bias:
            projections = ops.add(projections, self.cell.bias)
        return bptt.lstm(projections, *initial_state, recurrent_kernel)

    def _cudnn_loop(self, sequences, initial_state, mask):
        if keras.backend.backend() == "torch":
            from kerasrnn import torch_fused

            return torch_fused.lstm(self.cell, sequences, initial_state, mask,
                                    self.go_backwards, self.return_sequences, self.unroll)
        h, c = initial_state
        return backend.lstm(sequences, h, c, mask, **self._cudnn_arguments())


@keras.saving.register_keras_serializable(package="kerasrnn")
class GRU(_CudnnCapableRNN, keras.layers.GRU):
    """A GRU layer: `GRUCell` with the input matmul out of the loop.

    Args:
        units: Positive integer, size of the hidden state.
        use_cudnn: `"auto"` (default) runs cuDNN where the backend can, as
            `keras.layers.GRU` does (cuDNN needs `reset_after=True`);
            `False` always runs our loop; `True` raises an error where cuDNN
            cannot run.
        **kwargs: The arguments of `GRUCell` (activations, `reset_after`,
            initializers, dropout, ...) and of `keras.layers.RNN`
            (`return_sequences`, `return_state`, `go_backwards`, `stateful`,
            `unroll`, ...).

    Example:

    >>> GRU(4)(np.zeros((2, 3, 5))).shape
    (2, 4)
    """

    cell_class = GRUCell

    def _has_written_out_backward(self):
        return self.cell.reset_after and super()._has_written_out_backward()

    def _written_out_loop(self, projections, initial_state, recurrent_kernel):
        cell = self.cell
        units = cell.units
        candidate_bias = ops.zeros((units,), dtype=projections.dtype)
        if cell.use_bias:
            input_bias, recurrent_bias = ops.unstack(ops.convert_to_tensor(cell.bias))
            # The recurrent biases of z and r add to the inputs' like the
            # input biases; only the candidate's is multiplied by r.
            gate_bias = ops.concatenate(
                [recurrent_bias[: 2 * units], ops.zeros((units,), dtype=projections.dtype)]
            )
            projections = ops.add(projections, input_bias + gate_bias)
            candidate_bias = recurrent_bias[2 * units :]
        return bptt.gru(projections, *initial_state, recurrent_kernel, candidate_bias)

    def _cudnn_ok_arguments(self):
        arguments = super()._cudnn_ok_arguments()
        # Only TensorFlow's `cudnn_ok` asks this; the others read it in `gru`.
        if keras.backend.backend() == "tensorflow":
            arguments["reset_after"] = self.cell.reset_after
        return arguments

    def _cudnn_loop(self, sequences, initial_state, mask):
        if keras.backend.backend() == "torch":
            from kerasrnn import torch_fused

            return torch_fused.gru(self.cell, sequences, initial_state, mask,
                                   self.go_backwards, self.return_sequences, self.unroll)
        return backend.gru(
            sequences, initial_state[0], mask, reset_after=self.cell.reset_after,
            **self._cudnn_arguments(),
        )
