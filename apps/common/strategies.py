"""tf.distribute for the apps' training programs: the strategy, and who writes.

- default: the current device, no distribution;
- mirrored: `MirroredStrategy` over every local GPU (or the CPU);
- multiworker: `MultiWorkerMirroredStrategy` over the hosts in `TF_CONFIG`.

Under `multiworker` every worker runs the same program; the chief (task
`chief`, or worker 0 when there is none) keeps the checkpoints, logs and the
exported SavedModel, and the other workers write theirs to a scratch folder
that is deleted when they exit. They must still write: saving reads
distributed variables, which can take collective ops that every worker has to
join, as TensorFlow's multi-worker tutorial explains.
"""

import atexit
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf
from keras.src.backend.tensorflow import trainer as keras_tf_trainer

from kerasrnn.apps.common import keras_multiworker_patch
from kerasrnn.apps.common.choices import STRATEGIES
from kerasrnn.errors import UserError

# A collective op waiting longer than this for the other workers fails instead
# of hanging. Generous, because the first one waits for every worker to start.
COLLECTIVE_TIMEOUT_SECONDS = 300


def make_strategy(name, resume=False):
    """The `tf.distribute` strategy called `name` (one of STRATEGIES).

    Args:
        name: "default", "mirrored" or "multiworker".
        resume: Whether the run continues an interrupted one; not possible
            under "multiworker", whose workers would restore different states.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if resume:
            raise UserError("--resume does not work with --strategy multiworker:"
                            " start the run again")
        _check_tf_config()
        keras_multiworker_patch.apply()
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                timeout_seconds=COLLECTIVE_TIMEOUT_SECONDS
            )
        )
    raise UserError(f"unknown strategy {name!r}: choose from {', '.join(STRATEGIES)}")


def describe(strategy):
    """One line saying how `strategy` runs, for the training log."""
    replicas = strategy.num_replicas_in_sync
    resolver = strategy.cluster_resolver
    if resolver is None or resolver.task_type is None:
        return f"{replicas} replicas"
    role = "chief" if is_chief(strategy) else "not the chief"
    return f"{replicas} replicas, this is {resolver.task_type} {resolver.task_id} ({role})"


def is_chief(strategy):
    """Whether this process keeps the run's files: always, except a non-chief worker."""
    resolver = strategy.cluster_resolver
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def chief_or_scratch(strategy, workdir, out, logdir):
    """The run's folders on the chief; scratch folders, and no logs, on the other workers."""
    if is_chief(strategy):
        return Path(workdir), Path(out), logdir
    scratch = Path(tempfile.mkdtemp(prefix="kerasrnn-worker-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return scratch / "work", scratch / "saved_models", None


def any_worker(strategy, flag):
    """Whether `flag` holds on any worker: the same answer on every worker.

    A decision a worker takes from its own clock, such as a time budget, must
    be shared: a worker that stops training while another goes on leaves that
    one waiting in a collective op.
    """
    if not _multi_worker(strategy):
        return flag
    return bool(_all_reduce(strategy, tf.constant(float(flag)), "SUM") > 0)


def mean_over_workers(strategy, value):
    """`value` averaged over the workers: one number that every worker agrees on."""
    if not _multi_worker(strategy):
        return value
    return float(_all_reduce(strategy, tf.constant(float(value)), "MEAN"))


@tf.function
def _all_reduce(strategy, value, op):
    """`value` from every worker, reduced by `op` ("SUM" or "MEAN")."""
    return strategy.reduce(op, strategy.run(tf.identity, args=(value,)), axis=None)


def _multi_worker(strategy):
    return keras_tf_trainer._collective_all_reduce_multi_worker(strategy)


@contextlib.contextmanager
def worker_failures_as_errors():
    """Turns another worker's death into a one-line error instead of a traceback.

    TensorFlow notices a dead worker by its missing heartbeats (or a collective
    op's timeout) and fails the collective ops of the others.
    """
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
        raise UserError(
            f"training stopped: another worker of the cluster failed or is unreachable"
            f" ({type(error).__name__}); its own log says why"
        ) from None


def _check_tf_config():
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UserError("--strategy multiworker needs TF_CONFIG: the cluster's hosts and this"
                        " process's task (see the README, 'Training on several machines')")
    try:
        config = json.loads(text)
        config["cluster"]["worker"], config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(
            "TF_CONFIG must be JSON with cluster.worker (a list of host:port) and"
            f" task.type and task.index ({type(error).__name__}: {error})"
        ) from None
