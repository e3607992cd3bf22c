"""The benchmarks are commands too: every argument checked before any work,
a bad one a one-line usage error (exit 2), no scratch folder left."""

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script, *args):
    return subprocess.run([sys.executable, str(BENCHMARKS / script), *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def fake_nanogpt(tmp_path):
    """The files that make a folder look like a nanoGPT checkout."""
    for name in ("train.py", "model.py", "data/shakespeare_char/prepare.py"):
        (tmp_path / "nanoGPT" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "nanoGPT" / name).touch()
    text = tmp_path / "input.txt"
    text.write_text("to be or not to be\n" * 100)
    return tmp_path / "nanoGPT", text


@pytest.mark.parametrize("args,message", [
    (["--minutes", "0"], "--minutes: each value must be a positive number"),
    (["--minutes", "nan"], "--minutes: each value must be a positive number"),
    (["--minutes", "-5"], "--minutes: each value must be a positive number"),
    (["--minutes", "5", "--runs", "0"], "--runs and --windows must be at least 1"),
    (["--windows", "0"], "--runs and --windows must be at least 1"),
    (["--kerasrnn-args", '--units "7'], "--kerasrnn-args: No closing quotation"),
    (["--kerasrnn-args", "--bogus 3"], "--kerasrnn-args: No such option '--bogus'"),
    (["--nanogpt-configs", "", "n_layer 6"], "'--n_layer' is not name=value"),
    (["--nanogpt-configs", "batch_size=big"], "'--batch_size=big' needs an integer"),
    (["--nanogpt-configs", "lr='2"], "--nanogpt-configs \"lr='2\": No closing quotation"),
])
def test_versus_nanogpt_checks_its_arguments_first(fake_nanogpt, args, message):
    nanogpt, text = fake_nanogpt
    before = set(Path(tempfile.gettempdir()).glob("versus-nanogpt-*"))
    run = _run("versus_nanogpt.py", "--nanogpt", str(nanogpt), "--text", str(text), *args)
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1, run.stderr
    assert message in run.stderr
    assert set(Path(tempfile.gettempdir()).glob("versus-nanogpt-*")) == before


def test_versus_nanogpt_gives_nanogpt_the_kept_folder_whole(fake_nanogpt, tmp_path):
    """nanoGPT's programs run in its folder: a relative --keep reaches them
    as the folder it names, not one under theirs."""
    nanogpt, text = fake_nanogpt
    (nanogpt / "data/shakespeare_char/prepare.py").write_text(
        "import numpy as np\nnp.zeros(1000, np.uint16).tofile('val.bin')\n")
    (nanogpt / "train.py").write_text(  # the timing run, the first training, fails
        "import sys\nsys.exit(' '.join(a for a in sys.argv if a.startswith('--out_dir')))\n")
    run = subprocess.run([sys.executable, str(BENCHMARKS / "versus_nanogpt.py"), "--nanogpt",
                          str(nanogpt), "--text", str(text), "--minutes", "1", "--keep", "kept"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    [out_dir] = [Path(line.removeprefix("--out_dir=")) for line in run.stderr.splitlines()
                 if line.startswith("--out_dir=")]  # what the fake printed
    assert out_dir.is_absolute() and out_dir.is_relative_to(tmp_path.resolve() / "kept")


def test_versus_nanogpt_needs_a_nanogpt_checkout(tmp_path):
    (tmp_path / "input.txt").write_text("text")
    run = _run("versus_nanogpt.py", "--nanogpt", str(tmp_path), "--text",
               str(tmp_path / "input.txt"))
    assert run.returncode == 2 and run.stderr.splitlines() == [
        f"versus_nanogpt.py: error: --nanogpt {tmp_path}: no train.py (not a nanoGPT checkout)"]


@pytest.mark.parametrize("args,message", [
    (["--contenders", "nope"], "--contenders: unknown nope"),
    (["--backends", "tensorflow", "--lengths", "0"], "--lengths and --rounds must be at least 1"),
    (["--backends", "tensorflow", "--rounds", "0"], "--lengths and --rounds must be at least 1"),
    (["--backends", "nope"], "--backends: unknown nope"),
])
def test_minimal_checks_its_arguments_first(args, message):
    run = _run("minimal.py", *args)
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1, run.stderr
    assert message in run.stderr


def test_minimal_names_a_backend_that_is_not_installed():
    import importlib.util

    missing = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is None]
    if not missing:
        pytest.skip("JAX and PyTorch are both installed: every backend can run")
    run = _run("minimal.py")  # the default list holds them
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1, run.stderr
    assert f"--backends: {', '.join(missing)} not installed" in run.stderr


# cells.py's main() given each list of arguments in turn, in one process:
# the script imports Keras as it starts, which costs seconds a process.
CELLS_MAIN = """
import sys
sys.path.insert(0, {benchmarks!r})
sys.argv[0] = "cells.py"
import cells
for args in {cases!r}:
    sys.argv[1:] = args
    try:
        cells.main()
    except SystemExit as exit:
        print(exit.code, flush=True)
"""


def test_cells_checks_its_arguments_first():
    """Each bad argument is a one-line usage error (exit 2) before any work."""
    cases = {("--cells", "nope"): "unknown cells: nope",
             ("--contenders", "nope"): "unknown contenders: nope",
             ("--epochs", "0"): "--epochs must be at least 1"}
    run = subprocess.run([sys.executable, "-c", CELLS_MAIN.format(
        benchmarks=str(BENCHMARKS), cases=[list(args) for args in cases])],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.split() == ["2"] * len(cases), run.stderr
    errors = [line for line in run.stderr.splitlines() if "Traceback" in line
              or line.startswith("cells.py: ")]
    assert [e.split(" (known:")[0] for e in errors] == [
        f"cells.py: error: {message}" for message in cases.values()], run.stderr


def test_plot_versus_nanogpt_reads_only_the_benchmark_s_tables(tmp_path):
    missing = _run("plot_versus_nanogpt.py", str(tmp_path / "none.log"), "--out",
                   str(tmp_path / "c.png"))
    assert missing.returncode == 2 and missing.stderr.endswith("none.log: no such file\n")
    other = tmp_path / "other.log"
    other.write_text("no table here\n")
    run = _run("plot_versus_nanogpt.py", str(other), "--out", str(tmp_path / "c.png"))
    assert run.returncode == 2 and "no run of versus_nanogpt.py" in run.stderr
    assert not (tmp_path / "c.png").exists()


# One run of versus_nanogpt.py at 1 minute, its rows as the benchmark prints them.
ONE_MINUTE_RUN = (
    "| 1 | 1 | nanoGPT (2314 iters at 26 ms) | 1.1 | 1,777,152 | 1.8582 | 1.8593 | 1.8 |"
    " 0.86-1.73 |\n"
    "| 1 | 1 | kerasrnn (3 epochs) | 1.0 | 2,921,600 | 1.6915 | 1.6929 | - | 1.71-1.53 |\n")


def _plotted(tmp_path, *files):
    """plot_versus_nanogpt.py's printed points for `files` in `tmp_path`; it
    must succeed and write its PNG."""
    run = _run("plot_versus_nanogpt.py", *(str(tmp_path / name) for name in files),
               "--out", str(tmp_path / "curve.png"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
    return run.stdout.splitlines()


def test_plot_versus_nanogpt_plots_the_medians_of_every_log(tmp_path):
    """Rows as versus_nanogpt.py prints them: the recipe's, another
    configuration's, kerasrnn's; the medians over the logs."""
    (tmp_path / "a.log").write_text(
        ONE_MINUTE_RUN +
        "| 1 | 2 | nanoGPT (2133 iters at 28 ms) | 1.1 | 1,638,144 | 1.8763 | 1.8786 | 1.8 |"
        " 1.45-1.98 |\n"
        "| 1 | 2 | kerasrnn (3 epochs) | 1.0 | 2,873,600 | 1.6939 | 1.6955 | - | 2.12-2.32 |\n"
        "| 1 | 3 | nanoGPT (1938 iters at 31 ms) | 0.9 | 1,488,384 | 1.9026 | 1.9046 | 1.8 |"
        " 2.17-2.18 |\n"
        "| 1 | 3 | kerasrnn (3 epochs) | 1.0 | 2,937,600 | 1.6914 | 1.6933 | - | 2.21-1.67 |\n")
    (tmp_path / "b.log").write_text(
        "| 5 | 1 | nanoGPT (8922 iters at 34 ms) | 4.9 | 6,852,096 | 1.5889 | 1.5884 | 1.5 |"
        " 1.75-2.00 |\n"
        "| 5 | 1 | nanoGPT (--batch_size=32, 4129 iters at 73 ms) | 4.9 | 8,456,192 | 1.5841 |"
        " 1.5832 | 1.5 | 2.11-2.00 |\n"
        "| 5 | 1 | kerasrnn (12 epochs) | 5.0 | 11,852,800 | 1.5779 | 1.5802 | - | 2.00-1.93 |\n")
    assert _plotted(tmp_path, "a.log", "b.log") == [
        "1 min: kerasrnn 1.6915 (3 runs) nanoGPT 1.8763 (3 runs)",
        "5 min: kerasrnn 1.5779 (1 runs) nanoGPT 1.5889 (1 runs)"
        " best other nanoGPT (--batch_size=32) 1.5841"]


def test_plot_versus_nanogpt_takes_medians_from_a_table_beside_the_logs(tmp_path):
    """docs/versus_nanogpt.csv's rows are medians already taken: they are
    plotted as they are, beside a log's; one budget and program in both is
    an error, as is a table without the columns."""
    (tmp_path / "a.log").write_text(ONE_MINUTE_RUN)
    (tmp_path / "m.csv").write_text(
        "minutes,who,runs,random,windows,source\n"
        "5,kerasrnn,2,1.5306,1.5344,here\n"
        "5,nanoGPT,2,1.5922,1.5917,here\n"
        '5,nanoGPT --dropout=0.1,2,1.5586,1.5579,"here, too"\n')
    assert _plotted(tmp_path, "a.log", "m.csv") == [
        "1 min: kerasrnn 1.6915 (1 runs) nanoGPT 1.8582 (1 runs)",
        "5 min: kerasrnn 1.5306 (2 runs) nanoGPT 1.5922 (2 runs)"
        " best other nanoGPT (--dropout=0.1) 1.5586"]

    (tmp_path / "twice.csv").write_text("minutes,who,runs,random,windows,source\n"
                                        "1,kerasrnn,1,1.6,1.6,again\n")
    twice = _run("plot_versus_nanogpt.py", str(tmp_path / "a.log"), str(tmp_path / "twice.csv"),
                 "--out", str(tmp_path / "c2.png"))
    assert twice.returncode == 2 and "both in a log and in a table" in twice.stderr
    (tmp_path / "bad.csv").write_text("minutes,loss\n1,1.6\n")
    bad = _run("plot_versus_nanogpt.py", str(tmp_path / "bad.csv"), "--out",
               str(tmp_path / "c3.png"))
    assert bad.returncode == 2 and "bad.csv: not a table of medians" in bad.stderr
    assert not (tmp_path / "c2.png").exists() and not (tmp_path / "c3.png").exists()
