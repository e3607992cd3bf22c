"""Test accuracy of the mnist app for each cell and dataset, as a README table.

    python benchmarks/mnist_accuracy.py --mnist-dir DIR         # mnist, lstm gru rnn
    python benchmarks/mnist_accuracy.py --mnist-dir DIR --datasets mnist,fashion_mnist \
        --epochs 15 --extra="--bidirectional --dropout 0.2"

Each configuration runs `kerasrnn mnist train` (so the numbers are the
command's own) and reads the run's results.json. Data folders:

- mnist:         --mnist-dir, a folder with the four MNIST IDX files;
- fashion_mnist: /usr/share/datasets/fashion-mnist (full size; Debian's
                 `apt-get install dataset-fashion-mnist`).
"""

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="mnist", help="comma-separated: mnist,fashion_mnist")
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--extra", default="", help="further `kerasrnn mnist train` flags")
    parser.add_argument("--mnist-dir", type=Path, help="folder with the four MNIST IDX files")
    args = parser.parse_args()
    data = {"mnist": args.mnist_dir, "fashion_mnist": FASHION_MNIST}
    if "mnist" in args.datasets.split(",") and args.mnist_dir is None:
        parser.error("--datasets mnist needs --mnist-dir DIR")
    rows = []
    for dataset in args.datasets.split(","):
        for cell in args.cells.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                command = [
                    sys.executable, "-m", "kerasrnn.apps", "mnist", "train", "--cell", cell,
                    "--epochs", str(args.epochs), "--data-dir", str(data[dataset]),
                    "--workdir", f"{tmp}/run", "--out", f"{tmp}/saved_models",
                    *shlex.split(args.extra),
                ]
                print("$", shlex.join(command[1:]), flush=True)
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                results = json.loads(Path(f"{tmp}/run/results.json").read_text())
            rows.append((dataset, cell, results))
            print(f"  test accuracy {results['test_accuracy']:.2%}", flush=True)
    print(f"\n`kerasrnn mnist train --epochs {args.epochs} {args.extra}`".replace("  ", " "))
    print("\n| dataset | cell | test accuracy | parameters | seconds/epoch |")
    print("|---|---|---|---|---|")
    for dataset, cell, r in rows:
        print(f"| {dataset} | {cell} | {r['test_accuracy']:.2%} | {r['parameters']:,} "
              f"| {r['seconds_per_epoch']:.1f} |")


if __name__ == "__main__":
    main()
