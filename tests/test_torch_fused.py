"""On the PyTorch backend, LSTM and GRU hand the sequence to PyTorch's fused kernel.

Run in a subprocess with KERAS_BACKEND=torch (this process runs TensorFlow).
Each case builds the same layer twice with the same weights: once as users
get it (`use_cudnn="auto"`, the fused kernel, kerasrnn/kernels/torch.py) and
once with `use_cudnn=False` (our own loop), and compares outputs, final
states and the gradients of the weights and of the inputs (and of the
initial states where given). A stateful case calls the layer twice, the
second from the states the first left, and differentiates the second.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                reason="PyTorch is not installed (pip install torch)")

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import torch
    import keras
    from kerasrnn import GRU, LSTM, LSTMCell
    from kerasrnn.kernels import torch as torch_fused

    calls = {"lstm": 0, "gru": 0}  # sequences the fused kernels computed
    for name in calls:
        def counting(*args, _original=getattr(torch_fused, name), _name=name, **kwargs):
            result = _original(*args, **kwargs)  # raises where the kernel does not apply
            calls[_name] += 1
            return result
        setattr(torch_fused, name, counting)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 4)).astype("float32")
    CASES = [
        {},
        {"return_sequences": True},
        {"return_state": True},
        {"return_sequences": True, "return_state": True, "go_backwards": True},
        {"go_backwards": True},
        {"initial_state": True, "return_state": True},
        {"stateful": True, "return_sequences": True},
        {"use_bias": False, "return_sequences": True},
    ]

    def run(layer_class, case, use_cudnn, weights=None):
        case = dict(case)
        initial = case.pop("initial_state", False)
        layer = layer_class(6, use_cudnn=use_cudnn, **case)
        inputs = torch.tensor(x, requires_grad=True)
        states = None
        if initial:
            count = 2 if layer_class is LSTM else 1
            states = [torch.tensor(rng2.standard_normal((3, 6)).astype("float32"),
                                   requires_grad=True) for _ in range(count)]
        layer.build(x.shape)
        if weights is not None:
            layer.set_weights(weights)
        if case.get("stateful"):
            with torch.no_grad():
                layer(inputs)  # the second call starts from the first's states
        out = layer(inputs, initial_state=states) if states else layer(inputs)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        probe = np.random.default_rng(1)
        loss = sum((o * torch.tensor(probe.standard_normal(tuple(o.shape)).astype("float32")))
                   .sum() for o in outs)
        loss.backward()
        grads = [v.value.grad for v in layer.trainable_weights] + [inputs.grad]
        grads += [s.grad for s in states or []]
        return layer.get_weights(), [o.detach().numpy() for o in outs], [
            g.numpy() for g in grads]

    report = []
    for layer_class, name in ((LSTM, "lstm"), (GRU, "gru")):
        for case in CASES:
            rng2 = np.random.default_rng(2)
            before = dict(calls)
            weights, ours_out, ours_grad = run(layer_class, case, False)
            loop_calls = calls[name] - before[name]
            rng2 = np.random.default_rng(2)
            _, fused_out, fused_grad = run(layer_class, case, "auto", weights)
            fused_calls = calls[name] - before[name] - loop_calls
            worst = max([float(np.abs(a - b).max()) for a, b in zip(ours_out, fused_out)]
                        + [float(np.abs(a - b).max()) for a, b in zip(ours_grad, fused_grad)])
            report.append({"layer": name, "case": case, "outputs": len(ours_out),
                           "gradients": len(ours_grad), "worst": worst,
                           "loop_calls": loop_calls, "fused_calls": fused_calls})
    # Where the kernel cannot compute the cell, the layer runs its own loop.
    before = dict(calls)
    LSTM(6, recurrent_dropout=0.2)(x, training=True)
    LSTM(6, activation="relu")(x)
    GRU(6, reset_after=False)(x)
    masked = np.ones((3, 5), dtype=bool)
    masked[0, 3:] = False
    LSTM(6)(x, mask=torch.tensor(masked))

    class DoubledInputCell(LSTMCell):  # a step the fused kernel does not compute
        def recurrent_step(self, projection, *args, **kwargs):
            return super().recurrent_step(2.0 * projection, *args, **kwargs)

    class DoubledInputLSTM(LSTM):
        cell_class = DoubledInputCell

    subclassed = DoubledInputLSTM(6)
    reference = keras.layers.RNN(DoubledInputCell(6))
    subclassed(x), reference(x)
    reference.set_weights(subclassed.get_weights())
    subclass_error = float(np.abs(keras.ops.convert_to_numpy(subclassed(x))
                                  - keras.ops.convert_to_numpy(reference(x))).max())
    declined = {k: calls[k] - before[k] for k in calls}

    # model.fit on stateful layers: each batch starts from the states the
    # previous one left, through the fused kernel.
    fit = {}
    for layer_class, name in ((LSTM, "lstm"), (GRU, "gru")):
        model = keras.Sequential([keras.Input(batch_shape=(3, 5, 4)),
                                  layer_class(6, stateful=True), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        before = calls[name]
        history = model.fit(np.concatenate([x, x]), np.ones((6, 1)), batch_size=3, epochs=2,
                            shuffle=False, verbose=0)
        fit[name] = {"losses": history.history["loss"], "fused_calls": calls[name] - before}

    # A Keras without the weight conversions (before 3.14): the kernel declines.
    import sys
    has_converters = hasattr(sys.modules["keras.src.backend.torch.rnn"], "prepare_lstm_params")
    vars(sys.modules["keras.src.backend.torch.rnn"]).pop("prepare_lstm_params", None)
    old_keras = keras.ops.convert_to_numpy(LSTM(6)(x))
    print(json.dumps({"report": report, "declined": declined, "fit": fit,
                      "has_converters": has_converters,
                      "subclass_error": subclass_error,
                      "old_keras_shape": list(old_keras.shape)}))
""")


@pytest.fixture(scope="module")
def torch_report():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env={**os.environ, "KERAS_BACKEND": "torch"}, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_fused_kernel_gives_what_our_loop_gives(torch_report):
    if not torch_report["has_converters"]:
        pytest.skip("this Keras (before 3.14) has no prepare_lstm_params: no fused kernel")
    for row in torch_report["report"]:
        assert row["fused_calls"] >= 1 and row["loop_calls"] == 0, row
        assert row["worst"] < 1e-5, row
        assert row["gradients"] >= 3, row  # weights and inputs (and initial states)


def test_the_layer_runs_its_own_loop_where_the_kernel_does_not_apply(torch_report):
    assert torch_report["declined"] == {"lstm": 0, "gru": 0}


def test_stateful_layers_train_with_fit_through_the_fused_kernel(torch_report):
    for name, run in torch_report["fit"].items():
        if torch_report["has_converters"]:
            assert run["fused_calls"] >= 4, (name, run)  # two batches, two epochs
        assert all(np.isfinite(run["losses"])), (name, run)


def test_a_cell_with_its_own_step_runs_as_keras_runs_it(torch_report):
    assert torch_report["subclass_error"] < 1e-5


def test_a_keras_without_the_weight_conversions_runs_the_loop(torch_report):
    assert torch_report["old_keras_shape"] == [3, 6]


GO_BACKWARDS = """
import json
import numpy as np
import keras
import kerasrnn as K
from kerasrnn.kernels import torch as kernels

calls = []
for name in ("lstm", "gru"):
    original = getattr(kernels, name)
    setattr(kernels, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
x = np.random.default_rng(0).random((3, 7, 5)).astype("float32")
differences = {}
for name in ("LSTM", "GRU"):
    options = dict(return_sequences=True, go_backwards=True, return_state=True)
    fused, loop = getattr(K, name)(4, **options), getattr(K, name)(4, use_cudnn=False, **options)
    fused(x), loop(x)
    loop.set_weights(fused.get_weights())
    pairs = zip(fused(x), loop(x))
    differences[name] = max(float(np.abs(keras.ops.convert_to_numpy(a)
                                         - keras.ops.convert_to_numpy(b)).max()) for a, b in pairs)
print(json.dumps({"differences": differences, "calls": sorted(set(calls))}))
"""


def test_go_backwards_through_the_fused_kernel_is_what_the_layer_s_own_loop_gives(on_backend):
    """Outputs in the order the sequence was read, and the last states, as
    kerasrnn's own loop computes them (not only as Keras's fused call, which
    orders them the same way)."""
    import json

    report = json.loads(on_backend("torch", GO_BACKWARDS).stdout.strip().splitlines()[-1])
    assert report["calls"] == ["gru", "lstm"]  # the fused kernels ran
    assert max(report["differences"].values()) < 1e-6, report
