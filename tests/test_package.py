"""The package's surface: imports, version, the `kerasrnn` command."""

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import kerasrnn
from kerasrnn.apps.cli import main


def test_version_is_the_distribution_version():
    assert kerasrnn.__version__ == importlib.metadata.version("kerasrnn")


def test_apps_are_installed_as_kerasrnn_apps():
    import kerasrnn.apps

    assert kerasrnn.apps.__file__.replace("\\", "/").endswith("apps/__init__.py")


def test_export_onnx_without_tf2onnx_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "kerasrnn\[deploy\]"'):
        kerasrnn.export_onnx(None, "unused.onnx")


def test_export_litert_without_ai_edge_litert_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "kerasrnn\[deploy\]"'):
        kerasrnn.export_litert(None, tmp_path / "unused.tflite")
    assert not list(tmp_path.iterdir())


def test_cli_help_and_version():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output and "--version" in result.output
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"kerasrnn, version {kerasrnn.__version__}"


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("kerasrnn")
    for command in ([str(script)], [sys.executable, "-m", "kerasrnn"],
                    [sys.executable, "-m", "kerasrnn.apps"]):
        run = subprocess.run([*command, "--version"], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == f"kerasrnn, version {kerasrnn.__version__}"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["no-such-app"])
    assert result.exit_code == 2
    assert "No such command" in result.output


# A program's first use of Keras, then: which of kerasrnn's classes Keras has
# registered (read from Keras's registry, which imports nothing of kerasrnn).
FIRST_IMPORT = """
{first}
import keras, kerasrnn
registered = keras.saving.get_custom_objects()
print("missing:", [name for name in kerasrnn._EXPORTS if "kerasrnn>" + name not in registered])
"""


@pytest.mark.parametrize("first", [
    "from kerasrnn import LSTM",
    *(f"import {module}" for module in (*kerasrnn._LIBRARY, "kerasrnn.kernels")),
])
def test_every_class_is_registered_whatever_a_program_imports_first(first):
    """Each of the library's modules as the first import of Keras: a module
    the families import from (recurrent.py; lstm.py for peephole.py) is
    half loaded when Keras's import hook runs, and must be neither a circular
    import nor a reason to leave a family unregistered."""
    # Keras's NumPy backend, the quickest to start, needs SciPy and JAX;
    # without them, TensorFlow's.
    import importlib.util

    numpy_runs = all(importlib.util.find_spec(name) for name in ("scipy", "jax"))
    run = subprocess.run([sys.executable, "-c", FIRST_IMPORT.format(first=first)],
                         capture_output=True, text=True,
                         env={**os.environ, "KERAS_BACKEND": "numpy" if numpy_runs
                              else "tensorflow"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[-1] == "missing: []"


# The library on another backend, used, then: which tensorflow modules are loaded.
LIBRARY_WITHOUT_TENSORFLOW = """
import json, sys
import numpy as np
import kerasrnn
from kerasrnn import GRU, LSTM, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell
import keras
x = np.zeros((2, 3, 4), "float32")
shapes = [tuple(layer(x).shape) for layer in (GRU(5), LSTM(5), SimpleRNN(5))]
shapes += [tuple(keras.layers.RNN(cell(5))(x).shape) for cell in (GRUCell, LSTMCell, SimpleRNNCell)]
print(json.dumps({"backend": keras.backend.backend(), "shapes": shapes,
                  "tensorflow": sorted(m for m in sys.modules if m.startswith("tensorflow"))}))
"""


def test_the_library_imports_no_tensorflow_on_another_backend():
    import importlib.util
    import json

    backend = next((b for b in ("jax", "torch") if importlib.util.find_spec(b)), None)
    if backend is None:
        pytest.skip("JAX and PyTorch are not installed, so no backend runs without TensorFlow")
    run = subprocess.run([sys.executable, "-c", LIBRARY_WITHOUT_TENSORFLOW],
                         capture_output=True, text=True,
                         env={**os.environ, "KERAS_BACKEND": backend})
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend and report["tensorflow"] == []
    assert report["shapes"] == [[2, 5]] * 6


def _imported_names(path):
    """Every module a file names: in import statements, and in any string
    (`importlib.import_module("...")`, a lazy table of modules, a docstring)."""
    import ast
    import re

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names |= set(re.findall(r"kerasrnn(?:\.\w+)+", node.value))
    return names


def test_imports_run_one_way_apps_toolkit_library():
    """The library never names the apps (`python -m kerasrnn`'s __main__.py,
    the command's entry point, is not the library); the toolkit never an app."""
    root = Path(__file__).resolve().parents[1]
    for path in (root / "kerasrnn").rglob("*.py"):
        if path == root / "kerasrnn" / "__main__.py":
            continue
        bad = [n for n in _imported_names(path) if n.startswith("kerasrnn.apps")]
        assert not bad, (path, bad)
    for path in (root / "apps" / "common").rglob("*.py"):
        bad = [n for n in _imported_names(path) if n.startswith(("kerasrnn.apps.mnist",
                                                                  "kerasrnn.apps.textgen"))]
        assert not bad, (path, bad)


def test_the_one_way_check_sees_imports_by_string(tmp_path):
    path = tmp_path / "lazy.py"
    path.write_text('import importlib\nimportlib.import_module("kerasrnn.apps.cli")\n')
    assert "kerasrnn.apps.cli" in _imported_names(path)


def test_the_library_holds_no_command_line_and_no_tensorflow():
    """kerasrnn/ (but serving/ and portable.py, TensorFlow's by nature: TF
    Serving's SavedModels, and the graphs Keras exports to LiteRT and ONNX
    from TensorFlow) imports Keras alone: no click, no TensorFlow; PyTorch
    only in its own kernel's module."""
    root = Path(__file__).resolve().parents[1] / "kerasrnn"
    for path in root.rglob("*.py"):
        if "serving" in path.relative_to(root).parts or path == root / "portable.py":
            continue
        tops = {name.split(".")[0] for name in _imported_names(path)}
        assert not tops & {"click", "tensorflow"}, path
        if path != root / "kernels" / "torch.py":
            assert "torch" not in tops, path


@pytest.mark.parametrize("backend", ["torch", "junk"])
def test_the_commands_say_they_need_tensorflow_before_writing_anything(backend, tmp_path):
    """With another backend in KERAS_BACKEND (installed or not), a command
    that needs TensorFlow stops in one line before it writes or imports
    anything; the commands given an ONNX or LiteRT file need no backend."""
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be\n" * 50)
    env = {**os.environ, "KERAS_BACKEND": backend}
    for args in (["textgen", "train", "--text", str(text), "--workdir", str(tmp_path / "w"),
                  "--out", str(tmp_path / "o")],
                 ["mnist", "export", "--workdir", str(tmp_path), "--out", str(tmp_path / "o"),
                  "--format", "onnx"]):
        run = subprocess.run([sys.executable, "-m", "kerasrnn", *args], env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 1, run.stderr
        assert run.stderr.splitlines() == [
            f"Error: KERAS_BACKEND={backend}: the kerasrnn commands run on Keras's TensorFlow"
            " backend; unset KERAS_BACKEND or set it to tensorflow (the library's layers run"
            " on any backend)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.txt"]
