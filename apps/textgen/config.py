"""What defines a textgen training run: one frozen object, saved as run.json.

`kerasrnn textgen train` builds it from its options (their defaults are
these, but for the settings that depend on the budget: `recipe_for_minutes`),
and `--resume` checks that the interrupted run had the same one.
"""

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class TrainConfig:
    text: Path | None = None  # a UTF-8 file; None: the tensorflow-datasets text
    dataset: str = "tiny_shakespeare"
    cell: str = "gru"  # a --cell name (choices.CELLS)
    units: int = 384
    layers: int = 2
    seq_len: int = 100  # characters per training window (truncated BPTT)
    batch_size: int = 32
    epochs: int | None = None  # an upper bound; None: `minutes` alone ends the run
    minutes: float = 20.0  # the time budget
    lr: float = 3e-3  # the peak, with a cosine schedule
    lr_schedule: str = "cosine-minutes"  # "constant", "cosine" (over epochs), "cosine-minutes"
    optimizer: str = "adam"  # or "adagrad" (min-char-rnn)
    adam_beta_2: float = 0.999  # the decay of Adam's mean squared gradient (Keras's default)
    clipnorm: float | None = 5.0
    clipvalue: float | None = None
    dropout: float = 0.2
    random_offsets: bool = True  # new window offsets each epoch
    seed: int = 0


# The settings a time budget decides, where the options leave them open.
# From LONG_BUDGET_MINUTES on (the defaults above): two GRU layers of 384,
# held back from memorising their training text by dropout 0.2, new windows
# every epoch and the rate decayed by the clock.
# Under that, one layer-normalized GRU of 384 units with dropout 0.1: one
# layer reads about twice the characters a minute, and a layer-normalized
# step costs more than a GRU's but teaches more, which pays while the model
# is still far from fitting the text. Under SHORT_BUDGET_MINUTES, 256 units
# and no dropout: given more minutes, that model begins to memorise its
# text. New windows every epoch and the decayed rate keep each improving to
# the end. In the middle budget Adam averages its squared gradients over
# about a hundred steps rather than Keras's thousand (beta_2 0.99, as
# nanoGPT's character model does), so each step's size follows the
# gradients' recent scale as they shrink; under 7 minutes it made no
# difference, and at 20 minutes the two GRU layers ended worse with it.
# docs/results.md ("Layer normalization from 7 minutes on", "A
# layer-normalized GRU under 7 minutes", "Two layers at 20 minutes", "Adam's
# beta_2 at 10 minutes", "Adam's beta_2 at 20 minutes") has the runs on a
# 2-core CPU. Not bracketed: where two layers start to pay (measured at 20
# and 60 minutes only).
SHORT_BUDGET_MINUTES = 7
LONG_BUDGET_MINUTES = 20
SHORT_BUDGET_RECIPE = {"cell": "layernorm-gru", "units": 256, "layers": 1, "lr": 3e-3,
                       "lr_schedule": "cosine-minutes", "dropout": 0.0, "random_offsets": True,
                       "adam_beta_2": 0.999}
MIDDLE_BUDGET_RECIPE = {"cell": "layernorm-gru", "units": 384, "layers": 1, "lr": 3e-3,
                        "lr_schedule": "cosine-minutes", "dropout": 0.1, "random_offsets": True,
                        "adam_beta_2": 0.99}


def recipe_for_minutes(minutes):
    """The values of the budget's options (SHORT_BUDGET_RECIPE's) for a run of `minutes`."""
    if minutes < SHORT_BUDGET_MINUTES:
        return dict(SHORT_BUDGET_RECIPE)
    if minutes < LONG_BUDGET_MINUTES:
        return dict(MIDDLE_BUDGET_RECIPE)
    return {name: getattr(TrainConfig, name) for name in SHORT_BUDGET_RECIPE}


# min-char-rnn (Karpathy, 2015): vanilla RNN, hidden 100, 25 steps, Adagrad 0.1
# at a constant rate, every gradient clipped to [-5, 5], no dropout, the same
# windows every epoch.
PRESETS = {
    "min-char-rnn": dict(cell="rnn", units=100, layers=1, seq_len=25, optimizer="adagrad",
                         lr=0.1, clipvalue=5.0, clipnorm=None, lr_schedule="constant",
                         dropout=0.0, random_offsets=False),
}


def with_preset(config, preset, given=()):
    """`config` with the settings of `preset` (a name in PRESETS, or None) in
    place, but for the names in `given` (options typed on the command line,
    which win over a preset)."""
    if not preset:
        return config
    return replace(config, **{k: v for k, v in PRESETS[preset].items() if k not in given})
