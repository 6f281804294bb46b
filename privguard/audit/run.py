"""Audited runs: ``scrub`` with a record per file, the manifest and the signed head.

:func:`audited_scrub` is what ``privguard scrub`` runs: it opens the log,
writes the run record, hands every result of :func:`privguard.batch.scrub`
to the log's writer, writes ``OUT/MANIFEST.sha256``, ends the run (signed
when a signing key is given; fsync'd) and writes ``OUT/AUDIT-HEAD.json``.
A run refused before any file was touched still gets its run and end
records (outcome ``refused``, the error class as reason: messages can hold
paths, which are PHI).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privguard.audit.log import AuditLog, RunHead
from privguard.audit.manifest import write_head, write_manifest
from privguard.errors import PrivguardError

if TYPE_CHECKING:
    from privguard.batch import ScrubConfig, ScrubSummary
    from privguard.compliance.approval import SigningKey
    from privguard.models import FileResult


def summary_counts(summary: ScrubSummary) -> dict[str, int]:
    """Per-run counts for the end record: files by status, then attributes by action."""
    counts = {
        "total": summary.total,
        "ok": summary.ok,
        "skipped": summary.skipped,
        "failed": summary.failed,
        "not_dicom": summary.not_dicom,
        "resumed": summary.resumed,
    }
    counts.update({f"action.{k}": v for k, v in sorted(summary.counts.items())})
    return counts


def open_log(log: AuditLog | str | Path | None) -> tuple[AuditLog, bool]:
    """The log to write to, and whether this call opened it (and must close it)."""
    if isinstance(log, AuditLog):
        return log, False
    return AuditLog.open(log), True


def scrub_into_run(
    audit: AuditLog,
    config: ScrubConfig,
    *,
    on_result: Callable[[FileResult], None] | None = None,
    on_discovered: Callable[[int], None] | None = None,
    scrub_fn: Callable[..., ScrubSummary] | None = None,
) -> tuple[ScrubSummary, str]:
    """Scrub into the log's open run: a record per file, then ``OUT/MANIFEST.sha256``.

    Returns the summary and the manifest's SHA-256; the caller ends the run.
    """
    from privguard.batch import scrub

    def record(res: FileResult) -> None:
        audit.file_result(res, config.out)
        if on_result is not None:
            on_result(res)

    if audit.worker_digests and not config.digests:
        config = config.model_copy(update={"digests": True})
    summary = (scrub_fn or scrub)(config, on_result=record, on_discovered=on_discovered)
    outputs = audit.flush()
    return summary, write_manifest(config.out, outputs)


def audited_scrub(
    config: ScrubConfig,
    *,
    log: AuditLog | str | Path | None = None,
    signing_key: SigningKey | None = None,
    operator: str | None = None,
    command: str = "scrub",
    details: Mapping[str, Any] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    on_discovered: Callable[[int], None] | None = None,
    scrub_fn: Callable[..., ScrubSummary] | None = None,
) -> tuple[ScrubSummary, RunHead]:
    """Run :func:`privguard.batch.scrub` with an audit record per file; see the module docstring.

    ``scrub_fn`` replaces the scrub function (the benchmark passes a no-op sink's twin).
    Raises what ``scrub`` raises (after recording the refusal), and
    :class:`~privguard.errors.OutputError` when the log cannot be written.
    """
    from privguard.header.profile import load_profile
    from privguard.pseudonym.keys import ProjectKey

    if config.dry_run:
        raise ValueError("a dry run writes nothing and is not audited; call privguard.batch.scrub")
    key = config.key if isinstance(config.key, ProjectKey) else ProjectKey.load(config.key)
    profile = load_profile(config.profile)
    if config.options:
        profile = profile.with_options(set(config.options))
    audit, owned = open_log(log)
    try:
        audit.begin_run(
            command=command,
            key=key,
            project=config.project,
            profile=profile,
            operator=operator,
            inputs=config.inputs,
            out=config.out,
            details=details,
        )
        try:
            summary, manifest = scrub_into_run(
                audit, config, on_result=on_result, on_discovered=on_discovered, scrub_fn=scrub_fn
            )
        except PrivguardError as exc:
            with contextlib.suppress(PrivguardError):  # the log itself may be what failed
                outcome = "refused" if audit_files(audit) == 0 else "failed"
                audit.end_run(outcome=outcome, reason=type(exc).__name__)
            raise
        head = audit.end_run(
            outcome="success" if summary.failed == 0 else "partial",
            counts=summary_counts(summary),
            manifest_sha256=manifest,
            signing_key=signing_key,
        )
        write_head(config.out, head)
        return summary, head
    finally:
        if owned:
            audit.close()


def audit_files(log: AuditLog) -> int:
    """How many file records the open run holds so far."""
    run = log._run
    return run.files if run is not None else 0
