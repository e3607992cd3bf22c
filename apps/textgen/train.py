"""The textgen training program, called by `kerasrnn textgen train`.

    check folders -> text -> vocabulary -> windows -> model -> fit (epochs or minutes)
         -> best weights -> validation loss in nats and bits per character
         -> model.keras -> SavedModel
"""

import json
import math
import sys
import time
from pathlib import Path

import click
import keras
import numpy as np

from kerasrnn.apps.common import run_folder
from kerasrnn.apps.common.strategies import any_worker, mean_over_workers
from kerasrnn.apps.common.training import (
    EpochSeeds,
    begin_run,
    fit_resumable,
    save_model_atomically,
)
from kerasrnn.apps.textgen import data
from kerasrnn.apps.textgen.generation import MODEL_NAME, export
from kerasrnn.apps.textgen.model import CharacterModel
from kerasrnn.errors import UserError


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
        self.cut = None  # (epoch, steps run, steps in an epoch) when it stopped an epoch
        self.steps = 0  # training steps run in this process

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if not sys.stdout.isatty():  # a log has no bar: say how much time is left
            used = (time.monotonic() - self.start) / 60
            click.echo(f"{used:.1f} of {self.seconds / 60:g} minutes used")

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if any_worker(self.strategy, time.monotonic() - self.start > self.seconds):
            self.model.stop_training = True
            steps = self.params.get("steps")
            if steps is not None and batch + 1 < steps:
                self.cut = (self.epoch, batch + 1, steps)


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


# What `model.fit` is given for epochs when no --epochs bounds the run: the
# clock (TimeBudget) ends it long before. A bound of its own would end a run
# on a fast machine before its minutes, with the rate not yet decayed.
UNTIL_THE_BUDGET = 10**6


class PartialEpochProgbar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar, except that an epoch the time budget cut short
    ends at the step it reached (71/155), not at a full epoch (155/155), and
    that a run bounded by the clock alone counts its epochs without an end
    ("Epoch 3", not "Epoch 3/1000000")."""

    def on_epoch_begin(self, epoch, logs=None):
        if self.epochs < UNTIL_THE_BUDGET:
            return super().on_epoch_begin(epoch, logs)
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose:
            click.echo(f"Epoch {epoch + 1}")

    def _finalize_progbar(self, logs):
        if self.model.stop_training and self.target and 0 < self.seen < self.target:
            self._maybe_init_progbar()
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=True)
            return
        super()._finalize_progbar(logs)


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


def _optimizer(name, lr, clipnorm, clipvalue, schedule=None, total_steps=None,
               beta_2=0.999):
    if schedule == "cosine":
        # Down to a tenth of the peak at the last of --epochs, as nanoGPT does.
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps, alpha=0.1)
    clip = {"clipnorm": clipnorm} if clipnorm else {}
    clip.update({"clipvalue": clipvalue} if clipvalue else {})
    if name == "adagrad":
        return keras.optimizers.Adagrad(lr, **clip)
    return keras.optimizers.Adam(lr, beta_2=beta_2, **clip)


def run(config, *, workdir, out, resume=False, restart=False, strategy="default",
        smoothed_loss=False):
    """Trains and exports the character model that `config` (a TrainConfig) describes.

    Args:
        config: What defines the run (apps/textgen/config.py), presets applied.
        workdir: The run folder (backup, best weights, history, model.keras).
        out: The export base: the SavedModel goes to `out/textgen/<next>`.
        resume, restart: Continue, or discard, an interrupted run in `workdir`.
        strategy: "default", "mirrored" or "multiworker".
        smoothed_loss: Print min-char-rnn's smoothed loss every 100 steps.
    """
    with begin_run(MODEL_NAME, config, workdir=workdir, out=out, resume=resume, restart=restart,
                   strategy=strategy) as (distribution, workdir, out, _):
        corpus = (data.read_text(config.text) if config.text is not None
                  else data.tfds_text(config.dataset))
        vocab = data.vocabulary(corpus)
        if len(vocab) < 2:
            raise UserError(f"{config.text or config.dataset}: the text has one distinct"
                            f" character ({vocab[0]!r}): nothing for a model to choose between")
        ids = data.encode(corpus, vocab)
        train_ids, val_ids, batch_size = data.split(ids, config.seq_len, config.batch_size,
                                                    config.random_offsets)
        click.echo(f"text: {len(corpus):,} characters, {len(vocab)} distinct; "
                   f"{len(train_ids):,} for training, {len(val_ids):,} held out")
        epoch_seeds = EpochSeeds(config.seed)
        train_data = data.windows(train_ids, config.seq_len, batch_size, epoch_seeds,
                                  config.random_offsets)
        val_data = data.windows(val_ids, config.seq_len, batch_size)

        # "cosine" decays over --epochs (the command line refuses it without).
        total_steps = (config.epochs * int(train_data.cardinality())
                       if config.lr_schedule == "cosine" else None)
        with distribution.scope():
            model = CharacterModel(len(vocab), config.cell, config.units, config.layers,
                                   config.dropout, seed=config.seed,
                                   counts=np.bincount(train_ids, minlength=len(vocab)))
            model.compile(
                optimizer=_optimizer(config.optimizer, config.lr, config.clipnorm,
                                     config.clipvalue, config.lr_schedule, total_steps,
                                     config.adam_beta_2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
        click.echo(f"model: {model.name}, {model.count_params():,} parameters")
        (workdir / "vocabulary.json").write_text(json.dumps(vocab))

        budget = TimeBudget(config.minutes, distribution)
        extra = [budget, PartialEpochProgbar()]
        if config.lr_schedule == "cosine-minutes":
            extra.append(CosineOverMinutes(config.lr, config.minutes, distribution))
        if smoothed_loss:
            extra.append(SmoothedLoss(len(vocab), config.seq_len))
        started = time.monotonic()
        val_loss, history = fit_resumable(
            model, train_data, val_data, config.epochs or UNTIL_THE_BUDGET, workdir, epoch_seeds,
            monitor="val_loss", mode="min", resume=resume, extra_callbacks=extra,
        )
        trained_minutes = (time.monotonic() - started) / 60
        if budget.cut is not None:
            epoch, ran, steps = budget.cut
            click.echo(f"--minutes {config.minutes:g} ended epoch {epoch + 1} after {ran} of its"
                       f" {steps} steps; its validation loss counts like any epoch's")

        click.echo(f"best validation loss: {val_loss:.4f} nats/char, "
                   f"{val_loss / math.log(2):.4f} bits/char ({trained_minutes:.1f} minutes)")
        if not val_loss < math.log(len(vocab)):
            # Worse than guessing every character alike: the run diverged.
            click.echo(f"warning: the validation loss, {val_loss:.4g} nats/char, is no better than"
                       f" guessing ({math.log(len(vocab)):.4f} for {len(vocab)} characters): the"
                       " run diverged; its model is exported as asked, but train again with a"
                       " lower --lr", err=True)
        save_model_atomically(model, workdir / "model.keras")
        results = {
            "val_loss": val_loss, "bits_per_char": val_loss / math.log(2),
            "minutes": trained_minutes, "epochs": len(history.history["loss"]),
            "last_epoch_partial": budget.cut is not None,
            "parameters": model.count_params(),
            # what this process trained on (a resumed run's earlier part not counted)
            "characters": budget.steps * batch_size * config.seq_len,
        }
        export_run(workdir, out, model, results)


def export_run(workdir, out, model=None, results=None, format="saved_model"):
    """Exports a trained run's model as the next SavedModel version, then results.json.

    Called at the end of `run`, and by `kerasrnn textgen export` for a run
    whose export failed (an unwritable --out, a full disk). The export
    records where the training text came from, for `textgen inspect`. With
    `format` "onnx" or "litert", writes the model's step
    (`generation.StepModel`) to `out/textgen.onnx` or `out/textgen.tflite`
    instead, for `kerasrnn textgen sample --model FILE`.
    """
    workdir = Path(workdir)
    vocab_path = workdir / "vocabulary.json"
    if not vocab_path.is_file():
        raise UserError(f"{workdir}: no vocabulary.json (has a training run finished there?)")
    if model is None:
        model = run_folder.trained_model(workdir)
    if format != "saved_model":
        from kerasrnn.apps.common import runtimes
        from kerasrnn.apps.textgen.generation import StepModel

        run_folder.check_writable(out, "--out")
        step = StepModel(model, json.loads(vocab_path.read_text()))
        path = Path(out) / (MODEL_NAME + runtimes.FORMATS[format])
        runtimes.export(step, path, format, input_signature=step.input_signature())
        click.echo(f"Exported {path}")
        return path
    run_folder.check_writable(Path(out) / MODEL_NAME, "--out")
    config = json.loads((workdir / "run.json").read_text())
    text = config.get("text")
    source = {"text": str(Path(text).resolve()) if text else None,
              "dataset": config.get("dataset")}
    version = export(model, json.loads(vocab_path.read_text()), out, source=source)
    run_folder.record_export(workdir, version, results)
    return version
