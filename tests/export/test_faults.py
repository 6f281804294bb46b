"""Bad input and faults: each refused with a clear message and exit code, recorded, the log intact."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from privguard.audit import AuditLog, verify
from privguard.compliance.approval import SigningKey
from privguard.errors import AuditIntegrityError, ConfigError, ExportBlocked, OutputError, PrivguardError
from privguard.export import ExportRefused, export
from privguard.pseudonym.keys import ProjectKey

from .support import NOW, PER_STUDY, Setup, approved_setup, run_cli


@pytest.fixture
def setup(tmp_path: Path, key: ProjectKey) -> Setup:
    return approved_setup(tmp_path, key)


def _export(s: Setup, out: str = "out", **kw: object) -> object:
    args: dict[str, object] = {
        "consents": s.consents,
        "ocr": "off",
        "workers": 1,
        "audit_log": s.tmp / "audit.jsonl",
    }
    args.update(kw)
    return export(s.request, s.approval, s.officer_pub, s.key_file, s.inputs, s.tmp / out, **args)  # type: ignore[arg-type]


def _last_run(s: Setup) -> tuple[str, str]:
    report = verify(s.tmp / "audit.jsonl")
    assert report.ok, report.problem
    run = report.runs[-1]
    assert run.end is not None
    return run.outcome, str(run.end["reason"])


def _refused(s: Setup, exc_type: type[PrivguardError], match: str, stage: str, **kw: object) -> None:
    with pytest.raises(exc_type, match=match):
        _export(s, **kw)
    assert not (s.tmp / "out").exists() or not any((s.tmp / "out").rglob("*.dcm"))
    outcome, reason = _last_run(s)
    assert outcome == "refused" and reason.startswith(stage + ":"), reason


def test_missing_approval(setup: Setup) -> None:
    setup.approval.unlink()
    _refused(setup, ConfigError, "approval file .* not found", "approval")


def test_expired_approval(setup: Setup) -> None:
    _refused(setup, ExportBlocked, "expired", "approval", now=NOW + dt.timedelta(days=31))


def test_wrong_key(setup: Setup) -> None:
    _, other = SigningKey.generate().save(setup.tmp / "other")
    setup.officer_pub = other
    _refused(setup, AuditIntegrityError, "signature does not verify", "approval")


def test_edited_approval(setup: Setup) -> None:
    doc = json.loads(setup.approval.read_bytes())
    doc["payload"]["excluded_count"] = 0
    setup.approval.write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    _refused(setup, AuditIntegrityError, "signature does not verify", "approval")


def test_request_edited_after_approval(setup: Setup) -> None:
    doc = yaml.safe_load(setup.request.read_text())
    doc["purpose"]["description"] += " And something else."
    setup.request.write_text(yaml.safe_dump(doc))
    _refused(setup, AuditIntegrityError, "request has changed", "approval")


def test_consents_missing(setup: Setup) -> None:
    _refused(setup, ConfigError, "pass today's records with --consents", "consents", consents=None)
    setup.consents.unlink()
    _refused(setup, ConfigError, "consent", "consents")


def test_consent_withdrawn_since_approval_excludes_the_patient(setup: Setup) -> None:
    doc = yaml.safe_load(setup.consents.read_text())
    rec = next(r for r in doc["records"] if r["patient"] == "DE-P001")
    rec["withdrawn"] = "2026-03-01"
    setup.consents.write_text(yaml.safe_dump(doc))
    result = _export(setup)
    assert result.patients == 3  # type: ignore[attr-defined]
    assert result.not_exported["patient-excluded"] == 3 * PER_STUDY  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("Modality", "MR", "EXPORT-MODALITY"),
        ("BodyPartExamined", "HEAD", "EXPORT-BODY-PART"),
        ("PatientAge", "093Y", "EXPORT-AGE-OVER-89"),
        ("BurnedInAnnotation", "YES", "EXPORT-BURNED-IN"),
    ],
)
def test_contradictions_stop_the_export(setup: Setup, field: str, value: str, rule: str) -> None:
    import pydicom

    victim = setup.inputs[0] / "Zwiebelmann" / "DE-S001-0.dcm"
    ds = pydicom.dcmread(victim)
    setattr(ds, field, value)
    if rule == "EXPORT-BURNED-IN":  # the request must assert NO for the file to contradict it
        doc = yaml.safe_load(setup.request.read_text())
        doc["dataset"]["patients"][0]["studies"][0]["burned_in_annotation"] = "NO"
        setup.request.write_text(yaml.safe_dump(doc))
        from privguard.compliance.approval import approve_request

        setup.approval.unlink()
        approve_request(setup.request, setup.officer, officer="DPO", valid_for=dt.timedelta(days=30),
                        consents=setup.consents, out=setup.approval)  # fmt: skip
    ds.save_as(victim)
    _refused(setup, ExportRefused, rule, "bind")
    assert verify(setup.tmp / "audit.jsonl").runs[-1].end["reason"].endswith(f"({rule})")  # type: ignore[index]


def test_claimed_defacing_without_the_flag_stops_the_export(setup: Setup) -> None:
    import pydicom

    victim = setup.inputs[0] / "Quappenberg" / "DE-S003-1.dcm"
    ds = pydicom.dcmread(victim)
    del ds.RecognizableVisualFeatures
    ds.save_as(victim)
    _refused(setup, ExportRefused, "EXPORT-NOT-DEFACED", "bind")


def test_output_not_empty_without_resume(setup: Setup) -> None:
    (setup.tmp / "out").mkdir()
    (setup.tmp / "out" / "old.txt").write_text("x")
    with pytest.raises(OutputError, match="not empty"):
        _export(setup)
    outcome, reason = _last_run(setup)
    assert outcome == "refused" and reason == "scrub:OutputError"


def test_a_file_failing_mid_export_is_reported_not_hidden(setup: Setup) -> None:
    import pydicom

    # a second input with the same SOP Instance UID and different content: the second one fails
    src = setup.inputs[0] / "Mauerspecht" / "DE-S005-0.dcm"
    ds = pydicom.dcmread(src)
    ds.SeriesDescription = "OTHER"
    ds.save_as(setup.inputs[0] / "Mauerspecht" / "DE-S005-9.dcm")
    result = _export(setup)
    assert result.summary.failed == 1 and result.exit_code == 1  # type: ignore[attr-defined]
    outcome, _ = _last_run(setup)
    assert outcome == "partial"
    page = (setup.tmp / "out" / "review" / "index.html").read_text()
    assert 'class="failed">failed' in page


def test_the_cli_exit_codes(setup: Setup) -> None:
    base = [
        "export", str(setup.request), "--approval", str(setup.approval),
        "--public-key", str(setup.officer_pub), "--key-file", str(setup.key_file),
        "--out", str(setup.tmp / "out"), "--ocr", "off", "--workers", "1",
        "--audit-log", str(setup.tmp / "audit.jsonl"),
    ]  # fmt: skip
    for inp in setup.inputs:
        base += ["--input", str(inp)]
    code, out = run_cli(*base)
    assert code == 2 and "--consents" in out and "Traceback" not in out
    _, other = SigningKey.generate().save(setup.tmp / "other")
    code, out = run_cli(
        *[a if a != str(setup.officer_pub) else str(other) for a in base], "--consents", str(setup.consents)
    )
    assert code == 4 and "signature does not verify" in out
    code, out = run_cli(*base, "--consents", str(setup.consents))
    assert code == 0, out
    code, out = run_cli(*base, "--consents", str(setup.consents))
    assert code == 2 and "not empty" in out
    code, out = run_cli(*base, "--consents", str(setup.consents), "--resume")
    assert code == 0 and f"({5 * PER_STUDY} from an earlier run)" in out


def test_deleted_or_truncated_log_stops_the_next_export(setup: Setup) -> None:
    _export(setup)
    log = setup.tmp / "audit.jsonl"
    rows = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(rows[:-2]))
    with pytest.raises(AuditIntegrityError, match="truncated"):
        _export(setup, out="out2")
    log.unlink()
    with pytest.raises(AuditIntegrityError, match="missing"):
        _export(setup, out="out2")
    assert not (setup.tmp / "out2").exists()


def _export_with_small_disk(s: Setup, limit: int, conn: object) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        result = _export(s)
        conn.send(("done", result.summary.failed, result.head.outcome))  # type: ignore[attr-defined]
    except PrivguardError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))  # type: ignore[attr-defined]


def test_disk_full_by_file_size_limit(setup: Setup) -> None:
    """A file-size limit (writes fail as on a full disk, the log's too): never a false success."""
    AuditLog.open(setup.tmp / "audit.jsonl").close()
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    size = (setup.inputs[0] / "Zwiebelmann" / "DE-S001-0.dcm").stat().st_size
    p = ctx.Process(target=_export_with_small_disk, args=(setup, 3 * size, child))
    p.start()
    p.join(120)
    got = parent.recv()
    assert got[0] == "error" or (got[1] > 0 and got[2] == "partial"), got
    report = verify(setup.tmp / "audit.jsonl")
    assert report.ok, report.problem  # whatever was written is whole records
    assert all(r.outcome != "success" for r in report.runs)


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return r.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_on_a_small_tmpfs(setup: Setup) -> None:
    small = setup.tmp / "small"
    if not _mount_tmpfs(small, "24k"):
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        with pytest.raises(PrivguardError) as info:
            result = _export(setup, out="small/out")
            assert result.summary.failed > 0 and result.head.outcome == "partial"  # type: ignore[attr-defined]
            raise OutputError("partial")  # files failed for lack of space: reported, not hidden
        assert "no space" in str(info.value).lower() or str(info.value) == "partial", info.value
        report = verify(setup.tmp / "audit.jsonl")
        assert report.ok, report.problem
        assert report.runs[-1].outcome in ("failed", "partial")
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_request_draft_refuses_to_overwrite_and_needs_dicom(setup: Setup) -> None:
    draft = setup.tmp / "draft.yaml"
    code, out = run_cli("request", "draft", "--input", str(setup.inputs[0]), "--out", str(draft))
    assert code == 0, out
    first = draft.read_bytes()
    code, out = run_cli("request", "draft", "--input", str(setup.inputs[0]), "--out", str(draft))
    assert code == 2 and "already exists" in out and draft.read_bytes() == first
    empty = setup.tmp / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    code, out = run_cli("request", "draft", "--input", str(empty), "--out", str(setup.tmp / "d2.yaml"))
    assert code == 2 and "no readable DICOM file" in out and not (setup.tmp / "d2.yaml").exists()
