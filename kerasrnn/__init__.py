"""kerasrnn: SimpleRNN, LSTM and GRU cells as readable Keras 3 layers.

    from kerasrnn import SimpleRNNCell, LSTMCell, GRUCell
    from kerasrnn import SimpleRNN, LSTM, GRU   # the cells as layers

The cells and layers are imported on first use, so that `import kerasrnn`
(and the `kerasrnn` command's `--help`) does not import Keras. Importing
them registers them with Keras, so `.keras` files that use them load with
`keras.saving.load_model` and no `custom_objects`; when Keras is already
imported, `import kerasrnn` registers them at once. In a program that loads
a `.keras` file before touching kerasrnn's classes, `import kerasrnn.layers`
registers them.
"""

import sys

__version__ = "0.1.0"

# name -> the module that defines it
_EXPORTS = {
    "SimpleRNNCell": "kerasrnn.cells",
    "LSTMCell": "kerasrnn.cells",
    "GRUCell": "kerasrnn.cells",
    "SimpleRNN": "kerasrnn.layers",
    "LSTM": "kerasrnn.layers",
    "GRU": "kerasrnn.layers",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kerasrnn' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])


if "keras" in sys.modules:  # Keras's cost is paid already: register the classes now
    import kerasrnn.layers  # noqa: E402, F401
