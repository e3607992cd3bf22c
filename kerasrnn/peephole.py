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
from keras import ops

from kerasrnn.lstm import LSTMCell
from kerasrnn.recurrent import RecurrentLayer, masked_matmul

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
    as in `LSTMCell`.

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

    def recurrent_step(self, projection, states, recurrent_mask=None, return_gates=False):
        h_tm1, c_tm1 = states
        z = projection + masked_matmul(h_tm1, self.recurrent_kernel, recurrent_mask)
        if self.use_bias:
            z = ops.add(z, self.bias)
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i + self.input_gate_peephole_weights * c_tm1)
        f = self.recurrent_activation(z_f + self.forget_gate_peephole_weights * c_tm1)
        c = f * c_tm1 + i * self.activation(z_g)
        o = self.recurrent_activation(z_o + self.output_gate_peephole_weights * c)
        h = o * self.activation(c)
        if return_gates:
            return h, [h, c], {"i": i, "f": f, "o": o}
        return h, [h, c]


@keras.saving.register_keras_serializable(package="kerasrnn")
class PeepholeLSTM(RecurrentLayer):
    """`PeepholeLSTMCell` over a sequence, the input matmul out of the loop.

    Args:
        units: Positive integer, size of `h` and `c`.
        **kwargs: The arguments of `PeepholeLSTMCell` and of
            `keras.layers.RNN` (`return_sequences`, `return_state`,
            `go_backwards`, `stateful`, `unroll`, ...).

    Example:

    >>> PeepholeLSTM(4, return_sequences=True)(np.zeros((2, 3, 5))).shape
    (2, 3, 4)
    """

    cell_class = family_cell = PeepholeLSTMCell
