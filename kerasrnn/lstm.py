"""The LSTM family (Hochreiter & Schmidhuber 1997): cell, written-out backward pass, layer.

- `LSTMCell`: one time step, for `keras.layers.RNN`, a drop-in for
  `keras.layers.LSTMCell` (same weights, same config).
- `written_out`: the whole sequence with its gradient written out
  (TensorFlow; kerasrnn/bptt.py derives why).
- `LSTM`: the cell over a sequence, the input matmul out of the loop;
  `kerasrnn.recurrent.choose_paths` picks how it runs: a fused kernel
  (kerasrnn/kernels/: cuDNN, PyTorch's `_VF.lstm`), the written-out pass,
  or its own loop.
"""

import keras
from keras import ops

from kerasrnn import bptt
from kerasrnn.recurrent import GatedCell, RecurrentLayer, forget_bias_ones

__all__ = ["LSTMCell", "LSTM"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTMCell(GatedCell):
    """Long short-term memory cell (Hochreiter & Schmidhuber 1997), one step.

    Equations (σ is `recurrent_activation`, tanh is `activation`):

        i, f, o = σ(W_{i,f,o} · [h_{t-1}, x_t] + b_{i,f,o})
        g       = tanh(W_g · [h_{t-1}, x_t] + b_g)
        c_t     = f · c_{t-1} + i · g
        h_t     = o · tanh(c_t)

    Weights: `W · [h, x]` is `x · kernel + h · recurrent_kernel`, with
    `kernel` `(input_dim, 4·units)` and `recurrent_kernel` `(units, 4·units)`
    holding the gates in Keras's order i, f, g (Keras calls it c), o; `bias`
    is `(4·units,)` in the same order. This is the layout of
    `keras.layers.LSTMCell`, whose weights load unchanged.

    The state is the pair `[h, c]`.

    Args:
        units: Positive integer, size of `h` and `c`.
        activation: Activation of the candidate `g` and of `c_t` in the
            output. Default `"tanh"`.
        recurrent_activation: Activation of the gates i, f, o. Default
            `"sigmoid"`.
        use_bias: Whether to add the biases. Default `True`.
        kernel_initializer, recurrent_initializer, bias_initializer:
            Initializers of the three weights. Defaults `"glorot_uniform"`,
            `"orthogonal"`, `"zeros"`.
        unit_forget_bias: If `True` (default), the forget gate's bias starts
            at 1 (Jozefowicz et al. 2015) and the rest of the bias at
            `bias_initializer`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer:
            Optional regularizers of the three weights.
        kernel_constraint, recurrent_constraint, bias_constraint:
            Optional constraints of the three weights.
        dropout: Fraction of the input units to drop (training only).
        recurrent_dropout: Fraction of the state units to drop (training
            only). Masks are drawn once per sequence, one per gate when
            recurrent dropout is on, as Keras does.
        seed: Seed of the dropout masks.

    Example:

    >>> lstm = keras.layers.RNN(LSTMCell(4), return_state=True)
    >>> h, state_h, state_c = lstm(np.zeros((2, 3, 5)))
    >>> h.shape, state_c.shape
    ((2, 4), (2, 4))
    """

    gates = 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = unit_forget_bias
        self.state_size = [units, units]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        return forget_bias_ones(self.bias_initializer, self.units)

    gate_names = ("i", "f", "o")

    def recurrent_step(self, projection, states, recurrent_mask=None, return_gates=False):
        h_tm1, c_tm1 = states
        # All four gates in two matmuls (this one and the projection's), then
        # one split: the per-step op count, not the arithmetic, is what costs
        # at these sizes.
        z = projection + self.recurrent_term(h_tm1, recurrent_mask)
        if self.use_bias:
            z = ops.add(z, self.bias)
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i, f = self.input_and_forget_gates(z_i, z_f, c_tm1)
        c = self.new_cell_state(f * c_tm1 + i * self.activation(z_g))
        o = self.output_gate(z_o, c)
        h = o * self.activation(c)
        if return_gates:
            return h, [h, c], {"i": i, "f": f, "o": o}
        return h, [h, c]

    # The hooks a variant overrides to change one part of the step
    # (kerasrnn/peephole.py, layer_norm.py); with them all as here, the cell
    # computes the equations above, which the fast paths hard-code.

    def input_and_forget_gates(self, z_i, z_f, c_tm1):
        """i and f from their pre-activations (a peephole cell adds c_{t-1}'s term)."""
        return self.recurrent_activation(z_i), self.recurrent_activation(z_f)

    def new_cell_state(self, c):
        """c_t from `f · c_{t-1} + i · g` (a layer-normalized cell normalizes it)."""
        return c

    def output_gate(self, z_o, c):
        """o from its pre-activation and c_t (a peephole cell adds c_t's term)."""
        return self.recurrent_activation(z_o)


@ops.custom_gradient
def written_out(projections, h0, c0, recurrent_kernel):
    """The LSTM's sequence with its backward pass written out (kerasrnn/bptt.py):
    i, f, g, o = σ, σ, tanh, σ of (p_t + h_{t-1} · recurrent_kernel), in that
    order, p_t holding the bias; c_t = f·c_{t-1} + i·g; h_t = o·tanh(c_t).

    Returns `(outputs, h_last, c_last)`; outputs `(batch, time, units)`.
    """

    def step(p, states):
        h, c = states
        z_i, z_f, z_g, z_o = ops.split(p + ops.matmul(h, recurrent_kernel), 4, axis=-1)
        i, f, g, o = ops.sigmoid(z_i), ops.sigmoid(z_f), ops.tanh(z_g), ops.sigmoid(z_o)
        c = f * c + i * g
        h = o * ops.tanh(c)
        return (h, c, i, f, g, o), [h, c]

    (outputs, cells, i, f, g, o), (h_last, c_last) = bptt.loop(
        step, bptt.time_major(projections), [h0, c0]
    )

    def grad(d_outputs, d_h_last, d_c_last):
        # What multiplies the state's gradients at each step, for all steps
        # at once: dz = [dc, dc, dc, dh] · gate_factors, dc += dh · cell_factor.
        tanh_c = ops.tanh(cells)
        gate_factors = ops.concatenate(
            [
                g * bptt.sigmoid_grad(i),
                bptt.previous(c0, cells) * bptt.sigmoid_grad(f),
                i * bptt.tanh_grad(g),
                tanh_c * bptt.sigmoid_grad(o),
            ],
            axis=-1,
        )
        cell_factor = o * bptt.tanh_grad(tanh_c)
        recurrent_kernel_t = ops.transpose(recurrent_kernel)

        def back_step(inputs, states):
            d_output, gate_factor, cell_factor, forget = inputs
            dh_next, dc_next = states
            dh = d_output + dh_next
            dc = dc_next + dh * cell_factor
            dz = ops.concatenate([dc, dc, dc, dh], axis=-1) * gate_factor
            return dz, [ops.matmul(dz, recurrent_kernel_t), dc * forget]

        dz, (d_h0, d_c0) = bptt.loop(
            back_step,
            (bptt.upstream(d_outputs, d_h_last), gate_factors, cell_factor, f),
            [ops.zeros_like(h0), bptt.zeros_if_none(d_c_last, c0)],
            backwards=True,
        )
        d_recurrent_kernel = ops.einsum("tbi,tbj->ij", bptt.previous(h0, outputs), dz)
        return bptt.time_major(dz), d_h0, d_c0, d_recurrent_kernel

    return (bptt.time_major(outputs), h_last, c_last), grad


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTM(RecurrentLayer, keras.layers.LSTM):
    """An LSTM layer: `LSTMCell` with the input matmul out of the loop.

    Like `keras.layers.LSTM`, it first offers the whole sequence to a fused
    kernel: cuDNN on a GPU, and on the PyTorch backend PyTorch's fused LSTM
    on any device (kerasrnn/kernels/). It derives from `keras.layers.LSTM`,
    so that Keras code that recognises that layer, such as `Bidirectional`'s
    single fused call for both directions, recognises this one.

    Args:
        units: Positive integer, size of `h` and `c`.
        activation, recurrent_activation, use_bias, unit_forget_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed: The
            cell's, as `LSTMCell` documents them.
        use_cudnn: `"auto"` (default) runs a fused kernel where the backend has one, as
            `keras.layers.LSTM` does; `False` never does; `True` raises an error where none
            can run.
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
        initial_state: Optional list of the initial states, `[h, c]`, each `(batch, units)`;
            `None` starts from zeros. Default `None`.

    Example:

    >>> output, state_h, state_c = LSTM(4, return_state=True)(np.zeros((2, 3, 5)))
    >>> output.shape, state_c.shape
    ((2, 4), (2, 4))
    """

    cell_class = family_cell = LSTMCell
    has_written_out = True
    fused_kernel = "lstm"

    def _written_out_loop(self, projections, initial_state, recurrent_kernel):
        if self.cell.use_bias:
            projections = ops.add(projections, self.cell.bias)
        return written_out(projections, *initial_state, recurrent_kernel)
