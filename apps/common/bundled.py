"""The evaluation data installed with kerasrnn: found here, or None.

apps/data/ (installed as kerasrnn/apps/data/) holds the data the README's
results are measured on: the held-out last 10% of tiny Shakespeare, and
MNIST's test split as distributed, so that `textgen evaluate`, `textgen
inspect`, `mnist evaluate`, `plot` and `explain` need no download and no
arguments. Their sources and licences are in NOTICE. Where the folder is
missing (a copy of the package without it), the commands read
tensorflow-datasets.
"""

from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "data"
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
