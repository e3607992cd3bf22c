"""minGRU and minLSTM (kerasrnn/minimal.py): the cells against NumPy, the scan against the loop.

The cells are checked against a float64 NumPy reference written from the
equations in their docstrings. The layers solve a sequence by a parallel
scan; for the same weights they must compute what `keras.layers.RNN(cell)`
computes step by step (outputs, final state, and the gradients of a loss
with respect to the inputs, the initial state and every weight) with a
non-zero initial state, `return_sequences`, `return_state`,
`go_backwards` and masking, at lengths 1 and 7 (each apart and all at
once on TensorFlow; all at once and none on JAX and PyTorch), 128 and 2048
(all at once), on TensorFlow, JAX and PyTorch, where the features' tests
(dropout, stateful, Bidirectional, StackedRNNCells, `.keras` files) run
too. A difference is measured relative to the scale of what is compared:
`max|scan − loop| / max|loop|` per tensor.
"""

import contextlib
import json
import os

import keras
import numpy as np
import pytest

from kerasrnn import MinGRU, MinGRUCell, MinLSTM, MinLSTMCell, recurrent
from kerasrnn.minimal import FORMULATIONS, SCANS
from kerasrnn.recurrent import BLOCKED_SCAN, CELL, LOOP, SEQUENTIAL_SCAN, choose_paths

UNITS, FEATURES, BATCH = 4, 3, 2
KINDS = {"mingru": (MinGRUCell, MinGRU), "minlstm": (MinLSTMCell, MinLSTM)}
# Each case: the layer's options, and whether the call gets a mask.
CASES = [
    ({"return_sequences": True, "return_state": True}, False),
    ({"return_sequences": True, "go_backwards": True}, False),
    ({"return_state": True}, True),
    ({"return_sequences": True, "return_state": True, "go_backwards": True}, True),
]
# Length: the largest relative difference allowed (float32).
TOLERANCE = {1: 1e-5, 7: 1e-5, 128: 1e-5, 2048: 1e-4}


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def g(a):
    return np.where(a >= 0, a + 0.5, sigmoid(a))


def reference(kind, kernel, bias, x, h):
    """The docstring's equations in float64: every h_t, from h."""
    outputs = []
    for t in range(x.shape[1]):
        k = x[:, t] @ kernel + bias
        if kind == "mingru":
            k_z, k_h = np.split(k, 2, axis=-1)
            z = sigmoid(k_z)
            h = (1 - z) * h + z * g(k_h)
        else:
            k_f, k_i, k_h = np.split(k, 3, axis=-1)
            f, i = sigmoid(k_f), sigmoid(k_i)
            h = f / (f + i) * h + i / (f + i) * g(k_h)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def data(steps, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, steps, FEATURES)).astype("float32")
    h0 = rng.normal(size=(BATCH, UNITS)).astype("float32")  # negative values too
    mask = np.ones((BATCH, steps), dtype=bool)
    if steps > 1:
        mask[0, steps // 2:] = False  # padding at the end
        mask[1, : (steps + 1) // 3] = False  # and at the start
        mask[1, -1] = False
    return x, h0, mask


def random_weights(layer, seed=1):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(size=v.shape).astype("float32") for v in layer.weights])


def value_and_gradients(layer, x, h0, mask):
    """The layer's outputs, and the gradients of a fixed random linear loss of
    them with respect to x, h0 and each trainable weight, as NumPy arrays."""
    backend = keras.backend.backend()
    call = {"mask": mask} if mask is not None else {}

    def outputs(x, h0):
        return keras.tree.flatten(layer(x, initial_state=[h0], **call))

    shapes = [keras.ops.shape(o) for o in outputs(x, h0)]
    rng = np.random.default_rng(2)
    loss_weights = [keras.ops.convert_to_tensor(rng.normal(size=s).astype("float32"))
                    for s in shapes]

    def loss(values):
        return sum(keras.ops.sum(v * w) for v, w in zip(values, loss_weights, strict=True))

    variables = layer.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function  # a graph: Keras's loop over 2048 steps is slow eagerly
        def run(x, h0):
            with tf.GradientTape() as tape:
                tape.watch([x, h0])
                values = outputs(x, h0)
                total = loss(values)
            return values, tape.gradient(total, [x, h0, *variables])

        values, grads = run(tf.constant(x), tf.constant(h0))
    elif backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        h0 = torch.tensor(h0, requires_grad=True)
        for v in variables:
            v.value.grad = None
        values = outputs(x, h0)
        loss(values).backward()
        values = [v.detach() for v in values]
        grads = [x.grad, h0.grad, *[v.value.grad for v in variables]]
    else:
        import jax

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def stateless(trainable, x, h0):
            out, _ = layer.stateless_call(trainable, non_trainable, x, initial_state=[h0],
                                          **call)
            values = keras.tree.flatten(out)
            return loss(values), values

        # One compiled program per case: eagerly, JAX compiles every op apart.
        (_, values), grads = jax.jit(jax.value_and_grad(stateless, argnums=(0, 1, 2),
                                                        has_aux=True))(
            [v.value for v in variables], x, h0)
        grads = [grads[1], grads[2], *grads[0]]
    return ([keras.ops.convert_to_numpy(v) for v in values],
            [keras.ops.convert_to_numpy(g) for g in grads])


def scan_against_loop(kind, steps, cases=CASES):
    """The worst relative difference, over `cases`, between the layer (the
    scan) and `keras.layers.RNN(cell)` (the loop) with the same weights."""
    cell_cls, layer_cls = KINDS[kind]
    x, h0, mask = data(steps)
    worst = 0.0
    # From 128 steps, the case with every feature at once (the loop is slow).
    for options, masked in cases if steps < 128 else CASES[-1:]:
        scan = layer_cls(UNITS, **options)
        loop = keras.layers.RNN(cell_cls(UNITS), **options)
        scan.build((None, None, FEATURES))
        loop.build((None, None, FEATURES))
        random_weights(scan)
        loop.set_weights(scan.get_weights())
        got = value_and_gradients(scan, x, h0, mask if masked else None)
        expected = value_and_gradients(loop, x, h0, mask if masked else None)
        for a, b in zip([*got[0], *got[1]], [*expected[0], *expected[1]], strict=True):
            assert a.shape == b.shape and np.isfinite(a).all()
            worst = max(worst, float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)))
    return worst


def formulations_against_numpy():
    """The worst relative difference of each scan formulation from the
    recurrence computed step by step in float64, over lengths 1 to 2048,
    run forwards and (as the backward pass runs it) from the end."""
    import functools

    worst = {}
    for steps in (1, 2, 7, 128, 2047, 2048):
        rng = np.random.default_rng(steps)
        a = rng.uniform(0, 1, size=(steps, BATCH, UNITS))  # time-major
        a[::5] = 1.0  # masked steps
        b = rng.uniform(0, 2, size=(steps, BATCH, UNITS))
        h0 = rng.normal(size=(BATCH, UNITS))
        for reverse in (False, True):
            h, expected = h0, np.empty_like(a)
            for t in reversed(range(steps)) if reverse else range(steps):
                h = expected[t] = a[t] * h + b[t]
            for name, scan in FORMULATIONS.items():
                scan = functools.partial(scan, reverse=reverse)
                if keras.backend.backend() == "jax":  # eagerly, JAX compiles every op apart
                    import jax

                    scan = jax.jit(scan)
                got = keras.ops.convert_to_numpy(scan(*(x.astype("float32") for x in (a, b, h0))))
                error = float(np.abs(got - expected).max() / np.abs(expected).max())
                worst[name] = max(worst.get(name, 0.0), error)
    return worst


def test_every_scan_formulation_solves_the_recurrence():
    worst = formulations_against_numpy()
    assert sorted(worst) == sorted(SCANS) and max(worst.values()) < 1e-6, worst


def test_a_length_unknown_until_run_takes_the_layers_loop():
    import tensorflow as tf

    layer = MinGRU(UNITS, return_sequences=True)
    layer.build((None, None, FEATURES))
    random_weights(layer)
    loop = keras.layers.RNN(MinGRUCell(UNITS), return_sequences=True)
    loop.build((None, None, FEATURES))
    loop.set_weights(layer.get_weights())
    assert path_taken(layer, False, False, static_length=False) == LOOP
    run = tf.function(layer, input_signature=[tf.TensorSpec((None, None, FEATURES))])
    x, _, _ = data(9)
    np.testing.assert_allclose(run(x).numpy(), keras.ops.convert_to_numpy(loop(x)), atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_the_cell_computes_its_docstring_equations(kind):
    cell_cls, _ = KINDS[kind]
    x, h0, _ = data(7)
    rnn = keras.layers.RNN(cell_cls(UNITS), return_sequences=True)
    rnn.build((None, None, FEATURES))
    random_weights(rnn)
    kernel, bias = (np.float64(w) for w in rnn.get_weights())
    expected = reference(kind, kernel, bias, np.float64(x), np.float64(h0))
    got = keras.ops.convert_to_numpy(rnn(x, initial_state=[h0]))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("steps", [1, 7, 128, 2048])
def test_the_scan_computes_what_the_loop_computes(kind, steps):
    assert scan_against_loop(kind, steps) < TOLERANCE[steps]


OTHER_BACKEND = """
import json, sys
sys.path.insert(0, {tests!r})
import keras
import test_minimal as t
import tempfile
from pathlib import Path
from kerasrnn import recurrent
# Every feature at once, and none but the sequences and the state: each
# feature's own case ran on TensorFlow, and a new backend's compilations
# cost seconds each.
cases = [t.CASES[0], t.CASES[-1]]
worst = {{f"{{kind}}/{{steps}}": t.scan_against_loop(kind, steps, cases)
          for kind in t.KINDS for steps in t.TOLERANCE}}
if keras.backend.backend() == "jax":
    # minGRU scans in blocks on JAX once its states outgrow the cache, which
    # the tests' small batches never do: count every size as large, and
    # record the paths the layers take.
    large, recurrent.LARGE_STATES = recurrent.LARGE_STATES, 0
    with t.situations_seen() as seen:
        worst.update({{f"mingru in blocks/{{steps}}": t.scan_against_loop("mingru", steps, cases)
                      for steps in (7, 2048)}})
    taken = {{recurrent.choose_paths(s)[0] for s in seen}}
    recurrent.LARGE_STATES = large
    assert taken == {{recurrent.BLOCKED_SCAN}}, taken
scan_device = None
if keras.backend.backend() == "torch":
    # Keras's PyTorch associative scan makes its buffers on torch's default
    # device, ours on its inputs' (a GPU's, where the default is the CPU):
    # here CPU tensors under a "meta" default.
    import torch
    from kerasrnn.minimal import associative_scan, sequential_scan
    a, b, h0 = torch.rand(7, 2, 3), torch.rand(7, 2, 3), torch.rand(2, 3)
    torch.set_default_device("meta")
    try:
        states = associative_scan(a, b, h0)
    finally:
        torch.set_default_device("cpu")
    assert torch.allclose(states, sequential_scan(a, b, h0)), states
    scan_device = str(states.device)
# What the library promises of a cell, on this backend too.
features = []
for kind in t.KINDS:
    t.test_the_cell_computes_its_docstring_equations(kind)
    t.test_dropout_on_the_inputs_as_the_cell_draws_it(kind)
    t.test_stateful_bidirectional_and_stacked(kind)
    with tempfile.TemporaryDirectory() as tmp:
        t.test_keras_file_round_trip_without_custom_objects(kind, Path(tmp))
    features.append(kind)
path_by_kind = {{}}
for kind, (_, layer_class) in t.KINDS.items():
    layer = layer_class(t.UNITS)
    layer.build((None, None, t.FEATURES))
    path_by_kind[kind] = t.path_taken(layer, masked=True, training=True)
print(json.dumps({{"backend": keras.backend.backend(), "worst": worst, "paths": path_by_kind,
                  "scan_device": scan_device, "gpu": recurrent.on_gpu(layer.cell.kernel),
                  "formulations": t.formulations_against_numpy(), "features": features}}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_scan_computes_what_the_loop_computes_on_other_backends(backend, on_backend):
    """The scan against the loop, each formulation, and every feature's test,
    in a process with KERAS_BACKEND=backend."""
    run = on_backend(backend, OTHER_BACKEND.format(tests=os.path.dirname(__file__)))
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    # The formulation measured fastest on the backend's CPU (docs/speed.md)
    # is the one these tests compared with the loop.
    assert report["paths"] == {
        "mingru": BLOCKED_SCAN if backend == "torch" else SEQUENTIAL_SCAN,
        "minlstm": BLOCKED_SCAN}
    if backend == "jax":
        assert "mingru in blocks/2048" in report["worst"]
    if backend == "torch":
        assert report["scan_device"] == "cpu"
    assert report["gpu"] is False  # the scans measured fastest on a CPU, above
    for name, worst in report["worst"].items():
        assert worst < TOLERANCE[int(name.split("/")[1])], report
    assert sorted(report["formulations"]) == sorted(SCANS)
    assert max(report["formulations"].values()) < 1e-6, report
    # The cell's equations, input dropout, stateful, Bidirectional,
    # StackedRNNCells and the .keras round trip passed there (each asserts).
    assert report["features"] == list(KINDS)


def path_taken(layer, masked, training, static_length=True):
    """The path the layer runs such a call by: `choose_paths`' first."""
    return choose_paths(layer.situation(np.ones((BATCH, 7), bool) if masked else None, training,
                                        static_length))[0]


@contextlib.contextmanager
def situations_seen():
    """The `Situation` of every call the layers make to `choose_paths`
    within the block, in a list."""
    seen, choose = [], recurrent.choose_paths

    def recording(situation):
        seen.append(situation)
        return choose(situation)

    recurrent.choose_paths = recording
    try:
        yield seen
    finally:
        recurrent.choose_paths = choose


def test_the_layer_tells_the_path_how_large_its_states_are():
    import tensorflow as tf

    layer = MinGRU(UNITS, return_sequences=True)
    x, _, _ = data(7)
    with situations_seen() as seen:
        layer(x)
        assert seen[-1].states_size == BATCH * 7 * UNITS
        assert not seen[-1].gpu  # this machine has none
        # Traced with neither the batch nor the length known:
        unknown = tf.TensorSpec((None, None, FEATURES), "float32")
        tf.function(layer, input_signature=[unknown]).get_concrete_function()
        assert seen[-1].states_size is None and not seen[-1].static_length


def test_the_layer_takes_the_scan_and_a_subclassed_step_takes_the_loop():
    layer = MinGRU(UNITS)
    layer.build((None, None, FEATURES))
    for masked in (False, True):
        for training in (False, True):
            assert path_taken(layer, masked, training) in SCANS

    class Doubled(MinGRUCell):
        def recurrent_step(self, projection, states, recurrent_mask=None, return_gates=False):
            return super().recurrent_step(2.0 * projection, states, recurrent_mask,
                                          return_gates)

    class DoubledMinGRU(MinGRU):
        cell_class = Doubled

    doubled = DoubledMinGRU(UNITS, return_sequences=True)
    doubled.build((None, None, FEATURES))
    assert path_taken(doubled, False, False) == LOOP
    random_weights(doubled)
    reference_rnn = keras.layers.RNN(Doubled(UNITS), return_sequences=True)
    reference_rnn.build((None, None, FEATURES))
    reference_rnn.set_weights(doubled.get_weights())
    x, h0, _ = data(7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(doubled(x)),
                               keras.ops.convert_to_numpy(reference_rnn(x)), atol=1e-6)

    class OwnCall(MinGRUCell):
        def call(self, inputs, states, training=False):
            return super().call(inputs, states, training)

    class OwnCallMinGRU(MinGRU):
        cell_class = OwnCall

    own = OwnCallMinGRU(UNITS)
    own.build((None, None, FEATURES))
    assert path_taken(own, False, False) == CELL


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_on_the_inputs_as_the_cell_draws_it(kind):
    cell_cls, layer_cls = KINDS[kind]
    x, h0, _ = data(7)
    scan = layer_cls(UNITS, dropout=0.5, seed=3, return_sequences=True)
    loop = keras.layers.RNN(cell_cls(UNITS, dropout=0.5, seed=3), return_sequences=True)
    scan.build((None, None, FEATURES))
    loop.build((None, None, FEATURES))
    random_weights(scan)
    loop.set_weights(scan.get_weights())
    dropped = keras.ops.convert_to_numpy(scan(x, training=True))
    np.testing.assert_allclose(dropped, keras.ops.convert_to_numpy(loop(x, training=True)),
                               atol=1e-6)
    assert np.abs(dropped - keras.ops.convert_to_numpy(scan(x))).max() > 1e-2


@pytest.mark.parametrize("kind", KINDS)
def test_stateful_bidirectional_and_stacked(kind):
    cell_cls, layer_cls = KINDS[kind]
    x, _, _ = data(7)
    weights = None
    # Stateful: two halves of a sequence give what the whole gives.
    whole = layer_cls(UNITS, return_sequences=True)
    whole.build((None, None, FEATURES))
    random_weights(whole)
    weights = whole.get_weights()
    halves = layer_cls(UNITS, return_sequences=True, stateful=True)
    halves.build((BATCH, None, FEATURES))
    halves.set_weights(weights)
    got = np.concatenate([keras.ops.convert_to_numpy(halves(x[:, :3])),
                          keras.ops.convert_to_numpy(halves(x[:, 3:]))], axis=1)
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(whole(x)), atol=1e-6)
    # Bidirectional: the forward half is the layer, the backward half the
    # layer over the reversed sequence.
    both = keras.layers.Bidirectional(layer_cls(UNITS))
    both.build((None, None, FEATURES))
    random_weights(both)
    forward = keras.layers.RNN(cell_cls(UNITS))
    backward = keras.layers.RNN(cell_cls(UNITS), go_backwards=True)
    forward.build((None, None, FEATURES))
    backward.build((None, None, FEATURES))
    forward.set_weights(both.forward_layer.get_weights())
    backward.set_weights(both.backward_layer.get_weights())
    expected = np.concatenate([keras.ops.convert_to_numpy(forward(x)),
                               keras.ops.convert_to_numpy(backward(x))], axis=-1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(both(x)), expected, atol=1e-6)
    # StackedRNNCells: two cells in one keras.layers.RNN, against two layers.
    stacked = keras.layers.RNN(keras.layers.StackedRNNCells([cell_cls(UNITS), cell_cls(UNITS)]))
    stacked.build((None, None, FEATURES))
    random_weights(stacked)
    first, second = layer_cls(UNITS, return_sequences=True), layer_cls(UNITS)
    first.build((None, None, FEATURES))
    second.build((None, None, UNITS))
    first.set_weights(stacked.get_weights()[:2])
    second.set_weights(stacked.get_weights()[2:])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(stacked(x)),
                               keras.ops.convert_to_numpy(second(first(x))), atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_keras_file_round_trip_without_custom_objects(kind, tmp_path):
    cell_cls, layer_cls = KINDS[kind]
    x, _, _ = data(7)
    inputs = keras.Input((None, FEATURES))
    model = keras.Model(inputs, [
        layer_cls(UNITS, dropout=0.25, seed=5, go_backwards=True)(inputs),
        keras.layers.RNN(cell_cls(UNITS, use_bias=False))(inputs),
    ])
    random_weights(model)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model(x), loaded(x), strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a),
                                   keras.ops.convert_to_numpy(b), atol=0)
    layer = loaded.layers[1] if isinstance(loaded.layers[1], layer_cls) else loaded.layers[2]
    assert layer.get_config() == model.get_layer(layer.name).get_config()
    assert layer.cell.dropout == 0.25 and layer.go_backwards


@pytest.mark.parametrize("kind", KINDS)
def test_the_layers_cell_is_the_cell_and_shares_its_weights(kind):
    cell_cls, layer_cls = KINDS[kind]
    layer = layer_cls(UNITS)
    layer.build((None, None, FEATURES))
    assert isinstance(layer.cell, cell_cls)
    assert [v.path.split("/")[-1] for v in layer.weights] == ["kernel", "bias"]
    assert layer.weights[0].shape == (FEATURES, cell_cls.gates * UNITS)
    config = cell_cls(UNITS).get_config()
    assert "recurrent_initializer" not in config and "activation" not in config


@pytest.mark.parametrize("argument, value", [
    ("recurrent_dropout", 0.1), ("recurrent_initializer", "orthogonal"), ("activation", "relu"),
])
def test_arguments_that_do_not_apply_are_refused(argument, value):
    with pytest.raises((TypeError, ValueError), match=f"`{argument}`"):
        MinGRU(UNITS, **{argument: value})
