"""``privguard inspect``: what de-identification would do to one file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from privguard_cli.common import SizeParam, deid_options
from privguard_cli.errors import handle_errors


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@deid_options
@click.option("--all", "show_all", is_flag=True, help="Also list attributes that are kept unchanged.")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.option(
    "--max-file-memory",
    type=SizeParam(),
    default="2G",
    show_default=True,
    help="Refuse a deflated file that inflates past half of this (a deflate bomb).",
)
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
    max_file_memory: int,
) -> None:
    """Show, per attribute, what de-identifying FILE would do (nothing is written).

    Values are never shown: only tags, keywords, actions and the rule behind each.
    """
    from privguard.batch import load_key
    from privguard.batch.limits import inflated_size_exceeds
    from privguard.deidentifier import inspect_file
    from privguard.errors import InputError

    if inflated_size_exceeds(file, max_file_memory // 2):
        raise InputError(
            f"{file}: the deflated data set inflates to more than half of --max-file-memory "
            "(a deflate bomb?); raise it to inspect this file"
        )
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
