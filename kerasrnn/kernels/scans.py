"""The scans that solve a recurrence linear in the state, `h_t = a_t ⊙ h_{t−1} + b_t`.

kerasrnn/minimal.py derives why minGRU's and minLSTM's steps take this
form; its layers hand the whole sequence's `a` and `b` here. Three
formulations, all exact, all on `keras.ops` (every backend):

- `associative_scan`: the parallel scan, O(log T) steps deep;
- `chunked_scan`: blocks of about √T steps, all blocks at once, then the
  blocks in order: about 2√T loop steps;
- `sequential_scan`: T loop steps of one multiply-add.

`with_written_out_gradient` gives each its backward pass: the same scan run
from the end. `SCANS` holds them so, by the path names of
`kerasrnn.recurrent` (the fourth, the blocked scan, needs the layer's
weights and is the layer's own).
"""

import contextlib
import math

import keras
from keras import ops

from kerasrnn.recurrent import ASSOCIATIVE_SCAN, CHUNKED_SCAN, SEQUENTIAL_SCAN

__all__ = ["associative_scan", "sequential_scan", "chunked_scan", "with_written_out_gradient",
           "FORMULATIONS", "SCANS", "time_major"]


def time_major(x):
    """`(batch, time, ...)` <-> `(time, batch, ...)`."""
    return ops.moveaxis(x, 0, 1)


def _compose(earlier, later):
    """Two steps `(a, b)` in a row, as one step."""
    a1, b1 = earlier
    a2, b2 = later
    return a1 * a2, b1 * a2 + b2


def _default_device_of(x):
    """A context in which PyTorch makes new tensors on `x`'s device.

    Keras's PyTorch `associative_scan` (3.15) builds its interleaved
    buffers with `torch.zeros` on the default device, the CPU, so the scan
    of a GPU tensor fails on mixed devices; other backends need nothing.
    """
    if keras.backend.backend() != "torch":
        return contextlib.nullcontext()
    # A `torch.device` is the context that makes it the default.
    return ops.convert_to_tensor(x).device


def associative_scan(a, b, h0, reverse=False):
    """All `h_t = a_t ⊙ h_{t−1} + b_t` by a parallel (associative) scan.

    `a`, `b`: `(time, batch, units)`, time-major as every scan here takes
    them (a loop runs over the first axis); `h0`: `(batch, units)`; returns
    every `h_t`, `(time, batch, units)`. O(log T) steps deep, O(T) work;
    needs a static length on TensorFlow. With `reverse`, the recurrence runs
    from the last step to the first (`h_t = a_t ⊙ h_{t+1} + b_t`, `h0` after
    the end), as every scan here does: the backward pass needs it.
    """
    with _default_device_of(a):
        products, from_zero = ops.associative_scan(_compose, (a, b), reverse=reverse, axis=0)
    # TensorFlow's loses the static shape, which Keras's losses need.
    return ops.reshape(products * h0 + from_zero, ops.shape(a))


def sequential_scan(a, b, h0, reverse=False):
    """The same, one step after the other: a loop of one multiply-add each."""

    def step(h, coefficients):
        a_t, b_t = coefficients
        h = a_t * h + b_t
        return h, h

    _, states = ops.scan(step, h0, (a, b), reverse=reverse)
    return states


def chunked_scan(a, b, h0, reverse=False):
    """The same, in blocks of C ≈ √T steps: C + T/C loop steps instead of T.

    1. Within every block at once, from a zero state: `H`, and `P` the
       product of the block's `a` so far (C steps, on tensors T/C times
       wider than one step's).
    2. From block to block: the state entering each block (T/C steps).
    3. `h = H + P ⊙ (state entering the block)`, for all steps at once.

    Needs a static length.
    """
    if reverse:
        return ops.flip(chunked_scan(ops.flip(a, axis=0), ops.flip(b, axis=0), h0), axis=0)
    steps, _, units = ops.shape(a)
    size = max(1, math.isqrt(steps - 1) + 1)  # C, the block length
    blocks = -(-steps // size)
    padding = blocks * size - steps
    if padding:  # steps that change nothing: a = 1, b = 0
        a = ops.pad(a, [[0, padding], [0, 0], [0, 0]], constant_values=1.0)
        b = ops.pad(b, [[0, padding], [0, 0], [0, 0]])

    def within_blocks(x):  # (blocks·C, batch, units) -> (C, blocks·batch, units)
        x = ops.reshape(x, (blocks, size, -1, units))
        return ops.reshape(time_major(x), (size, -1, units))

    a, b = within_blocks(a), within_blocks(b)

    def within(carry, coefficients):
        product, h = carry
        a_t, b_t = coefficients
        product, h = product * a_t, h * a_t + b_t
        return (product, h), (product, h)

    (block_product, block_h), (products, from_zero) = ops.scan(
        within, (ops.ones_like(a[0]), ops.zeros_like(a[0])), (a, b))

    def per_block(x):  # (blocks·batch, units) -> (blocks, batch, units)
        return ops.reshape(x, (blocks, -1, units))

    def across(h, block):
        product, from_zero = block
        return product * h + from_zero, h  # the state entering the block

    _, entering = ops.scan(across, h0, (per_block(block_product), per_block(block_h)))
    entering = ops.reshape(entering, (1, -1, units))
    states = from_zero + products * entering  # (C, blocks·batch, units)
    states = time_major(ops.reshape(states, (size, blocks, -1, units)))
    return ops.reshape(states, (blocks * size, -1, units))[:steps]


def with_written_out_gradient(scan):
    """`scan`, with its gradient computed by the same scan run backwards.

    For a loss ℓ of every `h_t`, with `g_t = ∂ℓ/∂h_t` counting every way
    `h_t` reaches ℓ (its own output, and `h_{t+1} = a_{t+1} ⊙ h_t + …`):

        g_t = ∂ℓ/∂h_t|direct + a_{t+1} ⊙ g_{t+1},   g_T = ∂ℓ/∂h_T|direct
        ∂ℓ/∂b_t = g_t,   ∂ℓ/∂a_t = g_t ⊙ h_{t−1},   ∂ℓ/∂h_0 = a_1 ⊙ g_1

    The first line is the forward recurrence, read from the end, with the
    coefficients shifted by one step: one more scan, of the same kind.
    Differentiating through the scan's own operations instead costs more
    work, and keeps every intermediate of the forward pass for it.
    """

    @ops.custom_gradient
    def solve(a, b, h0):
        states = scan(a, b, h0)

        def grad(*args, upstream=None):
            if upstream is None:  # TensorFlow and JAX pass it by position
                (upstream,) = args
            # a_{t+1} for every t; after the last step nothing follows (0).
            a_next = ops.concatenate([a[1:], ops.zeros_like(a[:1])], axis=0)
            d_h = scan(a_next, upstream, ops.zeros_like(h0), reverse=True)  # g_t above
            h_prev = ops.concatenate([ops.expand_dims(h0, 0), states[:-1]], axis=0)
            return d_h * h_prev, d_h, a[0] * d_h[0]

        return states, grad

    return solve


# The formulations, by the name `kerasrnn.recurrent.choose_paths` gives them
# (the blocked scan, which needs the layer's weights, is the layer's own),
# and the same with their written-out gradients, as the layers run them.
FORMULATIONS = {ASSOCIATIVE_SCAN: associative_scan, SEQUENTIAL_SCAN: sequential_scan,
                CHUNKED_SCAN: chunked_scan}
SCANS = {name: with_written_out_gradient(scan) for name, scan in FORMULATIONS.items()}
