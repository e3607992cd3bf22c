"""The row-by-row classifier: 28 rows of 28 pixels -> recurrent layer(s) -> 10 classes.

The model ends in a softmax, so its outputs are the class probabilities that
the SavedModel serves. `load_classifier` opens either a `.keras` file or a
SavedModel folder behind the same `predict(images) -> probabilities` method.
"""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasrnn.export import DEFAULT_BASE_DIR, latest_version_dir
from kerasrnn.training import CELLS, UserError

MODEL_NAME = "mnist"


def build_model(cell="lstm", units=128, layers=1, bidirectional=False, dropout=0.0,
                augment=False, seed=None):
    """The classifier, uncompiled.

    Args:
        cell: "lstm", "gru" or "rnn": which of our cells reads the rows.
        units: Size of each recurrent layer's state.
        layers: How many recurrent layers are stacked (all but the last
            return their whole sequence to the next).
        bidirectional: Read the rows top-down and bottom-up, concatenated.
        dropout: Dropout on each recurrent layer's input and recurrent state,
            and before the classifier.
        augment: Randomly rotate, shift and zoom the digits a little while
            training (the layers do nothing at inference). Inside the model,
            their random state is saved with the weights, so a resumed run
            draws the same augmentations as an uninterrupted one.
        seed: Seed of the dropout masks and the augmentation.
    """
    cell_class = CELLS[cell]
    inputs = keras.Input((28, 28), name="images")
    h = inputs
    if augment:
        h = keras.layers.Reshape((28, 28, 1))(h)
        h = keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed)(h)
        h = keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed)(h)
        h = keras.layers.RandomZoom(0.08, fill_mode="constant", seed=seed)(h)
        h = keras.layers.Reshape((28, 28))(h)
    for i in range(layers):
        recurrent = keras.layers.RNN(
            cell_class(units, dropout=dropout, recurrent_dropout=dropout, seed=seed),
            return_sequences=i < layers - 1,
            name=f"{cell}_{i}",
        )
        if bidirectional:
            recurrent = keras.layers.Bidirectional(recurrent, name=f"bidirectional_{i}")
        h = recurrent(h)
    if dropout:
        h = keras.layers.Dropout(dropout, seed=seed)(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(h)
    return keras.Model(inputs, outputs, name=f"mnist_{cell}")


def export(model, base_dir=DEFAULT_BASE_DIR, example_images=None):
    """Writes the next `saved_models/mnist/<N>/` version for TF Serving; returns its path.

    Signature `serving_default`: `images` float32 `[batch, 28, 28]` (pixels
    0-1) -> `probabilities` float32 `[batch, 10]`, `classes` int64 `[batch]`.
    """
    from kerasrnn.export import export_version

    def serve(images):
        probabilities = model(images, training=False)
        return {"probabilities": probabilities, "classes": tf.argmax(probabilities, axis=-1)}

    def write(path):
        # No archive.track(model): the endpoints capture the weights they use,
        # and tracking the model as well stores every weight twice (Keras
        # issue #23553: twice the size on disk and in TF Serving's memory).
        archive = keras.export.ExportArchive()
        archive.add_endpoint(
            "serving_default",
            serve,
            input_signature=[tf.TensorSpec([None, 28, 28], tf.float32, name="images")],
        )
        archive.write_out(path, verbose=False)

    request = None
    if example_images is not None:
        # Two decimals keep the README's example request readable.
        request = {"instances": np.round(np.asarray(example_images, np.float64), 2).tolist()}
    return export_version(write, MODEL_NAME, base_dir=base_dir, example_request=request)


class _KerasClassifier:
    def __init__(self, path):
        self.model = keras.saving.load_model(path)
        self.description = f"{path} ({self.model.count_params():,} parameters)"

    def predict(self, images, batch_size=512):
        return self.model.predict(images, batch_size=batch_size, verbose=0)


class _SavedModelClassifier:
    def __init__(self, path):
        self.function = tf.saved_model.load(str(path)).signatures["serving_default"]
        self.description = str(path)

    def predict(self, images, batch_size=512):
        parts = [
            self.function(images=tf.constant(images[i : i + batch_size]))["probabilities"].numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)


def default_model_path(base_dir=DEFAULT_BASE_DIR):
    """The newest version under `saved_models/mnist`."""
    newest = latest_version_dir(Path(base_dir) / MODEL_NAME)
    if newest is None:
        raise UserError(
            f"no model under {Path(base_dir) / MODEL_NAME}: train one (kerasrnn mnist train)"
            " or pass --model PATH"
        )
    return newest


def load_classifier(path=None):
    """A `.keras` file or a SavedModel folder (default: the newest exported version)."""
    path = Path(path) if path is not None else default_model_path()
    if path.is_file() and path.suffix == ".keras":
        try:
            return _KerasClassifier(path)
        except Exception as error:
            raise UserError(f"{path}: cannot load this .keras file ({error})") from None
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _SavedModelClassifier(path)
    if path.is_dir() and latest_version_dir(path) is not None:  # a model folder: its newest
        return _SavedModelClassifier(latest_version_dir(path))
    raise UserError(f"{path}: not a .keras file or a SavedModel folder")
