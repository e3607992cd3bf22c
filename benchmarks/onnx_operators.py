"""onnxruntime's own recurrent operators against the generic `Loop`.

For the same weights, one ONNX file runs the recurrence as ONNX's `RNN` or
`GRU` operator and another as a `Loop` of the step: SimpleRNN written by
`kerasrnn.export_onnx` (`RNN`) and by `model.export` (`Loop`); GRU written
by `model.export` of `kerasrnn.GRU` (`GRU`) and of `keras.layers.GRU`
(`Loop`). Each model is `Input((None, features)) -> layer(units)`; the
table gives the best of `--repeats` runs of each file in onnxruntime's CPU
provider, side by side in one process, per batch size.

    pip install "kerasrnn[deploy]"
    python benchmarks/onnx_operators.py [--steps 500] [--features 64] [--units 128]
"""

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from arguments import operator_benchmark_arguments  # benchmarks/arguments.py

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def best_ms(path, x, repeats):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    session.run(None, feed)  # the first run allocates
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main():
    args = operator_benchmark_arguments(__doc__.splitlines()[0])
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as error:
        sys.exit(f'{error.name} is not installed: pip install "kerasrnn[deploy]"')
    warnings.filterwarnings("ignore")
    import keras
    import numpy as np

    import kerasrnn

    def model(layer):
        keras.utils.set_random_seed(0)
        built = keras.Sequential([keras.Input((None, args.features)), layer(args.units)])
        built(np.zeros((1, 1, args.features), "float32"))  # Keras exports a called model
        return built

    def keras_export(built, path):
        built.export(path, format="onnx", verbose=False)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        simple_rnn = model(kerasrnn.SimpleRNN)
        kerasrnn.export_onnx(simple_rnn, folder / "rnn.onnx", verbose=False)
        keras_export(simple_rnn, folder / "rnn_loop.onnx")
        gru, keras_gru = model(kerasrnn.GRU), model(keras.layers.GRU)
        gru.set_weights(keras_gru.get_weights())
        keras_export(gru, folder / "gru.onnx")
        keras_export(keras_gru, folder / "gru_loop.onnx")

        print(f"onnxruntime {onnxruntime.__version__}, CPU provider, {os.cpu_count()} CPUs; "
              f"{args.steps} steps, {args.features} features, {args.units} units; "
              f"best of {args.repeats} (ms)\n")
        print("| layer | batch | operator | Loop | Loop / operator |")
        print("| --- | --- | --- | --- | --- |")
        for name, operator in (("SimpleRNN", "rnn"), ("GRU", "gru")):
            for batch in args.batches:
                x = np.random.default_rng(0).uniform(
                    -1, 1, (batch, args.steps, args.features)).astype("float32")
                fused = best_ms(folder / f"{operator}.onnx", x, args.repeats)
                loop = best_ms(folder / f"{operator}_loop.onnx", x, args.repeats)
                print(f"| {name} | {batch} | {fused:.2f} | {loop:.2f} | {loop / fused:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
