"""The GRU family (Cho et al. 2014): cell, written-out backward pass, layer.

- `GRUCell`: one time step, for `keras.layers.RNN`, a drop-in for
  `keras.layers.GRUCell` (same weights, same config, both `reset_after`).
- `written_out`: the whole sequence with its gradient written out
  (TensorFlow, `reset_after=True`; kerasrnn/bptt.py derives why).
- `GRU`: the cell over a sequence, the input matmul out of the loop;
  `kerasrnn.recurrent.choose_paths` picks how it runs: a fused kernel
  (kerasrnn/kernels/: cuDNN, PyTorch's `_VF.gru`), the written-out pass,
  or its own loop.
"""

import keras
from keras import ops

from kerasrnn import bptt
from kerasrnn.recurrent import GatedCell, RecurrentLayer, first_state, gate_mask, masked_matmul

__all__ = ["GRUCell", "GRU"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class GRUCell(GatedCell):
    """Gated recurrent unit (Cho et al. 2014), one time step.

    Equations (σ is `recurrent_activation`, tanh is `activation`):

        z, r = σ(W_{z,r} · [h_{t-1}, x_t] + b_{z,r})
        h̃    = tanh(W_h · [r · h_{t-1}, x_t] + b_h)
        h_t  = (1 - z) · h_{t-1} + z · h̃

    Keras writes the last line `h_t = z' · h_{t-1} + (1 - z') · h̃`: its
    update gate `z'` is this `1 - z`. We compute Keras's `z'`, so its weights
    load unchanged: `kernel` `(input_dim, 3·units)` and `recurrent_kernel`
    `(units, 3·units)` hold the blocks z', r, h in that order.

    `reset_after=True` (Keras's and cuDNN's default) applies the reset gate
    after the recurrent matmul, `h̃ = tanh(W_h x_t + r · (U_h h_{t-1} + b'_h))`,
    and keeps separate input and recurrent biases: `bias` is `(2, 3·units)`.
    `reset_after=False` is the equation above (Cho et al. 2014): `bias` is
    `(3·units,)`.

    Args:
        units: Positive integer, size of the hidden state.
        activation: Activation of the candidate `h̃`. Default `"tanh"`.
        recurrent_activation: Activation of the gates z and r. Default
            `"sigmoid"`.
        reset_after: Where the reset gate applies (see above). Default `True`.
        use_bias: Whether to add the biases. Default `True`.
        kernel_initializer, recurrent_initializer, bias_initializer:
            Initializers of the three weights. Defaults `"glorot_uniform"`,
            `"orthogonal"`, `"zeros"`.
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

    >>> gru = keras.layers.RNN(GRUCell(4, reset_after=False))
    >>> gru(np.zeros((2, 3, 5))).shape
    (2, 4)
    """

    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = reset_after

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    gate_names = ("z", "r")

    def recurrent_step(self, projection, states, recurrent_mask=None, return_gates=False):
        h_tm1 = first_state(states)
        input_bias = recurrent_bias = None
        if self.use_bias:
            if self.reset_after:
                input_bias, recurrent_bias = ops.unstack(ops.convert_to_tensor(self.bias))
            else:
                input_bias = self.bias

        x = projection
        if input_bias is not None:
            x = ops.add(x, input_bias)
        x_z, x_r, x_h = ops.split(x, 3, axis=-1)

        if self.reset_after:
            # One matmul for all three recurrent blocks; r scales the third.
            rec = self.recurrent_term(h_tm1, recurrent_mask)
            if recurrent_bias is not None:
                rec = ops.add(rec, recurrent_bias)
            rec_z, rec_r, rec_h = ops.split(rec, 3, axis=-1)
            z = self.recurrent_activation(x_z + rec_z)
            r = self.recurrent_activation(x_r + rec_r)
            h_candidate = self.activation(x_h + r * rec_h)
        else:
            # r must scale h before the candidate's matmul, so the gates'
            # blocks and the candidate's block are two matmuls.
            gate_kernel = self.recurrent_kernel[:, : 2 * self.units]
            candidate_kernel = self.recurrent_kernel[:, 2 * self.units :]
            gates_mask = recurrent_mask[:2] if isinstance(recurrent_mask, list) else recurrent_mask
            rec = masked_matmul(h_tm1, gate_kernel, gates_mask)
            rec_z, rec_r = ops.split(rec, 2, axis=-1)
            z = self.recurrent_activation(x_z + rec_z)
            r = self.recurrent_activation(x_r + rec_r)
            candidate_mask = gate_mask(recurrent_mask, 2)
            h_masked = h_tm1 if candidate_mask is None else h_tm1 * candidate_mask
            h_candidate = self.activation(x_h + ops.matmul(r * h_masked, candidate_kernel))

        # z·h + (1 - z)·h̃, written with one product fewer per step.
        h = h_candidate + z * (h_tm1 - h_candidate)
        new_state = [h] if isinstance(states, (list, tuple)) else h
        if return_gates:
            return h, new_state, {"z": z, "r": r}
        return h, new_state


@ops.custom_gradient
def written_out(projections, h0, recurrent_kernel, candidate_bias):
    """The GRU's sequence with its backward pass written out (kerasrnn/bptt.py),
    `reset_after=True`, in Keras's form: with
    [a_z, a_r, a_h] = h_{t-1} · recurrent_kernel and p_t's blocks,
    z = σ(p_z + a_z), r = σ(p_r + a_r), h̃ = tanh(p_h + r·(a_h + candidate_bias)),
    h_t = z·h_{t-1} + (1 - z)·h̃. The recurrent biases of z and r are in p_t.

    Returns `(outputs, h_last)`; outputs `(batch, time, units)`.
    """

    def step(p, states):
        h_prev = states[0]
        p_z, p_r, p_h = ops.split(p, 3, axis=-1)
        a_z, a_r, a_h = ops.split(ops.matmul(h_prev, recurrent_kernel), 3, axis=-1)
        z = ops.sigmoid(p_z + a_z)
        r = ops.sigmoid(p_r + a_r)
        a_h = a_h + candidate_bias
        candidate = ops.tanh(p_h + r * a_h)
        h = candidate + z * (h_prev - candidate)
        return (h, z, r, a_h, candidate), [h]

    (outputs, z, r, a_h, candidate), (h_last,) = bptt.loop(step, bptt.time_major(projections), [h0])

    def grad(d_outputs, d_h_last):
        h_prev = bptt.previous(h0, outputs)
        # For all steps at once, what multiplies dh into each pre-activation.
        update_factor = (h_prev - candidate) * bptt.sigmoid_grad(z)
        candidate_factor = (1.0 - z) * bptt.tanh_grad(candidate)
        reset_factor = a_h * bptt.sigmoid_grad(r)
        recurrent_kernel_t = ops.transpose(recurrent_kernel)

        def back_step(inputs, states):
            d_output, update_factor, candidate_factor, reset_factor, z, r = inputs
            dh = d_output + states[0]
            d_candidate = dh * candidate_factor
            # The gradient of h_{t-1} · recurrent_kernel, block by block.
            d_recurrent = ops.concatenate(
                [dh * update_factor, d_candidate * reset_factor, d_candidate * r], axis=-1
            )
            dh_prev = dh * z + ops.matmul(d_recurrent, recurrent_kernel_t)
            return (d_recurrent, d_candidate), [dh_prev]

        (d_recurrent, d_candidate), (d_h0,) = bptt.loop(
            back_step,
            (bptt.upstream(d_outputs, d_h_last), update_factor, candidate_factor, reset_factor,
             z, r),
            [ops.zeros_like(h0)],
            backwards=True,
        )
        d_projections = ops.concatenate([d_recurrent[..., : -h0.shape[-1]], d_candidate], axis=-1)
        d_recurrent_kernel = ops.einsum("tbi,tbj->ij", h_prev, d_recurrent)
        d_candidate_bias = ops.sum(d_recurrent[..., -h0.shape[-1] :], axis=(0, 1))
        return bptt.time_major(d_projections), d_h0, d_recurrent_kernel, d_candidate_bias

    return (bptt.time_major(outputs), h_last), grad


@keras.saving.register_keras_serializable(package="kerasrnn")
class GRU(RecurrentLayer, keras.layers.GRU):
    """A GRU layer: `GRUCell` with the input matmul out of the loop.

    Like `keras.layers.GRU`, it first offers the whole sequence to a fused
    kernel: cuDNN on a GPU, and on the PyTorch backend PyTorch's fused GRU
    on any device (kerasrnn/kernels/); both need `reset_after=True`. It
    derives from `keras.layers.GRU`, so that Keras code that recognises that
    layer, such as `Bidirectional`'s single fused call, recognises this one.

    Args:
        units: Positive integer, size of the hidden state.
        activation, recurrent_activation, reset_after, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed: The
            cell's, as `GRUCell` documents them.
        use_cudnn: `"auto"` (default) runs a fused kernel where the backend has one, as
            `keras.layers.GRU` does; `False` never does; `True` raises an error where none
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
        initial_state: Optional list of the initial states, `[h]`, each `(batch, units)`;
            `None` starts from zeros. Default `None`.

    Example:

    >>> GRU(4)(np.zeros((2, 3, 5))).shape
    (2, 4)
    """

    cell_class = family_cell = GRUCell
    has_written_out = True
    fused_kernel = "gru"

    def _standard_form(self):
        # The fused kernels and the written-out pass apply r after the matmul.
        return self.cell.reset_after and super()._standard_form()

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
        return written_out(projections, *initial_state, recurrent_kernel, candidate_bias)
