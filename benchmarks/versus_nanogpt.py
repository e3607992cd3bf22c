"""textgen against nanoGPT's CPU recipe: held-out loss after the same minutes on the same CPU.

    python benchmarks/versus_nanogpt.py --nanogpt ~/nanoGPT --text input.txt --minutes 5 20
    python benchmarks/versus_nanogpt.py --nanogpt ~/nanoGPT --text input.txt --minutes 5 \\
        --runs 1 --kerasrnn-args "--cell lstm --units 256"
    python benchmarks/versus_nanogpt.py --nanogpt ~/nanoGPT --text input.txt --minutes 5 \\
        --runs 1 --nanogpt-configs "" "n_layer=6 n_head=6 n_embd=192" "batch_size=32"

`--nanogpt` is a checkout of karpathy/nanoGPT; its files are copied to a
scratch folder and run there, unchanged. `--text` is tiny Shakespeare's
input.txt: nanoGPT's own data/shakespeare_char/prepare.py prepares it (the
last 10% of the characters held out), and kerasrnn trains on the same file
(which holds out the same last 10%).

For each `--minutes N`, `--runs` times (default: 3 runs at 5 minutes or
less, 2 above), one after the other, nothing else timed alongside:

- nanoGPT: the README's CPU recipe ("I only have a macbook": 4 layers, 4
  heads, 128 wide, context 64, batch 12, no dropout), its `max_iters` (and
  `lr_decay_iters`) fitted to N minutes: for the first run from a
  220-iteration timing run, for the next from the speed the previous run
  kept up; the table shows the minutes each actually trained. With
  `--nanogpt-configs`, each configuration given (nanoGPT's own options as
  `name=value`, added to the recipe; "" is the recipe itself) trains in
  every run, and the medians compare kerasrnn with the best of them;
- kerasrnn: `kerasrnn textgen train --text input.txt --minutes N`, plus
  `--kerasrnn-args` (none by default: what a user gets).

Both models are then measured on the held-out 10% in two ways, the same for
both:

- random: the mean loss over the same random 64-character windows (the
  starts drawn once, `--windows` of them), each read from an empty context
  or a zero state: nanoGPT's `estimate_loss`, with many more batches (for
  kerasrnn, `kerasrnn textgen evaluate --seq-len 64 --random-windows N`,
  whose draw of starts the benchmark gives nanoGPT too);
- windows: the held-out text cut into consecutive 64-character windows, each
  from an empty context or a zero state: `kerasrnn textgen evaluate
  --seq-len 64`'s measure (for kerasrnn, that command itself).

The table gives each run's losses in nats per character, what each model
saw (characters: nanoGPT's iterations x 12 x 64, kerasrnn's steps x batch x
window), and the 1-minute load average before and after each training;
a run after which the load exceeds the CPU count by more than 0.5 is marked
`*`: something else may have run (or the training's own threads kept more
than one runnable per CPU, as TensorFlow's can). Then the median of the
runs for each N.
"""

import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from arguments import ArgumentParser  # benchmarks/arguments.py

CONTEXT = 64  # nanoGPT's CPU recipe's block_size: both models' evaluation windows
NANOGPT_RECIPE = [  # nanoGPT's README, "I only have a macbook"
    "config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
    "--log_interval=1", f"--block_size={CONTEXT}", "--batch_size=12", "--n_layer=4",
    "--n_head=4", "--n_embd=128", "--dropout=0.0",
]
STARTS_SEED = 0  # the draw of the random windows, the same for both models
ITER_LINE = re.compile(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms", re.M)
STEP_LINE = re.compile(r"^step (\d+): train loss [\d.]+, val loss ([\d.]+)", re.M)

# Run inside the nanoGPT copy: its GPT on the held-out windows.
NANOGPT_EVAL = """
import json, sys
import numpy as np, torch
from model import GPT, GPTConfig
checkpoint = torch.load(sys.argv[1], map_location="cpu")
model = GPT(GPTConfig(**checkpoint["model_args"]))
model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in checkpoint["model"].items()})
model.eval()
val = np.fromfile("data/shakespeare_char/val.bin", dtype=np.uint16).astype(np.int64)
starts, context = np.load(sys.argv[2]), int(sys.argv[3])

def mean_loss(windows):
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(windows), 256):
            batch = torch.from_numpy(np.stack(windows[i:i + 256]))
            _, loss = model(batch[:, :-1].contiguous(), batch[:, 1:].contiguous())
            total += float(loss) * batch[:, 1:].numel()
            count += batch[:, 1:].numel()
    return total / count

random = [val[s:s + context + 1] for s in starts]
consecutive = [val[s:s + context + 1] for s in range(0, len(val) - context, context)]
print(json.dumps({"random": mean_loss(random), "windows": mean_loss(consecutive)}))
"""


def run(command, cwd=None, env=None):
    """Runs `command`, returning its stdout; exits with its stderr's tail if it fails."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        sys.exit(f"failed: {shlex.join(map(str, command))}\n{done.stderr[-3000:]}")
    return done.stdout


def load():
    return os.getloadavg()[0]


def prepare_nanogpt(checkout, text, scratch):
    """A copy of the nanoGPT checkout with tiny Shakespeare prepared by its own script."""
    copy = scratch / "nanogpt"
    shutil.copytree(checkout, copy, ignore=shutil.ignore_patterns(".git", "out*", "assets"))
    data = copy / "data" / "shakespeare_char"
    shutil.copyfile(text, data / "input.txt")  # prepare.py reads it instead of downloading
    run([sys.executable, "prepare.py"], cwd=data)
    return copy


def chars_per_iter(config):
    """Characters one training iteration of the recipe plus `config` reads:
    batch size × context (nanoGPT's configurator lets the last value given win)."""
    values = {"batch_size": None, "block_size": None}  # NANOGPT_RECIPE sets both
    for option in [*NANOGPT_RECIPE, *config]:
        name, _, value = option.removeprefix("--").partition("=")
        if name in values:
            values[name] = int(value)
    return values["batch_size"] * values["block_size"]


def nanogpt_ms_per_iter(nanogpt, config, scratch):
    """Milliseconds per training iteration of the CPU recipe (plus `config`)
    on this machine, now: the mean over 200 iterations after 20 of warm-up (a
    few seconds of timing overestimates the speed a machine keeps up for minutes)."""
    log = run([sys.executable, "train.py", *NANOGPT_RECIPE, *config, "--max_iters=220",
               "--eval_interval=1000000", f"--out_dir={scratch / 'timing'}"], cwd=nanogpt)
    times = [float(ms) for _, ms in ITER_LINE.findall(log)]
    return statistics.mean(times[20:])


def train_nanogpt(nanogpt, config, iters, out_dir):
    """The CPU recipe (plus `config`) for `iters` iterations; its checkpoint is
    the model after the last."""
    started = time.monotonic()
    log = run([sys.executable, "train.py", *NANOGPT_RECIPE, *config, f"--max_iters={iters}",
               f"--lr_decay_iters={iters}", f"--eval_interval={iters}",
               "--always_save_checkpoint=True", f"--out_dir={out_dir}"], cwd=nanogpt)
    own = [float(v) for step, v in STEP_LINE.findall(log) if int(step) == iters]
    times = [float(ms) for step, ms in ITER_LINE.findall(log) if 0 < int(step) < iters]
    training_ms = sum(float(ms) for _, ms in ITER_LINE.findall(log))
    return {"own_val": own[-1] if own else None, "iters": iters,
            "ms_per_iter": statistics.mean(times) if times else None,
            "chars": iters * chars_per_iter(config), "train_minutes": training_ms / 60000,
            "wall_minutes": (time.monotonic() - started) / 60}


def train_kerasrnn(text, minutes, extra, scratch):
    """`kerasrnn textgen train --minutes N` in fresh folders; its SavedModel and figures."""
    kerasrnn = Path(sys.executable).with_name("kerasrnn")
    workdir, out = scratch / "run", scratch / "saved_models"
    started = time.monotonic()
    run([str(kerasrnn), "textgen", "train", "--text", str(text), "--minutes", str(minutes),
         "--workdir", str(workdir), "--out", str(out), *extra])
    results = json.loads((workdir / "results.json").read_text())
    return {"saved_model": results["saved_model"], "chars": results["characters"],
            "train_minutes": results["minutes"], "epochs": results["epochs"],
            "wall_minutes": (time.monotonic() - started) / 60}


def measure_nanogpt(nanogpt, out_dir, starts_file):
    output = run([sys.executable, "-c", NANOGPT_EVAL, str(out_dir / "ckpt.pt"),
                  str(starts_file), str(CONTEXT)], cwd=nanogpt)
    return json.loads(output.splitlines()[-1])  # model.py prints its size first


def measure_kerasrnn(saved_model, text, windows):
    """`kerasrnn textgen evaluate`'s two measures: the random windows (the
    same starts as nanoGPT's, `random_window_starts` with STARTS_SEED) and the
    consecutive ones."""
    kerasrnn = Path(sys.executable).with_name("kerasrnn")

    def loss(*options):
        report = run([str(kerasrnn), "textgen", "evaluate", "--model", saved_model, "--text",
                      str(text), "--seq-len", str(CONTEXT), *options])
        return float(re.search(r"^loss: ([\d.]+) nats/char", report, re.M).group(1))

    return {"random": loss("--random-windows", str(windows), "--seed", str(STARTS_SEED)),
            "windows": loss()}


def fmt(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


def main():
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", type=Path, required=True, help="a karpathy/nanoGPT checkout")
    parser.add_argument("--text", type=Path, required=True, help="tiny Shakespeare's input.txt")
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 20])
    parser.add_argument("--runs", type=int, nargs="+",
                        help="runs per --minutes value (default: 3 up to 5 minutes, else 2)")
    parser.add_argument("--kerasrnn-args", default="",
                        help="options added to `kerasrnn textgen train` (the recipe)")
    parser.add_argument("--nanogpt-configs", nargs="+", default=[""], metavar="OPTIONS",
                        help="nanoGPT configurations, each its own options as name=value"
                        ' added to the CPU recipe ("": the recipe itself); each trains in'
                        " every run")
    parser.add_argument("--windows", type=int, default=12000,
                        help="random held-out windows both models are measured on")
    parser.add_argument("--keep", type=Path, help="keep the scratch files in this folder")
    args = parser.parse_args()
    runs, extra, configs = checked(parser, args)

    # Absolute: nanoGPT's programs run in its folder and are given paths in this one.
    scratch = (args.keep or Path(tempfile.mkdtemp(prefix="versus-nanogpt-"))).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        compare(args, runs, extra, configs, scratch)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def checked(parser, args):
    """`(runs, extra kerasrnn options, nanoGPT configurations)` from the
    arguments, every one checked before any work: a bad one is a one-line
    usage error (exit 2)."""
    import math

    for name in ("train.py", "model.py", "data/shakespeare_char/prepare.py"):
        if not (args.nanogpt / name).is_file():
            parser.error(f"--nanogpt {args.nanogpt}: no {name} (not a nanoGPT checkout)")
    if not args.text.is_file():
        parser.error(f"--text {args.text}: no such file")
    if not all(math.isfinite(m) and m > 0 for m in args.minutes):
        parser.error("--minutes: each value must be a positive number of minutes")
    runs = args.runs or [3 if m <= 5 else 2 for m in args.minutes]
    if len(runs) != len(args.minutes):
        parser.error("--runs needs one count per --minutes value")
    if min(runs) < 1 or args.windows < 1:
        parser.error("--runs and --windows must be at least 1")
    try:
        extra = shlex.split(args.kerasrnn_args)
    except ValueError as error:  # an unbalanced quote
        parser.error(f"--kerasrnn-args: {error}")
    configs = []
    for given in args.nanogpt_configs:
        try:
            config = shlex.split(given)
        except ValueError as error:
            parser.error(f"--nanogpt-configs {given!r}: {error}")
        # nanoGPT's configurator takes `--name=value` overrides of its globals;
        # given without the dashes (argparse reads a lone "--x=1" as an option).
        config = [f"--{option.removeprefix('--')}" for option in config]
        for option in config:
            if not re.fullmatch(r"--\w+=\S+", option):
                parser.error(f"--nanogpt-configs {given!r}: {option!r} is not name=value")
            try:
                chars_per_iter([option])
            except ValueError:
                parser.error(f"--nanogpt-configs {given!r}: {option!r} needs an integer")
        configs.append(config)
    # The options as `kerasrnn textgen train` parses them, without running it.
    import click

    from kerasrnn.apps.textgen.cli import train

    try:
        train.make_context("train", [*extra, "--text", str(args.text)])
    except click.ClickException as error:
        parser.error(f"--kerasrnn-args: {error.format_message()}")
    return runs, extra, configs


def compare(args, runs, extra, configs, scratch):
    """Trains and measures both models, the runs of each budget side by side,
    in `scratch`; prints the tables."""
    text = args.text.resolve()
    nanogpt = prepare_nanogpt(args.nanogpt, text, scratch)
    val_length = len(np.fromfile(nanogpt / "data/shakespeare_char/val.bin", dtype=np.uint16))
    from kerasrnn.apps.textgen.data import random_window_starts  # NumPy's: no TensorFlow here

    np.save(scratch / "starts.npy",
            random_window_starts(val_length, CONTEXT, args.windows, STARTS_SEED))

    print(f"{os.cpu_count()} CPUs; kerasrnn recipe: `kerasrnn textgen train --minutes N"
          f"{' ' + args.kerasrnn_args if args.kerasrnn_args else ''}`; both measured on the"
          f" held-out 10%: {args.windows} random {CONTEXT}-character windows, and consecutive"
          f" {CONTEXT}-character windows; nats/char\n", flush=True)
    header = ["minutes", "run", "who", "trained (min)", "characters seen", "random", "windows",
              "own estimate", "load before-after"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header), flush=True)
    medians = []
    for minutes, count in zip(args.minutes, runs, strict=True):
        labels = [shlex.join(config) or "recipe" for config in configs]
        losses = {who: {"random": [], "windows": []} for who in [*labels, "kerasrnn"]}
        ms = [None] * len(configs)
        for r in range(count):
            folder = scratch / f"{minutes:g}min-{r + 1}"
            for c, (config, label) in enumerate(zip(configs, labels, strict=True)):
                # The first run's speed from a timing run; the next runs', from
                # the speed the run before them kept up (evaluations excluded).
                ms[c] = ms[c] or nanogpt_ms_per_iter(nanogpt, config, folder / f"timing{c}")
                iters = max(1, round(minutes * 60000 / ms[c]))
                before = load()
                trained = train_nanogpt(nanogpt, config, iters, folder / f"nanogpt{c}")
                after = load()
                measured = measure_nanogpt(nanogpt, folder / f"nanogpt{c}",
                                           scratch / "starts.npy")
                mark = " *" if after > os.cpu_count() + 0.5 else ""
                shown = "" if label == "recipe" else f"{label}, "
                print(f"| {minutes:g} | {r + 1} | nanoGPT ({shown}{iters} iters at"
                      f" {ms[c]:.0f} ms) | {trained['train_minutes']:.1f} |"
                      f" {trained['chars']:,} | {fmt(measured['random'])} |"
                      f" {fmt(measured['windows'])} | {fmt(trained['own_val'])} |"
                      f" {before:.2f}-{after:.2f}{mark} |", flush=True)
                for k in ("random", "windows"):
                    losses[label][k].append(measured[k])
                ms[c] = trained["ms_per_iter"] or ms[c]

            before = load()
            trained = train_kerasrnn(text, minutes, extra, folder / "kerasrnn")
            after = load()
            measured = measure_kerasrnn(trained["saved_model"], text, args.windows)
            mark = " *" if after > os.cpu_count() + 0.5 else ""
            chars = f"{trained['chars']:,}" if trained["chars"] else "-"
            print(f"| {minutes:g} | {r + 1} | kerasrnn ({trained['epochs']} epochs) |"
                  f" {trained['train_minutes']:.1f} | {chars} | {fmt(measured['random'])} |"
                  f" {fmt(measured['windows'])} | - | {before:.2f}-{after:.2f}{mark} |",
                  flush=True)
            for k in ("random", "windows"):
                losses["kerasrnn"][k].append(measured[k])
        medians.append((minutes, count, losses))

    print("\nMedian of the runs, nats/char (lead: nanoGPT's minus kerasrnn's; positive when"
          " kerasrnn is ahead; with several nanoGPT configurations, the best median of each"
          " measure)\n")
    print("| minutes | runs | nanoGPT random | kerasrnn random | lead | nanoGPT windows |"
          " kerasrnn windows | lead |")
    print("|---|---|---|---|---|---|---|---|")
    for minutes, count, losses in medians:
        row = [f"{minutes:g}", str(count)]
        for k in ("random", "windows"):
            best = min((statistics.median(losses[label][k]), label)
                       for label in losses if label != "kerasrnn")
            ours = statistics.median(losses["kerasrnn"][k])
            shown = "" if len(losses) == 2 else f" ({best[1]})"
            row += [fmt(best[0]) + shown, fmt(ours), f"{best[0] - ours:+.4f}"]
        print("| " + " | ".join(row) + " |")
    print(f"\nload average at end {load():.2f}" + (f"; scratch files: {scratch}"
                                                   if args.keep else ""))


if __name__ == "__main__":
    main()
