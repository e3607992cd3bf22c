"""The mnist training program, called by `kerasrnn mnist train`.

    check folders -> data -> model -> fit -> best weights -> test -> model.keras -> SavedModel

The work folder holds what a killed run needs to continue (`--resume`):
Keras's BackupAndRestore backup (weights and optimizer state of the last
finished epoch), the best weights so far, and history.csv (see
kerasrnn.apps.common.run_folder).
"""

import time
from pathlib import Path

import click
import keras
import numpy as np

from kerasrnn.apps.common import run_folder
from kerasrnn.apps.common.training import (
    EpochSeeds,
    begin_run,
    fit_resumable,
    save_model_atomically,
)
from kerasrnn.apps.mnist import data
from kerasrnn.apps.mnist.model import MODEL_NAME, build_model, export, without_augmentation
from kerasrnn.errors import UserError


def _learning_rate(lr, schedule, total_steps):
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps)
    return lr


def run(config, *, workdir, out, logdir=None, resume=False, restart=False, strategy="default",
        jit=False):
    """Trains, tests and exports the classifier that `config` (a TrainConfig) describes.

    Args:
        config: What defines the run (apps/mnist/config.py).
        workdir: The run folder (backup, best weights, history, model.keras).
        out: The export base: the SavedModel goes to `out/mnist/<next>`.
        logdir: Where TensorBoard logs go, or None.
        resume, restart: Continue, or discard, an interrupted run in `workdir`.
        strategy: "default", "mirrored" or "multiworker".
        jit: Compile the training step with XLA (then not deterministic).
    """
    with begin_run(MODEL_NAME, config, workdir=workdir, out=out, logdir=logdir, resume=resume,
                   restart=restart, strategy=strategy,
                   deterministic=not jit) as (distribution, workdir, out, logdir):
        images, labels = data.load("train", config.dataset, config.data_dir)
        test_x, test_y = data.load("test", config.dataset, config.data_dir)
        (train_x, train_y), (val_x, val_y) = data.validation_split(
            images, labels, config.val_fraction, config.seed)
        if len(train_x) < config.batch_size:
            raise UserError(f"{len(train_x)} training digits are fewer than"
                            f" --batch-size {config.batch_size}")
        click.echo(
            f"data: {len(train_x):,} training, {len(val_x):,} validation, "
            f"{len(test_x):,} test digits"
        )

        epoch_seeds = EpochSeeds(config.seed)
        train_data = data.train_dataset(train_x, train_y, config.batch_size, epoch_seeds)
        val_data = data.eval_dataset(val_x, val_y, config.batch_size)

        with distribution.scope():
            model = build_model(config.cell, config.units, config.layers, config.bidirectional,
                                config.dropout, config.augment, config.seed)
            steps = config.epochs * int(np.ceil(len(train_x) / config.batch_size))
            model.compile(
                optimizer=keras.optimizers.Adam(_learning_rate(config.lr, config.schedule, steps)),
                loss="sparse_categorical_crossentropy",
                # An object, not the string "accuracy": Keras makes the string's
                # metric, and its variables, while tracing the first training
                # step, which then has to be traced again (fit_resumable).
                metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                jit_compile=jit,
            )
        click.echo(f"model: {model.name}, {model.count_params():,} parameters")

        extra = [keras.callbacks.TensorBoard(str(logdir))] if logdir is not None else []
        started = time.monotonic()
        best_val, history = fit_resumable(
            model, train_data, val_data, config.epochs, workdir, epoch_seeds,
            monitor="val_accuracy", mode="max", resume=resume, extra_callbacks=extra,
        )
        seconds_per_epoch = (time.monotonic() - started) / len(history.history["loss"])

        test_data = data.eval_dataset(test_x, test_y, config.batch_size)
        test_loss, test_accuracy = model.evaluate(test_data, verbose=0)
        click.echo(f"best validation accuracy: {best_val:.2%}")
        click.echo(f"test accuracy: {test_accuracy:.2%}"
                   f" (loss {test_loss:.4f}, {len(test_x):,} digits)")
        saved = save_model_atomically(model, workdir / "model.keras")
        results = {
            "test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
            "best_val_accuracy": best_val, "parameters": model.count_params(),
            "seconds_per_epoch": seconds_per_epoch, "keras_file": str(saved),
        }
        export_run(workdir, out, model, results)


def export_run(workdir, out, model=None, results=None, format="saved_model"):
    """Exports a trained run's model as the next SavedModel version, then results.json.

    Called at the end of `run`, and by `kerasrnn mnist export` for a run
    whose export failed (an unwritable --out, a full disk). With `format`
    "onnx" or "litert", writes `out/mnist.onnx` or `out/mnist.tflite`
    instead: the LiteRT file for one digit at a time, the batch LiteRT's
    fused LSTM needs (docs/deploy.md), the ONNX file for any batch.
    """
    if model is None:
        model = run_folder.trained_model(workdir)
    shape = getattr(model, "input_shape", None)  # none on a subclassed model (textgen's)
    if shape is None or tuple(shape[1:]) != (28, 28):
        raise UserError(f"{workdir}: not an mnist run (its model, {model.name}, does not read"
                        " 28 rows of 28 pixels)")
    if format != "saved_model":
        from kerasrnn.apps.common import runtimes

        run_folder.check_writable(out, "--out")
        batch = 1 if format == "litert" else None
        signature = [keras.InputSpec(shape=(batch, 28, 28), dtype="float32", name="images")]
        path = Path(out) / (MODEL_NAME + runtimes.FORMATS[format])
        runtimes.export(without_augmentation(model), path, format, input_signature=signature)
        click.echo(f"Exported {path}")
        return path
    run_folder.check_writable(Path(out) / MODEL_NAME, "--out")
    version = export(model, out)
    run_folder.record_export(workdir, version, results)
    return version
