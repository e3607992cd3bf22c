"""Generating text: one in-graph call against a Python loop of one call per character.

    python benchmarks/generation.py [--model DIR] [--length 1000] [--intra-op-threads N]

All three use the same SavedModel, so the same weights:

- in-graph: `serving_default` generates `length` characters in one call
  (a tf.while_loop inside the graph), as TF Serving runs it;
- tutorial loop: TensorFlow's text-generation tutorial as it is written
  (https://www.tensorflow.org/text/tutorials/text_generation): a Python loop
  that calls its `OneStep.generate_one_step` once per character, a
  tf.function that splits the input string, looks up the ids, runs the
  model (here the SavedModel's `step` signature), samples with
  `tf.random.categorical` and looks the character up again;
- lean loop: the same pattern cut to the bone: it calls the compiled `step`
  signature directly with ids, and samples in NumPy.

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

from kerasrnn.serving.export import DEFAULT_BASE_DIR, latest_version_dir


def in_graph(model, length):
    model.signatures["serving_default"](
        prompt=tf.constant(["ROMEO:"]), length=tf.constant(length, tf.int32),
        temperature=tf.constant(0.8), seed=tf.constant(1, tf.int32),
    )


class TutorialOneStep:
    """The tutorial's `OneStep`, around the SavedModel's `step` signature.

    The tutorial's vocabulary has an "[UNK]" id that a mask keeps from being
    sampled; this model's vocabulary has none, so there is no mask.
    """

    def __init__(self, model, vocab, temperature=0.8):
        self.step = model.signatures["step"]
        self.temperature = temperature
        ids = tf.range(len(vocab), dtype=tf.int64)
        self.ids_from_chars = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(vocab), ids), default_value=-1
        )
        self.chars_from_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(ids, tf.constant(vocab)), default_value=""
        )

    @tf.function
    def generate_one_step(self, inputs, states):
        input_chars = tf.strings.unicode_split(inputs, "UTF-8")
        input_ids = tf.ragged.map_flat_values(self.ids_from_chars.lookup, input_chars).to_tensor()
        out = self.step(ids=tf.cast(input_ids, tf.int32), state=states)
        predicted_logits = out["logits"][:, -1, :] / self.temperature
        predicted_ids = tf.squeeze(tf.random.categorical(predicted_logits, num_samples=1), -1)
        return self.chars_from_ids.lookup(predicted_ids), out["state"]


def _zero_state(model):
    shape = model.signatures["step"].structured_input_signature[1]["state"].shape
    return tf.zeros([1, shape[1], shape[2]])


def tutorial_loop(model, length, one_step):
    states = _zero_state(model)
    next_char = tf.constant(["ROMEO:"])
    result = [next_char]
    for _ in range(length):
        next_char, states = one_step.generate_one_step(next_char, states)
        result.append(next_char)
    return tf.strings.join(result)


def lean_loop(model, length, vocab, rng):
    step = model.signatures["step"]
    state = _zero_state(model)
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
    one_step = TutorialOneStep(model, vocab)
    contenders = {
        "in-graph serving_default": lambda: in_graph(model, args.length),
        "tutorial loop (OneStep per character)": lambda: tutorial_loop(
            model, args.length, one_step
        ),
        "lean loop (step signature per character)": lambda: lean_loop(
            model, args.length, vocab, rng
        ),
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
    print("| method | characters/s | in-graph / this |")
    print("|---|---|---|")
    in_graph_rate = median["in-graph serving_default"]
    for name, rate in median.items():
        print(f"| {name} | {rate:,.0f} | {in_graph_rate / rate:.1f}x |")


if __name__ == "__main__":
    main()
