"""The textgen training program, called by `kerasrnn textgen train`.

    text -> vocabulary -> windows -> model -> fit (epochs or minutes) -> best weights
         -> validation loss in nats and bits per character -> model.keras -> SavedModel
"""

import json
import math
import time
from pathlib import Path

import click
import keras
from kerasrnn.apps.textgen import data
from kerasrnn.apps.textgen.generation import export
from kerasrnn.apps.textgen.model import build_model

from kerasrnn.training import (
    EpochSeeds,
    UserError,
    best_so_far,
    make_strategy,
    prepare_workdir,
    save_model_atomically,
    set_seed,
)

# min-char-rnn (Karpathy, 2015): vanilla RNN, hidden 100, 25 steps, Adagrad 0.1,
# every gradient clipped to [-5, 5].
PRESETS = {
    "min-char-rnn": dict(cell="rnn", units=100, layers=1, seq_len=25, optimizer="adagrad",
                         lr=0.1, clipvalue=5.0, clipnorm=None),
}
RUN_DEFINING = ("text", "dataset", "cell", "units", "layers", "seq_len", "batch_size",
                "epochs", "minutes", "lr", "clipnorm", "clipvalue", "optimizer", "dropout",
                "seed")


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `minutes` have passed (the epoch's validation still runs)."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = minutes * 60
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self.model.stop_training = True


class SmoothedLoss(keras.callbacks.Callback):
    """min-char-rnn's progress line: loss per sequence, smoothed over iterations."""

    def __init__(self, vocab_size, seq_len, every=100):
        super().__init__()
        self.seq_len, self.every = seq_len, every
        self.smooth = math.log(vocab_size) * seq_len  # min-char-rnn's starting value
        self.iteration = 0

    def on_train_batch_end(self, batch, logs=None):
        self.smooth = self.smooth * 0.999 + logs["loss"] * self.seq_len * 0.001
        if self.iteration % self.every == 0:
            click.echo(f"iter {self.iteration}, smoothed loss: {self.smooth:f}")
        self.iteration += 1


def _optimizer(name, lr, clipnorm, clipvalue):
    clip = {"clipnorm": clipnorm} if clipnorm else {}
    clip.update({"clipvalue": clipvalue} if clipvalue else {})
    if name == "adagrad":
        return keras.optimizers.Adagrad(lr, **clip)
    return keras.optimizers.Adam(lr, **clip)


def run(text, dataset, cell, units, layers, seq_len, batch_size, epochs, minutes, lr, clipnorm,
        dropout, preset, seed, resume, workdir, out, strategy):
    optimizer, clipvalue = "adam", None
    if preset:
        settings = PRESETS[preset]
        cell, units, layers, seq_len = (settings[k] for k in ("cell", "units", "layers",
                                                               "seq_len"))
        optimizer, lr = settings["optimizer"], settings["lr"]
        clipnorm, clipvalue = settings["clipnorm"], settings["clipvalue"]
        click.echo(f"preset {preset}: {settings}")
    options = dict(locals())
    set_seed(seed)
    distribution = make_strategy(strategy)
    if strategy != "default":
        click.echo(f"strategy: {strategy}, {distribution.num_replicas_in_sync} replicas")
    workdir = Path(workdir)
    prepare_workdir(workdir, {k: options[k] for k in RUN_DEFINING}, resume)

    corpus = data.read_text(text) if text is not None else data.tfds_text(dataset)
    vocab = data.vocabulary(corpus)
    ids = data.encode(corpus, vocab)
    train_ids, val_ids, batch_size = data.split(ids, seq_len, batch_size)
    click.echo(f"text: {len(corpus):,} characters, {len(vocab)} distinct; "
               f"{len(train_ids):,} for training, {len(val_ids):,} held out")
    shuffle = EpochSeeds(seed)
    train_data = data.windows(train_ids, seq_len, batch_size, shuffle)
    val_data = data.windows(val_ids, seq_len, batch_size)

    with distribution.scope():
        model = build_model(vocab, cell, units, layers, dropout, seed=seed)
        model.compile(
            optimizer=_optimizer(optimizer, lr, clipnorm, clipvalue),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    click.echo(f"model: {model.name}, {model.count_params():,} parameters")
    (workdir / "vocabulary.json").write_text(json.dumps(vocab))

    best_path, history_path = workdir / "best.weights.h5", workdir / "history.csv"
    best_before = best_so_far(history_path, "val_loss", lower_is_better=True)
    callbacks = [
        shuffle,
        keras.callbacks.BackupAndRestore(str(workdir / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(best_path), monitor="val_loss", mode="min", save_best_only=True,
            save_weights_only=True, initial_value_threshold=best_before,
        ),
        keras.callbacks.CSVLogger(str(history_path), append=resume),
        keras.callbacks.TerminateOnNaN(),
    ]
    if minutes is not None:
        callbacks.append(TimeBudget(minutes))
    if preset == "min-char-rnn":
        callbacks.append(SmoothedLoss(len(vocab), seq_len))
    started = time.monotonic()
    try:
        history = model.fit(train_data, validation_data=val_data, epochs=epochs,
                            callbacks=callbacks)
    except KeyboardInterrupt:
        raise UserError(
            f"interrupted: continue with the same options and --resume (work folder {workdir})"
        ) from None
    if any(math.isnan(v) for v in history.history.get("loss", [])):
        raise UserError("training stopped: the loss became NaN (try a lower --lr)")
    trained_minutes = (time.monotonic() - started) / 60

    model.load_weights(str(best_path))
    val_loss = best_so_far(history_path, "val_loss", lower_is_better=True)
    click.echo(f"best validation loss: {val_loss:.4f} nats/char, "
               f"{val_loss / math.log(2):.4f} bits/char ({trained_minutes:.1f} minutes)")
    saved = save_model_atomically(model, workdir / "model.keras")
    version = export(model, vocab, out)
    (workdir / "results.json").write_text(json.dumps({
        "val_loss": val_loss, "bits_per_char": val_loss / math.log(2),
        "minutes": trained_minutes, "epochs": len(history.history["loss"]),
        "parameters": model.count_params(), "saved_model": str(version),
    }, indent=1))
    click.echo(f"saved {saved} and exported {version}")
