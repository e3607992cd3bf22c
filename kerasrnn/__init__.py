"""kerasrnn: recurrent cells as readable Keras 3 layers, on every backend.

    from kerasrnn import SimpleRNNCell, LSTMCell, GRUCell
    from kerasrnn import SimpleRNN, LSTM, GRU   # the cells as layers
    from kerasrnn import LayerNormLSTMCell, PeepholeLSTMCell, ...   # TFA's cells, and more
    from kerasrnn import MinGRU, MinLSTM   # gates from the input alone: a parallel scan
    kerasrnn.export_onnx(model, "model.onnx")   # model.export, SimpleRNN as ONNX's RNN
    kerasrnn.export_litert(model, "model.tflite")   # SimpleRNN as LiteRT's sequence RNN

Where things are. One module per cell family holds its cell (one time step,
for `keras.layers.RNN`; the equations and weight layout are in its
docstring), its layer (the cell over a whole sequence) and, where it has
one, its written-out backward pass: simple_rnn.py, lstm.py, gru.py,
layer_norm.py (the layer-normalized SimpleRNN, LSTM and GRU), peephole.py,
minimal.py (minGRU and minLSTM, whose layers solve a sequence by a parallel
scan).
recurrent.py holds what every family shares (the cell and layer bases) and
`choose_paths`, the one function that decides how a layer runs; bptt.py the
written-out passes' shared loops; kernels/ the hand-offs to a backend's fused
kernels; portable.py the graphs that Keras's LiteRT and ONNX exporters
convert into the runtimes' own operators, and onnx_rnn.py and litert_rnn.py
the rewrites that make `SimpleRNN` ONNX's `RNN` (`kerasrnn.export_onnx`) and
LiteRT's `UNIDIRECTIONAL_SEQUENCE_RNN` (`kerasrnn.export_litert`); serving/ the
SavedModels for TF Serving (TensorFlow only, as portable.py).

A new cell family is one new module: a cell deriving from
`recurrent.RecurrentCell` (set `gates` and `gate_names`; write
`recurrent_step`, the step after `inputs · kernel`, and `project` where
that term has work of its own, such as a normalization), a layer deriving
from `recurrent.RecurrentLayer` (set `cell_class` and `family_cell`;
`has_written_out`, `has_parallel_scan` and `fused_kernel` only where it
has them), both
registered with `keras.saving.register_keras_serializable`; then its names
in `_EXPORTS` below, and its `--cell` name in the apps' list.

The modules are imported on first use, so that `import kerasrnn` (and the
`kerasrnn` command's `--help`) does not import Keras. Their classes are
registered with Keras whatever the order of imports: at once when Keras is
already imported, else as soon as it is (or, when a module of kerasrnn is
what imports it, as soon as that module has loaded), so `.keras` files that
use them load with `keras.saving.load_model` and no `custom_objects`.
"""

import importlib
import sys

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    "SimpleRNNCell": "kerasrnn.simple_rnn",
    "SimpleRNN": "kerasrnn.simple_rnn",
    "LSTMCell": "kerasrnn.lstm",
    "LSTM": "kerasrnn.lstm",
    "GRUCell": "kerasrnn.gru",
    "GRU": "kerasrnn.gru",
    "LayerNormSimpleRNNCell": "kerasrnn.layer_norm",
    "LayerNormSimpleRNN": "kerasrnn.layer_norm",
    "LayerNormLSTMCell": "kerasrnn.layer_norm",
    "LayerNormLSTM": "kerasrnn.layer_norm",
    "LayerNormGRUCell": "kerasrnn.layer_norm",
    "LayerNormGRU": "kerasrnn.layer_norm",
    "PeepholeLSTMCell": "kerasrnn.peephole",
    "PeepholeLSTM": "kerasrnn.peephole",
    "MinGRUCell": "kerasrnn.minimal",
    "MinGRU": "kerasrnn.minimal",
    "MinLSTMCell": "kerasrnn.minimal",
    "MinLSTM": "kerasrnn.minimal",
}

# The library's functions: name -> the module that defines it
_FUNCTIONS = {"export_onnx": "kerasrnn.onnx_rnn", "export_litert": "kerasrnn.litert_rnn"}

__all__ = [*_EXPORTS, *_FUNCTIONS, "__version__"]


def __getattr__(name):
    module = _EXPORTS.get(name) or _FUNCTIONS.get(name)
    if module is not None:
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'kerasrnn' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS, *_FUNCTIONS])


_FAMILIES = tuple(dict.fromkeys(_EXPORTS.values()))  # each family's module, once

# The modules the families import as they load. While one of them is half
# loaded (its body is running), the families that import names from it
# cannot load.
_LIBRARY = ("kerasrnn.recurrent", "kerasrnn.bptt", *_FAMILIES)
_loaded = set()  # the modules whose import has finished, as wrapt reports it


def _register(_module=None):
    """Imports every family module; each registers its classes with Keras.

    Runs once Keras is loaded and no module of `_LIBRARY` is half loaded.
    When a program's first use of Keras is `from kerasrnn.recurrent import
    ...` (or `kerasrnn.lstm`), Keras is imported from inside that module,
    before it defines the names the families import from it: then this
    runs again, and does the work, when that module has loaded.
    """
    if _module is not None:
        _loaded.add(_module.__name__)
    half_loaded = [name for name in _LIBRARY if name in sys.modules and name not in _loaded]
    if "keras" not in sys.modules or half_loaded:
        return
    for module in _FAMILIES:
        importlib.import_module(module)


if "keras" in sys.modules:  # Keras's cost is paid already
    _register()
else:
    # wrapt (a dependency of TensorFlow's) runs the hook right after `keras`
    # is first imported, by whatever code imports it, and after each module
    # of `_LIBRARY` has loaded.
    import wrapt

    for name in ("keras", *_LIBRARY):
        wrapt.register_post_import_hook(_register, name)
