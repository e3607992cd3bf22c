"""The `kerasrnn` command: a click group that mounts the apps' groups.

Each app's group is imported only when its subcommand is asked for, and no
group imports TensorFlow or Keras at its top, so that `--help` and
`--version` answer at once. A subcommand that runs starts TensorFlow
through the toolkit's `quiet.Command` (apps/common/quiet.py), which keeps
TensorFlow's start-up lines away.
"""

import importlib
import os

import click

from kerasrnn import __version__
from kerasrnn.errors import UserError

# name -> (module, attribute, one-line help) of each mounted group.
SUBCOMMANDS = {
    "mnist": ("kerasrnn.apps.mnist.cli", "mnist", "Classify MNIST digits read row by row."),
    "textgen": ("kerasrnn.apps.textgen.cli", "textgen", "A character-level text generator."),
    "serving": ("kerasrnn.apps.serving", "serving",
                "Check SavedModels the way TF Serving loads them."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(SUBCOMMANDS))

    def get_command(self, ctx, name):
        if name in SUBCOMMANDS:
            module, attribute, _ = SUBCOMMANDS[name]
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as error:
            raise click.ClickException(str(error)) from None
        except Exception as error:
            # Python's allocation failure, or TensorFlow's by name: importing
            # TensorFlow here would slow every --help.
            if not (isinstance(error, MemoryError)
                    or type(error).__name__ == "ResourceExhaustedError"):
                raise
            raise click.ClickException("out of memory: try smaller --units, --batch-size"
                                       " or --layers") from None

    def format_commands(self, ctx, formatter):
        rows = [(name, SUBCOMMANDS[name][2]) for name in sorted(SUBCOMMANDS)]
        rows += [(name, self.commands[name].get_short_help_str()) for name in sorted(self.commands)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kerasrnn")
@click.option("-v", "--verbose", is_flag=True,
              help="Show TensorFlow's native log lines and Keras's warnings"
              " (also: KERASRNN_VERBOSE=1).")
def main(verbose):
    """Recurrent neural networks (SimpleRNN, LSTM, GRU) in Keras 3.

    Run `kerasrnn COMMAND --help` for the options of each command.

    \b
    Examples:
      kerasrnn textgen sample --prompt "ROMEO:" --length 300 --seed 1
      kerasrnn mnist predict
    """
    if verbose:
        os.environ["KERASRNN_VERBOSE"] = "1"
