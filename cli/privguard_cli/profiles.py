"""``privguard profiles``: list and show de-identification profiles."""

from __future__ import annotations

import click

from privguard_cli.errors import handle_errors


@click.group()
def profiles() -> None:
    """List and show de-identification profiles (policies/deid)."""


@profiles.command("list")
@handle_errors
def list_profiles() -> None:
    """List the shipped profiles."""
    from privguard.header.profile import available_profiles, load_profile

    for name in available_profiles():
        p = load_profile(name)
        click.echo(f"{name:20} {p.description}")


@profiles.command("show")
@click.argument("name")
@handle_errors
def show(name: str) -> None:
    """Show a profile (a shipped name or a YAML file) after validation."""
    import yaml

    from privguard.header.profile import load_profile

    p = load_profile(name)
    data = p.model_dump(mode="json")
    data["options"] = sorted(data["options"])
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
