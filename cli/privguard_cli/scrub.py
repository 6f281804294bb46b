"""``privguard scrub``: bulk de-identification of folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from privguard_cli.common import SizeParam, audit_options, deid_options
from privguard_cli.errors import handle_errors


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder.")
@deid_options
@click.option(
    "--workers", type=click.IntRange(1, 1024), default=None, help="Worker processes [default: all cores]."
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write one JSON line per input (it holds original paths: keep it at the sender).",
)
@click.option(
    "--report-inside-out",
    is_flag=True,
    help="Allow --report inside --out (the report holds original paths; --out is what gets shared).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an earlier run into the same output folder (same key, profile and options).",
)
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Follow symbolic links inside input folders (default: skip and count them).",
)
@click.option(
    "--max-file-memory",
    type=SizeParam(),
    default="2G",
    show_default=True,
    help="Memory one worker may use for a file beyond its start-up size (e.g. 512M, 4G); "
    "a file that needs more fails.",
)
@click.option(
    "--file-timeout",
    type=click.FloatRange(0),
    default=600,
    show_default=True,
    help="Seconds one file may take in a worker (0: no limit); a slower file fails.",
)
@click.option("--dry-run", is_flag=True, help="Write nothing; show per attribute what would happen.")
@click.option(
    "--ocr",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="Burned-in text: OCR images that triage flags (auto), all images (on), or none (off).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="OCR device.",
)
@click.option(
    "--previews",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write a before/after PNG per redacted image here (for review at the sender).",
)
@click.option(
    "--allowlist",
    "allowlists",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Site allow-list YAML of non-PHI terms kept on images (repeatable; see docs/pixels.md).",
)
@click.option(
    "--executor",
    type=click.Choice(["processes", "ray"]),
    default="processes",
    show_default=True,
    help="Run workers as local processes or on a Ray cluster (shared file system needed).",
)
@click.option("--ray-address", help="Ray cluster address (e.g. auto); default: a local Ray.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@audit_options
@handle_errors
def scrub(
    inputs: tuple[Path, ...],
    out: Path,
    key_file: Path,
    profile: str,
    options: tuple[object, ...],
    project: str,
    vault: Path | None,
    workers: int | None,
    report: Path | None,
    report_inside_out: bool,
    resume: bool,
    follow_symlinks: bool,
    max_file_memory: int,
    file_timeout: float,
    dry_run: bool,
    ocr: str,
    device: str,
    previews: Path | None,
    allowlists: tuple[Path, ...],
    executor: str,
    ray_address: str | None,
    as_json: bool,
    audit_log: Path | None,
    signing_key: Path | None,
    operator: str | None,
) -> None:
    """De-identify the DICOM files under INPUT... into OUT.

    Files are recognised by content; others are skipped and counted. Outputs
    are named OUT/<patient>/<study>/<series>/<instance>.dcm from pseudonymous
    values only. A file that fails (also: its worker died twice, it ran past
    --file-timeout or over --max-file-memory) is reported and the batch goes on.
    One run per output folder at a time (OUT/.privguard/lock).

    \b
    Exit codes:
      0  every DICOM file was de-identified (or done before, with --resume)
      1  some files failed (see the summary or --report)
      2  nothing was done: bad options, key, profile or paths, another run holds the lock
    """
    from privguard.batch import ScrubConfig, load_key, summary_json
    from privguard.deidentifier import PixelOptions
    from privguard_cli.render import ScrubProgress, print_dry_run, print_summary

    load_key(key_file)  # one clear message for a malformed key, before anything else reads it
    cfg = ScrubConfig(
        inputs=list(inputs),
        out=out,
        key=key_file,
        profile=profile,
        options=frozenset(options),
        project=project,
        vault=vault,
        report=report,
        report_inside_out=report_inside_out,
        resume=resume,
        follow_symlinks=follow_symlinks,
        max_file_memory=max_file_memory,
        file_timeout=file_timeout,
        dry_run=dry_run,
        pixels=PixelOptions(ocr=ocr, device=device, previews=previews, allowlist=allowlists),
        executor=executor,
        ray_address=ray_address,
        **({"workers": workers} if workers else {}),
    )
    if dry_run:
        print_dry_run(cfg, as_json=as_json)
        return
    # -- burned-in text (issue 11): warn up front when OCR will run on CPU for many files --
    if ocr != "off":
        from privguard.pixels.advice import cpu_ocr_warning

        advice = cpu_ocr_warning([Path(p) for p in inputs], device, workers)
        if advice:
            click.echo(f"warning: {advice}", err=True)
    # -- end burned-in text --
    quiet = as_json or not sys.stderr.isatty()
    # audit (issue 10): the run, each file, MANIFEST.sha256 and OUT/AUDIT-HEAD.json
    from privguard.audit import audited_scrub

    signer = None
    if signing_key is not None:  # the approval module (cryptography, policy engine) only when signing
        from privguard.compliance.approval import SigningKey

        signer = SigningKey.load(signing_key)
    with ScrubProgress(enabled=not quiet) as progress:
        summary, head = audited_scrub(
            cfg,
            log=audit_log,
            signing_key=signer,
            operator=operator,
            on_result=progress.result,
            on_discovered=progress.discovered,
        )
    if as_json:
        click.echo(json.dumps({**summary_json(summary), "audit": head.to_json()}, indent=2))
    else:
        print_summary(summary)
        signed = f"signed by {head.signed_by}" if head.signed_by else "unsigned (no --signing-key)"
        click.echo(f"audit: run {head.run}, record {head.seq}, head {signed}", err=True)
    if summary.exit_code:
        sys.exit(summary.exit_code)
