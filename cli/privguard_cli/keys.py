"""``privguard keys``: make key files."""

from __future__ import annotations

from pathlib import Path

import click

from privguard_cli.errors import handle_errors


@click.group()
def keys() -> None:
    """Create project keys (pseudonyms) and signing keys (approvals)."""


@keys.command("new")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the key (created with mode 0600; never overwritten).",
)
@handle_errors
def new(out: Path) -> None:
    """Make a new random 256-bit project key for pseudonymization.

    Keep it at the sender: whoever holds it can recompute every pseudonym.
    """
    from privguard.pseudonym.keys import ProjectKey

    key = ProjectKey.generate()
    key.save(out)
    click.echo(f"wrote project key {key.key_id} to {out} (mode 0600)")


@keys.command("new-signing")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PREFIX",
    help="Writes PREFIX.key (private, mode 0600) and PREFIX.pub (public); never overwrites.",
)
@handle_errors
def new_signing(out: Path) -> None:
    """Make an Ed25519 key pair for signing export approvals.

    The privacy officer keeps PREFIX.key; the export host needs only PREFIX.pub.
    """
    from privguard.compliance.approval import SigningKey

    key = SigningKey.generate()
    private, public = key.save(out)
    click.echo(f"wrote signing key {key.key_id}: {private} (mode 0600) and {public}")
