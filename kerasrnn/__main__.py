"""`python -m kerasrnn` is the `kerasrnn` command."""

from kerasrnn.cli import main

if __name__ == "__main__":
    main()
