"""Keeps TensorFlow's native log lines off the terminal.

TensorFlow's C++ code logs through Abseil. `TF_CPP_MIN_LOG_LEVEL` still
silences TensorFlow's own lines (the oneDNN and CPU-feature notes), but
lines logged through Abseil before `absl::InitializeLog()` is called go to
stderr whatever the level (abseil/abseil-cpp#1718, #1957): the "All log
messages before absl::InitializeLog()" warning, cudart_stub's "Could not
find cuda drivers", and cuInit's error on a machine without a GPU. Python
cannot call `InitializeLog`, and TensorFlow 2.21 offers no switch for it.

So the smallest mechanism that works: while TensorFlow is imported and its
devices are initialised, which is when those lines are written, file
descriptor 2 points to a temporary file; afterwards it is restored, and
whatever in the file is not such a log line is passed on to stderr.
`kerasrnn --verbose` (or KERASRNN_VERBOSE=1) skips all this.
"""

import contextlib
import os
import re
import sys
import tempfile

import click

# glog/Abseil's prefix: severity, date, time, thread, file:line]
NATIVE_LOG_LINE = re.compile(
    r"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def verbose():
    return os.environ.get("KERASRNN_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def _native_stderr_filtered():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if not NATIVE_LOG_LINE.match(line):
                    print(line, file=sys.stderr)


def start_tensorflow():
    """Imports TensorFlow and Keras and initialises the devices, without native log lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if not verbose() else "0")
    if verbose() or "tensorflow" in sys.modules:
        return
    with _native_stderr_filtered():
        import keras  # noqa: F401  (imports TensorFlow, its backend)
        import tensorflow as tf

        tf.config.list_logical_devices()  # device initialisation: cuInit and its error line


class Command(click.Command):
    """A click command that starts TensorFlow quietly before its callback runs.

    Its options are parsed first, so `--help` and usage errors stay instant.
    """

    def invoke(self, ctx):
        start_tensorflow()
        return super().invoke(ctx)


class Group(click.Group):
    """A click group whose commands are `Command`s."""

    command_class = Command
