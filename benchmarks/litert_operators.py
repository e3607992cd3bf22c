"""LiteRT's own sequence operators against a `WHILE` loop of the step.

For the same weights, one `.tflite` file runs the recurrence as LiteRT's
operator and another as a `WHILE` loop of builtin ops: SimpleRNN written by
`kerasrnn.export_litert` (`UNIDIRECTIONAL_SEQUENCE_RNN`) and by
`model.export` (`WHILE`); LSTM written by `model.export` of `kerasrnn.LSTM`
(`UNIDIRECTIONAL_SEQUENCE_LSTM`) and of `keras.layers.LSTM` (`WHILE`). The
operators need a batch fixed when exporting, so each batch size has its
files. Each model is `Input((None, features)) -> layer(units)`; the table
gives the best of `--repeats` runs of each file in LiteRT's interpreter
(a thread per CPU core, as kerasrnn runs it; its variables reset before
each run), side by side in one process, per batch size.

    pip install "kerasrnn[deploy]"
    python benchmarks/litert_operators.py [--steps 500] [--features 64] [--units 128]
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
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count())
    runner = interpreter.get_signature_runner()
    feed = {next(iter(runner.get_input_details())): x}
    runner(**feed)  # the first run allocates
    times = []
    for _ in range(repeats):
        interpreter.reset_all_variables()
        start = time.perf_counter()
        runner(**feed)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main():
    args = operator_benchmark_arguments(__doc__.splitlines()[0])
    try:
        import ai_edge_litert  # noqa: F401
    except ImportError:
        sys.exit('ai-edge-litert is not installed: pip install "kerasrnn[deploy]"')
    warnings.filterwarnings("ignore")
    import keras
    import numpy as np

    import kerasrnn

    def model(layer):
        keras.utils.set_random_seed(0)
        built = keras.Sequential([keras.Input((None, args.features)), layer(args.units)])
        built(np.zeros((1, 1, args.features), "float32"))  # Keras exports a called model
        return built

    simple_rnn = model(kerasrnn.SimpleRNN)
    lstm, keras_lstm = model(kerasrnn.LSTM), model(keras.layers.LSTM)
    keras_lstm.set_weights(lstm.get_weights())

    from importlib.metadata import version

    print(f"ai-edge-litert {version('ai-edge-litert')}, {os.cpu_count()} threads; "
          f"{args.steps} steps, {args.features} features, {args.units} units; "
          f"best of {args.repeats} (ms)\n")
    print("| layer | batch | operator | WHILE | WHILE / operator |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for batch in args.batches:
            signature = [keras.InputSpec(shape=(batch, None, args.features), dtype="float32")]
            kerasrnn.export_litert(simple_rnn, folder / f"rnn{batch}.tflite", verbose=False,
                                   input_signature=signature)
            simple_rnn.export(folder / f"rnn_loop{batch}.tflite", format="litert",
                              verbose=False, input_signature=signature)
            lstm.export(folder / f"lstm{batch}.tflite", format="litert", verbose=False,
                        input_signature=signature)
            keras_lstm.export(folder / f"lstm_loop{batch}.tflite", format="litert",
                              verbose=False, input_signature=signature)
        for name, operator in (("SimpleRNN", "rnn"), ("LSTM", "lstm")):
            for batch in args.batches:
                x = np.random.default_rng(0).uniform(
                    -1, 1, (batch, args.steps, args.features)).astype("float32")
                fused = best_ms(folder / f"{operator}{batch}.tflite", x, args.repeats)
                loop = best_ms(folder / f"{operator}_loop{batch}.tflite", x, args.repeats)
                print(f"| {name} | {batch} | {fused:.2f} | {loop:.2f} | {loop / fused:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
