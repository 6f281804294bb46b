"""Policy files: the shipped ones load from the installed package; broken ones are rejected
with the offending field named; site policies override and extend."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

from privguard.compliance import RegulationPolicy, check, load_policies, load_policy
from privguard.compliance.facts import FACTS
from privguard.compliance.loader import available_policies, default_regulations, shipped_policies
from privguard.errors import PolicyError

from .support import DATA, EXAMPLES, NOW, ROOT, decide, drop, example

SHIPPED = [
    "gdpr",
    "hipaa-authorization",
    "hipaa-expert-determination",
    "hipaa-irb-waiver",
    "hipaa-limited-data-set",
    "hipaa-safe-harbor",
    "pipl",
]


def test_every_shipped_policy_loads_from_the_installed_package() -> None:
    folder = files("privguard") / "_policies" / "regulations"
    names = sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))
    assert names == SHIPPED
    assert available_policies() == SHIPPED
    for name in names:
        loaded = load_policy(name)
        doc = loaded.document
        assert isinstance(doc, RegulationPolicy)
        assert doc.name == name and doc.version and doc.as_of
        assert re.fullmatch(r"[0-9a-f]{64}", loaded.sha256)
        assert all(r.citation and r.message and r.checks for r in doc.rules)


def test_versioned_tables_live_in_policy_data() -> None:
    by_name = {p.document.name: p.document for p in shipped_policies()}
    gdpr, sh, pipl = by_name["gdpr"], by_name["hipaa-safe-harbor"], by_name["pipl"]
    assert (
        isinstance(gdpr, RegulationPolicy)
        and isinstance(sh, RegulationPolicy)
        and isinstance(pipl, RegulationPolicy)
    )
    assert gdpr.data.adequacy is not None and gdpr.data.adequacy.as_of.isoformat() == "2026-01-27"
    countries = {d.country for d in gdpr.data.adequacy.decisions}
    assert {"CH", "JP", "KR", "GB", "US", "BR", "UY"} <= countries
    assert sh.data.restricted_zip3 is not None and {"036", "059"} <= set(sh.data.restricted_zip3.prefixes)
    cac = pipl.data.cac_thresholds
    assert cac is not None
    assert (
        cac.security_assessment.sensitive_persons_min,
        cac.security_assessment.non_sensitive_persons_min,
    ) == (
        10_000,
        1_000_000,
    )
    assert cac.contract_or_certification.non_sensitive_persons_min == 100_000


def test_code_has_no_copies_of_the_tables() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "privguard" / "compliance").glob("*.py"))
    for literal in ('"036"', "10000", "1000000", "10_000", "1_000_000", '"JP"', '"UY"'):
        assert literal not in source


def test_rule_ids_are_unique_across_shipped_policies() -> None:
    ids = [r.id for p in shipped_policies() for r in p.document.rules]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken-unknown-fact.yaml", "rules.0.require.test: Value error, unknown fact"),
        ("broken-operator-for-type.yaml", "rules.0.require.test: Value error, operator 'gt' does not apply"),
        (
            "broken-value-not-in-enumeration.yaml",
            "rules.0.when.test: Value error, value is not one this fact",
        ),
        ("broken-missing-citation.yaml", "rules.0.citation: Field required"),
        ("broken-severity.yaml", "rules.0.severity: Input should be"),
        (
            "broken-exclude-on-request-rule.yaml",
            "rules.0: Value error, severity 'exclude' is for scope 'patient'",
        ),
        (
            "broken-patient-fact-in-request-rule.yaml",
            "rules.0: Value error, a request-scope rule cannot test",
        ),
        ("broken-duplicate-rule-id.yaml", "Value error, rules: a rule id is repeated"),
        ("broken-rule-of-other-regime.yaml", "every rule's regime must be the policy's regime"),
        ("broken-hipaa-without-pathway.yaml", "pathway: required for a HIPAA policy"),
        ("broken-condition-shape.yaml", "rules.0.require: a condition is"),
        ("broken-duplicate-key.yaml", "is not valid YAML at line 13: a key is repeated"),
        ("broken-not-yaml.yaml", "is not valid YAML at line"),
        (
            "broken-cac-thresholds-order.yaml",
            "data.cac_thresholds: Value error, security_assessment thresholds",
        ),
        ("broken-adequacy-country.yaml", "data.adequacy.decisions.0.country: String should match pattern"),
        ("broken-kind-missing.yaml", "kind: must be 'regulation' or 'site'"),
        ("broken-site-override-without-change.yaml", "overrides.0: Value error, an override changes"),
    ],
)
def test_broken_policy_is_rejected_naming_the_field(name: str, expected: str) -> None:
    path = DATA / name
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    message = str(err.value)
    assert str(path) in message
    assert expected in message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken-site-unknown-override.yaml", "overrides.0.id: no shipped rule has this id"),
        ("broken-site-reuses-shipped-id.yaml", "rules.0.id: a shipped rule has this id; use overrides"),
        ("broken-site-exclude-on-request-rule.yaml", "overrides.0.severity"),
    ],
)
def test_broken_site_policy_is_rejected_when_merged(name: str, expected: str) -> None:
    request, _ = example("gdpr")
    from privguard.compliance import ExportRequest

    with pytest.raises(PolicyError, match=re.escape(expected)):
        load_policies([DATA / name], ExportRequest.model_validate(request))


def test_site_policy_adds_a_rule() -> None:
    request, consents = example("gdpr")
    drop(request, "ethics")
    d = decide(request, consents, policies=[DATA / "site-ok-stricter.yaml"])
    assert d.outcome == "deny"
    assert "SITE-ETHICS-REQUIRED" in d.rule_ids("deny")


def test_site_policy_replaces_a_table() -> None:
    request, consents = example("gdpr")
    request["recipient"]["country"] = "IN"
    request["transfers"] = []
    assert decide(request, consents).outcome == "deny"
    d = decide(request, consents, policies=[DATA / "site-ok-newer-adequacy.yaml"])
    assert "GDPR-TRANSFER-MECHANISM" not in d.rule_ids()
    assert [p.name for p in d.policies] == ["gdpr", "site-newer-adequacy"]


def test_unknown_shipped_name_lists_the_available_ones() -> None:
    with pytest.raises(PolicyError, match="policy 'gpdr' not found; available: gdpr, hipaa-authorization"):
        load_policy("gpdr")


def test_missing_policy_file_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "site.yaml")


def test_explicit_regulation_replaces_the_automatic_choice() -> None:
    request, consents = example("gdpr")
    d = decide(request, consents, policies=["pipl"])
    assert [p.name for p in d.policies] == ["pipl"]
    assert "PG-REGIME-UNCHECKED" in d.rule_ids("review")  # GDPR applies but was not checked
    assert d.outcome == "deny"  # PIPL rules apply because they were asked for


def test_automatic_choice_follows_regimes_and_pathway() -> None:
    from privguard.compliance import ExportRequest

    names = {
        base: [p.document.name for p in default_regulations(ExportRequest.model_validate(example(base)[0]))]
        for base in ("gdpr", "hipaa", "pipl")
    }
    assert names == {"gdpr": ["gdpr"], "hipaa": ["hipaa-safe-harbor"], "pipl": ["pipl"]}


def test_check_accepts_file_paths() -> None:
    d = check(
        EXAMPLES / "pipl-cross-border-request.yaml",
        EXAMPLES / "pipl-cross-border-consents.yaml",
        ["pipl"],
        now=NOW,
    )
    assert d.outcome == "allow"
    assert d.consent_snapshot == "sh-consents-2026-02-14"


def test_every_fact_is_documented() -> None:
    docs = (ROOT / "docs" / "compliance.md").read_text(encoding="utf-8")
    missing = [name for name in FACTS if f"`{name}`" not in docs]
    assert missing == []


def test_every_shipped_rule_is_documented() -> None:
    docs = (ROOT / "docs" / "compliance.md").read_text(encoding="utf-8")
    missing = [r.id for p in shipped_policies() for r in p.document.rules if r.id not in docs]
    assert missing == []
