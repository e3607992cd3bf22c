"""`kerasrnn mnist ...`: train, evaluate, plot, predict and export.

Nothing at the top of this module imports Keras or TensorFlow, so that
`--help` answers at once; each command imports what it runs.
"""

from pathlib import Path

import click

from kerasrnn.apps.common import commands, options, quiet, runtimes
from kerasrnn.apps.mnist.config import TrainConfig
from kerasrnn.errors import UserError

DEFAULTS = TrainConfig()
EXPORT_FORMATS = ("saved_model", *runtimes.FORMATS)
MAX_GRID_SIDE = 20  # plot: 20 x 20 digits is the most a page shows legibly


def _data_options(command, test_split_only=False):
    files = "the four MNIST IDX files (train-* and t10k-*)"
    default = "tensorflow-datasets, which downloads once."
    if test_split_only:
        files = "MNIST's two test files (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)"
        default = "for --dataset mnist, MNIST's test split installed with kerasrnn; else " + default
    command = click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        help=f"Folder with {files}, gzipped or not; no network needed. Default: {default}",
    )(command)
    command = click.option(
        "--dataset",
        type=click.Choice(["mnist", "fashion_mnist"]),
        default=DEFAULTS.dataset,
        show_default=True,
        help="tensorflow-datasets dataset, used when --data-dir is not given.",
    )(command)
    return command


def _test_data_options(command):
    return _data_options(command, test_split_only=True)


def _test_split(dataset, data_dir):
    """The test split's images and labels, saying on stderr where they come from."""
    from kerasrnn.apps.mnist import data

    images, labels, origin = data.load_test_split(dataset, data_dir)
    click.echo(f"data: {origin}", err=True)
    return images, labels


@click.group(cls=quiet.Group)
def mnist():
    """Classify MNIST digits read row by row (28 steps of 28 pixels) by an RNN.

    Without --model, each command uses the newest ./saved_models/mnist/N,
    else the pretrained model installed with the package.

    \b
    Examples:
      kerasrnn mnist predict                  # the ten sample digits
      kerasrnn mnist predict my_digit.png
      kerasrnn mnist train --epochs 5         # train, test and export a model
      kerasrnn mnist plot --out grid.png
      kerasrnn mnist explain --index 0 --out rows.png
    """


@mnist.command()
@options.cell(DEFAULTS.cell)
@click.option("--units", type=options.UNITS, default=DEFAULTS.units, show_default=True,
              help="Units of each recurrent layer.")
@click.option("--layers", type=click.IntRange(1, 4), default=DEFAULTS.layers, show_default=True,
              help="Stacked recurrent layers.")
@click.option("--bidirectional", is_flag=True, help="Read the rows in both directions.")
@click.option("--dropout", type=options.FiniteFloatRange(0, 1, max_open=True),
              default=DEFAULTS.dropout,
              show_default=True, help="Input and recurrent dropout of every layer.")
@click.option("--augment/--no-augment", default=DEFAULTS.augment, show_default=True,
              help="Random small rotations, shifts and zooms of the training digits.")
@click.option("--epochs", type=options.EPOCHS, default=DEFAULTS.epochs, show_default=True)
@click.option("--batch-size", type=options.BATCH_SIZE, default=DEFAULTS.batch_size,
              show_default=True, help="Global batch size (split across replicas).")
@click.option("--lr", type=options.FiniteFloatRange(min=0, min_open=True), default=DEFAULTS.lr,
              show_default=True, help="Adam learning rate.")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default=DEFAULTS.schedule,
              show_default=True, help="Learning rate over the run: constant, or cosine to 0.")
@click.option("--val-fraction", type=options.FiniteFloatRange(0, 1, min_open=True, max_open=True),
              default=DEFAULTS.val_fraction, show_default=True,
              help="Part of the training data held out for validation.")
@_data_options
@options.seed(DEFAULTS.seed)
@options.run_folders("mnist")
@click.option("--logdir", type=click.Path(path_type=Path), help="Write TensorBoard logs here.")
@options.strategy()
@click.option("--jit/--no-jit", default=False, show_default=True,
              help="Compile the training step with XLA: faster on a CPU (see docs/speed.md),"
              " but TensorFlow's ops are then not made deterministic.")
def train(resume, restart, workdir, out, logdir, strategy, jit, **config):
    """Train a classifier, keep its best epoch, test it, and export a SavedModel.

    Defaults are the classic TensorFlow example's: one LSTM of 128 units,
    Adam 1e-3, batch 128; with a cosine learning-rate decay over 30 epochs,
    dropout 0.1 and small random shifts, rotations and zooms of the training
    digits. The best epoch by validation accuracy is kept. Every folder the
    run writes is checked before training starts; a killed run continues
    with --resume.

    \b
    Example:
      kerasrnn mnist train --data-dir ./mnist-idx --epochs 5
    """
    from kerasrnn.apps.mnist.train import run

    commands.run_training(run, TrainConfig(**config), resume=resume, restart=restart,
                          workdir=workdir, out=out, logdir=logdir, strategy=strategy, jit=jit)


@mnist.command()
@options.model("mnist")
@_test_data_options
def evaluate(model_path, dataset, data_dir):
    """Loss, accuracy, per-class accuracy and confusion matrix on the test split.

    The model is a SavedModel folder or a .keras file; by default the newest
    ./saved_models/mnist/N, else the pretrained model installed with kerasrnn.

    \b
    Example:
      kerasrnn mnist evaluate --data-dir ./mnist-idx
    """
    import numpy as np

    from kerasrnn.apps.mnist import data
    from kerasrnn.apps.mnist.model import load_classifier

    images, labels = _test_split(dataset, data_dir)
    classifier = load_classifier(model_path)
    probabilities = classifier.predict(data.to_float(images))
    predictions = probabilities.argmax(axis=-1)
    picked = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.log(np.clip(picked, 1e-7, 1.0)).mean())
    accuracy = float((predictions == labels).mean())
    click.echo(f"test digits: {len(labels):,}")
    click.echo(f"loss: {loss:.4f}")
    click.echo(f"accuracy: {accuracy:.2%}")
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    click.echo("per-class accuracy:")
    for digit in range(10):
        total = confusion[digit].sum()
        share = confusion[digit, digit] / total if total else float("nan")
        click.echo(f"  {digit}: {share:.2%} of {total}")
    click.echo("confusion matrix (rows: label, columns: prediction):")
    click.echo("      " + "".join(f"{d:>6}" for d in range(10)))
    for digit in range(10):
        click.echo(f"  {digit:>2}  " + "".join(f"{n:>6}" for n in confusion[digit]))


@mnist.command()
@options.model("mnist")
@_test_data_options
@click.option("--rows", type=click.IntRange(1, MAX_GRID_SIDE), default=3, show_default=True)
@click.option("--cols", type=click.IntRange(1, MAX_GRID_SIDE), default=5, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the first test digit shown.")
@options.png_out("grid.png")
def plot(model_path, dataset, data_dir, rows, cols, offset, out):
    """Draw test digits titled `label=L, pred=P`, wrong predictions in red.

    At most 20 x 20 digits; use --offset to page through the test split.

    \b
    Example:
      kerasrnn mnist plot --data-dir ./mnist-idx --rows 3 --cols 5 --out grid.png
    """
    from kerasrnn.apps.common.run_folder import check_writable
    from kerasrnn.apps.mnist import data
    from kerasrnn.apps.mnist.model import load_classifier
    from kerasrnn.apps.mnist.plot import prediction_grid

    check_writable(out.parent, "--out")
    images, labels = _test_split(dataset, data_dir)
    chosen = slice(offset, offset + rows * cols)
    images, labels = data.to_float(images[chosen]), labels[chosen]
    if len(images) == 0:
        raise UserError(f"--offset {offset} is past the last test digit")
    classifier = load_classifier(model_path)
    predictions = classifier.predict(images).argmax(axis=-1)
    path = prediction_grid(images, labels, predictions, rows, cols, out)
    wrong = int((predictions != labels).sum())
    click.echo(f"wrote {path}: {len(labels)} digits, {wrong} wrong")


@mnist.command()
@options.model("mnist", exported=True)
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@quiet.without_tensorflow(lambda model_path, **_: runtimes.is_exported_file(model_path))
def predict(model_path, images):
    """Print the predicted class and its probability for each IMAGE file.

    Without IMAGE, reads the ten real MNIST test digits installed with
    kerasrnn (in kerasrnn/apps/mnist/samples/, named test_<index>_label_<L>.png).
    Images that are not 28x28 gray digits on black are converted (transparent
    parts filled, to gray, resized, inverted if the background is light),
    with a note saying so. Given an .onnx or .tflite file (`kerasrnn mnist
    export --format`), runs it on onnxruntime or LiteRT, without TensorFlow.

    \b
    Examples:
      kerasrnn mnist predict my_digit.png
      kerasrnn mnist predict --model saved_models/mnist.onnx
      kerasrnn mnist predict --model onnx     # the pretrained model, as ONNX
    """
    import numpy as np

    from kerasrnn.apps.mnist.images import load_digit, sample_digits

    images = images or sample_digits()
    loaded = [load_digit(path) for path in images]  # all errors before the model loads
    if runtimes.is_exported_file(model_path):
        classifier = _ExportedClassifier(runtimes.exported_file("mnist", model_path))
    else:
        from kerasrnn.apps.mnist.model import load_classifier

        classifier = load_classifier(model_path)
    probabilities = classifier.predict(np.stack([pixels for pixels, _ in loaded]))
    for path, (_, notes), p in zip(images, loaded, probabilities, strict=True):
        for note in notes:
            click.echo(f"note: {path}: {note}", err=True)
        click.echo(f"{path}: {int(p.argmax())} (probability {float(p.max()):.3f})")


class _ExportedClassifier:
    """An ONNX or LiteRT file of the classifier, `predict(images)` as the
    SavedModel's (kerasrnn/apps/mnist/model.py), without TensorFlow."""

    def __init__(self, path):
        self.model = runtimes.load(path)
        if tuple(self.model.input_shape[1:]) != (28, 28):
            raise UserError(f"{path}: not an mnist model (its input is"
                            f" {self.model.input_shape}, not 28x28 images)")

    def predict(self, images):
        import numpy as np

        return self.model(np.asarray(images, np.float32))


def _export_run(workdir, out, format):
    from kerasrnn.apps.mnist.train import export_run

    export_run(workdir, out, format=format)


mnist.add_command(commands.export_command("mnist", _export_run, formats=EXPORT_FORMATS))


def _explain_usage(images, indices, **_):
    if bool(images) == bool(indices):
        raise click.UsageError("give IMAGE files or --index N, one of the two")
    if len(images) + len(indices) > 12:
        raise click.UsageError("at most 12 digits in one figure")


@mnist.command()
@options.model("mnist")
@_test_data_options
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--index", "indices", type=click.IntRange(min=0), multiple=True,
              help="A test digit by its index in the test split (repeatable).")
@options.png_out("explain.png")
@quiet.precheck(_explain_usage)
def explain(model_path, dataset, data_dir, images, indices, out):
    """Show what the classifier believes after each row it reads.

    For each digit (IMAGE files, or test digits by --index), the image
    beside the class probabilities after each of the 28 rows (the model's
    own output layer applied to its state after that row) and the hidden
    state over the rows. Prints the row from which the answer stays final.
    At most 12 digits.

    \b
    Example:
      kerasrnn mnist explain --data-dir ./mnist-idx --index 0 --index 8 --out explain.png
    """
    import numpy as np
    import tensorflow as tf

    from kerasrnn.apps.common import model_lookup
    from kerasrnn.apps.common.run_folder import check_writable
    from kerasrnn.apps.mnist import data
    from kerasrnn.apps.mnist.explain import explain_figure, settled_after
    from kerasrnn.apps.mnist.images import load_digit
    from kerasrnn.apps.mnist.model import MODEL_NAME

    check_writable(out.parent, "--out")
    if images:
        pixels = np.stack([load_digit(path)[0] for path in images])
        titles = [str(path.name) for path in images]
    else:
        test_images, labels = _test_split(dataset, data_dir)
        if max(indices) >= len(test_images):
            raise UserError(f"--index {max(indices)}: the test split has {len(test_images)}"
                            " digits")
        pixels = data.to_float(test_images[list(indices)])
        titles = [f"test digit {i}, label {labels[i]}" for i in indices]
    path = model_lookup.resolve(MODEL_NAME, model_path)
    loaded = model_lookup.load_saved_model(path)
    if "rows" not in loaded.signatures:
        if any(v.name.startswith("bidirectional")
               for v in loaded.signatures["serving_default"].variables):
            raise UserError(f"{path}: a bidirectional model reads every row, both ways, before"
                            " it answers: it has no answer after each row to show")
        raise UserError(f"{path}: no `rows` signature (an export of an older kerasrnn):"
                        " export its run again with `kerasrnn mnist export`")
    rows = loaded.signatures["rows"](images=tf.constant(pixels))
    probabilities, hidden = rows["probabilities"].numpy(), rows["hidden"].numpy()
    for title, p in zip(titles, probabilities, strict=True):
        click.echo(f"{title}: answers {int(p[-1].argmax())} ({float(p[-1].max()):.3f}),"
                   f" settled after row {settled_after(p)} of 28")
    explain_figure(pixels, titles, probabilities, hidden, out)
    click.echo(f"wrote {out}")
