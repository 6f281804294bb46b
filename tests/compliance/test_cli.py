"""The CLI: privguard check / approve / keys new-signing, with click's CliRunner."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from privguard_cli.main import cli  # type: ignore[import-untyped]

from privguard.compliance import PublicKey, load_approval, load_request, verify_approval

from .support import EXAMPLES, NOW, example

AT = ["--at", "2026-03-01T12:00:00Z"]
GDPR = [
    str(EXAMPLES / "gdpr-research-request.yaml"),
    "--consents",
    str(EXAMPLES / "gdpr-research-consents.yaml"),
]
HIPAA = [str(EXAMPLES / "hipaa-safe-harbor-request.yaml")]
PIPL = [
    str(EXAMPLES / "pipl-cross-border-request.yaml"),
    "--consents",
    str(EXAMPLES / "pipl-cross-border-consents.yaml"),
]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _write(tmp_path: Path, data: dict[str, Any], name: str = "request.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("command", [["check"], ["approve"], ["keys", "new-signing"]])
def test_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_check_help_documents_exit_codes(runner: CliRunner) -> None:
    out = runner.invoke(cli, ["check", "--help"]).output
    assert "0  allow" in out and "3  deny" in out and "5  needs_review" in out


@pytest.mark.parametrize("args", [GDPR, HIPAA, PIPL], ids=["gdpr", "hipaa", "pipl"])
def test_check_examples_allow(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(cli, ["check", *args, *AT])
    assert result.exit_code == 0, result.output
    assert "ALLOW" in result.output


def test_check_report_shows_findings_and_exclusions(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", *GDPR, *AT], env={"COLUMNS": "220"})
    assert result.exit_code == 0
    out = result.output
    assert "GDPR-CONSENT-WITHDRAWN" in out and "GDPR Art. 7(3), 17(1)(b)" in out
    assert "Patients: 6 requested, 4 included, 2 excluded" in out
    assert "DE-P003" in out and "DE-P005" in out
    assert "Training and validating" not in out  # the free-text purpose is never printed


def test_check_json(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", *PIPL, "--json", *AT])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["outcome"] == "allow"
    assert doc["inclusion"]["included"] == ["CN-0001", "CN-0002", "CN-0005"]
    assert {e["patient"] for e in doc["inclusion"]["excluded"]} == {"CN-0003", "CN-0004"}
    assert [p["name"] for p in doc["policies"]] == ["pipl"]
    assert all(f["citation"] for f in doc["findings"])


def test_check_deny_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    request, _ = example("hipaa")
    request["deid_profile"] = "basic"
    result = runner.invoke(cli, ["check", _write(tmp_path, request), "--json", *AT])
    assert result.exit_code == 3
    doc = json.loads(result.output)
    assert doc["outcome"] == "deny"
    assert "HIPAA-SH-REID-CODE" in {f["rule_id"] for f in doc["findings"]}


def test_check_needs_review_exits_5(runner: CliRunner, tmp_path: Path) -> None:
    request, _ = example("hipaa")
    del request["hipaa"]["actual_knowledge"]
    result = runner.invoke(cli, ["check", _write(tmp_path, request), *AT])
    assert result.exit_code == 5
    assert "NEEDS_REVIEW" in result.output and "HIPAA-SH-ACTUAL-KNOWLEDGE-ATTEST" in result.output


def test_check_invalid_request_exits_2_naming_the_field(runner: CliRunner, tmp_path: Path) -> None:
    request, _ = example("gdpr")
    request["recipient"]["country"] = "Schweiz"
    result = runner.invoke(cli, ["check", _write(tmp_path, request)])
    assert result.exit_code == 2
    assert "recipient.country" in result.output and "Schweiz" not in result.output


def test_check_missing_file_and_bad_policy_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(cli, ["check", str(tmp_path / "none.yaml")]).exit_code == 2
    result = runner.invoke(cli, ["check", *HIPAA, "--policy", "no-such-policy"])
    assert result.exit_code == 2 and "available:" in result.output


def test_check_with_site_policy(runner: CliRunner, tmp_path: Path) -> None:
    from .support import DATA

    request, consents = example("gdpr")
    del request["gdpr"]["dpia"]
    args = ["check", _write(tmp_path, request), "--consents", _write(tmp_path, consents or {}, "c.yaml"), *AT]
    assert runner.invoke(cli, args).exit_code == 5
    assert runner.invoke(cli, [*args, "--policy", str(DATA / "site-ok-stricter.yaml")]).exit_code == 3


def test_bad_at_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", *HIPAA, "--at", "yesterday"])
    assert result.exit_code == 2 and "--at" in result.output


def test_keys_new_signing(runner: CliRunner, tmp_path: Path) -> None:
    prefix = tmp_path / "officer"
    result = runner.invoke(cli, ["keys", "new-signing", "--out", str(prefix)])
    assert result.exit_code == 0, result.output
    private, public = tmp_path / "officer.key", tmp_path / "officer.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key_id = PublicKey.load(public).key_id
    assert key_id in result.output
    again = runner.invoke(cli, ["keys", "new-signing", "--out", str(prefix)])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def _keys(runner: CliRunner, tmp_path: Path) -> tuple[Path, Path]:
    assert runner.invoke(cli, ["keys", "new-signing", "--out", str(tmp_path / "officer")]).exit_code == 0
    return tmp_path / "officer.key", tmp_path / "officer.pub"


def test_approve_writes_a_verifiable_approval(runner: CliRunner, tmp_path: Path) -> None:
    key, pub = _keys(runner, tmp_path)
    out = tmp_path / "approval.json"
    result = runner.invoke(
        cli,
        [
            "approve",
            *GDPR,
            "--signing-key",
            str(key),
            "--out",
            str(out),
            "--officer",
            "DPO",
            "--valid-days",
            "10",
            *AT,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "4 of 6 patients" in result.output
    approval = load_approval(out)
    request = load_request(EXAMPLES / "gdpr-research-request.yaml")
    payload = verify_approval(request, out, pub, now=NOW)
    assert payload == approval.payload and payload.officer == "DPO"
    assert (payload.expires_at - payload.approved_at).days == 10
    again = runner.invoke(
        cli, ["approve", *GDPR, "--signing-key", str(key), "--out", str(out), "--officer", "DPO", *AT]
    )
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def test_approve_refuses_a_denied_request(runner: CliRunner, tmp_path: Path) -> None:
    key, _ = _keys(runner, tmp_path)
    request, _ = example("hipaa")
    request["deid_profile"] = "basic"
    out = tmp_path / "approval.json"
    result = runner.invoke(
        cli,
        [
            "approve",
            _write(tmp_path, request),
            "--signing-key",
            str(key),
            "--out",
            str(out),
            "--officer",
            "DPO",
            *AT,
        ],
    )
    assert result.exit_code == 3
    assert "HIPAA-SH-REID-CODE" in result.output and not out.exists()


def test_approve_needs_review_only_with_reviewed(runner: CliRunner, tmp_path: Path) -> None:
    key, _ = _keys(runner, tmp_path)
    request, _ = example("hipaa")
    del request["hipaa"]["actual_knowledge"]
    path = _write(tmp_path, request)
    base = ["approve", path, "--signing-key", str(key), "--officer", "DPO", *AT]
    first = runner.invoke(cli, [*base, "--out", str(tmp_path / "a1.json")])
    assert first.exit_code == 3 and "--reviewed" in first.output
    second = runner.invoke(cli, [*base, "--out", str(tmp_path / "a2.json"), "--reviewed"])
    assert second.exit_code == 0
    assert load_approval(tmp_path / "a2.json").payload.reviewed is True


def test_approve_refuses_a_key_readable_by_others(runner: CliRunner, tmp_path: Path) -> None:
    if os.name != "posix":  # pragma: no cover
        return
    key, _ = _keys(runner, tmp_path)
    key.chmod(0o644)
    result = runner.invoke(
        cli,
        [
            "approve",
            *HIPAA,
            "--signing-key",
            str(key),
            "--out",
            str(tmp_path / "a.json"),
            "--officer",
            "DPO",
            *AT,
        ],
    )
    assert result.exit_code == 2 and "chmod 600" in result.output
