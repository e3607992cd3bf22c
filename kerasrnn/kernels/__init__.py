"""Hand-offs of a whole sequence to a backend's fused kernel.

`kerasrnn.recurrent.choose_paths` decides when a layer offers its sequence
here (the family's own step, tanh and sigmoid, no recurrent dropout); each
kernel then declines, by raising `NotImplementedError`, what only it can
tell: no GPU for cuDNN, a mask, `unroll`, Keras tracing or compiling, or a
Keras too old to have the backend function it calls. The layer then runs
its next path.

- kernels/torch.py: PyTorch's `_VF.lstm` / `_VF.gru`, on any device (the
  PyTorch backend).
- kernels/cudnn.py: Keras's backend `lstm` / `gru` functions, which run
  cuDNN on a GPU (TensorFlow, JAX).

A new family with a fused kernel adds its function to both modules under the
name its layer gives in `fused_kernel`.

- kernels/scans.py: the scans that solve a recurrence linear in the state
  (kerasrnn/minimal.py's families), on `keras.ops`.
"""

import keras
from keras import ops, tree

from kerasrnn.recurrent import over_time


def _module():
    if keras.backend.backend() == "torch":
        from kerasrnn.kernels import torch as module
    else:
        from kerasrnn.kernels import cudnn as module
    return module


def run(layer, sequences, initial_state, mask, training):
    """`(last output, outputs, final states)` of `layer` over `sequences` from its
    family's fused kernel; raises `NotImplementedError` where it declines."""
    kernel = getattr(_module(), layer.fused_kernel)
    # The input dropout mask, drawn once per sequence: the layer's own loop
    # looks up the same mask if the kernel declines.
    input_mask, _ = layer.cell._dropout_masks(sequences[:, 0, :], None, training)
    if isinstance(input_mask, (list, tuple)):
        # One input mask per gate: Keras draws them whenever recurrent
        # dropout is set, 1.0 (no recurrent dropout applied) included, and a
        # fused kernel takes one input. The next path applies them.
        raise NotImplementedError
    if input_mask is not None:
        sequences = sequences * over_time(input_mask)
    states = tree.flatten(initial_state)
    if keras.backend.backend() == "torch":
        # A stateful layer assigns its state variables in place after the
        # call; the kernel must not hold them for its backward pass.
        states = [ops.copy(state) for state in states]
    return kernel(layer, sequences, states, mask)


def compilable(layer):
    """Whether XLA can compile the layer with its fused kernel in it."""
    return _module().compilable(layer)
