"""The mnist training program, called by `kerasrnn mnist train`.

    data -> model -> callbacks -> fit -> best weights -> test -> model.keras -> SavedModel

The work folder holds what a killed run needs to continue (`--resume`):
Keras's BackupAndRestore backup (weights and optimizer state of the last
finished epoch), the best weights so far, and history.csv.
"""

import json
import time

import click
import keras
import numpy as np

from kerasrnn.apps.mnist import data
from kerasrnn.apps.mnist.model import build_model, export
from kerasrnn.distribute import chief_or_scratch, describe, make_strategy
from kerasrnn.training import (
    EpochSeeds,
    UserError,
    fit_resumable,
    prepare_workdir,
    save_model_atomically,
    set_seed,
)

# Options that define the run: a resumed run must use the same ones.
RUN_DEFINING = (
    "cell", "units", "layers", "bidirectional", "dropout", "augment", "epochs", "batch_size",
    "lr", "schedule", "val_fraction", "dataset", "data_dir", "seed",
)


def _learning_rate(lr, schedule, total_steps):
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps)
    return lr


def run(cell, units, layers, bidirectional, dropout, augment, epochs, batch_size, lr,
        schedule, val_fraction, dataset, data_dir, seed, resume, workdir, logdir, out,
        strategy, jit):
    options = dict(locals())
    set_seed(seed, deterministic=not jit)
    distribution = make_strategy(strategy, resume)
    if strategy != "default":
        click.echo(f"strategy: {strategy}, {describe(distribution)}")
    # Only the chief keeps files; other workers write to a scratch folder.
    workdir, out, logdir = chief_or_scratch(distribution, workdir, out, logdir)
    prepare_workdir(workdir, {k: options[k] for k in RUN_DEFINING}, resume)

    images, labels = data.load("train", dataset, data_dir)
    test_x, test_y = data.load("test", dataset, data_dir)
    (train_x, train_y), (val_x, val_y) = data.validation_split(images, labels, val_fraction, seed)
    if len(train_x) < batch_size:
        raise UserError(f"{len(train_x)} training digits are fewer than --batch-size {batch_size}")
    click.echo(
        f"data: {len(train_x):,} training, {len(val_x):,} validation, "
        f"{len(test_x):,} test digits"
    )

    epoch_seeds = EpochSeeds(seed)
    train_data = data.train_dataset(train_x, train_y, batch_size, epoch_seeds)
    val_data = data.eval_dataset(val_x, val_y, batch_size)

    with distribution.scope():
        model = build_model(cell, units, layers, bidirectional, dropout, augment, seed)
        steps = epochs * int(np.ceil(len(train_x) / batch_size))
        model.compile(
            optimizer=keras.optimizers.Adam(_learning_rate(lr, schedule, steps)),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=jit,
        )
    click.echo(f"model: {model.name}, {model.count_params():,} parameters")

    extra = [keras.callbacks.TensorBoard(str(logdir))] if logdir is not None else []
    started = time.monotonic()
    best_val, history = fit_resumable(
        model, train_data, val_data, epochs, workdir, epoch_seeds,
        monitor="val_accuracy", mode="max", resume=resume, extra_callbacks=extra,
    )
    seconds_per_epoch = (time.monotonic() - started) / len(history.history["loss"])

    test_data = data.eval_dataset(test_x, test_y, batch_size)
    test_loss, test_accuracy = model.evaluate(test_data, verbose=0)
    click.echo(f"best validation accuracy: {best_val:.2%}")
    click.echo(f"test accuracy: {test_accuracy:.2%} (loss {test_loss:.4f}, {len(test_x):,} digits)")
    saved = save_model_atomically(model, workdir / "model.keras")
    version = export(model, out, example_images=data.to_float(test_x[:1]))
    (workdir / "results.json").write_text(json.dumps({
        "test_accuracy": float(test_accuracy), "test_loss": float(test_loss),
        "best_val_accuracy": best_val, "parameters": model.count_params(),
        "seconds_per_epoch": seconds_per_epoch,
        "keras_file": str(saved), "saved_model": str(version),
    }, indent=1))
    click.echo(f"saved {saved} and exported {version}")
