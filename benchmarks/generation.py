"""Generating text: one in-graph call against a Python loop of one call per character.

    python benchmarks/generation.py [--model DIR] [--length 1000] [--intra-op-threads N]

Both sides use the same SavedModel, so the same weights:

- in-graph: `serving_default` generates `length` characters in one call
  (a tf.while_loop inside the graph), as TF Serving runs it;
- per-character loop: the pattern of TensorFlow's text-generation tutorial,
  a Python loop that calls the model once per character (here the compiled
  `step` signature, carrying the recurrent state) and samples in Python.

Each is timed `--repeats` times after a warm-up call; the table shows the
median in characters per second and the ratio. `--intra-op-threads 1` runs
each op on the calling thread, as TF Serving does with
`--tensorflow_intra_op_parallelism=1`: one character is many tiny ops, and
a thread pool's hand-offs cost more than they save.
"""

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf

from kerasrnn.export import DEFAULT_BASE_DIR, latest_version_dir


def in_graph(model, length):
    model.signatures["serving_default"](
        prompt=tf.constant(["ROMEO:"]), length=tf.constant(length, tf.int32),
        temperature=tf.constant(0.8), seed=tf.constant(1, tf.int32),
    )


def per_character(model, length, vocab, rng):
    step = model.signatures["step"]
    shape = step.structured_input_signature[1]["state"].shape
    state = tf.zeros([1, shape[1], shape[2]])
    ids = [vocab.index(c) for c in "ROMEO:"]
    for _ in range(length):
        out = step(ids=tf.constant([ids], tf.int32), state=state)
        logits, state = out["logits"].numpy()[0, -1].astype(np.float64), out["state"]
        p = np.exp((logits - logits.max()) / 0.8)
        ids = [int(rng.choice(len(vocab), p=p / p.sum()))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="SavedModel folder (default: newest saved_models/textgen)")
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--intra-op-threads", type=int, default=0,
                        help="TensorFlow's threads per op (0: its default, one per core)")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    path = args.model or latest_version_dir(DEFAULT_BASE_DIR / "textgen")
    model = tf.saved_model.load(str(path))
    vocab = [c.decode() for c in model.signatures["vocabulary"]()["characters"].numpy()]
    rng = np.random.default_rng(0)
    contenders = {
        "in-graph serving_default": lambda: in_graph(model, args.length),
        "per-character Python loop": lambda: per_character(model, args.length, vocab, rng),
    }
    for run in contenders.values():  # warm-up: tracing and first allocations
        run()
    rates = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            rates[name].append(args.length / (time.perf_counter() - start))
    median = {name: statistics.median(r) for name, r in rates.items()}
    print(f"\nGenerating {args.length} characters with {path} "
          f"(median of {args.repeats}, TensorFlow {tf.__version__}):\n")
    print("| method | characters/s |")
    print("|---|---|")
    for name, rate in median.items():
        print(f"| {name} | {rate:,.0f} |")
    ratio = median["in-graph serving_default"] / median["per-character Python loop"]
    print(f"\nin-graph / per-character loop: {ratio:.1f}x")


if __name__ == "__main__":
    main()
