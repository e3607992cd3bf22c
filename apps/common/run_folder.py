"""A training run's work folder: checked, locked, and never emptied by mistake.

    runs/<app>/
      .lock              held (flock) while a run uses the folder
      run.json           the run's TrainConfig; --resume must match it
      backup/            Keras's BackupAndRestore: the last finished epoch
      best.weights.h5    the best epoch so far
      history.csv        one row per finished epoch
      model.keras        the trained model, written when training ends
      results.json       written last, once the SavedModel is exported
      discarded/         a previous run's files, while a new run's first epoch runs

What can go wrong, and what is done about it:

- Two runs on one folder would overwrite each other's backup: the second
  finds the lock held and stops, naming the first run's pid. The lock is
  an flock, which the kernel releases when its process dies, even by kill -9.
- A new run without `--resume` on a folder whose run was interrupted (a
  backup) or never exported (model.keras, no results.json) would throw
  that run away: it stops and names both ways on, `--resume` (or `export`)
  and `--restart`.
- With `--restart`, the previous run's files are moved to `discarded/` and
  deleted only when the new run has finished its own first epoch with a
  finite loss. A new run that fails before that (a typo in its data path,
  a loss that became NaN, Ctrl-C) puts them back as it ends; one killed
  outright has not replaced anything either: the next run in the folder,
  or `export --workdir`, moves the files back first.
- Every folder the run will write is checked before the data is loaded, so
  an unwritable `--out` fails in seconds, not after the whole training run.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

import click

from kerasrnn.errors import UserError

# The files of one run, moved together.
RUN_FILES = ("run.json", "backup", "best.weights.h5", "history.csv", "model.keras",
             "vocabulary.json", "results.json")
DISCARDED = "discarded"


def config_as_json(config):
    """A TrainConfig dataclass as JSON-ready values (paths as strings)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def check_writable(folder, what):
    """Makes `folder` (and its parents) and checks that a file can be written there.

    Args:
        folder: The folder the run will write into.
        what: How the user named it, for the error (e.g. "--out").
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserError(f"{what} {folder}: cannot write there ({reason})") from None
    return folder


@contextlib.contextmanager
def output_folder(folder, what, files=(), disposable=()):
    """`check_writable(folder)` for a command's output, and the folders it
    made removed again, if still empty, when the command fails.

    `files` are the names the command will write in `folder`: each must be
    a file or nothing yet (a folder by that name is an error now, not after
    the work). `disposable` are files that count as nothing when a folder
    this made holds only them (a work folder's lock and run.json): they go
    with it.
    """
    folder = Path(folder)
    made = [p for p in [folder, *folder.parents] if not p.exists()]
    try:
        check_writable(folder, what)
        for name in files:
            if (folder / name).exists() and not (folder / name).is_file():
                raise UserError(f"{what} {folder}: {folder / name} is in the way (not a file)")
        yield folder
    except BaseException:
        if made and folder.is_dir() and {p.name for p in folder.iterdir()} <= set(disposable):
            for name in disposable:
                (folder / name).unlink(missing_ok=True)
        for path in made:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


class RunLock:
    """An exclusive lock on a work folder, for the run's lifetime.

    Used as a context manager, it also puts a previous run's discarded files
    back when the run fails before it finished an epoch of its own.
    """

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.path = self.workdir / ".lock"
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:  # a folder named .lock, a read-only folder, ...
            raise UserError(f"{self.path}: cannot lock the work folder"
                            f" ({error.strerror or type(error).__name__})") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self.fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise UserError(
                f"{workdir}: another run is using this folder (pid {holder}); wait for it,"
                " or pass another --workdir"
            ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None:
            _restore_discarded(self.workdir)
        self.release()


def _restore_discarded(workdir):
    """Puts back a previous run's files that a restart never got to replace."""
    discarded = workdir / DISCARDED
    if not discarded.is_dir():
        return
    for name in RUN_FILES:  # the new run's files are worth nothing yet
        target = workdir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        if (discarded / name).exists():
            os.replace(discarded / name, target)
    shutil.rmtree(discarded)


def _describe_interrupted(workdir):
    history = workdir / "history.csv"
    if history.is_file():
        epochs = max(0, len(history.read_text().splitlines()) - 1)
        return f"an interrupted run ({epochs} epochs done)"
    return "an interrupted run"


def start(workdir, config, resume=False, restart=False, app="APP"):
    """Locks `workdir` and makes it ready for a fresh, resumed or restarted run.

    Args:
        workdir: The run's folder.
        config: The run's TrainConfig (a dataclass), saved to run.json; a
            resumed run must be given the same.
        resume: Continue the interrupted run in `workdir`.
        restart: Discard whatever run `workdir` holds (after this run's first
            epoch: see the module's docstring).
        app: The app's name, for the commands named in errors.

    Returns:
        The `RunLock`, held until it is released or the process ends; use it
        as a context manager around the run.
    """
    workdir = check_writable(workdir, "--workdir")
    lock = RunLock(workdir)
    _restore_discarded(workdir)
    run_file = workdir / "run.json"
    values = config_as_json(config)
    interrupted = (workdir / "backup").is_dir()
    unexported = (workdir / "model.keras").is_file() and not (workdir / "results.json").is_file()
    if resume:
        if not interrupted or not run_file.is_file():
            lock.release()
            raise UserError(f"{workdir}: no interrupted run to resume (no backup there)")
        before = json.loads(run_file.read_text())
        changed = {k: (before.get(k), v) for k, v in values.items() if before.get(k) != v}
        if changed:
            lock.release()
            said = ", ".join(f"{k} was {old!r}, now {new!r}" for k, (old, new) in changed.items())
            raise UserError(f"--resume needs the options of the interrupted run: {said}")
        return lock
    if not restart and interrupted:
        lock.release()
        raise UserError(
            f"{workdir} holds {_describe_interrupted(workdir)}: continue it with --resume,"
            " or discard it with --restart"
        )
    if not restart and unexported:
        lock.release()
        raise UserError(
            f"{workdir} holds a trained model that was not exported: export it with"
            f" `kerasrnn {app} export --workdir {workdir}`, or discard it with --restart"
        )
    previous = [name for name in RUN_FILES if (workdir / name).exists()]
    if previous:
        (workdir / DISCARDED).mkdir()
        for name in previous:
            os.replace(workdir / name, workdir / DISCARDED / name)
    run_file.write_text(json.dumps(values, indent=1))
    return lock


def restart_pending(workdir):
    """Whether a restarted run in `workdir` has not yet finished an epoch (the
    previous run's files wait in discarded/)."""
    return (Path(workdir) / DISCARDED).is_dir()


def discard_previous(workdir):
    """Deletes the previous run's files: this run has finished an epoch of its own."""
    shutil.rmtree(Path(workdir) / DISCARDED, ignore_errors=True)


def trained_model(workdir):
    """The `model.keras` that a finished training run saved in `workdir`."""
    import keras

    workdir = Path(workdir)
    if restart_pending(workdir):
        # A restart killed before its first epoch ended: its model.keras, if
        # any, is the previous run's, parked in discarded/. Put it back, unless
        # the restart is still running (the lock says so).
        with RunLock(workdir):
            _restore_discarded(workdir)
    source = workdir / "model.keras"
    if not source.is_file():
        raise UserError(f"{workdir}: no model.keras (has a training run finished there?)")
    try:
        return keras.saving.load_model(source)
    except Exception as error:  # Keras raises many types for a bad file
        raise UserError(f"{source}: cannot load it ({error})") from None


def record_export(workdir, version, results=None):
    """Writes results.json, last: the run in `workdir` is trained and exported.

    Args:
        workdir: The run folder.
        version: The exported SavedModel's folder.
        results: The run's figures; by default those results.json holds.
    """
    path = Path(workdir) / "results.json"
    results = results or (json.loads(path.read_text()) if path.is_file() else {})
    results["saved_model"] = str(version)
    path.write_text(json.dumps(results, indent=1))
    click.echo(f"saved {Path(workdir) / 'model.keras'} and exported {version}")
