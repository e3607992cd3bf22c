"""Training throughput of our cells against Keras's built-in layers (and PyTorch).

    python benchmarks/cells.py                 # both shapes, all three cells
    python benchmarks/cells.py --shapes mnist --cells lstm --epochs 5
    python benchmarks/cells.py --cells lstm,gru --contenders keras,layer,layer-cudnn,torch
    python benchmarks/cells.py --cells layernorm-lstm,layernorm-gru,layernorm-rnn,peephole-lstm \
        --contenders ours,layer

Two shapes:

- mnist:   batch 128, 28 steps x 28 features, 128 units, Dense(10) on the last
           output (the row-by-row MNIST classifier);
- charrnn: batch 64, 100 steps, vocabulary 65 embedded in 64 dimensions,
           512 units, Dense(65) at every step (the character-level model).

Contenders for each cell, trained on the same random data:

- keras:        the built-in layer (`keras.layers.LSTM` / `GRU` / `SimpleRNN`);
- keras-cell:   `keras.layers.RNN(Keras's own cell)`, the control for `ours`.
                On a CPU the built-in layer runs this very loop (cuDNN is
                GPU-only), so its ratio to `keras` is what this machine's
                noise alone makes of two identical programs;
- ours:         `keras.layers.RNN(our cell)`;
- ours-unroll:  the same with `unroll=True` (Python-unrolled time loop);
- layer:        our layer (`kerasrnn.LSTM` / `GRU` / `SimpleRNN`): the same cell
                with the input matmul of all steps taken out of the loop,
                and on TensorFlow the written-out backward pass of
                kerasrnn/bptt.py (`use_cudnn=False`: our loop, never the
                backend's cuDNN function);
- layer-unroll: our layer with `unroll=True` (autodiff of the unrolled loop);
- layer-cudnn:  our LSTM / GRU layer as users get it, `use_cudnn="auto"`: it
                hands the sequence to a fused kernel where one runs (cuDNN on
                a GPU; PyTorch's fused kernels on any device under the
                PyTorch backend) and runs our loop elsewhere. By default only
                where such a kernel exists: elsewhere it times `layer`'s loop;
- torch:        `torch.nn.LSTM` / `GRU` / `RNN` with the same shapes and
                thread count, when PyTorch is importable;
- dense, torch-dense: the control for the training step around the layer:
                the same model with the recurrent layer replaced by a Dense
                of as many units (over the flattened rows for mnist, at every
                step for charrnn), in Keras and in plain PyTorch. Their ratio
                is what Keras's `fit` costs over a plain PyTorch loop when the
                layer costs little.

`--contenders` picks some of them (`keras` is always timed: the ratios are
against it). The layer-normalized and peephole cells have no Keras or
PyTorch twin: for them the table's ratio is `layer/ours`, our layer against
the same cell in `keras.layers.RNN`.

It runs on any Keras backend (`KERAS_BACKEND=tensorflow`, the default here,
`jax` or `torch`), on the GPU where the backend finds one: there Keras's
built-in LSTM and GRU take cuDNN's fused kernels (TensorFlow and PyTorch
backends), which a cell driven step by step by `keras.layers.RNN` cannot.

Every contender first runs one warm-up epoch; then the epochs are interleaved
(one epoch of each contender per round), so that a slow spell of this shared
machine hits all of them alike. An epoch's throughput leaves out its first
batch, where Keras's `fit` spends a variable 0-0.7 s setting up the data
iterator. The table shows the median over the rounds, in samples per second,
and the ratios to keras, to torch, (ours / keras-cell) to Keras's cell and
(layer / ours) to our own cell: the ratio of the medians, then the lowest
and highest ratio within a round.
"""

import importlib
import os
import statistics
import time

import keras
import numpy as np
from arguments import ArgumentParser  # benchmarks/arguments.py

import kerasrnn

CELLS = {
    # name: our cell, our layer, Keras's built-in layer, Keras's cell, PyTorch's module
    # (None where there is none: Keras and PyTorch have no layer-normalized or
    # peephole cells, so those are timed against our own cell in keras.layers.RNN)
    "lstm": (kerasrnn.LSTMCell, kerasrnn.LSTM, keras.layers.LSTM, keras.layers.LSTMCell, "LSTM"),
    "gru": (kerasrnn.GRUCell, kerasrnn.GRU, keras.layers.GRU, keras.layers.GRUCell, "GRU"),
    "rnn": (kerasrnn.SimpleRNNCell, kerasrnn.SimpleRNN, keras.layers.SimpleRNN,
            keras.layers.SimpleRNNCell, "RNN"),
    "layernorm-lstm": (kerasrnn.LayerNormLSTMCell, kerasrnn.LayerNormLSTM, None, None, None),
    "layernorm-gru": (kerasrnn.LayerNormGRUCell, kerasrnn.LayerNormGRU, None, None, None),
    "layernorm-rnn": (kerasrnn.LayerNormSimpleRNNCell, kerasrnn.LayerNormSimpleRNN, None, None,
                      None),
    "peephole-lstm": (kerasrnn.PeepholeLSTMCell, kerasrnn.PeepholeLSTM, None, None, None),
}

SHAPES = {
    # name: batch, steps, features (or vocabulary), units, classes, batches per epoch,
    # and per_step: token ids in and a prediction at every step (char-rnn), or
    # float rows in and one prediction per sequence (MNIST)
    "mnist": dict(batch=128, steps=28, features=28, units=128, classes=10, batches=40,
                  per_step=False),
    "charrnn": dict(batch=64, steps=100, features=65, units=512, classes=65, batches=8,
                    per_step=True),
}
EMBEDDING = 64


class _EpochTimer(keras.callbacks.Callback):
    """Samples per second of one epoch, its first batch left out.

    A callback with `on_train_batch_end` makes Keras read each batch's loss
    before the next batch, so on a GPU the time includes the batch's kernels.
    """

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size
        self.rate = None

    def on_epoch_begin(self, epoch, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.rate = self.batch_size * (len(self.ends) - 1) / (self.ends[-1] - self.ends[0])


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    n = shape["batch"] * shape["batches"]
    if shape["per_step"]:  # charrnn: ids in, next ids out at every step
        x = rng.integers(0, shape["features"], (n, shape["steps"]))
        y = rng.integers(0, shape["features"], (n, shape["steps"]))
    else:  # mnist: float rows, one label per image
        x = rng.random((n, shape["steps"], shape["features"]), dtype=np.float32)
        y = rng.integers(0, shape["classes"], n)
    return x, y


def _keras_model(shape, recurrent_layer):
    if shape["per_step"]:
        inputs = keras.Input((shape["steps"],), dtype="int32")
        h = keras.layers.Embedding(shape["features"], EMBEDDING)(inputs)
    else:
        inputs = h = keras.Input((shape["steps"], shape["features"]))
    h = recurrent_layer(h)
    model = keras.Model(inputs, keras.layers.Dense(shape["classes"])(h))
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


class KerasContender:
    def __init__(self, shape, recurrent_layer):
        self.shape = shape
        self.model = _keras_model(shape, recurrent_layer)
        self.x, self.y = _data(shape)
        self.timer = _EpochTimer(shape["batch"])

    def epoch(self):
        self.model.fit(
            self.x, self.y, batch_size=self.shape["batch"], shuffle=False, epochs=1, verbose=0,
            callbacks=[self.timer],
        )
        return self.timer.rate


def _dense_control(shape):
    """The control's stand-in for the recurrent layer (see `dense` above)."""
    dense = keras.layers.Dense(shape["units"], activation="tanh")
    if shape["per_step"]:
        return dense
    return lambda h: dense(keras.layers.Flatten()(h))


class TorchContender:
    def __init__(self, shape, torch_name):
        import torch

        self.torch = torch
        torch.manual_seed(0)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.shape = shape
        per_step = shape["per_step"]
        in_features = EMBEDDING if per_step else shape["features"]
        if torch_name == "dense":  # the control: see `dense` above
            flat = in_features if per_step else in_features * shape["steps"]
            rnn = torch.nn.Sequential(torch.nn.Linear(flat, shape["units"]), torch.nn.Tanh())
        else:
            rnn = getattr(torch.nn, torch_name)(in_features, shape["units"], batch_first=True)
        self.dense = torch_name == "dense"
        head = torch.nn.Linear(shape["units"], shape["classes"])
        embed = torch.nn.Embedding(shape["features"], EMBEDDING) if per_step else None
        self.modules = torch.nn.ModuleList([m for m in (embed, rnn, head) if m is not None])
        self.modules.to(self.device)
        self.embed, self.rnn, self.head, self.per_step = embed, rnn, head, per_step
        self.optimizer = torch.optim.Adam(self.modules.parameters(), lr=1e-3)
        x, y = _data(shape)
        b = shape["batch"]
        self.batches = [
            (torch.as_tensor(x[i : i + b]).to(self.device),
             torch.as_tensor(y[i : i + b]).to(self.device))
            for i in range(0, len(x), b)
        ]

    def _step(self, x, y):
        h = self.embed(x) if self.per_step else x
        if self.dense:
            out = self.rnn(h if self.per_step else h.flatten(1))
            logits = self.head(out)
        else:
            out, _ = self.rnn(h)
            logits = self.head(out if self.per_step else out[:, -1])
        loss = self.torch.nn.functional.cross_entropy(
            logits.reshape(-1, self.shape["classes"]), y.reshape(-1)
        )
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def epoch(self):
        ends = []
        for x, y in self.batches:
            self._step(x, y)
            if self.device == "cuda":
                self.torch.cuda.synchronize()
            ends.append(time.perf_counter())
        return self.shape["batch"] * (len(ends) - 1) / (ends[-1] - ends[0])


def layer_options(shape, our_layer):
    """The arguments our layer gets when timed on its own loop.

    Our LSTM/GRU layers would hand the sequence to the same backend function
    as Keras's where it runs cuDNN; `use_cudnn=False` keeps them on our loop.
    """
    own_loop = {} if our_layer.fused_kernel is None else {"use_cudnn": False}
    return {"return_sequences": shape["per_step"], **own_loop}


def _contenders(shape, cell, names):
    """The contenders in `names` that apply to this cell, by name."""
    our_cell, our_layer, keras_layer, keras_cell, torch_name = CELLS[cell]
    units = shape["units"]
    seq = {"return_sequences": shape["per_step"]}
    own_loop = layer_options(shape, our_layer)
    builders = {
        "ours": lambda: KerasContender(shape, keras.layers.RNN(our_cell(units), **seq)),
        "ours-unroll": lambda: KerasContender(
            shape, keras.layers.RNN(our_cell(units), unroll=True, **seq)
        ),
        "layer": lambda: KerasContender(shape, our_layer(units, **own_loop)),
        "layer-unroll": lambda: KerasContender(shape, our_layer(units, unroll=True, **own_loop)),
        "dense": lambda: KerasContender(shape, _dense_control(shape)),
        "torch-dense": lambda: TorchContender(shape, "dense"),
    }
    if keras_layer is not None:
        builders["keras"] = lambda: KerasContender(shape, keras_layer(units, **seq))
        builders["keras-cell"] = lambda: KerasContender(
            shape, keras.layers.RNN(keras_cell(units), **seq))
    if torch_name is not None:
        builders["torch"] = lambda: TorchContender(shape, torch_name)
    if our_layer.fused_kernel is not None:  # SimpleRNN and the new cells have none
        builders["layer-cudnn"] = lambda: KerasContender(
            shape, our_layer(units, use_cudnn="auto", **seq)
        )
    return {name: builders[name]() for name in names if name in builders}


def _torch_available():
    try:
        import torch
    except ImportError:
        return False
    # Same thread budget as TensorFlow, which uses every core by default.
    torch.set_num_threads(os.cpu_count())
    return True


def _device():
    """The GPU the Keras backend computes on, or None on a CPU."""
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return "GPU" if tf.config.list_physical_devices("GPU") else None
    if name == "jax":
        import jax

        device = jax.devices()[0]
        return device.device_kind if device.platform == "gpu" else None
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def _backend():
    """The Keras backend, its version and the device it computes on."""
    name = keras.backend.backend()  # also the name of the backend's module
    label = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}[name]
    return f"{label} {importlib.import_module(name).__version__}, {_device() or 'CPU'}"


def _ratio(ours, theirs):
    """Ratio of the medians, then the lowest and highest ratio within one round.

    The rounds' spread shows how much of a ratio near 1 is this machine's noise.
    """
    rounds = [a / b for a, b in zip(ours, theirs, strict=True)]
    median = statistics.median(ours) / statistics.median(theirs)
    return f"{median:.2f} ({min(rounds):.2f}-{max(rounds):.2f})"


def add_common_arguments(parser):
    """--shapes, --cells and --epochs, as this and the other cell benchmarks take them."""
    parser.add_argument("--shapes", default="mnist,charrnn", help="comma-separated: mnist,charrnn")
    parser.add_argument("--cells", default="lstm,gru,rnn",
                        help=f"comma-separated, of {','.join(CELLS)}")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")


def names_from(parser, value, allowed, what):
    """The comma-separated `value` as a list, or a one-line usage error."""
    names = value.split(",")
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        parser.error(f"unknown {what}: {', '.join(unknown)} (known: {','.join(allowed)})")
    return names


def shapes_and_cells(parser, args):
    """The checked --shapes and --cells of `add_common_arguments`."""
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    return (names_from(parser, args.shapes, SHAPES, "shapes"),
            names_from(parser, args.cells, CELLS, "cells"))


def time_rounds(contenders, epochs):
    """One warm-up epoch of each contender, then `epochs` rounds of one epoch
    each, interleaved: each contender's throughputs, by name."""
    for contender in contenders.values():
        contender.epoch()  # warm-up: tracing, compiling, first allocations
    rates = {name: [] for name in contenders}
    for _ in range(epochs):
        for name, contender in contenders.items():
            rates[name].append(contender.epoch())
    return rates


def print_table(header, rows, epochs):
    print(f"\nTraining throughput, samples/s (median of {epochs} epochs after a warm-up);")
    print("ratios: of the medians, then (lowest-highest) of the rounds' ratios;")
    print(f"Keras {keras.__version__} on {_backend()}, {os.cpu_count()} CPU cores.\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


ALL_CONTENDERS = [
    "keras", "keras-cell", "ours", "ours-unroll", "layer", "layer-unroll", "layer-cudnn", "torch",
    "dense", "torch-dense",
]
# Ratios to PyTorch for these; every contender gets one to Keras's built-in layer.
AGAINST_TORCH = ["ours", "layer", "layer-cudnn"]


def main():
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument(
        "--contenders", default=None,
        help=f"comma-separated, of {','.join(ALL_CONTENDERS)} (default: all but the"
        " dense controls; layer-cudnn only on a GPU or the PyTorch backend)",
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if importable")
    args = parser.parse_args()
    shapes, cells = shapes_and_cells(parser, args)
    fused_kernel = _device() or keras.backend.backend() == "torch"
    if args.contenders is None:
        names = [n for n in ALL_CONTENDERS if (n != "layer-cudnn" or fused_kernel)
                 and n not in ("dense", "torch-dense")]
    else:
        chosen = names_from(parser, args.contenders, ALL_CONTENDERS, "contenders")
        names = ["keras"] + [n for n in chosen if n != "keras"]
    if args.no_torch or not _torch_available():
        names = [n for n in names if n not in ("torch", "torch-dense")]
    keras.utils.set_random_seed(0)

    pairs = [(n, "keras") for n in names if n not in ("keras", "torch", "dense", "torch-dense")]
    pairs += [(n, "torch") for n in AGAINST_TORCH if n in names and "torch" in names]
    if "dense" in names and "torch-dense" in names:
        pairs.append(("dense", "torch-dense"))
    if "ours" in names and "keras-cell" in names:
        pairs.append(("ours", "keras-cell"))  # cell against cell, in the same loop
    if "layer" in names and "ours" in names:
        pairs.append(("layer", "ours"))  # our layer against our cell in keras.layers.RNN
    header = ["shape", "cell", *names] + [f"{a}/{b}" for a, b in pairs]
    rows = []
    for shape_name in shapes:
        for cell in cells:
            rates = time_rounds(_contenders(SHAPES[shape_name], cell, names), args.epochs)
            median = {name: statistics.median(r) for name, r in rates.items()}
            row = [shape_name, cell] + [f"{median[n]:,.0f}" if n in median else "-" for n in names]
            row += [_ratio(rates[a], rates[b]) if a in rates and b in rates else "-"
                    for a, b in pairs]
            rows.append(row)
            print(" | ".join(row), flush=True)

    print_table(header, rows, args.epochs)


if __name__ == "__main__":
    main()
