"""User-facing errors.

Everything a user can get wrong (a missing file, a malformed line, an unknown
name, a bad hyper-parameter) raises a subclass of :class:`AdaSplitError`. The
command-line entry points print its message on one line and exit with code 2
instead of showing a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps


class AdaSplitError(Exception):
    """An error caused by the user's input; its message says what to do."""


class DataError(AdaSplitError, ValueError):
    """A dataset cannot be found, read or used."""


class ConfigError(AdaSplitError, ValueError):
    """A hyper-parameter or option is invalid."""


class CheckpointError(AdaSplitError, ValueError):
    """A checkpoint cannot be read or does not fit the data."""


def cli_errors(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command-line ``main`` so user errors print one line and exit 2."""

    @wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except AdaSplitError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
