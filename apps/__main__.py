"""`python -m kerasrnn.apps` is the `kerasrnn` command."""

from kerasrnn.apps.cli import main

if __name__ == "__main__":
    main()
