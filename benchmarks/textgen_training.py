"""Training steps of the textgen model: our layers against `keras.layers.RNN(cell)`.

    python benchmarks/textgen_training.py [--cell gru] [--units 384] [--layers 2]
                                          [--batch-size 32] [--seq-len 100]

The app's model (`apps.textgen.model.CharacterModel`, built from our layers,
`kerasrnn.GRU` etc.) and the same model built with `keras.layers.RNN(our
cell)` instead, as the app did before, train on the same random batch with
Adam and gradient clipping, as `kerasrnn textgen train` does. Rounds of
`--steps` training steps alternate between the two, so a slow spell of this
shared machine hits both alike; the table shows each one's median time per
step and the ratio. The defaults are the 60-minute recipe's model (README).
"""

import argparse
import statistics
import time

import keras
import numpy as np

from kerasrnn.apps.common.choices import CELLS, cell_class
from kerasrnn.apps.textgen.model import EMBEDDING, CharacterModel

VOCABULARY = 65  # tiny Shakespeare's


def cell_model(cell, units, layers, dropout):
    """CharacterModel's plain stack, with `keras.layers.RNN(cell)` layers."""
    inputs = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(VOCABULARY, EMBEDDING)(inputs)
    for _ in range(layers):
        h = keras.layers.RNN(cell_class(cell)(units, dropout=dropout), return_sequences=True)(h)
    h = keras.layers.Dropout(dropout)(h)
    return keras.Model(inputs, keras.layers.Dense(VOCABULARY)(h))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="gru", choices=sorted(CELLS))
    parser.add_argument("--units", type=int, default=384)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=10, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    vocab = [chr(32 + i) for i in range(VOCABULARY)]
    models = {
        "our layers (the app)": CharacterModel(
            len(vocab), args.cell, args.units, args.layers, args.dropout
        ),
        "keras.layers.RNN(our cell)": cell_model(args.cell, args.units, args.layers, args.dropout),
    }
    ids = np.random.default_rng(0).integers(
        0, VOCABULARY, (args.batch_size, args.seq_len + 1), dtype="int32"
    )
    x, y = ids[:, :-1], ids[:, 1:]
    for model in models.values():
        model.compile(
            keras.optimizers.Adam(2e-3, clipnorm=5.0),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.train_on_batch(x, y)  # trace and warm up

    seconds = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            seconds[name].append((time.perf_counter() - start) / args.steps)

    medians = {name: statistics.median(times) for name, times in seconds.items()}
    ours, theirs = medians.values()
    print("| model | ms per training step (median) |")
    print("|---|---|")
    for name, median in medians.items():
        print(f"| {name} | {1000 * median:.0f} |")
    print(f"\nkeras.layers.RNN(our cell) / our layers: {theirs / ours:.2f}")


if __name__ == "__main__":
    main()
