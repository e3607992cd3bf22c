"""Start-up time of the `kerasrnn` command, as a table for docs/speed.md.

    python benchmarks/startup.py              # 7 runs of each command
    python benchmarks/startup.py --runs 15

Each command runs as a new process, the way a user starts it (the console
script next to this Python), from the repository's root; the table shows
the median and the range of the wall-clock times.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    ["--help"],
    ["--version"],
    ["textgen", "sample", "--help"],
    ["textgen", "sample", "--length", "1", "--seed", "1"],
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    script = Path(sys.executable).with_name("kerasrnn")
    print("| command | median (s) | range (s) |")
    print("|---|---|---|")
    for command in COMMANDS:
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run([str(script), *command], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        print(f"| `kerasrnn {' '.join(command)}` | {statistics.median(times):.2f} "
              f"| {min(times):.2f}–{max(times):.2f} |", flush=True)


if __name__ == "__main__":
    main()
