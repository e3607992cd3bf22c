"""The layer-normalized and peephole cells against NumPy references.

Each reference below is written from the equations in the cell's docstring
(kerasrnn/layer_norm.py, kerasrnn/peephole.py), in float64, with the
weights read off the cell by name; none calls kerasrnn. The cells must give
the reference's outputs and states over a sequence to 1e-5, and TensorFlow's
gradients of a loss must match the reference's finite differences. Then the
layers must compute what `keras.layers.RNN(cell)` computes with every RNN
feature, and survive a `.keras` round trip; and on JAX and PyTorch the cells
and layers must give the reference's numbers too, the layers with
`go_backwards`, `unroll`, `return_state`, masking and `Bidirectional`.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrnn import (
    LayerNormGRU,
    LayerNormGRUCell,
    LayerNormLSTM,
    LayerNormLSTMCell,
    LayerNormSimpleRNN,
    LayerNormSimpleRNNCell,
    PeepholeLSTM,
    PeepholeLSTMCell,
)

UNITS, FEATURES, STEPS, BATCH = 3, 2, 4, 2


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def layer_norm(a, gamma, beta, epsilon):
    mean = a.mean(axis=-1, keepdims=True)
    variance = ((a - mean) ** 2).mean(axis=-1, keepdims=True)
    return gamma * (a - mean) / np.sqrt(variance + epsilon) + beta


def ln_simple_rnn_step(w, x, states, eps=1e-5):
    (h,) = states
    h = np.tanh(layer_norm(x @ w["kernel"] + h @ w["recurrent_kernel"], w["layernorm/gamma"],
                           0.0, eps) + w["bias"])
    return h, [h]


def ln_lstm_step(w, x, states, eps=1e-3):
    h, c = states
    z = (layer_norm(x @ w["kernel"], w["kernel_norm/gamma"], w["kernel_norm/beta"], eps)
         + layer_norm(h @ w["recurrent_kernel"], w["recurrent_norm/gamma"],
                      w["recurrent_norm/beta"], eps)
         + w["bias"])
    z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
    c = layer_norm(sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_g), w["state_norm/gamma"],
                   w["state_norm/beta"], eps)
    h = sigmoid(z_o) * np.tanh(c)
    return h, [h, c]


def ln_gru_step(w, x, states, eps=1e-3):
    (h,) = states
    a = layer_norm(x @ w["kernel"], w["kernel_norm/gamma"], w["kernel_norm/beta"], eps)
    u = layer_norm(h @ w["recurrent_kernel"], w["recurrent_norm/gamma"],
                   w["recurrent_norm/beta"], eps)
    a, u = a + w["bias"][0], u + w["bias"][1]
    a_z, a_r, a_h = np.split(a, 3, axis=-1)
    u_z, u_r, u_h = np.split(u, 3, axis=-1)
    z, r = sigmoid(a_z + u_z), sigmoid(a_r + u_r)
    candidate = np.tanh(a_h + r * u_h)
    h = z * h + (1.0 - z) * candidate
    return h, [h]


def peephole_step(w, x, states):
    h, c = states
    z = x @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"]
    z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
    i = sigmoid(z_i + w["input_gate_peephole_weights"] * c)
    f = sigmoid(z_f + w["forget_gate_peephole_weights"] * c)
    c = f * c + i * np.tanh(z_g)
    o = sigmoid(z_o + w["output_gate_peephole_weights"] * c)
    return o * np.tanh(c), [o * np.tanh(c), c]


# name: (cell, layer, reference step, number of states)
KINDS = {
    "ln_rnn": (LayerNormSimpleRNNCell, LayerNormSimpleRNN, ln_simple_rnn_step, 1),
    "ln_lstm": (LayerNormLSTMCell, LayerNormLSTM, ln_lstm_step, 2),
    "ln_gru": (LayerNormGRUCell, LayerNormGRU, ln_gru_step, 1),
    "peephole": (PeepholeLSTMCell, PeepholeLSTM, peephole_step, 2),
}


def weights_by_name(cell):
    """The cell's weights as float64 arrays, keyed by "sublayer/name" or "name"."""
    named = {}
    for variable in cell.weights:
        parts = variable.path.split("/")
        key = "/".join(parts[-2:]) if parts[-2].endswith(("norm", "layernorm")) else parts[-1]
        named[key] = np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)
    return named


def randomize(cell, seed=0):
    """Every weight random (γ near 1), so that no normalization is a no-op."""
    rng = np.random.default_rng(seed)
    cell.set_weights([
        (1.0 + 0.3 * rng.normal(size=v.shape)) if v.path.endswith("gamma")
        else 0.5 * rng.normal(size=v.shape) for v in cell.weights])


def reference(step, w, x, states):
    outputs = []
    for t in range(x.shape[1]):
        output, states = step(w, x[:, t], states)
        outputs.append(output)
    return np.stack(outputs, axis=1), states


def data(n_states, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, STEPS, FEATURES))
    states = [0.5 * rng.normal(size=(BATCH, UNITS)) for _ in range(n_states)]
    return x, states


def built_rnn(kind, **kwargs):
    cell_cls, _, _, _ = KINDS[kind]
    rnn = keras.layers.RNN(cell_cls(UNITS), return_sequences=True, return_state=True, **kwargs)
    rnn.build((None, None, FEATURES))
    randomize(rnn.cell)
    return rnn


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_outputs_and_states_match_the_numpy_reference(kind):
    _, _, step, n_states = KINDS[kind]
    rnn = built_rnn(kind)
    x, states = data(n_states)
    outputs, *final = rnn(x.astype("float32"), initial_state=[s.astype("float32") for s in states])
    expected, expected_final = reference(step, weights_by_name(rnn.cell), x, states)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    for ours, theirs in zip(final, expected_final, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_gradients_match_finite_differences_of_the_reference(kind):
    _, _, step, n_states = KINDS[kind]
    rnn = built_rnn(kind)
    x, states = data(n_states)
    probe = np.random.default_rng(2).normal(size=(BATCH, STEPS, UNITS))

    def loss(w):  # float64, the reference's
        return float((reference(step, w, x, states)[0] * probe).sum())

    with tf.GradientTape() as tape:
        outputs = rnn(x.astype("float32"), initial_state=[s.astype("float32") for s in states])[0]
        tf_loss = tf.reduce_sum(outputs * probe.astype("float32"))
    gradients = dict(zip([v.path for v in rnn.cell.weights],
                         tape.gradient(tf_loss, rnn.cell.weights), strict=True))
    w = weights_by_name(rnn.cell)
    keys = dict(zip([v.path for v in rnn.cell.weights], w, strict=True))
    h = 1e-6
    for path, key in keys.items():
        numeric = np.zeros_like(w[key])
        for index in np.ndindex(w[key].shape):
            plus, minus = dict(w), dict(w)
            plus[key] = w[key].copy()
            minus[key] = w[key].copy()
            plus[key][index] += h
            minus[key][index] -= h
            numeric[index] = (loss(plus) - loss(minus)) / (2 * h)
        np.testing.assert_allclose(gradients[path], numeric, atol=2e-4, rtol=2e-3,
                                   err_msg=path)


# The layers compute what keras.layers.RNN(cell) computes, with each feature.

LAYER_OPTIONS = [{}, {"go_backwards": True}, {"return_sequences": True, "return_state": True},
                 {"unroll": True}, {"dropout": 0.3, "recurrent_dropout": 0.3, "seed": 5}]


@pytest.mark.parametrize("options", LAYER_OPTIONS, ids=lambda d: ",".join(d) or "plain")
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_layer_matches_its_cell_in_keras_rnn(kind, options):
    cell_cls, layer_cls, _, _ = KINDS[kind]
    cell_options = {k: options[k] for k in ("dropout", "recurrent_dropout", "seed")
                    if k in options}
    rnn_options = {k: v for k, v in options.items() if k not in cell_options}
    layer = layer_cls(UNITS, **options)
    rnn = keras.layers.RNN(cell_cls(UNITS, **cell_options), **rnn_options)
    x, _ = data(1)
    x = x.astype("float32")
    rnn(x), layer(x)
    randomize(rnn.cell)
    layer.set_weights(rnn.get_weights())
    training = "dropout" in options

    def outputs_and_gradients(model):
        with tf.GradientTape() as tape:
            out = tf.nest.flatten(model(x, training=training))
            loss = sum(tf.reduce_sum(o * o) for o in out)
        return [o.numpy() for o in out] + [
            g.numpy() for g in tape.gradient(loss, model.trainable_weights)]

    for ours, theirs in zip(outputs_and_gradients(layer), outputs_and_gradients(rnn),
                            strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_masking_stateful_bidirectional_and_stacking(kind):
    cell_cls, layer_cls, step, n_states = KINDS[kind]
    x, _ = data(1)
    x = x.astype("float32")
    mask = np.ones((BATCH, STEPS), dtype=bool)
    mask[0, 2:] = False  # the state is carried through masked steps
    rnn = keras.layers.RNN(cell_cls(UNITS), return_sequences=True)
    layer = layer_cls(UNITS, return_sequences=True)
    rnn(x), layer(x)
    randomize(rnn.cell)
    layer.set_weights(rnn.get_weights())
    np.testing.assert_allclose(layer(x, mask=mask), rnn(x, mask=mask), atol=1e-6)

    stateful = layer_cls(UNITS, stateful=True)
    stateful(x)
    stateful.set_weights(rnn.get_weights())
    stateful.reset_state()
    first, second = stateful(x[:, :2]).numpy(), stateful(x[:, 2:]).numpy()
    whole = rnn(x).numpy()
    np.testing.assert_allclose(first, whole[:, 1], atol=1e-6)
    np.testing.assert_allclose(second, whole[:, -1], atol=1e-6)

    both = keras.layers.Bidirectional(layer_cls(UNITS))
    both(x)
    forward = weights_by_name(both.forward_layer.cell)
    backward = weights_by_name(both.backward_layer.cell)
    zeros = [np.zeros((BATCH, UNITS))] * n_states
    expected = np.concatenate([reference(step, forward, x, zeros)[0][:, -1],
                               reference(step, backward, x[:, ::-1], zeros)[0][:, -1]], -1)
    np.testing.assert_allclose(both(x), expected, atol=1e-5)

    stacked = keras.layers.RNN(keras.layers.StackedRNNCells([cell_cls(UNITS), cell_cls(UNITS)]),
                               return_sequences=True)
    stacked(x)
    lower, upper = stacked.cell.cells
    below = reference(step, weights_by_name(lower), x, zeros)[0]
    np.testing.assert_allclose(stacked(x), reference(step, weights_by_name(upper), below,
                                                     zeros)[0], atol=1e-5)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_keras_file_round_trip_without_custom_objects(kind, tmp_path):
    cell_cls, layer_cls, _, _ = KINDS[kind]
    inputs = keras.Input((STEPS, FEATURES))
    h = layer_cls(UNITS, return_sequences=True, dropout=0.1)(inputs)
    h = keras.layers.RNN(cell_cls(UNITS))(h)
    model = keras.Model(inputs, h)
    for layer in model.layers[1:]:
        randomize(layer.cell, seed=3)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert [type(layer) for layer in reloaded.layers] == [type(layer) for layer in model.layers]
    assert reloaded.layers[1].get_config() == model.layers[1].get_config()
    x, _ = data(1)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)


def test_the_layer_normalized_lstm_and_gru_normalize_the_input_before_the_loop():
    for layer_cls in (LayerNormLSTM, LayerNormGRU):
        layer = layer_cls(UNITS)
        layer(np.zeros((1, 2, FEATURES), "float32"))
        calls = []
        original = layer.cell.kernel_norm.call

        def counting(a, *args, original=original, calls=calls):
            calls.append(tuple(a.shape))
            return original(a, *args)

        layer.cell.kernel_norm.call = counting
        layer(np.zeros((BATCH, STEPS, FEATURES), "float32"))
        assert calls == [(BATCH, STEPS, layer.cell.gates * UNITS)]  # once, every step


OTHER_BACKEND = """
import json, sys
import numpy as np
import keras
sys.path.insert(0, {tests!r})
import test_layer_norm_and_peephole as t

worst = {{}}
for kind, (cell_cls, layer_cls, step, n_states) in t.KINDS.items():
    x, states = t.data(n_states)
    init = [s.astype("float32") for s in states]
    rnn = t.built_rnn(kind)
    expected = t.reference(step, t.weights_by_name(rnn.cell), x, states)[0]
    layer = layer_cls(t.UNITS, return_sequences=True)
    layer(x.astype("float32"))
    layer.set_weights(rnn.get_weights())
    got = [keras.ops.convert_to_numpy(rnn(x.astype("float32"), initial_state=init)[0]),
           keras.ops.convert_to_numpy(layer(x.astype("float32"), initial_state=init))]
    expected_pairs = []
    # The RNN features: the layer against keras.layers.RNN(cell), same weights.
    mask = np.ones((t.BATCH, t.STEPS), dtype=bool)
    mask[0, 2:] = False
    # Features together: each call costs JAX compilations of its own.
    for options, call in [({{"go_backwards": True, "return_state": True}}, {{"mask": mask}}),
                          ({{"unroll": True}}, {{}})]:
        ours, theirs = layer_cls(t.UNITS, **options), keras.layers.RNN(cell_cls(t.UNITS),
                                                                        **options)
        ours(x.astype("float32")), theirs(x.astype("float32"))
        ours.set_weights(rnn.get_weights())
        theirs.set_weights(rnn.get_weights())
        for a, b in zip(keras.tree.flatten(ours(x.astype("float32"), **call)),
                        keras.tree.flatten(theirs(x.astype("float32"), **call))):
            got.append(keras.ops.convert_to_numpy(a))
            expected_pairs.append(keras.ops.convert_to_numpy(b))
    both = keras.layers.Bidirectional(layer_cls(t.UNITS))
    both(x.astype("float32"))
    zeros = [np.zeros((t.BATCH, t.UNITS))] * n_states
    forward = t.reference(step, t.weights_by_name(both.forward_layer.cell), x, zeros)[0]
    backward = t.reference(step, t.weights_by_name(both.backward_layer.cell), x[:, ::-1],
                           zeros)[0]
    worst[kind] = max(
        [float(np.abs(g - expected).max()) for g in got[:2]]
        + [float(np.abs(a - b).max()) for a, b in zip(got[2:], expected_pairs)]
        + [float(np.abs(keras.ops.convert_to_numpy(both(x.astype("float32")))
                        - np.concatenate([forward[:, -1], backward[:, -1]], -1)).max())])
print(json.dumps({{"backend": keras.backend.backend(), "worst": worst}}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_cells_and_layers_on_other_backends(backend, on_backend):
    run = on_backend(backend, OTHER_BACKEND.format(tests=os.path.dirname(__file__)))
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    assert sorted(report["worst"]) == sorted(KINDS)
    assert max(report["worst"].values()) < 1e-5, report


@pytest.mark.parametrize("make, argument", [
    (lambda: LayerNormLSTMCell(3, norm_epsilon=0.0), "norm_epsilon"),
    (lambda: LayerNormGRUCell(3, norm_epsilon=-1e-3), "norm_epsilon"),
    (lambda: LayerNormSimpleRNNCell(3, layernorm_epsilon=0), "layernorm_epsilon"),
    (lambda: LayerNormLSTM(-2), "units"),
    (lambda: PeepholeLSTMCell(0), "units"),
])
def test_bad_arguments_name_themselves(make, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        make()


def test_the_layer_normalized_lstm_applies_one_dropout_mask_to_all_gates():
    """As TensorFlow Addons' LayerNormLSTMCell: with dropout and recurrent
    dropout, one input mask and one recurrent mask, the same for the four
    gates (the NumPy reference given x·mask and h·mask), where Keras 3's
    LSTMCell draws four of each."""
    from kerasrnn import LayerNormLSTMCell

    cell = LayerNormLSTMCell(UNITS, dropout=0.4, recurrent_dropout=0.3, seed=2)
    cell.build((None, FEATURES))
    randomize(cell)
    x, states = data(2)
    x = x[:, 0].astype("float32")
    states = [s.astype("float32") for s in states]
    input_mask = cell.get_dropout_mask(x)
    recurrent_mask = cell.get_recurrent_dropout_mask(states[0])
    assert not isinstance(input_mask, (list, tuple))  # one of each
    assert not isinstance(recurrent_mask, (list, tuple))
    assert isinstance(keras.layers.LSTMCell(UNITS, dropout=0.4, recurrent_dropout=0.3)
                      .get_dropout_mask(x), (list, tuple))  # Keras 3's: one per gate
    output, _ = cell(x, states, training=True)
    masked_x = x * keras.ops.convert_to_numpy(input_mask)
    masked_h = states[0] * keras.ops.convert_to_numpy(recurrent_mask)
    expected, _ = ln_lstm_step(weights_by_name(cell), masked_x.astype(np.float64),
                               [masked_h.astype(np.float64), states[1]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(output), expected, atol=1e-5)


def test_the_variants_are_their_family_s_cells_with_hooks_overridden():
    """As TFA's cells are Keras's LSTMCell: the step is the family's, the
    variant overrides only hooks (the equation tests above check what they
    compute). LayerNormGRUCell takes GRUCell's step in its reset-after form only."""
    from kerasrnn import GRUCell, LSTMCell
    from kerasrnn.recurrent import STEP_METHODS

    for variant, family in [(LayerNormLSTMCell, LSTMCell), (PeepholeLSTMCell, LSTMCell),
                            (LayerNormGRUCell, GRUCell)]:
        assert issubclass(variant, family)
        assert variant.recurrent_step is family.recurrent_step
        assert any(getattr(variant, name, None) is not getattr(family, name, None)
                   for name in STEP_METHODS)
    assert "reset_after" not in LayerNormGRUCell(UNITS).get_config()
    with pytest.raises(ValueError, match="reset_after"):
        LayerNormGRUCell(UNITS, reset_after=False)
