"""`kerasrnn textgen ...`: train a character model, sample text, evaluate, export.

Nothing at the top of this module imports Keras or TensorFlow, so that
`--help` answers at once; each command imports what it runs.
"""

from pathlib import Path

import click

from kerasrnn.apps.common import commands, options, quiet, runtimes
from kerasrnn.apps.textgen.config import (
    LONG_BUDGET_MINUTES,
    MIDDLE_BUDGET_RECIPE,
    PRESETS,
    SHORT_BUDGET_MINUTES,
    SHORT_BUDGET_RECIPE,
    TrainConfig,
    recipe_for_minutes,
    with_preset,
)
from kerasrnn.errors import UserError

DEFAULTS = TrainConfig()
INT32_MAX = 2**31 - 1  # `length` and `seed` are int32 inputs of the SavedModel


def _by_budget(name, show=str):
    """Help's words for the default of `name`, one of the options the budget sets."""
    short, middle, long = (SHORT_BUDGET_RECIPE[name], MIDDLE_BUDGET_RECIPE[name],
                           getattr(DEFAULTS, name))
    if short == middle == long:
        return f"Default: {show(long)}."
    if middle in (short, long):  # two values: where the one changes to the other
        start = SHORT_BUDGET_MINUTES if middle == long else LONG_BUDGET_MINUTES
        return f"Default: {show(long)} for --minutes {start} or more, {show(short)} under."
    return (f"Default: {show(long)} for --minutes {LONG_BUDGET_MINUTES} or more,"
            f" {show(middle)} from {SHORT_BUDGET_MINUTES}, {show(short)} under"
            f" {SHORT_BUDGET_MINUTES}.")


def _text_options(command, evaluating=False):
    if evaluating:
        text_help = ("A UTF-8 text file, read from its held-out last 10% (as training holds it"
                     " out). Default: tiny Shakespeare's held-out 10% installed with kerasrnn"
                     " where the wheel carries it, else tensorflow-datasets' --dataset, which"
                     " downloads once.")
    else:
        text_help = ("A UTF-8 text file to learn from (e.g. tiny Shakespeare's input.txt)."
                     " Default: tensorflow-datasets' --dataset, which downloads once.")
    command = click.option(
        "--text",
        type=click.Path(dir_okay=False, path_type=Path),
        help=text_help,
    )(command)
    command = click.option(
        "--dataset",
        default=DEFAULTS.dataset,
        show_default=True,
        help="tensorflow-datasets text, used when --text is not given.",
    )(command)
    return command


def _evaluation_text_options(command):
    return _text_options(command, evaluating=True)


@click.group(cls=quiet.Group)
def textgen():
    """A character-level language model (char-rnn) that writes text.

    Without --model, each command uses the newest ./saved_models/textgen/N,
    else the pretrained model installed with the package.

    \b
    Examples:
      kerasrnn textgen sample --prompt "ROMEO:" --length 300 --seed 1
      kerasrnn textgen train --minutes 5      # tiny Shakespeare, or --text FILE
      kerasrnn textgen evaluate
      kerasrnn textgen inspect --out inspect  # a web page of what units track
    """


@textgen.command()
@_text_options
@options.cell(None, _by_budget('cell'))
@click.option("--units", type=options.UNITS,
              help=f"Units of each recurrent layer. {_by_budget('units')}")
@click.option("--layers", type=click.IntRange(1, 3),
              help=f"Recurrent layers, stacked. {_by_budget('layers')}")
@click.option("--seq-len", type=options.SEQ_LEN, default=DEFAULTS.seq_len,
              show_default=True,
              help="Characters per training window (truncated back-propagation).")
@click.option("--batch-size", type=options.BATCH_SIZE, default=DEFAULTS.batch_size,
              show_default=True, help="Windows per training step.")
@click.option("--epochs", type=options.EPOCHS, default=DEFAULTS.epochs,
              help="Stop after this many epochs if --minutes has not stopped the run first."
              "  [default: no bound: --minutes ends the run]")
@click.option("--minutes", type=options.FiniteFloatRange(min=0, min_open=True),
              default=DEFAULTS.minutes,
              show_default=True, help="Stop training after this many minutes.")
@click.option("--lr", type=options.FiniteFloatRange(min=0, min_open=True),
              help="Adam learning rate (the peak, with a cosine --lr-schedule)."
              f" {_by_budget('lr', '{:g}'.format)}")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine", "cosine-minutes"]),
              help="cosine: decay the learning rate to a tenth over --epochs (set --epochs to"
              " about what fits in --minutes); cosine-minutes: to a tenth over --minutes, by"
              f" the clock, whatever the machine's speed. {_by_budget('lr_schedule')}")
@click.option("--clipnorm", type=options.FiniteFloatRange(min=0, min_open=True),
              default=DEFAULTS.clipnorm, show_default=True,
              help="Clip each gradient's norm to this.")
@click.option("--dropout", type=options.FiniteFloatRange(0, 1, max_open=True),
              help="Dropout on each recurrent layer's input and the output"
              f" (mingru, minlstm: on each residual branch's output). {_by_budget('dropout')}")
@click.option("--random-offsets/--fixed-offsets", default=None,
              help="Cut the text into windows from a new offset every epoch (fixed: the same"
              " windows each epoch, in a new order)."
              f" {_by_budget('random_offsets', {True: 'random', False: 'fixed'}.get)}")
@click.option("--preset", type=click.Choice(list(PRESETS)),
              help="min-char-rnn: vanilla RNN, hidden 100, seq 25, Adagrad 0.1, clip 5;"
              " prints its smoothed loss.")
@options.seed(DEFAULTS.seed)
@options.run_folders("textgen")
@options.strategy()
def train(preset, resume, restart, workdir, out, strategy, **config):
    """Train on a text, keep the best epoch, and export a SavedModel that writes text.

    Defaults: 20 minutes of two GRU layers of 384 units over a 64-dimensional
    embedding, windows of 100 characters, batch 32, dropout 0.2, new windows
    every epoch, Adam 3e-3 decayed to a tenth by the clock, gradient norms
    clipped to 5. A shorter budget changes what the options leave open: from
    7 minutes, one layer-normalized GRU layer with dropout 0.1 (one layer
    reads about twice the text a minute, and layer normalization learns more
    from each step while there are few steps to learn from), and an Adam
    that averages its squared gradients over a hundred steps rather than a
    thousand; under 7, 256 units with no dropout, Adam averaging over a
    thousand steps as at 20 minutes. The last 10% of the text is held out for
    validation. Every folder the run writes is checked before training
    starts; a killed run continues with --resume.

    \b
    Example:
      kerasrnn textgen train --text input.txt --minutes 5
    """
    from click.core import ParameterSource

    from kerasrnn.apps.textgen.train import run

    # What the user typed wins over the budget's recipe and over a preset.
    context = click.get_current_context()
    given = {name for name in config
             if context.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    for name, value in recipe_for_minutes(config["minutes"]).items():
        if config.get(name) is None:  # adam_beta_2 is no option: the budget alone sets it
            config[name] = value
    config = with_preset(TrainConfig(**config), preset, given)
    if config.lr_schedule == "cosine" and config.epochs is None:
        raise click.UsageError("--lr-schedule cosine decays the rate over --epochs: give"
                               " --epochs, or use cosine-minutes (over --minutes)")
    if preset:
        kept = ["--" + name.replace("_", "-") for name in sorted(given & set(PRESETS[preset]))]
        click.echo(f"preset {preset}: {PRESETS[preset]}"
                   + (f"; as given instead: {', '.join(kept)}" if kept else ""))
    commands.run_training(run, config, resume=resume, restart=restart, workdir=workdir,
                          out=out, strategy=strategy, smoothed_loss=preset == "min-char-rnn")


def _generate(loaded, prompt, length, temperature, seed):
    """One sample from `serving_default`, the sampler TF Serving clients get."""
    import tensorflow as tf

    text = loaded.signatures["serving_default"](
        prompt=tf.constant([prompt]), length=tf.constant(length, tf.int32),
        temperature=tf.constant(temperature, tf.float32), seed=tf.constant(seed, tf.int32),
    )["text"].numpy()[0]
    click.echo(text.decode("utf-8"))


def _stream(loaded, prompt, length, temperature, seed):
    """One sample through the `step` signature, printed as it comes.

    The client keeps the state. It draws each character with the op that
    `serving_default` uses, seeded by (seed, position), so a seed gives the
    same text with and without --stream.
    """
    import tensorflow as tf

    from kerasrnn.apps.textgen.generation import vocabulary

    vocab = vocabulary(loaded)
    index = {ch: i for i, ch in enumerate(vocab)}
    step = loaded.signatures["step"]
    state_shape = step.structured_input_signature[1]["state"].shape
    ids = [index[ch] for ch in prompt if ch in index] or [index.get("\n", 0)]
    state = tf.zeros([1, state_shape[1], state_shape[2]])
    click.echo(prompt, nl=False)
    for t in range(length):
        out = step(ids=tf.constant([ids], tf.int32), state=state)
        logits, state = out["logits"][:, -1], out["state"]
        if temperature > 0:
            next_id = int(tf.random.stateless_categorical(
                logits / temperature, 1, seed=tf.constant([seed, t]), dtype=tf.int32)[0, 0])
        else:
            next_id = int(tf.argmax(logits[0]))
        click.echo(vocab[next_id], nl=False)
        ids = [next_id]
    click.echo()


def _part_read(from_start):
    """What `inspect` reads of the text a model was trained on, in words."""
    if from_start:
        return "the text the model was trained on, from its start"
    return "the part of the model's text that its training held out"


def _sample_usage(seed, num, **_):
    if seed is not None and seed + num - 1 > INT32_MAX:
        raise click.UsageError(f"--seed {seed} with --num {num} passes the largest seed,"
                               f" {INT32_MAX}")


@textgen.command()
@options.model("textgen", exported=True)
@click.option("--prompt", default="ROMEO:", show_default=True,
              help="Text to start from; characters the model never saw are skipped.")
@click.option("--length", type=click.IntRange(0, INT32_MAX), default=500, show_default=True,
              help="Characters to generate after the prompt (0: the prompt alone).")
@click.option("--temperature", type=options.FiniteFloatRange(min=0), default=0.8, show_default=True,
              help="Below 1: safer, more repetitive; above 1: wilder; 0: always the likeliest.")
@click.option("--seed", type=click.IntRange(-(2**31), INT32_MAX),
              help="Same seed, same text, with or without --stream. Default: a random one,"
              " printed on stderr.")
@click.option("--num", type=options.COUNT, default=1, show_default=True,
              help="How many samples to write; sample i uses seed SEED+i-1.")
@click.option("--stream", is_flag=True,
              help="Print characters as they come (drives the `step` signature).")
@quiet.precheck(_sample_usage)
@quiet.without_tensorflow(lambda model_path, **_: runtimes.is_exported_file(model_path))
def sample(model_path, prompt, length, temperature, seed, num, stream):
    """Write text with a SavedModel (generated inside the graph in one call).

    The model is the newest ./saved_models/textgen/N by default, else the
    pretrained tiny-Shakespeare model installed with kerasrnn. Given an
    .onnx or .tflite file of the model's step (`kerasrnn textgen export
    --format`), runs it on onnxruntime or LiteRT without TensorFlow, printing
    characters as they come: the SavedModel's text at --temperature 0; above
    0, a seed gives its own text, not the SavedModel's (another random
    generator draws the characters).

    \b
    Examples:
      kerasrnn textgen sample --prompt "ROMEO:" --length 300 --seed 1
      kerasrnn textgen sample --model saved_models/textgen.onnx --temperature 0
      kerasrnn textgen sample --model onnx    # the pretrained model, as ONNX
    """
    import random

    if seed is None:
        seed = random.randrange(INT32_MAX - num)
        click.echo(f"seed: {seed} (pass --seed {seed} to get this text again)", err=True)
    if runtimes.is_exported_file(model_path):
        from kerasrnn.apps.textgen.sampler import StepFile, generate

        step_file = StepFile(runtimes.exported_file("textgen", model_path))
        for i in range(num):
            if num > 1:
                click.echo(f"--- sample {i + 1} (seed {seed + i}) ---")
            generate(step_file, prompt, length, temperature, (seed + i) % 2**32,
                     lambda text: click.echo(text, nl=False))
            click.echo()
        return

    import tensorflow as tf

    from kerasrnn.apps.textgen.generation import load

    # Each character is a few dozen tiny ops; handing each to a thread pool
    # costs more than it saves (benchmarks/generation.py --intra-op-threads).
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already started in this process (called from Python): keep its pool
    loaded, _ = load(model_path)
    for i in range(num):
        if num > 1:
            click.echo(f"--- sample {i + 1} (seed {seed + i}) ---")
        if length == 0:
            click.echo(prompt)
        elif stream:
            _stream(loaded, prompt, length, temperature, seed + i)
        else:
            _generate(loaded, prompt, length, temperature, seed + i)


def _evaluate_usage(carry_state, random_windows, **_):
    if carry_state and random_windows:
        raise click.UsageError("--carry-state and --random-windows are two different measures:"
                               " give one")


@textgen.command()
@options.model("textgen")
@_evaluation_text_options
@click.option("--seq-len", type=options.SEQ_LEN, default=100, show_default=True,
              help="Window length, as in training.")
@click.option("--carry-state", is_flag=True,
              help="Read the held-out text as 64 streams, carrying the state from each window"
              " to the next (char-rnn's measure): every character is predicted from all of"
              " its stream before it, not only from its window.")
@click.option("--random-windows", type=options.COUNT, metavar="N",
              help="Read N windows of --seq-len characters at random starts instead, each"
              " from a zero state (nanoGPT's estimate_loss, with N windows).")
@click.option("--seed", type=options.SEED_RANGE, default=0, show_default=True,
              help="The draw of the --random-windows starts.")
@quiet.precheck(_evaluate_usage)
def evaluate(model_path, text, dataset, seq_len, carry_state, random_windows, seed):
    """Loss (nats/char) and bits/char on the held-out last 10% of a text.

    By default the held-out text is cut into windows of --seq-len characters,
    each read from a zero state, as training measures its validation loss.

    \b
    Examples:
      kerasrnn textgen evaluate --text input.txt --carry-state
      kerasrnn textgen evaluate --text input.txt --seq-len 64 --random-windows 12000
    """
    import math
    import sys

    import tensorflow as tf

    from kerasrnn.apps.textgen import data
    from kerasrnn.apps.textgen.generation import load, vocabulary

    corpus, held_out_only, origin = data.evaluation_text(text, dataset)
    click.echo(f"text: {origin}", err=True)
    loaded, model_dir = load(model_path)
    vocab = vocabulary(loaded)
    characters = set(vocab)
    if not held_out_only:  # the part training held out
        corpus = corpus[data.held_out_start(len(corpus)):]
    known = "".join(ch for ch in corpus if ch in characters)
    held_out = data.encode(known, vocab)
    if not known:
        raise UserError(f"{origin}: not one character of its held-out part is in the model's"
                        f" vocabulary ({len(vocab)} characters): not a text like the model's")
    if len(held_out) < seq_len + 1:
        raise UserError(f"the held-out 10% of the text is shorter than --seq-len {seq_len} + 1")
    step = loaded.signatures["step"]
    state_shape = step.structured_input_signature[1]["state"].shape
    if random_windows:
        batches = list(data.random_evaluation_batches(held_out, seq_len, random_windows, seed))
    else:
        batches = list(data.evaluation_batches(held_out, seq_len, carry_state=carry_state))
    total, chars, state = 0.0, 0, None
    with click.progressbar(batches, label="evaluating", file=sys.stderr) as bar:
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
    elif random_windows:
        click.echo(f"measured on: {random_windows:,} windows of {seq_len} characters at random"
                   f" starts (seed {seed}), each from a zero state")
    else:
        click.echo(f"measured on: windows of {seq_len} characters, each from a zero state")
    click.echo(f"held-out characters: {chars:,}")
    click.echo(f"loss: {loss:.4f} nats/char")
    click.echo(f"bits per character: {loss / math.log(2):.4f}")


def _export_run(workdir, out, format):
    from kerasrnn.apps.textgen.train import export_run

    export_run(workdir, out, format=format)


textgen.add_command(commands.export_command("textgen", _export_run,
                                            formats=("saved_model", *runtimes.FORMATS)))


@textgen.command()
@options.model("textgen")
@click.option("--text", type=click.Path(dir_okay=False, path_type=Path),
              help="A UTF-8 text to read, from its held-out last 10% (as training holds it"
              " out). Default: the text the model was trained on, as its export recorded"
              " it (for tiny Shakespeare, its held-out 10% installed with kerasrnn where the"
              " wheel carries it).")
@click.option("--from-start", is_flag=True,
              help="Read the text from its start instead of its held-out last 10%.")
@click.option("--chars", type=click.IntRange(1, 20000), default=3000, show_default=True,
              help="How many characters to read.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("inspect"), show_default=True,
              help="Folder for index.html and summary.png.")
def inspect(model_path, text, from_start, chars, out):
    """Write a web page of what each unit of a character model tracks.

    One pass of the model over the held-out last 10% of a text (or its
    start, --from-start) gives every state and gate after every character.
    The page (OUT/index.html, one self-contained file) colours the text by
    any unit, lists the unit that follows each simple text feature best
    (quotes, brackets, line position, ...), plots the gates' saturation,
    and colours each character by the model's surprise. OUT/summary.png sums
    it up. See docs/inspect.md.

    \b
    Example:
      kerasrnn textgen inspect --text input.txt --out inspect
      # then open inspect/index.html in a browser
    """
    import time

    import tensorflow as tf

    from kerasrnn.apps.common.run_folder import output_folder
    from kerasrnn.apps.textgen import data
    from kerasrnn.apps.textgen.generation import load, training_source, vocabulary
    from kerasrnn.apps.textgen.inspect import analyse, write_page, write_summary

    with output_folder(out, "--out", files=("index.html", "summary.png")):
        loaded, model_dir = load(model_path)
        if "activations" not in loaded.signatures:
            raise UserError(f"{model_dir}: no `activations` signature (an export of an older"
                            " kerasrnn): export its run again with `kerasrnn textgen export`")
        held_out_only = False
        if text is not None:
            corpus = data.read_text(text)
            click.echo(f"text: {text}", err=True)
        else:
            source = training_source(model_dir) or {}
            if source.get("text"):
                if not Path(source["text"]).is_file():
                    raise UserError(f"{model_dir} was trained on {source['text']}, which is not"
                                    " there any more: pass --text FILE")
                corpus = data.read_text(source["text"])
                click.echo(f"text: {source['text']} ({_part_read(from_start)})", err=True)
            elif source.get("dataset"):
                corpus, held_out_only, origin = data.evaluation_text(
                    dataset=source["dataset"], from_start=from_start)
                click.echo(f"text: {origin} ({_part_read(from_start)})", err=True)
            else:
                raise UserError(f"{model_dir}: its training text is not recorded:"
                                " pass --text FILE")
        if not from_start and not held_out_only:  # the part training held out
            corpus = corpus[data.held_out_start(len(corpus)):]
        vocab = vocabulary(loaded)
        known = set(vocab)
        passage = "".join(ch for ch in corpus if ch in known)[:chars]
        if not passage:
            raise UserError("no character of the text is in the model's vocabulary")
        started = time.monotonic()
        ids = data.encode(passage, vocab)
        activations = loaded.signatures["activations"](ids=tf.constant(ids[None]))
        analysis = analyse(passage, ids, vocab, {k: v.numpy() for k, v in activations.items()})
        seconds = time.monotonic() - started
        page = write_page(analysis, out / "index.html", str(model_dir))
        summary = write_summary(analysis, out / "summary.png")
    click.echo(f"read {len(passage):,} characters in {seconds:.1f} s")
    for found in analysis["found"][:5]:
        click.echo(f"  {found['feature']}: layer {found['layer']}, unit {found['unit']},"
                   f" r = {found['r']:+.3f}")
    click.echo(f"wrote {page} and {summary}")
