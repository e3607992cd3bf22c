"""The data a wheel built with it carries (setup.py): found here, or None.

A wheel built with `KERASRNN_BUNDLE_DATA=DIR` installs kerasrnn/data/ with
the held-out last 10% of tiny Shakespeare and MNIST's test split, so that
`textgen evaluate`, `textgen inspect`, `mnist evaluate`, `plot` and
`explain` need no download and no arguments. A checkout, or a wheel built
without it, has no such folder, and the commands read tensorflow-datasets.
"""

from pathlib import Path

import kerasrnn

FOLDER = Path(kerasrnn.__file__).resolve().parent / "data"
SHAKESPEARE_HELD_OUT = "tiny_shakespeare_held_out.txt"
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def shakespeare_held_out():
    """The installed held-out 10% of tiny Shakespeare (a path), or None."""
    path = FOLDER / SHAKESPEARE_HELD_OUT
    return path if path.is_file() else None


def mnist_test():
    """The installed folder of MNIST's test split (the two IDX files), or None."""
    path = FOLDER / "mnist"
    return path if all((path / name).is_file() for name in MNIST_TEST_FILES) else None
