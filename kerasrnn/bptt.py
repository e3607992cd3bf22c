"""Back-propagation through time written out, for the layers' whole sequences.

When TensorFlow differentiates a recurrent loop, every step of the backward
loop multiplies that step's hidden state by that step's gate gradients to add
to the gradient of `recurrent_kernel`: T small matmuls of shape
(units, batch) · (batch, gates·units). But their sum is one product,

    d recurrent_kernel = Σ_t h_{t-1}ᵀ · dz_t = H_prevᵀ · dZ

with H_prev and dZ stacked over time and batch: one large matmul, which a
CPU runs far faster than the many small ones (docs/speed.md has the
timings and the command). So these functions run
the forward loop, then a backward loop written by hand that only carries the
state's gradient from step to step, and take the kernel's gradient in one
matmul at the end. The equations are the cells' (kerasrnn/cells.py) with
tanh and sigmoid, the only activations they are written for.

Each function takes `projections`, the inputs times `kernel` plus the biases
that add to them, for all steps, `(batch, time, gates·units)`; the gradient
it returns for them is dZ, which the autodiff outside turns into the
gradients of `kernel` and `bias`. Both loops run time-major, so that what
the forward loop saves feeds the backward loop without a transpose.

TensorFlow only: the layers (kerasrnn/layers.py) take this path on that
backend, where it was measured and tested.
"""

from keras import ops, tree
from keras.src.backend import rnn as backend_rnn


def _sigmoid_grad(s):
    return s * (1.0 - s)


def _tanh_grad(t):
    return 1.0 - t * t


def _time_major(x):
    return ops.transpose(x, (1, 0, 2))


# `backend_rnn` stops its loop after `input_length` steps or, when that is
# None, after `inputs.shape[1]`, which for time-major inputs is the batch
# size. So a sequence whose length is only known at run time gets this bound
# instead; the loop still ends at the sequence's end.
_UNKNOWN_LENGTH = 2**31 - 1


def _loop(step, sequences, initial_states, backwards=False):
    """Runs `step` over time-major `sequences`; outputs in time order."""
    steps = tree.flatten(sequences)[0].shape[0]
    _, outputs, states = backend_rnn(
        step, sequences, initial_states, go_backwards=backwards, time_major=True,
        input_length=steps or _UNKNOWN_LENGTH,
    )
    if backwards:
        outputs = tree.map_structure(lambda x: ops.flip(x, axis=0), outputs)
    return outputs, states


def _previous(first, sequence):
    """x_{t-1} for every step t: `first`, then the sequence but its last step."""
    return ops.concatenate([ops.expand_dims(first, 0), sequence[:-1]], axis=0)


def _upstream(d_outputs, d_last_output):
    """The outputs' gradients, time-major, plus the last state's (the last output's)."""
    d_outputs = _time_major(d_outputs)
    if d_last_output is None:
        return d_outputs
    return ops.concatenate([d_outputs[:-1], d_outputs[-1:] + d_last_output], axis=0)


def _zeros_if_none(gradient, like):
    return ops.zeros_like(like) if gradient is None else gradient


@ops.custom_gradient
def simple_rnn(projections, h0, recurrent_kernel):
    """h_t = tanh(p_t + h_{t-1} · recurrent_kernel).

    Returns `(outputs, h_last)`; outputs `(batch, time, units)`.
    """

    def step(p, states):
        h = ops.tanh(p + ops.matmul(states[0], recurrent_kernel))
        return h, [h]

    outputs, (h_last,) = _loop(step, _time_major(projections), [h0])

    def grad(d_outputs, d_h_last):
        recurrent_kernel_t = ops.transpose(recurrent_kernel)

        def back_step(inputs, states):
            d_output, h = inputs
            dz = (d_output + states[0]) * _tanh_grad(h)
            return dz, [ops.matmul(dz, recurrent_kernel_t)]

        dz, (d_h0,) = _loop(
            back_step, (_upstream(d_outputs, d_h_last), outputs), [ops.zeros_like(h0)],
            backwards=True,
        )
        d_recurrent_kernel = ops.einsum("tbi,tbj->ij", _previous(h0, outputs), dz)
        return _time_major(dz), d_h0, d_recurrent_kernel

    return (_time_major(outputs), h_last), grad


@ops.custom_gradient
def lstm(projections, h0, c0, recurrent_kernel):
    """i, f, g, o = σ, σ, tanh, σ of (p_t + h_{t-1} · recurrent_kernel), in
    that order; c_t = f·c_{t-1} + i·g; h_t = o·tanh(c_t).

    Returns `(outputs, h_last, c_last)`; outputs `(batch, time, units)`.
    """

    def step(p, states):
        h, c = states
        z_i, z_f, z_g, z_o = ops.split(p + ops.matmul(h, recurrent_kernel), 4, axis=-1)
        i, f, g, o = ops.sigmoid(z_i), ops.sigmoid(z_f), ops.tanh(z_g), ops.sigmoid(z_o)
        c = f * c + i * g
        h = o * ops.tanh(c)
        return (h, c, i, f, g, o), [h, c]

    (outputs, cells, i, f, g, o), (h_last, c_last) = _loop(
        step, _time_major(projections), [h0, c0]
    )

    def grad(d_outputs, d_h_last, d_c_last):
        # What multiplies the state's gradients at each step, for all steps
        # at once: dz = [dc, dc, dc, dh] · gate_factors, dc += dh · cell_factor.
        tanh_c = ops.tanh(cells)
        gate_factors = ops.concatenate(
            [
                g * _sigmoid_grad(i),
                _previous(c0, cells) * _sigmoid_grad(f),
                i * _tanh_grad(g),
                tanh_c * _sigmoid_grad(o),
            ],
            axis=-1,
        )
        cell_factor = o * _tanh_grad(tanh_c)
        recurrent_kernel_t = ops.transpose(recurrent_kernel)

        def back_step(inputs, states):
            d_output, gate_factor, cell_factor, forget = inputs
            dh_next, dc_next = states
            dh = d_output + dh_next
            dc = dc_next + dh * cell_factor
            dz = ops.concatenate([dc, dc, dc, dh], axis=-1) * gate_factor
            return dz, [ops.matmul(dz, recurrent_kernel_t), dc * forget]

        dz, (d_h0, d_c0) = _loop(
            back_step,
            (_upstream(d_outputs, d_h_last), gate_factors, cell_factor, f),
            [ops.zeros_like(h0), _zeros_if_none(d_c_last, c0)],
            backwards=True,
        )
        d_recurrent_kernel = ops.einsum("tbi,tbj->ij", _previous(h0, outputs), dz)
        return _time_major(dz), d_h0, d_c0, d_recurrent_kernel

    return (_time_major(outputs), h_last, c_last), grad


@ops.custom_gradient
def gru(projections, h0, recurrent_kernel, candidate_bias):
    """The GRU with `reset_after=True`, in Keras's form: with
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

    (outputs, z, r, a_h, candidate), (h_last,) = _loop(step, _time_major(projections), [h0])

    def grad(d_outputs, d_h_last):
        h_prev = _previous(h0, outputs)
        # For all steps at once, what multiplies dh into each pre-activation.
        update_factor = (h_prev - candidate) * _sigmoid_grad(z)
        candidate_factor = (1.0 - z) * _tanh_grad(candidate)
        reset_factor = a_h * _sigmoid_grad(r)
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

        (d_recurrent, d_candidate), (d_h0,) = _loop(
            back_step,
            (_upstream(d_outputs, d_h_last), update_factor, candidate_factor, reset_factor, z, r),
            [ops.zeros_like(h0)],
            backwards=True,
        )
        d_projections = ops.concatenate([d_recurrent[..., : -h0.shape[-1]], d_candidate], axis=-1)
        d_recurrent_kernel = ops.einsum("tbi,tbj->ij", h_prev, d_recurrent)
        d_candidate_bias = ops.sum(d_recurrent[..., -h0.shape[-1] :], axis=(0, 1))
        return _time_major(d_projections), d_h0, d_recurrent_kernel, d_candidate_bias

    return (_time_major(outputs), h_last), grad
