"""SavedModels laid out the way TensorFlow Serving reads them.

    saved_models/
      models.config          model_config_list naming every model below
      mnist/1/               saved_model.pb, variables/, assets.extra/
      mnist/2/
      textgen/1/

TF Serving loads every folder whose name is an integer, and it polls: it has
been seen loading a version that was still being written. So a new version is
written into a sibling folder whose name is not a number, flushed to disk,
and only then renamed to its number; the rename is atomic, and it fails
rather than replace a version that already exists, so two exports racing for
the same number end up with two different numbers. A single file (the
models.config beside them, a training run's model.keras) is written the same
way by `atomic_file`: a temporary sibling, flushed, then renamed over it.
"""

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from kerasrnn.errors import UserError

DEFAULT_BASE_DIR = Path("saved_models")
DEFAULT_SERVING_ROOT = "/models"  # where the official tensorflow/serving image mounts models
CONFIG_NAME = "models.config"
STAGING_PREFIX = ".partial-"  # not a number: TF Serving never loads a folder being written
EXAMPLE_REQUEST = Path("assets.extra") / "example_request.json"
_VERSION_NAME = re.compile(r"[0-9]+")


def _numbered(model_dir):
    """`(number, path)` of every entry of `model_dir` whose name is a base-10
    integer in ASCII digits, whatever it is (a folder, a file, a link)."""
    model_dir = Path(model_dir)
    try:
        entries = list(model_dir.iterdir())
    except OSError:  # not a folder, not readable
        return []
    return [(int(p.name), p) for p in entries if _VERSION_NAME.fullmatch(p.name)]


def version_dirs(model_dir):
    """`{version: folder}` of the versions TF Serving loads from `model_dir`.

    TF Serving's rule: a version is a folder whose name is a base-10 integer
    ("007" is version 7). Anything else (a file, a link to nowhere, "①",
    which Python's `str.isdigit` accepts and `int` refuses, a staging
    folder) is not a version. Every reader of versions uses this.
    """
    found = {}
    for number, path in sorted(_numbered(model_dir), key=lambda item: item[1].name):
        if path.is_dir():
            found.setdefault(number, path)
    return dict(sorted(found.items()))


def versions(model_dir):
    """The integer versions under `model_dir`, oldest first."""
    return list(version_dirs(model_dir))


def latest_version_dir(model_dir):
    """The newest version folder under `model_dir`, or None."""
    found = version_dirs(model_dir)
    return found[max(found)] if found else None


def _fsync_tree(root):
    """Flushes every file and folder under `root` (and `root`) to disk."""
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(folder)


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def readable_by_others(path):
    """Gives a file made by mkstemp (0600) the mode an ordinary file gets (0644 by umask).

    TF Serving often runs as another user, and must read what is exported.
    """
    os.chmod(path, 0o666 & ~_umask())


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """Yields a temporary path beside `path`; when the block ends without an
    error, that file is flushed to disk, made readable like an ordinary file,
    and renamed to `path` (atomic: a reader sees the old file or the new one,
    never half of one). On an error it is removed and `path` is untouched.

    `suffix` ends the temporary name, for writers that check it (Keras's
    `model.save` wants ".keras").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        readable_by_others(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _remove_abandoned_staging(model_dir):
    """Removes staging folders of exports that were killed before their rename.

    One that is still being written by another process is left alone: its
    owner holds an flock on it (see `export_version`).
    """
    for staging in Path(model_dir).glob(f"{STAGING_PREFIX}*"):
        try:
            fd = os.open(staging, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live export
        finally:
            os.close(fd)
        shutil.rmtree(staging, ignore_errors=True)


def export_version(write, name, base_dir=DEFAULT_BASE_DIR, example_request=None,
                   serving_root=None, extra_assets=None):
    """Writes a new version of model `name` and returns its folder.

    Args:
        write: A function that writes a SavedModel into the folder it is given
            (for instance `lambda path: model.export(path)`).
        name: The model's name, the folder under `base_dir`.
        base_dir: The folder that holds every model and `models.config`.
        example_request: Optional TF Serving REST request body (a dict) that
            `kerasrnn serving check` sends to this version; stored in the
            SavedModel's `assets.extra/`, a folder TF Serving ignores.
        serving_root: Where the server sees `base_dir`, for `models.config`;
            by default the one the existing models.config uses, else /models.
        extra_assets: Optional `{file name: JSON-able value}` written to
            `assets.extra/` too (e.g. where the training text came from).

    Returns:
        The `Path` of the new version folder, `base_dir/name/<N+1>`.
    """
    # What the export ends by rewriting must be rewritable before a version is
    # published, or the export would fail half done.
    check_models_config(base_dir)
    model_dir = Path(base_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    # The model folder's own lock, held from the clean-up until the new
    # staging folder is locked: else a concurrent export's clean-up could
    # find this staging folder made but not yet locked, and remove it.
    model_lock = os.open(model_dir, os.O_RDONLY)
    try:
        fcntl.flock(model_lock, fcntl.LOCK_EX)
        _remove_abandoned_staging(model_dir)
        # A sibling of the versions (so the rename stays on one file system)
        # whose name is not a number (so TF Serving never loads it).
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=model_dir))
        # mkdtemp makes it private (0700); a server running as another user
        # must read it.
        staging.chmod(0o777 & ~_umask())
        # Held while this export writes, so that a concurrent export's clean-up
        # (`_remove_abandoned_staging`) tells this live folder from an abandoned one.
        lock = os.open(staging, os.O_RDONLY)
        fcntl.flock(lock, fcntl.LOCK_EX)
    finally:
        os.close(model_lock)  # releases the model folder's lock
    try:
        write(str(staging))
        if not (staging / "saved_model.pb").is_file():
            raise RuntimeError(f"the export wrote no saved_model.pb into {staging}")
        if example_request is not None:
            (staging / EXAMPLE_REQUEST).parent.mkdir(exist_ok=True)
            (staging / EXAMPLE_REQUEST).write_text(json.dumps(example_request, indent=1))
        for file_name, value in (extra_assets or {}).items():
            (staging / EXAMPLE_REQUEST.parent).mkdir(exist_ok=True)
            (staging / EXAMPLE_REQUEST.parent / file_name).write_text(json.dumps(value, indent=1))
        _fsync_tree(staging)
        # The next number after every numbered entry, whatever it is: a plain
        # file or a broken link named "8" is not a version, but is in the way.
        number = max([n for n, _ in _numbered(model_dir)], default=0) + 1
        while True:
            target = model_dir / str(number)
            try:
                # Atomic; fails if another export took this number meanwhile.
                os.rename(staging, target)
                break
            except OSError:
                if not os.path.lexists(target):
                    raise
                number += 1
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        os.close(lock)
    _fsync_dir(model_dir)
    write_models_config(base_dir, serving_root)
    return target


def check_models_config(base_dir):
    """Raises `UserError` if `base_dir/models.config` exists but is not a UTF-8 file."""
    path = Path(base_dir) / CONFIG_NAME
    if not (path.exists() or path.is_symlink()):
        return
    if not path.is_file():
        raise UserError(f"{path}: not a file: remove it, and the export writes a new one")
    try:
        path.read_bytes().decode("utf-8")
    except OSError as error:
        raise UserError(f"{path}: cannot read it ({error.strerror})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text: remove it, and the export writes a new"
                        " one") from None


def model_names(base_dir=DEFAULT_BASE_DIR):
    """The models under `base_dir`: folders holding at least one version."""
    base_dir = Path(base_dir)
    if not base_dir.is_dir():
        return []
    return sorted(p.name for p in base_dir.iterdir() if p.is_dir() and versions(p))


def models_config(names, serving_root=DEFAULT_SERVING_ROOT):
    """The text-format `ModelServerConfig` serving `names` from `serving_root`."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name in names:
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = f"{serving_root.rstrip('/')}/{name}"
        entry.model_platform = "tensorflow"
    return text_format.MessageToString(config)


def parse_models_config(text):
    """Parses a models.config text into a `ModelServerConfig` proto.

    Raises `google.protobuf.text_format.ParseError` on a malformed text.
    """
    # Imported here: the protos import TensorFlow, which listing versions
    # (model lookup, --help) must not.
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def current_serving_root(base_dir=DEFAULT_BASE_DIR):
    """The serving root that `base_dir/models.config` uses, or the default."""
    from google.protobuf import text_format

    path = Path(base_dir) / CONFIG_NAME
    try:
        entries = parse_models_config(path.read_text()).model_config_list.config
    except (OSError, text_format.ParseError):
        return DEFAULT_SERVING_ROOT
    for entry in entries:
        if entry.base_path.endswith(f"/{entry.name}"):
            return entry.base_path[: -len(entry.name) - 1] or "/"
    return DEFAULT_SERVING_ROOT


def write_models_config(base_dir=DEFAULT_BASE_DIR, serving_root=None):
    """Rewrites `base_dir/models.config` atomically; returns its path.

    `serving_root` is where the server sees `base_dir` (the official image
    mounts models at /models); by default the root the file already uses.
    """
    if serving_root is None:
        serving_root = current_serving_root(base_dir)
    base_dir = Path(base_dir)
    path = base_dir / CONFIG_NAME
    text = models_config(model_names(base_dir), serving_root)
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return path
