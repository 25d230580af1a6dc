"""One exception for every mistake a user can make, and the one place that turns I/O, decoding
and format errors into it.

The CLI turns a `PricerError` into a one-line red message and exit code 2; anything else is a
bug and keeps its traceback. Readers and writers wrap their work in `reading(path)` /
`writing(path)`, so a missing, unreadable, non-UTF-8, truncated or corrupt file ends as one line
that names the file, whichever library noticed.
"""

from __future__ import annotations

import csv
import json
from contextlib import contextmanager
from pathlib import Path


class PricerError(Exception):
    """Bad input from the user (missing file, wrong column, impossible setting...)."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def as_user_error(error: BaseException, path: str | Path, doing: str = "read") -> PricerError:
    """`error`, raised while reading or writing `path`, as one PricerError line."""
    where = str(path)
    if isinstance(error, PricerError):
        return error
    if isinstance(error, FileNotFoundError):
        return PricerError(f"{where}: no such file or folder")
    if isinstance(error, IsADirectoryError):
        return PricerError(f"{where}: is a folder, expected a file")
    if isinstance(error, NotADirectoryError):
        return PricerError(f"{where}: a part of this path is a file, not a folder")
    if isinstance(error, FileExistsError):
        return PricerError(f"{where}: already exists")
    if isinstance(error, PermissionError):
        return PricerError(f"{where}: permission denied ({doing})")
    if isinstance(error, UnicodeError):
        return PricerError(f"{where}: not UTF-8 text ({_first_line(error)})")
    if isinstance(error, EOFError):
        return PricerError(f"{where}: the file ends too early (truncated?)")
    if isinstance(error, json.JSONDecodeError):
        return PricerError(f"{where}: not valid JSON ({_first_line(error)})")
    if isinstance(error, csv.Error):
        return PricerError(f"{where}: not a valid CSV file ({_first_line(error)})")
    if isinstance(error, OSError):  # gzip.BadGzipFile, zlib errors, read-only file systems...
        reason = error.strerror or _first_line(error)
        return PricerError(f"{where}: cannot {doing} ({reason})")
    # pandas' ParserError/EmptyDataError, pyarrow's ArrowInvalid, datasets' errors: all say what
    # is wrong with the file's format in their first line
    return PricerError(f"{where}: cannot {doing} ({type(error).__name__}: {_first_line(error)})")


# Errors that mean "this file is not what it should be", never a bug of ours.
def _format_errors() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [OSError, UnicodeError, EOFError, ValueError, csv.Error]
    try:
        import pyarrow

        kinds.append(pyarrow.ArrowException)
    except ImportError:
        pass
    try:
        import pandas.errors

        kinds += [pandas.errors.ParserError, pandas.errors.EmptyDataError]
    except ImportError:
        pass
    return tuple(kinds)


@contextmanager
def reading(path: str | Path):
    """Inside: read `path`. A file problem (missing, unreadable, not UTF-8, truncated, corrupt
    Parquet, ragged CSV...) leaves as one PricerError naming the file."""
    try:
        yield
    except PricerError:
        raise
    except _format_errors() as e:
        raise as_user_error(e, path, "read") from None


@contextmanager
def writing(path: str | Path):
    """Inside: write `path`. A file-system problem leaves as one PricerError naming the path."""
    try:
        yield
    except PricerError:
        raise
    except OSError as e:
        raise as_user_error(e, path, "write") from None
