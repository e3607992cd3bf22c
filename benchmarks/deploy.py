"""The apps' models as a SavedModel, an ONNX file and a LiteRT file, side by side.

For each app and each format, in one run:

- start-up: the wall time of the whole command a user types, from an empty
  process (`kerasrnn mnist predict --model M`, the ten sample digits;
  `kerasrnn textgen sample --model M --length 300 --temperature 0`), the
  median of `--runs`;
- mnist: digits per second at batch 1 and at batch 256, in one process
  once the model is loaded (the SavedModel's `serving_default`; the files on
  onnxruntime and LiteRT, as `mnist predict` runs them);
- textgen: characters per second at batch 1, generating `--chars`
  characters greedily in one process once loaded (the SavedModel's
  `serving_default`, which loops inside its graph; the step files driven
  by kerasrnn/apps/textgen/sampler.py).

OUT is the folder the exports went to:

    kerasrnn mnist export --workdir runs/mnist --out OUT            # OUT/mnist/N
    kerasrnn mnist export --workdir runs/mnist --out OUT --format onnx
    kerasrnn mnist export --workdir runs/mnist --out OUT --format litert
    (the same for textgen)
    python benchmarks/deploy.py OUT
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

FORMATS = {"SavedModel": None, "ONNX": ".onnx", "LiteRT": ".tflite"}
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def models(out, app):
    """{format: path} of the app's exports found in `out`."""
    from kerasrnn.serving.export import latest_version_dir

    found = {"SavedModel": latest_version_dir(out / app)}
    for name, suffix in FORMATS.items():
        if suffix is not None:
            found[name] = out / (app + suffix)
    return {name: path for name, path in found.items() if path is not None and path.exists()}


def start_up(command, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rate(function, items, min_seconds=2.0):
    """`items` per second of `function()`, repeated for at least `min_seconds`."""
    function()  # warm-up
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        function()
        calls += 1
    return calls * items / (time.perf_counter() - start)


def mnist_rates(name, path):
    import numpy as np

    images = np.random.default_rng(0).uniform(0, 1, (256, 28, 28)).astype("float32")
    if name == "SavedModel":
        import tensorflow as tf

        from kerasrnn.apps.mnist.model import load_classifier

        classifier = load_classifier(path)
        predict = lambda x: classifier.function(images=tf.constant(x))  # noqa: E731
    else:
        from kerasrnn.apps.common import runtimes

        model = runtimes.load(path)
        predict = model
    return rate(lambda: predict(images[:1]), 1), rate(lambda: predict(images), 256)


def textgen_rate(name, path, chars):
    if name == "SavedModel":
        import tensorflow as tf

        from kerasrnn.apps.textgen.generation import load

        tf.config.threading.set_intra_op_parallelism_threads(1)
        loaded, _ = load(path)
        serve = loaded.signatures["serving_default"]
        return rate(lambda: serve(prompt=tf.constant(["ROMEO:"]), length=tf.constant(chars),
                                  temperature=tf.constant(0.0), seed=tf.constant(0)), chars)
    from kerasrnn.apps.textgen.sampler import StepFile, generate

    step_file = StepFile(path)
    return rate(lambda: generate(step_file, "ROMEO:", chars, 0.0, 0, lambda _: None), chars)


def measure_apart(app, name, path, chars):
    """The rates of one model, measured in a process of their own, as a user's
    program would run them (TensorFlow set up for that model alone)."""
    run = subprocess.run([sys.executable, __file__, "--measure", app, name, str(path),
                          "--chars", str(chars)], check=True, capture_output=True, text=True)
    return json.loads(run.stdout.splitlines()[-1])


def main():
    if sys.argv[1:2] == ["--measure"]:
        _, app, name, path, _, chars = sys.argv[1:]
        rates = mnist_rates(name, path) if app == "mnist" else [
            textgen_rate(name, path, int(chars))]
        print(json.dumps(rates))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder the apps' exports went to")
    parser.add_argument("--runs", type=int, default=3, help="start-ups timed per command")
    parser.add_argument("--chars", type=int, default=300,
                        help="characters generated per timing (textgen)")
    args = parser.parse_args()
    if args.runs < 1 or args.chars < 1:
        parser.error("--runs and --chars must be at least 1")
    found = {app: models(args.out, app) for app in ("mnist", "textgen")}
    if not any(found.values()):
        parser.error(f"{args.out}: no exported mnist or textgen model (see --help)")
    kerasrnn = [sys.executable, "-m", "kerasrnn.apps"]
    for app, paths in found.items():
        if not paths:
            continue
        if app == "mnist":
            print("| mnist | start-up of `mnist predict` (s) | digits/s, batch 1"
                  " | digits/s, batch 256 |")
            print("| --- | --- | --- | --- |")
        else:
            print("| textgen | start-up of `textgen sample --length 300` (s)"
                  " | characters/s, batch 1 |")
            print("| --- | --- | --- |")
        for name, path in paths.items():
            if app == "mnist":
                seconds = start_up([*kerasrnn, "mnist", "predict", "--model", str(path)],
                                   args.runs)
                one, many = measure_apart(app, name, path, args.chars)
                print(f"| {name} (`{path}`) | {seconds:.2f} | {one:,.0f} | {many:,.0f} |",
                      flush=True)
            else:
                seconds = start_up([*kerasrnn, "textgen", "sample", "--model", str(path),
                                    "--length", "300", "--temperature", "0", "--seed", "0"],
                                   args.runs)
                chars, = measure_apart(app, name, path, args.chars)
                print(f"| {name} (`{path}`) | {seconds:.2f} | {chars:,.0f} |", flush=True)
        print()


if __name__ == "__main__":
    main()
