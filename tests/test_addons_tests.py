"""TensorFlow Addons' own tests of its RNN cells, run on kerasrnn's classes.

Copied from tensorflow/addons (tensorflow_addons/rnn/tests/, Apache-2.0,
Copyright 2019 The TensorFlow Authors): `layer_norm_lstm_cell_test.py`'s
output test, `peephole_lstm_cell_test.py` and
`layer_norm_simple_rnn_cell_test.py`, with two changes only: the import
(`from kerasrnn import ...` for `from tensorflow_addons.rnn import ...`) and
TF 2's `get_initial_state(inputs=..., batch_size=..., dtype=...)` written
the Keras 3 way, `get_initial_state(batch_size=...)`. Their expected
numbers are TFA's, computed by TFA's cells: a port that gets them computes
what TFA computed.
"""

import numpy as np
import tensorflow as tf
from tensorflow import keras

from kerasrnn import LayerNormLSTMCell, LayerNormSimpleRNNCell, PeepholeLSTMCell

# --- layer_norm_lstm_cell_test.py ------------------------------------------


def test_cell_output():
    x = tf.ones([1, 2], dtype=tf.float32)
    c0 = tf.constant(0.1 * np.asarray([[0, 1]]), dtype=tf.float32)
    h0 = tf.constant(0.1 * np.asarray([[2, 3]]), dtype=tf.float32)
    state0 = [h0, c0]
    c1 = tf.constant(0.1 * np.asarray([[4, 5]]), dtype=tf.float32)
    h1 = tf.constant(0.1 * np.asarray([[6, 7]]), dtype=tf.float32)
    state1 = [h1, c1]
    state = (state0, state1)
    const_initializer = tf.constant_initializer(0.5)

    def single_cell():
        return LayerNormLSTMCell(
            units=2,
            kernel_initializer=const_initializer,
            recurrent_initializer=const_initializer,
            bias_initializer=const_initializer,
            norm_epsilon=1e-12,
        )

    cell = keras.layers.StackedRNNCells([single_cell() for _ in range(2)])
    output_v, output_states_v = cell(x, state)

    expected_output = np.array([[-0.47406167, 0.47406143]])
    expected_state0_c = np.array([[-1.0, 1.0]])
    expected_state0_h = np.array([[-0.47406167, 0.47406143]])
    expected_state1_c = np.array([[-1.0, 1.0]])
    expected_state1_h = np.array([[-0.47406167, 0.47406143]])

    actual_state0_h = output_states_v[0][0]
    actual_state0_c = output_states_v[0][1]
    actual_state1_h = output_states_v[1][0]
    actual_state1_c = output_states_v[1][1]

    np.testing.assert_allclose(output_v, expected_output, 1e-5)
    np.testing.assert_allclose(expected_state0_c, actual_state0_c, 1e-5)
    np.testing.assert_allclose(expected_state0_h, actual_state0_h, 1e-5)
    np.testing.assert_allclose(expected_state1_c, actual_state1_c, 1e-5)
    np.testing.assert_allclose(expected_state1_h, actual_state1_h, 1e-5)

    # Test BasicLSTMCell with input_size != num_units.
    x = tf.ones([1, 3], dtype=tf.float32)
    c = tf.constant(0.1 * np.asarray([[0, 1]]), dtype=tf.float32)
    h = tf.constant(0.1 * np.asarray([[2, 3]]), dtype=tf.float32)
    state = [h, c]
    cell = LayerNormLSTMCell(
        units=2,
        kernel_initializer=const_initializer,
        recurrent_initializer=const_initializer,
        bias_initializer=const_initializer,
        norm_epsilon=1e-12,
    )
    output_v, output_states_v = cell(x, state)
    expected_h = np.array([[-0.47406167, 0.47406143]])
    expected_c = np.array([[-1.0, 1.0]])
    np.testing.assert_allclose(output_v, expected_h, 1e-5)
    np.testing.assert_allclose(output_states_v[0], expected_h, 1e-5)
    np.testing.assert_allclose(output_states_v[1], expected_c, 1e-5)


# --- peephole_lstm_cell_test.py --------------------------------------------


def test_peephole_lstm_cell():
    def _run_cell(cell_fn, **kwargs):
        inputs = tf.one_hot([1, 2, 3, 4], 4)
        cell = cell_fn(5, **kwargs)
        cell.build(inputs.shape)
        initial_state = cell.get_initial_state(batch_size=4)
        output, _ = cell(inputs, initial_state)
        return output

    tf.random.set_seed(12345)
    first_implementation_output = _run_cell(
        PeepholeLSTMCell,
        kernel_initializer="ones",
        recurrent_activation="sigmoid",
        implementation=1,
    )
    second_implementation_output = _run_cell(
        PeepholeLSTMCell,
        kernel_initializer="ones",
        recurrent_activation="sigmoid",
        implementation=2,
    )
    expected_output = np.asarray(
        [
            [0.417551, 0.417551, 0.417551, 0.417551, 0.417551],
            [0.417551, 0.417551, 0.417551, 0.417551, 0.417551],
            [0.417551, 0.417551, 0.417551, 0.417551, 0.417551],
            [0.0, 0.0, 0.0, 0.0, 0.0],
        ],
        dtype=np.float32,
    )
    np.testing.assert_allclose(
        first_implementation_output, second_implementation_output
    )
    np.testing.assert_allclose(
        first_implementation_output, expected_output, rtol=1e-6, atol=1e-6
    )


# --- layer_norm_simple_rnn_cell_test.py ------------------------------------


def test_constraints_layernorm_rnn():
    embedding_dim = 4
    k_constraint = keras.constraints.max_norm(0.01)
    r_constraint = keras.constraints.max_norm(0.01)
    b_constraint = keras.constraints.max_norm(0.01)
    g_constraint = keras.constraints.max_norm(0.01)
    layer = keras.layers.RNN(
        LayerNormSimpleRNNCell(
            units=5,
            kernel_constraint=k_constraint,
            recurrent_constraint=r_constraint,
            bias_constraint=b_constraint,
            gamma_constraint=g_constraint,
        ),
        input_shape=(None, embedding_dim),
        return_sequences=False,
    )
    layer.build((None, None, embedding_dim))
    assert layer.cell.kernel.constraint == k_constraint
    assert layer.cell.recurrent_kernel.constraint == r_constraint
    assert layer.cell.bias.constraint == b_constraint
    assert layer.cell.layernorm.gamma.constraint == g_constraint


def test_with_masking_layer_layernorm_rnn():
    inputs = np.random.random((2, 3, 4))
    targets = np.abs(np.random.random((2, 3, 5)))
    targets /= targets.sum(axis=-1, keepdims=True)
    model = keras.models.Sequential()
    model.add(keras.layers.Masking(input_shape=(3, 4)))
    model.add(
        keras.layers.RNN(
            LayerNormSimpleRNNCell(units=5), return_sequences=True, unroll=False
        )
    )
    model.compile(loss="categorical_crossentropy", optimizer="rmsprop")
    model.fit(inputs, targets, epochs=1, batch_size=2, verbose=1)


def test_regularizers_layernorm_rnn():
    embedding_dim = 4
    layer = keras.layers.RNN(
        LayerNormSimpleRNNCell(
            units=5,
            kernel_regularizer=keras.regularizers.l1(0.01),
            recurrent_regularizer=keras.regularizers.l1(0.01),
            bias_regularizer="l2",
            gamma_regularizer="l2",
        ),
        input_shape=(None, embedding_dim),
        return_sequences=False,
    )
    layer.build((None, None, 2))
    assert len(layer.losses) == 4


def test_configs_layernorm():
    config = {"layernorm_epsilon": 1e-6}
    cell1 = LayerNormSimpleRNNCell(units=8, **config)
    config1 = cell1.get_config()
    cell2 = LayerNormSimpleRNNCell(**config1)
    config2 = cell2.get_config()
    assert config1 == config2


# --- beyond TFA's tests: a cell's config as TFA (Keras 2) wrote it builds ours.
# This is the dictionary TFA's `test_config_layer_norm_legacy` expects
# `LayerNormLSTMCell(10, name="layer_norm_lstm_cell_3").get_config()` to be.
TFA_CONFIG = {
    "dtype": "float32",
    "name": "layer_norm_lstm_cell_3",
    "trainable": True,
    "units": 10,
    "activation": "tanh",
    "recurrent_activation": "sigmoid",
    "use_bias": True,
    "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None},
                           "module": "keras.initializers", "registered_name": None},
    "recurrent_initializer": {"class_name": "Orthogonal", "config": {"seed": None, "gain": 1.0},
                              "module": "keras.initializers", "registered_name": None},
    "bias_initializer": {"class_name": "Zeros", "config": {}, "module": "keras.initializers",
                         "registered_name": None},
    "unit_forget_bias": True,
    "kernel_regularizer": None,
    "recurrent_regularizer": None,
    "bias_regularizer": None,
    "kernel_constraint": None,
    "recurrent_constraint": None,
    "bias_constraint": None,
    "dropout": 0.0,
    "recurrent_dropout": 0.0,
    "implementation": 2,
    "norm_gamma_initializer": {"class_name": "Ones", "config": {},
                               "module": "keras.initializers", "registered_name": None},
    "norm_beta_initializer": {"class_name": "Zeros", "config": {},
                              "module": "keras.initializers", "registered_name": None},
    "norm_epsilon": 1e-3,
}


def test_a_tfa_config_builds_the_cell():
    cell = LayerNormLSTMCell.from_config(TFA_CONFIG)
    assert cell.name == "layer_norm_lstm_cell_3" and cell.units == 10
    assert cell.norm_epsilon == 1e-3 and cell.unit_forget_bias
    assert isinstance(cell.kernel_initializer, keras.initializers.GlorotUniform)
    assert isinstance(cell.norm_gamma_initializer, keras.initializers.Ones)
    config = cell.get_config()
    # Every TFA key but Keras 2's `implementation` comes back, same value
    # (the dtype as Keras 3's policy, the initializers as Keras 3 writes them).
    assert set(TFA_CONFIG) - {"implementation"} <= set(config)
    for key, value in TFA_CONFIG.items():
        if key not in ("implementation", "dtype") and not isinstance(value, dict):
            assert config[key] == value, key


def test_build():
    # TFA's `test_build`, with Keras 3's variable paths for TF 2's names
    # ("layer_norm_lstm_cell/kernel" for "layer_norm_lstm_cell/kernel:0"):
    # the same nine weights in the same order, so `set_weights` with a TFA
    # cell's `get_weights()` puts each array in its place.
    cell = LayerNormLSTMCell(10, name="layer_norm_lstm_cell")
    cell(
        inputs=tf.ones((12, 20)),
        states=cell.get_initial_state(batch_size=12),
    )
    assert [w.path for w in cell.weights] == [
        "layer_norm_lstm_cell/kernel",
        "layer_norm_lstm_cell/recurrent_kernel",
        "layer_norm_lstm_cell/bias",
        "layer_norm_lstm_cell/kernel_norm/gamma",
        "layer_norm_lstm_cell/kernel_norm/beta",
        "layer_norm_lstm_cell/recurrent_norm/gamma",
        "layer_norm_lstm_cell/recurrent_norm/beta",
        "layer_norm_lstm_cell/state_norm/gamma",
        "layer_norm_lstm_cell/state_norm/beta",
    ]
