"""The mnist app: data sources and their errors, training, export, plot, predict."""

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kerasrnn.apps.cli import main
from kerasrnn.apps.common import datasets
from kerasrnn.apps.mnist import data
from kerasrnn.errors import UserError
from kerasrnn.serving.export import versions

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_shared_mnist = pytest.mark.skipif(
    not SHARED_MNIST.is_dir(), reason=f"real MNIST digits not found at {SHARED_MNIST}"
)


def _write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _made_up_digits(count, seed):
    """Learnable stand-ins for digits: label L is a noisy vertical stroke at column 4 + 2L."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    images = rng.integers(0, 60, (count, 28, 28))
    for image, label in zip(images, labels, strict=True):
        top = rng.integers(2, 8)
        image[top:top + 18, 4 + 2 * label:6 + 2 * label] = 255
    return images, labels


def _small_mnist(folder, train=600, test=200):
    """A folder of IDX files holding the first real digits of each split.

    Without ../shared/data/mnist, made-up digits stand in, so that training,
    export and distribution are still tested.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("test", test)):
        if SHARED_MNIST.is_dir():
            images, labels = data.load_idx(SHARED_MNIST, split)
        else:
            images, labels = _made_up_digits(count, seed=0 if split == "train" else 1)
        images_name, labels_name = data.IDX_FILES[split]
        _write_idx(folder / f"{images_name}.gz", images[:count], data.IMAGES_MAGIC)
        _write_idx(folder / labels_name, labels[:count], data.LABELS_MAGIC)  # not gzipped
    return folder


def _invoke(*args):
    return CliRunner().invoke(main, ["mnist", *map(str, args)])


@needs_shared_mnist
def test_idx_files_of_the_real_digits():
    images, labels = data.load_idx(SHARED_MNIST, "train")
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    test_images, test_labels = data.load_idx(SHARED_MNIST, "test")
    assert test_images.shape == (10000, 28, 28) and len(test_labels) == 10000


@needs_shared_mnist
def test_validation_split_comes_from_training_data_only():
    images, labels = data.load_idx(SHARED_MNIST, "train")
    (tx, ty), (vx, vy) = data.validation_split(images, labels, 0.1, seed=0)
    assert len(vx) == 500 and len(tx) == 4500
    # No digit is in both parts, and together they are the training split.
    both = np.concatenate([tx, vx]).reshape(5000, -1)
    assert len(np.unique(both, axis=0)) == len(np.unique(images.reshape(5000, -1), axis=0))


@pytest.mark.parametrize(
    "damage,message",
    [
        ("magic", "wrong magic number 2049 (expected 2051)"),
        ("truncate", "truncated or corrupt"),
        ("count", "1 images but"),
        ("missing", "no train-images-idx3-ubyte.gz or train-images-idx3-ubyte"),
        ("garbage", "cannot read it"),
    ],
)
def test_bad_idx_files_are_one_line_errors(tmp_path, damage, message):
    images = np.zeros((2, 28, 28), np.uint8)
    labels = np.array([1, 2], np.uint8)
    train_images = tmp_path / "train-images-idx3-ubyte"
    _write_idx(train_images, images, data.IMAGES_MAGIC)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, data.LABELS_MAGIC)
    if damage == "magic":
        _write_idx(train_images, images, data.LABELS_MAGIC)
    elif damage == "truncate":
        train_images.write_bytes(train_images.read_bytes()[:-10])
    elif damage == "count":
        _write_idx(train_images, images[:1], data.IMAGES_MAGIC)
    elif damage == "missing":
        train_images.unlink()
    elif damage == "garbage":
        train_images.unlink()
        (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.load_idx(tmp_path, "train")
    # Through the command: one line naming the file, exit 1, no traceback.
    result = _invoke("train", "--data-dir", tmp_path, "--workdir", tmp_path / "w")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert "train-images-idx3-ubyte" in result.output


def test_missing_data_dir(tmp_path):
    result = _invoke("evaluate", "--data-dir", tmp_path / "nowhere", "--model", tmp_path)
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'nowhere'}: no such folder\n"


def test_tfds_source_with_mock_data(monkeypatch):
    import tensorflow_datasets as tfds

    # mock_data stands in for the download, so the network counts as reachable.
    monkeypatch.setattr(datasets, "network_reachable", lambda *a, **k: True)
    with tfds.testing.mock_data(num_examples=40):
        images, labels = data.load("train", dataset="fashion_mnist")
    assert images.shape == (40, 28, 28) and labels.shape == (40,)
    assert labels.max() <= 9


def test_no_network_and_no_data_dir_says_what_to_pass(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr(datasets, "network_reachable", lambda *a, **k: False)
    with caplog.at_level("INFO"):
        result = _invoke("train", "--workdir", tmp_path / "runs" / "w", "--out", tmp_path / "sm")
    assert result.exit_code == 1
    assert "network is unreachable" in result.output
    assert "pass --data-dir DIR with the four MNIST IDX files" in result.output
    assert "shared" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    # No absl warning before it, and no folder of the failed run left behind.
    assert [r.getMessage() for r in caplog.records if r.levelname != "INFO"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # MNIST's test split is installed; Fashion-MNIST's is not, and evaluate
    # asks only for the two files it reads.
    result = _invoke("evaluate", "--dataset", "fashion_mnist")
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1
    assert "--data-dir DIR with MNIST's two test files (t10k-*)" in result.output
    assert [r.getMessage() for r in caplog.records if r.levelname != "INFO"] == []


@pytest.mark.parametrize(
    "args", [["--epochs", "0"], ["--batch-size", "-3"], ["--cell", "lstmm"], ["--units", "0"]]
)
def test_bad_training_options_are_usage_errors(args):
    result = _invoke("train", *args)
    assert result.exit_code == 2, result.output


TINY = ["--cell", "gru", "--units", "16", "--epochs", "3", "--batch-size", "64", "--lr", "0.01",
        "--seed", "3"]
PLAIN = ["--no-augment", "--dropout", "0"]  # the tiny model learns fast without them


def _train(tmp_path, name, *extra, data_dir):
    workdir, out = tmp_path / name, tmp_path / "saved_models"
    args = ["train", "--data-dir", data_dir, *TINY, "--workdir", workdir, "--out", out, *extra]
    return _invoke(*args), workdir, out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, traces_of_train_step):
    """One small GRU trained on 600 real (or made-up) digits, shared by the tests below."""
    tmp_path = tmp_path_factory.mktemp("mnist")
    data_dir = _small_mnist(tmp_path / "data")
    with traces_of_train_step() as traced:
        result, workdir, out = _train(tmp_path, "run", *PLAIN, "--logdir", tmp_path / "tb",
                                      data_dir=data_dir)
    assert result.exit_code == 0, result.output
    return dict(tmp=tmp_path, data_dir=data_dir, workdir=workdir, out=out, output=result.output,
                traces=len(traced))


def test_training_reports_exports_and_keeps_the_best_epoch(trained):
    output, workdir = trained["output"], trained["workdir"]
    assert "data: 540 training, 60 validation, 200 test digits" in output
    assert "Epoch 3/3" in output and "test accuracy:" in output
    results = json.loads((workdir / "results.json").read_text())
    history = (workdir / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    val = [float(r.split(",")[header.index("val_accuracy")]) for r in history[1:]]
    assert results["best_val_accuracy"] == pytest.approx(max(val))
    assert results["test_accuracy"] > 0.3  # 3 epochs on 540 digits: well above chance
    assert Path(results["saved_model"]) == trained["out"] / "mnist" / "1"
    assert (trained["out"] / "models.config").is_file()
    assert not (workdir / "backup").exists()  # a finished run leaves no backup
    assert list((trained["tmp"] / "tb").rglob("events.out.tfevents.*"))  # TensorBoard logs
    # Traced once: the optimizer's variables and the accuracy metric exist
    # before the first step.
    assert trained["traces"] == 1


def test_saved_model_runs_in_saved_model_cli_like_tf_serving(trained, tmp_path):
    """`saved_model_cli run` (the session loader, tag serve) matches the .keras model."""
    import keras

    import kerasrnn  # noqa: F401  (registers the cells for the .keras file)

    images, _ = data.load_idx(trained["data_dir"], "test")
    x = data.to_float(images[:20])
    np.save(tmp_path / "x.npy", x)
    saved_model = trained["out"] / "mnist" / "1"
    cli = Path(sys.executable).with_name("saved_model_cli")
    run = subprocess.run(
        [str(cli), "run", "--dir", str(saved_model), "--tag_set", "serve",
         "--signature_def", "serving_default", "--inputs", f"images={tmp_path / 'x.npy'}",
         "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    classes = np.load(tmp_path / "out" / "classes.npy")
    probabilities = np.load(tmp_path / "out" / "probabilities.npy")
    assert classes.dtype == np.int64 and classes.shape == (20,)
    assert probabilities.dtype == np.float32 and probabilities.shape == (20, 10)
    model = keras.saving.load_model(trained["workdir"] / "model.keras")
    expected = model.predict(x, verbose=0)
    np.testing.assert_array_equal(classes, expected.argmax(-1))
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    # Each weight is stored once (Keras issue #23553 stores them twice).
    import tensorflow as tf

    stored = tf.train.list_variables(str(saved_model / "variables" / "variables"))
    values = [int(np.prod(shape)) for name, shape in stored if "VARIABLE_VALUE" in name]
    assert sum(values) == model.count_params()


def test_resume_after_a_kill_ends_like_an_uninterrupted_run(trained, tmp_path):
    """Also the same seed's same run: the killed run's first epoch, trained in
    a process of its own, is the uninterrupted run's (history.csv)."""
    # With augmentation and dropout on: their random state must resume too.
    random_on = ["--augment", "--dropout", "0.2"]
    reference, reference_dir, _ = _train(tmp_path, "reference", *random_on,
                                         data_dir=trained["data_dir"])
    assert reference.exit_code == 0, reference.output
    workdir = tmp_path / "killed"
    args = ["mnist", "train", "--data-dir", str(trained["data_dir"]), *TINY, *random_on,
            "--workdir", str(workdir), "--out", str(tmp_path / "sm")]
    child = subprocess.Popen([sys.executable, "-m", "kerasrnn.apps", *args],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    history = workdir / "history.csv"
    deadline = time.monotonic() + 240
    # Kill it as soon as its first epoch is done: in the middle of the second.
    while time.monotonic() < deadline and child.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 2:
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert child.wait(60) == -signal.SIGKILL, "the run ended before it could be killed"
    assert (workdir / "backup").is_dir() and versions(tmp_path / "sm" / "mnist") == []

    result = CliRunner().invoke(main, [*args, "--resume"])
    assert result.exit_code == 0, result.output
    assert "Epoch 1/3" not in result.output  # the finished epoch is not run again
    resumed = json.loads((workdir / "results.json").read_text())
    uninterrupted = json.loads((reference_dir / "results.json").read_text())
    assert resumed["test_accuracy"] == uninterrupted["test_accuracy"]
    assert resumed["best_val_accuracy"] == uninterrupted["best_val_accuracy"]
    assert (workdir / "history.csv").read_text() == (reference_dir / "history.csv").read_text()


def test_resume_with_other_options_or_nothing_to_resume(trained, tmp_path):
    result, _, _ = _train(tmp_path, "fresh", "--resume", data_dir=trained["data_dir"])
    assert result.exit_code == 1 and "no interrupted run to resume" in result.output
    workdir = tmp_path / "changed"
    (workdir / "backup").mkdir(parents=True)
    (workdir / "run.json").write_text(json.dumps({"units": 99}))
    result, _, _ = _train(tmp_path, "changed", "--resume", data_dir=trained["data_dir"])
    assert result.exit_code == 1 and "units was 99, now 16" in result.output


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_nan_loss_stops_cleanly_and_a_failed_restart_keeps_the_old_run(trained, tmp_path):
    workdir = tmp_path / "nan"
    shutil.copytree(trained["workdir"], workdir)  # a finished, exported run
    before = _files(workdir)
    result, _, out = _train(tmp_path, "nan", *PLAIN, "--lr", "1e38", "--cell", "rnn",
                            "--restart", data_dir=trained["data_dir"])
    assert result.exit_code == 1, result.output
    assert "loss became NaN" in result.output and versions(out / "mnist") == []
    assert _files(workdir) == before  # byte for byte, nothing added


def test_export_finds_the_model_a_killed_restart_parked(trained, tmp_path):
    workdir = tmp_path / "parked"
    shutil.copytree(trained["workdir"], workdir)
    before = _files(workdir)
    # What a restart killed in its first epoch leaves: the old run set aside.
    (workdir / "discarded").mkdir()
    for name in ("run.json", "history.csv", "model.keras", "results.json", "best.weights.h5"):
        os.replace(workdir / name, workdir / "discarded" / name)
    (workdir / "run.json").write_text('{"units": 99}')  # the restart's own
    result = _invoke("export", "--workdir", workdir, "--out", tmp_path / "sm")
    assert result.exit_code == 0, result.output
    assert versions(tmp_path / "sm" / "mnist") == [1]
    after = _files(workdir)
    assert after.keys() == before.keys() and not (workdir / "discarded").exists()
    assert {k: v for k, v in after.items() if k.name != "results.json"} == {
        k: v for k, v in before.items() if k.name != "results.json"}


def test_evaluate_on_a_saved_model_and_a_keras_file(trained):
    outputs = []
    for model in (trained["out"] / "mnist", trained["workdir"] / "model.keras"):
        result = _invoke("evaluate", "--model", model, "--data-dir", trained["data_dir"])
        assert result.exit_code == 0, result.output
        assert "test digits: 200" in result.output and "confusion matrix" in result.output
        # Which data and which model, on stderr.
        data_line, model_line = result.stderr.splitlines()[:2]
        assert data_line == f"data: {trained['data_dir']} (test split)"
        assert model_line.startswith(f"model: {model}")
        assert "model:" not in result.stdout  # named once, on stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    accuracy = json.loads((trained["workdir"] / "results.json").read_text())["test_accuracy"]
    assert f"accuracy: {accuracy:.2%}" in outputs[0]


def test_the_test_split_a_wheel_installs_is_read_when_no_data_dir_is_given(trained, tmp_path,
                                                                           monkeypatch):
    """kerasrnn installs MNIST's two test files (apps/data/): evaluate reads
    them without --data-dir, as --data-dir would, and only for --dataset
    mnist."""
    import gzip
    import shutil

    from kerasrnn.apps.common import bundled

    monkeypatch.setattr(bundled, "FOLDER", tmp_path)
    (tmp_path / "mnist").mkdir()
    images_name, labels_name = data.IDX_FILES["test"]
    shutil.copyfile(trained["data_dir"] / f"{images_name}.gz",
                    tmp_path / "mnist" / f"{images_name}.gz")
    with gzip.open(tmp_path / "mnist" / f"{labels_name}.gz", "wb") as f:
        f.write((trained["data_dir"] / labels_name).read_bytes())
    model = trained["out"] / "mnist" / "1"
    installed = _invoke("evaluate", "--model", model)
    given = _invoke("evaluate", "--model", model, "--data-dir", trained["data_dir"])
    assert installed.exit_code == 0 and given.exit_code == 0, (installed.output, given.output)
    assert installed.stderr.splitlines()[0] == "data: MNIST's test split, installed with kerasrnn"
    assert installed.stdout == given.stdout and "test digits: 200" in installed.stdout
    # Fashion-MNIST is not installed: tensorflow-datasets, here offline.
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr(datasets, "network_reachable", lambda *a, **k: False)
    fashion = _invoke("evaluate", "--model", model, "--dataset", "fashion_mnist")
    assert fashion.exit_code == 1 and "fashion_mnist is not downloaded yet" in fashion.output


def test_plot_writes_the_grid(trained, tmp_path):
    png = tmp_path / "grid.png"
    result = _invoke("plot", "--model", trained["out"] / "mnist" / "1", "--data-dir",
                     trained["data_dir"], "--rows", "2", "--cols", "3", "--out", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(png).size == (600, 440)  # 3 x 2 panels of 2.0 x 2.2 inches at 100 dpi
    assert "wrote" in result.output and "6 digits" in result.output


def test_predict_converts_images_and_rejects_non_images(trained, tmp_path):
    from PIL import Image

    images, labels = data.load_idx(trained["data_dir"], "test")
    digit = tmp_path / "digit.png"
    Image.fromarray(images[0]).save(digit)
    # The same digit, as a large colour picture with a white background.
    big = Image.fromarray(255 - images[0]).resize((140, 140)).convert("RGB")
    big.save(tmp_path / "big.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    model = trained["workdir"] / "model.keras"

    result = CliRunner().invoke(main, ["mnist", "predict", "--model", str(model),
                                       str(digit), str(tmp_path / "big.jpg")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    import keras

    expected = keras.saving.load_model(model).predict(data.to_float(images[:1]), verbose=0)
    assert f"digit.png: {expected.argmax()} (probability {expected.max():.3f})" in result.output
    assert any("converted RGB to grayscale" in line for line in lines)
    assert any("resized 140x140 to 28x28" in line for line in lines)
    assert any("inverted (light background)" in line for line in lines)

    bad = _invoke("predict", "--model", model, tmp_path / "notes.txt")
    assert bad.exit_code == 1 and "notes.txt: cannot read it as an image" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


# The CPU is split into two logical devices before TensorFlow starts, so
# MirroredStrategy finds two replicas, as it would two GPUs.
TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kerasrnn.apps.cli import main
main(sys.argv[1:])
"""


def test_mirrored_over_two_devices_matches_one_device(trained, tmp_path):
    out = tmp_path / "saved_models"
    args = ["mnist", "train", "--strategy", "mirrored", "--data-dir", str(trained["data_dir"]),
            *TINY, *PLAIN, "--workdir", str(tmp_path / "mirrored"), "--out", str(out)]
    run = subprocess.run([sys.executable, "-c", TWO_CPUS, *args], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "strategy: mirrored, 2 replicas" in run.stdout
    assert versions(out / "mnist") == [1]  # exactly one export per run
    mirrored = json.loads((tmp_path / "mirrored" / "results.json").read_text())
    one_device = json.loads((trained["workdir"] / "results.json").read_text())
    # Same seed and global batch: the two replicas' averaged gradients are the
    # one device's gradient, up to float summation order.
    assert mirrored["test_accuracy"] == pytest.approx(one_device["test_accuracy"], abs=0.01)


def test_two_workers_match_one_device_and_only_the_chief_writes(trained, tmp_path, two_workers):
    # Both workers are given the same folders, as on a shared file system.
    out, workdir = tmp_path / "saved_models", tmp_path / "run"
    workers = two_workers("mnist", "train", "--data-dir", trained["data_dir"], *TINY, *PLAIN,
                          "--workdir", workdir, "--out", out)
    codes = [worker.wait(timeout=300) for worker in workers]
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "2 replicas, this is worker 0 (chief)" in logs[0]
    assert "2 replicas, this is worker 1 (not the chief)" in logs[1]
    assert versions(out / "mnist") == [1]  # exactly one export, the chief's
    chief = json.loads((workdir / "results.json").read_text())
    one_device = json.loads((trained["workdir"] / "results.json").read_text())
    # Same seed and global batch: the two workers' averaged gradients are the
    # one device's gradient, up to float summation order.
    assert chief["test_accuracy"] == pytest.approx(one_device["test_accuracy"], abs=0.01)
    assert not list((tmp_path / "tmp").iterdir()), "the non-chief's scratch folder is left"


def test_a_dead_worker_stops_the_other_with_one_line(trained, tmp_path, two_workers):
    workdir, out = tmp_path / "run", tmp_path / "saved_models"
    workers = two_workers("mnist", "train", "--data-dir", trained["data_dir"], *TINY, *PLAIN,
                          "--epochs", "200", "--workdir", workdir, "--out", out)
    deadline = time.monotonic() + 240
    while not (workdir / "history.csv").is_file():  # the first epoch has ended
        assert time.monotonic() < deadline and workers[0].poll() is None
        time.sleep(0.5)
    workers[1].kill()
    code = workers[0].wait(timeout=120)  # TensorFlow's heartbeats notice within seconds
    assert code == 1
    last = (tmp_path / "worker0.log").read_text().strip().splitlines()[-1]
    assert last == ("Error: training stopped: another worker of the cluster failed or is"
                    " unreachable (UnavailableError); its own log says why")
    assert versions(out / "mnist") == []  # no export from the broken run


def test_multiworker_needs_tf_config_and_a_fresh_run(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = _invoke("train", "--strategy", "multiworker", "--workdir", tmp_path)
    assert result.exit_code == 1
    assert "--strategy multiworker needs TF_CONFIG" in result.output
    assert len(result.output.strip().splitlines()) == 1

    monkeypatch.setenv("TF_CONFIG", "{not json")
    result = _invoke("train", "--strategy", "multiworker", "--workdir", tmp_path)
    assert result.exit_code == 1 and "TF_CONFIG must be JSON" in result.output

    result = _invoke("train", "--strategy", "multiworker", "--resume", "--workdir", tmp_path)
    assert result.exit_code == 1
    assert "--resume does not work with --strategy multiworker" in result.output


def test_a_textgen_model_given_to_mnist_is_one_line(trained):
    textgen = REPO / "saved_models" / "textgen"
    for command in (["evaluate", "--data-dir", trained["data_dir"]], ["predict"]):
        result = _invoke(*command, "--model", textgen)
        assert result.exit_code == 1, result.output
        assert "not an mnist SavedModel" in result.output and "Traceback" not in result.output


def test_predict_refuses_a_huge_image_without_decoding_it(tmp_path):
    import struct
    import zlib

    # A PNG whose header announces 20000 x 20000 pixels.
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
           + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))
    (tmp_path / "huge.png").write_bytes(png)
    result = _invoke("predict", tmp_path / "huge.png")
    assert result.exit_code == 1 and "too large for a digit" in result.output


def test_a_white_digit_on_a_transparent_background(tmp_path):
    from PIL import Image

    from kerasrnn.apps.mnist.images import load_digit

    sample = REPO / "apps" / "mnist" / "samples" / "test_0000_label_7.png"
    ink = np.asarray(Image.open(sample))
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere; only alpha draws the digit
    rgba[..., 3] = ink
    Image.fromarray(rgba, "RGBA").save(tmp_path / "white.png")
    pixels, notes = load_digit(tmp_path / "white.png")
    assert "inverted (light background)" not in notes
    assert any("transparent background taken as black" in n for n in notes)
    np.testing.assert_allclose(pixels, ink / 255.0, atol=1 / 255)
    result = _invoke("predict", tmp_path / "white.png")
    assert result.exit_code == 0 and ": 7 (probability" in result.stdout


def test_plot_bounds_the_grid():
    result = _invoke("plot", "--rows", "200", "--cols", "200")
    assert result.exit_code == 2 and "1<=x<=20" in result.output


def test_files_for_a_server_are_readable_by_others(trained):
    for path in (trained["out"] / "models.config", trained["workdir"] / "model.keras",
                 trained["out"] / "mnist" / "1" / "saved_model.pb"):
        assert path.stat().st_mode & 0o044 == 0o044, path


def test_the_serving_check_accepts_the_export_and_reports_a_leftover_staging_folder(
        trained, tmp_path):
    import shutil

    out = tmp_path / "sm"
    shutil.copytree(trained["out"], out)
    leftover = out / "mnist" / ".partial-killed"
    leftover.mkdir()
    result = CliRunner().invoke(main, ["serving", "check", str(out)])
    assert result.exit_code == 0, result.output
    assert "images float32 [-1, 28, 28]" in result.output
    assert "classes int64 [-1]" in result.output
    assert f"warning: {leftover}: staging folder of an export that did not finish" in result.stderr
    result = _invoke("export", "--workdir", trained["workdir"], "--out", out)
    assert result.exit_code == 0, result.output
    assert not leftover.exists() and versions(out / "mnist") == [1, 2]


def test_explain_reads_the_rows_as_the_model_does(trained, tmp_path):
    import tensorflow as tf

    version = trained["out"] / "mnist" / "1"
    loaded = tf.saved_model.load(str(version))
    images = tf.constant(data.to_float(data.load_idx(trained["data_dir"], "test")[0][:5]))
    rows = loaded.signatures["rows"](images=images)
    final = loaded.signatures["serving_default"](images=images)["probabilities"]
    # After the last row, the belief is the model's answer.
    np.testing.assert_allclose(rows["probabilities"][:, -1], final, atol=1e-5)
    assert rows["hidden"].shape == (5, 28, 16)
    out = tmp_path / "explain.png"
    result = _invoke("explain", "--model", version, "--data-dir", trained["data_dir"],
                     "--index", "0", "--index", "3", "--out", out)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("test digit")]
    assert len(lines) == 2 and "settled after row" in lines[0]
    assert out.stat().st_size > 10_000


def test_explain_needs_images_or_indices_and_the_rows_signature(trained, tmp_path):
    assert _invoke("explain").exit_code == 2
    sample = REPO / "apps" / "mnist" / "samples" / "test_0000_label_7.png"
    result = _invoke("explain", sample, "--model", REPO / "saved_models" / "textgen",
                     "--out", tmp_path / "x.png")
    assert result.exit_code == 1 and "no `rows` signature" in result.output


def test_settled_after_is_the_row_from_which_the_answer_stays():
    from kerasrnn.apps.mnist.explain import settled_after

    answers = [3, 3, 5, 5, 7, 7, 7]
    probabilities = np.eye(10)[answers]
    assert settled_after(probabilities) == 5
    assert settled_after(np.eye(10)[[2] * 28]) == 1


def test_every_cell_builds_the_classifier_with_dropout():
    """Dropout reaches the recurrent state only of cells that have one."""
    from kerasrnn.apps.common.choices import CELLS
    from kerasrnn.apps.mnist.model import build_model

    images = np.zeros((2, 28, 28), "float32")
    for cell in CELLS:
        model = build_model(cell, units=4, dropout=0.25, seed=0)
        assert model(images, training=True).shape == (2, 10), cell
        recurrent = model.get_layer(f"{cell.replace('-', '_')}_0").cell
        assert recurrent.dropout == 0.25
        assert recurrent.recurrent_dropout == (0.0 if cell.startswith("min") else 0.25), cell


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_export_to_onnx_and_litert_and_predict_without_tensorflow(trained, format,
                                                                 deploy_tools, fresh_command):
    """`mnist export --format` writes OUT/mnist.onnx or .tflite beside the
    SavedModels; `mnist predict --model FILE` answers from it with neither
    TensorFlow nor Keras imported, the SavedModel's digits and probabilities."""
    deploy_tools(format)
    from kerasrnn.apps.common import runtimes
    from kerasrnn.apps.mnist.images import load_digit, sample_digits
    from kerasrnn.apps.mnist.model import load_classifier

    out = trained["out"]
    result = _invoke("export", "--workdir", trained["workdir"], "--out", out, "--format", format)
    assert result.exit_code == 0, result.output
    path = out / ("mnist.onnx" if format == "onnx" else "mnist.tflite")
    assert path.is_file() and not list(out.glob(".mnist*"))  # no temporary left behind
    assert versions(out / "mnist") == [1]  # TF Serving's folders untouched
    check = CliRunner().invoke(main, ["serving", "check", str(out)])
    assert check.exit_code == 0 and "mnist.onnx" not in check.output \
        and "mnist.tflite" not in check.output, check.output

    images = np.stack([load_digit(p)[0] for p in sample_digits()])
    expected = load_classifier(out / "mnist").predict(images)
    np.testing.assert_allclose(runtimes.load(path)(images), expected, atol=1e-4)

    run, output, imported = fresh_command("mnist", "predict", "--model", path)
    assert run.returncode == 0, run.stderr
    assert imported == []
    assert [line.split(": ")[1].split()[0] for line in output.splitlines()] == \
        [str(int(p.argmax())) for p in expected]


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_the_pretrained_model_as_onnx_and_litert_answers_as_its_savedmodel(format):
    """`--model onnx` and `--model litert`: the pretrained classifier in that
    format, each digit's class and probability as the SavedModel gives them."""
    pytest.importorskip("onnxruntime" if format == "onnx" else "ai_edge_litert",
                        reason='the deployment tools are not installed: '
                               'pip install "kerasrnn[deploy]"')
    from kerasrnn.apps.common.model_lookup import pretrained_dir

    saved = _invoke("predict", "--model", pretrained_dir() / "mnist")
    exported = _invoke("predict", "--model", format)
    assert saved.exit_code == 0 and exported.exit_code == 0, exported.output
    answers = [line for line in saved.stdout.splitlines() if "probability" in line]
    assert len(answers) == 10
    assert [line for line in exported.stdout.splitlines() if "probability" in line] == answers


def test_explain_says_why_a_bidirectional_model_has_no_rows(tmp_path):
    """A bidirectional model has no answer after each row: explain says so,
    rather than advising an export that cannot help."""
    import keras

    from kerasrnn.apps.mnist.model import build_model, export

    keras.utils.set_random_seed(0)
    version = export(build_model("gru", 4, bidirectional=True), tmp_path / "saved_models")
    sample = REPO / "apps" / "mnist" / "samples" / "test_0000_label_7.png"
    result = _invoke("explain", sample, "--model", version, "--out", tmp_path / "x.png")
    assert result.exit_code == 1
    error, = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "a bidirectional model reads every row, both ways" in error
    assert "export" not in error


@pytest.mark.parametrize("option,value", [("--units", "100000000000000000000"),
                                          ("--epochs", "4611686018427387904"),
                                          ("--batch-size", "4611686018427387904")])
def test_huge_numbers_are_usage_errors(tmp_path, option, value):
    result = _invoke("train", option, value, "--workdir", tmp_path / "w", "--out", tmp_path / "o")
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output
    assert not (tmp_path / "w").exists()
