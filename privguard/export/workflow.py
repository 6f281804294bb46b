"""The governed export: approval, today's check, binding, scrub, manifest, audit, review page.

:func:`export` runs, in order (each refusal is recorded in the audit log as a
run with outcome ``refused`` and a reason code, then raised):

1. ``approval``: :func:`~privguard.compliance.verify_approval` (signature,
   key, request hash, validity window);
2. ``consents``: an approval made with consent records needs today's records;
3. ``check``: the policy check again, with today's consents; a ``deny``
   stops the export, and only patients on both today's inclusion list and the
   approval's are exported;
4. ``profile``: the profile the request names must hash to the one approved;
5. ``bind``: files to the request's patients and studies
   (:mod:`privguard.export.bind`); contradictions stop the export;
6. ``scrub``: the bound files, with the approved profile, an audit record per
   file, ``OUT/MANIFEST.sha256``, the run's end record (signed with
   ``signing_key``) and ``OUT/AUDIT-HEAD.json``;
7. ``review``: ``OUT/review/`` (export.json, before/after images, index.html).

An export killed at any point and run again with ``resume=True`` produces the
same DICOM files and manifest, byte for byte; the killed run stays in the log
as ``interrupted``, and the log verifies.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privguard._version import __version__
from privguard.audit.log import AuditLog, RunHead, keyed, now_text
from privguard.audit.manifest import write_atomic_bytes, write_head
from privguard.audit.run import audit_files, scrub_into_run, summary_counts
from privguard.errors import AuditIntegrityError, ConfigError, ExportBlocked, PrivguardError

if TYPE_CHECKING:
    from privguard.batch import ScrubSummary
    from privguard.compliance.approval import ApprovalPayload, PublicKey, SigningKey
    from privguard.compliance.decision import Decision
    from privguard.compliance.request import ExportRequest
    from privguard.export.bind import Bound
    from privguard.models import FileResult
    from privguard.pseudonym.keys import ProjectKey


class ExportRefused(ExportBlocked):
    """The export was refused before any file was written (exit 3)."""


@dataclass
class ExportResult:
    """What an export did (no PHI)."""

    summary: ScrubSummary
    head: RunHead
    decision: Decision
    approval_id: str
    files_bound: int
    patients: int
    studies: int
    not_exported: dict[str, int]
    review: Path | None
    images: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.summary.failed else 0


def _project_of(request_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.:-]", "-", request_id).lstrip("-_.:")[:64]
    return name or "export"


def _profile_ref(ref: str, base_dir: Path) -> str | Path:
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        path = Path(ref)
        return path if path.is_absolute() else base_dir / path
    return ref


class _Stage:
    """The step the export is in: it names the reason code of a refusal."""

    def __init__(self) -> None:
        self.name = "start"
        self.rules: tuple[str, ...] = ()

    def __call__(self, name: str) -> None:
        self.name = name

    def reason(self, exc: PrivguardError) -> str:
        code = f"{self.name}:{type(exc).__name__}"
        return code + (f" ({', '.join(self.rules)})" if self.rules else "")


def export(
    request: str | Path,
    approval: str | Path,
    public_key: PublicKey | str | Path,
    key: ProjectKey | str | Path,
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    consents: str | Path | None = None,
    audit_log: AuditLog | str | Path | None = None,
    workers: int | None = None,
    resume: bool = False,
    signing_key: SigningKey | None = None,
    operator: str | None = None,
    vault: str | Path | None = None,
    project: str | None = None,
    ocr: str = "auto",
    device: str = "auto",
    executor: str = "processes",
    now: dt.datetime | None = None,
    on_result: Callable[[FileResult], None] | None = None,
    review: bool = True,
) -> ExportResult:
    """Run an approved export; see the module docstring for the steps.

    ``executor`` is the batch executor (``processes``, ``inline``, ``ray``); the
    other options are those of ``privguard export``.

    Raises
    ------
    AuditIntegrityError
        The approval or request was changed, or is signed by another key (exit 4).
    ExportBlocked
        Expired approval, today's check denies, contradictions, nothing to export (exit 3).
    ConfigError
        Missing files, consents needed, output folder not empty without resume (exit 2).
    """
    from privguard.pseudonym.keys import ProjectKey

    request_path, out = Path(request), Path(out)
    pkey = key if isinstance(key, ProjectKey) else ProjectKey.load(key)
    key_file = None if isinstance(key, ProjectKey) else Path(key)
    audit, owned = (audit_log, False) if isinstance(audit_log, AuditLog) else (AuditLog.open(audit_log), True)
    stage = _Stage()
    details: dict[str, Any] = {}
    try:
        audit.begin_run(
            command="export",
            key=pkey,
            project=project or "default",
            operator=operator,
            inputs=[Path(p) for p in inputs],
            out=out,
            details={"request_file_sha256": _file_sha(request_path)},
        )
        try:
            return _run(
                audit, stage, details, request_path, approval, public_key, pkey, key_file, inputs, out,
                consents=consents, workers=workers, resume=resume, signing_key=signing_key, vault=vault,
                project=project, ocr=ocr, device=device, executor=executor, now=now, on_result=on_result,
                review=review,
            )  # fmt: skip
        except PrivguardError as exc:
            if audit.run_id is not None:
                outcome = "failed" if audit_files(audit) else "refused"
                with contextlib.suppress(PrivguardError):  # the log itself failed: the error says more
                    audit.end_run(outcome=outcome, reason=stage.reason(exc), details=details)
            raise
    finally:
        if owned:
            audit.close()


def _file_sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _run(
    audit: AuditLog,
    stage: _Stage,
    details: dict[str, Any],
    request_path: Path,
    approval: str | Path,
    public_key: PublicKey | str | Path,
    pkey: ProjectKey,
    key_file: Path | None,
    inputs: Sequence[str | Path],
    out: Path,
    *,
    consents: str | Path | None,
    workers: int | None,
    resume: bool,
    signing_key: SigningKey | None,
    vault: str | Path | None,
    project: str | None,
    ocr: str,
    device: str,
    executor: str,
    now: dt.datetime | None,
    on_result: Callable[[FileResult], None] | None,
    review: bool,
) -> ExportResult:
    from privguard.batch import ScrubConfig, iter_files
    from privguard.compliance import check, load_consents, load_request, verify_approval
    from privguard.compliance.canonical import profile_fingerprint
    from privguard.deidentifier import PixelOptions
    from privguard.export.bind import bind
    from privguard.header.profile import load_profile

    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stage("request")
    req = load_request(request_path)
    details.update(
        request_id=req.request_id, recipient=f"{req.recipient.organisation} ({req.recipient.country})"
    )
    stage("approval")
    payload = verify_approval(req, approval, public_key, now=now)
    details.update(
        request_sha256=payload.request_sha256, approval_id=payload.approval_id, approval_key_id=payload.key_id
    )
    stage("consents")
    consent_set = None
    if consents is not None:
        consent_set = load_consents(consents)
    elif payload.consents_sha256 is not None:
        raise ConfigError(
            "the approval was given with consent records: pass today's records with --consents, so that "
            "a consent withdrawn since then stops that patient"
        )
    stage("check")
    decision = check(req, consent_set, now=now, base_dir=request_path.parent)
    details.update(decision=decision.outcome, consent_snapshot=decision.consent_snapshot)
    if decision.outcome == "deny":
        stage.rules = tuple(sorted(decision.rule_ids("deny")))
        raise ExportRefused(
            f"today's check denies this export ({', '.join(stage.rules)}); nothing was exported"
        )
    if decision.outcome == "needs_review" and not (payload.decision == "needs_review" and payload.reviewed):
        stage.rules = tuple(sorted(decision.rule_ids("review")))
        raise ExportRefused(
            f"today's check needs review ({', '.join(stage.rules)}), which the approval did not cover; "
            "ask the privacy officer for a new approval"
        )
    stage("profile")
    profile_ref = _profile_ref(req.deid_profile, request_path.parent)
    profile = load_profile(profile_ref)
    if profile_fingerprint(profile) != payload.deid_profile.sha256:
        raise AuditIntegrityError(
            f"the de-identification profile {profile.name} has changed since the approval "
            "(its hash does not match the approved one); ask for a new approval"
        )
    included = set(decision.inclusion.included) & set(payload.included_patients)
    stage("bind")
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.exists():
            raise ConfigError(f"input {p} does not exist")
    bound = bind(req, included, iter_files(paths))
    if bound.contradictions:
        stage.rules = tuple(c.rule_id for c in bound.contradictions)
        lines = "; ".join(
            f"{c.rule_id}: {c.message} ({c.files} files, {c.studies} studies)" for c in bound.contradictions
        )
        raise ExportRefused(
            f"the files contradict the approved request, so the approval does not cover them: {lines}"
        )
    if not bound.files:
        raise ExportRefused("no input file belongs to the approved request's included patients and studies")
    stage("scrub")
    lookup = pkey.derive("audit", "lookup")
    cfg = ScrubConfig(
        inputs=bound.files,
        out=out,
        key=key_file if key_file is not None else pkey,
        profile=profile,
        project=project or _project_of(req.request_id),
        vault=Path(vault) if vault is not None else None,
        resume=resume,
        pixels=PixelOptions(ocr=ocr, device=device),
        executor=executor,
        **({"workers": workers} if workers else {}),
    )
    details["pseudonym_project"] = cfg.project
    results: list[FileResult] = []

    def collect(res: FileResult) -> None:
        results.append(res)
        if on_result is not None:
            on_result(res)

    _preload_text_libraries()
    summary, manifest_sha = scrub_into_run(audit, cfg, on_result=collect)
    excluded = _excluded_patients(decision, payload, lookup)
    not_exported = dict(sorted(bound.excluded.items()))
    counts = {
        **summary_counts(summary),
        "files_bound": len(bound.files),
        "patients": len(bound.patients),
        "studies": len(bound.studies),
        "patients_excluded": len(excluded),
        **{f"not_exported.{k}": v for k, v in not_exported.items()},
    }
    stage("end")
    head = audit.end_run(
        outcome="success" if summary.failed == 0 else "partial",
        counts=counts,
        manifest_sha256=manifest_sha,
        signing_key=signing_key,
        details=details,
    )
    write_head(out, head)
    page, images = None, 0
    if review:
        page, images = write_review(
            out, audit, req, payload, decision, bound, summary, results, excluded, not_exported, head, lookup
        )
    return ExportResult(
        summary=summary,
        head=head,
        decision=decision,
        approval_id=payload.approval_id,
        files_bound=len(bound.files),
        patients=len(bound.patients),
        studies=len(bound.studies),
        not_exported=not_exported,
        review=page,
        images=images,
    )


def _preload_text_libraries() -> None:
    """Import presidio once here, before the workers start.

    Workers no longer cap their address space: the batch memory ceiling is the
    driver's resident-memory watchdog (:class:`privguard.batch.limits.MemoryCeiling`),
    so a late import cannot fail. The preload is kept for speed: a forked worker
    (no OCR) inherits the loaded module and shares its pages, instead of each
    worker importing it (seconds of CPU, about 0.6 GB resident each), and its
    watchdog counts it in the baseline measured when the worker is ready.
    Spawned workers (OCR) import it themselves; for them this changes nothing.
    """
    with contextlib.suppress(ImportError):
        import presidio_analyzer  # noqa: F401


def _excluded_patients(decision: Decision, payload: ApprovalPayload, lookup: bytes) -> list[dict[str, Any]]:
    """Patients left out, by keyed pseudonym (``pt-`` + 12 hex) and the rule ids that excluded them."""
    reasons: dict[str, list[str]] = {e.patient: list(e.rules) for e in decision.inclusion.excluded}
    approved = set(payload.included_patients)
    for pid in decision.inclusion.included:
        if pid not in approved:
            reasons.setdefault(pid, []).append("not-in-approval")
    return sorted(
        (
            {"pseudonym": "pt-" + keyed(lookup, "patient", pid)[:12], "reasons": r}
            for pid, r in reasons.items()
        ),
        key=lambda e: str(e["pseudonym"]),
    )


def write_review(
    out: Path,
    audit: AuditLog,
    req: ExportRequest,
    payload: ApprovalPayload,
    decision: Decision,
    bound: Bound,
    summary: ScrubSummary,
    results: list[FileResult],
    excluded: list[dict[str, Any]],
    not_exported: dict[str, int],
    head: RunHead,
    lookup: bytes,
) -> tuple[Path, int]:
    """Write ``OUT/review/`` (export.json, images/, index.html); return the page and the image count."""
    from privguard.audit.chain import canonical
    from privguard.audit.log import _code, _pixels
    from privguard.audit.manifest import MANIFEST
    from privguard.compliance.canonical import fingerprint
    from privguard.review import REVIEW_DIR, build_page

    review = out / REVIEW_DIR
    images = []
    for res in results:
        px = res.pixels or {}
        if res.status != "ok" or not res.output or not px.get("boxes_redacted"):
            continue
        try:
            from privguard.review.images import render_pair

            pair = render_pair(Path(res.input), out / res.output)
        except Exception:
            pair = None
        if pair is None:
            continue
        name = hashlib.sha256(res.output.encode()).hexdigest()[:16]
        write_atomic_bytes(review / "images" / f"{name}-before.png", pair[0])
        write_atomic_bytes(review / "images" / f"{name}-after.png", pair[1])
        images.append(
            {
                "output": res.output,
                "boxes": pair[2],
                "before": f"images/{name}-before.png",
                "after": f"images/{name}-after.png",
            }
        )
    manifest_lines = (out / MANIFEST).read_bytes().count(b"\n")
    files = sorted(
        (
            {
                "output": r.output,
                "input": keyed(lookup, "path", str(Path(r.input).resolve())) if r.output is None else None,
                "status": r.status,
                "code": _code(r.status, r.reason),
                "actions": dict(r.counts),
                "pixels": _pixels(r.pixels),
            }
            for r in results
        ),
        key=lambda f: (str(f["output"] or ""), str(f["input"] or "")),
    )
    data = {
        "format": "privguard-export-review",
        "v": 1,
        "software": f"privguard {__version__}",
        "written": now_text(),
        "request": {
            "id": req.request_id,
            "sha256": payload.request_sha256,
            "recipient": f"{req.recipient.organisation} ({req.recipient.country})",
            "purpose": req.purpose.description,
            "regimes": list(decision.regimes),
            "profile": {"name": payload.deid_profile.name, "sha256": payload.deid_profile.sha256},
        },
        "approval": {
            "id": payload.approval_id,
            "officer": payload.officer,
            "key_id": payload.key_id,
            "approved_at": payload.approved_at.isoformat(),
            "expires_at": payload.expires_at.isoformat(),
            "decision": payload.decision,
        },
        "decision": {
            "outcome": decision.outcome,
            "sha256": fingerprint(decision),
            "consent_snapshot": decision.consent_snapshot,
            "findings": [
                {"rule_id": f.rule_id, "severity": f.severity, "citation": f.citation, "message": f.message}
                for f in decision.findings
            ],
        },
        "counts": {
            "ok": summary.ok,
            "resumed": summary.resumed,
            "failed": summary.failed,
            "patients": len(bound.patients),
            "studies": len(bound.studies),
            "not_exported": not_exported,
        },
        "excluded_patients": excluded,
        "manifest": {"sha256": head.manifest_sha256, "files": manifest_lines},
        "audit": {**head.to_json(), "log": audit.log_id},
        "images": images,
        "files": files,
    }
    write_atomic_bytes(review / "export.json", canonical(data) + b"\n")
    return build_page(out), len(images)
