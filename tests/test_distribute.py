"""Training under tf.distribute: MirroredStrategy over two logical CPU devices."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kerasrnn.cli import main
from kerasrnn.export import versions

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

# The CPU is split into two logical devices before TensorFlow starts, so
# MirroredStrategy finds two replicas, as it would two GPUs.
TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from kerasrnn.cli import main
main(sys.argv[1:])
"""


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"no real MNIST digits at {SHARED_MNIST}")
def test_mirrored_over_two_devices_matches_one_device(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_mnist import _small_mnist

    data_dir = _small_mnist(tmp_path / "data")
    results = {}
    for strategy in ("mirrored", "default"):
        out = tmp_path / f"sm_{strategy}"
        args = ["mnist", "train", "--strategy", strategy, "--data-dir", str(data_dir),
                "--cell", "gru", "--units", "16", "--epochs", "3", "--batch-size", "64",
                "--lr", "0.01", "--no-augment", "--dropout", "0", "--seed", "3",
                "--workdir", str(tmp_path / strategy), "--out", str(out)]
        run = subprocess.run([sys.executable, "-c", TWO_CPUS, *args], capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        if strategy == "mirrored":
            assert "strategy: mirrored, 2 replicas" in run.stdout
        assert versions(out / "mnist") == [1]  # exactly one export per run
        results[strategy] = json.loads((tmp_path / strategy / "results.json").read_text())
    # Same seed and global batch: the two replicas' averaged gradients are the
    # one device's gradient, up to float summation order.
    assert results["mirrored"]["test_accuracy"] == pytest.approx(
        results["default"]["test_accuracy"], abs=0.01
    )


def test_multiworker_is_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["mnist", "train", "--strategy", "multiworker",
                                       "--workdir", str(tmp_path)])
    assert result.exit_code == 1
    assert "keras-team/keras#20585" in result.output
    assert len(result.output.strip().splitlines()) == 1
