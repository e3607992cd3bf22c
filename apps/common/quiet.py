"""Starts TensorFlow without its start-up noise on the terminal.

TensorFlow's C++ code logs through Abseil, and lines logged before
`absl::InitializeLog()` is called go to stderr whatever
`TF_CPP_MIN_LOG_LEVEL` says (abseil/abseil-cpp#1718, #1957): the "All log
messages before absl::InitializeLog()" warning, the oneDNN and CPU-feature
notes, cudart_stub's "Could not find cuda drivers", and cuInit's error on a
machine without a GPU. Python cannot call `InitializeLog`, and TensorFlow
2.21 offers no switch for it.

One more such line comes once per process, the first time TensorFlow's
oneDNN graph rewrite meets an int64 op it could rewrite: "oneDNN supports
DT_INT64 only on platforms with AVX-512", logged as an error though it only
says which kernel runs. The start-up runs one such tiny graph so that it
comes inside the window.

So, only while TensorFlow is imported, finds its devices and meets its first
graph (the start-up window), file descriptor 2 is pointed at a pipe, and a thread copies to the
real stderr every line except the known start-up lines above, matched by
pattern; a fatal line ("F…", "Check failed") is never dropped. When the
window closes, fd 2 is the real stderr again and the pipe is drained before
the command goes on, so that afterwards a crash's trace, a TensorFlow error,
a closed pipe or a terminal's `isatty` behave exactly as without the filter.
`TF_CPP_MIN_LOG_LEVEL` defaults to 2, which keeps TensorFlow's own errors.
`kerasrnn --verbose` (or KERASRNN_VERBOSE=1) skips all this.
"""

import contextlib
import os
import re
import sys
import threading

import click

from kerasrnn.errors import UserError

# The lines TensorFlow (2.16 to 2.21, CPU and CUDA builds) prints while it is
# imported and finds its devices, and nothing else. A glog/Abseil line starts
# with severity, date, time, thread and file:line]; fatal ones (F) never match.
_GLOG = rb"[IWE]\d{4} [\d:.]+\s+\d+ "
STARTUP_NOISE = re.compile(
    rb"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called"
    # LiteRT's interpreter, as it starts (apps/common/runtimes.py)
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
    rb"|To enable the following instructions: .* rebuild TensorFlow"
    + rb"|" + _GLOG + rb"(?:"
    rb"port\.cc:\d+\] oneDNN custom operations are on"
    rb"|cudart_stub\.cc:\d+\] Could not find cuda drivers"
    rb"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"
    rb"|cuda_(?:platform|executor|diagnostics)\.cc:\d+\] "
    rb"(?:failed call to cuInit|retrieving CUDA diagnostic|kernel driver does not appear|"
    rb"hostname:|libcuda reported version)"
    rb"|cuda_(?:dnn|fft|blas)\.cc:\d+\] Unable to register cu(?:DNN|FFT|BLAS) factory"
    rb"|computation_placer\.cc:\d+\] computation placer already registered"
    rb"|util\.cc:\d+\] oneDNN supports DT_INT64 only on platforms with AVX-512"
    rb"|\S+:\d+\] TF-TRT Warning: Could not find TensorRT"
    rb"))"
)


def verbose():
    return os.environ.get("KERASRNN_VERBOSE", "") not in ("", "0")


class _StartupFilter:
    """fd 2 through a pipe and a thread that drops STARTUP_NOISE, until `close`."""

    def __init__(self):
        _flush_stderr()
        self.real_stderr = os.dup(2)
        self.read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self.thread = threading.Thread(target=self._pump, name="kerasrnn-startup-filter",
                                       daemon=True)
        self.thread.start()

    def _write(self, data):
        try:
            os.write(self.real_stderr, data)
        except OSError:  # stderr closed (a pipe whose reader left): keep draining
            pass

    def _pump(self):
        pending = b""
        while chunk := os.read(self.read_end, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not STARTUP_NOISE.match(line))
            if kept:
                self._write(kept)
        if pending and not STARTUP_NOISE.match(pending):
            self._write(pending)

    def close(self):
        """Gives fd 2 back and writes out everything the window held."""
        _flush_stderr()
        os.dup2(self.real_stderr, 2)  # the pipe's last write end goes: the pump sees EOF
        self.thread.join()
        os.close(self.read_end)
        os.close(self.real_stderr)


def _first_graph(tf):
    """Runs one int64 op through TensorFlow's oneDNN graph rewrite, for its
    once-per-process line. In a v1 session, not eagerly: the eager context
    must stay unset until a MultiWorkerMirroredStrategy configures its
    collective ops ("Collective ops must be configured at program startup")."""
    graph = tf.Graph()
    with graph.as_default():
        transposed = tf.transpose(tf.zeros([1, 2], tf.int64))
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(transposed)


def _keep_fd_2_taken():
    """With stderr closed (`2>&-`), /dev/null takes fd 2: else the next file
    or pipe opened would get number 2, and every write meant for stderr
    (TensorFlow's logs, the filter's own pipe) would land in it."""
    try:
        os.fstat(2)
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        if devnull != 2:
            os.dup2(devnull, 2)
            os.close(devnull)


def _flush_stderr():
    if sys.stderr is not None:  # None when Python started with fd 2 closed
        sys.stderr.flush()


def _tensorflow_backend():
    """The apps train, evaluate and export on Keras's TensorFlow backend: it
    is chosen where nothing chose a backend (over ~/.keras/keras.json), and
    another one in KERAS_BACKEND is refused in one line, before anything is
    written or imported."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen is None:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    elif chosen != "tensorflow":
        raise UserError(f"KERAS_BACKEND={chosen}: the kerasrnn commands run on Keras's"
                        " TensorFlow backend; unset KERAS_BACKEND or set it to tensorflow"
                        " (the library's layers run on any backend)")


def start_tensorflow():
    """Imports TensorFlow and Keras, and lets TensorFlow find its devices, quietly."""
    _tensorflow_backend()
    _keep_fd_2_taken()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose() else "2")
    if verbose() or "tensorflow" in sys.modules:
        return
    window = _StartupFilter()
    try:
        import keras  # noqa: F401  (imports TensorFlow, its backend)
        import tensorflow as tf

        tf.config.list_physical_devices()  # device discovery: cuInit's lines
        _first_graph(tf)
    finally:
        window.close()


@contextlib.contextmanager
def start_up_lines_filtered():
    """Drops STARTUP_NOISE from fd 2 while the block runs (unless --verbose):
    for a runtime other than TensorFlow's that announces itself as it starts."""
    if verbose():
        yield
        return
    _keep_fd_2_taken()
    window = _StartupFilter()
    try:
        yield
    finally:
        window.close()


def precheck(check):
    """Runs `check(**params)` before TensorFlow starts: the usage errors that
    no single option can find (two options that exclude each other), found
    as fast as click's own."""

    def decorate(callback):
        callback.prechecks = [check, *getattr(callback, "prechecks", [])]
        return callback

    return decorate


def without_tensorflow(when):
    """Lets a command run without TensorFlow where `when(**params)` is true
    (given an ONNX or LiteRT file, kerasrnn/apps/common/runtimes.py)."""

    def decorate(callback):
        callback.runs_without_tensorflow = when
        return callback

    return decorate


class Command(click.Command):
    """A click command that starts TensorFlow quietly before its callback runs.

    Its options are parsed first, and its `precheck`s run, so `--help` and
    usage errors stay instant.
    """

    def invoke(self, ctx):
        for check in getattr(self.callback, "prechecks", []):
            check(**ctx.params)
        without = getattr(self.callback, "runs_without_tensorflow", None)
        if without is None or not without(**ctx.params):
            start_tensorflow()
        return super().invoke(ctx)


class Group(click.Group):
    """A click group whose commands are `Command`s.

    Its `--help` lists each command with the first sentence of its help in
    full, wrapped, where click would cut it at the terminal's width.
    """

    command_class = Command

    def format_commands(self, ctx, formatter):
        rows = [(name, command.get_short_help_str(limit=1000))
                for name, command in sorted(self.commands.items()) if not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
