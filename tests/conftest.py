import contextlib
import json
import os
import socket
import subprocess
import sys

# Quiet TensorFlow's start-up logs and keep numerics reproducible.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_runtest_logreport(report):
    """With KERASRNN_SKIPPED_FILE set, appends to that file the id of each
    test skipped because something is not installed: .ci/run runs them again
    once it has installed more than the README's lines do."""
    record = os.environ.get("KERASRNN_SKIPPED_FILE")
    if record and report.skipped and "not installed" in str(report.longrepr):
        with open(record, "a") as f:
            f.write(report.nodeid + "\n")


pytest_collectreport = pytest_runtest_logreport  # a whole file skipped as it is collected


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (setup.cfg's addopts): one worker more than xdist's count of
    the CPUs. Many tests wait on processes of their own (a command starting
    TensorFlow, the workers of a cluster, a heartbeat's timeout); the spare
    worker keeps the CPUs busy meanwhile. PYTEST_XDIST_AUTO_NUM_WORKERS, where
    set, is the count as it stands."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    from xdist.plugin import pytest_xdist_auto_num_workers as cpus

    return cpus(config) + 1


# What `export --format` and running the file need, by format.
DEPLOY_MODULES = {"onnx": ("onnxruntime", "tf2onnx"), "litert": ("ai_edge_litert", "onnx")}


@pytest.fixture
def deploy_tools():
    """`require(format)`: skips the test unless what exporting to `format`
    ("onnx" or "litert") and running the file need is installed."""

    def require(format):
        for module in DEPLOY_MODULES[format]:
            pytest.importorskip(module, reason="the deployment tools are not installed:"
                                ' pip install "kerasrnn[deploy]"')

    return require


# The `kerasrnn` command, then a last line of stdout saying which of
# TensorFlow and Keras it imported.
COMMAND_REPORTING_IMPORTS = """
import json, sys
from kerasrnn.apps.cli import main
try:
    main()
except SystemExit as e:
    code = e.code
print("imported: " + json.dumps(sorted(m for m in ("tensorflow", "keras") if m in sys.modules)))
sys.exit(code)
"""


@pytest.fixture
def fresh_command():
    """`run(*args, cwd=None)`: `kerasrnn ARGS` in a process of its own;
    returns the finished process, its stdout but the last line, and the
    modules of TensorFlow and Keras it imported."""

    def run(*args, cwd=None):
        done = subprocess.run([sys.executable, "-c", COMMAND_REPORTING_IMPORTS,
                               *map(str, args)], capture_output=True, text=True,
                              timeout=120, cwd=cwd)
        output, _, report = done.stdout.rpartition("imported: ")
        return done, output, json.loads(report) if report else None

    return run


@pytest.fixture
def on_backend():
    """Runs `python -c script` with KERAS_BACKEND=backend; skips when the
    backend is not installed, fails on a non-zero exit; returns the run."""

    def run(backend, script, timeout=600):
        import importlib.util

        if importlib.util.find_spec(backend) is None:
            pytest.skip(f"{backend} is not installed (not a dependency of kerasrnn)")
        env = {**os.environ, "KERAS_BACKEND": backend}
        if backend == "jax":
            # Most of a JAX test's time is XLA compiling each program apart;
            # its optimisation passes change how fast a program runs, not
            # what it computes, and cost about a tenth of these tests' time.
            env["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
        done = subprocess.run([sys.executable, "-c", script], env=env,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    return run


@contextlib.contextmanager
def _traces_of_train_step():
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    # Python runs train_step only while TensorFlow traces it.
    traced, train_step = [], TensorFlowTrainer.train_step
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TensorFlowTrainer, "train_step",
                      lambda self, data: traced.append(1) or train_step(self, data))
        yield traced


@pytest.fixture(scope="session")
def traces_of_train_step():
    """`with traces_of_train_step() as traced:` counts in `len(traced)` how
    often TensorFlow traces Keras's training step inside the block."""
    return _traces_of_train_step


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(1234)
    yield


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.fixture
def two_workers(tmp_path):
    """Starts `kerasrnn ARGS --strategy multiworker` as the two workers of a cluster.

    Each worker gets the TF_CONFIG of its task on localhost ports, writes its
    output to tmp_path/worker<i>.log and its temporary files under
    tmp_path/tmp. Workers still running at the end of the test are killed.
    """
    workers = []

    def start(*args):
        hosts = [f"localhost:{port}" for port in _free_ports(2)]
        (tmp_path / "tmp").mkdir()
        for index in range(2):
            tf_config = {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}
            log = open(tmp_path / f"worker{index}.log", "w")
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "kerasrnn.apps", *map(str, args),
                 "--strategy", "multiworker"],
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config),
                     "TMPDIR": str(tmp_path / "tmp")},
                stdout=log, stderr=subprocess.STDOUT, text=True,
            ))
            log.close()  # the worker has its own copy
        return workers

    yield start
    for worker in workers:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


# The modules that take longest, longest first. The README's command runs
# one worker per CPU, each given a whole module at a time (setup.cfg's
# --dist loadfile); a long module handed out last would run on alone
# after the other workers have finished.
LONGEST_MODULES = ["test_textgen.py", "test_mnist.py", "test_minimal.py", "test_export.py"]


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_MODULES.index(name) if name in LONGEST_MODULES else len(LONGEST_MODULES)

    items.sort(key=rank)  # stable: each module's own order is kept
