"""Build hook: a wheel that carries the data its headline results are measured on.

Everything else about the package is in setup.cfg. The repository holds no
data, so a plain `pip wheel .` builds a wheel without any, whose commands read
tensorflow-datasets (or `--data-dir`, `--text`) as a checkout does. Built
with `KERASRNN_BUNDLE_DATA=DIR`, where DIR holds the files as they are
distributed,

    DIR/tinyshakespeare/input.txt                     (char-rnn's tiny Shakespeare)
    DIR/mnist/t10k-images-idx3-ubyte.gz               (MNIST's test split)
    DIR/mnist/t10k-labels-idx1-ubyte.gz

the wheel also installs, in kerasrnn/data/ (kerasrnn/apps/common/bundled.py
finds them):

    tiny_shakespeare_held_out.txt   the last 10% of input.txt: the part
                                    training holds out, which `textgen
                                    evaluate` and `inspect` read
    mnist/t10k-*.gz                 the two files, unchanged: the digits
                                    `mnist evaluate`, `plot` and `explain` read

so that the README's results can be checked offline, with no arguments. Their
sources and licences are in NOTICE.
"""

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# apps/textgen/data.py's VALIDATION_FRACTION (tests/test_wheel.py checks they agree).
HELD_OUT_FRACTION = 0.1
MNIST_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def bundle_data(source, target):
    """Writes the held-out text and MNIST's test split from `source` into `target`."""
    text_path = source / "tinyshakespeare" / "input.txt"
    needed = [text_path] + [source / "mnist" / name for name in MNIST_TEST_FILES]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        raise SystemExit(f"KERASRNN_BUNDLE_DATA={source}: missing {', '.join(missing)}")
    (target / "mnist").mkdir(parents=True, exist_ok=True)
    text = text_path.read_text(encoding="utf-8")
    # The cut `kerasrnn textgen train` and `evaluate` make on the whole text.
    held_out = text[int(len(text) * (1 - HELD_OUT_FRACTION)):]
    (target / "tiny_shakespeare_held_out.txt").write_text(held_out, encoding="utf-8")
    for name in MNIST_TEST_FILES:
        shutil.copyfile(source / "mnist" / name, target / "mnist" / name)


class BuildPyWithData(build_py):
    """setuptools' build_py, then the data when KERASRNN_BUNDLE_DATA names a folder."""

    def run(self):
        super().run()
        source = os.environ.get("KERASRNN_BUNDLE_DATA")
        if source:
            bundle_data(Path(source), Path(self.build_lib) / "kerasrnn" / "data")


setup(cmdclass={"build_py": BuildPyWithData})
