"""Options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import click

from privguard.header.profile import Option, parse_option


class ProfileParam(click.ParamType):  # type: ignore[type-arg]
    """A shipped profile name (completes from policies/deid) or a YAML file."""

    name = "profile"

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        from privguard.header.profile import available_profiles

        return [CompletionItem(n) for n in available_profiles() if n.startswith(incomplete)]

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)


class OptionParam(click.ParamType):  # type: ignore[type-arg]
    """A PS3.15 option name, e.g. retain-uids or retain_longitudinal_modified_dates."""

    name = "option"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Option:
        if isinstance(value, Option):
            return value
        from privguard.errors import PolicyError

        try:
            return parse_option(str(value))
        except PolicyError as exc:
            self.fail(str(exc), param, ctx)


class SizeParam(click.ParamType):  # type: ignore[type-arg]
    """A size in bytes, with an optional K, M, G or T suffix (powers of 1024), e.g. 512M."""

    name = "size"
    _UNITS: ClassVar[dict[str, int]] = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        import re

        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(value), re.IGNORECASE)
        if m is None:
            self.fail("use a size such as 512M or 2G", param, ctx)
        n = int(float(m.group(1)) * self._UNITS[m.group(2).upper()])
        if n < 16 << 20:
            self.fail("must be at least 16M", param, ctx)
        return n


def deid_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--key-file, --profile, --option, --project, --vault."""
    func = click.option(
        "--vault",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Token vault for profiles with random pseudonyms (kept at the sender, mode 0600).",
    )(func)
    func = click.option(
        "--project",
        default="default",
        show_default=True,
        help="Project name: pseudonyms differ between projects under one key.",
    )(func)
    func = click.option(
        "--option",
        "options",
        multiple=True,
        type=OptionParam(),
        help="Switch on a PS3.15 option (repeatable), e.g. retain-uids, clean-descriptors.",
    )(func)
    func = click.option(
        "--profile",
        default="basic",
        show_default=True,
        type=ProfileParam(),
        help="De-identification profile: a shipped name (basic, research) or a YAML file.",
    )(func)
    func = click.option(
        "--key-file",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Project key (make one with: privguard keys new --out FILE). Must be mode 0600.",
    )(func)
    return func


def audit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--audit-log, --signing-key, --operator: every command that writes output is audited."""
    func = click.option("--operator", help="Who runs this (recorded in the audit log beside the OS user).")(
        func
    )
    func = click.option(
        "--signing-key",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Sign the run's audit head with this Ed25519 key (the sender's, privguard keys new-signing).",
    )(func)
    func = click.option(
        "--audit-log",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="PRIVGUARD_AUDIT_LOG",
        help="Audit log [default: $XDG_STATE_HOME/privguard/audit.jsonl]; keep it at the sender.",
    )(func)
    return func
