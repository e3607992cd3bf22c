"""Held-out loss against minutes, textgen and nanoGPT, from versus_nanogpt.py's output.

    python benchmarks/versus_nanogpt.py ... --minutes 1 2 > short.log
    python benchmarks/versus_nanogpt.py ... --minutes 5 --nanogpt-configs ... > five.log
    python benchmarks/plot_versus_nanogpt.py short.log five.log --out curve.png
    python benchmarks/plot_versus_nanogpt.py docs/versus_nanogpt.csv --out curve.png

Reads every run's row of every log and plots, against the minutes (on a
log scale), the median loss on the random held-out windows of kerasrnn, of
nanoGPT's README recipe, and, at the budgets where a log tried other
nanoGPT configurations, of the best of them. Prints the points.

A `.csv` file gives medians already taken, one row each (minutes, who,
runs, random, windows, source: `who` as the logs name it, "kerasrnn",
"nanoGPT" or "nanoGPT" and its configuration), for runs whose logs are
summed up in docs/results.md rather than kept.
"""

import csv
import re
import statistics
from pathlib import Path

from arguments import ArgumentParser  # benchmarks/arguments.py

# A run's row of versus_nanogpt.py's table: | minutes | run | who (details) |
# trained | characters | random | ...; nanoGPT's details name its
# configuration before its iterations where it is not the recipe.
RUN_ROW = re.compile(
    r"^\| ([\d.]+) \| \d+ \| (nanoGPT|kerasrnn) \(([^|]*)\) \| [\d.]+ \| [\d,-]+ \| ([\d.]+) \|",
    re.M)
RECIPE = "nanoGPT"


def runs(log):
    """`{(minutes, who): [losses]}` of one log; `who` is "kerasrnn", RECIPE,
    or "nanoGPT" and its configuration."""
    found = {}
    for minutes, program, details, loss in RUN_ROW.findall(log.read_text()):
        who = program
        if program == "nanoGPT" and "," in details:
            who = f"nanoGPT {details.rsplit(',', 1)[0]}"
        found.setdefault((float(minutes), who), []).append(float(loss))
    return found


def medians(table):
    """`{(minutes, who): (median loss, runs)}` of one `.csv` of medians."""
    with table.open(newline="") as rows:
        return {(float(row["minutes"]), row["who"]): (float(row["random"]), int(row["runs"]))
                for row in csv.DictReader(rows)}


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", type=Path, nargs="+",
                        help="versus_nanogpt.py outputs, or .csv files of medians")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args()
    losses, taken = {}, {}  # (minutes, who): the logs' losses; a .csv's (median, runs)
    for log in args.logs:
        if not log.is_file():
            parser.error(f"{log}: no such file")
        try:
            found = medians(log) if log.suffix == ".csv" else runs(log)
        except (KeyError, ValueError) as error:
            parser.error(f"{log}: not a table of medians ({error})")
        if not found:
            parser.error(f"{log}: no run of versus_nanogpt.py")
        if log.suffix == ".csv":
            taken |= found
            continue
        for key, values in found.items():
            losses.setdefault(key, []).extend(values)
    if set(taken) & set(losses):
        parser.error("a budget and program both in a log and in a table of medians")
    points = {key: (statistics.median(values), len(values)) for key, values in losses.items()}
    points |= taken  # (minutes, who): (median loss, runs)
    median = {key: loss for key, (loss, _) in points.items()}
    minutes = sorted({m for m, _ in median})
    lines = {"kerasrnn": "kerasrnn textgen train --minutes N", RECIPE: "nanoGPT, README recipe"}
    best = {}  # minutes: (loss, configuration) of the best other configuration
    for (m, who), loss in median.items():
        if who not in lines and (m not in best or loss < best[m][0]):
            best[m] = (loss, who.removeprefix("nanoGPT "))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4), dpi=120)
    for who, label in lines.items():
        xs = [m for m in minutes if (m, who) in median]
        axes.plot(xs, [median[m, who] for m in xs], "s-" if who == "kerasrnn" else "o-",
                  label=label)
    if best:
        xs = sorted(best)
        # Their runs are not the recipe's beside them: often another day's.
        axes.plot(xs, [best[m][0] for m in xs], "^",
                  label="nanoGPT, best other configuration (its own runs)")
    axes.set_xscale("log")
    axes.set_xticks(minutes, [f"{m:g}" for m in minutes])
    axes.set_xlabel("training minutes on the CPU (log scale)")
    axes.set_ylabel("held-out loss, nats/char")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.out)
    for m in minutes:
        row = [f"{m:g} min:"] + [f"{who} {median[m, who]:.4f} ({points[m, who][1]} runs)"
                                 for who in lines if (m, who) in median]
        if m in best:
            row.append(f"best other nanoGPT ({best[m][1]}) {best[m][0]:.4f}")
        print(" ".join(row))


if __name__ == "__main__":
    main()
