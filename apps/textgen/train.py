"""The textgen training program, called by `kerasrnn textgen train`.

    text -> vocabulary -> windows -> model -> fit (epochs or minutes) -> best weights
         -> validation loss in nats and bits per character -> model.keras -> SavedModel
"""

import json
import math
import time

import click
import keras

from kerasrnn.apps.textgen import data
from kerasrnn.apps.textgen.generation import export
from kerasrnn.apps.textgen.model import build_model
from kerasrnn.distribute import (
    any_worker,
    chief_or_scratch,
    describe,
    make_strategy,
    mean_over_workers,
)
from kerasrnn.training import (
    EpochSeeds,
    fit_resumable,
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
                "epochs", "minutes", "lr", "lr_schedule", "clipnorm", "clipvalue", "optimizer",
                "dropout", "random_offsets", "seed")


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `minutes` have passed (the epoch's validation still runs).

    Under a multi-worker strategy the workers stop together, at the first
    batch after which any of them is out of time.
    """

    def __init__(self, minutes, strategy):
        super().__init__()
        self.seconds = minutes * 60
        self.strategy = strategy
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if any_worker(self.strategy, time.monotonic() - self.start > self.seconds):
            self.model.stop_training = True


class CosineOverMinutes(keras.callbacks.Callback):
    """Cosine decay of the learning rate over the time budget instead of over epochs.

    How many epochs fit in an hour moves with a shared machine's load, so a
    cosine over `--epochs` is either done early or cut off before its low
    end. This one sets the rate before each batch from the time used so far:
    the peak at the start, a tenth of it when `minutes` have passed. Like
    `TimeBudget`, its clock starts when this process starts training (a
    resumed run starts it again). Under a multi-worker strategy the workers
    use the mean of their clocks, so all of them apply the same rate.
    """

    def __init__(self, peak, minutes, strategy, alpha=0.1, clock=time.monotonic):
        super().__init__()
        self.peak, self.seconds, self.alpha = peak, minutes * 60, alpha
        self.strategy, self.clock = strategy, clock
        self.start = None

    def rate(self, elapsed):
        fraction = min(1.0, elapsed / self.seconds)
        cosine = 0.5 * (1 + math.cos(math.pi * fraction))  # from 1 down to 0
        return self.peak * (self.alpha + (1 - self.alpha) * cosine)

    def on_train_begin(self, logs=None):
        self.start = self.clock()

    def on_train_batch_begin(self, batch, logs=None):
        elapsed = mean_over_workers(self.strategy, self.clock() - self.start)
        self.model.optimizer.learning_rate = self.rate(elapsed)


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


def _optimizer(name, lr, clipnorm, clipvalue, schedule=None, total_steps=None):
    if schedule == "cosine":
        # Down to a tenth of the peak at the last of --epochs, as nanoGPT does.
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps, alpha=0.1)
    clip = {"clipnorm": clipnorm} if clipnorm else {}
    clip.update({"clipvalue": clipvalue} if clipvalue else {})
    if name == "adagrad":
        return keras.optimizers.Adagrad(lr, **clip)
    return keras.optimizers.Adam(lr, **clip)


def run(text, dataset, cell, units, layers, seq_len, batch_size, epochs, minutes, lr,
        lr_schedule, clipnorm, dropout, random_offsets, preset, seed, resume, workdir, out,
        strategy):
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
    distribution = make_strategy(strategy, resume)
    if strategy != "default":
        click.echo(f"strategy: {strategy}, {describe(distribution)}")
    # Only the chief keeps files; other workers write to a scratch folder.
    workdir, out, _ = chief_or_scratch(distribution, workdir, out, None)
    prepare_workdir(workdir, {k: options[k] for k in RUN_DEFINING}, resume)

    corpus = data.read_text(text) if text is not None else data.tfds_text(dataset)
    vocab = data.vocabulary(corpus)
    ids = data.encode(corpus, vocab)
    train_ids, val_ids, batch_size = data.split(ids, seq_len, batch_size, random_offsets)
    click.echo(f"text: {len(corpus):,} characters, {len(vocab)} distinct; "
               f"{len(train_ids):,} for training, {len(val_ids):,} held out")
    epoch_seeds = EpochSeeds(seed)
    train_data = data.windows(train_ids, seq_len, batch_size, epoch_seeds, random_offsets)
    val_data = data.windows(val_ids, seq_len, batch_size)

    with distribution.scope():
        model = build_model(vocab, cell, units, layers, dropout, seed=seed)
        model.compile(
            optimizer=_optimizer(optimizer, lr, clipnorm, clipvalue, lr_schedule,
                                 epochs * int(train_data.cardinality())),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    click.echo(f"model: {model.name}, {model.count_params():,} parameters")
    (workdir / "vocabulary.json").write_text(json.dumps(vocab))

    extra = [TimeBudget(minutes, distribution)] if minutes is not None else []
    if lr_schedule == "cosine-minutes":
        extra.append(CosineOverMinutes(lr, minutes, distribution))
    if preset == "min-char-rnn":
        extra.append(SmoothedLoss(len(vocab), seq_len))
    started = time.monotonic()
    val_loss, history = fit_resumable(
        model, train_data, val_data, epochs, workdir, epoch_seeds,
        monitor="val_loss", mode="min", resume=resume, extra_callbacks=extra,
    )
    trained_minutes = (time.monotonic() - started) / 60

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
