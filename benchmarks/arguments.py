"""The benchmarks' argument parser: a usage error is one line, exit 2.

argparse prints its whole usage text before the error; the benchmarks, like
the `kerasrnn` command, print the one line that says what is wrong (`--help`
shows the usage).
"""

import argparse
import sys


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def operator_benchmark_arguments(description):
    """The checked arguments of the benchmarks that time a runtime's own
    recurrent operator against a loop of the same weights
    (onnx_operators.py, litert_operators.py)."""
    parser = ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if min(args.steps, args.features, args.units, args.repeats, *args.batches) < 1:
        parser.error("every size and --repeats must be at least 1")
    return args
