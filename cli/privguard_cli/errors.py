"""Turning library errors into CLI errors: one place, same exit codes.

Every error ends in one line on stderr and a documented exit code: a
:class:`~privguard.errors.PrivguardError` with its own code (2 for
configuration), an operating-system error or anything unforeseen with 2.
A traceback is shown only with ``privguard --debug``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from privguard.errors import PrivguardError

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("privguard.cli")


class CliError(click.ClickException):
    """A library error shown as ``Error: <message>`` with the library's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]


def debug_enabled() -> bool:
    """True when ``privguard --debug`` was given (tracebacks wanted)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    return bool(ctx.find_root().params.get("debug"))


def _os_message(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    return f"{what}: {exc.filename}" if exc.filename else what


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so that every error becomes one clean line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except PrivguardError as exc:
            if debug_enabled():
                raise
            raise CliError(str(exc), exc.exit_code) from None
        except OSError as exc:
            if debug_enabled():
                raise
            raise CliError(_os_message(exc), 2) from None
        except RecursionError:
            if debug_enabled():
                raise
            raise CliError("an input file is nested too deeply to be read", 2) from None
        except MemoryError:
            if debug_enabled():
                raise
            raise CliError("out of memory while reading the inputs", 2) from None
        except Exception as exc:
            if debug_enabled():
                raise
            logger.debug("unexpected %s", type(exc).__name__)
            raise CliError(
                f"unexpected error ({type(exc).__name__}); nothing more was done. "
                "Rerun with privguard --debug for the details",
                2,
            ) from None

    return wrapper
