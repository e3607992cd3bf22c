"""A run's work folder: checked before training, locked, never emptied by mistake.

These runs stop before any data is read, so they train nothing.
"""

import os
import time

import pytest
from click.testing import CliRunner

from kerasrnn.apps.cli import main
from kerasrnn.apps.common.run_folder import RunLock

APPS = {
    "mnist": ["--data-dir"],  # followed by a folder that does not exist
    "textgen": ["--text"],
}
PREVIOUS_RUN = {
    "run.json": '{"units": 16}',
    "history.csv": "epoch,loss\n0,1.5\n1,1.2\n",
    "best.weights.h5": "weights",
    "backup/state.weights.h5": "backup",
}


def _train(app, tmp_path, *args):
    return CliRunner().invoke(main, [app, "train", *APPS[app], str(tmp_path / "typo"), *args])


def _interrupted_run(workdir):
    for name, content in PREVIOUS_RUN.items():
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text(content)


def _unchanged(workdir):
    return all((workdir / n).is_file() and (workdir / n).read_text() == c
               for n, c in PREVIOUS_RUN.items())


def _one_line_error(result, code=1):
    assert result.exit_code == code, result.output
    assert result.output.startswith("Error: ") and len(result.output.splitlines()) == 1
    assert "Traceback" not in result.output


@pytest.mark.parametrize("app", sorted(APPS))
def test_a_fresh_run_refuses_an_interrupted_one_and_names_both_ways_on(app, tmp_path):
    workdir = tmp_path / "run"
    _interrupted_run(workdir)
    result = _train(app, tmp_path, "--workdir", workdir)
    _one_line_error(result)
    assert "interrupted run (2 epochs done)" in result.output
    assert "--resume" in result.output and "--restart" in result.output
    assert _unchanged(workdir)


@pytest.mark.parametrize("app", sorted(APPS))
def test_a_restart_that_fails_before_its_first_epoch_keeps_the_old_run(app, tmp_path):
    workdir = tmp_path / "run"
    _interrupted_run(workdir)
    result = _train(app, tmp_path, "--workdir", workdir, "--restart")
    _one_line_error(result)
    assert "typo" in result.output  # the data path was wrong
    assert _unchanged(workdir) and not (workdir / "discarded").exists()
    # So --resume still finds the backup (and only complains about the options).
    result = _train(app, tmp_path, "--workdir", workdir, "--resume")
    assert "no interrupted run" not in result.output


def test_a_killed_restart_is_undone_by_the_next_run(tmp_path):
    workdir = tmp_path / "run"
    _interrupted_run(workdir)
    # What a restart killed before its first epoch leaves: the old run set aside.
    (workdir / "discarded").mkdir()
    for name in ("run.json", "history.csv", "best.weights.h5", "backup"):
        os.replace(workdir / name, workdir / "discarded" / name)
    (workdir / "run.json").write_text('{"units": 99}')  # the restart's own
    result = _train("mnist", tmp_path, "--workdir", workdir)
    _one_line_error(result)
    assert "interrupted run" in result.output
    assert _unchanged(workdir)


@pytest.mark.parametrize("app", sorted(APPS))
def test_a_trained_model_not_yet_exported_is_not_overwritten(app, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "model.keras").write_text("model")
    result = _train(app, tmp_path, "--workdir", workdir)
    _one_line_error(result)
    assert f"kerasrnn {app} export --workdir {workdir}" in result.output
    assert (workdir / "model.keras").read_text() == "model"


@pytest.mark.parametrize("app", sorted(APPS))
def test_a_second_run_on_a_locked_folder_names_the_first_one(app, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    lock = RunLock(workdir)
    try:
        result = _train(app, tmp_path, "--workdir", workdir)
    finally:
        lock.release()
    _one_line_error(result)
    assert f"another run is using this folder (pid {os.getpid()})" in result.output
    result = _train(app, tmp_path, "--workdir", workdir)  # released: now the data error
    assert "another run" not in result.output and "typo" in result.output


@pytest.mark.parametrize("app", sorted(APPS))
@pytest.mark.parametrize("where", ["--out", "--workdir"])
def test_unwritable_output_folders_fail_before_any_data_is_read(app, where, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for target in (a_file, "/proc/kerasrnn-out"):
        started = time.monotonic()
        result = _train(app, tmp_path, where, target, "--workdir" if where == "--out" else
                        "--out", tmp_path / "other")
        _one_line_error(result)
        assert f"{where} {target}" in result.output and "cannot write there" in result.output
        assert time.monotonic() - started < 10


def test_plot_to_an_unwritable_file_fails_before_the_model_runs(tmp_path):
    result = CliRunner().invoke(main, ["mnist", "plot", "--out", "/proc/grid.png",
                                       "--data-dir", tmp_path / "typo"])
    _one_line_error(result)
    assert "--out /proc" in result.output and "cannot write there" in result.output


def test_resume_and_restart_together_is_a_usage_error(tmp_path):
    result = _train("mnist", tmp_path, "--resume", "--restart")
    assert result.exit_code == 2


def test_an_interrupted_restart_says_the_previous_run_is_back(tmp_path):
    """Ctrl-C in a restart's first epoch: the old run returns as it was, and
    the message names --restart (a --resume would resume the old run)."""
    import dataclasses

    import keras
    import numpy as np
    import tensorflow as tf

    from kerasrnn.apps.common import run_folder, training
    from kerasrnn.errors import UserError

    @dataclasses.dataclass
    class Config:
        units: int = 99

    class CtrlC(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            raise KeyboardInterrupt

    workdir = tmp_path / "run"
    _interrupted_run(workdir)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    data = tf.data.Dataset.from_tensor_slices((np.ones((4, 3)), np.ones((4, 1)))).batch(2)
    with pytest.raises(UserError) as error:
        with run_folder.start(workdir, Config(), restart=True):
            assert not _unchanged(workdir)  # set aside while the restart runs
            training.fit_resumable(model, data, None, 2, workdir, training.EpochSeeds(0),
                                   "loss", "min", resume=False, extra_callbacks=[CtrlC()])
    assert "holds the previous run again; start over with --restart" in str(error.value)
    assert _unchanged(workdir) and not (workdir / "discarded").exists()
