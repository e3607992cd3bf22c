"""Models exported to ONNX or LiteRT, run without TensorFlow.

A command given an `.onnx` or `.tflite` file runs it on onnxruntime or on
LiteRT's interpreter and never imports TensorFlow or Keras, so it answers
without TensorFlow's seconds of start-up. Both runtimes are in the `deploy`
extra; without them, opening a file says what to install.

Nothing here imports TensorFlow, Keras or the library at the top; `export`,
which writes such a file with Keras, imports them.
"""

import os
import sys
from pathlib import Path

import numpy as np

from kerasrnn.apps.common import quiet
from kerasrnn.errors import UserError

# --format NAME -> the file's suffix
FORMATS = {"onnx": ".onnx", "litert": ".tflite"}
SUFFIXES = tuple(FORMATS.values())
INSTALL = 'pip install "kerasrnn[deploy]"'


def is_exported_file(given):
    """Whether `--model` names a file for onnxruntime or LiteRT: by its
    suffix, or by a format's name (`--model onnx`: the pretrained model in
    that format, see `exported_file`)."""
    if given is None:
        return False
    return Path(given).suffix.lower() in SUFFIXES or (
        str(given) in FORMATS and not Path(given).exists())


def exported_file(app, given):
    """The ONNX or LiteRT file `--model` names. `onnx` and `litert` (where
    no such file or folder is here) name the pretrained `app` model
    installed with kerasrnn in that format; the path used is said on stderr."""
    path = Path(given)
    if path.suffix.lower() in SUFFIXES:
        return path
    from kerasrnn.apps.common.model_lookup import pretrained_dir

    packaged = pretrained_dir()
    path = packaged / (app + FORMATS[str(given)]) if packaged is not None else None
    if path is None or not path.is_file():
        shipped = [name for name, suffix in FORMATS.items()
                   if packaged is not None and (packaged / (app + suffix)).is_file()]
        raise UserError(f"--model {given}: the pretrained {app} model is not installed in that"
                        f" format (installed: {', '.join(shipped) or 'none'}); export one with"
                        f" `kerasrnn {app} export --format {given}`")
    print(f"model: {path} (pretrained, installed with kerasrnn)", file=sys.stderr)
    return path


class OnnxModel:
    """An `.onnx` file on onnxruntime's CPU.

    `model(x)` feeds its one input and returns its first output;
    `model(name=array, ...)` feeds inputs by name and returns every output
    by name. `input_shapes` maps each input's name to its shape (None where
    any size goes).
    """

    def __init__(self, path):
        try:
            import onnxruntime
        except ImportError:
            raise UserError(f"{path}: running an ONNX file needs onnxruntime: {INSTALL}") from None
        try:
            self.session = onnxruntime.InferenceSession(str(path),
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for a bad file
            raise UserError(f"{path}: not an ONNX model onnxruntime can run ({error})") from None
        self.input_shapes = {i.name: tuple(d if isinstance(d, int) else None for d in i.shape)
                             for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.input_shape = next(iter(self.input_shapes.values()))

    def __call__(self, x=None, outputs=None, **inputs):
        """`outputs`: the names of the outputs wanted (default: all)."""
        if x is not None:
            return self.session.run(None, {next(iter(self.input_shapes)): x})[0]
        names = outputs or self.outputs
        return dict(zip(names, self.session.run(names, inputs), strict=True))


class LiteRTModel:
    """A `.tflite` file on LiteRT's interpreter, called as `OnnxModel` is.

    The interpreter gets a thread per CPU core: LiteRT's default is one,
    which leaves the XNNPACK delegate's matrix products on one core where
    onnxruntime uses them all.

    A file exported for a fixed batch (LiteRT's fused LSTM needs one) runs a
    larger batch in parts of that size. LiteRT's fused LSTM keeps its last
    state in the interpreter from one call to the next, so each call starts
    by resetting the interpreter's variables: every call starts from the
    model's initial state, as Keras's does.
    """

    def __init__(self, path):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise UserError(f"{path}: running a LiteRT file needs ai-edge-litert: {INSTALL}") \
                from None
        try:
            # The XNNPACK delegate announces itself on stderr as it starts.
            with quiet.start_up_lines_filtered():
                self.interpreter = Interpreter(model_path=str(path),
                                               num_threads=os.cpu_count())
                self.interpreter.allocate_tensors()  # before the runner holds its tensors
            self.runner = self.interpreter.get_signature_runner()
        except Exception as error:
            raise UserError(f"{path}: not a LiteRT model its interpreter can run"
                            f" ({error})") from None
        details = self.runner.get_input_details()
        self.input_shapes = {
            name: tuple(int(n) if n > 0 else None for n in d["shape_signature"])
            for name, d in details.items()}
        self.input_shape = next(iter(self.input_shapes.values()))
        self.fixed_batch = self.input_shape[0]

    def __call__(self, x=None, outputs=None, **inputs):
        """`outputs`: the names of the outputs wanted (LiteRT computes all)."""
        if x is not None:
            if self.fixed_batch is not None and len(x) != self.fixed_batch:
                size = self.fixed_batch
                return np.concatenate([self(x[i:i + size]) for i in range(0, len(x), size)])
            return next(iter(self(**{next(iter(self.input_shapes)): x}).values()))
        self.interpreter.reset_all_variables()
        return self.runner(**inputs)


def operators(path):
    """The operators of an `.onnx` file (its graph's node types) or of a
    `.tflite` file (every subgraph's: builtin ones by name, others as
    `CUSTOM:<name>`, Flex ops among them), as a set of names."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnx

        return {node.op_type for node in onnx.load(str(path)).graph.node}
    from ai_edge_litert import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    model = schema.Model.GetRootAs(path.read_bytes())
    found = set()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for i in range(graph.OperatorsLength()):
            code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            found.add("CUSTOM:" + code.CustomCode().decode()
                      if builtin == schema.BuiltinOperator.CUSTOM else names[builtin])
    return found


def load(path):
    """The `.onnx` or `.tflite` file at `path`, ready to run."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return OnnxModel(path) if path.suffix.lower() == ".onnx" else LiteRTModel(path)


def export(model, path, format, input_signature=None):
    """Writes `model` to `path` with Keras's `model.export(format=...)`,
    atomically: into a temporary file beside it, then renamed, so that an
    interrupted export leaves the previous file or none, never half of one."""
    import tempfile
    import warnings

    path = Path(path)
    try:
        if format == "onnx":  # Keras's ONNX exporter needs both
            import onnx  # noqa: F401
            import tf2onnx  # noqa: F401
        else:
            import ai_edge_litert  # noqa: F401
    except ImportError as error:
        raise UserError(f"--format {format} needs {error.name}: {INSTALL}") from None
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-",
                                         suffix=path.suffix)
    os.close(handle)
    try:
        with warnings.catch_warnings():  # Keras's tf2onnx shim warns about NumPy's np.object
            warnings.simplefilter("ignore", FutureWarning)
            model.export(temporary, format=format, verbose=False,
                         input_signature=input_signature)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as open() would have made it
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path
