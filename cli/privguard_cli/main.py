"""The ``privguard`` command group. Subcommands are imported lazily so that
``privguard --help`` never imports heavy dependencies (presidio, torch)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from typing import Any

import click

from privguard._version import __version__

#: command name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "scrub": ("privguard_cli.scrub", "scrub", "De-identify DICOM files into an output folder."),
    "inspect": ("privguard_cli.inspect", "inspect", "Show what de-identification would do to one file."),
    "keys": ("privguard_cli.keys", "keys", "Create project keys and signing keys."),
    "profiles": ("privguard_cli.profiles", "profiles", "List and show de-identification profiles."),
    "check": ("privguard_cli.check", "check", "Check an export request against GDPR/HIPAA/PIPL policies."),
    "approve": ("privguard_cli.approve", "approve", "Sign an approval of an export request."),
    "export": ("privguard_cli.export", "export", "Run an approved export (bind, scrub, manifest, audit)."),
    "request": ("privguard_cli.request", "request", "Draft an export request from the files' headers."),
    "review": ("privguard_cli.review", "review", "Rebuild an export's review page (OUT/review/index.html)."),
    "audit": ("privguard_cli.audit", "audit", "Verify, show and export the audit log."),
    "serve": ("privguard_cli.serve", "serve", "Run a de-identifying DICOM node (receive, scrub, forward)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (mod, _, _) in COMMANDS.items() if importlib.util.find_spec(mod))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, _ = entry
        if importlib.util.find_spec(module_name) is None:
            return None
        cmd: click.Command = getattr(importlib.import_module(module_name), attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="privguard")
@click.option("-v", "--verbose", count=True, help="More log output (tags and counts, never values).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--debug", is_flag=True, help="Show a traceback when a command fails (for bug reports).")
def cli(verbose: int, quiet: bool, debug: bool) -> None:
    """privguard: de-identify medical images for sharing, and prove it."""
    level = (
        logging.ERROR
        if quiet
        else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="privguard")


if __name__ == "__main__":  # pragma: no cover
    main()
