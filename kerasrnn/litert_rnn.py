"""LiteRT's `UNIDIRECTIONAL_SEQUENCE_RNN` for `SimpleRNN`: `export_litert`,
and the rewrite of the `.tflite` file behind it.

TensorFlow's LiteRT converter fuses an LSTM into LiteRT's
`UNIDIRECTIONAL_SEQUENCE_LSTM` (from a function marked as Keras 2's LSTM
was), but nothing it reads becomes LiteRT's sequence RNN operator: a
`SimpleRNN` is a `WHILE` loop of builtin ops, correct but one small step at
a time. So `export_litert` is Keras's `model.export(format="litert")`
followed by a rewrite of the file it writes.

While Keras's LiteRT exporter traces it, a `SimpleRNN` in its standard
form (tanh, a bias, float32, no mask, its states neither given nor
returned, not stateful) over a batch of fixed size runs as the loop of
kerasrnn/portable.py's `simple_rnn_for_litert`, named `SEQUENCE_RNN`, over
the time-major inputs:

    h_t = tanh(x_t · kernel + bias + h_{t-1} · recurrent_kernel)

The converter keeps the loop's name on its body's subgraph, and turns the
step into two `FULLY_CONNECTED` ops whose weights are already in the
operator's layout (kernelᵀ [units, features], recurrent_kernelᵀ [units,
units]). `rewrite_simple_rnns` finds each `WHILE` whose body is that
subgraph, checks the step, and replaces the `WHILE` with one
`UNIDIRECTIONAL_SEQUENCE_RNN` (time-major, tanh) that reads the loop's
inputs and the body's weights and writes the loop's outputs, its hidden
state a variable tensor of the batch's fixed size, zeros at the start as
Keras's are. What fed only the loop, and its subgraphs, go.

A loop the rewrite does not recognise stays as it is: the file is then what
`model.export` alone writes.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

# The loop's name, which its body's subgraph keeps ("<name>_body").
SEQUENCE_RNN = "kerasrnn_sequence_rnn"


def export_litert(model, filepath, **kwargs):
    """`model.export(filepath, format="litert", **kwargs)`, with each
    `kerasrnn.SimpleRNN` as LiteRT's `UNIDIRECTIONAL_SEQUENCE_RNN` rather
    than a `WHILE` loop.

    Everything else is Keras's export as it is (a `kerasrnn.LSTM` becomes
    `UNIDIRECTIONAL_SEQUENCE_LSTM` with `model.export` alone). A
    `SimpleRNN` becomes the operator where its batch size is fixed (the
    operator's state is a tensor of that size: give the model's input a
    `batch_size`, or an `input_signature` with one), in its standard form
    (tanh, a bias, float32), with no mask, no initial state given and none
    returned, and not stateful; otherwise it stays a loop of builtin ops.
    TensorFlow backend, with ai-edge-litert installed (`pip install
    "kerasrnn[deploy]"`), whose schema reads and writes the file.

    Args:
        model: A Keras model, called at least once (as for `model.export`).
        filepath: Where to write the `.tflite` file. Written beside it
            first and renamed, so that an interrupted export leaves no half
            of a file.
        **kwargs: `model.export`'s other arguments (`verbose`,
            `input_signature`).

    Example:

    ```python
    model = keras.Sequential([keras.Input((None, 5), batch_size=1), kerasrnn.SimpleRNN(8)])
    kerasrnn.export_litert(model, "model.tflite")   # one UNIDIRECTIONAL_SEQUENCE_RNN
    ```
    """
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        raise ImportError('kerasrnn.export_litert needs ai-edge-litert:'
                          ' pip install "kerasrnn[deploy]"') from None
    path = Path(filepath)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-",
                                         suffix=".tflite")
    os.close(handle)
    try:
        model.export(temporary, format="litert", **kwargs)
        rewrite_simple_rnns(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def rewrite_simple_rnns(path):
    """Rewrites the `.tflite` file at `path` in place: each `SEQUENCE_RNN`
    loop becomes one `UNIDIRECTIONAL_SEQUENCE_RNN` (module docstring).
    Returns how many did."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(Path(path).read_bytes())
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    if any(buffer.offset for buffer in model.buffers):
        return 0  # a file over 2 GB, its weights after the flatbuffer: left as it is
    main = model.subgraphs[0]
    replaced, dead_subgraphs = 0, set()
    for index, op in enumerate(main.operators):
        if _builtin(model, op) != schema.BuiltinOperator.WHILE:
            continue
        options = op.builtinOptions
        body = model.subgraphs[options.bodySubgraphIndex]
        if not body.name.decode().endswith(SEQUENCE_RNN + "_body"):
            continue
        fused = _sequence_rnn(model, main, op, body)
        if fused is not None:
            main.operators[index] = fused
            dead_subgraphs |= {options.condSubgraphIndex, options.bodySubgraphIndex}
            replaced += 1
    if replaced:
        _remove_dead_ops(main)
        _remove_subgraphs(model, dead_subgraphs)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        Path(path).write_bytes(builder.Output())
    return replaced


def _builtin(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _sequence_rnn(model, main, loop, body):
    """The `UNIDIRECTIONAL_SEQUENCE_RNN` that computes what `loop` does, or
    None where its body is not the step, or the loop's state is read
    after it."""
    from ai_edge_litert import schema_py_generated as schema

    ops = {}
    for op in body.operators:
        ops.setdefault(_builtin(model, op), []).append(op)
    B = schema.BuiltinOperator
    if len(ops.get(B.TANH, [])) != 1 or len(ops.get(B.FULLY_CONNECTED, [])) != 2 \
            or len(ops.get(B.GATHER, [])) != 1:
        return None
    producer = {t: op for op in body.operators for t in op.outputs}
    tanh = ops[B.TANH][0]
    add = producer.get(tanh.inputs[0])
    if add is None or _builtin(model, add) != B.ADD or add.builtinOptions is not None \
            and add.builtinOptions.fusedActivationFunction != schema.ActivationFunctionType.NONE:
        return None
    gather = ops[B.GATHER][0]
    x_position = list(body.inputs).index(gather.inputs[0]) if gather.inputs[0] in body.inputs \
        else None
    by_input = {}
    for fc in ops[B.FULLY_CONNECTED]:
        if fc.outputs[0] not in add.inputs or body.tensors[fc.inputs[1]].buffer == 0:
            return None
        by_input["x" if producer.get(fc.inputs[0]) is gather else "h"] = fc
    if x_position is None or set(by_input) != {"x", "h"}:
        return None
    x_fc, h_fc = by_input["x"], by_input["h"]
    # h is a loop variable, and the step's output is its next value.
    if h_fc.inputs[0] not in body.inputs \
            or body.outputs[list(body.inputs).index(h_fc.inputs[0])] != tanh.outputs[0]:
        return None
    # The converter fuses the bias into one of the two (or drops it, all zeros).
    biases = [fc.inputs[2] for fc in (x_fc, h_fc) if len(fc.inputs) > 2 and fc.inputs[2] >= 0]
    if len(biases) > 1:
        return None
    if any(fc.builtinOptions.fusedActivationFunction != schema.ActivationFunctionType.NONE
           for fc in (x_fc, h_fc)):
        return None
    # The outputs: the loop's other rank-3 variable, written every step.
    rank3 = [i for i, t in enumerate(body.inputs)
             if len(body.tensors[t].shape) == 3 and i != x_position]
    if len(rank3) != 1:
        return None
    outputs_position = rank3[0]
    # Only the outputs may be read after the loop: the operator returns nothing else.
    read = {t for op in main.operators if op is not loop for t in op.inputs} | set(main.outputs)
    if any(t in read for i, t in enumerate(loop.outputs) if i != outputs_position):
        return None

    x = loop.inputs[x_position]
    units = body.tensors[h_fc.inputs[1]].shape[0]
    batch = main.tensors[x].shape[1]
    if batch <= 0 or (main.tensors[x].shapeSignature is not None
                      and main.tensors[x].shapeSignature[1] < 0):
        return None  # the state needs the batch's size

    weights = [_copy_tensor(main, body.tensors[t]) for t in (x_fc.inputs[1], h_fc.inputs[1])]
    if biases:
        weights.append(_copy_tensor(main, body.tensors[biases[0]]))
    else:
        weights.append(_constant(model, main, np.zeros(units, np.float32), b"zero_bias"))
    state = schema.TensorT()
    state.shape = [batch, units]
    state.type = schema.TensorType.FLOAT32
    state.name = main.tensors[loop.outputs[outputs_position]].name + b"/state"
    state.isVariable = True
    model.buffers.append(schema.BufferT())
    state.buffer = len(model.buffers) - 1
    main.tensors.append(state)

    fused = schema.OperatorT()
    fused.opcodeIndex = _opcode(model, B.UNIDIRECTIONAL_SEQUENCE_RNN)
    fused.inputs = [x, *weights, len(main.tensors) - 1]
    fused.outputs = [loop.outputs[outputs_position]]
    fused.builtinOptionsType = schema.BuiltinOptions.SequenceRNNOptions
    fused.builtinOptions = schema.SequenceRNNOptionsT()
    fused.builtinOptions.timeMajor = True
    fused.builtinOptions.fusedActivationFunction = schema.ActivationFunctionType.TANH
    return fused


def _copy_tensor(main, tensor):
    """A tensor of the main subgraph holding `tensor`'s constant (the same
    buffer: nothing is copied); returns its index."""
    import copy

    main.tensors.append(copy.copy(tensor))
    return len(main.tensors) - 1


def _constant(model, main, value, name):
    """A new constant tensor of the main subgraph; returns its index."""
    from ai_edge_litert import schema_py_generated as schema

    buffer = schema.BufferT()
    buffer.data = np.frombuffer(value.tobytes(), np.uint8)
    model.buffers.append(buffer)
    tensor = schema.TensorT()
    tensor.shape, tensor.type, tensor.name = list(value.shape), schema.TensorType.FLOAT32, name
    tensor.buffer = len(model.buffers) - 1
    main.tensors.append(tensor)
    return len(main.tensors) - 1


def _opcode(model, builtin):
    from ai_edge_litert import schema_py_generated as schema

    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _remove_dead_ops(subgraph):
    """Drops the ops whose results nothing reads (what fed only the loop)."""
    while True:
        read = {t for op in subgraph.operators for t in op.inputs} | set(subgraph.outputs)
        live = [op for op in subgraph.operators if any(t in read for t in op.outputs)]
        if len(live) == len(subgraph.operators):
            return
        subgraph.operators = live


def _remove_subgraphs(model, dead):
    """Drops the subgraphs in `dead` (the replaced loops' condition and
    body) and renumbers the references of the control-flow ops left."""
    keep = [i for i in range(len(model.subgraphs)) if i not in dead]
    new_index = {old: new for new, old in enumerate(keep)}
    model.subgraphs = [model.subgraphs[i] for i in keep]
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            options = op.builtinOptions
            for field in ("condSubgraphIndex", "bodySubgraphIndex", "thenSubgraphIndex",
                          "elseSubgraphIndex", "subgraph", "initSubgraphIndex"):
                if hasattr(options, field) and isinstance(getattr(options, field), int):
                    setattr(options, field, new_index[getattr(options, field)])
    for signature in model.signatureDefs or []:
        signature.subgraphIndex = new_index[signature.subgraphIndex]
