"""FHIR R4 AuditEvent and DICOM A.5 export, and the ``privguard audit`` commands."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle
from privguard_cli.main import cli

from privguard.audit import verify
from privguard.audit.interop import atna_messages, fhir_bundle
from privguard.compliance.approval import SigningKey
from privguard.pseudonym.keys import ProjectKey

from .support import edit, lines, make_log


def test_fhir_bundle_is_valid_r4_with_export_events(tmp_path: Path, key: ProjectKey) -> None:
    signing = SigningKey.generate()
    log, _ = make_log(tmp_path, key, signing)
    bundle = fhir_bundle(verify(log))
    parsed = Bundle.model_validate(bundle)  # the library's own R4(B) model
    assert parsed.type == "collection" and len(parsed.entry or []) == 2
    event = bundle["entry"][0]["resource"]
    assert event["type"]["code"] == "110106" and event["action"] == "R" and event["outcome"] == "0"
    roles = [a["type"]["coding"][0]["code"] for a in event["agent"]]
    assert roles == ["110153", "110150", "110154"]
    details = {d["type"]: d["valueString"] for d in event["entity"][0]["detail"]}
    assert details["head_signed_by"] == signing.key_id
    assert details["chain_head"] == json.loads(lines(log)[5])["hash"]


def test_fhir_rejects_what_r4_does_not_allow(tmp_path: Path, key: ProjectKey) -> None:
    from fhir.resources.R4B.auditevent import AuditEvent
    from pydantic import ValidationError

    from privguard.audit.interop import audit_event

    log, _ = make_log(tmp_path, key, None, runs=1)
    event = audit_event(verify(log).runs[0])
    event["outcome"] = 5  # not a code
    event["action"] = ["R"]
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(event)


def test_atna_messages_are_a5_data_export_xml(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None)
    msgs = atna_messages(verify(log))
    assert len(msgs) == 2 and all(b"\n" not in m for m in msgs)
    root = ET.fromstring(msgs[0])
    assert root.tag == "AuditMessage"
    ev = root.find("EventIdentification")
    assert ev is not None and ev.get("EventActionCode") == "R" and ev.get("EventOutcomeIndicator") == "0"
    assert ev.find("EventID").get("csd-code") == "110106"  # type: ignore[union-attr]
    roles = [p.find("RoleIDCode").get("csd-code") for p in root.findall("ActiveParticipant")]  # type: ignore[union-attr]
    assert roles == ["110153", "110150", "110154"]
    assert root.find("AuditSourceIdentification") is not None
    assert root.find("ParticipantObjectIdentification").get("ParticipantObjectTypeCode") == "2"  # type: ignore[union-attr]


def test_cli_verify_show_export(tmp_path: Path, key: ProjectKey) -> None:
    signing = SigningKey.generate()
    _, pub = signing.save(tmp_path / "sender")
    log, runs = make_log(tmp_path, key, signing)
    runner = CliRunner()
    r = runner.invoke(cli, ["audit", "verify", str(log), "--public-key", str(pub)])
    assert r.exit_code == 0 and "OK: 11 records, 2 runs (2 with a valid signed head" in r.output
    r = runner.invoke(cli, ["audit", "show", str(log), "--json"])
    assert r.exit_code == 0 and [row["run"] for row in json.loads(r.output)] == runs
    r = runner.invoke(cli, ["audit", "show", str(log), "--run", runs[1], "--json"])
    assert r.exit_code == 0 and [f["output"] for f in json.loads(r.output)] == [
        f"P1/S/R/{i}.dcm" for i in range(3)
    ]
    r = runner.invoke(cli, ["audit", "show", str(log)])
    assert r.exit_code == 0 and runs[0] in r.output
    r = runner.invoke(cli, ["audit", "export", str(log), "--format", "fhir"])
    assert r.exit_code == 0 and json.loads(r.output)["resourceType"] == "Bundle"
    r = runner.invoke(cli, ["audit", "export", str(log), "--format", "atna", "--run", runs[0]])
    assert r.exit_code == 0 and r.output.count("<AuditMessage>") == 1
    edit(log, 3, "status", "failed")
    r = runner.invoke(cli, ["audit", "verify", str(log)])
    assert r.exit_code == 4 and "DAMAGED at record 3" in r.output
    r = runner.invoke(cli, ["audit", "export", str(log), "--format", "fhir"])
    assert r.exit_code == 4 and "damaged at record 3" in r.output


def test_cli_default_log_location_follows_xdg_state_home(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privguard.audit import AuditLog, default_log_path

    monkeypatch.delenv("PRIVGUARD_AUDIT_LOG", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_log_path() == tmp_path / "xdg" / "privguard" / "audit.jsonl"
    AuditLog.open().close()
    r = CliRunner().invoke(cli, ["audit", "verify"])
    assert r.exit_code == 0 and "OK: 1 records" in r.output
    monkeypatch.setenv("PRIVGUARD_AUDIT_LOG", str(tmp_path / "env.jsonl"))
    assert default_log_path() == tmp_path / "env.jsonl"


def test_the_sender_finds_a_files_records_with_the_key(tmp_path: Path, key: ProjectKey) -> None:
    from privguard.audit.lookup import find

    from .support import SECRET_PATH_PART

    log, runs = make_log(tmp_path, key, None)
    src = tmp_path / SECRET_PATH_PART / f"{SECRET_PATH_PART}_1_2.dcm"
    matches = find(log, key, [src])
    assert [(m.run, m.output, m.by) for m in matches] == [(runs[1], "P1/S/R/2.dcm", "path+content")]
    moved = tmp_path / "moved.dcm"
    moved.write_bytes(src.read_bytes())
    assert [m.by for m in find(log, key, [moved])] == ["content"]
    assert find(log, ProjectKey.generate(), [src]) == []  # without the key: nothing
    key_file = tmp_path / "k.key"
    key.save(key_file)
    r = CliRunner().invoke(cli, ["audit", "find", str(src), "--log", str(log), "--key-file", str(key_file)])
    assert r.exit_code == 0 and "P1/S/R/2.dcm" in r.output
