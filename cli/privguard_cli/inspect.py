"""``privguard inspect``: what de-identification would do to one file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from privguard_cli.common import deid_options
from privguard_cli.errors import handle_errors


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@deid_options
@click.option("--all", "show_all", is_flag=True, help="Also list attributes that are kept unchanged.")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@handle_errors
def inspect(
    file: Path,
    key_file: Path,
    profile: str,
    options: tuple[object, ...],
    project: str,
    vault: Path | None,
    show_all: bool,
    as_json: bool,
) -> None:
    """Show, per attribute, what de-identifying FILE would do (nothing is written).

    Values are never shown: only tags, keywords, actions and the rule behind each.
    """
    from privguard.batch import load_key
    from privguard.deidentify import inspect_file
    from privguard_cli.render import print_record

    rel, record = inspect_file(
        file,
        profile,
        load_key(key_file),
        project=project,
        vault=vault,
        options=set(options),  # type: ignore[arg-type]
    )
    if as_json:
        click.echo(json.dumps({"output": rel, **record.model_dump()}, indent=2))
        return
    print_record(rel, record, show_all=show_all)
