"""First contact: `--help` is instant (no TensorFlow, no Keras) and commands are quiet."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Every --help and --version, through click's runner, in a fresh process
# (this one imported TensorFlow long ago); then which heavy modules it holds.
HELP_EVERYWHERE = """
import json, sys
import click
from click.testing import CliRunner
from kerasrnn.apps.cli import main

runner = CliRunner()
invocations = [["--help"], ["--version"]]
root = click.Context(main)
for name in main.list_commands(root):
    group = main.get_command(root, name)
    invocations.append([name, "--help"])
    for sub in group.list_commands(click.Context(group)):
        invocations.append([name, sub, "--help"])
failed = []
for args in invocations:
    result = runner.invoke(main, args)
    if result.exit_code != 0 or not result.output:
        failed.append([args, result.exit_code, result.output[-300:]])
heavy = sorted(m for m in ("tensorflow", "keras", "torch", "jax") if m in sys.modules)
print(json.dumps({"invocations": invocations, "failed": failed, "heavy": heavy}))
"""


def test_help_and_version_import_neither_tensorflow_nor_keras():
    run = subprocess.run([sys.executable, "-c", HELP_EVERYWHERE], capture_output=True,
                         text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert not report["failed"], report["failed"]
    assert report["heavy"] == []
    names = {" ".join(args) for args in report["invocations"]}
    assert {"mnist train --help", "textgen sample --help", "serving check --help"} <= names


def test_every_command_help_has_an_example_and_defaults():
    import click
    from click.testing import CliRunner

    from kerasrnn.apps.cli import main

    runner = CliRunner()
    root = click.Context(main)
    for name in main.list_commands(root):
        group = main.get_command(root, name)
        for sub in group.list_commands(click.Context(group)):
            output = runner.invoke(main, [name, sub, "--help"], terminal_width=200).output
            assert "Example:" in output or "Examples:" in output, (name, sub)
            assert f"kerasrnn {name} {sub}" in output, (name, sub)
    sample = runner.invoke(main, ["textgen", "sample", "--help"], terminal_width=200).output
    assert "default: 500" in sample and "default: 0.8" in sample


def test_group_help_shows_examples_and_every_command_s_first_sentence_in_full():
    import click
    from click.testing import CliRunner

    from kerasrnn.apps.cli import main

    runner = CliRunner()
    root = click.Context(main)
    for name in main.list_commands(root):
        group = main.get_command(root, name)
        output = runner.invoke(main, [name, "--help"], terminal_width=80).output
        assert "Examples:" in output and f"kerasrnn {name} " in output, name
        listing = output.split("Commands:")[1]
        assert "..." not in listing, (name, listing)
        for sub, command in group.commands.items():
            first_sentence = command.help.split(".")[0]
            # wrapped over lines, but every word there
            assert " ".join(first_sentence.split()) in " ".join(listing.split()), (name, sub)


def test_the_console_script_answers_help_without_tensorflow_s_logs():
    script = Path(sys.executable).with_name("kerasrnn")
    run = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    assert run.stdout.startswith("Usage: kerasrnn")
    assert run.stderr == ""


def test_a_command_that_runs_a_model_writes_only_its_own_lines_to_stderr():
    script = Path(sys.executable).with_name("kerasrnn")
    run = subprocess.run([str(script), "textgen", "sample", "--length", "20", "--seed", "1"],
                         capture_output=True, text=True, cwd=ROOT,
                         env={k: v for k, v in os.environ.items()
                              if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert run.returncode == 0, run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith("model: saved_models/textgen/")
    assert line.endswith("(the newest export here)")
    assert run.stdout.startswith("ROMEO:")


def test_verbose_brings_tensorflow_s_native_lines_back():
    script = Path(sys.executable).with_name("kerasrnn")
    run = subprocess.run([str(script), "--verbose", "textgen", "sample", "--length", "5",
                          "--seed", "1"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert len(run.stderr.splitlines()) > 1  # TensorFlow's own start-up lines


@pytest.mark.parametrize("args", [
    ["textgen", "train", "--minutes", "nan"],
    ["textgen", "train", "--minutes", "inf"],
    ["textgen", "train", "--lr", "-inf"],
    ["textgen", "train", "--clipnorm", "nan"],
    ["textgen", "train", "--dropout", "nan"],
    ["textgen", "sample", "--temperature", "nan"],
    ["mnist", "train", "--lr", "inf"],
    ["mnist", "train", "--dropout", "nan"],
    ["mnist", "train", "--val-fraction", "nan"],
])
def test_nan_and_infinity_are_refused_as_usage_errors(args):
    from click.testing import CliRunner

    from kerasrnn.apps.cli import main

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "is not a finite number" in result.output, result.output


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_out_of_range_is_a_usage_error(seed):
    from click.testing import CliRunner

    from kerasrnn.apps.cli import main

    for app in ("mnist", "textgen"):
        result = CliRunner().invoke(main, [app, "train", "--seed", seed])
        assert result.exit_code == 2 and "--seed" in result.output, result.output


USAGE_ERRORS_BEFORE_TENSORFLOW = """
import json, sys
from click.testing import CliRunner
from kerasrnn.apps.cli import main
results = [CliRunner().invoke(main, args) for args in (
    ["mnist", "explain"],
    ["mnist", "explain", "a.png", "--index", "1"],
    ["mnist", "explain", *["--index", "1"] * 13],
    ["mnist", "explain", "--index", "1", "--out", "x.txt"],
    ["mnist", "plot", "--out", "grid.jpg"],
)]
print(json.dumps({"codes": [r.exit_code for r in results],
                  "outputs": [r.output.splitlines()[-1] for r in results],
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def test_usage_errors_are_found_before_tensorflow_starts():
    run = subprocess.run([sys.executable, "-c", USAGE_ERRORS_BEFORE_TENSORFLOW],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["codes"] == [2] * 5, report
    assert not report["tensorflow"], report
    assert "one of the two" in report["outputs"][0]
    assert "at most 12" in report["outputs"][2]
    assert "a PNG file name is needed" in report["outputs"][3]


def test_a_png_out_without_a_suffix_gets_png_and_the_figure_is_written_whole(tmp_path):
    import numpy as np

    from kerasrnn.apps.common.options import _png_path
    from kerasrnn.apps.mnist.explain import explain_figure

    assert _png_path(None, None, tmp_path / "name") == tmp_path / "name.png"
    assert _png_path(None, None, tmp_path / "a.PNG") == tmp_path / "a.PNG"
    path = explain_figure(np.zeros((1, 28, 28)), ["t"], np.full((1, 28, 10), 0.1),
                          np.zeros((1, 28, 4)), tmp_path / "name.png")
    assert path == tmp_path / "name.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["name.png"]  # no partial file left
