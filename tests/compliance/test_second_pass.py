"""Export checks, second pass: what the pass findings show, multi-site decisions, patient and consent
tables (streamed, validated, pinned), generated docs, signed reasons, and the "pass-only facts" property.

Scenario rows for each new fact (decision and rule ids) are in test_scenarios.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from privguard_cli.main import cli  # type: ignore[import-untyped]

from privguard.compliance import ConsentSet, ExportRequest, SigningKey, check, sign_approval
from privguard.compliance.reference import generated_part, render
from privguard.compliance.request import Retention
from privguard.errors import PolicyError

from .support import NOW, ROOT, decide, drop, example, profile_from, put, record
from .test_properties import PROPERTY_SETTINGS
from .test_scenarios import SCC, SCENARIOS, _consents_for, recipient, transfers, two_sources

RANK = {"allow": 0, "needs_review": 1, "deny": 2}


def _finding(d: Any, rule_id: str, severity: str = "pass", source: str | None = None) -> Any:
    (f,) = [x for x in d.findings if x.rule_id == rule_id and x.severity == severity and x.source == source]
    return f


# ---------------------------------------------------------------------- what passes show


def test_pass_shows_the_adequacy_decision_relied_on() -> None:
    request, consents = example("gdpr")
    f = _finding(decide(request, consents), "GDPR-TRANSFER-MECHANISM")
    assert f.citation == "GDPR Art. 44, 45, 46, 49"
    assert "gdpr.adequacy = adequate" in f.details
    assert any(d.startswith("gdpr.adequacy_decision = Switzerland") for d in f.details)
    assert f.message.startswith("Passed: ")


def test_pass_shows_the_scc_module_and_date() -> None:
    request, consents = example("gdpr")
    recipient("IN")(request, consents)
    transfers(SCC)(request, consents)
    f = _finding(decide(request, consents), "GDPR-TRANSFER-MECHANISM")
    assert {
        "transfer.scc_module = c2c",
        "transfer.scc_signed = 2026-01-15",
        "gdpr.adequacy = not_adequate",
    } <= set(f.details)


def test_pass_shows_how_many_patients_the_consent_covered() -> None:
    request, consents = example("gdpr")
    d = decide(request, consents)
    coverage = _finding(d, "GDPR-CONSENT-COVERAGE")
    assert "dataset.consents_covering = 4" in coverage.details
    assert "dataset.consent_permissions = DS, FHIR, HMB" in coverage.details
    assert _finding(d, "GDPR-CONSENT-PURPOSE").patients == 4  # a patient rule's pass counts patients


def test_pass_shows_the_pipl_band() -> None:
    request, consents = example("pipl")
    f = _finding(decide(request, consents), "PIPL-MECHANISM-CONTRACT")
    assert "pipl.required_mechanism = contract_or_certification" in f.details
    assert "pipl.sensitive_persons = 1240" in f.details
    assert "transfer.mechanisms = standard_contract" in f.details


def test_residual_identifiers_are_named_by_category_attribute_and_source() -> None:
    request, _ = example("hipaa")
    prof = profile_from(
        "hipaa-safe-harbor", name="site-sh", overrides=[{"attribute": "PatientBirthDate", "action": "keep"}]
    )
    f = _finding(decide(request, None, profile=prof), "HIPAA-SH-RESIDUAL", "deny")
    assert {
        "profile.residual_identifiers = C",
        "profile.residual_attributes = PatientBirthDate",
        "profile.residual_options = override",
    } <= set(f.details)


def test_residual_identifiers_follow_the_options_too() -> None:
    request, _ = example("hipaa")
    prof = profile_from("hipaa-safe-harbor", add_options=["retain_device_identity"])
    d = decide(request, None, profile=prof)
    # the option has its own rule (HIPAA-SH-DEVICE); the residual rule names it without firing twice
    assert d.rule_ids("deny") == {"HIPAA-SH-DEVICE"}
    f = _finding(d, "HIPAA-SH-RESIDUAL")
    assert "profile.residual_identifiers = M" in f.details
    assert "profile.residual_options = retain_device_identity" in f.details


def test_keyed_pseudonym_finding_shows_the_method() -> None:
    request, _ = example("hipaa")
    request["deid_profile"] = "basic"
    f = _finding(decide(request, None), "HIPAA-SH-REID-CODE", "deny")
    assert "profile.pseudonym_method = keyed" in f.details


# ---------------------------------------------------------------------- several exporting sites


def test_sources_are_decided_each_and_as_a_whole() -> None:
    request, consents = example("gdpr")
    two_sources("art9_condition")(request, consents)
    d = decide(request, consents)
    assert d.outcome == "deny"
    by_id = {s.id: s for s in d.sources}
    assert (by_id["musterstadt"].outcome, by_id["vienna"].outcome) == ("allow", "deny")
    assert by_id["vienna"].deny == ("GDPR-ART9-CONDITION",)
    assert (by_id["musterstadt"].requested, by_id["vienna"].requested) == (3, 3)
    assert {f.source for f in d.findings} == {"musterstadt", "vienna"}
    assert _finding(d, "GDPR-ART9-CONDITION", "deny", "vienna")
    assert _finding(d, "GDPR-ART9-CONDITION", "pass", "musterstadt")
    assert d.inclusion.requested == 6


def test_sources_may_state_their_own_regimes() -> None:
    request, consents = example("gdpr")
    two_sources()(request, consents)
    src = request["sources"][1]
    src["requester"] = dict(src["requester"], country="CN", organisation="Shanghai Example Hospital")
    src["regimes"] = ["pipl"]
    # policies chosen per source (decide() would build one policy set for the whole request)
    d = check(request_model(request), ConsentSet.model_validate(consents), now=NOW)
    by_id = {s.id: s for s in d.sources}
    assert by_id["musterstadt"].policies == ("gdpr",)
    assert by_id["vienna"].policies == ("pipl",)
    assert "PIPL-LAWFUL-BASIS" in by_id["vienna"].deny and d.outcome == "deny"


@pytest.mark.parametrize(
    ("patients", "message"),
    [
        (["DE-P001", "DE-P002"], "every dataset patient must belong to exactly one source"),
        (
            ["DE-P001", "DE-P002", "DE-P003", "DE-P004"],
            "every dataset patient must belong to exactly one source",
        ),
    ],
)
def test_sources_must_partition_the_dataset(patients: list[str], message: str) -> None:
    request, consents = example("gdpr")
    two_sources()(request, consents)
    request["sources"][0]["patients"] = patients
    with pytest.raises(ValueError, match=message):
        ExportRequest.model_validate(request)


# ---------------------------------------------------------------------- structured retention


@pytest.mark.parametrize(
    ("value", "end"),
    [
        ({"until": "2031-12-31"}, dt.date(2031, 12, 31)),
        ({"for": "P5Y"}, dt.date(2031, 2, 10)),
        ({"for": "P18M"}, dt.date(2027, 8, 10)),
        ({"for": "P90D"}, dt.date(2026, 5, 11)),
        ({"indefinite": True}, None),
        ({"criterion": "until the study ends"}, None),
    ],
)
def test_retention_end(value: dict[str, Any], end: dt.date | None) -> None:
    assert Retention.model_validate(value).end(dt.date(2026, 2, 10)) == end


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"for": "P"},
        {"for": "5 years"},
        {"until": "2030-01-01", "indefinite": True},
        {"indefinite": False},
    ],
)
def test_retention_is_exactly_one_valid_value(value: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Retention.model_validate(value)


# ---------------------------------------------------------------------- patient and consent tables


def _pipl_tables(tmp_path: Path, *, pin: bool = False) -> tuple[Path, Path, dict[str, Any], dict[str, Any]]:
    """The PIPL example as a patient table and a consent table (same meaning)."""
    request, consents = example("pipl")
    assert consents is not None
    with (tmp_path / "patients.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["patient_id", "age", "study_id", "modality", "body_part"])
        for p in request["dataset"]["patients"]:
            for s in p["studies"]:
                w.writerow([p["id"], p.get("age", ""), s["id"], s["modality"], s.get("body_part", "")])
    with (tmp_path / "consents.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["patient_id", "given", "permission", "pipl_sensitive", "pipl_cross_border", "guardian"])
        for r in consents["records"]:
            sep = r.get("separate", {})
            w.writerow(
                [
                    r["patient"],
                    r["given"],
                    r["permission"]["code"],
                    sep.get("pipl_sensitive", {}).get("given", ""),
                    sep.get("pipl_cross_border", {}).get("given", ""),
                    r.get("guardian", {}).get("given", ""),
                ]
            )
    table_req = dict(request, dataset={"table": "patients.csv"})
    if pin:
        table_req["dataset"]["sha256"] = hashlib.sha256((tmp_path / "patients.csv").read_bytes()).hexdigest()
    table_cons = {"schema_version": 1, "snapshot": consents["snapshot"], "table": "consents.csv"}
    (tmp_path / "request.yaml").write_text(yaml.safe_dump(table_req, sort_keys=False), encoding="utf-8")
    (tmp_path / "consents.yaml").write_text(yaml.safe_dump(table_cons, sort_keys=False), encoding="utf-8")
    return tmp_path / "request.yaml", tmp_path / "consents.yaml", request, consents


def test_tables_reach_the_same_decision_as_inline_lists(tmp_path: Path) -> None:
    req_path, cons_path, request, consents = _pipl_tables(tmp_path, pin=True)
    inline = decide(request, consents)
    table = check(req_path, cons_path, now=NOW)
    assert table.outcome == inline.outcome == "allow"
    assert table.inclusion.included == inline.inclusion.included
    assert table.inclusion.excluded == inline.inclusion.excluded
    strip = [(f.rule_id, f.severity, f.patients, f.details) for f in inline.findings]
    assert [(f.rule_id, f.severity, f.patients, f.details) for f in table.findings] == strip
    assert table.patient_table_sha256 == hashlib.sha256((tmp_path / "patients.csv").read_bytes()).hexdigest()
    assert table.consent_table_sha256 == hashlib.sha256((tmp_path / "consents.csv").read_bytes()).hexdigest()


def test_table_consents_with_inline_patients_and_the_reverse(tmp_path: Path) -> None:
    req_path, cons_path, request, consents = _pipl_tables(tmp_path)
    expected = decide(request, consents).inclusion.included
    assert check(request_model(request), cons_path, now=NOW).inclusion.included == expected
    assert check(req_path, ConsentSet.model_validate(consents), now=NOW).inclusion.included == expected


def request_model(request: dict[str, Any]) -> ExportRequest:
    return ExportRequest.model_validate(request)


def test_quoted_fields_are_read_through_the_slow_path(tmp_path: Path) -> None:
    req_path, cons_path, _, _ = _pipl_tables(tmp_path)
    text = (tmp_path / "patients.csv").read_text(encoding="utf-8").replace("CN-0002,12", '"CN-0002","12"')
    (tmp_path / "patients.csv").write_text(text, encoding="utf-8")
    assert check(req_path, cons_path, now=NOW).inclusion.included == ("CN-0001", "CN-0002", "CN-0005")


@pytest.mark.parametrize(
    ("table", "old", "new", "expected"),
    [
        ("patients.csv", "CN-0002,12", "CN-0002,312", r"patient table .*line 3: column 'age' must be"),
        ("patients.csv", "CN-0002,12,CN-S0002,DX", "CN-0002,12,CN-S0002,dx",
         r"line 3: column 'modality' must be"),
        ("patients.csv", "CN-0002,", "CN-0000,", r"line 3: patient ids must be strictly increasing"),
        ("patients.csv", "CN-0003,9,CN-S0003", "CN-0002,12,CN-S0002", r"line 4: column 'study_id' repeats"),
        ("patients.csv", "patient_id,age", "patient,age", r"line 1: the header must name columns"),
        ("consents.csv", "CN-0002,2025-10-11", "CN-0002,2025-13-11", r"line 3: column .given. must be"),
        ("consents.csv", ",HMB,", ",XYZ,", r"line 2: columns 'permission'/'diseases' are not"),
        ("consents.csv", "CN-0003,", "CN-0001,", r"line 4: patient ids must be strictly increasing"),
    ],
)  # fmt: skip
def test_bad_tables_are_refused_naming_file_line_and_column(
    tmp_path: Path, table: str, old: str, new: str, expected: str
) -> None:
    req_path, cons_path, _, _ = _pipl_tables(tmp_path)
    path = tmp_path / table
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PolicyError, match=expected) as err:
        check(req_path, cons_path, now=NOW)
    assert "\n" not in str(err.value)
    assert "312" not in str(err.value) and "XYZ" not in str(err.value)  # values never in messages


def test_a_pinned_table_that_changed_is_refused(tmp_path: Path) -> None:
    req_path, cons_path, _, _ = _pipl_tables(tmp_path, pin=True)
    with (tmp_path / "patients.csv").open("a", encoding="utf-8") as f:
        f.write("CN-0006,40,CN-S0006,DX,CHEST\n")
    with pytest.raises(PolicyError, match="does not have the SHA-256 the request pins"):
        check(req_path, cons_path, now=NOW)


def test_a_missing_table_is_refused(tmp_path: Path) -> None:
    req_path, cons_path, _, _ = _pipl_tables(tmp_path)
    (tmp_path / "consents.csv").unlink()
    with pytest.raises(PolicyError, match=r"consent table .*consents.csv cannot be read"):
        check(req_path, cons_path, now=NOW)


def test_table_chunks_do_not_split_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import privguard.compliance.cohort as cohort

    req_path, cons_path, request, consents = _pipl_tables(tmp_path)
    monkeypatch.setattr(cohort, "_CHUNK", 7)  # rows straddle every chunk boundary
    assert (
        check(req_path, cons_path, now=NOW).inclusion.included == decide(request, consents).inclusion.included
    )


# ---------------------------------------------------------------------- docs, approval, CLI


def test_docs_tables_are_generated_from_the_policies() -> None:
    docs = (ROOT / "docs" / "compliance.md").read_text(encoding="utf-8")
    assert generated_part(docs) == render(), (
        "run: python -m privguard.compliance.reference docs/compliance.md"
    )
    for effect in ("| deny |", "| review |", "| inform only |", "| exclude patients |"):
        assert effect in render()


def test_the_approval_signs_the_reasons(signing_key: SigningKey) -> None:
    request, consents = example("pipl")
    d = decide(request, consents)
    approval = sign_approval(
        ExportRequest.model_validate(request), d, signing_key, expires_at=NOW + dt.timedelta(days=5),
        officer="DPO", now=NOW,
    )  # fmt: skip
    reasons = approval.payload.reasons
    contract = [r for r in reasons if r.startswith("PIPL-MECHANISM-CONTRACT ")]
    assert contract == ["PIPL-MECHANISM-CONTRACT (PIPL Art. 38; Provisions on Promoting and Regulating "
                        "Cross-Border Data Flows (2024))"]  # fmt: skip
    assert len(reasons) == len(d.rule_ids("pass"))


def test_cli_shows_and_prints_the_passes(tmp_path: Path) -> None:
    args = [
        str(ROOT / "examples/compliance/gdpr-research-request.yaml"),
        "--consents",
        str(ROOT / "examples/compliance/gdpr-research-consents.yaml"),
        "--at",
        "2026-03-01T12:00:00Z",
    ]
    runner = CliRunner()
    doc = json.loads(runner.invoke(cli, ["check", *args, "--json"]).output)
    passes = {f["rule_id"] for f in doc["findings"] if f["severity"] == "pass"}
    assert {"GDPR-TRANSFER-MECHANISM", "GDPR-CONSENT-COVERAGE"} <= passes
    out = runner.invoke(cli, ["check", *args], env={"COLUMNS": "220"}).output
    assert "pass" in out and "gdpr.adequacy = adequate" in out


# ---------------------------------------------------------------------- property: pass-only facts

#: Request facts that can only help: each adds an attestation, a reference or a record some rule asks
#: for, and none changes which patients are included.
PASS_ONLY: dict[str, Any] = {
    "gdpr.dpia": "DPIA-X-1",
    "gdpr.art30_record": "VVT-X-1",
    "pipl.notice": "NOTICE-X-1",
    "pipl.pipia": {"reference": "PIPIA-X-1", "date": "2025-01-01"},
    "pipl.genomic_data": False,
    "pipl.entrusted_agreement": "ENT-X-1",
    "hipaa.actual_knowledge": "none_known",
    "pixels": {"scrub_report": "scrub.json", "images": 10, "text_remaining": 0},
}


def _with(request: dict[str, Any], path: str, value: Any) -> bool:
    head = path.split(".")[0]
    if "." in path and not isinstance(request.get(head), dict):
        return False  # the section is absent: adding it would add more than one fact
    if path == "hipaa.actual_knowledge" and request.get("hipaa", {}).get("actual_knowledge_flags"):
        return False  # contradicts stated flags (rejected by validation)
    put(request, path, value)
    return True


@PROPERTY_SETTINGS
@given(
    st.sampled_from(SCENARIOS),
    st.lists(st.sampled_from(sorted(PASS_ONLY)), min_size=1, max_size=3, unique=True),
)
def test_adding_a_pass_only_fact_never_makes_the_outcome_worse(s: Any, added: list[str]) -> None:
    request, consents = example(s.base)
    s.edit(request, consents)
    consents = _consents_for(s, request, consents)
    kwargs: dict[str, Any] = {
        "policies": list(s.policies) or None,
        "profile": s.profile() if s.profile else None,
        "now": s.extra.get("now", NOW),
    }
    before = decide(request, consents, **kwargs)
    changed = False
    for path in added:
        changed |= _with(request, path, PASS_ONLY[path])
    after = decide(request, consents, **kwargs)
    assert RANK[after.outcome] <= RANK[before.outcome], (s.id, added)
    if changed:
        assert after.inclusion == before.inclusion


def test_pass_only_facts_do_pass_something() -> None:
    request, consents = example("gdpr")
    drop(request, "gdpr.dpia")
    assert decide(request, consents).outcome == "needs_review"
    put(request, "gdpr.dpia", PASS_ONLY["gdpr.dpia"])
    d = decide(request, consents)
    assert d.outcome == "allow" and "GDPR-DPIA" in d.rule_ids("pass")
    assert record(consents, "DE-P001")  # the consent file is unchanged


def test_cohort_example_runs_from_its_tables() -> None:
    folder = ROOT / "examples" / "compliance" / "cohort"
    d = check(folder / "request.yaml", folder / "consents.yaml", now=NOW)
    assert d.outcome == "allow"
    assert d.inclusion.included == ("CN-0001", "CN-0002", "CN-0005")
    assert {e.patient: e.rules for e in d.inclusion.excluded} == {
        "CN-0003": ("PIPL-GUARDIAN-CONSENT",),
        "CN-0004": ("PIPL-CROSS-BORDER-CONSENT",),
    }
    assert d.patient_table_sha256 == hashlib.sha256((folder / "patients.csv").read_bytes()).hexdigest()
    assert "retention.end = 2029-02-15" in _finding(d, "PIPL-RETENTION").details


def test_cli_shows_each_source(tmp_path: Path) -> None:
    request, consents = example("gdpr")
    two_sources("art9_condition")(request, consents)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(request, sort_keys=False), encoding="utf-8")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(consents, sort_keys=False), encoding="utf-8")
    args = ["check", str(tmp_path / "r.yaml"), "--consents", str(tmp_path / "c.yaml"), "--at", "2026-03-01"]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 3
    assert "Source musterstadt" in result.output and "Source vienna" in result.output
    assert "[source vienna]" in result.output
    doc = json.loads(CliRunner().invoke(cli, [*args, "--json"]).output)
    assert {s["id"]: s["outcome"] for s in doc["sources"]} == {"musterstadt": "allow", "vienna": "deny"}
