"""The error type for problems with the user's input.

The `kerasrnn` command prints a `UserError` as one line and exits 1, with no
traceback. It lives apart from the modules that import TensorFlow so that the
command line can name it without paying TensorFlow's start-up cost.
"""


class UserError(Exception):
    """A problem with the user's input, said in one line."""
