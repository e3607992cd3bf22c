"""Which model a command uses: the one function that resolves `--model`.

Without `--model`, a command uses the user's own newest export,
`./saved_models/<app>/<N>` in the folder it runs from, and otherwise the
pretrained model that ships inside the package (`kerasrnn.pretrained`, the
newest version of each model in the repository's saved_models/). Either way
it says on stderr, in one line, which model it took, so that a result is
never silently from another model than the user thinks.
"""

from pathlib import Path

import click

from kerasrnn.errors import UserError
from kerasrnn.serving.export import latest_version_dir as newest_version
from kerasrnn.serving.export import versions

USER_MODELS = Path("saved_models")  # relative to the folder a command runs in


def pretrained_dir():
    """The folder of the pretrained models that come with kerasrnn, or None.

    Installed from a wheel, they are the package data `kerasrnn/pretrained/`
    (the repository's saved_models/, newest versions only); in a checkout of
    the repository, they are its saved_models/ folder.
    """
    package = Path(__file__).resolve().parents[2]  # kerasrnn/, or the checkout's root
    for candidate in (package / "pretrained", package / "saved_models"):
        if candidate.is_dir():
            return candidate
    return None


def resolve(app, given=None, announce=True):
    """The model `app` ("mnist" or "textgen") uses, as a path.

    Args:
        app: The model's name, its folder under saved_models.
        given: `--model` as the user gave it, or None. A model folder (one
            holding numbered versions) means its newest version; anything
            else is returned as it is, for the app to check.
        announce: Whether to say on stderr which model is used.
    """
    if given is not None:
        path = Path(given)
        if not path.exists():
            raise UserError(f"{path}: no such file or folder (--model)")
        if path.is_dir() and not (path / "saved_model.pb").exists() and versions(path):
            path = newest_version(path)
        origin = "--model"
    elif newest_version(USER_MODELS / app) is not None:
        path, origin = newest_version(USER_MODELS / app), "the newest export here"
    else:
        packaged = pretrained_dir()
        path = newest_version(packaged / app) if packaged is not None else None
        if path is None:
            raise UserError(f"no {app} model: train one (kerasrnn {app} train) or pass --model")
        origin = "pretrained, installed with kerasrnn"
    if announce:
        click.echo(f"model: {path} ({origin})", err=True)
    return path


def load_saved_model(path):
    """`tf.saved_model.load(path)`, or one line saying why the folder will not load."""
    import tensorflow as tf

    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise UserError(f"{path}: not a SavedModel folder (no saved_model.pb)")
    try:
        return tf.saved_model.load(str(path))
    except Exception as error:  # a corrupt saved_model.pb, missing variables, ...
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{path}: cannot load this SavedModel ({reason})") from None
