"""Our LSTM and GRU layers on cuDNN, against Keras's own layers on cuDNN.

These tests need a GPU that the Keras backend can run cuDNN on; elsewhere
they skip (test_cells.py checks there, with a stand-in for the backend's
cuDNN function, that ours offers it what Keras's layers offer). They import
no TensorFlow, so they also run under `KERAS_BACKEND=torch` or `jax` on a GPU
machine that has no TensorFlow:

    KERAS_BACKEND=torch python -m pytest tests/test_cudnn.py -rs

Both layers are built with `use_cudnn=True`, so neither can quietly fall back
to its own loop: where the backend's `lstm` / `gru` function declines, Keras's
layer raises a ValueError and the test skips, saying so. (On JAX that function
is cuDNN for the LSTM, and for the GRU a `lax.scan` of Keras's own: JAX has
no cuDNN GRU.)
"""

import keras
import numpy as np
import pytest

from kerasrnn import GRU, LSTM

LAYERS = {"lstm": (LSTM, keras.layers.LSTM), "gru": (GRU, keras.layers.GRU)}
SAME_KERNEL = dict(atol=1e-6, rtol=1e-6)  # both layers run the same cuDNN call


def _inputs(batch=3, steps=5, features=4, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("float32")


def _skip_without_cudnn(layer):
    pytest.skip(f"Keras's own {layer.__class__.__name__} cannot use cuDNN here "
                f"({keras.backend.backend()} backend, this device, these options)")


def _keras_on_cudnn(layer, x, **call):
    """Keras's layer called on x; skips the test where it cannot use cuDNN."""
    if keras.backend.backend() == "torch":
        import torch

        # Without CUDA, Keras's torch backend runs a plain torch loop even
        # under use_cudnn=True, so that would not test cuDNN.
        if not torch.cuda.is_available():
            _skip_without_cudnn(layer)
    try:
        return layer(x, **call)
    except ValueError as error:
        if "use_cudnn" not in str(error):
            raise
        _skip_without_cudnn(layer)


def _cudnn_pair(kind, **kwargs):
    """Keras's layer and ours, both on cuDNN, with the same weights."""
    ours_cls, theirs_cls = LAYERS[kind]
    theirs, ours = theirs_cls(6, use_cudnn=True, **kwargs), ours_cls(6, use_cudnn=True, **kwargs)
    _keras_on_cudnn(theirs, _inputs())
    ours(_inputs())
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def _right_padded_mask(batch=3, steps=5):
    lengths = np.array([steps, 3, 1])[:batch]
    return np.arange(steps)[None, :] < lengths[:, None]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("options", [
    {"return_sequences": True, "return_state": True},
    {"go_backwards": True},
    {"return_sequences": True, "masked": True},
], ids=["sequences-and-states", "go-backwards", "masked"])
def test_outputs_match_keras_on_cudnn(kind, options):
    options = dict(options)
    call = {"mask": _right_padded_mask()} if options.pop("masked", False) else {}
    theirs, ours = _cudnn_pair(kind, **options)
    x = _inputs(seed=1)
    theirs_out, ours_out = _keras_on_cudnn(theirs, x, **call), ours(x, **call)
    for t, o in zip(keras.tree.flatten(theirs_out), keras.tree.flatten(ours_out), strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(o),
                                   keras.ops.convert_to_numpy(t), **SAME_KERNEL)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cudnn_gives_what_our_loop_gives(kind):
    _, on_cudnn = _cudnn_pair(kind, return_sequences=True)
    own_loop = LAYERS[kind][0](6, use_cudnn=False, return_sequences=True)
    x = _inputs(seed=2)
    own_loop(x)
    own_loop.set_weights(on_cudnn.get_weights())
    # Not to 1e-6: cuDNN and the backend's matmuls may round differently
    # (TF32 on recent GPUs), so this checks the equations, not the rounding.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(on_cudnn(x)),
                               keras.ops.convert_to_numpy(own_loop(x)), atol=5e-3)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_training_step_matches_keras_on_cudnn(kind):
    """One SGD step through cuDNN's backward pass changes both models alike."""
    theirs_layer, ours_layer = _cudnn_pair(kind, return_sequences=True)
    models = []
    for layer in (theirs_layer, ours_layer):
        inputs = keras.Input((5, 4))
        model = keras.Model(inputs, keras.layers.Dense(3)(layer(inputs)))
        model.compile(keras.optimizers.SGD(0.5), "mse")
        models.append(model)
    theirs, ours = models
    ours.set_weights(theirs.get_weights())
    x = _inputs(seed=3)
    y = np.random.default_rng(4).normal(size=(3, 5, 3)).astype("float32")
    before = [w.copy() for w in theirs.get_weights()]
    theirs_loss, ours_loss = theirs.train_on_batch(x, y), ours.train_on_batch(x, y)
    np.testing.assert_allclose(ours_loss, theirs_loss, rtol=1e-5)
    changed = 0
    for b, t, o in zip(before, theirs.get_weights(), ours.get_weights(), strict=True):
        np.testing.assert_allclose(o, t, atol=1e-5, rtol=1e-5)
        changed += not np.allclose(t, b)
    assert changed == len(before)  # every weight, recurrent ones included, took a step
