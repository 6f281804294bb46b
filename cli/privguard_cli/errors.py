"""Turning library errors into CLI errors: one place, same exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from privguard.errors import PrivguardError

P = ParamSpec("P")
R = TypeVar("R")


class CliError(click.ClickException):
    """A library error shown as ``Error: <message>`` with the library's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so a PrivguardError becomes a clean message and exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PrivguardError as exc:
            raise CliError(str(exc), exc.exit_code) from None

    return wrapper
