"""The commands both apps have, and the steps their `train` commands share.

Nothing here imports Keras or TensorFlow at the top: `--help` must answer at
once. The apps pass in what is theirs (the program that trains or exports),
so this toolkit never imports an app.
"""

import click

from kerasrnn.apps.common import options, quiet


def export_command(app, export_run, formats=("saved_model",)):
    """The app's `export` command, which calls `export_run(workdir, out)`, or
    `export_run(workdir, out, format)` where the app has more than one format."""
    several = len(formats) > 1
    runs = "predict" if app == "mnist" else "sample"
    other_formats = f"""

    With --format onnx or litert, writes OUT/{app}.onnx or OUT/{app}.tflite
    instead, for onnxruntime or LiteRT (`pip install "kerasrnn[deploy]"`);
    `kerasrnn {app} {runs} --model FILE` runs it without TensorFlow.""" if several else ""

    @click.command(cls=quiet.Command, help=f"""Export a finished training run's model.keras
    as the next SavedModel version.

    For a run whose own export failed (an unwritable --out, a full disk):
    the same signatures as the export at the end of `train`.{other_formats}

    \b
    Example:
      kerasrnn {app} export --workdir runs/{app} --out saved_models
    """)
    @options.export_folders(app, formats)
    def export(workdir, out, **format):
        export_run(workdir, out, **format)

    return export


def run_training(run, config, *, resume, restart, **kwargs):
    """Calls an app's training program as its `train` command does: `--resume`
    and `--restart` checked, a failed worker of a cluster reported in one line."""
    from kerasrnn.apps.common.strategies import worker_failures_as_errors

    if resume and restart:
        raise click.UsageError("--resume and --restart exclude each other")
    with worker_failures_as_errors():
        run(config, resume=resume, restart=restart, **kwargs)
