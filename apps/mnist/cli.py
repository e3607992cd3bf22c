"""`kerasrnn mnist ...`: train, evaluate, plot and predict.

The training program reads top to bottom: data, model, callbacks, fit,
best weights, test accuracy, `.keras` file, SavedModel.
"""

from pathlib import Path

import click

from kerasrnn.errors import UserError
from kerasrnn.export import DEFAULT_BASE_DIR

CELL_CHOICES = ("lstm", "gru", "rnn")


def _data_options(command):
    command = click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        help="Folder with the four MNIST IDX files (gzipped or not); no network needed.",
    )(command)
    command = click.option(
        "--dataset",
        type=click.Choice(["mnist", "fashion_mnist"]),
        default="mnist",
        show_default=True,
        help="tensorflow-datasets dataset, used when --data-dir is not given.",
    )(command)
    return command


def _model_option(command):
    return click.option(
        "--model",
        "model_path",
        type=click.Path(path_type=Path),
        help="A .keras file or a SavedModel folder. Default: the newest saved_models/mnist/N.",
    )(command)


@click.group()
def mnist():
    """Classify MNIST digits read row by row (28 steps of 28 pixels) by an RNN."""


@mnist.command()
@click.option("--cell", type=click.Choice(CELL_CHOICES), default="lstm", show_default=True,
              help="Recurrent cell.")
@click.option("--units", type=click.IntRange(min=1), default=128, show_default=True,
              help="Units of each recurrent layer.")
@click.option("--layers", type=click.IntRange(1, 4), default=1, show_default=True,
              help="Stacked recurrent layers.")
@click.option("--bidirectional", is_flag=True, help="Read the rows in both directions.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1,
              show_default=True, help="Input and recurrent dropout of every layer.")
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Random small rotations, shifts and zooms of the training digits.")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Global batch size (split across replicas).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3,
              show_default=True, help="Adam learning rate.")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="cosine",
              show_default=True, help="Learning rate over the run: constant, or cosine to 0.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.1, show_default=True,
              help="Part of the training data held out for validation.")
@_data_options
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of data order, initial weights, dropout and augmentation.")
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run in --workdir from its last finished epoch.")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("runs/mnist"),
              show_default=True, help="Backups, best weights, history.csv and model.keras.")
@click.option("--logdir", type=click.Path(path_type=Path), help="Write TensorBoard logs here.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_BASE_DIR,
              show_default=True, help="Export the SavedModel to OUT/mnist/<next version>.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]),
              default="default", show_default=True,
              help="tf.distribute strategy: one device, all local GPUs, or TF_CONFIG's hosts.")
@click.option("--jit/--no-jit", default=False, show_default=True,
              help="Compile the training step with XLA: faster here (about 1.4x on CPU),"
              " but TensorFlow's ops are then not made deterministic.")
def train(**options):
    """Train a classifier, keep its best epoch, test it, and export a SavedModel.

    Defaults are the classic TensorFlow example's: one LSTM of 128 units,
    Adam 1e-3, batch 128; with, here, a cosine learning-rate decay over 30
    epochs, dropout 0.1 and small random shifts, rotations and zooms of the
    training digits. The best epoch by validation accuracy is kept.
    """
    from kerasrnn.apps.mnist.train import run
    from kerasrnn.distribute import worker_failures_as_errors

    with worker_failures_as_errors():
        run(**options)


@mnist.command()
@_model_option
@_data_options
def evaluate(model_path, dataset, data_dir):
    """Loss, accuracy, per-class accuracy and confusion matrix on the test split."""
    import numpy as np

    from kerasrnn.apps.mnist import data
    from kerasrnn.apps.mnist.model import load_classifier

    classifier = load_classifier(model_path)
    images, labels = data.load("test", dataset, data_dir)
    probabilities = classifier.predict(data.to_float(images))
    predictions = probabilities.argmax(axis=-1)
    picked = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.log(np.clip(picked, 1e-7, 1.0)).mean())
    accuracy = float((predictions == labels).mean())
    click.echo(f"model: {classifier.description}")
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
@_model_option
@_data_options
@click.option("--rows", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--cols", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the first test digit shown.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("grid.png"), show_default=True, help="PNG file to write.")
def plot(model_path, dataset, data_dir, rows, cols, offset, out):
    """Draw test digits titled `label=L, pred=P`, wrong predictions in red."""
    from kerasrnn.apps.mnist import data
    from kerasrnn.apps.mnist.model import load_classifier
    from kerasrnn.apps.mnist.plot import prediction_grid

    classifier = load_classifier(model_path)
    images, labels = data.load("test", dataset, data_dir)
    chosen = slice(offset, offset + rows * cols)
    images, labels = data.to_float(images[chosen]), labels[chosen]
    if len(images) == 0:
        raise UserError(f"--offset {offset} is past the last test digit")
    predictions = classifier.predict(images).argmax(axis=-1)
    path = prediction_grid(images, labels, predictions, rows, cols, out)
    wrong = int((predictions != labels).sum())
    click.echo(f"wrote {path}: {len(labels)} digits, {wrong} wrong")


@mnist.command()
@_model_option
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
def predict(model_path, images):
    """Print the predicted class and its probability for each image file.

    Images that are not 28x28 gray digits on black are converted (to gray,
    resized, inverted if the background is light), with a note saying so.
    """
    import numpy as np

    from kerasrnn.apps.mnist.images import load_digit
    from kerasrnn.apps.mnist.model import load_classifier

    loaded = [load_digit(path) for path in images]  # all errors before the model loads
    classifier = load_classifier(model_path)
    probabilities = classifier.predict(np.stack([pixels for pixels, _ in loaded]))
    for path, (_, notes), p in zip(images, loaded, probabilities, strict=True):
        for note in notes:
            click.echo(f"note: {path}: {note}", err=True)
        click.echo(f"{path}: {int(p.argmax())} (probability {float(p.max()):.3f})")

