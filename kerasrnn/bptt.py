"""Back-propagation through time written out, for the layers' whole sequences.

When TensorFlow differentiates a recurrent loop, every step of the backward
loop multiplies that step's hidden state by that step's gate gradients to add
to the gradient of `recurrent_kernel`: T small matmuls of shape
(units, batch) · (batch, gates·units). But their sum is one product,

    d recurrent_kernel = Σ_t h_{t-1}ᵀ · dz_t = H_prevᵀ · dZ

with H_prev and dZ stacked over time and batch: one large matmul, which a
CPU runs far faster than the many small ones (docs/speed.md has the
timings and the command). So a written-out pass runs the forward loop, then
a backward loop written by hand that only carries the state's gradient from
step to step, and takes the kernel's gradient in one matmul at the end. The
equations are the cells' with tanh and sigmoid, the only activations they
are written for.

This module holds the loop machinery that every family's pass shares; each
family's own pass sits beside its cell (`simple_rnn.written_out`,
`lstm.written_out`, `gru.written_out`). Each takes `projections`, the inputs
times `kernel` plus the biases that add to them, for all steps,
`(batch, time, gates·units)`; the gradient it returns for them is dZ, which
the autodiff outside turns into the gradients of `kernel` and `bias`. Both
loops run time-major, so that what the forward loop saves feeds the backward
loop without a transpose.

TensorFlow only: `kerasrnn.recurrent.choose_paths` takes this path on that
backend, where it was measured and tested.
"""

from keras import ops, tree
from keras.src.backend import rnn as backend_rnn


def sigmoid_grad(s):
    return s * (1.0 - s)


def tanh_grad(t):
    return 1.0 - t * t


def time_major(x):
    return ops.transpose(x, (1, 0, 2))


# `backend_rnn` stops its loop after `input_length` steps or, when that is
# None, after `inputs.shape[1]`, which for time-major inputs is the batch
# size. So a sequence whose length is only known at run time gets this bound
# instead; the loop still ends at the sequence's end.
_UNKNOWN_LENGTH = 2**31 - 1


def loop(step, sequences, initial_states, backwards=False):
    """Runs `step` over time-major `sequences`; outputs in time order."""
    steps = tree.flatten(sequences)[0].shape[0]
    _, outputs, states = backend_rnn(
        step, sequences, initial_states, go_backwards=backwards, time_major=True,
        input_length=steps or _UNKNOWN_LENGTH,
    )
    if backwards:
        outputs = tree.map_structure(lambda x: ops.flip(x, axis=0), outputs)
    return outputs, states


def previous(first, sequence):
    """x_{t-1} for every step t: `first`, then the sequence but its last step."""
    return ops.concatenate([ops.expand_dims(first, 0), sequence[:-1]], axis=0)


def upstream(d_outputs, d_last_output):
    """The outputs' gradients, time-major, plus the last state's (the last output's)."""
    d_outputs = time_major(d_outputs)
    if d_last_output is None:
        return d_outputs
    return ops.concatenate([d_outputs[:-1], d_outputs[-1:] + d_last_output], axis=0)


def zeros_if_none(gradient, like):
    return ops.zeros_like(like) if gradient is None else gradient
