"""`kerasrnn textgen ...`: train a character model, sample text, evaluate it."""

from pathlib import Path

import click

from kerasrnn.errors import UserError
from kerasrnn.export import DEFAULT_BASE_DIR

CELL_CHOICES = ("lstm", "gru", "rnn")


def _text_options(command):
    command = click.option(
        "--text",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A UTF-8 text file to learn from (e.g. tiny Shakespeare's input.txt).",
    )(command)
    command = click.option(
        "--dataset",
        default="tiny_shakespeare",
        show_default=True,
        help="tensorflow-datasets text, used when --text is not given.",
    )(command)
    return command


def _model_option(command):
    return click.option(
        "--model",
        "model_dir",
        type=click.Path(path_type=Path),
        help="A SavedModel folder (a version, or the model folder for its newest)."
        " Default: the newest saved_models/textgen/N.",
    )(command)


def _load_saved_model(model_dir):
    import tensorflow as tf

    from kerasrnn.export import latest_version_dir

    model_dir = Path(model_dir) if model_dir else Path(DEFAULT_BASE_DIR) / "textgen"
    if not (model_dir / "saved_model.pb").is_file():
        newest = latest_version_dir(model_dir)
        if newest is None:
            raise UserError(f"{model_dir}: no SavedModel there (train one or pass --model)")
        model_dir = newest
    loaded = tf.saved_model.load(str(model_dir))
    missing = {"serving_default", "step", "vocabulary"} - set(loaded.signatures)
    if missing:
        raise UserError(f"{model_dir}: not a textgen SavedModel (no {', '.join(sorted(missing))})")
    return loaded, model_dir


def _vocabulary(loaded):
    """The characters of a loaded textgen SavedModel, in id order."""
    return [c.decode("utf-8") for c in loaded.signatures["vocabulary"]()["characters"].numpy()]


@click.group()
def textgen():
    """A character-level language model (char-rnn) that writes text."""


@textgen.command()
@_text_options
@click.option("--cell", type=click.Choice(CELL_CHOICES), default="gru", show_default=True,
              help="Recurrent cell (GRU: the best validation loss in 20 minutes here).")
@click.option("--units", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--layers", type=click.IntRange(1, 3), default=1, show_default=True)
@click.option("--seq-len", type=click.IntRange(min=1), default=100, show_default=True,
              help="Characters per training window (truncated back-propagation).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=50, show_default=True,
              help="Upper bound on epochs; --minutes usually ends the run first.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=20.0,
              show_default=True, help="Stop training after this many minutes.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3,
              show_default=True, help="Adam learning rate (the peak, with --lr-schedule cosine).")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine", "cosine-minutes"]),
              default="constant", show_default=True,
              help="cosine: decay the learning rate to a tenth over --epochs (set --epochs to"
              " about what fits in --minutes); cosine-minutes: to a tenth over --minutes, by"
              " the clock, whatever the machine's speed.")
@click.option("--clipnorm", type=click.FloatRange(min=0, min_open=True), default=5.0,
              show_default=True, help="Clip each gradient's norm to this.")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="Dropout on each recurrent layer's input and the output.")
@click.option("--random-offsets/--fixed-offsets", default=False, show_default=True,
              help="Cut the text into windows from a new offset every epoch (fixed: the same"
              " windows each epoch, in a new order).")
@click.option("--preset", type=click.Choice(["min-char-rnn"]),
              help="min-char-rnn: vanilla RNN, hidden 100, seq 25, Adagrad 0.1, clip 5;"
              " prints its smoothed loss.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run in --workdir from its last finished epoch.")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("runs/textgen"),
              show_default=True, help="Backups, best weights, history.csv and model.keras.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_BASE_DIR,
              show_default=True, help="Export the SavedModel to OUT/textgen/<next version>.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]),
              default="default", show_default=True,
              help="tf.distribute strategy: one device, all local GPUs, or TF_CONFIG's hosts.")
def train(**options):
    """Train on a text, keep the best epoch, and export a SavedModel that writes text.

    Defaults: a GRU of 512 units over a 64-dimensional embedding, windows of
    100 characters, batch 64, Adam 2e-3 with gradient norms clipped to 5,
    20 minutes. The last 10% of the text is held out for validation.
    """
    from kerasrnn.apps.textgen.train import run
    from kerasrnn.distribute import worker_failures_as_errors

    with worker_failures_as_errors():
        run(**options)


@textgen.command()
@_model_option
@click.option("--prompt", default="ROMEO:", show_default=True,
              help="Text to start from; characters the model never saw are skipped.")
@click.option("--length", type=click.IntRange(min=0), default=500, show_default=True,
              help="Characters to generate after the prompt.")
@click.option("--temperature", type=click.FloatRange(min=0), default=0.8, show_default=True,
              help="Below 1: safer, more repetitive; above 1: wilder; 0: always the likeliest.")
@click.option("--seed", type=int, help="Same seed, same text. Default: a random one.")
@click.option("--num", type=click.IntRange(min=1), default=1, show_default=True,
              help="How many samples to write.")
@click.option("--stream", is_flag=True,
              help="Print characters as they come (drives the `step` signature).")
def sample(model_dir, prompt, length, temperature, seed, num, stream):
    """Write text with a SavedModel (generated inside the graph in one call)."""
    import random

    import numpy as np
    import tensorflow as tf

    # Each character is a few dozen tiny ops; handing each to a thread pool
    # costs more than it saves (the default pool generated at half the speed
    # here: benchmarks/generation.py --intra-op-threads).
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already started in this process (called from Python): keep its pool
    loaded, _ = _load_saved_model(model_dir)
    seed = random.randrange(2**31) if seed is None else seed
    if not stream:
        text = loaded.signatures["serving_default"](
            prompt=tf.constant([prompt] * num), length=tf.constant(length, tf.int32),
            temperature=tf.constant(temperature, tf.float32), seed=tf.constant(seed, tf.int32),
        )["text"].numpy()
        for i, sample_text in enumerate(text):
            if num > 1:
                click.echo(f"--- sample {i + 1} (seed {seed}) ---")
            click.echo(sample_text.decode("utf-8"))
        return
    # Streaming: the client keeps the state and samples, one character per call.
    vocab = _vocabulary(loaded)
    index = {ch: i for i, ch in enumerate(vocab)}
    step = loaded.signatures["step"]
    state_shape = step.structured_input_signature[1]["state"].shape
    rng = np.random.default_rng(seed)
    for i in range(num):
        if num > 1:
            click.echo(f"--- sample {i + 1} (seed {seed}) ---")
        ids = [index[ch] for ch in prompt if ch in index] or [index.get("\n", 0)]
        state = tf.zeros([1, state_shape[1], state_shape[2]])
        click.echo(prompt, nl=False)
        for _ in range(length):
            out = step(ids=tf.constant([ids], tf.int32), state=state)
            logits, state = out["logits"].numpy()[0, -1].astype(np.float64), out["state"]
            if temperature > 0:
                p = np.exp((logits - logits.max()) / temperature)
                next_id = int(rng.choice(len(vocab), p=p / p.sum()))
            else:
                next_id = int(logits.argmax())
            click.echo(vocab[next_id], nl=False)
            ids = [next_id]
        click.echo()


@textgen.command()
@_model_option
@_text_options
@click.option("--seq-len", type=click.IntRange(min=1), default=100, show_default=True,
              help="Window length, as in training.")
@click.option("--carry-state", is_flag=True,
              help="Read the held-out text as 64 streams, carrying the state from each window"
              " to the next (char-rnn's measure): every character is predicted from all of"
              " its stream before it, not only from its window.")
def evaluate(model_dir, text, dataset, seq_len, carry_state):
    """Loss (nats/char) and bits/char on the held-out last 10% of a text.

    By default the held-out text is cut into windows of --seq-len characters,
    each read from a zero state, as training measures its validation loss.
    """
    import math

    import tensorflow as tf

    from kerasrnn.apps.textgen import data

    loaded, model_dir = _load_saved_model(model_dir)
    corpus = data.read_text(text) if text is not None else data.tfds_text(dataset)
    vocab = _vocabulary(loaded)
    characters = set(vocab)
    known = "".join(ch for ch in corpus if ch in characters)
    held_out = data.encode(known, vocab)[int(len(known) * (1 - data.VALIDATION_FRACTION)):]
    if len(held_out) < seq_len + 1:
        raise UserError(f"the held-out 10% of the text is shorter than --seq-len {seq_len} + 1")
    step = loaded.signatures["step"]
    state_shape = step.structured_input_signature[1]["state"].shape
    batches = list(data.evaluation_batches(held_out, seq_len, carry_state=carry_state))
    total, chars, state = 0.0, 0, None
    with click.progressbar(batches, label="evaluating") as bar:
        for inputs, targets, carried in bar:
            if not carried:
                state = tf.zeros([len(inputs), state_shape[1], state_shape[2]])
            out = step(ids=tf.constant(inputs), state=state)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, out["logits"])
            total += float(tf.reduce_sum(losses))
            chars += int(tf.size(losses))
            state = out["state"]
    loss = total / chars
    click.echo(f"model: {model_dir}")
    if carry_state:
        streams = len(batches[0][0])
        click.echo(f"measured on: {streams} streams, the state carried from window to window")
    else:
        click.echo(f"measured on: windows of {seq_len} characters, each from a zero state")
    click.echo(f"held-out characters: {chars:,}")
    click.echo(f"loss: {loss:.4f} nats/char")
    click.echo(f"bits per character: {loss / math.log(2):.4f}")
