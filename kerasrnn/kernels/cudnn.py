"""Keras's backend `lstm` and `gru` functions: cuDNN, where the backend can.

These are what `keras.layers.LSTM` and `GRU` call first: on a GPU they run
cuDNN, and they raise `NotImplementedError` where they cannot (no GPU,
masking on JAX, `unroll`, ...). Our layers call them with the same
arguments, so they run cuDNN exactly where Keras's layers do. They are not
exported under `keras.ops`, so they are looked up where Keras's own layers
find them, at call time; a Keras without them declines.
"""

import keras

from kerasrnn.recurrent import first_state


def _backend_function(name):
    from keras.src import backend

    function = getattr(backend, name, None)
    if function is None:  # a Keras release without it: nothing to hand over to
        raise NotImplementedError
    return function


def _arguments(layer):
    cell = layer.cell
    return dict(
        kernel=cell.kernel,
        recurrent_kernel=cell.recurrent_kernel,
        bias=cell.bias,
        activation=cell.activation,
        recurrent_activation=cell.recurrent_activation,
        return_sequences=layer.return_sequences,
        go_backwards=layer.go_backwards,
        unroll=layer.unroll,
    )


def lstm(layer, sequences, states, mask):
    h, c = states
    return _backend_function("lstm")(sequences, h, c, mask, **_arguments(layer))


def gru(layer, sequences, states, mask):
    return _backend_function("gru")(
        sequences, first_state(states), mask, reset_after=layer.cell.reset_after,
        **_arguments(layer),
    )


def compilable(layer):
    """False where TensorFlow would run cuDNN: its cuDNN ops cannot be compiled by XLA."""
    if keras.backend.backend() != "tensorflow":
        return True
    cell = layer.cell
    arguments = dict(activation=cell.activation, recurrent_activation=cell.recurrent_activation,
                     unroll=layer.unroll, use_bias=cell.use_bias)
    if layer.fused_kernel == "gru":
        arguments["reset_after"] = cell.reset_after
    try:
        return not _backend_function("cudnn_ok")(**arguments)
    except NotImplementedError:
        return True
