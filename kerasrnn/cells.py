"""The three classic recurrent cells: SimpleRNN, LSTM and GRU.

Each cell computes one time step and is meant to be wrapped by
`keras.layers.RNN`, which drives it over a sequence. The cells keep Keras's
weight layout, so the weights of `keras.layers.SimpleRNNCell`, `LSTMCell` and
`GRUCell` load into them unchanged:

- `kernel`, shape `(input_dim, G * units)`: the input weights of all G gates
  side by side;
- `recurrent_kernel`, shape `(units, G * units)`: the recurrent weights, same
  gate order;
- `bias`, shape `(G * units,)` (GRU with `reset_after=True`: `(2, 3 * units)`,
  input bias then recurrent bias).

The textbook notation `W·[h_{t-1}, x_t]` is exactly
`x_t · kernel + h_{t-1} · recurrent_kernel`: `W` is the two matrices stacked.

Only `keras.ops` is used, so the cells run on every Keras backend.
"""

import keras
from keras import activations, constraints, initializers, ops, regularizers

# `keras.layers.RNN` recognises cells that use dropout by this mixin: for them it
# draws the dropout masks once, before the time loop, and clears them after the
# sequence, which is what keeps one mask fixed across all the time steps. It is
# not exported under `keras.layers`, so it is imported from where Keras defines
# it (present in every Keras 3 release).
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell"]


def _masked_matmul(x, kernel, mask):
    """`x · kernel`, with `x` multiplied by a dropout mask first.

    `mask` is None (no dropout), one mask shared by all gates, or a list with
    one mask per gate (what Keras draws when recurrent dropout is on), in which
    case each gate's column block of `kernel` sees its own masked copy of `x`.
    """
    if mask is None:
        return ops.matmul(x, kernel)
    if isinstance(mask, (list, tuple)):
        blocks = ops.split(kernel, len(mask), axis=1)
        return ops.concatenate(
            [ops.matmul(x * m, k) for m, k in zip(mask, blocks, strict=True)], axis=-1
        )
    return ops.matmul(x * mask, kernel)


def _gate_mask(mask, gate):
    """The mask that one gate sees: its own if there is one per gate."""
    if isinstance(mask, (list, tuple)):
        return mask[gate]
    return mask


class _RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """What the three cells share: arguments, weights, dropout and config.

    Subclasses set `gates` (how many `units`-wide blocks the kernels hold)
    and implement `recurrent_step`.
    """

    gates = 1

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive integer, got {units!r}.")
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = min(1.0, max(0.0, dropout))
        self.recurrent_dropout = min(1.0, max(0.0, recurrent_dropout))
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        # With recurrent dropout, Keras draws a separate mask for each gate
        # (variational dropout, Gal & Ghahramani 2016); we draw the same ones,
        # in the same order, so a seeded cell matches Keras's exactly.
        if self.recurrent_dropout > 0 and self.gates > 1:
            self.dropout_mask_count = self.gates
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self._bias_shape(),
                name="bias",
                initializer=self._bias_initializer(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.built = True

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def _dropout_masks(self, inputs, h_tm1, training):
        """The input and recurrent dropout masks for this step, or None.

        Inside `keras.layers.RNN` the masks were drawn before the loop and are
        only looked up here, so every time step of a sequence uses the same.
        """
        input_mask = recurrent_mask = None
        if training and 0.0 < self.dropout < 1.0:
            input_mask = self.get_dropout_mask(inputs)
        if training and 0.0 < self.recurrent_dropout < 1.0:
            recurrent_mask = self.get_recurrent_dropout_mask(h_tm1)
        return input_mask, recurrent_mask

    def call(self, inputs, states, training=False):
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        input_mask, recurrent_mask = self._dropout_masks(inputs, h_tm1, training)
        projection = _masked_matmul(inputs, self.kernel, input_mask)
        return self.recurrent_step(projection, states, recurrent_mask)

    def recurrent_step(self, projection, states, recurrent_mask=None):
        """The rest of a step, given `projection = inputs · kernel` (no bias).

        `call` is `recurrent_step(inputs · kernel, states)`. A caller that
        knows its inputs in advance can compute their projections once; a
        text generator, whose inputs are one of a few embedded characters,
        looks each one up in a table instead of running a matmul per step.

        Args:
            projection: `(batch, gates·units)`, the inputs times `kernel`,
                after input dropout if any.
            states: The state tensors, as `call` takes them.
            recurrent_mask: The recurrent dropout mask(s), or None.

        Returns:
            `(output, new_states)`, as `call` returns them.
        """
        raise NotImplementedError

    # The names of `gate_values`' gates, in its order.
    gate_names = ()

    def gate_values(self, projection, states):
        """The gate activations of a step, by name, for looking inside the cell.

        Not on the training path: `recurrent_step` computes the same gates
        inside its own ops. Works on any leading shape, so a whole sequence's
        gates come from the projections and the states before each step,
        stacked over time. A cell without gates (SimpleRNN) returns `{}`.
        """
        return {}

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in sizes]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="kerasrnn")
class SimpleRNNCell(_RecurrentCell):
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

    def recurrent_step(self, projection, states, recurrent_mask=None):
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        z = projection
        if self.use_bias:
            z = ops.add(z, self.bias)
        z = z + _masked_matmul(h_tm1, self.recurrent_kernel, recurrent_mask)
        h = self.activation(z) if self.activation is not None else z
        new_state = [h] if isinstance(states, (list, tuple)) else h
        return h, new_state


@keras.saving.register_keras_serializable(package="kerasrnn")
class LSTMCell(_RecurrentCell):
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

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        unit_forget_bias=True,
        **kwargs,
    ):
        kwargs.pop("implementation", None)  # Keras-only knob, in Keras configs
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.state_size = [units, units]

    def get_config(self):
        config = {
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }
        return {**super().get_config(), **config}

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, base = self.units, self.bias_initializer

        def bias_with_forget_ones(_, *args, **kwargs):
            return ops.concatenate(
                [
                    base((units,), *args, **kwargs),
                    ops.ones((units,), *args, **kwargs),
                    base((2 * units,), *args, **kwargs),
                ]
            )

        return bias_with_forget_ones

    def recurrent_step(self, projection, states, recurrent_mask=None):
        h_tm1, c_tm1 = states
        # All four gates in two matmuls (this one and the projection's), then
        # one split: the per-step op count, not the arithmetic, is what costs
        # at these sizes.
        z = projection + _masked_matmul(h_tm1, self.recurrent_kernel, recurrent_mask)
        if self.use_bias:
            z = ops.add(z, self.bias)
        z_i, z_f, z_g, z_o = ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        o = self.recurrent_activation(z_o)
        c = f * c_tm1 + i * self.activation(z_g)
        h = o * self.activation(c)
        return h, [h, c]

    gate_names = ("i", "f", "o")

    def gate_values(self, projection, states):
        """`{"i": input gate, "f": forget gate, "o": output gate}` of a step."""
        z = projection + ops.matmul(states[0], self.recurrent_kernel)
        if self.use_bias:
            z = ops.add(z, self.bias)
        z_i, z_f, _, z_o = ops.split(z, 4, axis=-1)
        return {"i": self.recurrent_activation(z_i), "f": self.recurrent_activation(z_f),
                "o": self.recurrent_activation(z_o)}


@keras.saving.register_keras_serializable(package="kerasrnn")
class GRUCell(_RecurrentCell):
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

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        reset_after=True,
        **kwargs,
    ):
        kwargs.pop("implementation", None)  # Keras-only knob, in Keras configs
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after

    def get_config(self):
        config = {
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "reset_after": self.reset_after,
        }
        return {**super().get_config(), **config}

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def recurrent_step(self, projection, states, recurrent_mask=None):
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
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
            rec = _masked_matmul(h_tm1, self.recurrent_kernel, recurrent_mask)
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
            gate_mask = recurrent_mask[:2] if isinstance(recurrent_mask, list) else recurrent_mask
            rec = _masked_matmul(h_tm1, gate_kernel, gate_mask)
            rec_z, rec_r = ops.split(rec, 2, axis=-1)
            z = self.recurrent_activation(x_z + rec_z)
            r = self.recurrent_activation(x_r + rec_r)
            candidate_mask = _gate_mask(recurrent_mask, 2)
            h_masked = h_tm1 if candidate_mask is None else h_tm1 * candidate_mask
            h_candidate = self.activation(x_h + ops.matmul(r * h_masked, candidate_kernel))

        # z·h + (1 - z)·h̃, written with one product fewer per step.
        h = h_candidate + z * (h_tm1 - h_candidate)
        new_state = [h] if isinstance(states, (list, tuple)) else h
        return h, new_state

    gate_names = ("z", "r")

    def gate_values(self, projection, states):
        """`{"z": Keras's update gate (the share of h_{t-1} kept), "r": reset gate}`."""
        h_tm1 = states[0] if isinstance(states, (list, tuple)) else states
        x = projection
        rec = ops.matmul(h_tm1, self.recurrent_kernel[:, : 2 * self.units])
        if self.use_bias:
            if self.reset_after:
                input_bias, recurrent_bias = ops.unstack(ops.convert_to_tensor(self.bias))
                x = ops.add(x, input_bias)
                rec = ops.add(rec, recurrent_bias[: 2 * self.units])
            else:
                x = ops.add(x, self.bias)
        x_z, x_r, _ = ops.split(x, 3, axis=-1)
        rec_z, rec_r = ops.split(rec, 2, axis=-1)
        return {"z": self.recurrent_activation(x_z + rec_z),
                "r": self.recurrent_activation(x_r + rec_r)}
