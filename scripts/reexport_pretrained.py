"""Re-exports a pretrained SavedModel as its next version, same weights, current export code.

    python scripts/reexport_pretrained.py textgen    # saved_models/textgen/N -> N+1
    python scripts/reexport_pretrained.py mnist
    python scripts/reexport_pretrained.py mnist --files onnx litert  # mnist.onnx, .tflite

New signatures (textgen's `activations`, mnist's `rows`) reach the models
that ship with kerasrnn this way, without training them again. The weights
are read from the newest version's variables, loaded into the app's model,
and exported; the script then checks that the new version answers as
the old one does on its own example request (the same text; the same
probabilities to 1e-6). The old versions stay.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasrnn.serving.export import EXAMPLE_REQUEST, latest_version_dir

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "saved_models"


def _load_weights(model, loaded):
    """Sets `model`'s trainable weights from the SavedModel's variables, matched by name."""
    saved = {}
    for function in loaded.signatures.values():
        for variable in function.variables:
            saved[variable.name.removesuffix(":0")] = variable
    for weight in model.trainable_weights:
        # The longest end of its path the SavedModel has: "gru_1/gru_cell/kernel",
        # "layernorm_gru_0/layernormgru_cell/kernel_norm/gamma", "logits/bias".
        parts = weight.path.split("/")
        key = next(k for k in ("/".join(parts[-n:]) for n in range(len(parts), 1, -1))
                   if k in saved)
        weight.assign(saved[key].numpy())


# The pretrained textgen model learnt tiny Shakespeare (docs/results.md), the
# text of tensorflow-datasets' tiny_shakespeare; `inspect` reads its held-out part.
TEXTGEN_SOURCE = {"text": None, "dataset": "tiny_shakespeare"}


def textgen_model(old):
    """The textgen Keras model and vocabulary of a loaded SavedModel."""
    from kerasrnn.apps.textgen.generation import vocabulary
    from kerasrnn.apps.textgen.model import CharacterModel

    vocab = vocabulary(old)
    step = old.signatures["step"]
    units = step.structured_input_signature[1]["state"].shape[2]
    # Each layer's kernel, "[textgen_gru/]gru_0/gru_cell/kernel:0": the
    # component before the cell's names the layer, "<cell>_<index>".
    layer_names = set()
    for variable in step.variables:
        parts = variable.name.split("/")
        if parts[-1] == "kernel:0" and parts[-2].endswith("_cell"):
            layer_names.add(parts[-3])
    cell = next(iter(layer_names)).rsplit("_", 1)[0].replace("_", "-")  # "gru"
    model = CharacterModel(len(vocab), cell, units, len(layer_names))
    _load_weights(model, old)
    return model, vocab


def mnist_model(old):
    """The mnist Keras model of a loaded SavedModel."""
    from kerasrnn.apps.mnist.model import build_model

    names = [v.name for v in old.signatures["serving_default"].variables]
    cell = next(n for n in names if n.endswith("cell/kernel:0")).split("_")[0]
    units = next(v for v in old.signatures["serving_default"].variables
                 if v.name.endswith("cell/recurrent_kernel:0")).shape[0]
    model = build_model(cell, units)
    _load_weights(model, old)
    return model


def textgen(old):
    from kerasrnn.apps.textgen.generation import export

    model, vocab = textgen_model(old)
    return export(model, vocab, BASE, source=TEXTGEN_SOURCE)


def mnist(old):
    from kerasrnn.apps.mnist.model import export

    return export(mnist_model(old), BASE)


def write_files(app, old, request, formats):
    """Writes saved_models/<app>.onnx and .tflite from the SavedModel `old`
    (its weights, the export of `kerasrnn <app> export --format`); returns
    whether each file answers as the SavedModel does on its example request
    (mnist: the probabilities to 1e-4; textgen: every step's, to 1e-4)."""
    from kerasrnn.apps.common import runtimes

    same = True
    for format in formats:
        path = BASE / (app + runtimes.FORMATS[format])
        if app == "mnist":
            import keras

            from kerasrnn.apps.mnist.model import without_augmentation

            batch = 1 if format == "litert" else None
            signature = [keras.InputSpec(shape=(batch, 28, 28), dtype="float32", name="images")]
            runtimes.export(without_augmentation(mnist_model(old)), path, format, signature)
            from kerasrnn.apps.mnist.images import load_digit, sample_digits

            # The example request's digit and the ten sample digits, one call
            # after another (LiteRT's fused LSTM keeps state between calls).
            images = np.concatenate([np.asarray(request["instances"], np.float32),
                                     [load_digit(p)[0] for p in sample_digits()]])
            expected = old.signatures["serving_default"](images=tf.constant(images))
            answers = runtimes.load(path)(images)
            same &= bool(np.allclose(answers, expected["probabilities"], rtol=0, atol=1e-4))
        else:
            from kerasrnn.apps.textgen.generation import StepModel
            from kerasrnn.apps.textgen.sampler import StepFile

            step = StepModel(*textgen_model(old))
            runtimes.export(step, path, format, step.input_signature())
            step_file = StepFile(path)
            state = np.zeros((1, *step_file.state_shape), np.float32)
            saved_state = tf.constant(state)
            for ch in request["inputs"]["prompt"][0]:
                i = step_file.vocab.index(ch)
                logits, state = step_file.step([i], state)
                expected = old.signatures["step"](ids=tf.constant([[i]]), state=saved_state)
                saved_state = expected["state"]
                same &= bool(np.allclose(tf.nn.softmax(logits),
                                         tf.nn.softmax(expected["logits"][:, -1]), atol=1e-4))
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")
    return same


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("app", choices=["textgen", "mnist"])
    parser.add_argument("--files", nargs="+", choices=["onnx", "litert"],
                        help="Write saved_models/APP.onnx or .tflite from the newest version"
                        " instead of a new version (pip install \"kerasrnn[deploy]\").")
    args = parser.parse_args()
    source = latest_version_dir(BASE / args.app)
    old = tf.saved_model.load(str(source))
    if args.files:
        request = json.loads((source / EXAMPLE_REQUEST).read_text())
        same = write_files(args.app, old, request, args.files)
        print(f"{source.relative_to(ROOT)} -> {', '.join(args.files)}; same answers: {same}")
        sys.exit(0 if same else 1)
    new_dir = {"textgen": textgen, "mnist": mnist}[args.app](old)
    new = tf.saved_model.load(str(new_dir))
    request = json.loads((source / EXAMPLE_REQUEST).read_text())
    if args.app == "textgen":
        given = request["inputs"]
        inputs = {"prompt": tf.constant(given["prompt"]),
                  "length": tf.constant(given["length"], tf.int32),
                  "seed": tf.constant(given["seed"], tf.int32),
                  "temperature": tf.constant(given["temperature"], tf.float32)}
        same = (old.signatures["serving_default"](**inputs)["text"].numpy()
                == new.signatures["serving_default"](**inputs)["text"].numpy()).all()
    else:
        images = tf.constant(np.asarray(request["instances"], np.float32))
        # The same weights in another graph: equal up to float rounding.
        same = np.allclose(old.signatures["serving_default"](images=images)["probabilities"],
                           new.signatures["serving_default"](images=images)["probabilities"],
                           rtol=0, atol=1e-6)
    print(f"{source.relative_to(ROOT)} -> {new_dir.relative_to(ROOT)}; same answers: {same}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
