"""End to end: request draft -> check -> approve -> export, on generated data with planted PHI."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from privguard.audit import verify
from privguard.audit.manifest import MANIFEST
from privguard.pseudonym.keys import ProjectKey

from .support import CONSENTS, INCLUDED, PATIENTS, PER_STUDY, REQUEST, run_cli, write_cohort, write_strays


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("e2e")
    state = tmp / "state"
    saved = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(state)  # a module fixture cannot use monkeypatch
    try:
        yield _run_e2e(tmp, state)
    finally:
        if saved is None:
            os.environ.pop("XDG_STATE_HOME", None)
        else:
            os.environ["XDG_STATE_HOME"] = saved


def _run_e2e(tmp: Path, state: Path) -> dict[str, Any]:
    tokens = write_cohort(tmp / "pacs")
    write_strays(tmp / "other")
    shutil.copy(CONSENTS, tmp / "consents.yaml")
    key = ProjectKey.generate()
    key.save(tmp / "project.key")
    code, out = run_cli("keys", "new-signing", "--out", str(tmp / "officer"))
    assert code == 0, out
    code, out = run_cli("keys", "new-signing", "--out", str(tmp / "sender"))
    assert code == 0, out
    # 0. an ordinary scrub run goes into the same log
    code, out = run_cli(
        "scrub", str(tmp / "other"), "--out", str(tmp / "scrubbed"), "--key-file", str(tmp / "project.key"),
        "--ocr", "off", "--workers", "1",
    )  # fmt: skip
    assert code == 0, out
    # 1. draft the request from the files, keeping the example's other sections
    code, out = run_cli(
        "request",
        "draft",
        "--input",
        str(tmp / "pacs"),
        "--out",
        str(tmp / "request.yaml"),
        "--from",
        str(REQUEST),
    )
    assert code == 0, out
    # 2. check, 3. approve (officer), 4. export (sender)
    code, out = run_cli("check", str(tmp / "request.yaml"), "--consents", str(tmp / "consents.yaml"))
    assert code == 0, out
    code, out = run_cli(
        "approve", str(tmp / "request.yaml"), "--signing-key", str(tmp / "officer.key"), "--officer", "DPO",
        "--consents", str(tmp / "consents.yaml"), "--out", str(tmp / "approval.json"),
    )  # fmt: skip
    assert code == 0, out
    code, out = run_cli(
        "export", str(tmp / "request.yaml"), "--approval", str(tmp / "approval.json"),
        "--public-key", str(tmp / "officer.pub"), "--key-file", str(tmp / "project.key"),
        "--input", str(tmp / "pacs"), "--input", str(tmp / "other"), "--out", str(tmp / "out"),
        "--consents", str(tmp / "consents.yaml"), "--signing-key", str(tmp / "sender.key"),
        "--operator", "Export Desk", "--ocr", "off", "--workers", "1", "--json",
    )  # fmt: skip
    assert code == 0, out
    return {
        "tmp": tmp,
        "tokens": tokens,
        "summary": json.loads(out),
        "log": state / "privguard" / "audit.jsonl",
    }


def test_draft_describes_the_files(done: dict[str, Any]) -> None:
    tmp = done["tmp"]
    text = (tmp / "request.yaml").read_text()
    assert text.startswith("# DRAFT export request") and "STAYS AT THE SENDER" in text
    doc = yaml.safe_load(text)
    assert doc["request_id"] == "EXP-2026-0042"
    patients = {p["id"]: p for p in doc["dataset"]["patients"]}
    assert set(patients) == set(PATIENTS)
    p2 = patients["DE-P002"]
    assert p2["age"] == 71
    assert p2["studies"] == [
        {"id": "DE-S002", "modality": "CT", "body_part": "CHEST", "burned_in_annotation": "NO"},
        {
            "id": "DE-S003",
            "modality": "MR",
            "body_part": "BRAIN",
            "defaced": True,
            "burned_in_annotation": "NO",
        },
    ]


def test_export_ships_only_the_included_patients(done: dict[str, Any]) -> None:
    tmp, summary = done["tmp"], done["summary"]
    studies = sum(len(PATIENTS[p][3]) for p in INCLUDED)
    assert summary["patients"] == len(INCLUDED) and summary["studies"] == studies
    assert summary["ok"] == studies * PER_STUDY and summary["failed"] == 0
    # strays and the excluded patients' files: counted by reason, never named
    assert summary["not_exported"] == {
        "not-dicom-or-unreadable": 1,
        "patient-excluded": 2 * PER_STUDY,
        "patient-not-in-request": 1,
        "study-not-in-request": 1,
    }
    outputs = sorted(p.relative_to(tmp / "out").as_posix() for p in (tmp / "out").rglob("*.dcm"))
    assert len(outputs) == studies * PER_STUDY
    manifest = (tmp / "out" / MANIFEST).read_text().splitlines()
    assert [m.split("  ")[1] for m in manifest] == outputs
    assert len({o.split("/")[0] for o in outputs}) == len(INCLUDED)


def test_no_planted_phi_anywhere_the_export_wrote(done: dict[str, Any]) -> None:
    tmp, tokens = done["tmp"], done["tokens"]
    needles = [t.encode() for t in tokens.values()] + [str(tmp).encode()]
    written = [p for p in (tmp / "out").rglob("*") if p.is_file() and ".privguard" not in p.parts]
    written.append(done["log"])
    assert any(p.name == "index.html" for p in written) and any(p.name == MANIFEST for p in written)
    for path in written:
        data = path.read_bytes()
        found = [n.decode() for n in needles if n in data]
        assert not found, f"{path.name} holds planted PHI {found}"


def test_log_holds_scrub_and_export_and_verifies(done: dict[str, Any]) -> None:
    tmp = done["tmp"]
    code, out = run_cli(
        "audit", "verify", str(done["log"]), "--public-key", str(tmp / "sender.pub"), "--head",
        str(tmp / "out" / "AUDIT-HEAD.json"), "--head", str(tmp / "scrubbed" / "AUDIT-HEAD.json"),
    )  # fmt: skip
    assert code == 0, out
    report = verify(done["log"])
    assert [r.command for r in report.runs] == ["scrub", "export"]
    export = report.runs[1]
    assert export.signature == "valid" and export.operator == "Export Desk"
    assert export.details["request_id"] == "EXP-2026-0042" and export.details["decision"] == "allow"
    approval = json.loads((tmp / "approval.json").read_bytes())
    assert export.details["approval_id"] == approval["payload"]["approval_id"]
    code, out = run_cli("audit", "verify-delivery", str(tmp / "out"), "--public-key", str(tmp / "sender.pub"))
    assert code == 0, out


def test_review_page_counts_match_the_manifest(done: dict[str, Any]) -> None:
    tmp = done["tmp"]
    page = (tmp / "out" / "review" / "index.html").read_text()
    n = len((tmp / "out" / MANIFEST).read_text().splitlines())
    assert f'id="count-manifest">{n}<' in page
    assert page.count('<tr class="file">') == n
    head = json.loads((tmp / "out" / "AUDIT-HEAD.json").read_bytes())
    assert head["hash"] in page and head["manifest_sha256"] in page
    assert "GDPR-CONSENT-WITHDRAWN" in page and "pt-" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    before = page
    (tmp / "out" / "review" / "index.html").unlink()
    code, out = run_cli("review", str(tmp / "out"))
    assert code == 0, out
    rebuilt = (tmp / "out" / "review" / "index.html").read_text()
    assert rebuilt == before


@pytest.mark.parametrize("damage", ["edit", "delete", "swap", "truncate"])
def test_damaging_the_e2e_log_is_named(done: dict, tmp_path: Path, damage: str) -> None:
    log = tmp_path / "audit.jsonl"
    shutil.copy(done["log"], log)
    shutil.copy(str(done["log"]) + ".head", str(log) + ".head")
    rows = log.read_bytes().splitlines(keepends=True)
    pos = len(rows) - 3  # a file record of the export run
    if damage == "edit":
        rows[pos - 1] = rows[pos - 1].replace(b'"status":"ok"', b'"status":"failed"')
        expect = pos
    elif damage == "delete":
        del rows[pos - 1]
        expect = pos
    elif damage == "swap":
        rows[pos - 1], rows[pos] = rows[pos], rows[pos - 1]
        expect = pos
    else:
        rows = rows[:-1]
        expect = len(rows) + 1
    log.write_bytes(b"".join(rows))
    code, out = run_cli("audit", "verify", str(log))
    assert code == 4 and f"DAMAGED at record {expect}:" in out
