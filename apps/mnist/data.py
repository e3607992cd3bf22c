"""MNIST and Fashion-MNIST: from tensorflow-datasets or the four IDX files.

Both sources give the same thing: uint8 images `(n, 28, 28)` and int64 labels
`(n,)` for the train and the test split. `validation_split` takes the
validation part from the training data (never from the test split), and
`train_dataset` and `eval_dataset` make the tf.data pipelines that `fit` and
`evaluate` read, with pixel values scaled to 0-1.
"""

import gzip
from pathlib import Path

import numpy as np
import tensorflow as tf

from kerasrnn.apps.common import bundled
from kerasrnn.apps.common.datasets import tfds_load
from kerasrnn.errors import UserError

DATASETS = ("mnist", "fashion_mnist")
# The four files MNIST (and Fashion-MNIST, same layout) is distributed as.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def _find(directory, name):
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise UserError(f"{directory}: no {name}.gz or {name} (the standard MNIST IDX files)")


def _read_idx(path, magic, dims):
    """The array stored in one IDX file, checked against its header."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise UserError(f"{path}: cannot read it ({error})") from None
    header_size = 4 + 4 * dims
    if len(data) < header_size:
        raise UserError(f"{path}: truncated ({len(data)} bytes, shorter than its header)")
    found_magic = int.from_bytes(data[:4], "big")
    if found_magic != magic:
        raise UserError(f"{path}: wrong magic number {found_magic} (expected {magic})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    expected = int(np.prod(shape)) + header_size
    if len(data) != expected:
        raise UserError(
            f"{path}: {len(data)} bytes, but its header announces {shape} ({expected} bytes):"
            " truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def load_idx(directory, split):
    """Images `(n, 28, 28)` uint8 and labels `(n,)` int64 of `split` from IDX files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: no such folder")
    images_name, labels_name = IDX_FILES[split]
    images_path = _find(directory, images_name)
    labels_path = _find(directory, labels_name)
    images = _read_idx(images_path, IMAGES_MAGIC, 3)
    labels = _read_idx(labels_path, LABELS_MAGIC, 1)
    if images.shape[1:] != (28, 28):
        raise UserError(f"{images_path}: images are {images.shape[1:]}, not 28x28")
    if len(images) != len(labels):
        raise UserError(
            f"{images_path}: {len(images)} images but {labels_path.name} has {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise UserError(f"{labels_path}: label {labels.max()} is not a digit class 0-9")
    return images, labels.astype(np.int64)


def load_tfds(name, split):
    """Images and labels of `split` from tensorflow-datasets (downloaded once)."""
    import tensorflow_datasets as tfds

    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}: choose from {', '.join(DATASETS)}")
    files = ("MNIST's two test files (t10k-*)" if split == "test"
             else "the four MNIST IDX files")
    dataset = tfds_load(name, split, f"--data-dir DIR with {files}", as_supervised=True)
    images, labels = next(iter(tfds.as_numpy(dataset.batch(10**6))))
    return images.reshape(-1, 28, 28), labels.astype(np.int64)


def load(split, dataset="mnist", data_dir=None):
    """Images and labels of `split` ("train" or "test"), from `data_dir` if given."""
    if data_dir is not None:
        return load_idx(data_dir, split)
    return load_tfds(dataset, split)


def load_test_split(dataset="mnist", data_dir=None):
    """The test split that evaluate, plot and explain read, and where it came from.

    From `data_dir` if given; else, for MNIST, the copy installed with
    kerasrnn (apps/common/bundled.py), which needs no download; else
    tensorflow-datasets. Returns `(images, labels, origin)`, `origin` a few
    words for the user.
    """
    if data_dir is not None:
        return (*load_idx(data_dir, "test"), f"{data_dir} (test split)")
    installed = bundled.mnist_test()
    if dataset == "mnist" and installed is not None:
        return (*load_idx(installed, "test"), "MNIST's test split, installed with kerasrnn")
    return (*load_tfds(dataset, "test"), f"tensorflow-datasets' {dataset} (test split)")


def to_float(images):
    """uint8 pixels 0-255 as float32 0-1, the models' input."""
    return images.astype(np.float32) / 255.0


def validation_split(images, labels, fraction, seed):
    """(train, validation) parts of the training data, split at random by `seed`."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"the validation fraction must be in (0, 1), got {fraction}")
    order = np.random.default_rng(seed).permutation(len(images))
    cut = len(images) - max(1, int(round(fraction * len(images))))
    train, val = order[:cut], order[cut:]
    return (images[train], labels[train]), (images[val], labels[val])


def train_dataset(images, labels, batch_size, epoch_seeds):
    """The training pipeline: shuffle by epoch, batch, prefetch.

    Args:
        images, labels: The training part, uint8 images and int labels.
        batch_size: The global batch size.
        epoch_seeds: A `kerasrnn.apps.common.training.EpochSeeds`, which must also be
            passed to `fit` as a callback.
    """
    # Gathering by an epoch-keyed permutation instead of Dataset.shuffle keeps
    # resumed runs identical to uninterrupted ones (see EpochSeeds).
    table_x, table_y = tf.constant(to_float(images)), tf.constant(labels)
    data = epoch_seeds.indices(len(images)).map(
        lambda i: (tf.gather(table_x, i), tf.gather(table_y, i))
    )
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def eval_dataset(images, labels, batch_size):
    """A batched, cached pipeline for validation and testing."""
    data = tf.data.Dataset.from_tensor_slices((to_float(images), labels))
    return data.batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)
