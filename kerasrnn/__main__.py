"""`python -m kerasrnn` is the `kerasrnn` command.

The package's entry point, as the console script is; nothing in the library
imports it, so the library still never imports the apps.
"""

from kerasrnn.apps.cli import main

if __name__ == "__main__":
    main(prog_name="kerasrnn")
