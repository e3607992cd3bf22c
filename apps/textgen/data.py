"""Text for the character model: a UTF-8 file or tensorflow-datasets' tiny_shakespeare.

The vocabulary is the sorted set of characters of the training text; the
SavedModel carries it, so sampling needs no training data. The last 10% of the
text is held out for validation.
"""

from pathlib import Path

import numpy as np

from kerasrnn.apps.common import bundled
from kerasrnn.apps.common.datasets import tfds_load
from kerasrnn.errors import UserError

VALIDATION_FRACTION = 0.1


def read_text(path):
    """The text of a UTF-8 file, with one-line errors for what cannot be text."""
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise UserError(f"{path}: a folder, not a text file")
        if path.exists():  # a FIFO, a socket, a device: nothing to read whole
            raise UserError(f"{path}: not a regular file (a pipe, socket or device)")
        raise UserError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw:
        raise UserError(f"{path}: the file is empty")
    nul = raw.find(b"\x00")
    if nul >= 0:  # valid UTF-8, but no text holds one
        raise UserError(f"{path}: a binary file, not text (a NUL byte at byte {nul:,})")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None


def tfds_text(name="tiny_shakespeare"):
    """The train, validation and test splits of a tensorflow-datasets text, joined."""
    import tensorflow_datasets as tfds

    splits = tfds_load(name, ["train", "validation", "test"], "--text FILE (any UTF-8 text)")
    return "".join(
        example["text"].decode("utf-8") for split in splits for example in tfds.as_numpy(split)
    )


def evaluation_text(path=None, dataset="tiny_shakespeare", from_start=False):
    """The text that evaluate and inspect read: `(text, held_out_only, origin)`.

    From the file `path` if given; else, for tiny Shakespeare's held-out
    part, the copy installed with kerasrnn (apps/common/bundled.py), which
    needs no download; else tensorflow-datasets' `dataset`, whole.
    `held_out_only` says the text is already the held-out last 10% (not to
    be cut again); `origin` says in a few words where it came from.
    """
    if path is not None:
        return read_text(path), False, str(path)
    installed = bundled.shakespeare_held_out()
    if dataset == "tiny_shakespeare" and installed is not None and not from_start:
        return (read_text(installed), True,
                "the held-out 10% of tiny Shakespeare, installed with kerasrnn")
    return tfds_text(dataset), False, f"tensorflow-datasets' {dataset}"


def vocabulary(text):
    """The sorted distinct characters of `text`."""
    return sorted(set(text))


def encode(text, vocab):
    """Character ids of `text` (every character must be in `vocab`)."""
    index = {ch: i for i, ch in enumerate(vocab)}
    return np.fromiter((index[ch] for ch in text), dtype=np.int32, count=len(text))


def held_out_start(length):
    """Where the held-out last 10% of a text of `length` characters starts.

    The one cut of a text that training, `evaluate` and `inspect` all make,
    on the whole text as read (a model's vocabulary is its training text's,
    so training's ids are its characters one for one); characters a model
    lacks are dropped only after it.
    """
    return int(length * (1 - VALIDATION_FRACTION))


def split(ids, seq_len, batch_size, random_offsets=False):
    """(training ids, validation ids, batch size): the last 10% held out.

    Each part must hold one window; a text too small for a whole training
    batch gets smaller batches rather than none.
    """
    cut = held_out_start(len(ids))
    train, val = ids[:cut], ids[cut:]
    need = seq_len + 1
    if len(val) < need:
        raise UserError(
            f"the text is too short: {len(ids):,} characters; its last 10% must hold one"
            f" training sequence of --seq-len {seq_len} + 1"
        )
    if len(train) < need:
        raise UserError(f"the text is too short for --seq-len {seq_len}")
    batch_size = min(batch_size, window_count(len(train), seq_len, random_offsets))
    return train, val, batch_size


def window_count(length, seq_len, random_offsets=False):
    """How many windows of `seq_len + 1` characters `windows` cuts from `length` characters.

    With random offsets one window is given up, so that the grid can start
    anywhere in the first `seq_len + 1` characters.
    """
    size = seq_len + 1
    if random_offsets:
        return max(1, (length - seq_len) // size)
    return length // size


def windows(ids, seq_len, batch_size, epoch_seeds=None, random_offsets=False):
    """Batches of (input, target) windows: target is the input shifted by one character.

    Truncated back-propagation through time over `seq_len` steps: the text is
    cut into consecutive windows of `seq_len + 1` characters; `epoch_seeds`
    (an `EpochSeeds`) orders them by epoch, or they keep the text's order.
    With `random_offsets` (needs `epoch_seeds`) each epoch starts the cut at
    its own offset, so the model meets new windows every epoch instead of the
    same ones in a new order: fixed windows are memorised within a few epochs.
    """
    # Imported here alone: the rest of the module is NumPy's, usable without
    # starting TensorFlow (benchmarks/versus_nanogpt.py draws its windows so).
    import tensorflow as tf

    size = seq_len + 1
    count = window_count(len(ids), seq_len, random_offsets)
    slack = len(ids) - count * size  # characters the grid can be shifted by
    text = tf.constant(ids)
    order = tf.data.Dataset.range(count) if epoch_seeds is None else epoch_seeds.indices(count)

    def window(i):
        start = i * size
        if random_offsets:
            start += epoch_seeds.offset(slack + 1)
        # A slice at a computed start has no static length: say it, so that
        # the model is traced for windows of `seq_len` steps (a scan over
        # time, kerasrnn/minimal.py, needs the length when it is traced).
        chars = tf.ensure_shape(text[start : start + size], [size])
        return chars[:-1], chars[1:]

    data = order.map(window)
    return data.batch(batch_size, drop_remainder=epoch_seeds is not None).prefetch(tf.data.AUTOTUNE)


def random_window_starts(length, seq_len, count, seed):
    """`count` starts of windows of `seq_len + 1` characters in a text of
    `length`, drawn uniformly with replacement: nanoGPT's `estimate_loss`
    draws its validation windows this way."""
    return np.random.default_rng(seed).integers(0, length - seq_len, count)


def random_evaluation_batches(ids, seq_len, count, seed, batch_size=256):
    """Yields (inputs, targets, carried) for `count` random windows of `ids`
    (`random_window_starts`), as `evaluation_batches` does: each window from
    a zero state, so `carried` is always False."""
    starts = random_window_starts(len(ids), seq_len, count, seed)
    for i in range(0, count, batch_size):
        chars = np.stack([ids[s : s + seq_len + 1] for s in starts[i : i + batch_size]])
        yield chars[:, :-1], chars[:, 1:], False


def evaluation_batches(ids, seq_len, batch_size=64, carry_state=False):
    """Yields (inputs, targets, carried) covering `ids`, targets shifted by one character.

    `carried` says whether the batch continues the previous batch's rows, so
    that its state should be carried over rather than start from zero.

    - Without `carry_state`: the windows of `windows`, the very batches
      training measures its validation loss on, each read from a zero state.
    - With `carry_state`: `ids` split into `batch_size` contiguous streams,
      read `seq_len` characters at a time, so every character is predicted
      from all of its stream before it (char-rnn's validation loss).
    """
    if not carry_state:
        for inputs, targets in windows(ids, seq_len, batch_size).as_numpy_iterator():
            yield inputs, targets, False
        return
    streams = min(batch_size, len(ids) // (seq_len + 1))
    length = len(ids) // streams
    grid = ids[: streams * length].reshape(streams, length)
    # The last target of one batch is the first input of the next.
    for start in range(0, length - 1, seq_len):
        end = min(start + seq_len, length - 1)
        yield grid[:, start:end], grid[:, start + 1 : end + 1], start > 0
