"""The layer-normalized family: SimpleRNN, LSTM and GRU cells with layer normalization.

Layer normalization (Ba, Kiros & Hinton 2016, arXiv 1607.06450) rescales a
vector to zero mean and unit variance over its features, then applies a
learned gain γ and shift β:

    LN(a) = γ · (a − mean(a)) / sqrt(var(a) + ε) + β

Inside a recurrent cell it keeps the pre-activations at one scale whatever
the length of the sequence, which lets larger learning rates train stably.

- `LayerNormSimpleRNNCell` and `LayerNormLSTMCell` compute what TensorFlow
  Addons' cells of those names compute, with their constructor arguments,
  defaults and sub-layer names (`layernorm`; `kernel_norm`,
  `recurrent_norm`, `state_norm`), so that porting code from TF 2.15 is an
  import change.
- `LayerNormGRUCell` is the GRU in the style of `LayerNormLSTMCell` (TFA
  has none; tensorflow/addons#2710 asked for it).
- `LayerNormSimpleRNN`, `LayerNormLSTM`, `LayerNormGRU`: the cells over a
  whole sequence. Where the input's term is normalized alone (`LN(x·W)`,
  the LSTM and the GRU), the layer normalizes every step's at once, before
  its loop (`project`); the SimpleRNN normalizes the sum `x·W + h·U`, which
  only the loop knows, so its layer takes the matmul `x·W` out of the loop
  and no more. No fused kernel computes these equations: the layers run
  their own loop (`kerasrnn.recurrent.choose_paths`).

The weights are the classic cells' (`kernel`, `recurrent_kernel`, `bias`, in
Keras's layout and gate order) plus each normalization's γ and β, held by
its `keras.layers.LayerNormalization` sub-layer. Cell weights come in the
order TFA's do: the three matrices, then each sub-layer's γ then β.
"""

import keras
from keras import constraints, initializers, ops, regularizers

from kerasrnn.gru import GRUCell
from kerasrnn.lstm import LSTMCell
from kerasrnn.recurrent import (
    GatedCell,
    RecurrentCell,
    RecurrentLayer,
    first_state,
    masked_matmul,
)

__all__ = ["LayerNormSimpleRNNCell", "LayerNormLSTMCell", "LayerNormGRUCell",
           "LayerNormSimpleRNN", "LayerNormLSTM", "LayerNormGRU"]


def _check_epsilon(value, name):
    if not value > 0:
        raise ValueError(f"`{name}` must be a positive number, got {value!r}.")
    return value


@keras.saving.register_keras_serializable(package="kerasrnn")
class LayerNormSimpleRNNCell(RecurrentCell):
    """An Elman cell whose pre-activation is layer-normalized (TFA's), one step.

    Equation (`ln` scales only: γ, no β; the bias `b` centres afterwards,
    which with LN's own centring is the full LN of Ba et al.'s eq. 4):

        h_t = tanh(ln(W_xh · x_t + W_hh · h_{t-1}) + b)

    Weights: `kernel` `(input_dim, units)`, `recurrent_kernel`
    `(units, units)`, `bias` `(units,)` (Keras's SimpleRNN layout), and the
    sub-layer `layernorm`'s `gamma` `(units,)`.

    Args:
        units: Positive integer, size of the hidden state.
        activation: Default `"tanh"`.
        use_bias: Whether to add `b`. Default `True`.
        layernorm_epsilon: ε of the normalization. Default `1e-5`.
        kernel_initializer, recurrent_initializer, bias_initializer,
            gamma_initializer: Defaults `"glorot_uniform"`, `"orthogonal"`,
            `"zeros"`, `"ones"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer,
            gamma_regularizer: Optional regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint,
            gamma_constraint: Optional constraints.
        dropout, recurrent_dropout: Fractions of the inputs and of the state
            to drop (training only), one mask per sequence.
        seed: Seed of the dropout masks.

    Example:

    >>> rnn = keras.layers.RNN(LayerNormSimpleRNNCell(4), return_sequences=True)
    >>> rnn(np.zeros((2, 3, 5))).shape
    (2, 3, 4)
    """

    def __init__(self, units, layernorm_epsilon=1e-5, gamma_initializer="ones",
                 gamma_regularizer=None, gamma_constraint=None, **kwargs):
        super().__init__(units, **kwargs)
        self.layernorm = keras.layers.LayerNormalization(
            epsilon=_check_epsilon(layernorm_epsilon, "layernorm_epsilon"), center=False,
            gamma_initializer=gamma_initializer, gamma_regularizer=gamma_regularizer,
            gamma_constraint=gamma_constraint, dtype=self.dtype_policy, name="layernorm",
        )

    def get_config(self):
        norm = self.layernorm
        return {
            **super().get_config(),
            "layernorm_epsilon": norm.epsilon,
            "gamma_initializer": initializers.serialize(norm.gamma_initializer),
            "gamma_regularizer": regularizers.serialize(norm.gamma_regularizer),
            "gamma_constraint": constraints.serialize(norm.gamma_constraint),
        }

    def build(self, input_shape):
        super().build(input_shape)
        self.layernorm.build((None, self.units))

    def recurrent_step(self, projection, states, recurrent_mask=None, return_gates=False):
        z = projection + masked_matmul(first_state(states), self.recurrent_kernel,
                                       recurrent_mask)
        z = self.layernorm(z)
        if self.use_bias:
            z = ops.add(z, self.bias)
        h = self.activation(z) if self.activation is not None else z
        new_state = [h] if isinstance(states, (list, tuple)) else h
        if return_gates:
            return h, new_state, {}
        return h, new_state


class _NormedGatedCell(GatedCell):
    """What the layer-normalized LSTM and GRU add to their family's cell:
    TFA's LayerNormLSTMCell arguments (each normalization's γ and β
    initializers and ε), the input's and the state's terms normalized
    (`project`, `recurrent_term`), and its dropout: one input mask and one
    recurrent mask for all the gates (TFA's cell uses the first of the masks
    Keras 2 drew), where Keras 3's LSTMCell draws one per gate once
    recurrent dropout is on. Placed before the family's cell among the
    bases, so that its methods override the family's hooks."""

    dropout_mask_per_gate = False

    def __init__(self, units, norm_gamma_initializer="ones", norm_beta_initializer="zeros",
                 norm_epsilon=1e-3, **kwargs):
        super().__init__(units, **kwargs)
        self.norm_gamma_initializer = initializers.get(norm_gamma_initializer)
        self.norm_beta_initializer = initializers.get(norm_beta_initializer)
        self.norm_epsilon = _check_epsilon(norm_epsilon, "norm_epsilon")
        self.kernel_norm = self._norm("kernel_norm")
        self.recurrent_norm = self._norm("recurrent_norm")

    def get_config(self):
        return {
            **super().get_config(),
            "norm_gamma_initializer": initializers.serialize(self.norm_gamma_initializer),
            "norm_beta_initializer": initializers.serialize(self.norm_beta_initializer),
            "norm_epsilon": self.norm_epsilon,
        }

    def _norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, gamma_initializer=self.norm_gamma_initializer,
            beta_initializer=self.norm_beta_initializer, dtype=self.dtype_policy, name=name,
        )

    def build(self, input_shape):
        super().build(input_shape)
        width = self.gates * self.units
        self.kernel_norm.build((None, width))
        self.recurrent_norm.build((None, width))

    def project(self, inputs_times_kernel):
        return self.kernel_norm(inputs_times_kernel)

    def recurrent_term(self, h_tm1, recurrent_mask=None):
        return self.recurrent_norm(super().recurrent_term(h_tm1, recurrent_mask))


@keras.saving.register_keras_serializable(package="kerasrnn")
class LayerNormLSTMCell(_NormedGatedCell, LSTMCell):
    """An LSTM cell with layer normalization (TFA's LayerNormLSTMCell), one step.

    Equations (σ is `recurrent_activation`, tanh is `activation`; LN_k,
    LN_r and LN_c are the sub-layers `kernel_norm`, `recurrent_norm` and
    `state_norm`, each with its own γ and β):

        z          = LN_k(x_t · kernel) + LN_r(h_{t-1} · recurrent_kernel) + b
        i, f, g, o = σ(z_i), σ(z_f), tanh(z_g), σ(z_o)
        c_t        = LN_c(f · c_{t-1} + i · g)
        h_t        = o · tanh(c_t)

    LN_k and LN_r normalize all four gates' pre-activations together (a
    `4·units` vector), and the state carries the normalized `c_t`, as TFA's
    cell does (Ba et al. 2016 keep c unnormalized and normalize it only for
    h; TFA's form is kept so that trained weights port).

    The step is `LSTMCell`'s, with LN_k in `project`, LN_r in
    `recurrent_term` and LN_c in `new_cell_state`.

    Weights: `kernel` `(input_dim, 4·units)`, `recurrent_kernel`
    `(units, 4·units)`, `bias` `(4·units,)` in Keras's gate order i, f, g, o
    (so Keras's and TFA's LSTM weights load), then γ and β of `kernel_norm`
    and `recurrent_norm` `(4·units,)` and of `state_norm` `(units,)`.

    Args:
        units: Positive integer, size of `h` and `c`.
        activation, recurrent_activation: Defaults `"tanh"`, `"sigmoid"`.
        use_bias, unit_forget_bias: Default `True` both (the forget gate's
            bias starts at 1).
        kernel_initializer, recurrent_initializer, bias_initializer,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint: As
            `keras.layers.LSTMCell`.
        norm_gamma_initializer, norm_beta_initializer: Initializers of every
            γ and β. Defaults `"ones"`, `"zeros"`.
        norm_epsilon: ε of the three normalizations. Default `1e-3`.
        dropout, recurrent_dropout: Fractions of the inputs and of the state
            to drop (training only); one mask of each for all four gates, as
            TFA's cell applies them.
        seed: Seed of the dropout masks.

    Example:

    >>> lstm = keras.layers.RNN(LayerNormLSTMCell(4), return_state=True)
    >>> h, state_h, state_c = lstm(np.zeros((2, 3, 5)))
    >>> h.shape, state_c.shape
    ((2, 4), (2, 4))
    """

    def __init__(self, units, **kwargs):
        super().__init__(units, **kwargs)
        self.state_norm = self._norm("state_norm")

    def build(self, input_shape):
        super().build(input_shape)
        self.state_norm.build((None, self.units))

    def new_cell_state(self, c):
        return self.state_norm(c)


@keras.saving.register_keras_serializable(package="kerasrnn")
class LayerNormGRUCell(_NormedGatedCell, GRUCell):
    """A GRU cell with layer normalization, in the style of TFA's LayerNormLSTMCell.

    Equations (σ is `recurrent_activation`, tanh is `activation`; LN_k and
    LN_r are the sub-layers `kernel_norm` and `recurrent_norm`; Keras's
    update gate z, the share of h_{t-1} kept):

        [a_z, a_r, a_h] = LN_k(x_t · kernel) + b_x
        [u_z, u_r, u_h] = LN_r(h_{t-1} · recurrent_kernel) + b_h
        z, r = σ(a_z + u_z), σ(a_r + u_r)
        h̃    = tanh(a_h + r · u_h)
        h_t  = z · h_{t-1} + (1 − z) · h̃

    Where the normalization applies, and why: as in TFA's LayerNormLSTMCell
    and Ba et al. 2016 (§3.1, the summed inputs of a recurrent layer), the
    input's and the state's projections are normalized separately, before
    any nonlinearity, each over all three blocks. The reset gate applies
    after the recurrent matmul and its normalization (Keras's and cuDNN's
    `reset_after=True`), so that a step holds one recurrent matmul and one
    normalization, and the normalized input term depends on x_t alone: a
    layer normalizes every step's at once, before its loop. The state is h
    itself, unnormalized: it is already a convex mix of h_{t-1} and a tanh.
    The step is `GRUCell`'s (`reset_after=True`), with LN_k in `project` and
    LN_r in `recurrent_term`.

    Weights: `kernel` `(input_dim, 3·units)`, `recurrent_kernel`
    `(units, 3·units)` in Keras's block order z, r, h; `bias` `(2, 3·units)`,
    input bias b_x then recurrent bias b_h (Keras's `reset_after=True`
    layout, so Keras's GRU weights load); then γ and β of `kernel_norm` and
    `recurrent_norm` `(3·units,)`.

    Args:
        units: Positive integer, size of the hidden state.
        activation, recurrent_activation: Defaults `"tanh"`, `"sigmoid"`.
        use_bias: Default `True`.
        kernel_initializer, recurrent_initializer, bias_initializer,
            kernel_regularizer, recurrent_regularizer, bias_regularizer,
            kernel_constraint, recurrent_constraint, bias_constraint: As
            `keras.layers.GRUCell`.
        norm_gamma_initializer, norm_beta_initializer: Initializers of every
            γ and β. Defaults `"ones"`, `"zeros"`.
        norm_epsilon: ε of the two normalizations. Default `1e-3`.
        dropout, recurrent_dropout: Fractions of the inputs and of the state
            to drop (training only); one mask of each for all three gates,
            as the layer-normalized LSTM.
        seed: Seed of the dropout masks.

    Example:

    >>> gru = keras.layers.RNN(LayerNormGRUCell(4))
    >>> gru(np.zeros((2, 3, 5))).shape
    (2, 4)
    """

    def __init__(self, units, **kwargs):
        # The recurrent term is normalized whole, so the reset gate applies
        # after it: `reset_after=True`, GRUCell's step in that form.
        if kwargs.pop("reset_after", True) is not True:
            raise ValueError("LayerNormGRUCell applies the reset gate after the recurrent"
                             " matmul: `reset_after` must be True.")
        super().__init__(units, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["reset_after"]  # always True: see __init__
        return config


@keras.saving.register_keras_serializable(package="kerasrnn")
class LayerNormSimpleRNN(RecurrentLayer):
    """`LayerNormSimpleRNNCell` over a sequence, the matmul `x·W` out of the loop.

    Args:
        units: Positive integer, size of the hidden state.
        activation, use_bias, layernorm_epsilon, kernel_initializer, recurrent_initializer,
            bias_initializer, gamma_initializer, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, gamma_regularizer, kernel_constraint, recurrent_constraint,
            bias_constraint, gamma_constraint, dropout, recurrent_dropout, seed: The cell's,
            as `LayerNormSimpleRNNCell` documents them.
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

    >>> LayerNormSimpleRNN(4, return_sequences=True)(np.zeros((2, 3, 5))).shape
    (2, 3, 4)
    """

    cell_class = family_cell = LayerNormSimpleRNNCell


@keras.saving.register_keras_serializable(package="kerasrnn")
class LayerNormLSTM(RecurrentLayer):
    """`LayerNormLSTMCell` over a sequence, `LN_k(x·W)` of every step before the loop.

    Args:
        units: Positive integer, size of `h` and `c`.
        activation, recurrent_activation, use_bias, unit_forget_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, norm_gamma_initializer,
            norm_beta_initializer, norm_epsilon, dropout, recurrent_dropout, seed: The
            cell's, as `LayerNormLSTMCell` documents them.
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

    >>> output, state_h, state_c = LayerNormLSTM(4, return_state=True)(np.zeros((2, 3, 5)))
    >>> state_c.shape
    (2, 4)
    """

    cell_class = family_cell = LayerNormLSTMCell


@keras.saving.register_keras_serializable(package="kerasrnn")
class LayerNormGRU(RecurrentLayer):
    """`LayerNormGRUCell` over a sequence, `LN_k(x·W)` of every step before the loop.

    Args:
        units: Positive integer, size of the hidden state.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, norm_gamma_initializer,
            norm_beta_initializer, norm_epsilon, dropout, recurrent_dropout, seed: The
            cell's, as `LayerNormGRUCell` documents them.
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

    >>> LayerNormGRU(4)(np.zeros((2, 3, 5))).shape
    (2, 4)
    """

    cell_class = family_cell = LayerNormGRUCell
