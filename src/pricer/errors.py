"""One exception for every mistake a user can make.

The CLI turns a `PricerError` into a one-line red message and exit code 2;
anything else is a bug and keeps its traceback.
"""


class PricerError(Exception):
    """Bad input from the user (missing file, wrong column, impossible setting...)."""
