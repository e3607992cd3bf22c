"""The benchmarks' argument parser: a usage error is one line, exit 2.

argparse prints its whole usage text before the error; the benchmarks, like
the `kerasrnn` command, print the one line that says what is wrong (`--help`
shows the usage).
"""

import argparse
import sys


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)
