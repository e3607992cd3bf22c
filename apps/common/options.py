"""The click options both apps' commands share, written once.

Each function returns a decorator. Nothing here imports Keras or TensorFlow:
`--help` must answer at once.
"""

import math
from pathlib import Path

import click

from kerasrnn.apps.common.choices import CELLS, STRATEGIES


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` that also refuses nan and ±inf.

    nan passes every bound (each comparison with it is false), so
    `--minutes nan` would silently remove the time limit.
    """

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


def _png_path(ctx, param, path):
    """`--out` of a PNG figure: NAME gets `.png`; another suffix is refused
    now, not after the work (matplotlib picks the format by the suffix)."""
    if path.suffix == "":
        return path.with_name(path.name + ".png")
    if path.suffix.lower() != ".png":
        raise click.BadParameter(f"{path}: a PNG file name is needed (.png)", ctx, param)
    if len(path.name.encode()) > 255:  # longer than any file system takes
        raise click.BadParameter(f"the file name is too long ({len(path.name)} characters)",
                                 ctx, param)
    return path


def png_out(default):
    return click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                        default=Path(default), show_default=True, callback=_png_path,
                        help="PNG file to write (.png is added to a name without a suffix).")


def cell(default, default_help=""):
    """`--cell`; with `default` None, `default_help` says what the default is."""
    return click.option("--cell", type=click.Choice(list(CELLS)), default=default,
                        show_default=default is not None,
                        help="Recurrent cell: the classic LSTM, GRU or SimpleRNN, their"
                        " layer-normalized forms, the peephole LSTM, or the minimal GRU and"
                        " LSTM (gates from the input alone)."
                        + (f" {default_help}" if default_help else ""))


SEED_RANGE = click.IntRange(0, 2**32 - 1)  # what NumPy's and TensorFlow's seeding accept
# Sizes and counts, bounded by click before TensorFlow starts: far past what
# a model or a run can use, and short of the int32 and int64 shapes and step
# counts a larger number overflows in TensorFlow and Keras (a traceback).
UNITS = click.IntRange(1, 2**20)
BATCH_SIZE = click.IntRange(1, 2**20)
SEQ_LEN = click.IntRange(1, 2**20)
EPOCHS = click.IntRange(1, 10**6)
COUNT = click.IntRange(1, 10**6)  # --num, --random-windows


def seed(default=0):
    return click.option("--seed", type=SEED_RANGE, default=default, show_default=True,
                        help="Seed of the data order, initial weights and dropout.")


def model(app, exported=False):
    """--model; `exported`: the command also runs ONNX and LiteRT files."""
    files = (" An .onnx or .tflite file (`kerasrnn {app} export --format`) runs on"
             " onnxruntime or LiteRT, without TensorFlow; `onnx` or `litert` names the"
             " pretrained model in that format.".format(app=app) if exported else "")
    return click.option(
        "--model", "model_path", type=click.Path(path_type=Path),
        help=f"A SavedModel folder (a version, or a model folder for its newest). Default:"
        f" the newest ./saved_models/{app}/N, else the pretrained model installed with"
        f" kerasrnn.{files}",
    )


def run_folders(app):
    """--resume, --restart, --workdir and --out of a training command."""

    def decorate(command):
        for option in reversed([
            click.option("--resume", is_flag=True,
                         help="Continue the interrupted run in --workdir from its last"
                         " finished epoch."),
            click.option("--restart", is_flag=True,
                         help="Discard an interrupted run in --workdir and start afresh."),
            click.option("--workdir", type=click.Path(path_type=Path),
                         default=Path("runs") / app, show_default=True,
                         help="Run folder: backup, best weights, history.csv, model.keras."),
            click.option("--out", type=click.Path(path_type=Path), default=Path("saved_models"),
                         show_default=True,
                         help=f"Export the SavedModel to OUT/{app}/<next version>."),
        ]):
            command = option(command)
        return command

    return decorate


def strategy():
    return click.option(
        "--strategy", type=click.Choice(STRATEGIES), default="default", show_default=True,
        help="tf.distribute strategy: one device, all local GPUs, or TF_CONFIG's hosts.",
    )


def export_folders(app, formats=("saved_model",)):
    """--workdir and --out of an app's `export` command, and --format where
    the app exports to more than one."""

    def decorate(command):
        help = f"Export the SavedModel to OUT/{app}/<next version>."
        if len(formats) > 1:
            help += (f" An ONNX or LiteRT file goes to OUT/{app}.onnx or OUT/{app}.tflite,"
                     " beside TF Serving's model folders, never inside them.")
            command = click.option(
                "--format", type=click.Choice(formats), default=formats[0], show_default=True,
                help="saved_model: for TensorFlow Serving; onnx: for any ONNX runtime;"
                " litert: for LiteRT (phones, microcontrollers). See docs/deploy.md.",
            )(command)
        command = click.option(
            "--out", type=click.Path(path_type=Path), default=Path("saved_models"),
            show_default=True, help=help,
        )(command)
        return click.option(
            "--workdir", type=click.Path(exists=True, file_okay=False, path_type=Path),
            default=Path("runs") / app, show_default=True,
            help="The run folder whose model.keras to export.",
        )(command)

    return decorate
