"""``privguard audit``: verify, show and export the audit log."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from privguard_cli.errors import handle_errors

LOG_HELP = "The audit log (default: $PRIVGUARD_AUDIT_LOG, else $XDG_STATE_HOME/privguard/audit.jsonl)."


def _log_path(log: Path | None) -> Path:
    from privguard.audit import default_log_path

    return log if log is not None else default_log_path()


@click.group()
def audit() -> None:
    """Verify, list and export the audit log of de-identified outputs."""


@audit.command()
@click.argument("log", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Every signed run head must verify with this key (privguard keys new-signing makes it).",
)
@click.option(
    "--head",
    "heads",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An AUDIT-HEAD.json of a delivered folder that must match the log (repeatable).",
)
@click.option("--require-signed", is_flag=True, help="Fail on runs whose head is unsigned.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def verify(
    log: Path | None, public_key: Path | None, heads: tuple[Path, ...], require_signed: bool, as_json: bool
) -> None:
    """Check the whole hash chain and every signed run head of LOG.

    \b
    Exit codes:
      0  the chain and every signature hold
      4  damage: the first bad record position is named
      2  the log or a key cannot be read
    """
    from privguard.audit import verify as run_verify

    report = run_verify(_log_path(log), public_key, heads=heads, require_signed=require_signed)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        signed = sum(r.signature == "valid" for r in report.runs)
        unsigned = sum(r.signature == "unsigned" and r.end is not None for r in report.runs)
        if report.ok:
            click.echo(
                f"OK: {report.records} records, {len(report.runs)} runs "
                f"({signed} with a valid signed head, {unsigned} unsigned)"
            )
        else:
            click.echo(f"DAMAGED at record {report.bad_position}: {report.problem}", err=True)
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
    if not report.ok:
        sys.exit(4)


@audit.command()
@click.argument("log", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run", "run_id", help="Show the files of this run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@handle_errors
def show(log: Path | None, run_id: str | None, as_json: bool) -> None:
    """List the runs of LOG, or the files of one run (--run ID)."""
    from rich.console import Console
    from rich.table import Table

    from privguard.audit import iter_records
    from privguard.audit import verify as run_verify

    path = _log_path(log)
    report = run_verify(path)
    if not report.ok:
        click.echo(f"warning: the log is damaged at record {report.bad_position}: {report.problem}", err=True)
    console = Console(width=None if sys.stdout.isatty() else 240)
    if run_id is None:
        rows: list[dict[str, Any]] = [
            {
                "type": "run",
                "position": r.position,
                "run": r.run,
                "time": r.time,
                "command": r.command,
                "user": r.user,
                "operator": r.operator,
                "profile": r.profile,
                "files": r.files,
                "outcome": r.outcome,
                "head": r.signature,
                **r.details,
            }
            for r in report.runs
        ]
        recoveries = [
            {
                "type": "recovery",
                "position": c.position,
                "run": None,
                "time": c.time,
                "after_seq": c.after_seq,
                "removed_bytes": c.removed_bytes,
            }
            for c in report.recoveries
        ]
        if as_json:
            click.echo(json.dumps(sorted(rows + recoveries, key=lambda row: int(row["position"])), indent=2))
            return
        table = Table(title=f"runs in {path}")
        cols = ("run", "time", "command", "user", "operator", "profile", "files", "outcome", "head")
        for col in cols:
            table.add_column(col)
        for row in rows:
            table.add_row(*(str(row[c]) if row[c] is not None else "-" for c in cols))
        console.print(table)
        if recoveries:
            rec_table = Table(title="crash recoveries (torn records cut off; nothing synced was lost)")
            for col in ("position", "time", "after_seq", "removed_bytes"):
                rec_table.add_column(col)
            for c in recoveries:
                rec_table.add_row(
                    str(c["position"]), str(c["time"]), str(c["after_seq"]), str(c["removed_bytes"])
                )
            console.print(rec_table)
        return
    files: list[dict[str, Any]] = [
        {k: rec.get(k) for k in ("seq", "output", "output_sha256", "status", "code", "actions", "pixels")}
        for rec in iter_records(path)
        if rec.get("type") == "file" and rec.get("run") == run_id
    ]
    if not any(r.run == run_id for r in report.runs):
        from privguard.errors import ConfigError

        raise ConfigError(f"run {run_id} is not in the log")
    if as_json:
        click.echo(json.dumps(files, indent=2))
        return
    table = Table(title=f"files of run {run_id}")
    for col in ("seq", "output", "status", "code", "actions", "pixels"):
        table.add_column(col)
    for f in files:
        actions = " ".join(f"{k}:{v}" for k, v in (f["actions"] or {}).items())
        pixels = " ".join(f"{k}={v}" for k, v in (f["pixels"] or {}).items())
        table.add_row(str(f["seq"]), str(f["output"] or "-"), f["status"], f["code"], actions, pixels or "-")
    console.print(table)


@audit.command(name="export")
@click.argument("log", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["fhir", "atna"]), required=True)
@click.option("--run", "run_id", help="Only this run.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@handle_errors
def export_(log: Path | None, fmt: str, run_id: str | None, out: Path | None) -> None:
    """Export the runs of LOG as FHIR R4 AuditEvents (a Bundle) or DICOM PS3.15 A.5 messages (XML).

    The log is verified first; a damaged log is not exported (exit 4).
    """
    from privguard.audit import verify as run_verify
    from privguard.audit.interop import atna_messages, fhir_bundle
    from privguard.errors import AuditIntegrityError

    report = run_verify(_log_path(log))
    if not report.ok:
        raise AuditIntegrityError(
            f"the log is damaged at record {report.bad_position} ({report.problem}); not exported"
        )
    if fmt == "fhir":
        data = (json.dumps(fhir_bundle(report, run_id), indent=2) + "\n").encode()
    else:
        data = b"".join(m + b"\n" for m in atna_messages(report, run_id))
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)


@audit.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--log", type=click.Path(dir_okay=False, path_type=Path), help=LOG_HELP)
@click.option(
    "--key-file", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Project key."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def find(files: tuple[Path, ...], log: Path | None, key_file: Path, as_json: bool) -> None:
    """At the sender: find the records of local FILES (by keyed path or content hash; needs the key)."""
    from dataclasses import asdict

    from privguard.audit.lookup import find as run_find
    from privguard.pseudonym.keys import ProjectKey

    matches = run_find(_log_path(log), ProjectKey.load(key_file), list(files))
    if as_json:
        click.echo(json.dumps([asdict(m) for m in matches], indent=2))
        return
    for m in matches:
        click.echo(f"{m.file}: record {m.seq}, run {m.run}, {m.status}, output {m.output or '-'} (by {m.by})")
    if not matches:
        click.echo("no records of these files", err=True)
        sys.exit(1)


@audit.command(name="verify-delivery")
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--public-key", type=click.Path(dir_okay=False, path_type=Path), help="The sender's public key."
)
@handle_errors
def verify_delivery(folder: Path, public_key: Path | None) -> None:
    """At the recipient: check FOLDER against its MANIFEST.sha256 and signed AUDIT-HEAD.json.

    Exit 0 when every file matches, 4 on any difference.
    """
    from privguard.audit import verify_delivery as run

    problems = run(folder, public_key)
    for p in problems:
        click.echo(f"DAMAGED: {p}", err=True)
    if problems:
        sys.exit(4)
    click.echo("OK: every file matches the manifest, and the manifest matches the run head")
