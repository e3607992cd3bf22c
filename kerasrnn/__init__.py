"""kerasrnn: SimpleRNN, LSTM and GRU cells as readable Keras 3 layers.

    from kerasrnn import SimpleRNNCell, LSTMCell, GRUCell
    from kerasrnn import SimpleRNN, LSTM, GRU   # the cells as layers

Importing the package registers the cells and layers with Keras, so `.keras`
files that use them load with `keras.saving.load_model` and no `custom_objects`.
"""

__version__ = "0.1.0"

from kerasrnn.cells import GRUCell, LSTMCell, SimpleRNNCell  # noqa: E402
from kerasrnn.layers import GRU, LSTM, SimpleRNN  # noqa: E402

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "SimpleRNN", "LSTM", "GRU", "__version__"]
