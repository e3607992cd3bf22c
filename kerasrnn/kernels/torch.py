"""PyTorch's fused sequence kernels for our LSTM and GRU layers, on any device.

`torch._VF.lstm` and `torch._VF.gru` run a whole sequence in one call: cuDNN
on a GPU, and on a CPU a fused kernel (oneDNN's LSTM for training, see
aten/src/ATen/native/RNN.cpp) instead of a Python loop of small ops. Keras's
PyTorch backend hands a sequence to them only on CUDA; these functions do it
wherever the tensors are, with the weights converted the way Keras converts
them (`prepare_lstm_params`, `prepare_gru_params`: transposed, and for the
GRU the gates reordered from Keras's z, r, h to PyTorch's r, z, n).

`kerasrnn.recurrent.choose_paths` offers them only the family's own step
with tanh and sigmoid, no recurrent dropout and, for the GRU,
`reset_after=True` (the caller applies input dropout first). They decline,
by raising `NotImplementedError`, a mask, `unroll`, Keras's symbolic tracing
(meta tensors), TorchScript tracing and `torch.compile` (as Keras's own
hand-over does), and a Keras release without the conversion functions.
Imported only on the PyTorch backend.
"""

import torch
from keras.src.backend.torch.core import convert_to_tensor


def _converters():
    """Keras's weight conversions for PyTorch's kernels (Keras 3.14 and later)."""
    try:
        from keras.src.backend.torch.rnn import prepare_gru_params, prepare_lstm_params
    except ImportError:  # an older Keras: decline, the layer runs its own loop
        raise NotImplementedError from None
    return prepare_lstm_params, prepare_gru_params


def _check(layer, sequences, mask):
    compiling = hasattr(torch.compiler, "is_compiling") and torch.compiler.is_compiling()
    if (mask is not None or layer.unroll or torch.jit.is_tracing() or compiling
            or convert_to_tensor(sequences).device.type == "meta"):
        raise NotImplementedError


def _prepare(inputs, states, kernel, go_backwards):
    """Inputs and states as tensors of the kernel's dtype, time reversed if asked."""
    dtype = kernel.dtype
    inputs = convert_to_tensor(inputs).to(dtype)
    if go_backwards:
        inputs = torch.flip(inputs, dims=[1])
    states = [convert_to_tensor(s).to(dtype).unsqueeze(0) for s in states]  # [1, batch, units]
    return inputs, states


def _finish(outputs, final_states, return_sequences):
    last = outputs[:, -1]
    if not return_sequences:
        outputs = last.unsqueeze(1)
    return last, outputs, [s.squeeze(0) for s in final_states]


def _parameters(cell, prepare, device):
    bias = convert_to_tensor(cell.bias) if cell.use_bias else None
    return prepare(convert_to_tensor(cell.kernel), convert_to_tensor(cell.recurrent_kernel),
                   bias, device)


def lstm(layer, sequences, states, mask):
    """`(last output, outputs, [h, c])` of the layer's LSTMCell over `sequences`."""
    _check(layer, sequences, mask)
    prepare_lstm_params, _ = _converters()
    cell = layer.cell
    inputs, (h, c) = _prepare(sequences, states, convert_to_tensor(cell.kernel),
                              layer.go_backwards)
    outputs, h, c = torch._VF.lstm(
        inputs, (h, c), _parameters(cell, prepare_lstm_params, inputs.device),
        True, 1, 0.0, torch.is_grad_enabled(), False, True,
    )  # has_biases (zeros without one), layers, dropout, train, bidirectional, batch_first
    return _finish(outputs, [h, c], layer.return_sequences)


def gru(layer, sequences, states, mask):
    """`(last output, outputs, [h])` of the layer's GRUCell (reset_after=True)."""
    _check(layer, sequences, mask)
    _, prepare_gru_params = _converters()
    cell = layer.cell
    inputs, (h,) = _prepare(sequences, states, convert_to_tensor(cell.kernel),
                            layer.go_backwards)
    outputs, h = torch._VF.gru(
        inputs, h, _parameters(cell, prepare_gru_params, inputs.device),
        True, 1, 0.0, torch.is_grad_enabled(), False, True,
    )
    return _finish(outputs, [h], layer.return_sequences)


def compilable(layer):
    return True
