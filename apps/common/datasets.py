"""tensorflow-datasets, offline or not: the check both apps make before a download."""

import logging
import socket

from kerasrnn.errors import UserError

TFDS_HOST = ("storage.googleapis.com", 443)  # where tensorflow-datasets downloads from


def network_reachable(host=TFDS_HOST, timeout=3.0):
    """Whether `host` answers within `timeout` seconds.

    Checked before a tensorflow-datasets download: offline, tfds itself spends
    minutes in retries before it fails.
    """
    try:
        socket.create_connection(host, timeout=timeout).close()
        return True
    except OSError:
        return False


def tfds_load(name, split, instead, **kwargs):
    """`tfds.load(name, split=split, **kwargs)`, or one line saying what to pass instead.

    Args:
        name: The tensorflow-datasets name, e.g. "mnist".
        split: A split or list of splits.
        instead: What the user can pass to read local files, e.g.
            "--data-dir DIR with the four MNIST IDX files".
    """
    import tensorflow_datasets as tfds

    # tfds warns through absl's logger when it looks for a dataset not yet
    # downloaded ("Variant folder ... has no dataset_info.json"): the error
    # below says what that means, in one line.
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        prepared = tfds.builder(name).is_prepared()
    except Exception as error:  # an unknown name raises tfds's DatasetNotFoundError
        raise UserError(f"tensorflow-datasets has no dataset {name!r} ({error})") from None
    finally:
        absl_logger.setLevel(level)
    if not prepared and not network_reachable():
        raise UserError(
            f"{name} is not downloaded yet and the network is unreachable:"
            f" connect to let tensorflow-datasets download it, or pass {instead}"
        )
    try:
        return tfds.load(name, split=split, **kwargs)
    except Exception as error:  # tfds wraps download and preparation errors in many types
        raise UserError(f"tensorflow-datasets could not load {name}: {error}") from None
