"""Mixed precision: every layer trains under `mixed_float16` and
`mixed_bfloat16` as Keras's own layer does.

One training step's gradients, under Keras's initial loss scale (2**15),
against float32's: kerasrnn's layer must be no further from float32 than
Keras's own (keras.layers.LSTM and the like; `keras.layers.RNN(cell)` for
the cells Keras lacks), and finite wherever Keras's are. The written-out
backward pass summed the biases' gradient over batch and time in float16,
which overflowed where Keras's loop did not.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasrnn

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the written-out pass is TensorFlow's")

LAYERS = ["SimpleRNN", "LSTM", "GRU", "LayerNormSimpleRNN", "LayerNormLSTM", "LayerNormGRU",
          "PeepholeLSTM", "MinGRU", "MinLSTM"]
SCALE = 2.0**15  # Keras's LossScaleOptimizer's initial scale
EPSILON = {"mixed_float16": 2.0**-10, "mixed_bfloat16": 2.0**-7}  # of the compute dtype
BATCH, STEPS, FEATURES, UNITS = 4, 6, 3, 4


def _keras_layer(name):
    if hasattr(keras.layers, name) and name in ("SimpleRNN", "LSTM", "GRU"):
        return getattr(keras.layers, name)(UNITS)
    return keras.layers.RNN(getattr(kerasrnn, name + "Cell")(UNITS))


def _gradients(make_layer, policy, weights, target):
    """The unscaled gradients of one step of a small regression, in float64."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = keras.Sequential([keras.Input((STEPS, FEATURES)), make_layer(),
                                  keras.layers.Dense(1, dtype="float32")])
        model.set_weights(weights)
        x = np.random.default_rng(1).random((BATCH, STEPS, FEATURES)).astype("float32")
        y = np.full((BATCH, 1), target, "float32")
        scale = 1.0 if policy == "float32" else SCALE
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.mean_squared_error(y, model(x, training=True)))
            scaled = loss * scale
        gradients = tape.gradient(scaled, model.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return [np.asarray(g, np.float64) / scale for g in gradients]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", LAYERS)
def test_one_step_under_mixed_precision_is_as_near_float32_as_keras_s(name, policy):
    keras.utils.set_random_seed(0)
    reference = keras.Sequential([keras.Input((STEPS, FEATURES)), _keras_layer(name),
                                  keras.layers.Dense(1)])
    weights = reference.get_weights()
    # A target far enough that float16 gradients near its limit under the scale.
    target = 3.0
    exact = _gradients(lambda: _keras_layer(name), "float32", weights, target)
    theirs = _gradients(lambda: _keras_layer(name), policy, weights, target)
    ours = _gradients(lambda: getattr(kerasrnn, name)(UNITS), policy, weights, target)
    for e, t, o, variable in zip(exact, theirs, ours, reference.trainable_variables,
                                 strict=True):
        if not np.isfinite(t).all():
            continue  # Keras's own overflowed too: that step is skipped by the optimizer
        assert np.isfinite(o).all(), f"{variable.path}: not finite where Keras's is"
        their_error, our_error = np.abs(t - e).max(), np.abs(o - e).max()
        # Within a sixteenth of the policy's epsilon at the gradient's size,
        # which of two programs lands nearer float32 is the luck of their
        # roundings (on a CPU without AVX-512, Keras's own GRU lands far
        # nearer than one bfloat16 rounding in the output layer's bias); a
        # sum that overflows or runs in half precision errs by epsilons.
        rounding = EPSILON[policy] / 16 * np.abs(e).max()
        assert our_error <= 3 * their_error + max(1e-4, rounding), (
            variable.path, our_error, their_error)
