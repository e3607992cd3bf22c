"""A patch of Keras 3's TensorFlow trainer so that `fit` runs under
`tf.distribute.MultiWorkerMirroredStrategy`.

It changes Keras's own code for this process, which is why it lives in a
module of its own whose name says so; `strategies.make_strategy` applies it
only when the multi-worker strategy is asked for.
"""

import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as keras_tf_trainer

from kerasrnn.errors import UserError


def apply():
    """Lets Keras 3's `fit` run under MultiWorkerMirroredStrategy.

    keras-team/keras#20585: Keras 3's TensorFlow trainer fails under this
    strategy in two places (TensorFlow's own multi-worker Keras tutorial fails
    the same way since TF 2.16):

    1. Before the first step it averages the first batch over all replicas,
       only to learn the batch's shapes; across workers that average fails on
       the PerReplica batch. This worker's first replica's batch has the same
       shapes.
    2. It averages each step's logs over the workers along axis 0, which the
       scalar losses and metrics do not have. Averaging them as they are is
       what the logs mean.

    Replaced for this process only, and only when the multi-worker strategy
    is asked for.
    """
    trainer_class = keras_tf_trainer.TensorFlowTrainer
    if getattr(trainer_class, "_kerasrnn_multi_worker_patch", False):
        return
    if not (hasattr(trainer_class, "_maybe_symbolic_build")
            and hasattr(keras_tf_trainer, "reduce_per_replica")
            and hasattr(keras_tf_trainer, "_collective_all_reduce_multi_worker")):
        raise UserError("--strategy multiworker: this Keras version's trainer is not the one"
                        " kerasrnn knows how to run across workers")
    symbolic_build = trainer_class._maybe_symbolic_build
    reduce_per_replica = keras_tf_trainer.reduce_per_replica

    def first_local_value(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return value.values[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and self._distribute_strategy is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(first_local_value, next(batches))
                break
            iterator = None
        return symbolic_build(self, iterator=iterator, data_batch=data_batch)

    def reduce_logs(values, strategy, reduction):
        multi_worker = keras_tf_trainer._collective_all_reduce_multi_worker(strategy)
        if reduction in ("auto", "mean") and multi_worker:
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    trainer_class._maybe_symbolic_build = maybe_symbolic_build
    keras_tf_trainer.reduce_per_replica = reduce_logs
    trainer_class._kerasrnn_multi_worker_patch = True
