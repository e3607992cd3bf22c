"""The peephole LSTM family (Gers & Schmidhuber 2000; Sak et al. 2014).

An LSTM whose gates also read the cell state: the input and forget gates
see c_{t-1}, the output gate the new c_t, each through a diagonal weight (a
vector, multiplied element-wise). `PeepholeLSTMCell` computes what
TensorFlow Addons' (formerly tf.keras's) cell of that name computes, with
its arguments and weight names, so porting code from TF 2.15 is an import
change; `PeepholeLSTM` runs it over a sequence with the input matmul out of
the loop. No fused kernel computes peepholes: the layer runs its own loop.
"""

import keras

from kerasrnn.lstm import LSTMCell
from kerasrnn.recurrent import RecurrentLayer

__all__ = ["PeepholeLSTMCell", "PeepholeLSTM"]


@keras.saving.register_keras_serializable(package="kerasrnn")
class PeepholeLSTMCell(LSTMCell):
    """An LSTM cell with peephole connections (TFA's PeepholeLSTMCell), one step.

    Equations (σ is `recurrent_activation`, tanh is `activation`; w_i, w_f,
    w_o the peephole weights, ⊙ element-wise):

        i   = σ(z_i + w_i ⊙ c_{t-1})
        f   = σ(z_f + w_f ⊙ c_{t-1})
        c_t = f · c_{t-1} + i · tanh(z_g)
        o   = σ(z_o + w_o ⊙ c_t)
        h_t = o · tanh(c_t)

    with `[z_i, z_f, z_g, z_o] = x_t · kernel + h_{t-1} · recurrent_kernel + b`,
    as in `LSTMCell`, whose step this is but for its two gate hooks.

    Weights: `LSTMCell`'s (`kernel`, `recurrent_kernel`, `bias`, gate order
    i, f, g, o), then `input_gate_peephole_weights`,
    `forget_gate_peephole_weights` and `output_gate_peephole_weights`, each
    `(units,)` and initialized by `kernel_initializer`, as in TFA.

    Args: those of `LSTMCell`.

    Example:

    >>> lstm = keras.layers.RNN(PeepholeLSTMCell(4))
    >>> lstm(np.zeros((2, 3, 5))).shape
    (2, 4)
    """

    def build(self, input_shape):
        super().build(input_shape)
        for gate in ("input", "forget", "output"):
            setattr(self, f"{gate}_gate_peephole_weights", self.add_weight(
                shape=(self.units,), name=f"{gate}_gate_peephole_weights",
                initializer=self.kernel_initializer,
            ))

    def input_and_forget_gates(self, z_i, z_f, c_tm1):
        return (self.recurrent_activation(z_i + self.input_gate_peephole_weights * c_tm1),
                self.recurrent_activation(z_f + self.forget_gate_peephole_weights * c_tm1))

    def output_gate(self, z_o, c):
        return self.recurrent_activation(z_o + self.output_gate_peephole_weights * c)


@keras.saving.register_keras_serializable(package="kerasrnn")
class PeepholeLSTM(RecurrentLayer):
    """`PeepholeLSTMCell` over a sequence, the input matmul out of the loop.

    Args:
        units: Positive integer, size of `h` and `c`.
        activation, recurrent_activation, use_bias, unit_forget_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed: The
            cell's, as `PeepholeLSTMCell` documents them.
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

    >>> PeepholeLSTM(4, return_sequences=True)(np.zeros((2, 3, 5))).shape
    (2, 3, 4)
    """

    cell_class = family_cell = PeepholeLSTMCell
