"""The cells against Keras's own: same weights must give the same numbers.

Every comparison builds the Keras built-in cell and ours inside the same
`keras.layers` wrapper, copies Keras's weights into ours with `set_weights`,
and compares outputs and gradients (w.r.t. the inputs and every weight).
"""


import keras
import keras.src.backend
import numpy as np
import pytest
import tensorflow as tf
from keras import initializers

import kerasrnn.gru
import kerasrnn.lstm
import kerasrnn.simple_rnn
from kerasrnn import GRU, LSTM, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell

CELLS = {
    "rnn": (SimpleRNNCell, keras.layers.SimpleRNNCell),
    "lstm": (LSTMCell, keras.layers.LSTMCell),
    "gru": (GRUCell, keras.layers.GRUCell),
}
TOLERANCE = dict(atol=1e-5, rtol=1e-5)


def _inputs(batch=3, steps=5, features=4, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("float32")


def _outputs_and_gradients(layer, x, training=False, **call_kwargs):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=training, **call_kwargs)
        flat = tf.nest.flatten(out)
        # A loss that weighs every output element differently, so a swapped
        # gate or a transposed block cannot cancel out in the gradient.
        loss = sum(
            tf.reduce_sum(o * tf.reshape(tf.sin(tf.range(tf.size(o), dtype=o.dtype)), o.shape))
            for o in flat
        )
    grads = tape.gradient(loss, [x] + layer.trainable_weights)
    return [o.numpy() for o in flat], [g.numpy() for g in grads]


def _assert_same(theirs, ours, x, **call_kwargs):
    """Copies Keras's weights into ours, then compares outputs and gradients."""
    theirs(x[:, :1]) if not theirs.built else None
    ours(x[:, :1]) if not ours.built else None
    ours.set_weights(theirs.get_weights())
    their_out, their_grads = _outputs_and_gradients(theirs, x, **call_kwargs)
    our_out, our_grads = _outputs_and_gradients(ours, x, **call_kwargs)
    assert len(our_out) == len(their_out)
    for o, t in zip(our_out, their_out, strict=True):
        np.testing.assert_allclose(o, t, **TOLERANCE)
    assert len(our_grads) == len(their_grads)
    for o, t in zip(our_grads, their_grads, strict=True):
        np.testing.assert_allclose(o, t, **TOLERANCE)


def _pair(kind, wrapper=keras.layers.RNN, cell_kwargs=None, **layer_kwargs):
    ours_cls, theirs_cls = CELLS[kind]
    cell_kwargs = cell_kwargs or {}
    theirs = wrapper(theirs_cls(6, **cell_kwargs), **layer_kwargs)
    ours = wrapper(ours_cls(6, **cell_kwargs), **layer_kwargs)
    return theirs, ours


# Our layers against Keras's built-in layers.
LAYERS = {
    "rnn": (SimpleRNN, keras.layers.SimpleRNN),
    "lstm": (LSTM, keras.layers.LSTM),
    "gru": (GRU, keras.layers.GRU),
}


def _layer_pair(kind, **kwargs):
    ours_cls, theirs_cls = LAYERS[kind]
    return theirs_cls(6, **kwargs), ours_cls(6, **kwargs)


LAYER_OPTIONS = [
    {},
    {"return_sequences": True},
    {"return_state": True},
    {"return_sequences": True, "return_state": True, "go_backwards": True},
    {"unroll": True, "return_sequences": True},
]


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("layer_kwargs", LAYER_OPTIONS, ids=lambda d: ",".join(d) or "plain")
def test_matches_keras_cell(kind, layer_kwargs):
    theirs, ours = _pair(kind, **layer_kwargs)
    _assert_same(theirs, ours, _inputs())


CELL_OPTIONS = [
    ("rnn", {"use_bias": False}),
    ("rnn", {"activation": "relu"}),
    ("lstm", {"use_bias": False}),
    ("lstm", {"unit_forget_bias": False, "bias_initializer": "random_normal"}),
    ("lstm", {"activation": "relu", "recurrent_activation": "hard_sigmoid"}),
    ("gru", {"reset_after": False}),
    ("gru", {"reset_after": False, "use_bias": False}),
    ("gru", {"use_bias": False}),
    ("gru", {"recurrent_activation": "hard_sigmoid", "bias_initializer": "random_normal"}),
]


@pytest.mark.parametrize("kind,cell_kwargs", CELL_OPTIONS)
def test_matches_keras_cell_options(kind, cell_kwargs):
    theirs, ours = _pair(kind, cell_kwargs=cell_kwargs, return_sequences=True)
    _assert_same(theirs, ours, _inputs())


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_masking(kind):
    x = _inputs(steps=6)
    x[0, 4:] = 0.0  # right padding
    x[1, :2] = 0.0  # left padding
    x[2, 2] = 0.0  # a hole in the middle
    mask = np.any(x != 0.0, axis=-1)
    theirs, ours = _pair(kind, return_sequences=True, return_state=True)
    _assert_same(theirs, ours, x, mask=tf.constant(mask))


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_masking_layer_in_a_model(kind):
    x = _inputs(steps=6)
    x[0, 3:] = 0.0

    def model(cell_cls):
        inputs = keras.Input((6, 4))
        masked = keras.layers.Masking(0.0)(inputs)
        return keras.Model(inputs, keras.layers.RNN(cell_cls(5))(masked))

    theirs, ours = model(CELLS[kind][1]), model(CELLS[kind][0])
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(
        ours.predict(x, verbose=0), theirs.predict(x, verbose=0), **TOLERANCE
    )


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_bidirectional(kind):
    ours_cls, theirs_cls = CELLS[kind]
    theirs = keras.layers.Bidirectional(keras.layers.RNN(theirs_cls(6), return_sequences=True))
    ours = keras.layers.Bidirectional(keras.layers.RNN(ours_cls(6), return_sequences=True))
    _assert_same(theirs, ours, _inputs())


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_stacked_cells(kind):
    ours_cls, theirs_cls = CELLS[kind]
    theirs = keras.layers.RNN(
        keras.layers.StackedRNNCells([theirs_cls(6), theirs_cls(3)]), return_state=True
    )
    ours = keras.layers.RNN(
        keras.layers.StackedRNNCells([ours_cls(6), ours_cls(3)]), return_state=True
    )
    _assert_same(theirs, ours, _inputs())


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("make_pair", [_pair, _layer_pair], ids=["cell", "layer"])
def test_stateful_carries_state_between_calls(kind, make_pair):
    theirs, ours = make_pair(kind, stateful=True, return_sequences=True)
    x = _inputs(batch=2, steps=4)
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    theirs.reset_states()
    ours.reset_states()
    for chunk in (x, x[:, ::-1]):
        np.testing.assert_allclose(ours(chunk).numpy(), theirs(chunk).numpy(), **TOLERANCE)
    # The state really carried over: a fresh start gives something else.
    ours.reset_states()
    fresh = ours(x[:, ::-1]).numpy()
    assert not np.allclose(fresh, theirs(x[:, ::-1]).numpy(), atol=1e-3)


@pytest.mark.parametrize(
    "kind,cell_kwargs",
    [("rnn", {}), ("lstm", {}), ("gru", {}), ("gru", {"reset_after": False})],
)
def test_recurrent_step_is_the_step_after_the_input_matmul(kind, cell_kwargs):
    """`recurrent_step(x · kernel, states)`, what the text generator calls, is Keras's step."""
    ours_cls, theirs_cls = CELLS[kind]
    theirs, ours = theirs_cls(5, **cell_kwargs), ours_cls(5, **cell_kwargs)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4)).astype("float32")
    theirs.build((3, 4))
    ours.build((3, 4))
    # Random biases too, so one added twice or not at all shows.
    theirs.set_weights([rng.normal(size=w.shape).astype("float32") for w in theirs.weights])
    ours.set_weights(theirs.get_weights())
    states = [rng.normal(size=(3, 5)).astype("float32") for _ in range(2 if kind == "lstm" else 1)]
    their_out, their_states = theirs(x, states)
    our_out, our_states = ours.recurrent_step(x @ ours.kernel.numpy(), states)
    np.testing.assert_allclose(our_out, their_out, **TOLERANCE)
    for o, t in zip(our_states, their_states, strict=True):
        np.testing.assert_allclose(o, t, **TOLERANCE)


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize(
    "dropouts", [(0.3, 0.0), (0.0, 0.4), (0.3, 0.4)], ids=["input", "recurrent", "both"]
)
def test_dropout_matches_keras_with_the_same_seed(kind, dropouts):
    dropout, recurrent_dropout = dropouts
    cell_kwargs = {"dropout": dropout, "recurrent_dropout": recurrent_dropout, "seed": 7}
    theirs, ours = _pair(kind, cell_kwargs=cell_kwargs, return_sequences=True)
    x = _inputs()
    _assert_same(theirs, ours, x, training=True)
    # In inference dropout is off: the same as a cell without dropout.
    plain_theirs, plain_ours = _pair(kind, return_sequences=True)
    plain_ours(x)
    plain_ours.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(x, training=False), plain_ours(x), **TOLERANCE)
    assert not np.allclose(ours(x, training=True), plain_ours(x), atol=1e-3)


def test_dropout_mask_is_fixed_across_time_steps():
    # With an identity kernel, no recurrence and no activation, the output at
    # each step is the input times the dropout mask, so it shows the mask.
    cell = SimpleRNNCell(
        8,
        activation=None,
        kernel_initializer="identity",
        recurrent_initializer="zeros",
        dropout=0.5,
        seed=3,
    )
    layer = keras.layers.RNN(cell, return_sequences=True)
    x = np.ones((4, 10, 8), dtype="float32")
    out = layer(x, training=True).numpy()
    assert set(np.unique(out)) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-0.5)
    np.testing.assert_array_equal(out, np.repeat(out[:, :1], 10, axis=1))
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    # A new sequence (a new call) draws a new mask.
    assert not np.array_equal(layer(x, training=True).numpy(), out)


CONSTANT = dict(
    kernel_initializer=initializers.Constant(0.01),
    recurrent_initializer=initializers.Constant(0.02),
    bias_initializer=initializers.Constant(0.03),
)


@pytest.mark.parametrize("unroll", [False, True])
def test_keras_published_simple_rnn_output(unroll):
    # Expected values from Keras's own simple_rnn_test.py (test_correctness).
    x = np.arange(24).reshape((2, 3, 4)).astype("float32")
    out = keras.layers.RNN(SimpleRNNCell(4, **CONSTANT), unroll=unroll)(x)
    expected = np.array([[0.405432] * 4, [0.73605347] * 4])
    np.testing.assert_allclose(out, expected, **TOLERANCE)


def test_keras_published_lstm_output():
    # Expected values from Keras's own lstm_test.py (test_correctness).
    x = np.arange(72).reshape((3, 6, 4)).astype("float32")
    out = keras.layers.RNN(LSTMCell(3, **CONSTANT))(x)
    expected = np.array([[0.6288687] * 3, [0.86899155] * 3, [0.9460773] * 3])
    np.testing.assert_allclose(out, expected, **TOLERANCE)


def test_keras_published_gru_output():
    # Expected values from Keras's own gru_test.py (test_correctness).
    x = np.arange(72).reshape((3, 6, 4)).astype("float32")
    out = keras.layers.RNN(GRUCell(3, **CONSTANT))(x)
    expected = np.array([[0.5217289] * 3, [0.6371659] * 3, [0.39384964] * 3])
    np.testing.assert_allclose(out, expected, **TOLERANCE)


def test_seed_equations_by_hand():
    """The docstring equations, written out in numpy, give the cells' outputs."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3)).astype("float32")
    h = rng.normal(size=(2, 4)).astype("float32")
    c = rng.normal(size=(2, 4)).astype("float32")

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    lstm = LSTMCell(4, bias_initializer="random_normal", unit_forget_bias=False)
    out, (h1, c1) = lstm(x, [h, c])
    k, rk, b = (w.numpy() for w in lstm.weights)
    z = x @ k + h @ rk + b
    i, f, g, o = np.split(z, 4, axis=1)
    c_expected = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    np.testing.assert_allclose(c1, c_expected, **TOLERANCE)
    np.testing.assert_allclose(h1, sigmoid(o) * np.tanh(c_expected), **TOLERANCE)

    gru = GRUCell(4, reset_after=False, bias_initializer="random_normal")
    out, h1 = gru(x, h)
    k, rk, b = (w.numpy() for w in gru.weights)
    xz, xr, xh = np.split(x @ k + b, 3, axis=1)
    rz, rr, _ = np.split(h @ rk, 3, axis=1)
    keras_z = sigmoid(xz + rz)
    r = sigmoid(xr + rr)
    candidate = np.tanh(xh + (r * h) @ rk[:, 8:])
    z = 1 - keras_z  # the equation's update gate
    np.testing.assert_allclose(h1, (1 - z) * h + z * candidate, **TOLERANCE)

    rnn = SimpleRNNCell(4, bias_initializer="random_normal")
    out, h1 = rnn(x, h)
    k, rk, b = (w.numpy() for w in rnn.weights)
    np.testing.assert_allclose(h1, np.tanh(x @ k + h @ rk + b), **TOLERANCE)


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_initialisation_matches_keras(kind):
    """Same seeds give the same initial weights, unit_forget_bias included."""
    ours_cls, theirs_cls = CELLS[kind]
    kwargs = dict(
        kernel_initializer=initializers.GlorotUniform(seed=1),
        recurrent_initializer=initializers.Orthogonal(seed=2),
        bias_initializer=initializers.RandomNormal(seed=3),
    )
    ours, theirs = ours_cls(5, **kwargs), theirs_cls(5, **kwargs)
    ours.build((None, 3))
    theirs.build((None, 3))
    assert [w.path.split("/")[-1] for w in ours.weights] == [
        w.path.split("/")[-1] for w in theirs.weights
    ]
    for o, t in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(o, t)


def _loop_body_sizes(rnn, x):
    """Ops per time step in one training step's graph: (forward, gradient).

    TensorFlow runs `keras.layers.RNN`'s loop as a While op whose body is a
    function: the forward body (as rewritten to save what the gradient needs)
    and the gradient's body are counted, node by node.
    """
    rnn(x)

    @tf.function
    def training_step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(rnn(x))
        return tape.gradient(loss, [x] + rnn.trainable_weights)

    graph = training_step.get_concrete_function(tf.constant(x)).graph.as_graph_def()
    bodies = {f.signature.name: len(f.node_def) for f in graph.library.function
              if "while_body" in f.signature.name}
    forward = [n for name, n in bodies.items() if name.endswith("_rewritten")]
    gradient = [n for name, n in bodies.items() if "_grad_" in name]
    assert len(forward) == len(gradient) == 1, sorted(bodies)
    return forward[0], gradient[0]


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_loop_bodies_are_no_bigger_than_keras(kind):
    """Per time step our cells run at most the ops of Keras's (TensorFlow).

    On a CPU these ops are what a step costs at small sizes, so this keeps the
    speed parity of benchmarks/cells.py from slipping unnoticed.
    """
    ours_cls, theirs_cls = CELLS[kind]
    x = _inputs()
    ours = _loop_body_sizes(keras.layers.RNN(ours_cls(8)), x)
    theirs = _loop_body_sizes(keras.layers.RNN(theirs_cls(8)), x)
    assert ours[0] <= theirs[0] and ours[1] <= theirs[1], (ours, theirs)


def test_config_has_every_keras_argument():
    for kind, (ours_cls, theirs_cls) in CELLS.items():
        ours_keys = set(ours_cls(3).get_config())
        their_keys = set(theirs_cls(3).get_config()) - {"implementation"}
        assert their_keys <= ours_keys, (kind, their_keys - ours_keys)


def test_a_keras_config_builds_our_cell():
    """A config written by Keras's cell makes an equal cell of ours."""
    for ours_cls, theirs_cls in CELLS.values():
        config = theirs_cls(3, dropout=0.1, kernel_regularizer="l2").get_config()
        ours = ours_cls.from_config(config)
        assert ours.dropout == 0.1
        assert ours.kernel_regularizer is not None


def test_invalid_units():
    with pytest.raises(ValueError, match="units"):
        LSTMCell(0)


# Run under another backend in a fresh process: Keras picks its backend once,
# at import. Forward outputs of each cell and layer against Keras's on the same
# weights.
OTHER_BACKEND_SCRIPT = """
import keras, numpy as np
from kerasrnn import GRU, LSTM, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell
x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
def rnn(cell_cls):
    return lambda units, **kwargs: keras.layers.RNN(cell_cls(units, **kwargs),
                                                    return_sequences=True)
pairs = [(rnn(SimpleRNNCell), rnn(keras.layers.SimpleRNNCell), {}),
         (rnn(LSTMCell), rnn(keras.layers.LSTMCell), {}),
         (rnn(GRUCell), rnn(keras.layers.GRUCell), {}),
         (rnn(GRUCell), rnn(keras.layers.GRUCell), {"reset_after": False}),
         (SimpleRNN, keras.layers.SimpleRNN, {"return_sequences": True}),
         (LSTM, keras.layers.LSTM, {"return_sequences": True}),
         (GRU, keras.layers.GRU, {"return_sequences": True}),
         # Our own loop, not the backend's lstm/gru function.
         (LSTM, keras.layers.LSTM, {"return_sequences": True, "use_cudnn": False}),
         (GRU, keras.layers.GRU, {"return_sequences": True, "use_cudnn": False})]
for ours_cls, theirs_cls, kwargs in pairs:
    theirs, ours = theirs_cls(6, **kwargs), ours_cls(6, **kwargs)
    theirs(x), ours(x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)),
                               keras.ops.convert_to_numpy(theirs(x)), atol=1e-5, rtol=1e-5)
print("same outputs on", keras.backend.backend())
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_cells_run_on_other_keras_backends(backend, on_backend):
    run = on_backend(backend, OTHER_BACKEND_SCRIPT)
    assert f"same outputs on {backend}" in run.stdout


# The layers: the same cells with the input matmul taken out
# of the time loop. They must compute exactly what Keras's built-in layers do.

@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("layer_kwargs", LAYER_OPTIONS, ids=lambda d: ",".join(d) or "plain")
def test_layer_matches_keras_layer(kind, layer_kwargs):
    theirs, ours = _layer_pair(kind, bias_initializer="random_normal", **layer_kwargs)
    _assert_same(theirs, ours, _inputs())


@pytest.mark.parametrize("kind,cell_kwargs", CELL_OPTIONS)
def test_layer_matches_keras_layer_options(kind, cell_kwargs):
    theirs, ours = _layer_pair(kind, return_sequences=True, **cell_kwargs)
    _assert_same(theirs, ours, _inputs())


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_masking_and_bidirectional(kind):
    x = _inputs(steps=6)
    x[0, 4:] = 0.0
    x[1, :2] = 0.0
    mask = tf.constant(np.any(x != 0.0, axis=-1))
    theirs, ours = _layer_pair(kind, return_sequences=True, return_state=True)
    _assert_same(theirs, ours, x, mask=mask)
    theirs, ours = _layer_pair(kind, return_sequences=True)
    _assert_same(keras.layers.Bidirectional(theirs), keras.layers.Bidirectional(ours), x)


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize(
    "dropouts", [(0.3, 0.0), (0.3, 0.4)], ids=["input", "both"]
)
def test_layer_dropout_matches_keras_with_the_same_seed(kind, dropouts):
    dropout, recurrent_dropout = dropouts
    theirs, ours = _layer_pair(
        kind, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=7, return_sequences=True
    )
    x = _inputs()
    _assert_same(theirs, ours, x, training=True)
    # Each call (a new sequence) draws new masks.
    assert not np.allclose(ours(x, training=True), ours(x, training=True), atol=1e-3)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_config_round_trips_and_loads_keras_weights(kind):
    ours_cls, theirs_cls = LAYERS[kind]
    cudnn = {} if kind == "rnn" else {"use_cudnn": False}
    ours = ours_cls(
        5, dropout=0.2, kernel_regularizer="l2", return_sequences=True, name="mine", **cudnn
    )
    clone = ours_cls.from_config(ours.get_config())
    assert clone.get_config() == ours.get_config()
    assert clone.name == "mine" and clone.return_sequences and clone.cell.dropout == 0.2
    if cudnn:
        assert clone.use_cudnn is False
    # A Keras layer's config builds ours, as for the cells.
    config = theirs_cls(5, go_backwards=True).get_config()
    assert ours_cls.from_config(config).go_backwards


# The written-out backward pass (each family's `written_out`). On TensorFlow
# the layers take it wherever it applies, so the layer tests above compare its
# outputs and gradients with Keras's; these check that it is taken, and where not.

WRITTEN_OUT = {"rnn": kerasrnn.simple_rnn, "lstm": kerasrnn.lstm, "gru": kerasrnn.gru}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layers_take_the_written_out_backward_where_it_applies(kind, monkeypatch):
    calls = []
    function = WRITTEN_OUT[kind].written_out
    monkeypatch.setattr(WRITTEN_OUT[kind], "written_out",
                        lambda *args: calls.append(1) or function(*args))
    ours_cls = LAYERS[kind][0]
    x = _inputs()
    ours_cls(6, go_backwards=True, dropout=0.2, return_state=True)(x, training=True)
    assert len(calls) == 1
    mask = np.ones(x.shape[:2], dtype=bool)
    mask[0, -1] = False
    loop_only = [
        ({"unroll": True}, {}),
        ({"recurrent_dropout": 0.2}, {"training": True}),
        ({"activation": "relu"}, {}),
        ({}, {"mask": tf.constant(mask)}),
    ]
    if kind == "gru":
        loop_only.append(({"reset_after": False}, {}))
    for layer_kwargs, call_kwargs in loop_only:
        ours_cls(6, **layer_kwargs)(x, **call_kwargs)
    assert len(calls) == 1


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_on_sequences_of_unknown_length_as_in_keras(kind):
    # Traced for any length, then run on more steps than samples: a time-major
    # loop must not take the batch size for the number of steps.
    theirs, ours = _layer_pair(kind, return_sequences=True)
    x = _inputs(batch=2, steps=7)
    theirs(x), ours(x)
    ours.set_weights(theirs.get_weights())

    def outputs_and_gradients(layer):
        @tf.function(input_signature=[tf.TensorSpec((2, None, 4), tf.float32)])
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                outputs = layer(x)
                loss = tf.reduce_sum(outputs * outputs)
            return [outputs] + tape.gradient(loss, [x] + layer.trainable_weights)

        return run(tf.constant(x))

    for o, t in zip(outputs_and_gradients(ours), outputs_and_gradients(theirs), strict=True):
        np.testing.assert_allclose(o, t, **TOLERANCE)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_gradients_reach_the_initial_state_as_in_keras(kind):
    theirs, ours = _layer_pair(kind, return_sequences=True, return_state=True)
    x = _inputs()
    theirs(x), ours(x)
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(1)
    states = [
        tf.constant(rng.normal(size=(3, 6)).astype("float32"))
        for _ in range(2 if kind == "lstm" else 1)
    ]

    def gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch(states)
            outputs = layer(x, initial_state=states)
            loss = sum(tf.reduce_sum(o * o * tf.range(o.shape[-1], dtype=o.dtype)) for o in outputs)
        return tape.gradient(loss, states)

    for o, t in zip(gradients(ours), gradients(theirs), strict=True):
        np.testing.assert_allclose(o, t, **TOLERANCE)


# cuDNN. Keras's LSTM and GRU layers offer the sequence to the backend's
# `lstm` / `gru` function first, which runs cuDNN on a GPU and raises
# NotImplementedError elsewhere; ours must do the same. There is no GPU here,
# so a stand-in for that function records its calls.

def _record_calls(monkeypatch, kind, result=None):
    calls = []

    def backend_function(*args, **kwargs):
        calls.append((args, kwargs))
        if result is None:
            raise NotImplementedError  # what the backend does without a GPU
        return result(*args)

    monkeypatch.setattr(keras.src.backend, kind, backend_function)
    return calls


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_layer_offers_cudnn_what_keras_offers(kind, monkeypatch):
    theirs, ours = _layer_pair(kind, dropout=0.3, seed=7, return_sequences=True, go_backwards=True)
    x = _inputs()
    theirs(x), ours(x)  # built before the stand-in records anything
    calls = _record_calls(monkeypatch, kind)
    _assert_same(theirs, ours, x, training=True)
    # Keras's call, then ours, for the forward pass of each layer.
    (their_args, their_kwargs), (our_args, our_kwargs) = calls
    for theirs_arg, our_arg in zip(their_args, our_args, strict=True):
        if theirs_arg is None:
            assert our_arg is None
        else:  # the dropped-out inputs and the initial states
            np.testing.assert_allclose(our_arg, theirs_arg, **TOLERANCE)
    assert our_kwargs.keys() == their_kwargs.keys()
    for key, value in their_kwargs.items():
        if isinstance(value, keras.Variable):
            np.testing.assert_array_equal(our_kwargs[key], value)
        else:
            assert our_kwargs[key] == value, key
    # Recurrent dropout has no cuDNN form: no offer, from either layer.
    theirs, ours = _layer_pair(kind, recurrent_dropout=0.3)
    theirs(x, training=True), ours(x, training=True)
    assert len(calls) == 2


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_layer_returns_what_cudnn_returns(kind, monkeypatch):
    def cudnn_result(inputs, *_):
        batch, steps = inputs.shape[:2]
        last = keras.ops.full((batch, 6), 0.5)
        return last, keras.ops.full((batch, steps, 6), 0.5), [last] * (2 if kind == "lstm" else 1)

    calls = _record_calls(monkeypatch, kind, result=cudnn_result)
    ours_cls = LAYERS[kind][0]
    x = _inputs()
    np.testing.assert_array_equal(ours_cls(6, return_sequences=True)(x), np.full((3, 5, 6), 0.5))
    assert len(calls) == 1
    assert not np.allclose(ours_cls(6, use_cudnn=False)(x), 0.5)
    assert len(calls) == 1


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_use_cudnn_true_without_cudnn_is_an_error_as_in_keras(kind):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("cuDNN can run here")
    ours_cls, theirs_cls = LAYERS[kind]
    for layer in (theirs_cls(6, use_cudnn=True), ours_cls(6, use_cudnn=True)):
        with pytest.raises(ValueError, match="use_cudnn"):
            layer(_inputs())
    with pytest.raises(ValueError, match="use_cudnn"):
        ours_cls(6, use_cudnn="yes")


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU"])
def test_the_layers_take_their_arguments_where_keras_s_take_them(name):
    """The same call on kerasrnn's layer and on Keras's: `input_shape` builds
    a Sequential's first layer; NumPy integers are units; `implementation`
    reaches the cell; `use_cudnn` exists where Keras's layer has it; a
    tensor of another rank is refused with Keras's words."""
    import warnings

    import kerasrnn

    ours, theirs = getattr(kerasrnn, name), getattr(keras.layers, name)
    for layer in (ours, theirs):
        with warnings.catch_warnings():  # Keras prefers keras.Input; both warn alike
            warnings.simplefilter("ignore", UserWarning)
            model = keras.Sequential([layer(4, input_shape=(5, 3))])
        assert model.built and model.output_shape == (None, 4), layer
        with pytest.raises(ValueError, match="expected ndim=3, found ndim=4"):
            layer(4)(np.zeros((2, 3, 5, 1), "float32"))
    # Keras's cells take NumPy's integers as units; kerasrnn's cells and
    # layers take them too (the units are Python ints from then on).
    assert keras.layers.LSTMCell(np.int64(4)).units == 4
    assert ours(np.int64(4)).units == 4 and type(ours(np.int64(4)).cell.units) is int
    if name != "SimpleRNN":  # Keras's SimpleRNNCell has no `implementation`
        assert ours(4, implementation=1).cell.implementation == 1
        assert theirs(4, implementation=1).cell.implementation == 1
    assert hasattr(ours(4), "use_cudnn") == hasattr(theirs(4), "use_cudnn")


STATE_CHECKS = """
import json
import numpy as np
import keras
import kerasrnn as K

x = np.random.default_rng(0).random((4, 6, 5)).astype("float32")
results = {}


def attempt(label, run):
    try:
        run()
        results[label] = "ok"
    except ValueError as error:
        results[label] = str(error)


for name in ("LSTM", "GRU", "SimpleRNN", "MinGRU"):
    layer = getattr(K, name)
    states = 2 if name == "LSTM" else 1
    ones = lambda shape, n: [np.ones(shape, "float32")] * n  # noqa: E731
    attempt(f"{name} batch 7", lambda: layer(4)(x, initial_state=ones((7, 4), states)))
    attempt(f"{name} width 3", lambda: layer(4)(x, initial_state=ones((4, 3), states)))
    attempt(f"{name} extra state",
            lambda: layer(4)(x, initial_state=[np.ones((4, 4), "float32")] * (states + 1)))
    built = layer(4)
    built(x)
    attempt(f"{name} 3 features", lambda: built(x[..., :3]))
    attempt(f"{name} 50 features", lambda: built(np.zeros((4, 6, 50), "float32")))
    attempt(f"{name} 4-D", lambda: layer(4)(x[..., None]))

# A state of batch 1 is broadcast, as Keras's own layer computes it.
keras.utils.set_random_seed(0)
ours, theirs = K.LSTM(4, return_state=True), keras.layers.LSTM(4, return_state=True)
ours(x), theirs(x)
ours.set_weights(theirs.get_weights())
s0 = [np.random.default_rng(1).random((1, 4)).astype("float32")] * 2
difference = max(float(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b)).max())
                 for a, b in zip(ours(x, initial_state=s0), theirs(x, initial_state=s0)))
print(json.dumps({"results": results, "batch_1": difference}))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_states_and_inputs_of_the_wrong_shape_are_refused_before_any_kernel(backend,
                                                                            on_backend):
    """On PyTorch a fused kernel given states of another batch, or inputs of
    another feature size, read past its buffers (a segmentation fault, or
    wrong shapes); every layer now refuses them on every backend, in
    Keras's words where Keras has them, before any path runs."""
    import json

    done = on_backend(backend, STATE_CHECKS)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for label, result in report["results"].items():
        if label.endswith(("features", "4-D")):
            assert "is incompatible with the layer: expected" in result, (label, result)
        elif label.endswith("extra state"):
            assert "initial state tensors" in result, (label, result)
        else:
            assert "does not fit inputs of shape (4, 6, 5)" in result, (label, result)
    assert report["batch_1"] < 1e-5


RECURRENT_DROPOUT_ONE = """
import json
import numpy as np
import keras
import kerasrnn as K

x = np.random.default_rng(0).random((4, 6, 5)).astype("float32")
differences = {}
for name in ("LSTM", "GRU"):
    ours = getattr(K, name)(4, dropout=0.5, recurrent_dropout=1.0, seed=3)
    theirs = getattr(keras.layers, name)(4, dropout=0.5, recurrent_dropout=1.0, seed=3)
    ours(x), theirs(x)
    ours.set_weights(theirs.get_weights())
    a, b = (keras.ops.convert_to_numpy(layer(x, training=True)) for layer in (ours, theirs))
    differences[name] = float(np.abs(a - b).max())
print(json.dumps(differences))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_recurrent_dropout_of_one_is_what_keras_computes(backend, on_backend):
    """recurrent_dropout=1.0 applies no recurrent mask, but Keras still draws
    one input mask per gate: the fused kernels (one input) decline it, and
    the layer computes Keras's outputs, seed for seed (PyTorch raised a
    TypeError)."""
    import json

    done = on_backend(backend, RECURRENT_DROPOUT_ONE)
    differences = json.loads(done.stdout.strip().splitlines()[-1])
    assert max(differences.values()) < 1e-6, differences
