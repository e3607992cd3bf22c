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
    layers: int = 1
    seq_len: int = 100  # characters per training window (truncated BPTT)
    batch_size: int = 32
    epochs: int = 50  # an upper bound: `minutes` usually ends the run first
    minutes: float = 20.0  # the time budget
    lr: float = 3e-3  # the peak, with a cosine schedule
    lr_schedule: str = "cosine-minutes"  # "constant", "cosine" (over epochs), "cosine-minutes"
    optimizer: str = "adam"  # or "adagrad" (min-char-rnn)
    clipnorm: float | None = 5.0
    clipvalue: float | None = None
    dropout: float = 0.1
    random_offsets: bool = True  # new window offsets each epoch
    seed: int = 0


# The defaults above hold the GRU back from memorising its training text, as
# it does when a budget gives it the time: dropout, new windows every epoch,
# and the rate decayed by the clock (at batch 32, for the updates). Its width
# trades capacity for characters read in the budget (docs/results.md,
# "Recipes by budget", compares widths at 20 minutes). A budget
# shorter than SHORT_BUDGET_MINUTES is better spent otherwise: a smaller GRU
# reads more characters a minute, and a constant rate with no dropout learns
# fastest while the model is far from fitting the text. Where the two recipes
# cross was bracketed on a 2-core CPU (docs/results.md, "Recipes by budget");
# a faster machine reaches it sooner.
SHORT_BUDGET_MINUTES = 7
SHORT_BUDGET_RECIPE = {"units": 256, "lr": 2e-3, "lr_schedule": "constant", "dropout": 0.0,
                       "random_offsets": False}


def recipe_for_minutes(minutes):
    """The values of SHORT_BUDGET_RECIPE's options for a run of `minutes`."""
    if minutes < SHORT_BUDGET_MINUTES:
        return dict(SHORT_BUDGET_RECIPE)
    return {name: getattr(TrainConfig, name) for name in SHORT_BUDGET_RECIPE}


# min-char-rnn (Karpathy, 2015): vanilla RNN, hidden 100, 25 steps, Adagrad 0.1
# at a constant rate, every gradient clipped to [-5, 5], no dropout, the same
# windows every epoch.
PRESETS = {
    "min-char-rnn": dict(cell="rnn", units=100, layers=1, seq_len=25, optimizer="adagrad",
                         lr=0.1, clipvalue=5.0, clipnorm=None, lr_schedule="constant",
                         dropout=0.0, random_offsets=False),
}


def with_preset(config, preset):
    """`config` with the settings of `preset` (a name in PRESETS, or None) in place."""
    return replace(config, **PRESETS[preset]) if preset else config
