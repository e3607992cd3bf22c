"""The minimal GRU and LSTM (Feng et al. 2024): gates from the input alone, a parallel scan.

Feng, Tung, Ahmed, Bengio & Hajimirsadeghi, "Were RNNs All We Needed?"
(2024, arXiv 2410.01201) strip the GRU and the LSTM until every gate
depends on the input `x_t` alone. A step is then

    h_t = a_t ⊙ h_{t−1} + b_t,     a_t, b_t computed from x_t,

a recurrence that is linear in `h`. Unrolled from `h_0`,

    h_t = A_t ⊙ h_0 + Σ_{s ≤ t} (a_{s+1} ⊙ … ⊙ a_t) ⊙ b_s,    A_t = a_1 ⊙ … ⊙ a_t,

and the pairs `(a, b)` compose associatively: two steps in a row are the one
step `(a_1 a_2, a_2 b_1 + b_2)`. So once one large matmul has given every
step's gates, no matmul is left in the time loop, and the recurrence can be
solved by a scan over time: kerasrnn/kernels/scans.py holds three
formulations (associative, chunked, sequential), all exact, each with its
backward pass written out. A fourth, the layer's blocked scan, also moves
the input matmul and the gates into the loop, a block of a few steps at a
time (`MinimalLayer._blocked_scan`). `kerasrnn.recurrent.choose_paths`
picks the fastest on each backend's CPU and, under JAX and PyTorch, on a
GPU, as measured by benchmarks/minimal.py (docs/speed.md, "minGRU and
minLSTM").

The scans work on `a` and `b` themselves, not on their logarithms. The
paper works in log space because its scan (Heinsen 2023) divides by the
running product `A_t`, which underflows; an associative or sequential scan
never divides, `0 < a_t < 1` keeps every product in range (underflow to 0
is the right answer), and the state is a convex mix of positive values, so
nothing overflows (the state is a convex mix of `h_0` and positive values).
The initial state may have any sign.

- `MinGRUCell`, `MinLSTMCell`: one step, for `keras.layers.RNN` and for
  generating text one character at a time.
- `MinGRU`, `MinLSTM`: the whole sequence at once, with the cell's weights
  (`layer.cell` is the cell). `kerasrnn.recurrent.choose_paths` runs a
  scan unless the cell's step is not this family's own (a subclass) or the
  length is unknown when the graph is built; then the layer steps the cell.

The cells are the paper's log-space versions: their candidate goes through
the positive function of its appendix B.3, which keeps `h̃ > 0`:

    g(x) = x + 0.5   (x ≥ 0),      g(x) = σ(x)   (x < 0),

continuous, increasing, and linear for large `x`, like the identity it
replaces.
"""

import keras
from keras import ops, tree

from kerasrnn.kernels.scans import (
    FORMULATIONS,
    SCANS,
    associative_scan,
    chunked_scan,
    sequential_scan,
    time_major,
)
from kerasrnn.recurrent import (
    BLOCKED_SCAN,
    RecurrentCell,
    RecurrentLayer,
    first_state,
    masked_matmul,
)

__all__ = ["MinGRUCell", "MinLSTMCell", "MinGRU", "MinLSTM", "associative_scan",
           "sequential_scan", "chunked_scan", "FORMULATIONS", "SCANS"]


def g(x):
    """The paper's positive candidate function (see the module's docstring)."""
    return ops.where(x >= 0, x + 0.5, ops.sigmoid(x))


# The blocked scan's block length: long enough that each block's matmul is
# a large one (and that PyTorch's Python loop is short), short enough that
# the block's gates stay in the cache. The fastest, measured on each
# backend's CPU with benchmarks/minimal.py: 4 steps on JAX, 8 on PyTorch.
BLOCK_STEPS = {"jax": 4, "torch": 8}


def block_steps():
    """The blocked scan's block length on the current backend."""
    return BLOCK_STEPS.get(keras.backend.backend(), 8)


class MinimalCell(RecurrentCell):
    """What minGRU and minLSTM share: an input kernel and a bias, no recurrent weights.

    A family sets `gates` and writes `coefficients`: the step's `a` and `b`,
    and its gates, for one step or for all steps at once.
    """

    has_recurrent_kernel = False
    # RecurrentCell's arguments that a cell without recurrent weights lacks.
    _NOT_APPLICABLE = ("activation", "recurrent_initializer", "recurrent_regularizer",
                       "recurrent_constraint", "recurrent_dropout")

    def __init__(
        self,
        units,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        for name in ("activation", "recurrent_activation", "recurrent_initializer",
                     "recurrent_regularizer", "recurrent_constraint"):
            if kwargs.pop(name, None) is not None:
                raise TypeError(f"{type(self).__name__} has no recurrent weights and no "
                                f"activation to choose: `{name}` does not apply.")
        if kwargs.pop("recurrent_dropout", 0.0):
            raise ValueError(f"{type(self).__name__} has no recurrent weights: "
                             "`recurrent_dropout` does not apply; use `dropout`.")
        super().__init__(
            units,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            seed=seed,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        for key in self._NOT_APPLICABLE:
            del config[key]
        return config

    def _with_bias(self, projection):
        return projection if self.bias is None else ops.add(projection, self.bias)

    def coefficients(self, projection):
        """`(a, b, gates)` of `h_t = a ⊙ h_{t−1} + b` for `projection = x · kernel`,
        any leading shape (one step, or every step of a sequence)."""
        raise NotImplementedError

    def recurrent_step(self, projection, states, recurrent_mask=None, return_gates=False):
        a, b, gates = self.coefficients(projection)
        h = a * first_state(states) + b
        new_state = [h] if isinstance(states, (list, tuple)) else h
        if return_gates:
            return h, new_state, gates
        return h, new_state


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinGRUCell(MinimalCell):
    """minGRU (Feng et al. 2024, log-space version), one time step.

    Equations (σ the sigmoid, g the positive function of kerasrnn.minimal):

        z_t = σ(x_t · W_z + b_z)
        h̃_t = g(x_t · W_h + b_h)
        h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t

    Unlike the GRU's, neither `z` nor `h̃` reads `h_{t−1}`, and there is no
    reset gate. Weights: `kernel` `(input_dim, 2·units)` holds the blocks
    z, h̃ in that order, `bias` `(2·units,)`; there is no recurrent kernel.

    Args:
        units: Positive integer, size of the hidden state.
        use_bias: Whether to add the bias. Default `True`.
        kernel_initializer, bias_initializer: Initializers of the two
            weights. Defaults `"glorot_uniform"`, `"zeros"`.
        kernel_regularizer, bias_regularizer: Optional regularizers.
        kernel_constraint, bias_constraint: Optional constraints.
        dropout: Fraction of the input units to drop (training only); one
            mask per sequence, as Keras's cells draw it.
        seed: Seed of the dropout mask.

    Example:

    >>> rnn = keras.layers.RNN(MinGRUCell(4))
    >>> rnn(np.zeros((2, 3, 5))).shape
    (2, 4)
    """

    gates = 2
    gate_names = ("z",)

    def coefficients(self, projection):
        k_z, k_h = ops.split(self._with_bias(projection), 2, axis=-1)
        z = ops.sigmoid(k_z)
        return 1.0 - z, z * g(k_h), {"z": z}


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinLSTMCell(MinimalCell):
    """minLSTM (Feng et al. 2024, log-space version), one time step.

    Equations (σ the sigmoid, g the positive function of kerasrnn.minimal):

        f_t = σ(x_t · W_f + b_f),   i_t = σ(x_t · W_i + b_i)
        f'_t = f_t / (f_t + i_t),   i'_t = i_t / (f_t + i_t)
        h̃_t = g(x_t · W_h + b_h)
        h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t

    The normalized gates sum to one, so the state stays on the scale of
    `h̃` whatever the length (the paper's time-independent form); no output
    gate and no separate cell state: `h` is both. Weights: `kernel`
    `(input_dim, 3·units)` holds the blocks f, i, h̃ in that order, `bias`
    `(3·units,)`; there is no recurrent kernel.

    Args:
        units: Positive integer, size of the hidden state.
        use_bias: Whether to add the bias. Default `True`.
        kernel_initializer, bias_initializer: Initializers of the two
            weights. Defaults `"glorot_uniform"`, `"zeros"`.
        kernel_regularizer, bias_regularizer: Optional regularizers.
        kernel_constraint, bias_constraint: Optional constraints.
        dropout: Fraction of the input units to drop (training only); one
            mask per sequence, as Keras's cells draw it.
        seed: Seed of the dropout mask.

    Example:

    >>> rnn = keras.layers.RNN(MinLSTMCell(4))
    >>> rnn(np.zeros((2, 3, 5))).shape
    (2, 4)
    """

    gates = 3
    gate_names = ("f", "i")

    def _gate_logit(self, k_f, k_i):
        # f' = σ(f)/(σ(f) + σ(i)) = σ(−d), i' = σ(d), with
        # d = log σ(i) − log σ(f) = softplus(−k_f) − softplus(−k_i).
        return ops.softplus(-k_f) - ops.softplus(-k_i)

    def coefficients(self, projection):
        k_f, k_i, k_h = ops.split(self._with_bias(projection), 3, axis=-1)
        d = self._gate_logit(k_f, k_i)
        f, i = ops.sigmoid(-d), ops.sigmoid(d)
        return f, i * g(k_h), {"f": f, "i": i}


class MinimalLayer(RecurrentLayer):
    """A minimal cell over a whole sequence: one matmul, then a scan.

    `choose_paths` picks the scan's formulation (`SCANS`) for the family's
    own step, by backend; `_run_scan` computes what `keras.layers.RNN(cell)`
    does, masking and `go_backwards` included.
    """

    has_parallel_scan = True

    def _standard_form(self):
        return True  # no activations to choose: the scan computes every form

    def _run_scan(self, formulation, sequences, initial_state, mask, training):
        cell = self.cell
        # A tensor, not a stateful layer's variable: custom gradients take tensors.
        h0 = ops.copy(tree.flatten(initial_state)[0])
        input_mask, _ = cell._dropout_masks(sequences[:, 0, :], h0, training)
        # Time-major from here on, as the scans' loops run over the first
        # axis: one transpose of the inputs and one of the states, where
        # batch-major gates would need their `a` and `b` transposed in and
        # their states out, forward and backward.
        x = time_major(sequences)
        mask = None if mask is None else ops.transpose(mask)
        if self.go_backwards:
            # `keras.layers.RNN` reads the sequence from its end and returns
            # the outputs in that order.
            x = ops.flip(x, axis=0)
            mask = None if mask is None else ops.flip(mask, axis=0)
        if formulation == BLOCKED_SCAN:
            states = self._blocked_scan(x, h0, mask, input_mask)
        else:
            a, b = _coefficients(cell, x, input_mask, mask)
            states = SCANS[formulation](a, b, h0)
        outputs = states
        if mask is not None and (self.zero_output_for_mask
                                 or keras.backend.backend() != "jax"):
            # As `keras.layers.RNN`: a masked step's output is zero with
            # `zero_output_for_mask`; else it is the carried state (the JAX
            # backend's loop), or the last unmasked step's output, zero
            # before there is one (the TensorFlow and PyTorch backends').
            keep = ops.cast(mask, states.dtype)
            if not self.zero_output_for_mask:
                keep = ops.cast(ops.cumsum(keep, axis=0) > 0, states.dtype)
            outputs = states * ops.expand_dims(keep, -1)
        return outputs[-1], time_major(outputs), [states[-1]]

    def _blocked_scan(self, x, h0, mask, input_mask):
        """Every `h_t`, `(time, batch, units)`, from the time-major inputs `x`,
        in blocks of a few steps (`block_steps()`): each step of the loop
        multiplies one block's inputs by the kernel, computes their gates and
        runs the block's steps; differentiated by the backend.

        The same work as one matmul and a scan, but each block's gates are
        used while they are in the cache, where the whole sequence's `a` and
        `b` would be written out to memory and read back, forward and
        backward. On PyTorch's CPU it also runs T/8 Python loop steps
        instead of T, and it beat the one-matmul formulations and
        `keras.layers.RNN(cell)` there for both cells; on JAX's, for minLSTM
        (`scan_in_blocks`), and for minGRU once a sequence's states outgrow
        the cache (`choose_paths`; docs/speed.md). Needs a static length.
        """
        cell = self.cell
        steps, batch = ops.shape(x)[0], ops.shape(x)[1]
        size = block_steps()
        blocks = -(-steps // size)
        padding = blocks * size - steps
        keep = mask
        if padding:  # steps that change nothing (kept out by `keep`), cut off below
            if keep is None:
                keep = ops.ones((steps, batch), "bool")
            x = ops.pad(x, [[0, padding], [0, 0], [0, 0]])
            keep = ops.pad(ops.cast(keep, "bool"), [[0, padding], [0, 0]],
                           constant_values=False)

        def per_block(x):  # (time, batch, ...) -> (blocks, size, batch, ...)
            return ops.reshape(x, (blocks, size, *ops.shape(x)[1:]))

        def block(previous, inputs):
            # The carry is the previous block's states, whose last is the
            # state entering this block: TensorFlow's `ops.scan` needs the
            # outputs (this block's states) to have the carry's shape.
            # inputs: (size, batch, features), and (size, batch) where masked
            x, keep = inputs if isinstance(inputs, tuple) else (inputs, None)
            a, b = _coefficients(cell, x, input_mask, keep)
            h, states = previous[-1], []
            for t in range(size):  # unrolled: a few element-wise ops each
                h = a[t] * h + b[t]
                states.append(h)
            states = ops.stack(states)
            return states, states

        inputs = per_block(x) if keep is None else (per_block(x), per_block(keep))
        before_the_first = ops.stack([ops.zeros_like(h0)] * (size - 1) + [h0])
        _, states = ops.scan(block, before_the_first, inputs)
        return ops.reshape(states, (blocks * size, batch, -1))[:steps]


def _coefficients(cell, x, input_mask, mask):
    """`a`, `b` of every step of the time-major inputs `x`, `(time, batch,
    features)`; a step `mask` `(time, batch)` masks keeps the state: a = 1,
    b = 0. The input dropout mask, `(batch, features)`, broadcasts over time."""
    a, b, _ = cell.coefficients(cell.project(masked_matmul(x, cell.kernel, input_mask)))
    if mask is None:
        return a, b
    keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
    return ops.where(keep, a, 1.0), ops.where(keep, b, 0.0)


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinGRU(MinimalLayer):
    """A minGRU layer: `MinGRUCell` over a whole sequence by a scan.

    Its gates depend on the input alone, so a scan (see the module's
    docstring) solves the recurrence for all steps, in the formulation
    `kerasrnn.recurrent.choose_paths` picks for the backend. The
    outputs, states and gradients are those of `keras.layers.RNN(MinGRUCell)`
    with the same weights (`layer.cell` is that cell).

    Args:
        units: Positive integer, size of the hidden state.
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer, kernel_constraint, bias_constraint, dropout, seed: The cell's,
            as `MinGRUCell` documents them.
        return_sequences: Whether to return the output of every step, `(batch, timesteps,
            units)`, rather than the last, `(batch, units)`. Default `False`.
        return_state: Whether to return the last states after the output. Default `False`.
        go_backwards: Whether to read the sequence from its last step to its first (the
            outputs come in that order). Default `False`.
        stateful: Whether each sample's last states in a batch are its initial states in the
            next batch. Default `False`.
        unroll: Whether to unroll the time loop into straight-line code: faster for short
            sequences, at the cost of memory. A scan has no such loop and ignores it.
            Default `False`.
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

    >>> MinGRU(4, return_sequences=True)(np.zeros((2, 3, 5))).shape
    (2, 3, 4)
    """

    cell_class = family_cell = MinGRUCell


@keras.saving.register_keras_serializable(package="kerasrnn")
class MinLSTM(MinimalLayer):
    """A minLSTM layer: `MinLSTMCell` over a whole sequence by a scan.

    Its gates depend on the input alone, so a scan (see the module's
    docstring) solves the recurrence for all steps, in the formulation
    `kerasrnn.recurrent.choose_paths` picks for the backend. The
    outputs, states and gradients are those of
    `keras.layers.RNN(MinLSTMCell)` with the same weights (`layer.cell` is
    that cell).

    Args:
        units: Positive integer, size of the hidden state.
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer, kernel_constraint, bias_constraint, dropout, seed: The cell's,
            as `MinLSTMCell` documents them.
        return_sequences: Whether to return the output of every step, `(batch, timesteps,
            units)`, rather than the last, `(batch, units)`. Default `False`.
        return_state: Whether to return the last states after the output. Default `False`.
        go_backwards: Whether to read the sequence from its last step to its first (the
            outputs come in that order). Default `False`.
        stateful: Whether each sample's last states in a batch are its initial states in the
            next batch. Default `False`.
        unroll: Whether to unroll the time loop into straight-line code: faster for short
            sequences, at the cost of memory. A scan has no such loop and ignores it.
            Default `False`.
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

    >>> MinLSTM(4, return_sequences=True)(np.zeros((2, 3, 5))).shape
    (2, 3, 4)
    """

    cell_class = family_cell = MinLSTMCell
    # Three gates and a normalization per step: on JAX's CPU, cheaper in
    # blocks than as whole-sequence tensors at every length (docs/speed.md;
    # minGRU's two, only once the sequence's states outgrow the cache).
    scan_in_blocks = True
