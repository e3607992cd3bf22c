"""What Keras's `model.export(format="litert" | "onnx")` writes for each layer.

For Keras's own LSTM, GRU and SimpleRNN and for every kerasrnn layer, one
model `Input((None, 5)) -> layer(8)` is exported both ways; the table gives
the recurrent operators of each file (LiteRT: every subgraph's builtin
operators that run the recurrence, and any Flex op; ONNX: `LSTM`, `GRU`,
`RNN`, `Loop`) and whether the file runs in its runtime (LiteRT's Python
interpreter, onnxruntime on the CPU) and agrees with Keras. With
`--fixed-batch`, the LiteRT files are exported for a batch of 1 (LiteRT's
fused LSTM needs a batch fixed when converting). The files of kerasrnn's
layers are written by `kerasrnn.export_litert` and `kerasrnn.export_onnx`
(Keras's export, with the rewrites that make `SimpleRNN` LiteRT's
`UNIDIRECTIONAL_SEQUENCE_RNN` at a fixed batch and ONNX's `RNN`), and the
SimpleRNN's once more by `model.export`; Keras's layers' by
`model.export`.

    pip install "kerasrnn[deploy]"
    python benchmarks/export_ops.py [--fixed-batch]
"""

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RECURRENT = {"UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM",
             "UNIDIRECTIONAL_SEQUENCE_RNN", "WHILE", "LSTM", "GRU", "RNN", "Loop", "Scan"}
KERASRNN = ["SimpleRNN", "LSTM", "GRU", "LayerNormSimpleRNN", "LayerNormLSTM", "LayerNormGRU",
            "PeepholeLSTM", "MinGRU", "MinLSTM"]


def run_litert(path, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def run_onnx(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def row(label, model, folder, fixed_batch, export_litert, export_onnx):
    import keras
    import numpy as np
    import onnx

    from kerasrnn.apps.common.runtimes import operators

    x = np.random.default_rng(0).uniform(-1, 1, (1, 28, 5)).astype("float32")
    expected = model(x).numpy()
    cells = [label]
    signature = ([keras.InputSpec(shape=(1, None, 5), dtype="float32")] if fixed_batch
                 else None)
    path = folder / "m.tflite"
    try:
        export_litert(model, path, verbose=False, input_signature=signature)
        ops = {op.removeprefix("CUSTOM:") for op in operators(path)}
        shown = sorted(op for op in ops if op in RECURRENT or op.startswith("Flex"))
        try:
            error = float(np.abs(run_litert(path, x) - expected).max())
            verdict = f"runs, max error {error:.1e}"
        except Exception as e:  # the interpreter's own message, first line
            verdict = "does not run: " + str(e).splitlines()[0][:60]
        cells += [", ".join(shown), verdict]
    except Exception as e:
        cells += ["export fails: " + str(e).splitlines()[0][:60], ""]
    path = folder / "m.onnx"
    try:
        export_onnx(model, path, verbose=False)
        onnx.checker.check_model(onnx.load(str(path)))
        ops = operators(path)
        error = float(np.abs(run_onnx(path, x) - expected).max())
        cells += [", ".join(sorted(ops & RECURRENT)), f"runs, max error {error:.1e}"]
    except Exception as e:
        cells += ["export fails: " + str(e).splitlines()[0][:60], ""]
    return cells


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixed-batch", action="store_true",
                        help="export the LiteRT files for a batch of 1")
    args = parser.parse_args()
    try:
        import ai_edge_litert  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as error:
        sys.exit(f'{error.name} is not installed: pip install "kerasrnn[deploy]"')
    warnings.filterwarnings("ignore")
    import keras
    import tensorflow as tf

    import kerasrnn

    def keras_export(format):
        return lambda model, path, **kwargs: model.export(path, format=format, **kwargs)

    keras_exports = (keras_export("litert"), keras_export("onnx"))
    layers = [(f"keras.layers.{name}", getattr(keras.layers, name), keras_exports)
              for name in ("LSTM", "GRU", "SimpleRNN")]
    layers += [(f"kerasrnn.{name}", getattr(kerasrnn, name),
                (kerasrnn.export_litert, kerasrnn.export_onnx)) for name in KERASRNN]
    # kerasrnn.SimpleRNN once more, right after its own row (the fourth):
    # the one layer kerasrnn's exports and Keras's write differently.
    layers.insert(4, ("kerasrnn.SimpleRNN, model.export", kerasrnn.SimpleRNN, keras_exports))
    print(f"Keras {keras.__version__}, TensorFlow {tf.__version__}; LiteRT batch: "
          f"{'1 (fixed)' if args.fixed_batch else 'any'}\n")
    print("| layer | LiteRT operators | LiteRT | ONNX operators | ONNX |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for label, layer, exports in layers:
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((None, 5)), layer(8)])
            cells = row(label, model, Path(folder), args.fixed_batch, *exports)
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
