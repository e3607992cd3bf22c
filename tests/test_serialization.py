"""Models built on our cells survive `.keras` files and SavedModel export."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from kerasrnn import GRU, LSTM, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell

CELLS = {"rnn": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}
LAYERS = {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


def _model(cell):
    inputs = keras.Input((5, 4), name="sequence")
    h = keras.layers.RNN(cell, return_sequences=True)(inputs)
    h = keras.layers.Bidirectional(keras.layers.RNN(type(cell)(3)))(h)
    return keras.Model(inputs, keras.layers.Dense(2)(h))


def _layer_model(layer_cls, **kwargs):
    inputs = keras.Input((5, 4), name="sequence")
    h = layer_cls(6, return_sequences=True, **kwargs)(inputs)
    h = keras.layers.Bidirectional(layer_cls(3))(h)
    return keras.Model(inputs, keras.layers.Dense(2)(h))


def _x():
    return np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_keras_file_reloads_without_custom_objects(kind, tmp_path):
    cell_cls = CELLS[kind]
    cell = cell_cls(
        6,
        dropout=0.1,
        recurrent_dropout=0.2,
        kernel_regularizer="l2",
        recurrent_constraint="max_norm",
        seed=3,
    )
    model = _model(cell)
    path = tmp_path / f"{kind}.keras"
    model.save(path)

    reloaded = keras.saving.load_model(path)  # no custom_objects
    reloaded_cell = reloaded.layers[1].cell
    assert type(reloaded_cell) is cell_cls
    assert reloaded_cell.get_config() == cell.get_config()
    np.testing.assert_array_equal(reloaded.predict(_x(), verbose=0), model.predict(_x(), verbose=0))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_keras_file_with_our_layers_reloads_without_custom_objects(kind, tmp_path):
    layer_cls = LAYERS[kind]
    model = _layer_model(layer_cls, recurrent_dropout=0.2, kernel_regularizer="l2", seed=3)
    path = tmp_path / f"{kind}.keras"
    model.save(path)

    reloaded = keras.saving.load_model(path)  # no custom_objects
    assert type(reloaded.layers[1]) is layer_cls
    assert reloaded.layers[1].get_config() == model.layers[1].get_config()
    np.testing.assert_array_equal(reloaded.predict(_x(), verbose=0), model.predict(_x(), verbose=0))


@pytest.mark.parametrize("imports", ["import kerasrnn\nimport keras",
                                     "import keras\nimport kerasrnn",
                                     "import kerasrnn\nimport tensorflow\nimport keras"],
                         ids=["kerasrnn-first", "keras-first", "tensorflow-in-between"])
def test_import_kerasrnn_registers_the_classes_whatever_the_order(tmp_path, imports):
    """A fresh process that imports kerasrnn (before or after Keras) and names
    no custom objects loads the file and computes what the model computes."""
    model = _layer_model(LAYERS["lstm"])
    path = tmp_path / "lstm.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", _x())
    script = imports + textwrap.dedent(f"""
        import numpy as np
        model = keras.saving.load_model({str(path)!r})
        np.save({str(tmp_path / "y.npy")!r},
                model.predict(np.load({str(tmp_path / "x.npy")!r}), verbose=0))
        print(type(model.layers[1]).__module__, type(model.layers[1]).__name__)
        """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["kerasrnn.lstm", "LSTM"]
    np.testing.assert_allclose(
        np.load(tmp_path / "y.npy"), model.predict(_x(), verbose=0), atol=1e-6
    )


# Runs in a process that never imports kerasrnn: loads each SavedModel with
# tf.saved_model.load and with the session-based loader TF Serving uses.
LOAD_WITHOUT_KERASRNN = """
import json, sys
import numpy as np
import tensorflow as tf

results = {}
for name, path, x_path in json.loads(sys.argv[1]):
    x = np.load(x_path)
    eager = tf.saved_model.load(path).signatures["serving_default"]
    (eager_out,) = eager(sequence=tf.constant(x)).values()

    with tf.compat.v1.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        signature = meta.signature_def["serving_default"]
        (output,) = signature.outputs.values()
        session_out = sess.run(output.name, {signature.inputs["sequence"].name: x})
    results[name] = [np.asarray(eager_out).tolist(), session_out.tolist()]

assert "kerasrnn" not in sys.modules
print(json.dumps(results))
"""


def test_saved_model_runs_in_a_process_without_kerasrnn(tmp_path):
    jobs, expected = [], {}
    models = {kind: _model(cell_cls(6)) for kind, cell_cls in CELLS.items()}
    models.update({f"{kind}-layer": _layer_model(cls) for kind, cls in LAYERS.items()})
    for kind, model in models.items():
        path = tmp_path / kind
        model.export(str(path), format="tf_saved_model", verbose=False)
        np.save(tmp_path / "x.npy", _x())
        jobs.append([kind, str(path), str(tmp_path / "x.npy")])
        expected[kind] = model.predict(_x(), verbose=0)

    run = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_KERASRNN, json.dumps(jobs)],
        check=True,
        capture_output=True,
        text=True,
    )
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert sorted(results) == sorted(models)
    for kind, (eager_out, session_out) in results.items():
        np.testing.assert_allclose(eager_out, expected[kind], atol=1e-5)
        np.testing.assert_allclose(session_out, expected[kind], atol=1e-5)
