"""What defines a textgen training run: one frozen object, saved as run.json.

`kerasrnn textgen train` builds it from its options (their defaults are
these, but for a short budget's size: `size_for_minutes`), and `--resume`
checks that the interrupted run had the same one.
"""

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class TrainConfig:
    text: Path | None = None  # a UTF-8 file; None: the tensorflow-datasets text
    dataset: str = "tiny_shakespeare"
    cell: str = "gru"  # a --cell name (choices.CELLS)
    units: int = 512
    layers: int = 1
    seq_len: int = 100  # characters per training window (truncated BPTT)
    batch_size: int = 64
    epochs: int = 50  # an upper bound: `minutes` usually ends the run first
    minutes: float = 20.0  # the time budget
    lr: float = 2e-3  # the peak, with a cosine schedule
    lr_schedule: str = "constant"  # "constant", "cosine" (over epochs), "cosine-minutes"
    optimizer: str = "adam"  # or "adagrad" (min-char-rnn)
    clipnorm: float | None = 5.0
    clipvalue: float | None = None
    dropout: float = 0.0
    random_offsets: bool = False  # new window offsets each epoch
    seed: int = 0


# A budget shorter than this many minutes is better spent on a smaller GRU at
# a smaller batch: it reads more characters a minute and takes more steps an
# epoch, while the larger GRU's capacity pays only once it has had the time to
# use it. Where the two cross was bracketed on a 2-core CPU (docs/results.md,
# "Ahead of nanoGPT at 5 minutes"); a faster machine reaches it sooner.
SHORT_BUDGET_MINUTES = 7
SHORT_BUDGET_SIZE = {"units": 256, "batch_size": 32}


def size_for_minutes(minutes):
    """The `units` and `batch_size` a run of `minutes` gets where the options leave them open."""
    if minutes < SHORT_BUDGET_MINUTES:
        return dict(SHORT_BUDGET_SIZE)
    return {"units": TrainConfig.units, "batch_size": TrainConfig.batch_size}


# min-char-rnn (Karpathy, 2015): vanilla RNN, hidden 100, 25 steps, Adagrad 0.1,
# every gradient clipped to [-5, 5].
PRESETS = {
    "min-char-rnn": dict(cell="rnn", units=100, layers=1, seq_len=25, optimizer="adagrad",
                         lr=0.1, clipvalue=5.0, clipnorm=None),
}


def with_preset(config, preset):
    """`config` with the settings of `preset` (a name in PRESETS, or None) in place."""
    return replace(config, **PRESETS[preset]) if preset else config
