"""The SimpleRNN family (Elman 1990): its cell, its written-out backward pass, its layer.

- `SimpleRNNCell`: one time step, for `keras.layers.RNN`, a drop-in for
  `keras.layers.SimpleRNNCell` (same weights, same config).
- `written_out`: the whole sequence with its gradient written out
  (TensorFlow; kerasrnn/bptt.py derives why).
- `SimpleRNN`: the cell over a sequence, the input matmul out of the loop;
  `kerasrnn.recurrent.choose_paths` picks how it runs.
"""

import keras
from keras import ops

from kerasrnn import bptt
from kerasrnn.recurrent import RecurrentCell, RecurrentLayer, first_state, masked_matmul

__all__ = ["SimpleRNNCell", "SimpleRNN"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class SimpleRNNCell(RecurrentCell):
    """Elman's recurrent cell, one time step.

    Equation (the activation is `tanh` by default):

        h_t = tanh(W_xh · x_t + W_hh · h_{t-1} + b)

    Weights: `W_xh` is `kernel` `(input_dim, units)`, `W_hh` is
    `recurrent_kernel` `(units, units)`, `b` is `bias` `(units,)` — the
    layout of `keras.layers.SimpleRNNCell`, whose weights load unchanged.

    Args:
        units: Positive integer, size of the hidden state.
        activation: Activation of the new state. Default `"tanh"`.
        use_bias: Whether to add `b`. Default `True`.
        kernel_initializer, recurrent_initializer, bias_initializer:
            Initializers of the three weights. Defaults `"glorot_uniform"`,
            `"orthogonal"`, `"zeros"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Optional regularizers of the three weights.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Optional constraints of the three weights.
        dropout: Fraction of the input units to drop (training only).
        recurrent_dropout: Fraction of the state units to drop (training
            only). Both masks are drawn once per sequence.
        seed: Seed of the dropout masks.

    Example:

    >>> rnn = keras.layers.RNN(SimpleRNNCell(4), return_sequences=True)
    >>> rnn(np.zeros((2, 3, 5))).shape
    (2, 3, 4)
    """

    gates = 1

    def recurrent_step(self, projection, states, recurrent_mask=None, return_gates=False):
        z = projection
        if self.use_bias:
            z = ops.add(z, self.bias)
        z = z + masked_matmul(first_state(states), self.recurrent_kernel, recurrent_mask)
        h = self.activation(z) if self.activation is not None else z
        new_state = [h] if isinstance(states, (list, tuple)) else h
        if return_gates:
            return h, new_state, {}  # no gates
        return h, new_state


@ops.custom_gradient
def written_out(projections, h0, recurrent_kernel):
    """The SimpleRNN's sequence with its backward pass written out (kerasrnn/bptt.py):
    h_t = tanh(p_t + h_{t-1} · recurrent_kernel), p_t holding the bias.

    Backward: dz_t = (dh_t + dz_{t+1} · recurrent_kernelᵀ) · (1 - h_t²), and
    d recurrent_kernel = Σ_t h_{t-1}ᵀ · dz_t in one matmul.

    Returns `(outputs, h_last)`; outputs `(batch, time, units)`.
    """

    def step(p, states):
        h = ops.tanh(p + ops.matmul(states[0], recurrent_kernel))
        return h, [h]

    outputs, (h_last,) = bptt.loop(step, bptt.time_major(projections), [h0])

    def grad(d_outputs, d_h_last):
        recurrent_kernel_t = ops.transpose(recurrent_kernel)

        def back_step(inputs, states):
            d_output, h = inputs
            dz = (d_output + states[0]) * bptt.tanh_grad(h)
            return dz, [ops.matmul(dz, recurrent_kernel_t)]

        dz, (d_h0,) = bptt.loop(
            back_step, (bptt.upstream(d_outputs, d_h_last), outputs), [ops.zeros_like(h0)],
            backwards=True,
        )
        d_recurrent_kernel = ops.einsum("tbi,tbj->ij", bptt.previous(h0, outputs), dz)
        return bptt.time_major(dz), d_h0, d_recurrent_kernel

    return (bptt.time_major(outputs), h_last), grad


@keras.saving.register_keras_serializable(package="kerasrnn")
class SimpleRNN(RecurrentLayer):
    """A SimpleRNN layer: `SimpleRNNCell` with the input matmul out of the loop.

    Args:
        units: Positive integer, size of the hidden state.
        activation, use_bias, kernel_initializer, recurrent_initializer, bias_initializer,
            kernel_regularizer, recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed: The
            cell's, as `SimpleRNNCell` documents them.
        return_sequences: Whether to return the output of every step, `(batch, timesteps,
            units)`, rather than the last, `(batch, units)`. Default `False`.
        return_state: Whether to return the last states after the output. Default `False`.
        go_backwards: Whether to read the sequence from its last step to its first (the
            outputs come in that order). Default `False`.
        stateful: Whether each sample's last states in a batch are its initial states in the
            next batch. Default `False`.
        unroll: Whether to unroll the time loop into straight-line code: faster for short
            sequences, at the cost of memory. Default `False`.
        zero_output_for_mask: Whether a masked step outputs zeros rather than the previous
            step's output (with `return_sequences`). Default `False`.
        activity_regularizer, name, dtype, trainable, input_shape: As every Keras layer
            takes them.

    Call arguments:
        inputs: A 3D tensor, `(batch, timesteps, features)`.
        mask: Optional boolean tensor `(batch, timesteps)`: `False` marks a step to skip
            (the states carry over it). Default `None`.
        training: Whether the layer is training (dropout applies only then). Default `None`.
        initial_state: Optional list of the initial states, `[h]`, each `(batch, units)`;
            `None` starts from zeros. Default `None`.

    Example:

    >>> SimpleRNN(4, return_sequences=True)(np.zeros((2, 3, 5))).shape
    (2, 3, 4)
    """

    cell_class = family_cell = SimpleRNNCell
    has_written_out = True

    def _written_out_loop(self, projections, initial_state, recurrent_kernel):
        if self.cell.use_bias:
            projections = ops.add(projections, self.cell.bias)
        return written_out(projections, *initial_state, recurrent_kernel)
