"""What defines an mnist training run: one frozen object, saved as run.json.

`kerasrnn mnist train` builds it from its options (their defaults are these),
and `--resume` checks that the interrupted run had the same one.
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainConfig:
    cell: str = "lstm"  # a --cell name (choices.CELLS)
    units: int = 128  # the classic TensorFlow example's LSTM size
    layers: int = 1  # stacked recurrent layers
    bidirectional: bool = False  # read the rows top-down and bottom-up
    dropout: float = 0.1  # input and recurrent dropout of every layer
    augment: bool = True  # small random rotations, shifts and zooms
    epochs: int = 30
    batch_size: int = 128  # global: split across replicas
    lr: float = 1e-3  # Adam's
    schedule: str = "cosine"  # "constant", or cosine decay to 0 over the epochs
    val_fraction: float = 0.1  # of the training split, held out for validation
    dataset: str = "mnist"  # tensorflow-datasets name, when data_dir is None
    data_dir: Path | None = None  # the four IDX files; no network needed
    seed: int = 0
