"""The row-by-row classifier: 28 rows of 28 pixels -> recurrent layer(s) -> 10 classes.

The model ends in a softmax, so its outputs are the class probabilities that
the SavedModel serves. `load_classifier` opens either a `.keras` file or a
SavedModel folder behind the same `predict(images) -> probabilities` method.
"""

import keras
import numpy as np
import tensorflow as tf

from kerasrnn.apps.common import model_lookup
from kerasrnn.apps.common.choices import MINIMAL_CELLS, keras_name, layer_class
from kerasrnn.errors import UserError
from kerasrnn.serving.export import DEFAULT_BASE_DIR, export_version

MODEL_NAME = "mnist"


def build_model(cell="lstm", units=128, layers=1, bidirectional=False, dropout=0.0,
                augment=False, seed=None):
    """The classifier, uncompiled.

    Args:
        cell: Which of our cells reads the rows: a `--cell` name
            (kerasrnn.apps.common.choices.CELLS).
        units: Size of each recurrent layer's state.
        layers: How many recurrent layers are stacked (all but the last
            return their whole sequence to the next).
        bidirectional: Read the rows top-down and bottom-up, concatenated.
        dropout: Dropout on each recurrent layer's input and recurrent state (the
            minimal cells have no recurrent weights: their input only),
            and before the classifier.
        augment: Randomly rotate, shift and zoom the digits a little while
            training (the layers do nothing at inference). Inside the model,
            their random state is saved with the weights, so a resumed run
            draws the same augmentations as an uninterrupted one.
        seed: Seed of the dropout masks and the augmentation.
    """
    inputs = keras.Input((28, 28), name="images")
    h = inputs
    if augment:
        h = keras.layers.Reshape((28, 28, 1))(h)
        h = keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed)(h)
        h = keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed)(h)
        h = keras.layers.RandomZoom(0.08, fill_mode="constant", seed=seed)(h)
        h = keras.layers.Reshape((28, 28))(h)
    for i in range(layers):
        # The library's layer, not keras.layers.RNN over its cell: its fast
        # paths train the model, and its export to LiteRT and ONNX becomes
        # the runtimes' own operators (kerasrnn/portable.py).
        recurrent = layer_class(cell)(
            units, dropout=dropout, seed=seed,
            # the minimal cells have no recurrent weights to drop
            **({} if cell in MINIMAL_CELLS else {"recurrent_dropout": dropout}),
            return_sequences=i < layers - 1,
            name=f"{keras_name(cell)}_{i}",
        )
        if bidirectional:
            recurrent = keras.layers.Bidirectional(recurrent, name=f"bidirectional_{i}")
        h = recurrent(h)
    if dropout:
        h = keras.layers.Dropout(dropout, seed=seed)(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="probabilities")(h)
    return keras.Model(inputs, outputs, name=f"mnist_{keras_name(cell)}")


def without_augmentation(model):
    """The classifier without its augmentation layers, sharing its weights.

    They do nothing at inference, but Keras still traces their random ops,
    for which ONNX and LiteRT have no operator. The model is a plain stack
    (`build_model`), so the rest is the same model.
    """
    augmentation = (keras.layers.Reshape, keras.layers.RandomRotation,
                    keras.layers.RandomTranslation, keras.layers.RandomZoom)
    inputs = keras.Input((28, 28), name="images")
    h = inputs
    for layer in model.layers[1:]:
        if not isinstance(layer, augmentation):
            h = layer(h)
    return keras.Model(inputs, h, name=model.name)


def export(model, base_dir=DEFAULT_BASE_DIR, example_images=None):
    """Writes the next `saved_models/mnist/<N>/` version for TF Serving; returns its path.

    Signature `serving_default`: `images` float32 `[batch, 28, 28]` (pixels
    0-1) -> `probabilities` float32 `[batch, 10]`, `classes` int64 `[batch]`.
    Signature `rows` (models that read the rows in one direction): `images`
    -> `probabilities` `[batch, 28, 10]` and `hidden` `[batch, 28, units]`,
    what the model believes after each row (see `row_by_row`).
    `example_images` become the REST request that `kerasrnn serving check`
    sends (default: the first sample digit installed with kerasrnn).
    """
    if example_images is None:
        from kerasrnn.apps.mnist.images import load_digit, sample_digits

        example_images = load_digit(sample_digits()[0])[0][None]

    def serve(images):
        probabilities = model(images, training=False)
        return {"probabilities": probabilities, "classes": tf.argmax(probabilities, axis=-1)}

    read_rows = row_by_row(model)

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
        if read_rows is not None:
            archive.add_endpoint(
                "rows",
                read_rows,
                input_signature=[tf.TensorSpec([None, 28, 28], tf.float32, name="images")],
            )
        archive.write_out(path, verbose=False)

    # Two decimals keep the documented example request readable.
    request = {"instances": np.round(np.asarray(example_images, np.float64), 2).tolist()}
    return export_version(write, MODEL_NAME, base_dir=base_dir, example_request=request)


def row_by_row(model):
    """A function `images -> {"probabilities", "hidden"}` after each row, or None.

    The last recurrent layer's cell is run row by row, and the model's own
    output layer is applied to its state after each row: what the classifier
    would answer had the digit ended there (`kerasrnn mnist explain`). Only
    for models that read the rows top-down alone: a bidirectional layer has
    read every row before it answers anything.
    """
    recurrent = [layer for layer in model.layers
                 if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))]
    if not recurrent or any(isinstance(r, keras.layers.Bidirectional) for r in recurrent):
        return None
    *below, last = recurrent
    head = model.get_layer("probabilities")

    def read(images):
        h = images
        for layer in below:  # they return their whole sequences
            h = layer(h, training=False)
        cell = last.cell
        states = cell.get_initial_state(tf.shape(h)[0])
        hidden = []
        for row in range(h.shape[1]):  # 28 steps, unrolled when traced
            output, states = cell(h[:, row], states, training=False)
            hidden.append(output)
        hidden = tf.stack(hidden, axis=1)
        return {"probabilities": head(hidden), "hidden": hidden}

    return read


class _KerasClassifier:
    def __init__(self, path):
        try:
            self.model = keras.saving.load_model(path)
        except Exception as error:  # Keras raises many types for a bad file
            raise UserError(f"{path}: cannot load this .keras file ({error})") from None
        if tuple(self.model.input_shape[1:]) != (28, 28):
            raise UserError(f"{path}: not an mnist model (its input is"
                            f" {self.model.input_shape}, not 28x28 images)")
        self.description = f"{path} ({self.model.count_params():,} parameters)"

    def predict(self, images, batch_size=512):
        return self.model.predict(images, batch_size=batch_size, verbose=0)


class _SavedModelClassifier:
    def __init__(self, path):
        loaded = model_lookup.load_saved_model(path)
        function = loaded.signatures.get("serving_default")
        inputs = function.structured_input_signature[1] if function is not None else {}
        if set(inputs) != {"images"}:
            raise UserError(f"{path}: not an mnist SavedModel (its serving_default takes"
                            f" {sorted(inputs) or 'nothing'}, not images)")
        self.function = function
        self.loaded = loaded  # keeps the function's variables alive
        self.description = str(path)

    def predict(self, images, batch_size=512):
        parts = [
            self.function(images=tf.constant(images[i : i + batch_size]))["probabilities"].numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 10), np.float32)


def load_classifier(path=None):
    """A `.keras` file or a SavedModel folder, or the default model (see model_lookup)."""
    path = model_lookup.resolve(MODEL_NAME, path)
    if path.is_file() and path.suffix == ".keras":
        return _KerasClassifier(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _SavedModelClassifier(path)
    raise UserError(f"{path}: not a .keras file or a SavedModel folder")
