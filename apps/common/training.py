"""What the apps' training programs share: the start of a run (seeds,
strategy, folders), epoch-reproducible shuffling, and fits that can be
killed and resumed.

TensorFlow-specific: the library's cells and layers stay backend-neutral.
"""

import contextlib
import math
import sys
from pathlib import Path

import click
import keras
import tensorflow as tf

from kerasrnn.apps.common import run_folder
from kerasrnn.apps.common.strategies import chief_or_scratch, describe, make_strategy
from kerasrnn.errors import UserError
from kerasrnn.serving.export import atomic_file


def set_seed(seed, deterministic=True):
    """Seeds Python, NumPy and TensorFlow; optionally makes TensorFlow's ops deterministic.

    Keras turns XLA off when op determinism is on, so runs that ask for XLA
    (`--jit`) pass `deterministic=False`.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def begin_run(app, config, *, workdir, out, logdir=None, resume=False, restart=False,
              strategy="default", deterministic=True):
    """What every training run does before its data: seeds, the tf.distribute
    strategy, every folder it will write checked, and the run folder started
    (locked, resumed or restarted: kerasrnn.apps.common.run_folder).

    Yields `(distribution, workdir, out, logdir)`: on a worker other than the
    chief, scratch folders in place of the given ones (only the chief keeps
    files).
    """
    set_seed(config.seed, deterministic=deterministic)
    distribution = make_strategy(strategy, resume)
    if strategy != "default":
        click.echo(f"strategy: {strategy}, {describe(distribution)}")
    workdir, out, logdir = chief_or_scratch(distribution, workdir, out, logdir)
    # A run that fails before it trains (bad data, no network) leaves no
    # folders of its own behind; one that trained keeps its work folder.
    with contextlib.ExitStack() as folders:
        folders.enter_context(run_folder.output_folder(Path(out) / app, "--out"))
        if logdir is not None:
            folders.enter_context(run_folder.output_folder(logdir, "--logdir"))
        folders.enter_context(run_folder.output_folder(
            workdir, "--workdir", disposable=(".lock", "run.json")))
        with run_folder.start(workdir, config, resume, restart, app=app):
            yield distribution, workdir, out, logdir


class EpochSeeds(keras.callbacks.Callback):
    """Makes each epoch's random draws a function of (seed, epoch) alone.

    Two sources of randomness would otherwise differ after `--resume`:
    `tf.data`'s reshuffling depends on how many times the dataset was iterated
    in this process, and the model's seed generators (dropout, augmentation)
    are not in the weights that Keras's BackupAndRestore saves. So the data
    order here is a stateless permutation of the epoch number, and every seed
    generator of the model is reset at the start of each epoch to a state
    derived from the epoch number. A resumed epoch then repeats exactly.
    """

    def __init__(self, seed):
        super().__init__()
        self.seed = seed
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.initial_states = None

    def on_train_begin(self, logs=None):
        self.seed_states = [
            v for v in self.model.non_trainable_variables
            if v.path.endswith("seed_generator_state")
        ]
        self.initial_states = [keras.ops.convert_to_numpy(v) for v in self.seed_states]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)
        for variable, initial in zip(self.seed_states, self.initial_states, strict=True):
            # The counter half of the state starts each epoch 2**20 draws apart.
            state = initial.copy()
            state[-1] = initial[-1] + (epoch << 20)
            variable.assign(state)

    def offset(self, count):
        """This epoch's integer in `[0, count)`, the same for every call in the epoch."""
        return tf.random.stateless_uniform(
            [], seed=[self.seed + 1, self.epoch.read_value()], maxval=count, dtype=tf.int64
        )

    def indices(self, count):
        """A dataset of `range(count)` in this epoch's order."""

        def permutation(_):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64), seed=[self.seed, self.epoch.read_value()]
            )
            return tf.data.Dataset.from_tensor_slices(order)

        # flat_map runs `permutation` when an epoch's iterator starts, so it
        # reads the epoch number Keras has just set.
        indices = tf.data.Dataset.from_tensors(0).flat_map(permutation)
        return indices.apply(tf.data.experimental.assert_cardinality(count))


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary file, so no half-written `.keras` is left."""
    with atomic_file(path, suffix=".keras") as tmp:
        model.save(tmp)
    return Path(path)


def best_so_far(history_csv, monitor, lower_is_better=False):
    """The best `monitor` value in a CSVLogger file, or None (for resumed runs)."""
    path = Path(history_csv)
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        return None
    header = lines[0].split(",")
    if monitor not in header:
        return None
    column = header.index(monitor)
    values = [float(line.split(",")[column]) for line in lines[1:] if line.strip()]
    if not values:
        return None
    return min(values) if lower_is_better else max(values)


def fit_resumable(model, train_data, val_data, epochs, workdir, epoch_seeds, monitor, mode,
                  resume, extra_callbacks=()):
    """`model.fit` that can be killed and resumed, keeping the best epoch's weights.

    Adds to `extra_callbacks`: `epoch_seeds`, Keras's BackupAndRestore in
    `workdir/backup`, the best weights by `monitor` in
    `workdir/best.weights.h5` (a resumed run starts from the best value in
    `workdir/history.csv`, which CSVLogger keeps), the removal of a previous
    run's discarded files once an epoch ends (see run_folder), and
    TerminateOnNaN. Loads
    the best weights into `model` at the end.

    Returns:
        The best value of `monitor`, and the Keras `History` of this call.
    """
    best_path, history_path = workdir / "best.weights.h5", workdir / "history.csv"

    def discard_previous_run(epoch, logs):
        # Not after an epoch whose loss became NaN: that fails the run, and
        # a failed restart puts the previous run back.
        if math.isfinite((logs or {}).get("loss", math.nan)):
            run_folder.discard_previous(workdir)

    lower_is_better = mode == "min"
    callbacks = [
        epoch_seeds,
        keras.callbacks.BackupAndRestore(str(workdir / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(best_path), monitor=monitor, mode=mode, save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best_so_far(history_path, monitor, lower_is_better),
        ),
        keras.callbacks.CSVLogger(str(history_path), append=resume),
        # After the backup and the history of this run's first epoch are written.
        keras.callbacks.LambdaCallback(on_epoch_end=discard_previous_run),
        keras.callbacks.TerminateOnNaN(),
        *extra_callbacks,
    ]
    # With no distribution strategy, Keras creates the optimizer's variables
    # while tracing the first training step, and a tf.function that creates
    # variables is traced a second time, a few seconds each for a recurrent
    # model. Created here, the step is traced once (the compiled metrics
    # must be objects made before `fit` for the same reason).
    if not model.optimizer.built:
        with model.distribute_strategy.scope():
            model.optimizer.build(model.trainable_variables)
    try:
        # shuffle=False: the datasets order themselves by epoch (EpochSeeds), and
        # Keras warns that its default shuffle=True is ignored for a tf.data input.
        # Into a terminal, the progress bar; into a file or a pipe, one line
        # per epoch (a bar there is every update of the epoch in one line).
        history = model.fit(train_data, validation_data=val_data, epochs=epochs,
                            callbacks=callbacks, shuffle=False,
                            verbose=1 if sys.stdout.isatty() else 2)
    except KeyboardInterrupt:
        if run_folder.restart_pending(workdir):  # the previous run comes back as it was
            raise UserError(f"interrupted before the restarted run finished an epoch: {workdir}"
                            " holds the previous run again; start over with --restart") from None
        raise UserError(
            f"interrupted: continue with the same options and --resume (work folder {workdir})"
        ) from None
    if any(math.isnan(v) for v in history.history.get("loss", [])):
        raise UserError("training stopped: the loss became NaN (try a lower --lr)")
    model.load_weights(str(best_path))
    return best_so_far(history_path, monitor, lower_is_better), history
