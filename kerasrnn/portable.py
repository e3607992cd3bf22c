"""The graphs that LiteRT's and ONNX's converters turn into their runtimes' ops.

`model.export(path, format="litert")` and `format="onnx"` trace the model on
TensorFlow and hand the graph to a converter: TensorFlow's LiteRT converter,
or tf2onnx. Each recognises a recurrent layer in one form only, and the
forms differ:

- **LiteRT.** Its builtin operators hold no TensorFlow `TensorList`, the
  structure `keras.layers.RNN`'s loop gathers its outputs in; the converter
  can lower a list to builtins only where every element's shape is known
  when converting, so a loop over a batch of any size becomes `Flex` ops,
  which LiteRT's Python interpreter and microcontrollers cannot run. Here a
  loop reads its step with `gather` and writes it with
  `tensor_scatter_nd_update` into a tensor (`builtin_loop`): `WHILE`,
  `GATHER`, `SCATTER_ND` and the step's arithmetic, for any batch and any
  length. LiteRT's fused `UNIDIRECTIONAL_SEQUENCE_LSTM` comes only from a
  function marked as Keras 2's LSTM was (`tf.api_implements="lstm_..."`,
  six arguments, five results), and only at a batch size fixed when
  converting: its states are tensors of that size. `lstm_for_litert` is
  that function; the converter replaces its body, and where it cannot (a
  batch of any size, a state the layer returns) the body, a builtin loop,
  stays. Nothing the converter reads becomes `UNIDIRECTIONAL_SEQUENCE_RNN`:
  at a fixed batch a standard SimpleRNN traces `simple_rnn_for_litert`, a
  loop that kerasrnn/litert_rnn.py finds in the written file by its name
  and replaces with that operator (`kerasrnn.export_litert`).
- **ONNX.** tf2onnx rewrites a `TensorList` loop into ONNX's `LSTM` or `GRU`
  where the loop's body is the step of Keras's `LSTMCell` (what
  `keras.layers.RNN` over kerasrnn's `LSTMCell` traces), or of Keras 2's
  GRU with `reset_after=True` (`keras_gru_step`, ONNX's
  `linear_before_reset=1`). It has no such rewrite for a plain RNN's step;
  kerasrnn/onnx_rnn.py adds one, for the step `simple_rnn_loop` traces
  (`kerasrnn.export_onnx`), and with `model.export` alone that loop is
  ONNX's generic `Loop`.

So what a layer traces depends on where the trace goes: `export_target`
reads it off the caller, Keras's exporter, and `RecurrentLayer.inner_loop`
asks `run` for the graph. Every other trace (training, `predict`, a
SavedModel for TensorFlow Serving) keeps the paths of `choose_paths`. None
of these forms calls a cuDNN kernel, whatever device traces it.

What each layer becomes, and what each runtime cannot express, is in
docs/deploy.md.
"""

import sys
import uuid

import keras
from keras import ops, tree

# Keras's exporters, by module: a trace that runs under one of them is for
# that converter.
_EXPORTERS = {"keras.src.export.litert": "litert", "keras.src.export.onnx": "onnx"}


def export_target():
    """`"litert"` or `"onnx"` while Keras's exporter for that format traces
    the model on TensorFlow; else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.inside_function():  # the exporters trace; an eager call is never theirs
        return None
    frame = sys._getframe(1)
    while frame is not None:
        target = _EXPORTERS.get(frame.f_globals.get("__name__"))
        if target is not None:
            return target
        frame = frame.f_back
    return None


def run(layer, target, sequences, initial_state, mask, training):
    """`layer.inner_loop`'s `(last_output, outputs, states)`, traced in the
    form the `target` converter recognises."""
    from kerasrnn.recurrent import CELL, LOOP

    if target == "litert":
        if _is_standard(layer, "LSTMCell") and mask is None and not layer.return_state \
                and not layer.stateful and sequences.shape[0] is not None:
            return lstm_for_litert(layer, sequences, initial_state)
        if _is_standard(layer, "SimpleRNNCell") and layer.cell.use_bias and mask is None \
                and not layer.return_state and not layer.stateful \
                and sequences.shape[0] is not None and sequences.dtype == "float32" \
                and all(_is_zero_constant(s) for s in tree.flatten(initial_state)):
            return simple_rnn_for_litert(layer, sequences)
        return builtin_loop(layer, sequences, initial_state, mask, training)
    if _is_standard(layer, "LSTMCell"):
        # The cell's own call inside Keras's loop: Keras's LSTM step.
        return layer.run_path(CELL, sequences, initial_state, mask, training)
    if _is_standard(layer, "GRUCell") and layer.cell.use_bias and mask is None:
        return keras_gru_loop(layer, sequences, initial_state)
    if _is_standard(layer, "SimpleRNNCell") and layer.cell.use_bias and mask is None:
        return simple_rnn_loop(layer, sequences, initial_state)
    return layer.run_path(LOOP, sequences, initial_state, mask, training)


def _is_standard(layer, family):
    """Whether the layer computes its family's own step, in the standard
    form (tanh, sigmoid, GRU's `reset_after`), `family` being the name of
    the family's cell in kerasrnn."""
    import kerasrnn

    return (layer.family_cell is getattr(kerasrnn, family) and layer.computes_family_step()
            and layer._standard_form())


def builtin_loop(layer, sequences, initial_state, mask, training):
    """The layer's loop with no `TensorList`: each step `gather`s its
    projection and writes its output into a `(time, batch, units)` tensor.
    Masks and `go_backwards` as `keras.layers.RNN` computes them."""
    import tensorflow as tf

    cell = layer.cell
    projections, recurrent_mask = layer._projections(sequences, initial_state, training)
    projections = tf.transpose(projections, [1, 0, 2])
    keep = None if mask is None else tf.transpose(tf.cast(mask, "bool"))
    if layer.go_backwards:  # read from the end; outputs in that order, as Keras's
        projections = tf.reverse(projections, [0])
        keep = None if keep is None else tf.reverse(keep, [0])
    # Zeros computed from the inputs, never a constant: LiteRT's converter
    # would make a constant of zeros one tensor with a fused LSTM's initial
    # state, which that LSTM overwrites with its last state.
    zeros = 0.0 * projections[0, :, :1]  # (batch, 1)
    states = [tf.tile(zeros, [1, s.shape[-1]]) if _is_zero_constant(s)
              else tf.convert_to_tensor(s) for s in tree.flatten(initial_state)]
    steps, batch = tf.shape(projections)[0], tf.shape(projections)[1]
    outputs = tf.zeros(tf.stack([steps, batch, cell.output_size]), projections.dtype)
    last = tf.tile(zeros, [1, cell.output_size])

    def body(t, outputs, last, *states):
        output, new_states = cell.recurrent_step(tf.gather(projections, t), list(states),
                                                 recurrent_mask)
        new_states = tree.flatten(new_states)
        if keep is not None:
            # A masked step keeps the states, and outputs zeros
            # (`zero_output_for_mask`) or the last unmasked output.
            step_keep = tf.gather(keep, t)[:, None]
            new_states = [tf.where(step_keep, new, old)
                          for new, old in zip(new_states, states, strict=True)]
            output = tf.where(step_keep, output,
                              tf.zeros_like(output) if layer.zero_output_for_mask else last)
            last = tf.where(step_keep, output, last)
        else:
            last = output
        outputs = tf.tensor_scatter_nd_update(outputs, [[t]], output[None])
        return (t + 1, outputs, last, *new_states)

    invariants = [tf.TensorShape([]), tf.TensorShape([None, None, cell.output_size]),
                  tf.TensorShape([None, cell.output_size])]
    invariants += [tf.TensorShape([None, s.shape[-1]]) for s in states]
    _, outputs, last, *states = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(0), outputs, last, *states),
        shape_invariants=tuple(invariants))
    return last, tf.transpose(outputs, [1, 0, 2]), states


def _is_zero_constant(tensor):
    import tensorflow as tf

    value = tf.get_static_value(tensor)
    return value is not None and not value.any()


def lstm_for_litert(layer, sequences, initial_state):
    """The LSTM as the function LiteRT's converter fuses into
    `UNIDIRECTIONAL_SEQUENCE_LSTM`: arguments (inputs, h0, c0, kernel,
    recurrent_kernel, bias), results (last output, outputs, h, c, a
    placeholder Keras 2 returned), marked `api_implements="lstm_<id>"` with
    `time_major` and `go_backwards`. Its body, a builtin loop, is what
    TensorFlow runs and what stays where the converter declines."""
    import tensorflow as tf

    cell = layer.cell
    h0, c0 = [tf.convert_to_tensor(s) for s in tree.flatten(initial_state)]
    bias = cell.bias if cell.use_bias else ops.zeros((4 * cell.units,), sequences.dtype)

    def lstm(inputs, h0, c0, kernel, recurrent_kernel, bias):
        x = tf.transpose(inputs, [1, 0, 2])
        if layer.go_backwards:
            x = tf.reverse(x, [0])
        steps, batch = tf.shape(x)[0], tf.shape(x)[1]
        outputs = tf.zeros(tf.stack([steps, batch, cell.units]), x.dtype)

        def body(t, outputs, h, c):
            z = tf.matmul(tf.gather(x, t), kernel) + tf.matmul(h, recurrent_kernel) + bias
            z_i, z_f, z_g, z_o = tf.split(z, 4, axis=1)
            c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_g)
            h = tf.sigmoid(z_o) * tf.tanh(c)
            return t + 1, tf.tensor_scatter_nd_update(outputs, [[t]], h[None]), h, c

        _, outputs, h, c = tf.while_loop(lambda t, *_: t < steps, body,
                                         (tf.constant(0), outputs, h0, c0))
        outputs = tf.transpose(outputs, [1, 0, 2])
        return outputs[:, -1], outputs, h, c, tf.constant(0.0)

    fused = tf.function(lstm, autograph=False, experimental_attributes={
        "api_implements": f"lstm_{uuid.uuid4()}",
        "api_preferred_device": "CPU",
        "time_major": False,
        "go_backwards": bool(layer.go_backwards),
    })
    last, outputs, h, c, _ = fused(sequences, h0, c0, tf.convert_to_tensor(cell.kernel),
                                   tf.convert_to_tensor(cell.recurrent_kernel),
                                   tf.convert_to_tensor(bias))
    return last, outputs, [h, c]


def simple_rnn_for_litert(layer, sequences):
    """The SimpleRNN (tanh, a bias, zero initial state) as the loop
    kerasrnn/litert_rnn.py replaces with LiteRT's
    `UNIDIRECTIONAL_SEQUENCE_RNN`: a `while_loop` named `SEQUENCE_RNN` over
    the time-major inputs (reversed for `go_backwards`, as Keras reads
    them), whose body is `tanh(x_t · kernel + bias + h · recurrent_kernel)`
    and writes each step's output. The last output is read off the outputs,
    not the loop's state, so that nothing but the outputs is read after the
    loop, as the operator returns nothing else. Unreplaced, it is a loop of
    builtin ops like `builtin_loop`'s."""
    import tensorflow as tf

    from kerasrnn.litert_rnn import SEQUENCE_RNN

    cell = layer.cell
    x = tf.transpose(sequences, [1, 0, 2])
    if layer.go_backwards:
        x = tf.reverse(x, [0])
    kernel = tf.convert_to_tensor(cell.kernel)
    recurrent_kernel = tf.convert_to_tensor(cell.recurrent_kernel)
    bias = tf.convert_to_tensor(cell.bias)
    steps, batch = tf.shape(x)[0], tf.shape(x)[1]
    # Zeros computed from the inputs, as in builtin_loop.
    state = tf.tile(0.0 * x[0, :, :1], [1, cell.units])
    outputs = tf.zeros(tf.stack([steps, batch, cell.units]), x.dtype)

    def body(t, outputs, h):
        h = tf.tanh(tf.nn.bias_add(tf.matmul(tf.gather(x, t), kernel), bias)
                    + tf.matmul(h, recurrent_kernel))
        return t + 1, tf.tensor_scatter_nd_update(outputs, [[t]], h[None]), h

    _, outputs, _ = tf.while_loop(lambda t, *_: t < steps, body,
                                  (tf.constant(0), outputs, state), name=SEQUENCE_RNN)
    last = outputs[-1]
    return last, tf.transpose(outputs, [1, 0, 2]), [last]


def keras_gru_loop(layer, sequences, initial_state):
    """The GRU (`reset_after=True`) in Keras's loop, each step in Keras 2's
    form, which tf2onnx rewrites into ONNX's `GRU`."""
    import tensorflow as tf

    from kerasrnn.recurrent import backend_rnn

    cell = layer.cell
    # Read outside the loop, so that the loop's body sees them as its inputs,
    # as tf2onnx's pattern expects.
    kernel = tf.convert_to_tensor(cell.kernel)
    recurrent_kernel = tf.convert_to_tensor(cell.recurrent_kernel)
    input_bias, recurrent_bias = tf.unstack(tf.convert_to_tensor(cell.bias))

    def step(x_t, states):
        h_tm1 = states[0]
        x_z, x_r, x_h = tf.split(tf.nn.bias_add(tf.matmul(x_t, kernel), input_bias), 3, axis=1)
        r_z, r_r, r_h = tf.split(
            tf.nn.bias_add(tf.matmul(h_tm1, recurrent_kernel), recurrent_bias), 3, axis=1)
        z = tf.sigmoid(x_z + r_z)
        r = tf.sigmoid(x_r + r_r)
        h = z * h_tm1 + (1 - z) * tf.tanh(x_h + r * r_h)
        return h, [h]

    return backend_rnn(step, sequences, list(tree.flatten(initial_state)),
                       go_backwards=layer.go_backwards, input_length=sequences.shape[1],
                       return_all_outputs=layer.return_sequences)


def simple_rnn_loop(layer, sequences, initial_state):
    """The SimpleRNN (tanh, a bias) in Keras's loop, each step in the one
    form kerasrnn/onnx_rnn.py rewrites into ONNX's `RNN`: `tanh(bias_add(x ·
    kernel, bias) + h · recurrent_kernel)`, every step's output kept."""
    import tensorflow as tf

    from kerasrnn.recurrent import backend_rnn

    cell = layer.cell
    # Read outside the loop, so that they are the loop's inputs (constants
    # once tf2onnx freezes the variables).
    kernel = tf.convert_to_tensor(cell.kernel)
    recurrent_kernel = tf.convert_to_tensor(cell.recurrent_kernel)
    bias = tf.convert_to_tensor(cell.bias)

    def step(x_t, states):
        h = tf.tanh(tf.nn.bias_add(tf.matmul(x_t, kernel), bias)
                    + tf.matmul(states[0], recurrent_kernel))
        return h, [h]

    return backend_rnn(step, sequences, list(tree.flatten(initial_state)),
                       go_backwards=layer.go_backwards, input_length=sequences.shape[1])
