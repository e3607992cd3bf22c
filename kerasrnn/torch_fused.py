"""PyTorch's fused sequence kernels for our LSTM and GRU layers, on any device.

`torch._VF.lstm` and `torch._VF.gru` run a whole sequence in one call: cuDNN
on a GPU, and on a CPU a fused kernel (oneDNN's LSTM for training, see
aten/src/ATen/native/RNN.cpp) instead of a Python loop of small ops. Keras's
PyTorch backend hands a sequence to them only on CUDA; these functions do it
wherever the tensors are, with the weights converted the way Keras converts
them (`prepare_lstm_params`, `prepare_gru_params`: transposed, and for the
GRU the gates reordered from Keras's z, r, h to PyTorch's r, z, n).

They compute what our cells compute only with tanh and sigmoid, no mask, no
recurrent dropout (the caller applies input dropout first), no `unroll` and,
for the GRU, `reset_after=True`; otherwise they raise `NotImplementedError`
and the layer runs its own loop. Imported only on the PyTorch backend.
"""

import torch
from keras import activations
from keras.src.backend.torch.core import convert_to_tensor
from keras.src.backend.torch.rnn import prepare_gru_params, prepare_lstm_params

__all__ = ["lstm", "gru"]


def _check(cell, mask, unroll):
    if (mask is not None or unroll or cell.activation is not activations.tanh
            or cell.recurrent_activation is not activations.sigmoid
            or cell.recurrent_dropout):
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


def lstm(cell, inputs, initial_state, mask, go_backwards, return_sequences, unroll):
    """`(last output, outputs, [h, c])` of `cell` (an LSTMCell) over `inputs`."""
    _check(cell, mask, unroll)
    kernel = convert_to_tensor(cell.kernel)
    inputs, (h, c) = _prepare(inputs, initial_state, kernel, go_backwards)
    bias = convert_to_tensor(cell.bias) if cell.use_bias else None
    params = prepare_lstm_params(kernel, convert_to_tensor(cell.recurrent_kernel), bias,
                                 inputs.device)
    outputs, h, c = torch._VF.lstm(
        inputs, (h, c), params, True, 1, 0.0, torch.is_grad_enabled(), False, True
    )  # has_biases (zeros without one), layers, dropout, train, bidirectional, batch_first
    return _finish(outputs, [h, c], return_sequences)


def gru(cell, inputs, initial_state, mask, go_backwards, return_sequences, unroll):
    """`(last output, outputs, [h])` of `cell` (a GRUCell) over `inputs`."""
    _check(cell, mask, unroll)
    if not cell.reset_after:
        raise NotImplementedError  # PyTorch's GRU applies r after the matmul
    kernel = convert_to_tensor(cell.kernel)
    inputs, (h,) = _prepare(inputs, initial_state, kernel, go_backwards)
    bias = convert_to_tensor(cell.bias) if cell.use_bias else None
    params = prepare_gru_params(kernel, convert_to_tensor(cell.recurrent_kernel), bias,
                                inputs.device)
    outputs, h = torch._VF.gru(
        inputs, h, params, True, 1, 0.0, torch.is_grad_enabled(), False, True
    )
    return _finish(outputs, [h], return_sequences)
