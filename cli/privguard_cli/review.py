"""``privguard review OUT``: rebuild an export's review page."""

from __future__ import annotations

from pathlib import Path

import click

from privguard_cli.errors import handle_errors


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@handle_errors
def review(out: Path) -> None:
    """Rebuild OUT/review/index.html from OUT/review/export.json (one self-contained file)."""
    from privguard.review import build_page

    click.echo(str(build_page(out)))
