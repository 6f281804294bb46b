"""``privguard request draft``: draft an export request from the files' headers."""

from __future__ import annotations

from pathlib import Path

import click

from privguard_cli.errors import handle_errors


@click.group()
def request() -> None:
    """Export requests."""


@request.command()
@click.option(
    "--input",
    "inputs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A folder or file of the files to export (repeatable).",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The draft (YAML)."
)
@click.option(
    "--from",
    "template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Keep every section but `dataset` from this request.",
)
@handle_errors
def draft(inputs: tuple[Path, ...], out: Path, template: Path | None) -> None:
    """Write a request whose `dataset` section lists what the files hold.

    Patients (by PatientID, with their age), studies (by AccessionNumber, else
    StudyInstanceUID) with modality, body part, BurnedInAnnotation and defacing.
    The draft holds local ids: keep it at the sender. It is never overwritten.
    """
    from privguard.errors import ConfigError
    from privguard.export import draft_request

    text = draft_request(list(inputs), template)
    try:
        with open(out, "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise ConfigError(f"{out} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"wrote {out} (it holds local ids: keep it at the sender)")
