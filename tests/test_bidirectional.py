"""`Bidirectional` treats kerasrnn's LSTM and GRU as it treats Keras's own.

Keras's `Bidirectional` runs both directions in one fused backend call
(`backend.bidirectional_lstm` / `bidirectional_gru`) only for layers that
are Keras's LSTM or GRU and meet its preconditions. These are the checks of
Keras's own eligibility tests (keras/src/layers/rnn/bidirectional_test.py),
made with kerasrnn's classes and, side by side, Keras's, which must agree.
"""

import keras
import numpy as np
import pytest

import kerasrnn

pytestmark = pytest.mark.skipif(
    not hasattr(keras.layers.Bidirectional, "_can_attempt_fused_lstm"),
    reason="this Keras has no single fused call for Bidirectional (a newer Keras's feature)")

PAIRS = {"lstm": (kerasrnn.LSTM, keras.layers.LSTM), "gru": (kerasrnn.GRU, keras.layers.GRU)}


def _eligible(kind, layer, mask=None, initial_state=None):
    bidirectional = keras.layers.Bidirectional(layer)
    bidirectional.build((None, 5, 3))
    can = getattr(bidirectional, f"_can_attempt_fused_{kind}")
    return can(mask=mask, initial_state=initial_state)


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_fused_eligibility_as_keras_decides_it(kind):
    other = "gru" if kind == "lstm" else "lstm"
    states = 4 if kind == "lstm" else 2
    cases = [
        (lambda c: c(4, use_cudnn="auto"), {}, True),
        (lambda c: c(4, use_cudnn=True), {}, True),
        (lambda c: c(4, use_cudnn=False), {}, False),
        (lambda c: c(4, dropout=0.1), {}, False),
        (lambda c: c(4, recurrent_dropout=0.1), {}, False),
        (lambda c: c(4, use_bias=False), {}, False),
        (lambda c: c(4), {"mask": np.ones((2, 5), dtype=bool)}, False),
        (lambda c: c(4), {"initial_state": [np.zeros((2, 4), "float32")] * (states // 2)},
         False),
    ]
    if kind == "gru":
        cases.append((lambda c: c(4, reset_after=False), {}, False))
    for make, call, expected in cases:
        ours_class, keras_class = PAIRS[kind]
        assert _eligible(kind, make(keras_class), **call) is expected  # Keras's own verdict
        assert _eligible(kind, make(ours_class), **call) is expected
    # The other cell's layer and SimpleRNN are not eligible.
    assert _eligible(kind, PAIRS[other][0](4)) is False
    assert _eligible(kind, kerasrnn.SimpleRNN(4)) is False


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_bidirectional_makes_the_single_fused_call(kind, monkeypatch):
    """The fused backend function is called once, with our cells' weights."""
    from keras.src import backend

    seen = []

    def fused(sequences, *args, **kwargs):
        seen.append(kwargs)
        raise NotImplementedError  # as on a machine without cuDNN: the layer falls back

    monkeypatch.setattr(backend, f"bidirectional_{kind}", fused)
    layer = keras.layers.Bidirectional(PAIRS[kind][0](4, return_sequences=True))
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    layer(x)
    output = layer(x)
    assert len(seen) == 2  # one per call, not one per direction
    assert seen[-1]["fwd_kernel"] is layer.forward_layer.cell.kernel
    assert seen[-1]["bwd_kernel"] is layer.backward_layer.cell.kernel
    # The fallback: two one-direction calls, as Keras's own layer computes them.
    theirs = keras.layers.Bidirectional(PAIRS[kind][1](4, return_sequences=True))
    theirs.build(x.shape)
    theirs.set_weights(layer.get_weights())
    np.testing.assert_allclose(output, theirs(x), atol=1e-5)


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_weights_and_files_stay_interchangeable_with_keras(kind, tmp_path):
    ours_class, keras_class = PAIRS[kind]
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")
    ours = keras.Sequential([keras.Input((5, 3)), keras.layers.Bidirectional(ours_class(4))])
    theirs = keras.Sequential([keras.Input((5, 3)),
                               keras.layers.Bidirectional(keras_class(4))])
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x), theirs(x), atol=1e-5)
    ours.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(reloaded.layers[0].forward_layer) is ours_class
    np.testing.assert_allclose(reloaded(x), ours(x), atol=1e-6)


# Registered: Bidirectional makes the backward layer from the forward one's config.
@keras.saving.register_keras_serializable(package="test_bidirectional")
class _DoubledLSTMCell(kerasrnn.LSTMCell):
    """An LSTM cell with a step of its own (its projection doubled)."""

    def recurrent_step(self, projection, states, recurrent_mask=None, return_gates=False):
        return super().recurrent_step(2 * projection, states, recurrent_mask, return_gates)


@keras.saving.register_keras_serializable(package="test_bidirectional")
class _DoubledLSTM(kerasrnn.LSTM):
    cell_class = _DoubledLSTMCell


def test_a_subclass_with_its_own_step_is_not_handed_to_the_fused_call():
    """Keras's Bidirectional looks at the class and at `use_cudnn`; a layer
    whose cell has its own step says `use_cudnn` False, so the single fused
    call, which computes the standard LSTM, never runs in its place."""
    assert _eligible("lstm", kerasrnn.LSTM(4)) is True
    assert _eligible("lstm", _DoubledLSTM(4)) is False
    assert _DoubledLSTM(4).use_cudnn is False and kerasrnn.LSTM(4).use_cudnn == "auto"
    assert _DoubledLSTM(4, use_cudnn=True).get_config()["use_cudnn"] is True  # as given
    # Both directions run the subclass's step: Bidirectional's outputs are
    # the two layers' own.
    x = np.random.default_rng(0).random((2, 5, 3)).astype("float32")
    bidirectional = keras.layers.Bidirectional(_DoubledLSTM(4, return_sequences=True))
    both = keras.ops.convert_to_numpy(bidirectional(x))
    forward = keras.ops.convert_to_numpy(bidirectional.forward_layer(x))
    backward = keras.ops.convert_to_numpy(bidirectional.backward_layer(x))
    np.testing.assert_allclose(both, np.concatenate([forward, backward[:, ::-1]], axis=-1),
                               atol=1e-6)
