"""What every cell family shares: the cell base, the layer base, and the path.

A cell family (kerasrnn/simple_rnn.py, lstm.py, gru.py) is one module with
three things: its cell, which computes one time step and is what
`keras.layers.RNN` wraps; its layer, which runs the cell over a whole
sequence; and, where it has one, its written-out backward pass. This module
holds what they have in common:

- `RecurrentCell`: the arguments every cell takes (initializers,
  regularizers, constraints, dropout, seed), its three weights in Keras's
  layout, its dropout masks and its config. A family sets `gates` and writes
  `recurrent_step`, the step after the input matmul.
- `RecurrentLayer`: `keras.layers.RNN` over a family's cell, with the input
  matmul of all time steps taken out of the loop (one large matmul instead
  of one per step; cuDNN and PyTorch's `nn.LSTM` do the same).
- `choose_paths`: how a layer runs a sequence, from two questions answered
  apart: which paths compute the call correctly (each path's `declines`,
  which says why not), and which of those is fastest on the backend and
  device (`PREFERENCES`, measured). While Keras's LiteRT or ONNX exporter
  traces the layer, kerasrnn/portable.py traces the form that converter
  recognises instead.

The weights keep Keras's layout, so the weights of
`keras.layers.SimpleRNNCell`, `LSTMCell` and `GRUCell` load unchanged:

- `kernel`, shape `(input_dim, G * units)`: the input weights of all G gates
  side by side;
- `recurrent_kernel`, shape `(units, G * units)`: the recurrent weights, same
  gate order;
- `bias`, shape `(G * units,)` (GRU with `reset_after=True`: `(2, 3 * units)`,
  input bias then recurrent bias).

The textbook notation `W·[h_{t-1}, x_t]` is exactly
`x_t · kernel + h_{t-1} · recurrent_kernel`: `W` is the two matrices stacked.

Only `keras.ops` is used, so everything here runs on every Keras backend.
"""

import dataclasses
import numbers

import keras
from keras import activations, constraints, initializers, ops, regularizers, tree

# `keras.layers.RNN` drives its loop with the backend's `rnn`. It is not
# exported under `keras.ops`, so it is used from where Keras's own layers use it.
from keras.src.backend import rnn as backend_rnn

# `keras.layers.RNN` recognises cells that use dropout by this mixin: for them it
# draws the dropout masks once, before the time loop, and clears them after the
# sequence, which is what keeps one mask fixed across all the time steps. It is
# not exported under `keras.layers`, so it is imported from where Keras defines
# it (present in every Keras 3 release).
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

__all__ = ["RecurrentCell", "GatedCell", "RecurrentLayer", "Situation", "choose_paths",
           "declines", "preferences", "PREFERENCES", "PATHS", "FUSED", "ASSOCIATIVE_SCAN",
           "CHUNKED_SCAN", "SEQUENTIAL_SCAN", "BLOCKED_SCAN", "WRITTEN_OUT", "LOOP", "CELL"]


def masked_matmul(x, kernel, mask):
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


def gate_mask(mask, gate):
    """The mask that one gate sees: its own if there is one per gate."""
    if isinstance(mask, (list, tuple)):
        return mask[gate]
    return mask


def first_state(states):
    """`h_{t-1}`: the state itself, or the first of a list of states."""
    return states[0] if isinstance(states, (list, tuple)) else states


def forget_bias_ones(base, units):
    """An LSTM's bias initializer with the forget gate's block at 1
    (`unit_forget_bias`, Jozefowicz et al. 2015) and `base` for i, g and o."""

    def bias_with_forget_ones(_, *args, **kwargs):
        return ops.concatenate([base((units,), *args, **kwargs),
                                ops.ones((units,), *args, **kwargs),
                                base((2 * units,), *args, **kwargs)])

    return bias_with_forget_ones


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """What every cell shares: arguments, weights, dropout and config.

    A family's cell sets `gates` (how many `units`-wide blocks the kernels
    hold) and `gate_names`, and implements `recurrent_step`.
    """

    gates = 1
    # False for cells whose gates read the input alone (kerasrnn/minimal.py).
    has_recurrent_kernel = True
    # With recurrent dropout, one mask per gate (Keras 3's cells); False: one
    # input mask and one recurrent mask for all gates (TensorFlow Addons').
    dropout_mask_per_gate = True
    # The names of the gate activations `recurrent_step(..., return_gates=True)`
    # returns, in that order.
    gate_names = ()

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
        # Any integer, NumPy's included, as Keras takes it; not a bool or a float.
        if isinstance(units, bool) or not isinstance(units, numbers.Integral) or units <= 0:
            raise ValueError(f"`units` must be a positive integer, got {units!r}.")
        units = int(units)
        # Keras's LSTM and GRU cells keep it (1: more, smaller matmuls; 2: fewer,
        # larger): the same arithmetic, so every path here computes either.
        implementation = kwargs.pop("implementation", 2)
        super().__init__(**kwargs)
        self.implementation = implementation
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
        if self.recurrent_dropout > 0 and self.gates > 1 and self.dropout_mask_per_gate:
            self.dropout_mask_count = self.gates
        self.state_size = units
        self.output_size = units

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
        self.recurrent_kernel = None
        if self.has_recurrent_kernel:
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
        input_mask, recurrent_mask = self._dropout_masks(inputs, first_state(states), training)
        projection = self.project(masked_matmul(inputs, self.kernel, input_mask))
        return self.recurrent_step(projection, states, recurrent_mask)

    def project(self, inputs_times_kernel):
        """What the step does to `inputs · kernel` that depends on this step's
        inputs alone (a layer-normalized cell normalizes it here); by default
        nothing. It works on any leading shape, so a layer applies it to all
        steps at once, before its loop."""
        return inputs_times_kernel

    def recurrent_term(self, h_tm1, recurrent_mask=None):
        """`h_{t-1} · recurrent_kernel`, after recurrent dropout: the step's
        recurrent matmul, all gates at once (a layer-normalized cell
        normalizes it here)."""
        return masked_matmul(h_tm1, self.recurrent_kernel, recurrent_mask)

    def recurrent_step(self, projection, states, recurrent_mask=None, return_gates=False):
        """The rest of a step, given `projection = project(inputs · kernel)`.

        `call` is `recurrent_step(project(inputs · kernel), states)`. A caller
        that knows its inputs in advance computes their projections once: the
        layers for a whole sequence, a text generator (whose inputs are one
        of a few embedded characters) from a table.

        Args:
            projection: `(batch, gates·units)`, `project` of the inputs times
                `kernel`, after input dropout if any; no bias.
            states: The state tensors, as `call` takes them.
            recurrent_mask: The recurrent dropout mask(s), or None.
            return_gates: Also return the step's gate activations, for
                looking inside the cell; they are the tensors the step
                computes anyway.

        Returns:
            `(output, new_states)`, as `call` returns them; with
            `return_gates`, `(output, new_states, gates)`, `gates` a dict
            keyed by `gate_names`.
        """
        raise NotImplementedError

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in sizes]


# The methods a cell's step is made of: `project`, `recurrent_step`, and the
# hooks through which a variant changes one part of a family's step
# (kerasrnn/layer_norm.py, peephole.py). A cell computes its family's
# equations, which the fast paths hard-code, only where all of them are the
# family's own.
STEP_METHODS = ("project", "recurrent_step", "recurrent_term", "input_and_forget_gates",
                "new_cell_state", "output_gate")


class GatedCell(RecurrentCell):
    """A cell with sigmoid-like gates: adds `recurrent_activation` (LSTM, GRU)."""

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)

    def get_config(self):
        config = {"recurrent_activation": activations.serialize(self.recurrent_activation)}
        return {**super().get_config(), **config}


# ----------------------------------------------------------------------------
# Choosing a path. A layer can run a sequence these ways:

FUSED = "fused kernel"  # a backend's whole-sequence kernel (kerasrnn/kernels/)
# A recurrence linear in h (kerasrnn/minimal.py: gates from the input alone)
# is solved by a scan, in one of four formulations:
ASSOCIATIVE_SCAN = "associative scan"  # parallel: O(log T) deep
CHUNKED_SCAN = "chunked scan"  # blocks of √T steps: 2√T loop steps
SEQUENTIAL_SCAN = "sequential scan"  # T loop steps of one multiply-add
BLOCKED_SCAN = "blocked scan"  # loop steps of a block (4 or 8 steps): its matmul, gates, steps
SCANS = (ASSOCIATIVE_SCAN, CHUNKED_SCAN, SEQUENTIAL_SCAN, BLOCKED_SCAN)
WRITTEN_OUT = "written-out backward"  # the layer's loop, gradient by kerasrnn/bptt.py
LOOP = "layer loop"  # the layer's loop, input projection hoisted, autodiff
CELL = "cell"  # `keras.layers.RNN`'s loop over the cell's own `call`
PATHS = (FUSED, *SCANS, WRITTEN_OUT, LOOP, CELL)

# Two questions decide how a layer runs a call, answered apart:
#
# - which paths compute this call correctly: each path's `declines` check
#   below, which reads only what the path can compute (its step or the
#   family's, activations, mask, unroll, dropout, dtype, backend);
# - which of those is fastest: PREFERENCES, measured orders by backend and
#   device.
#
# `choose_paths` is the second filtered by the first. A new path is one
# check and a place in the rows; a new backend or device, one row.


@dataclasses.dataclass(frozen=True)
class Situation:
    """What the path depends on, read off a layer and its call."""

    backend: str  # keras.backend.backend()
    own_call: bool  # the cell's `call` is `RecurrentCell.call`
    own_step: bool  # the cell's `project` and `recurrent_step` are its family's own
    standard_form: bool  # tanh and sigmoid (and, for the GRU, reset_after=True)
    has_fused_kernel: bool  # the family has one (LSTM, GRU)
    has_written_out: bool  # the family has a written-out backward pass
    has_parallel_scan: bool  # the family's recurrence is linear in h (minimal.py)
    use_cudnn: object  # "auto", True or False
    masked: bool
    recurrent_dropout: bool  # recurrent dropout is drawn in this call
    unroll: bool
    static_length: bool  # the number of time steps is known when the graph is built
    # The family's gates cost more than its scan (minLSTM's three): on JAX,
    # computing them block by block, in the cache, pays at any length
    # (minimal.py). On PyTorch the blocked scan pays for every family.
    scan_in_blocks: bool = False
    # Floats in the states of every step of the batch (time × batch × units),
    # where the shape is known when the graph is built; else None.
    states_size: int | None = None
    gpu: bool = False  # the layer computes on a GPU (see `on_gpu`)
    # The layer computes in float16 or bfloat16 (a mixed precision policy).
    reduced_precision: bool = False


# A whole sequence's states at least this large (32 MiB of float32, the L3
# cache of the CPU measured in docs/speed.md) no longer stay in the cache
# between the gates that compute them, the scan and its backward pass.
LARGE_STATES = 2**23


def on_gpu(weight):
    """Whether a layer with the variable `weight` computes on a GPU: on
    PyTorch, where its weights are (Keras moves the inputs there); on JAX
    and TensorFlow, on Keras's default devices, its GPUs where it has any."""
    backend = keras.backend.backend()
    if backend == "torch":
        return weight.value.device.type == "cuda"
    if backend in ("jax", "tensorflow"):
        return keras.distribution.list_devices()[0].startswith("gpu")
    return False


# Correctness: why a path cannot compute a call, or None where it can.

def _fixed_equations_decline(s):
    """The fused kernels, the written-out backward pass and the scans
    hard-code the family's equations: they compute only the family's own
    step, in the form they are written for, with no per-step mask on h."""
    if not (s.own_call and s.own_step):
        return "the cell computes its own step, not its family's"
    if not s.standard_form:
        return "activations other than tanh and sigmoid (or a GRU with reset_after=False)"
    if s.recurrent_dropout:
        return "recurrent dropout: the path takes no mask on the state"
    return None


# float16 or bfloat16: the layer's own paths sum a whole sequence's gradients
# (the hoisted matmul's kernel, the biases added to every step at once) in one
# op in that precision, which overflowed under Keras's loss scale; the cell's
# loop sums them step by step, as Keras's own layers do, and the fused kernels
# accumulate in float32.
_REDUCED_PRECISION = ("float16 or bfloat16: the path sums a sequence's gradients in that"
                      " precision")


def _fused_declines(s):
    # The kernels decline a mask or `unroll` themselves, at run time, where
    # only they can tell (no GPU for cuDNN, Keras tracing or compiling).
    if not s.has_fused_kernel:
        return "the family has no fused kernel"
    if s.use_cudnn is False:
        return "use_cudnn=False"
    return _fixed_equations_decline(s)


def _scan_declines(s):
    # Any mask, direction, state or input dropout: a scan computes them all.
    if not s.has_parallel_scan:
        return "the family's recurrence is not linear in the state"
    if not s.static_length:
        return "the scans need the number of steps when the graph is built"
    if s.reduced_precision:
        return _REDUCED_PRECISION
    return _fixed_equations_decline(s)


def _written_out_declines(s):
    if not s.has_written_out:
        return "the family has no written-out backward pass"
    if s.backend != "tensorflow":
        # `keras.ops.custom_gradient` takes one output on PyTorch; not tested on JAX.
        return "the written-out backward pass runs on TensorFlow only"
    if s.masked or s.unroll:
        return "a mask or unroll: the written-out loop computes neither"
    if s.reduced_precision:
        return _REDUCED_PRECISION
    return _fixed_equations_decline(s)


def _loop_declines(s):
    if not s.own_call:
        return "the cell's own `call` is the cell: only `keras.layers.RNN`'s loop calls it"
    if s.reduced_precision:
        return _REDUCED_PRECISION
    return None


_DECLINES = {FUSED: _fused_declines, WRITTEN_OUT: _written_out_declines,
             LOOP: _loop_declines, CELL: lambda s: None,
             **{scan: _scan_declines for scan in SCANS}}


def declines(path, s):
    """Why `path` cannot run the call described by the Situation `s`, in
    words; None where it computes it correctly. (A fused kernel may still
    decline at run time, where only it can tell.)"""
    if path != FUSED and s.use_cudnn is True:
        return "use_cudnn=True: the fused kernel or an error, as in Keras"
    return _DECLINES[path](s)


# Speed: the paths fastest first, by backend and device, measured on the
# machines of docs/speed.md ("minGRU and minLSTM" for the scans). On the
# CPUs the sequential scan was fastest on TensorFlow and JAX; on PyTorch,
# whose loops are Python's, the blocked scan (T/8 loop steps, no
# whole-sequence temporaries for the backward pass to write and read); on
# JAX, the blocked scan for families whose gates cost more than the scan
# (`scan_in_blocks`) and once a sequence's states outgrow the cache. On a
# GPU, a loop of T dependent steps leaves its cores idle: an H200 ran the
# associative scan fastest under JAX, the chunked one under PyTorch (whose
# associative scan is recursion in Python). TensorFlow's GPU build and the
# NumPy backend were not measured and take TensorFlow's CPU row.
_COMMON_TAIL = (WRITTEN_OUT, LOOP, CELL)
_SEQUENTIAL_FIRST = (FUSED, SEQUENTIAL_SCAN, BLOCKED_SCAN, CHUNKED_SCAN, ASSOCIATIVE_SCAN,
                     *_COMMON_TAIL)
PREFERENCES = {
    ("tensorflow", "cpu"): _SEQUENTIAL_FIRST,
    ("jax", "cpu"): _SEQUENTIAL_FIRST,
    ("jax", "cpu, scan in blocks"): (FUSED, BLOCKED_SCAN, SEQUENTIAL_SCAN, CHUNKED_SCAN,
                                     ASSOCIATIVE_SCAN, *_COMMON_TAIL),
    ("jax", "gpu"): (FUSED, ASSOCIATIVE_SCAN, CHUNKED_SCAN, SEQUENTIAL_SCAN, BLOCKED_SCAN,
                     *_COMMON_TAIL),
    ("torch", "cpu"): (FUSED, BLOCKED_SCAN, SEQUENTIAL_SCAN, CHUNKED_SCAN, ASSOCIATIVE_SCAN,
                       *_COMMON_TAIL),
    ("torch", "gpu"): (FUSED, CHUNKED_SCAN, ASSOCIATIVE_SCAN, BLOCKED_SCAN, SEQUENTIAL_SCAN,
                       *_COMMON_TAIL),
}


def preferences(s):
    """PREFERENCES' row for the backend and device of `s`."""
    device = "gpu" if s.gpu else "cpu"
    large = s.states_size is not None and s.states_size >= LARGE_STATES
    if (s.backend, device) == ("jax", "cpu") and (s.scan_in_blocks or large):
        device = "cpu, scan in blocks"
    return PREFERENCES.get((s.backend, device), PREFERENCES[("tensorflow", "cpu")])


def choose_paths(s):
    """The paths that compute the call `s` describes, fastest first.

    The layer runs the first; a fused kernel may still decline at run time,
    and the layer then runs the next. The cell's own loop computes every
    call, so the list ends in it, except with `use_cudnn=True`, which asks
    for the fused kernel or an error, as in Keras.
    """
    return [path for path in preferences(s) if declines(path, s) is None]


# Arguments that belong to the layer; every other keyword goes to the cell.
_RNN_ARGUMENTS = (
    "input_shape",  # Keras's Layer builds a Sequential's first layer from these
    "input_dim",
    "autocast",
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


def over_time(mask):
    """A per-sequence dropout mask `(batch, features)`, broadcast over time."""
    if mask is None:
        return None
    if isinstance(mask, (list, tuple)):
        return [ops.expand_dims(m, 1) for m in mask]
    return ops.expand_dims(mask, 1)


class RecurrentLayer(keras.layers.RNN):
    """`keras.layers.RNN` over a family's cell, the input matmul out of the loop.

    `keras.layers.RNN(cell)` calls the cell once per time step, so a sequence
    of T steps costs T small `x_t · kernel` matmuls, and its gradient T more.
    But every input is known before the loop starts: this layer computes
    `inputs · kernel` for the whole sequence in one matmul and runs only the
    cell's `recurrent_step` inside the loop. The arithmetic and the weights
    are the cell's. Everything `keras.layers.RNN` offers works the same
    (state, masking, `go_backwards`, `stateful`, `unroll`, `Bidirectional`);
    only `inner_loop`, the loop itself, differs, and `choose_paths` picks it.

    A family's layer sets `cell_class` and `family_cell` (both its cell)
    and, where the family has them, `has_written_out` (and implements
    `_written_out_loop`), `has_parallel_scan` (and implements
    `_run_scan`) and `fused_kernel` (the kernel's name in
    kerasrnn/kernels/). A subclass may set another `cell_class`; the fast
    paths then run only if that cell's step is still `family_cell`'s.
    """

    cell_class = None  # the cell this layer builds
    family_cell = None  # the cell whose equations the fast paths compute
    has_written_out = False
    has_parallel_scan = False
    scan_in_blocks = False  # with has_parallel_scan: see Situation
    fused_kernel = None

    def __init__(self, units, use_cudnn="auto", **kwargs):
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"use_cudnn must be 'auto', True or False, got {use_cudnn!r}")
        if self.fused_kernel is None and use_cudnn != "auto":
            raise TypeError(f"{type(self).__name__} has no fused kernel: `use_cudnn` does"
                            " not apply")
        layer_kwargs = {k: kwargs.pop(k) for k in _RNN_ARGUMENTS if k in kwargs}
        cell = self.cell_class(
            units,
            dtype=layer_kwargs.get("dtype"),
            trainable=layer_kwargs.get("trainable", True),
            name=f"{self.cell_class.__name__.lower()[:-4]}_cell",
            **kwargs,
        )
        # `keras.layers.RNN`'s constructor by name: LSTM and GRU also derive
        # from Keras's LSTM and GRU, whose constructors build Keras's cells.
        keras.layers.RNN.__init__(self, cell, **layer_kwargs)
        # As Keras's own recurrent layers: a sequence, (batch, time, features).
        self.input_spec = keras.layers.InputSpec(ndim=3)
        if self.fused_kernel is None:
            return  # no `use_cudnn` attribute, as Keras's SimpleRNN has none
        self._use_cudnn = use_cudnn
        if use_cudnn in ("auto", True):
            from kerasrnn import kernels  # here: kernels imports this module

            if not kernels.compilable(self):
                self.supports_jit = False

    def get_config(self):
        config = keras.layers.RNN.get_config(self)  # by name: see __init__
        del config["cell"]
        cell_config = self.cell.get_config()
        for key in _LAYER_OWNED_KEYS:
            cell_config.pop(key, None)
        config = {**config, **cell_config}
        if self.fused_kernel is not None:
            config["use_cudnn"] = self._use_cudnn
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @property
    def units(self):
        return self.cell.units

    def computes_family_step(self):
        """Whether the layer's cell computes its family's own step (not a
        subclass's), the condition of every fused kernel, Keras's included."""
        return self._own_call() and self._own_step()

    def _own_call(self):
        """Whether the cell's `call` is `RecurrentCell.call` (a project and a step)."""
        return type(self.cell).call is RecurrentCell.call

    def _own_step(self):
        """Whether the cell's step methods (STEP_METHODS) are `family_cell`'s."""
        cell = type(self.cell)
        return all(getattr(cell, name, None) is getattr(self.family_cell, name, None)
                   for name in STEP_METHODS)

    @property
    def use_cudnn(self):
        """`use_cudnn` as given, as Keras's own wrappers read it: False where
        the cell's step is not the family's own, so that no fused kernel
        (`Bidirectional`'s single call included) runs in its place. Layers
        without a fused kernel have none, as Keras's SimpleRNN."""
        if self.fused_kernel is None:
            raise AttributeError(f"{type(self).__name__} has no `use_cudnn`")
        return self._use_cudnn if self.computes_family_step() else False

    @use_cudnn.setter
    def use_cudnn(self, value):
        self._use_cudnn = value

    def build(self, sequences_shape, initial_state_shape=None):
        super().build(sequences_shape, initial_state_shape)
        if sequences_shape[-1] is not None:
            # The features the weights were made for, checked by Keras's
            # layer call on every path: a fused kernel given another size
            # reads past its buffers.
            self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: sequences_shape[-1]})

    def _checked_states(self, sequences, initial_state):
        """The initial states, checked before any path runs: another number
        or shape than the cell's is refused (the fused kernels would read
        past their buffers, the scans ignore extra states). A state of batch
        1 is broadcast to the inputs' batch, as `keras.layers.RNN`'s loop
        computes it."""
        sizes = self.cell.state_size
        sizes = list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]
        states = tree.flatten(initial_state)
        if len(states) != len(sizes):
            raise ValueError(f"Layer '{self.name}' expects {len(sizes)} initial state"
                             f"{'s' if len(sizes) > 1 else ''} of sizes {sizes}, but it"
                             f" received {len(states)} initial state tensors.")
        batch = sequences.shape[0]
        checked = []
        for state, size in zip(states, sizes, strict=True):
            shape = tuple(state.shape)
            if len(shape) == 2 and shape[0] == 1 and batch not in (None, 1):
                state, shape = ops.broadcast_to(state, (batch, shape[1])), (batch, shape[1])
            if (len(shape) != 2 or shape[-1] not in (None, size)
                    or None not in (batch, shape[0]) and shape[0] != batch):
                raise ValueError(f"Layer '{self.name}': an initial state of shape {shape} does"
                                 f" not fit inputs of shape {tuple(sequences.shape)}: expected"
                                 f" ({batch}, {size}).")
            checked.append(state)
        return tree.pack_sequence_as(initial_state, checked)

    def _standard_form(self):
        """Whether the cell's activations are those the fast paths compute."""
        cell = self.cell
        return (cell.activation is activations.tanh
                and getattr(cell, "recurrent_activation", activations.sigmoid)
                is activations.sigmoid)

    def situation(self, mask, training, static_length=True, states_size=None, gpu=False):
        cell = self.cell
        return Situation(
            backend=keras.backend.backend(),
            own_call=self._own_call(),
            own_step=self._own_step(),
            standard_form=self._standard_form(),
            has_fused_kernel=self.fused_kernel is not None,
            has_written_out=self.has_written_out,
            has_parallel_scan=self.has_parallel_scan,
            use_cudnn=getattr(self, "_use_cudnn", "auto"),
            masked=mask is not None,
            recurrent_dropout=bool(training) and 0.0 < cell.recurrent_dropout < 1.0,
            unroll=self.unroll,
            static_length=static_length,
            scan_in_blocks=self.scan_in_blocks,
            states_size=states_size,
            gpu=gpu,
            reduced_precision=self.compute_dtype in ("float16", "bfloat16"),
        )

    def situation_of_call(self, sequences, mask=None, training=False):
        """The `Situation` of a call on `sequences` (or their shape)."""
        batch, steps = sequences.shape[0], sequences.shape[1]
        known = batch is not None and steps is not None
        return self.situation(mask, training, static_length=steps is not None,
                              states_size=batch * steps * self.units if known else None,
                              gpu=on_gpu(self.cell.kernel))

    def declines(self, path, sequences, mask=None, training=False):
        """Why `path` (one of `PATHS`) cannot compute this layer's call on
        `sequences`, in words; None where it can. The layer must be built."""
        return declines(path, self.situation_of_call(sequences, mask, training))

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if tree.is_nested(mask):
            mask = mask[0]
        initial_state = self._checked_states(sequences, initial_state)
        from kerasrnn import portable  # here: portable imports this module

        target = portable.export_target()
        if target is not None:  # Keras's exporter traces for LiteRT or ONNX
            return portable.run(self, target, sequences, initial_state, mask, training)
        for path in choose_paths(self.situation_of_call(sequences, mask, training)):
            if path != FUSED:
                return self.run_path(path, sequences, initial_state, mask, training)
            try:
                return self.run_path(path, sequences, initial_state, mask, training)
            except NotImplementedError:  # the kernel declined: the next path
                continue
        raise ValueError(
            "use_cudnn=True, but the backend has no fused kernel for this "
            "configuration on this device; pass use_cudnn='auto' to fall back"
        )

    def run_path(self, path, sequences, initial_state, mask, training):
        """`inner_loop`'s `(last_output, outputs, states)` by one path;
        `NotImplementedError` where a fused kernel declines."""
        if path == FUSED:
            from kerasrnn import kernels  # here: kernels imports this module

            return kernels.run(self, sequences, initial_state, mask, training)
        if path in SCANS:
            return self._run_scan(path, sequences, initial_state, mask, training)
        if path == WRITTEN_OUT:
            return self._run_written_out(sequences, initial_state, training)
        if path == LOOP:
            return self._run_loop(sequences, initial_state, mask, training)
        if path == CELL:
            return keras.layers.RNN.inner_loop(self, sequences, initial_state, mask, training)
        raise ValueError(f"unknown path {path!r}")

    def _projections(self, sequences, initial_state, training):
        """The cell's `project(sequences · kernel)` for every step, and the
        recurrent dropout mask."""
        cell = self.cell
        # `RNN.call` drew this sequence's dropout masks before calling us, so
        # these are lookups, and every step sees the same masks.
        input_mask, recurrent_mask = cell._dropout_masks(
            sequences[:, 0, :], tree.flatten(initial_state)[0], training
        )
        projections = masked_matmul(sequences, cell.kernel, over_time(input_mask))
        return cell.project(projections), recurrent_mask

    def _run_written_out(self, sequences, initial_state, training):
        projections, _ = self._projections(sequences, initial_state, training)
        if self.go_backwards:
            projections = ops.flip(projections, axis=1)
        # Tensors, not variables (a stateful layer's states are variables):
        # TensorFlow's custom gradients must not read any.
        states = [ops.copy(state) for state in tree.flatten(initial_state)]
        outputs, *states = self._written_out_loop(
            projections, states, ops.copy(self.cell.recurrent_kernel)
        )
        return states[0], outputs, states

    def _written_out_loop(self, projections, initial_state, recurrent_kernel):
        """The family's `written_out` `(outputs, *last states)` for these
        projections (biases not yet added), already in the order the loop
        reads them."""
        raise NotImplementedError

    def _run_loop(self, sequences, initial_state, mask, training):
        cell = self.cell
        projections, recurrent_mask = self._projections(sequences, initial_state, training)

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
