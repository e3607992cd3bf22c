"""The package as users install it: a wheel, run from an empty folder.

The wheel is built from a clean copy of the checkout, with no environment
variables, and installed by pip into an empty virtual environment (no
packages, no pip), console script included. Its dependencies (TensorFlow,
Keras, ...) come from the test environment through a .pth file, since the
tests run offline; a folder a .pth file names does not run the .pth files
inside it, so the checkout's editable install stays out, and every module,
model, sample digit and data file comes from the wheel. The commands run in
an empty working folder.
"""

import gzip
import json
import os
import site as site_module
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
REAL_DATA = all((SHARED_DATA / name).is_file() for name in (
    "tinyshakespeare/input.txt", "mnist/t10k-images-idx3-ubyte.gz",
    "mnist/t10k-labels-idx1-ubyte.gz"))

# Runs several `kerasrnn` commands from the wheel in one process of the
# virtual environment (TensorFlow starts once); prints each one's exit code
# and output as JSON.
RUNNER = """
import json, sys
import kerasrnn
assert kerasrnn.__file__.startswith(sys.argv[1]), kerasrnn.__file__
from click.testing import CliRunner
from kerasrnn.apps.cli import main
results = {}
for name, args in json.loads(sys.argv[2]).items():
    result = CliRunner().invoke(main, args)
    results[name] = {"code": result.exit_code, "stdout": result.stdout,
                     "stderr": result.stderr, "error": repr(result.exception)}
print(json.dumps(results))
"""


def _without_pythonpath():
    """This process's environment for the wheel's processes, less
    PYTHONPATH, which could put the checkout's modules ahead of the wheel's."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _newest_versions():
    return {
        model.name: max(int(v.name) for v in model.iterdir() if v.name.isdigit())
        for model in (ROOT / "saved_models").iterdir()
        if model.is_dir()
    }


def _sample_digits():
    from PIL import Image

    samples = sorted((ROOT / "apps/mnist/samples").glob("*.png"))
    images = np.stack([np.asarray(Image.open(p)) for p in samples]).astype(np.uint8)
    labels = np.array([int(p.stem.rsplit("_", 1)[1]) for p in samples], np.uint8)
    return images, labels


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    import shutil

    out = tmp_path_factory.mktemp("wheel")
    # A clean copy: setuptools would reuse a stale build/ folder of the checkout.
    source = out / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", ".git", "__pycache__", ".venv", "runs"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out / "dist"), str(source)],
        check=True, capture_output=True, text=True,
    )
    (built,) = (out / "dist").glob("kerasrnn-*.whl")
    environment = out / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         str(built)],
        check=True, capture_output=True, text=True,
    )
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    (site / "test_environment.pth").write_text(
        "".join(f"{folder}\n" for folder in site_module.getsitepackages()))
    return built, site, python


def _write_idx(folder, images, labels):
    folder.mkdir()
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in images.shape)
    for name, body in [("t10k-images-idx3-ubyte", header + images.tobytes()),
                       ("t10k-labels-idx1-ubyte", (2049).to_bytes(4, "big")
                        + len(labels).to_bytes(4, "big") + labels.tobytes())]:
        with gzip.open(folder / f"{name}.gz", "wb") as f:
            f.write(body)


SAMPLE = ["textgen", "sample", "--prompt", "ROMEO:", "--length", "300", "--seed", "1"]


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The commands' results, run from the wheel in an empty folder."""
    tmp = tmp_path_factory.mktemp("user")
    _write_idx(tmp / "idx", *_sample_digits())
    work = tmp / "empty"
    work.mkdir()
    commands = {
        "sample": SAMPLE,
        "predict": ["mnist", "predict"],
        "evaluate": ["mnist", "evaluate", "--data-dir", str(tmp / "idx")],
        "check": ["serving", "check"],
        # No arguments: the data the wheel carries.
        "evaluate installed digits": ["mnist", "evaluate"],
        "evaluate installed text": ["textgen", "evaluate"],
    }
    _, site, python = wheel
    run = subprocess.run(
        [str(python), "-c", RUNNER, str(site), json.dumps(commands)],
        cwd=work, env=_without_pythonpath(), capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for name, result in results.items():
        assert result["code"] == 0, (name, result)
    return dict(results=results, site=site, work=work)


def test_the_wheel_holds_every_module_the_newest_models_and_the_sample_digits(wheel):
    built, _, _ = wheel
    names = set(zipfile.ZipFile(built).namelist())
    for source in [*(ROOT / "kerasrnn").rglob("*.py"), *(ROOT / "apps").rglob("*.py")]:
        relative = source.relative_to(ROOT)
        if relative.parts[0] == "apps":
            relative = Path("kerasrnn", *relative.parts)
        assert relative.as_posix() in names, f"{relative} is not in the wheel"
    for model, newest in _newest_versions().items():
        assert f"kerasrnn/pretrained/{model}/{newest}/saved_model.pb" in names, (
            f"saved_models/{model}/{newest} is the newest version but not in the wheel:"
            " update [options.package_data] in setup.cfg"
        )
        older = [n for n in names if n.startswith(f"kerasrnn/pretrained/{model}/")
                 and not n.startswith(f"kerasrnn/pretrained/{model}/{newest}/")]
        assert not older, f"older versions in the wheel: {older[:3]}"
    assert "kerasrnn/pretrained/models.config" in names
    samples = [n for n in names if n.startswith("kerasrnn/apps/mnist/samples/")]
    assert len(samples) == 10
    # The pretrained models for onnxruntime and LiteRT (docs/deploy.md).
    assert {"kerasrnn/pretrained/mnist.onnx", "kerasrnn/pretrained/mnist.tflite",
            "kerasrnn/pretrained/textgen.onnx"} <= names
    assert built.stat().st_size < 15 * 2**20
    licences = {Path(n).name: n for n in names if ".dist-info/licenses/" in n}
    assert {"LICENSE", "NOTICE"} <= set(licences), sorted(names)[-10:]
    with zipfile.ZipFile(built) as archive:
        assert "Apache License" in archive.read(licences["LICENSE"]).decode()
        assert "CC BY-SA 3.0" in archive.read(licences["NOTICE"]).decode()


def test_the_console_script_runs_from_an_empty_folder(wheel, tmp_path):
    _, _, python = wheel
    run = subprocess.run([str(python.with_name("kerasrnn")), "--help"], cwd=tmp_path,
                         env=_without_pythonpath(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert all(command in run.stdout for command in ("mnist", "textgen", "serving"))


def test_sample_prints_the_same_text_as_from_the_repository(installed, monkeypatch):
    from click.testing import CliRunner

    from kerasrnn.apps.cli import main

    sample = installed["results"]["sample"]
    monkeypatch.chdir(ROOT)
    from_repo = CliRunner().invoke(main, SAMPLE)
    assert from_repo.exit_code == 0, from_repo.output
    assert sample["stdout"] == from_repo.stdout
    assert sample["stdout"].startswith("ROMEO:") and len(sample["stdout"]) > 300
    # The README's quickstart shows the pretrained model's text for this command.
    readme = (ROOT / "README.md").read_text().split("## Quickstart", 1)[1]
    assert f"```\n{sample['stdout']}```" in readme
    # Each says which model it took: the packaged one, and the repository's own.
    newest = _newest_versions()["textgen"]
    assert sample["stderr"].splitlines() == [
        f"model: {installed['site'] / 'kerasrnn/pretrained/textgen'}/{newest}"
        " (pretrained, installed with kerasrnn)"
    ]
    assert from_repo.stderr == f"model: saved_models/textgen/{newest} (the newest export here)\n"


def test_predict_reads_the_packaged_sample_digits(installed, monkeypatch):
    from click.testing import CliRunner

    from kerasrnn.apps.cli import main

    predict = installed["results"]["predict"]
    lines = predict["stdout"].splitlines()
    assert len(lines) == 10
    right = 0
    for line in lines:
        path, prediction = line.split(": ")
        assert "/kerasrnn/apps/mnist/samples/" in path
        label = Path(path).stem.rsplit("_", 1)[1]  # test_<index>_label_<L>.png
        right += prediction.split()[0] == label
    assert right >= 9  # the pretrained model's test accuracy is 95%
    # The README shows this output, file by file (the folder shortened to …).
    readme = (ROOT / "README.md").read_text()
    shown = [line.split("/samples/")[1] for line in readme.splitlines()
             if line.startswith("…/samples/")]
    assert shown == [line.split("/samples/")[1] for line in lines]
    assert "pretrained, installed with kerasrnn" in predict["stderr"]
    # The same predictions as the repository's own files give, digit by digit.
    monkeypatch.chdir(ROOT)
    samples = sorted((ROOT / "apps/mnist/samples").glob("*.png"))
    from_repo = CliRunner().invoke(main, ["mnist", "predict", *map(str, samples)])
    assert [line.split(": ")[1] for line in from_repo.stdout.splitlines()] == [
        line.split(": ")[1] for line in lines]


def test_evaluate_and_serving_check_on_the_packaged_models(installed):
    evaluate = installed["results"]["evaluate"]["stdout"]
    assert "test digits: 10" in evaluate and "accuracy: 90.00%" in evaluate
    check = installed["results"]["check"]["stdout"]
    for model, newest in _newest_versions().items():
        assert f"{model}/{newest}: loads with the session loader (tag serve)" in check
    assert list(installed["work"].iterdir()) == []  # nothing written where the user stands


def _readme_figure(command):
    """The figure the README's results table gives for the pretrained model of `command`."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith(f"| `{command}") and "the pretrained model)" in line:
            return line.rstrip(" |").rsplit("| ", 1)[1].strip("*")
    raise AssertionError(f"no row of the README's results for the pretrained {command}")


def test_the_commands_read_the_data_the_wheel_carries(wheel, installed):
    """`mnist evaluate` and `textgen evaluate` with no arguments, from an
    empty folder, offline: the README's results for the pretrained models,
    from the data installed with the wheel."""
    results = installed["results"]
    digits, text = results["evaluate installed digits"], results["evaluate installed text"]
    # Each says which data it read, in one line, before the model's line.
    assert digits["stderr"].splitlines()[0] == "data: MNIST's test split, installed with kerasrnn"
    assert text["stderr"].splitlines()[0] == (
        "text: the held-out 10% of tiny Shakespeare, installed with kerasrnn")
    # The wheel holds the repository's data files unchanged.
    built, _, _ = wheel
    data = ROOT / "apps" / "data"
    with zipfile.ZipFile(built) as archive:
        for path in [data / "tiny_shakespeare_held_out.txt", *sorted(data.glob("mnist/*.gz"))]:
            name = f"kerasrnn/apps/data/{path.relative_to(data).as_posix()}"
            assert archive.read(name) == path.read_bytes(), name
    accuracy = _readme_figure("kerasrnn mnist train")
    loss = _readme_figure("kerasrnn textgen train")
    assert "test digits: 10,000" in digits["stdout"]
    assert f"accuracy: {accuracy}\n" in digits["stdout"], (accuracy, digits["stdout"])
    assert f"loss: {loss} nats/char" in text["stdout"], (loss, text["stdout"])
    # The README's install section shows the same two lines.
    readme = (ROOT / "README.md").read_text()
    assert f"# accuracy: {accuracy}\n" in readme and f"# loss: {loss} nats/char\n" in readme


@pytest.mark.skipif(not REAL_DATA, reason="tiny Shakespeare and MNIST are not on this machine")
def test_the_installed_data_is_the_held_out_part_of_the_distributed_files():
    """apps/data/ holds MNIST's test split byte for byte, and the part of
    tiny Shakespeare that training holds out, as `textgen train` cuts it."""
    from kerasrnn.apps.textgen.data import VALIDATION_FRACTION

    data = ROOT / "apps" / "data"
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert (data / "mnist" / name).read_bytes() == (SHARED_DATA / "mnist" / name).read_bytes()
    source = (SHARED_DATA / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    held_out = (data / "tiny_shakespeare_held_out.txt").read_text(encoding="utf-8")
    assert held_out == source[int(len(source) * (1 - VALIDATION_FRACTION)):]


def test_setup_cfg_lists_every_package():
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {"kerasrnn." + ".".join(p.parent.relative_to(ROOT / "kerasrnn").parts)
             for p in (ROOT / "kerasrnn").rglob("__init__.py")} | {
        ".".join(("kerasrnn", *p.parent.relative_to(ROOT).parts))
        for p in (ROOT / "apps").rglob("__init__.py")}
    found = {name.rstrip(".") for name in found}
    assert found <= listed, f"packages missing from setup.cfg: {sorted(found - listed)}"
