"""ONNX's `RNN` operator for `SimpleRNN`: `export_onnx`, and the tf2onnx
rewrite behind it.

Keras's `model.export(path, format="onnx")` hands the traced graph to
tf2onnx, which rewrites an LSTM's or a GRU's loop into ONNX's `LSTM` or
`GRU` operator but has no rewrite for a plain RNN's loop: a `SimpleRNN`
becomes a generic `Loop`, correct but one small step at a time. tf2onnx
takes rewrites of its own (`custom_rewriter`), and Keras's exporter passes
none, so `export_onnx` is Keras's export with `rewrite_simple_rnn` added.

While Keras's ONNX exporter traces it, a `SimpleRNN` in its standard form
(tanh, a bias, no mask) runs as Keras's loop over the step
(kerasrnn/portable.py, `simple_rnn_loop`)

    h_t = tanh(bias_add(x_t · kernel, bias) + h_{t-1} · recurrent_kernel)

and tf2onnx's `While` for it holds, in its body, that step's ops between a
`TensorListGetItem` of the inputs and a `TensorListSetItem` of the outputs
at the same index. `rewrite_simple_rnn` finds that body, then replaces the
`While` with one `RNN` node, whose weights are ONNX's layout of Keras's:

    W = kernelᵀ  [1, units, features]     R = recurrent_kernelᵀ  [1, units, units]
    B = [bias, 0]  [1, 2·units]           (ONNX adds an input and a recurrent bias)

A layer that reads its inputs backwards (`go_backwards`) is the same loop
over reversed inputs, so the node reads the reversed tensor forwards.
"""

import numpy as np


def _step_pattern():
    """The step, as tf2onnx's graph of the `While`'s body holds it."""
    from tf2onnx.graph_matcher import OpTypePattern

    return OpTypePattern("Tanh", name="output", inputs=[
        OpTypePattern("Add|AddV2", inputs=[
            OpTypePattern("BiasAdd", name="bias_add", inputs=[
                OpTypePattern("MatMul", inputs=[OpTypePattern("TensorListGetItem", name="x_t"),
                                                OpTypePattern("*", name="kernel")]),
                OpTypePattern("*", name="bias")]),
            OpTypePattern("MatMul", inputs=[OpTypePattern("*", name="state"),
                                            OpTypePattern("*", name="recurrent_kernel")]),
        ]),
    ])


def _through_identities(op):
    """The op an `Identity` chain starting at `op` reads from."""
    while op.type == "Identity":
        op = op.inputs[0]
    return op


def export_onnx(model, filepath, **kwargs):
    """`model.export(filepath, format="onnx", **kwargs)`, with each
    `kerasrnn.SimpleRNN` as ONNX's `RNN` operator rather than a `Loop`.

    Everything else is Keras's export as it is (LSTM and GRU become ONNX's
    `LSTM` and `GRU` with `model.export` alone); a `SimpleRNN` that is not in
    its standard form (another activation, no bias) or is masked stays a
    `Loop`. `keras.layers.SimpleRNN` traces the same step, and becomes an
    `RNN` node too where it returns its sequences. TensorFlow backend, with
    tf2onnx installed (`pip install "kerasrnn[deploy]"`).

    Args:
        model: A Keras model, called at least once (as for `model.export`).
        filepath: Where to write the `.onnx` file.
        **kwargs: `model.export`'s other arguments (`verbose`,
            `input_signature`, `opset_version`).

    Example:

    ```python
    model = keras.Sequential([keras.Input((None, 5)), kerasrnn.SimpleRNN(8)])
    kerasrnn.export_onnx(model, "model.onnx")   # one ONNX `RNN` node
    ```
    """
    try:
        import tf2onnx
    except ImportError:
        raise ImportError(
            'kerasrnn.export_onnx needs tf2onnx: pip install "kerasrnn[deploy]"') from None

    # Keras calls `tf2onnx.convert.from_function` with no rewrites of its
    # own; for this one export it gets this module's.
    from_function = tf2onnx.convert.from_function

    def with_rewrite(*args, custom_rewriter=None, **options):
        return from_function(*args, custom_rewriter=[*(custom_rewriter or []),
                                                     rewrite_simple_rnn], **options)

    tf2onnx.convert.from_function = with_rewrite
    try:
        model.export(filepath, format="onnx", **kwargs)
    finally:
        tf2onnx.convert.from_function = from_function


def rewrite_simple_rnn(g, ops):
    """tf2onnx's rewrite: each `While` whose body is the SimpleRNN step
    (module docstring) becomes an ONNX `RNN` node.

    tf2onnx rewrites each function's graph before the graph that calls it,
    so a loop's body is seen first: its graph gets the positions, among the
    loop's variables, of the inputs, the outputs, the state and the
    weights. Seeing the `While`, the rewrite reads the weights (constants
    once Keras's variables are frozen) and the inputs off those positions.
    """
    from tf2onnx.graph_matcher import GraphMatcher

    for match in GraphMatcher(_step_pattern(), allow_reorder=True).match_ops(ops):
        positions = _loop_positions(g, match)
        if positions is not None:
            g.kerasrnn_simple_rnn = positions
    for op in ops:
        if op.is_while():
            _replace_loop(g, op)
    return g.get_nodes()


def _loop_positions(g, match):
    """The positions, among the body's inputs, of what the step reads and
    writes; None unless the body is one SimpleRNN step over a sequence.

    As tf2onnx's own LSTM and GRU rewrites do, this trusts the loop to run
    from the first step to the last, as Keras's loop does. Anything else
    the body computes keeps the `While` in the graph beside the node
    (`_replace_loop` replaces only the outputs and the state)."""
    x_item, output = match.get_op("x_t"), match.get_op("output")
    if match.get_op("bias_add").data_format != "NHWC":
        return None
    ops = {"x": x_item.inputs[0], "state": match.get_op("state")}
    ops.update({name: _through_identities(match.get_op(name))
                for name in ("kernel", "recurrent_kernel", "bias")})
    if not all(op.is_graph_input() for op in ops.values()):
        return None
    positions = {name: g.input_names.index(op.output[0]) for name, op in ops.items()}
    # The step's output is written to the outputs at the index it read the
    # inputs at (every step kept, not only the last), and is the next step's
    # state.
    writes = [c for c in g.find_output_consumers(output.output[0])
              if c.type == "TensorListSetItem"]
    if len(writes) != 1 or writes[0].input[1] != x_item.input[1] \
            or not writes[0].inputs[0].is_graph_input():
        return None
    positions["outputs"] = g.input_names.index(writes[0].input[0])
    if _through_identities(g.get_node_by_output(g.outputs[positions["state"]])) is not output:
        return None
    return positions


def _replace_loop(g, op):
    """`op`, a `While` over the SimpleRNN step, as an ONNX `RNN` node."""
    from tf2onnx import utils
    from tf2onnx.graph_builder import GraphBuilder
    from tf2onnx.tf_loader import find_function

    positions = getattr(find_function(op.get_attr_str("body")), "kerasrnn_simple_rnn", None)
    if positions is None:
        return
    inputs = {name: op.input[i] for name, i in positions.items()}
    if not all(g.is_const(inputs[name]) for name in ("kernel", "recurrent_kernel", "bias")):
        return
    sequence = op.inputs[positions["x"]]  # [time, batch, features]
    if sequence.type != "TensorListFromTensor":
        return
    # The outputs are read as one tensor only (a loop still read otherwise
    # would run beside the node).
    stacks = g.find_output_consumers(op.output[positions["outputs"]])
    if not stacks or any(c.type != "TensorListStack" for c in stacks):
        return
    kernel, recurrent_kernel, bias = (g.get_tensor_value(inputs[name], as_list=False)
                                      for name in ("kernel", "recurrent_kernel", "bias"))
    units = kernel.shape[1]
    dtype = kernel.dtype
    weights = [g.make_const(utils.make_name(f"{op.name}/{name}"), value).output[0]
               for name, value in (
                   ("W", kernel.T[None]), ("R", recurrent_kernel.T[None]),
                   ("B", np.concatenate([bias, np.zeros(units, dtype)])[None]))]
    builder = GraphBuilder(g)
    initial_h = builder.make_unsqueeze({"data": inputs["state"], "axes": [0]})
    rnn = g.make_node("RNN", [sequence.input[0], *weights, "", initial_h], output_count=2,
                      attr={"hidden_size": int(units), "activations": ["Tanh"]})
    outputs = builder.make_squeeze({"data": rnn.output[0], "axes": [1]})  # [time, batch, units]
    for stack in stacks:
        g.replace_all_inputs(stack.output[0], outputs)
    last_state = builder.make_squeeze({"data": rnn.output[1], "axes": [0]})
    g.replace_all_inputs(op.output[positions["state"]], last_state)
