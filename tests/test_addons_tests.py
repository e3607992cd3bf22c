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
