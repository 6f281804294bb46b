"""``privguard export``: run an approved export."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from privguard_cli.common import audit_options
from privguard_cli.errors import handle_errors


@click.command()
@click.argument("request", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--approval", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The signed approval."
)
@click.option(
    "--public-key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The privacy officer's public key (OFFICER.pub).",
)
@click.option(
    "--key-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Project key (mode 0600) for pseudonyms and the audit log's keyed hashes.",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="A folder or file to take the request's files from (repeatable).",
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@click.option(
    "--consents",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Today's consent records (required when the approval was given with consents).",
)
@audit_options
@click.option(
    "--vault", type=click.Path(dir_okay=False, path_type=Path), help="Token vault (random pseudonyms)."
)
@click.option("--project", help="Pseudonym project [default: the request id].")
@click.option(
    "--workers", type=click.IntRange(1, 1024), default=None, help="Worker processes [default: all cores]."
)
@click.option("--resume", is_flag=True, help="Continue an interrupted export into the same folder.")
@click.option(
    "--ocr",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Burned-in text.",
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@handle_errors
def export(
    request: Path,
    approval: Path,
    public_key: Path,
    key_file: Path,
    inputs: tuple[Path, ...],
    out: Path,
    consents: Path | None,
    audit_log: Path | None,
    signing_key: Path | None,
    operator: str | None,
    vault: Path | None,
    project: str | None,
    workers: int | None,
    resume: bool,
    ocr: str,
    device: str,
    as_json: bool,
) -> None:
    """Export what an approved REQUEST covers: verify, check again, bind, scrub, record, review.

    Verifies the approval against the officer's public key, re-runs the check
    with today's consents, takes from the inputs only the files of the
    request's included patients and studies (others are counted, never named),
    stops if the files contradict the request, scrubs them with the approved
    profile, and writes OUT/MANIFEST.sha256, OUT/AUDIT-HEAD.json and
    OUT/review/index.html. Every run, refused or not, is in the audit log.

    \b
    Exit codes:
      0  exported
      1  exported, but some files failed (see the summary and the review page)
      2  a file, key or option is missing or invalid; output folder not empty without --resume
      3  refused: approval expired, today's check denies, the files contradict the request
      4  refused: the approval or request was changed, or signed by another key
    """
    from privguard.compliance.approval import SigningKey
    from privguard.export import export as run_export

    signer = SigningKey.load(signing_key) if signing_key is not None else None
    result = run_export(
        request,
        approval,
        public_key,
        key_file,
        list(inputs),
        out,
        consents=consents,
        audit_log=audit_log,
        workers=workers,
        resume=resume,
        signing_key=signer,
        operator=operator,
        vault=vault,
        project=project,
        ocr=ocr,
        device=device,
    )
    s = result.summary
    if as_json:
        doc = {
            "outcome": result.head.outcome,
            "approval_id": result.approval_id,
            "decision": result.decision.outcome,
            "files_bound": result.files_bound,
            "patients": result.patients,
            "studies": result.studies,
            "ok": s.ok,
            "resumed": s.resumed,
            "failed": s.failed,
            "not_exported": result.not_exported,
            "review": str(result.review) if result.review else None,
            "audit": result.head.to_json(),
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(
            f"exported {s.ok + s.resumed} files ({s.resumed} from an earlier run) of "
            f"{result.patients} patients, {result.studies} studies; {s.failed} failed"
        )
        for reason, n in result.not_exported.items():
            click.echo(f"not exported: {n} files ({reason})")
        signed = (
            f"signed by {result.head.signed_by}" if result.head.signed_by else "unsigned (no --signing-key)"
        )
        click.echo(f"audit: run {result.head.run}, record {result.head.seq}, head {signed}")
        if result.review:
            click.echo(f"review page: {result.review}")
    if result.exit_code:
        sys.exit(result.exit_code)
