"""Keeps TensorFlow's native log lines off the terminal.

TensorFlow's C++ code logs through Abseil. `TF_CPP_MIN_LOG_LEVEL` still
silences TensorFlow's own lines (the oneDNN and CPU-feature notes), but
lines logged through Abseil before `absl::InitializeLog()` is called go to
stderr whatever the level (abseil/abseil-cpp#1718, #1957): the "All log
messages before absl::InitializeLog()" warning, cudart_stub's "Could not
find cuda drivers", and cuInit's error on a machine without a GPU. Python
cannot call `InitializeLog`, and TensorFlow 2.21 offers no switch for it.

So the smallest mechanism that works: before TensorFlow is imported, file
descriptor 2 is pointed at a pipe, and a thread copies to the real stderr
every line that is not such a native log line. Python's own stderr (errors,
tracebacks, kerasrnn's messages) goes through the same pipe, in order. At
exit the pipe is closed and drained. `kerasrnn --verbose` (or
KERASRNN_VERBOSE=1) skips all this.
"""

import atexit
import os
import re
import sys
import threading

import click

# glog/Abseil's prefix (severity, date, time, thread, file:line]) and the
# few other lines TensorFlow's native code prints at start-up.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: .* rebuild TensorFlow)"
)


def verbose():
    return os.environ.get("KERASRNN_VERBOSE", "") not in ("", "0")


def _filter_stderr():
    """Routes fd 2 through a thread that drops native log lines, until exit."""
    sys.stderr.flush()
    real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        pending = b""
        while chunk := os.read(read_end, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = [line + b"\n" for line in lines if not NATIVE_LOG_LINE.match(line)]
            # A partial line (a progress bar's) goes out at once; Abseil
            # writes its lines whole.
            if pending and not NATIVE_LOG_LINE.match(pending):
                kept.append(pending)
                pending = b""
            if kept:
                os.write(real_stderr, b"".join(kept))
        if pending and not NATIVE_LOG_LINE.match(pending):
            os.write(real_stderr, pending)

    thread = threading.Thread(target=pump, name="kerasrnn-stderr-filter", daemon=True)
    thread.start()

    def drain():
        sys.stderr.flush()
        os.dup2(real_stderr, 2)  # closes the pipe's last write end: the pump sees EOF
        thread.join(timeout=5)

    atexit.register(drain)


def start_tensorflow():
    """Imports TensorFlow and Keras with their native log lines filtered out of stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose() else "3")
    if verbose() or "tensorflow" in sys.modules:
        return
    _filter_stderr()
    import keras  # noqa: F401  (imports TensorFlow, its backend)
    import tensorflow  # noqa: F401


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
