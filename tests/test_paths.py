"""The one path decision (`kerasrnn.recurrent.choose_paths`): a test per rule,
then the layers taking the path it chose, against Keras's own loop."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrnn import GRU, LSTM, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell
from kerasrnn.recurrent import (
    ASSOCIATIVE_SCAN,
    BLOCKED_SCAN,
    CELL,
    CHUNKED_SCAN,
    FUSED,
    LARGE_STATES,
    LOOP,
    PATHS,
    PREFERENCES,
    SCANS,
    SEQUENTIAL_SCAN,
    WRITTEN_OUT,
    Situation,
    choose_paths,
    declines,
    preferences,
)

# An LSTM layer on TensorFlow with every fast path open.
OPEN = Situation(backend="tensorflow", own_call=True, own_step=True, standard_form=True,
                 has_fused_kernel=True, has_written_out=True, has_parallel_scan=False,
                 use_cudnn="auto", masked=False, recurrent_dropout=False, unroll=False,
                 static_length=True)


# A minimal cell's layer (kerasrnn/minimal.py): a scan, no kernel, no written-out loop.
SCANNED = dict(has_fused_kernel=False, has_written_out=False, has_parallel_scan=True)


def paths(**changes):
    return choose_paths(dataclasses.replace(OPEN, **changes))


def fastest(**changes):
    """The path the layer runs: the first `choose_paths` gives."""
    return paths(**changes)[0]


def test_every_path_that_computes_the_call_fastest_first():
    assert paths() == [FUSED, WRITTEN_OUT, LOOP, CELL]


def test_a_cell_with_its_own_call_runs_as_keras_runs_it():
    assert paths(own_call=False) == [CELL]
    assert declines(LOOP, dataclasses.replace(OPEN, own_call=False)).startswith(
        "the cell's own `call` is the cell")


def test_a_cell_with_its_own_step_takes_no_fixed_equation_path():
    assert paths(own_step=False) == [LOOP, CELL]
    s = dataclasses.replace(OPEN, own_step=False)
    for path in (FUSED, WRITTEN_OUT, *SCANS):
        if path in SCANS:
            s = dataclasses.replace(s, has_parallel_scan=True)
        assert declines(path, s) == "the cell computes its own step, not its family's"


def test_other_activations_or_reset_before_take_no_fixed_equation_path():
    assert paths(standard_form=False) == [LOOP, CELL]
    assert "activations" in declines(FUSED, dataclasses.replace(OPEN, standard_form=False))


def test_recurrent_dropout_takes_no_fixed_equation_path():
    assert paths(recurrent_dropout=True) == [LOOP, CELL]
    assert "recurrent dropout" in declines(WRITTEN_OUT,
                                           dataclasses.replace(OPEN, recurrent_dropout=True))


def test_use_cudnn_false_skips_the_fused_kernel_only():
    assert paths(use_cudnn=False) == [WRITTEN_OUT, LOOP, CELL]
    assert declines(FUSED, dataclasses.replace(OPEN, use_cudnn=False)) == "use_cudnn=False"


def test_use_cudnn_true_is_the_fused_kernel_or_nothing():
    # Nothing left to try: the layer raises, as Keras's layers do.
    assert paths(use_cudnn=True) == [FUSED]
    assert paths(use_cudnn=True, recurrent_dropout=True) == []
    assert paths(use_cudnn=True, own_call=False) == []
    assert "use_cudnn=True" in declines(CELL, dataclasses.replace(OPEN, use_cudnn=True))


def test_a_family_without_a_fused_kernel():
    assert paths(has_fused_kernel=False) == [WRITTEN_OUT, LOOP, CELL]


def test_a_family_without_a_written_out_pass():
    assert paths(has_written_out=False) == [FUSED, LOOP, CELL]


def test_the_written_out_pass_is_tensorflow_only():
    assert paths(backend="jax") == [FUSED, LOOP, CELL]
    assert paths(backend="torch") == [FUSED, LOOP, CELL]
    assert "TensorFlow only" in declines(WRITTEN_OUT, dataclasses.replace(OPEN, backend="jax"))


def test_reduced_precision_takes_the_fused_kernel_or_the_cell_s_loop():
    assert paths(reduced_precision=True) == [FUSED, CELL]
    assert paths(**SCANNED, reduced_precision=True) == [CELL]
    assert "float16" in declines(LOOP, dataclasses.replace(OPEN, reduced_precision=True))


def test_a_linear_recurrence_takes_the_scan_measured_fastest_on_its_backend():
    assert paths(**SCANNED) == [SEQUENTIAL_SCAN, BLOCKED_SCAN, CHUNKED_SCAN, ASSOCIATIVE_SCAN,
                                LOOP, CELL]
    assert fastest(**SCANNED, backend="jax") == SEQUENTIAL_SCAN
    # minLSTM: its gates block by block on JAX; every family's on PyTorch.
    assert fastest(**SCANNED, backend="jax", scan_in_blocks=True) == BLOCKED_SCAN
    assert fastest(**SCANNED, scan_in_blocks=True) == SEQUENTIAL_SCAN
    assert fastest(**SCANNED, backend="torch", scan_in_blocks=True) == BLOCKED_SCAN
    assert fastest(**SCANNED, backend="torch") == BLOCKED_SCAN
    assert fastest(**SCANNED, backend="numpy") == SEQUENTIAL_SCAN


def test_on_jax_every_family_scans_in_blocks_once_its_states_outgrow_the_cache():
    large, small = LARGE_STATES, LARGE_STATES - 1
    assert fastest(**SCANNED, backend="jax", states_size=large) == BLOCKED_SCAN
    assert fastest(**SCANNED, backend="jax", states_size=small) == SEQUENTIAL_SCAN
    assert fastest(**SCANNED, backend="jax", states_size=None) == SEQUENTIAL_SCAN
    assert fastest(**SCANNED, backend="jax", scan_in_blocks=True,
                   states_size=small) == BLOCKED_SCAN
    # Measured on JAX only: elsewhere the size changes nothing.
    assert fastest(**SCANNED, states_size=large) == SEQUENTIAL_SCAN
    assert fastest(**SCANNED, backend="torch", states_size=small) == BLOCKED_SCAN


def test_on_a_gpu_the_scan_measured_fastest_there():
    assert fastest(**SCANNED, backend="jax", gpu=True) == ASSOCIATIVE_SCAN
    assert fastest(**SCANNED, backend="jax", gpu=True, scan_in_blocks=True,
                   states_size=LARGE_STATES) == ASSOCIATIVE_SCAN
    assert fastest(**SCANNED, backend="torch", gpu=True) == CHUNKED_SCAN
    assert fastest(**SCANNED, gpu=True) == SEQUENTIAL_SCAN  # TensorFlow's: not measured
    assert paths(**SCANNED, backend="jax", gpu=True, static_length=False) == [LOOP, CELL]


def test_a_scan_computes_masks_unroll_and_input_dropout():
    assert fastest(**SCANNED, masked=True, unroll=True) == SEQUENTIAL_SCAN


def test_a_scan_needs_the_length_when_traced_and_the_family_s_own_step():
    assert paths(**SCANNED, static_length=False) == [LOOP, CELL]
    assert "number of steps" in declines(
        SEQUENTIAL_SCAN, dataclasses.replace(OPEN, **SCANNED, static_length=False))
    assert paths(**SCANNED, own_step=False) == [LOOP, CELL]
    assert paths(**SCANNED, own_call=False) == [CELL]
    assert "not linear" in declines(SEQUENTIAL_SCAN, OPEN)


def test_a_mask_or_unroll_leaves_the_written_out_pass_to_the_loop():
    # The fused kernels decline these themselves (Keras's backend functions
    # do: cuDNN takes a right-padded mask on TensorFlow).
    assert paths(masked=True) == [FUSED, LOOP, CELL]
    assert paths(unroll=True) == [FUSED, LOOP, CELL]
    assert "mask" in declines(WRITTEN_OUT, dataclasses.replace(OPEN, masked=True))


def test_every_preference_row_orders_every_path_and_the_cell_s_loop_is_last():
    # A new path must take its place in every row; a backend or device
    # without a row takes TensorFlow's CPU row.
    for row in PREFERENCES.values():
        assert sorted(row) == sorted(PATHS) and row[-1] == CELL
    unmeasured = dataclasses.replace(OPEN, backend="numpy", gpu=True)
    assert preferences(unmeasured) == PREFERENCES[("tensorflow", "cpu")]


def test_a_layer_says_why_a_path_declines_its_call():
    x = np.zeros((2, 5, 4), "float32")
    layer = GRU(3)
    layer.build(x.shape)
    assert layer.declines(FUSED, x) is None and layer.declines(CELL, x) is None
    assert layer.declines(WRITTEN_OUT, x, mask=np.ones((2, 5), bool)).startswith("a mask")
    assert "not linear" in layer.declines(SEQUENTIAL_SCAN, x)
    dropped = GRU(3, recurrent_dropout=0.5)
    dropped.build(x.shape)
    assert "recurrent dropout" in dropped.declines(FUSED, x, training=True)
    assert dropped.declines(FUSED, x, training=False) is None
    simple = SimpleRNN(3)
    simple.build(x.shape)
    assert simple.declines(FUSED, x) == "the family has no fused kernel"


# The layers read their situation correctly.

@pytest.mark.parametrize("layer_cls", [SimpleRNN, LSTM, GRU])
def test_a_layer_s_situation(layer_cls):
    layer = layer_cls(3)
    s = layer.situation(mask=None, training=False)
    assert s.own_call and s.own_step and s.standard_form and s.has_written_out
    assert s.has_fused_kernel == (layer_cls is not SimpleRNN)
    assert not layer_cls(3, activation="relu").situation(None, False).standard_form
    dropped = layer_cls(3, recurrent_dropout=0.5)
    assert dropped.situation(None, training=True).recurrent_dropout
    assert not dropped.situation(None, training=False).recurrent_dropout
    assert layer_cls(3, unroll=True).situation(None, False).unroll


def test_a_gru_that_resets_before_the_matmul_is_not_standard():
    assert not GRU(3, reset_after=False).situation(None, False).standard_form


def test_simple_rnn_takes_no_use_cudnn():
    with pytest.raises(TypeError, match="use_cudnn"):
        SimpleRNN(3, use_cudnn=False)


# Subclassed cells: the layer computes what the cell computes, as
# `keras.layers.RNN(cell)` does, whatever the path it would take otherwise.

class DoubledInputSimpleRNNCell(SimpleRNNCell):
    def recurrent_step(self, projection, *args, **kwargs):
        return super().recurrent_step(2.0 * projection, *args, **kwargs)


class DoubledInputLSTMCell(LSTMCell):
    def recurrent_step(self, projection, *args, **kwargs):
        return super().recurrent_step(2.0 * projection, *args, **kwargs)


class DoubledInputGRUCell(GRUCell):
    def recurrent_step(self, projection, *args, **kwargs):
        return super().recurrent_step(2.0 * projection, *args, **kwargs)


class DoubledOutputGateLSTMCell(LSTMCell):
    """Overrides one hook of the family's step, as the peephole cell does."""

    def output_gate(self, z_o, c):
        return super().output_gate(2.0 * z_o, c)


class HalvedInputLSTMCell(LSTMCell):
    """Changes `call`, not the step: only the cell's own call computes it."""

    def call(self, inputs, states, training=False):
        return super().call(0.5 * inputs, states, training)


SUBCLASSES = [(SimpleRNN, DoubledInputSimpleRNNCell, LOOP),
              (LSTM, DoubledInputLSTMCell, LOOP),
              (GRU, DoubledInputGRUCell, LOOP),
              (LSTM, DoubledOutputGateLSTMCell, LOOP),
              (LSTM, HalvedInputLSTMCell, CELL)]


@pytest.mark.parametrize("layer_cls, cell_cls, path", SUBCLASSES,
                         ids=[c.__name__ for _, c, _ in SUBCLASSES])
def test_a_subclassed_cell_computes_its_own_step(layer_cls, cell_cls, path):
    layer = type(f"Subclassed{layer_cls.__name__}", (layer_cls,), {"cell_class": cell_cls})(
        6, return_sequences=True)
    reference = keras.layers.RNN(cell_cls(6), return_sequences=True)
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    layer(x), reference(x)
    layer.set_weights(reference.get_weights())
    assert choose_paths(layer.situation(None, True))[0] == path

    def outputs_and_gradients(rnn):
        with tf.GradientTape() as tape:
            out = rnn(x, training=True)
            loss = tf.reduce_sum(out * out)
        return [out.numpy()] + [g.numpy() for g in tape.gradient(loss, rnn.trainable_weights)]

    for ours, theirs in zip(outputs_and_gradients(layer), outputs_and_gradients(reference),
                            strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)
