"""Keras's own `model.export(format="litert" | "onnx")` for every layer, run
in the runtimes: LiteRT's interpreter with builtin ops only, onnxruntime on
the CPU (kerasrnn/portable.py; docs/deploy.md)."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasrnn
from kerasrnn.apps.common import runtimes

REASON = 'the deployment tools are not installed: pip install "kerasrnn[deploy]"'
onnx = pytest.importorskip("onnx", reason=REASON)
pytest.importorskip("onnxruntime", reason=REASON)
pytest.importorskip("tf2onnx", reason=REASON)
pytest.importorskip("ai_edge_litert.interpreter", reason=REASON)

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="Keras exports LiteRT and ONNX files from TensorFlow")

FEATURES = 5
LAYERS = ["SimpleRNN", "LSTM", "GRU", "LayerNormSimpleRNN", "LayerNormLSTM", "LayerNormGRU",
          "PeepholeLSTM", "MinGRU", "MinLSTM"]
# (batch, steps): every size runs in the same file.
SIZES = [(1, 1), (7, 1), (1, 28), (7, 28), (7, 500)]


def onnx_ops(path):
    """The operators of an `.onnx` file that passes `onnx.checker`."""
    onnx.checker.check_model(onnx.load(str(path)))
    return runtimes.operators(path)


def export_both(model, tmp_path, litert_signature=None):
    litert_path, onnx_path = tmp_path / "m.tflite", tmp_path / "m.onnx"
    model.export(litert_path, format="litert", verbose=False, input_signature=litert_signature)
    model.export(onnx_path, format="onnx", verbose=False)
    return litert_path, onnx_path


def inputs(batch, steps, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, steps, FEATURES)).astype("float32")


def assert_runs_like_keras(model, litert_path, onnx_path, sizes=SIZES, parts=None):
    """Both files (or the one given, the other None), builtin operators only
    and through `onnx.checker`, give Keras's answers at every size; `parts`,
    names of the output's blocks of 4 columns (one per layer), name the
    block that differs."""
    files = {}
    if litert_path is not None:
        assert not {op for op in runtimes.operators(litert_path) if op.startswith("CUSTOM")}
        files["LiteRT"] = (runtimes.load(litert_path), 1e-4)
    if onnx_path is not None:
        onnx_ops(onnx_path)  # passes onnx.checker
        files["ONNX"] = (runtimes.load(onnx_path), 1e-5)
    # Keras's answers, compiled once for every size (`predict` would trace a
    # function per shape; an eager call steps the loops in Python).
    keras_answers = tf.function(model, input_signature=[
        tf.TensorSpec([None, None, FEATURES], tf.float32)])
    for batch, steps in sizes:
        x = inputs(batch, steps)
        expected = keras_answers(x).numpy()
        for runtime, (file, tolerance) in files.items():
            got = file(x)
            for i, name in enumerate(parts or ["the output"]):
                part = slice(4 * i, 4 * i + 4) if parts else slice(None)
                np.testing.assert_allclose(got[:, part], expected[:, part], atol=tolerance,
                                           err_msg=f"{name}, {runtime}, batch {batch}, {steps}")


def test_every_layer_exports_and_runs_in_both_runtimes(tmp_path):
    """One model holds every layer, two of each stacked: the first returns its
    sequence read backwards, the second its last output, side by side in the
    model's output (one export per format: the converters take most of the
    time). Both files take any batch and any length."""
    keras.utils.set_random_seed(1)
    sequence = keras.Input((None, FEATURES))
    branches = [getattr(kerasrnn, name)(4)(getattr(kerasrnn, name)(
        6, return_sequences=True, go_backwards=True)(sequence)) for name in LAYERS]
    model = keras.Model(sequence, keras.layers.Concatenate()(branches))
    assert_runs_like_keras(model, *export_both(model, tmp_path), parts=LAYERS)


def test_bidirectional_and_masked_layers(tmp_path):
    """After `Masking`, a `Bidirectional` LSTM, GRU and MinGRU side by side,
    padding at the end of some sequences and at the start of one."""
    keras.utils.set_random_seed(2)
    sequence = keras.Input((None, FEATURES))
    masked = keras.layers.Masking()(sequence)
    branches = [keras.layers.Bidirectional(getattr(kerasrnn, name)(6, return_sequences=True))(
        masked) for name in ("LSTM", "GRU", "MinGRU")]
    model = keras.Model(sequence, keras.layers.Concatenate()(branches))
    litert_path, onnx_path = export_both(model, tmp_path)
    x = inputs(7, 28)
    x[:3, 20:] = 0.0  # padding at the end, as Masking expects it
    x[5, :4] = 0.0  # and at the start
    expected = model.predict(x, batch_size=7, verbose=0)
    np.testing.assert_allclose(runtimes.load(litert_path)(x), expected, atol=1e-4)
    np.testing.assert_allclose(runtimes.load(onnx_path)(x), expected, atol=1e-5)


def test_the_classic_cells_become_the_runtimes_own_operators(tmp_path):
    """LSTM: LiteRT's fused sequence LSTM (at a fixed batch) and ONNX's
    `LSTM`; GRU: ONNX's `GRU` with `linear_before_reset=1`. Each direction of
    a `Bidirectional` LSTM is one fused operator in LiteRT, and ONNX's one
    bidirectional `LSTM`. The GRU after the LSTMs has their state's width:
    LiteRT's converter makes equal constants one tensor, and the fused LSTM
    writes its state into its initial state's tensor, so a loop that started
    from a constant of zeros of that shape would start from an LSTM's last
    state."""
    keras.utils.set_random_seed(3)
    fixed_batch = [keras.InputSpec(shape=(1, None, FEATURES), dtype="float32")]
    model = keras.Sequential([keras.Input((None, FEATURES)),
                              keras.layers.Bidirectional(kerasrnn.LSTM(6, return_sequences=True)),
                              kerasrnn.GRU(6, return_sequences=True),
                              kerasrnn.LSTM(4)])
    litert_path, onnx_path = export_both(model, tmp_path, litert_signature=fixed_batch)
    ops = runtimes.operators(litert_path)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and "WHILE" in ops  # the GRU's loop
    onnx_model = onnx.load(str(onnx_path))
    assert not {"Loop", "Scan"} & onnx_ops(onnx_path)
    directions = [{a.name: a.s for a in node.attribute}.get("direction", b"forward")
                  for node in onnx_model.graph.node if node.op_type == "LSTM"]
    assert sorted(directions) == [b"bidirectional", b"forward"]  # tf2onnx joins the two
    gru_node = next(n for n in onnx_model.graph.node if n.op_type == "GRU")
    assert {a.name: a.i for a in gru_node.attribute}.get("linear_before_reset") == 1
    assert_runs_like_keras(model, litert_path, onnx_path, sizes=[(1, 1), (1, 28), (1, 500)])


def simple_rnn_branches(sequence):
    """Standard SimpleRNNs two exporters rewrite: stacked (the first read
    backwards, the second returning its last output) and both directions
    of a `Bidirectional`; and one of another activation, which stays a loop."""
    stacked = kerasrnn.SimpleRNN(4)(kerasrnn.SimpleRNN(
        6, return_sequences=True, go_backwards=True)(sequence))
    both = keras.layers.Bidirectional(kerasrnn.SimpleRNN(2))(sequence)
    relu = kerasrnn.SimpleRNN(4, activation="relu")(sequence)
    return [stacked, both, relu]


def test_export_onnx_makes_simple_rnn_onnx_s_rnn(tmp_path):
    """`kerasrnn.export_onnx`: each standard SimpleRNN becomes an ONNX `RNN`
    node (stacked, read backwards, returning its last output, both
    directions of a `Bidirectional`), as does Keras's own SimpleRNN, and a
    SimpleRNN of another activation stays a `Loop`; the file gives Keras's
    answers at every size."""
    keras.utils.set_random_seed(4)
    sequence = keras.Input((None, FEATURES))
    # Keras's own traces the same step; returning only its last output, it
    # writes each step's over the last, which the rewrite leaves a loop.
    keras_own = keras.layers.GlobalAveragePooling1D()(
        keras.layers.SimpleRNN(3, return_sequences=True)(sequence))
    model = keras.Model(sequence, keras.layers.Concatenate()(
        [*simple_rnn_branches(sequence), keras_own]))
    model(inputs(1, 3))  # Keras exports a model that has been called
    path = tmp_path / "m.onnx"
    kerasrnn.export_onnx(model, path, verbose=False)
    kinds = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert kinds.count("RNN") == 5 and kinds.count("Loop") == 1, kinds
    assert_runs_like_keras(model, None, path)


def litert_operator_counts(path):
    """How often each operator occurs in a `.tflite` file, every subgraph's."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {code: name for name, code in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    model = flatbuffer_utils.read_model(str(path))
    codes = [max(code.builtinCode, code.deprecatedBuiltinCode) for code in model.operatorCodes]
    return collections.Counter(names[codes[op.opcodeIndex]]
                               for graph in model.subgraphs for op in graph.operators)


def test_export_litert_makes_simple_rnn_litert_s_sequence_rnn(tmp_path):
    """`kerasrnn.export_litert`: at a fixed batch, each standard SimpleRNN
    becomes LiteRT's `UNIDIRECTIONAL_SEQUENCE_RNN` (stacked, read
    backwards, returning its last output, both directions of a
    `Bidirectional`), and a SimpleRNN of another activation stays a loop;
    batch 1 and batch 7, each file giving Keras's answers at every length,
    call after call."""
    keras.utils.set_random_seed(6)
    sequence = keras.Input((None, FEATURES))
    model = keras.Model(sequence, keras.layers.Concatenate()(simple_rnn_branches(sequence)))
    for weight in model.weights:  # biases too, as a trained layer has them
        weight.assign(np.random.default_rng(7).uniform(-0.5, 0.5, weight.shape))
    for batch in (1, 7):
        path = tmp_path / f"m{batch}.tflite"
        kerasrnn.export_litert(model, path, verbose=False, input_signature=[
            keras.InputSpec(shape=(batch, None, FEATURES), dtype="float32")])
        counts = litert_operator_counts(path)
        assert counts["UNIDIRECTIONAL_SEQUENCE_RNN"] == 4 and counts["WHILE"] == 1, counts
        assert_runs_like_keras(model, path, None,
                               sizes=[(batch, 1), (batch, 28), (batch, 500), (batch, 28)])
    # Written beside the file and renamed: nothing else is left.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1.tflite", "m7.tflite"]


def test_each_call_of_a_fused_lstm_file_starts_from_the_initial_state(tmp_path):
    """LiteRT's fused LSTM keeps its last state in the interpreter; the apps'
    runner (kerasrnn/apps/common/runtimes.py) resets it before each call, so
    that every call answers as Keras does."""
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((None, FEATURES)), kerasrnn.LSTM(6)])
    path = tmp_path / "m.tflite"
    model.export(path, format="litert", verbose=False,
                 input_signature=[keras.InputSpec(shape=(1, None, FEATURES), dtype="float32")])
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in runtimes.operators(path)
    file = runtimes.load(path)
    x = inputs(5, 28, seed=6)  # five calls of one row each, in one interpreter
    np.testing.assert_allclose(file(x), model(x).numpy(), atol=1e-4)
    np.testing.assert_allclose(file(x[2:3]), model(x[2:3]).numpy(), atol=1e-4)


def test_on_a_gpu_the_exports_still_hand_nothing_to_cudnn(tmp_path, monkeypatch):
    """On a GPU the LSTM's and GRU's own calls go to the fused kernel
    (cuDNN); under Keras's exporters they trace the portable forms whatever
    the device, so no file holds a cuDNN op (keras-team/keras #21799).
    Simulated on this CPU: `on_gpu` says yes, and every hand-off to the
    fused kernel is recorded (a plain trace makes them: the control)."""
    from kerasrnn import recurrent

    monkeypatch.setattr(recurrent, "on_gpu", lambda weight: True)
    handed, run_path = [], recurrent.RecurrentLayer.run_path

    def recording(layer, path, *args):
        if path == recurrent.FUSED:
            handed.append(type(layer).__name__)
        return run_path(layer, path, *args)

    monkeypatch.setattr(recurrent.RecurrentLayer, "run_path", recording)
    model = keras.Sequential([keras.Input((None, FEATURES)),
                              kerasrnn.LSTM(4, return_sequences=True), kerasrnn.GRU(4)])
    tf.function(model)(inputs(1, 3))
    assert sorted(handed) == ["GRU", "LSTM"]
    handed.clear()
    litert_path, onnx_path = export_both(model, tmp_path)
    assert handed == []
    ops = runtimes.operators(litert_path) | runtimes.operators(onnx_path)
    assert not [op for op in ops if "cudnn" in op.lower()], ops


def test_other_traces_keep_their_paths(tmp_path, monkeypatch):
    """Outside Keras's LiteRT and ONNX exporters (`predict`, `fit`, a
    SavedModel for TF Serving) the layers run as `choose_paths` says."""
    from kerasrnn import portable

    def refuse(*args):
        raise AssertionError("a trace outside Keras's LiteRT and ONNX exporters")

    model = keras.Sequential([keras.Input((None, FEATURES)), kerasrnn.LSTM(4)])
    model.compile("sgd", "mse")
    monkeypatch.setattr(portable, "run", refuse)
    model.fit(inputs(7, 28), np.zeros((7, 4)), verbose=0)
    model.predict(inputs(7, 28), verbose=0)
    model.export(tmp_path / "saved", format="tf_saved_model", verbose=False)
    with pytest.raises(AssertionError, match="outside"):
        model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
