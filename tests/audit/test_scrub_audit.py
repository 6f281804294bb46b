"""``privguard scrub`` is audited: a run record, a record per file, the manifest and the signed head."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner
from privguard_cli.main import cli
from study_gen import write_study

from privguard.audit import MANIFEST, verify, verify_delivery
from privguard.audit.verify import iter_records
from privguard.compliance.approval import SigningKey


def _scrub(tmp_path: Path, key_file: Path, out: str, *extra: str) -> tuple[int, str]:
    r = CliRunner().invoke(
        cli,
        [
            "scrub",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / out),
            "--key-file",
            str(key_file),
            "--ocr",
            "off",
            "--workers",
            "1",
            *extra,
        ],
    )
    return r.exit_code, r.output


def test_scrub_writes_audit_records_manifest_and_signed_head(tmp_path: Path, key_file: Path) -> None:
    write_study(tmp_path / "in", series=2, per_series=2)
    (tmp_path / "in" / "notes.txt").write_text("not dicom")
    signing = SigningKey.generate()
    priv, pub = signing.save(tmp_path / "sender")
    code, output = _scrub(tmp_path, key_file, "out", "--signing-key", str(priv), "--operator", "R. Tech")
    assert code == 0, output
    log = Path(os.environ["XDG_STATE_HOME"]) / "privguard" / "audit.jsonl"
    report = verify(log, signing.public_key, heads=(tmp_path / "out" / "AUDIT-HEAD.json",))
    assert report.ok, report.problem
    run = report.runs[-1]
    assert run.command == "scrub" and run.operator == "R. Tech" and run.signature == "valid"
    assert run.statuses == {"ok": 4, "skipped": 1} and run.profile == "basic"
    outs = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.dcm"))
    files = [r for r in iter_records(log) if r["type"] == "file" and r["run"] == run.run]
    assert sorted(r["output"] for r in files if r["output"]) == outs
    assert all(r["actions"] for r in files if r["status"] == "ok")
    manifest = (tmp_path / "out" / MANIFEST).read_text()
    assert [line.split("  ")[1] for line in manifest.splitlines()] == outs
    # the recipient's checks: sha256sum and verify-delivery
    subprocess.run(["sha256sum", "-c", "--quiet", MANIFEST], cwd=tmp_path / "out", check=True)
    assert verify_delivery(tmp_path / "out", pub) == []
    # no PHI of the inputs' paths in the log
    assert str(tmp_path).encode() not in log.read_bytes()


def test_a_changed_delivered_file_is_found(tmp_path: Path, key_file: Path) -> None:
    write_study(tmp_path / "in", series=1, per_series=2)
    code, output = _scrub(tmp_path, key_file, "out")
    assert code == 0, output
    victim = next((tmp_path / "out").rglob("*.dcm"))
    victim.write_bytes(victim.read_bytes() + b"\0\0")
    problems = verify_delivery(tmp_path / "out")
    assert len(problems) == 1 and "differs from the manifest" in problems[0]
    r = CliRunner().invoke(cli, ["audit", "verify-delivery", str(tmp_path / "out")])
    assert r.exit_code == 4


def test_scrub_audit_log_option_and_a_refused_run(tmp_path: Path, key_file: Path) -> None:
    write_study(tmp_path / "in", series=1, per_series=1)
    log = tmp_path / "my-audit.jsonl"
    code, output = _scrub(tmp_path, key_file, "out", "--audit-log", str(log))
    assert code == 0, output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code, output = _scrub(tmp_path, key_file, "full", "--audit-log", str(log))
    assert code == 2 and "not empty" in output
    report = verify(log)
    assert report.ok and [r.outcome for r in report.runs] == ["success", "refused"]
    assert report.runs[1].end is not None and report.runs[1].end["reason"] == "OutputError"


def test_resumed_scrub_records_the_whole_set(tmp_path: Path, key_file: Path) -> None:
    write_study(tmp_path / "in", series=1, per_series=3)
    code, _ = _scrub(tmp_path, key_file, "out")
    assert code == 0
    first = (tmp_path / "out" / MANIFEST).read_bytes()
    code, output = _scrub(tmp_path, key_file, "out", "--resume")
    assert code == 0, output
    assert (tmp_path / "out" / MANIFEST).read_bytes() == first
    log = Path(os.environ["XDG_STATE_HOME"]) / "privguard" / "audit.jsonl"
    report = verify(log, heads=(tmp_path / "out" / "AUDIT-HEAD.json",))
    assert report.ok and report.runs[-1].statuses == {"skipped": 3}
    head = json.loads((tmp_path / "out" / "AUDIT-HEAD.json").read_bytes())
    assert head["run"] == report.runs[-1].run
