"""Training speed and memory of minGRU and minLSTM: the scan against the step-by-step loop.

    python benchmarks/minimal.py                       # TensorFlow, JAX and PyTorch
    python benchmarks/minimal.py --backends torch --lengths 512 --rounds 5

For each backend (in a process of its own) and each length, one training
step (forward and backward, `train_on_batch`, SGD, mean squared error
against zeros) of a model that is one recurrent layer over a batch of 32
sequences of 256 features, 256 units, returning every step:

- layer:       `kerasrnn.MinGRU` / `MinLSTM` as users get it: the scan
               formulation `kerasrnn.recurrent.choose_paths` picks for the
               backend (named in the table);
- associative, chunked, sequential, blocked: the same layer made to run
               each of the four formulations of kerasrnn/minimal.py;
- rnn(cell):   `keras.layers.RNN(MinGRUCell)`: the same cell and weights,
               one step after the other (the sequential form);
- gru:         `kerasrnn.GRU` of the same width, for scale;
- no scan:     the layer's matmul and gates alone, `a + b` in place of the
               scan: the floor under any formulation, since every one of
               them does this work first.

Every contender first runs one warm-up step (tracing, compiling); then the
timings are interleaved, one of each contender per round, so that a slow
spell of this shared machine hits all alike. A timing is of as many
training steps as make 2048 time steps (16 at length 128, 1 at 2048). The
table shows the median seconds per step, and `rnn(cell) / layer`, the
layer's speed-up over the sequential form (the median ratio within a
round, and the lowest and highest).

Memory: at the longest length, each of `--memory-contenders` runs again
alone in a fresh process, and the table gives the growth of the process's peak resident
memory over one warm-up step and one timed step (`ru_maxrss`), beyond what
the process held after building the model.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from arguments import ArgumentParser  # benchmarks/arguments.py

BATCH, FEATURES, UNITS = 32, 256, 256
CONTENDERS = ("layer", "associative", "chunked", "sequential", "blocked", "rnn(cell)", "gru",
              "no scan")


def build(cell, contender, steps):
    """A compiled one-layer model for `contender`, and a dict whose
    "formulation" names what its layer runs (a scan's, once it has run)."""
    import keras

    import kerasrnn
    from kerasrnn import recurrent

    layer_cls = {"mingru": kerasrnn.MinGRU, "minlstm": kerasrnn.MinLSTM}[cell]
    if contender == "rnn(cell)":
        layer = keras.layers.RNN(layer_cls.cell_class(UNITS), return_sequences=True)
        ran = {"formulation": "keras.layers.RNN"}
    elif contender == "gru":
        layer = kerasrnn.GRU(UNITS, return_sequences=True)
        ran = {"formulation": "kerasrnn.GRU"}
    elif contender == "no scan":

        class GatesOnly(layer_cls):
            def _run_scan(self, formulation, sequences, initial_state, mask, training):
                projections, _ = self._projections(sequences, initial_state, training)
                a, b, _ = self.cell.coefficients(projections)
                states = a + b
                return states[:, -1], states, [states[:, -1]]

        layer = GatesOnly(UNITS, return_sequences=True)
        ran = {"formulation": "no scan"}
    else:
        forced = {"associative": recurrent.ASSOCIATIVE_SCAN, "chunked": recurrent.CHUNKED_SCAN,
                  "sequential": recurrent.SEQUENTIAL_SCAN,
                  "blocked": recurrent.BLOCKED_SCAN}.get(contender)

        ran = {}

        class Forced(layer_cls):
            def _run_scan(self, formulation, *args):
                # `formulation`: what `choose_paths` picked for this call
                ran["formulation"] = forced or formulation
                return super()._run_scan(ran["formulation"], *args)

        layer = Forced(UNITS, return_sequences=True)
    inputs = keras.Input((steps, FEATURES))
    model = keras.Model(inputs, layer(inputs))
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    return model, ran


def data(steps):
    import numpy as np

    rng = np.random.default_rng(0)
    return (rng.normal(size=(BATCH, steps, FEATURES)).astype("float32"),
            np.zeros((BATCH, steps, UNITS), "float32"))


# Each timing covers this many time steps (16 training steps at length 128,
# one at 2048), so that a short sequence's few milliseconds are not lost in
# the machine's noise.
STEPS_PER_TIMING = 2048


def timed(model, x, y, repeats=1):
    """Seconds per training step, over `repeats` steps in a row."""
    start = time.perf_counter()
    for _ in range(repeats):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / repeats


def worker(args):
    """One backend: every contender at every length, interleaved; JSON lines out."""
    for steps in args.lengths:
        x, y = data(steps)
        for cell in args.cells:
            models = {c: build(cell, c, steps) for c in args.contenders}
            for model, _ in models.values():
                timed(model, x, y)  # warm-up: tracing and compiling
            times = {c: [] for c in models}
            repeats = max(1, STEPS_PER_TIMING // steps)
            for _ in range(args.rounds):
                for contender, (model, _) in models.items():
                    times[contender].append(timed(model, x, y, repeats))
            ran = models["layer"][1]["formulation"] if "layer" in models else None
            print(json.dumps({"cell": cell, "steps": steps, "times": times, "formulation": ran}),
                  flush=True)


def memory(args):
    """One contender alone: the growth of peak memory over two training steps."""
    [cell], [contender], [steps] = args.cells, args.contenders, args.lengths
    model, _ = build(cell, contender, steps)
    x, y = data(steps)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timed(model, x, y)
    timed(model, x, y)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mib": (after - before) / 1024}), flush=True)


def run_child(backend, *argv):
    """This script's JSON lines from a process of its own on `backend`, each
    as the process prints it (a long run shows its rows as they come)."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryFile("w+") as stderr:  # a file: a full pipe would stall the child
        child = subprocess.Popen([sys.executable, __file__, *argv], env=env,
                                 stdout=subprocess.PIPE, stderr=stderr, text=True)
        for line in child.stdout:
            if line.startswith("{"):
                yield json.loads(line)
        if child.wait() != 0:
            stderr.seek(0)
            sys.exit(f"{backend} {' '.join(argv)} failed:\n{stderr.read()[-3000:]}")


def check(parser, args):
    """Every argument checked before any work: a one-line usage error (exit 2)."""
    import importlib.util

    for name, given, known in (("--contenders", args.contenders, CONTENDERS),
                               ("--memory-contenders", args.memory_contenders, CONTENDERS),
                               ("--cells", args.cells, ("mingru", "minlstm")),
                               ("--backends", args.backends, ("tensorflow", "jax", "torch"))):
        unknown = [n for n in given if n not in known]
        if unknown:
            parser.error(f"{name}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    missing = [b for b in args.backends if importlib.util.find_spec(b) is None]
    if missing:
        others = [b for b in args.backends if b not in missing]
        parser.error(f"--backends: {', '.join(missing)} not installed; install it or leave it"
                     f" out (--backends {' '.join(others) or 'tensorflow'})")
    if min(args.lengths) < 1 or args.rounds < 1:
        parser.error("--lengths and --rounds must be at least 1")


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--cells", nargs="+", default=["mingru", "minlstm"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 512, 2048])
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-contenders", nargs="+", default=["layer", "rnn(cell)", "gru"],
                        help="the contenders whose memory is measured")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    check(parser, args)
    if args.worker:
        return worker(args)
    if args.memory:
        return memory(args)

    print(f"batch {BATCH}, {FEATURES} features, {UNITS} units; {os.cpu_count()} CPUs; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print("\nSeconds per training step (median of the rounds); speed-up = rnn(cell) / layer, "
          "median (lowest-highest) of the rounds\n")
    header = ["backend", "cell", "length", "layer runs", *args.contenders, "speed-up"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for backend in args.backends:
        common = ["--cells", *args.cells, "--contenders", *args.contenders,
                  "--rounds", str(args.rounds)]
        for result in run_child(backend, "--worker", "--lengths", *map(str, args.lengths),
                                *common):
            times = result["times"]
            row = [backend, result["cell"], str(result["steps"]), result["formulation"] or "-"]
            row += [f"{statistics.median(times[c]):.3f}" for c in args.contenders]
            if "layer" in times and "rnn(cell)" in times:
                ratios = [s / f for s, f in zip(times["rnn(cell)"], times["layer"], strict=True)]
                row.append(f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-"
                           f"{max(ratios):.2f})")
            else:
                row.append("-")
            print("| " + " | ".join(row) + " |", flush=True)
    if not args.no_memory:
        longest = max(args.lengths)
        print(f"\nPeak memory growth over two training steps at length {longest}, MiB\n")
        header = ["backend", "cell", *args.memory_contenders]
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for backend in args.backends:
            for cell in args.cells:
                row = [backend, cell]
                for contender in args.memory_contenders:
                    [result] = list(run_child(backend, "--memory", "--cells", cell,
                                              "--contenders", contender, "--lengths",
                                              str(longest)))
                    row.append(f"{result['mib']:.0f}")
                print("| " + " | ".join(row) + " |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
