"""Request and consent models, file reading, DUO and FHIR semantics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from privguard.compliance import ConsentSet, ExportRequest, load_consents, load_request
from privguard.compliance.duo import ConsentTerm, DuoCode, PurposeContext, match
from privguard.compliance.fhir import FhirConsentResource, FhirContext, evaluate
from privguard.errors import PolicyError

from .support import EXAMPLES, NOW, decide, example, put

SECRET = "Erika-Mustermann-1962"


def _write(tmp_path: Path, data: Any, name: str = "request.yaml") -> Path:
    path = tmp_path / name
    text = json.dumps(data, default=str) if name.endswith(".json") else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_examples_validate(name: str) -> None:
    loader = load_consents if "consents" in name else load_request
    assert loader(EXAMPLES / name)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("recipient.country", SECRET, "recipient.country: String should match pattern"),
        ("dataset.patients.1.age", SECRET, "dataset.patients.1.age: Input should be a valid integer"),
        ("purpose.category", SECRET, "purpose.category: Input should be"),
        ("dataset.patients.0.id", "DE-P002", "dataset: Value error, patients: a patient id is repeated"),
        (
            "retention",
            {"until": "2030-01-01", "criterion": SECRET},
            "retention: Value error, give exactly one",
        ),
        (
            "purpose.duo",
            [{"code": "HMB"}, {"code": "GRU"}],
            "purpose: Value error, duo: state exactly one primary",
        ),
        ("purpose.duo.0", {"code": "DS"}, "purpose.duo.0: Value error, DS needs 'disease'"),
        ("purpose.commercial", True, "duo: NCU/NPUNCU declares non-commercial use"),
        (
            "transfers.0",
            {"kind": "gdpr_scc", "module": "c2c", "reference": "x"},
            "transfers.0.gdpr_scc.signed",
        ),
        (
            "transfers.0",
            {"kind": SECRET},
            "transfers.0: Input tag '...' found using 'kind' does not match",
        ),
        ("hipaa", {"pathway": "safe_harbor"}, "hipaa.shipped_geography: Field required"),
        ("dua", {"reference": "D", "signed": "2026-01-01"}, "dua.valid_until: Field required"),
        ("secret_field", SECRET, "secret_field: Extra inputs are not permitted"),
    ],
)
def test_invalid_request_names_the_field_and_not_the_value(
    tmp_path: Path, path: str, value: Any, expected: str
) -> None:
    request, _ = example("gdpr")
    put(request, path, value)
    file = _write(tmp_path, request)
    with pytest.raises(PolicyError) as err:
        load_request(file)
    message = str(err.value)
    assert expected in message
    assert str(file) in message
    assert SECRET not in message


def test_yaml_norway_is_a_country_not_false(tmp_path: Path) -> None:
    request, _ = example("gdpr")
    text = yaml.safe_dump(request, sort_keys=False).replace("country: CH", "country: NO")
    (tmp_path / "r.yaml").write_text(text, encoding="utf-8")
    assert load_request(tmp_path / "r.yaml").recipient.country == "NO"


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ('{"schema_version": 1, "schema_version": 1}', "r.json", "not valid JSON: a key is repeated"),
        ('{"schema_version": NaN}', "r.json", "not valid JSON"),
        ("schema_version: 1\nschema_version: 1\n", "r.yaml", "a key is repeated"),
        ("- just\n- a list\n", "r.yaml", "must be a mapping at the top level"),
        ("schema_version: 1", "r.txt", "must be a .yaml, .yml or .json file"),
    ],
)
def test_malformed_files_fail_closed(tmp_path: Path, text: str, name: str, expected: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=expected):
        load_request(tmp_path / name)


def test_non_utf8_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_bytes(b"schema_version: \xff\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_request(tmp_path / "r.yaml")
    with pytest.raises(PolicyError, match="not found"):
        load_consents(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (
            {
                "records": [
                    {"kind": "duo", "patient": "P", "given": "2025-01-01", "permission": {"code": "NCU"}}
                ]
            },
            "records.0.duo: Value error, permission: use NRES",
        ),
        (
            {
                "records": [
                    {
                        "kind": "duo",
                        "patient": "P",
                        "given": "2025-01-01",
                        "permission": {"code": "HMB"},
                        "modifiers": [{"code": "GS"}],
                    }
                ]
            },
            "records.0.duo.modifiers.0: Value error, GS needs",
        ),
        (
            {
                "records": [
                    {
                        "kind": "duo",
                        "patient": "P",
                        "given": "2025-01-01",
                        "permission": {"code": "DUO:0009999"},
                    }
                ]
            },
            "records.0.duo.permission.code",
        ),
        (
            {
                "records": [
                    {
                        "kind": "fhir",
                        "patient": "P",
                        "resource": {"resourceType": "Consent", "status": "active"},
                    }
                ]
            },
            "records.0.fhir.resource.scope: Field required",
        ),
        (
            {
                "records": [
                    {
                        "kind": "fhir",
                        "patient": "P",
                        "resource": {
                            "resourceType": "Consent",
                            "status": "active",
                            "scope": {},
                            "category": [{}],
                            "foo": 1,
                        },
                    }
                ]
            },
            "records.0.fhir.resource.foo: Extra inputs",
        ),
    ],
)
def test_invalid_consents_name_the_field(tmp_path: Path, patch: dict[str, Any], expected: str) -> None:
    data = {"schema_version": 1, "snapshot": {"id": "s", "taken": "2026-01-01T00:00:00Z"}} | patch
    with pytest.raises(PolicyError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_consents(_write(tmp_path, data, "c.yaml"))


def test_duo_ids_and_shorthands_are_the_same_code() -> None:
    assert ConsentTerm(code="DUO:0000046").code is DuoCode.NCU
    assert ConsentTerm(code="DUO:0000018").code is DuoCode.NPUNCU
    assert ConsentTerm(code="NPU").code is DuoCode.NPU


def _ctx(**kw: Any) -> PurposeContext:
    base: dict[str, Any] = dict(
        primary=DuoCode.DS,
        disease="MONDO:lung",
        disease_ancestors=frozenset({"MONDO:cancer"}),
        category="research",
        commercial=False,
        for_profit_recipient=False,
        methods_development=False,
        genetic_study=False,
        research_type=None,
        agreements=frozenset(),
        ethics_approval=True,
        dac_approval=False,
        recipient_country="DE",
        now=dt.date(2026, 3, 1),
    )
    return PurposeContext(**(base | kw))


@pytest.mark.parametrize(
    ("permission", "modifiers", "ctx", "covers", "unmet"),
    [
        ({"code": "DS", "diseases": ["MONDO:cancer"]}, [], {}, True, set()),
        (
            {"code": "DS", "diseases": ["MONDO:lung"]},
            [],
            {"disease": "MONDO:cancer", "disease_ancestors": frozenset()},
            False,
            set(),
        ),
        ({"code": "DS", "diseases": ["MONDO:breast"]}, [], {}, False, set()),
        ({"code": "HMB"}, [], {"primary": DuoCode.POA}, False, set()),
        ({"code": "GRU"}, [], {"primary": DuoCode.POA}, True, set()),
        ({"code": "GRU"}, [], {"primary": DuoCode.HMB}, True, set()),
        ({"code": "HMB"}, [], {"category": "clinical_care"}, False, set()),
        ({"code": "HMB"}, [{"code": "CC"}], {"category": "clinical_care"}, True, set()),
        ({"code": "HMB"}, [{"code": "NCU"}], {"for_profit_recipient": True}, True, {"NCU"}),
        ({"code": "HMB"}, [{"code": "NPU"}], {"commercial": None}, True, {"NPU"}),
        (
            {"code": "HMB"},
            [{"code": "NMDS"}],
            {"methods_development": True, "primary": DuoCode.HMB},
            True,
            {"NMDS"},
        ),
        (
            {"code": "DS", "diseases": ["MONDO:lung"]},
            [{"code": "NMDS"}],
            {"methods_development": True},
            True,
            set(),
        ),
        ({"code": "HMB"}, [{"code": "IRB"}], {"ethics_approval": False}, True, {"IRB"}),
        ({"code": "HMB"}, [{"code": "GS", "regions": ["DE"]}], {"recipient_country": "US"}, True, {"GS"}),
        ({"code": "HMB"}, [{"code": "TS", "months": 12}], {}, True, {"TS"}),
        ({"code": "HMB"}, [{"code": "TS", "months": 12, "start": "2025-06-01"}], {}, True, set()),
        ({"code": "HMB"}, [{"code": "PUB"}], {"agreements": frozenset({DuoCode.PUB})}, True, set()),
        ({"code": "HMB"}, [{"code": "PS"}], {}, True, {"PS"}),
        ({"code": "HMB"}, [{"code": "GSO"}], {}, True, {"GSO"}),
        ({"code": "GRU"}, [{"code": "NPOA"}], {"primary": DuoCode.POA}, True, {"NPOA"}),
        (
            {"code": "HMB"},
            [{"code": "RS", "research_types": ["imaging"]}],
            {"research_type": "imaging"},
            True,
            set(),
        ),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, dict | list | set) else None,
)
def test_duo_matching(
    permission: dict[str, Any],
    modifiers: list[dict[str, Any]],
    ctx: dict[str, Any],
    covers: bool,
    unmet: set[str],
) -> None:
    result = match(
        ConsentTerm.model_validate(permission),
        tuple(ConsentTerm.model_validate(m) for m in modifiers),
        _ctx(**ctx),
        dt.date(2024, 1, 1),
    )
    assert result.covers_purpose is covers
    assert set(result.unmet) == unmet


def _fhir(**provision: Any) -> FhirConsentResource:
    return FhirConsentResource.model_validate(
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}
                ]
            },
            "category": [{"coding": [{"code": "x"}]}],
            "dateTime": "2024",
            "provision": provision,
        }
    )


RESCH = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}
CLIN = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "CLINTRCH"}
FCTX = FhirContext(
    purposes=frozenset({"HRESCH"}), recipient_names=frozenset({"Lab A"}), now=dt.date(2026, 3, 1)
)


@pytest.mark.parametrize(
    ("provision", "ctx", "covers", "unevaluated"),
    [
        ({"type": "permit"}, FCTX, True, False),
        ({"type": "permit", "purpose": [RESCH]}, FCTX, True, False),
        ({"type": "permit", "purpose": [CLIN]}, FCTX, False, False),
        (
            {"type": "permit", "purpose": [RESCH]},
            FhirContext(frozenset({"CLINTRCH"}), FCTX.recipient_names, FCTX.now),
            True,
            False,
        ),
        ({"type": "deny", "provision": [{"type": "permit", "purpose": [RESCH]}]}, FCTX, True, False),
        ({"type": "permit", "provision": [{"type": "deny", "purpose": [RESCH]}]}, FCTX, False, False),
        (
            {"type": "permit", "provision": [{"type": "deny", "period": {"end": "2025-01-01"}}]},
            FCTX,
            True,
            False,
        ),
        ({"type": "permit", "actor": [{"role": {}, "reference": {"display": "Lab A"}}]}, FCTX, True, False),
        ({"type": "permit", "actor": [{"role": {}, "reference": {"display": "Lab B"}}]}, FCTX, False, False),
        ({"type": "permit", "action": [{"coding": [{"code": "access"}]}]}, FCTX, False, False),
        ({"type": "permit", "action": [{"coding": [{"code": "disclose"}]}]}, FCTX, True, False),
        ({"type": "permit", "securityLabel": [{"code": "R"}]}, FCTX, False, True),
        (
            {
                "type": "permit",
                "provision": [{"type": "deny", "data": [{"meaning": "instance", "reference": {}}]}],
            },
            FCTX,
            False,
            True,
        ),
        ({"type": "permit", "modifierExtension": [{"url": "urn:x"}]}, FCTX, False, True),
        ({}, FCTX, False, False),
    ],
)
def test_fhir_provisions(
    provision: dict[str, Any], ctx: FhirContext, covers: bool, unevaluated: bool
) -> None:
    result = evaluate(_fhir(**provision), ctx)
    assert (result.covers_purpose, result.unevaluated) == (covers, unevaluated)


def test_fhir_partial_dates_narrow_the_window() -> None:
    r = evaluate(_fhir(type="permit", period={"start": "2026-03", "end": "2027"}), FCTX)
    assert r.not_yet_valid is True  # March 2026 could start on the 31st
    r = evaluate(_fhir(type="permit", period={"start": "2025", "end": "2026-03"}), FCTX)
    assert r.expired is False and r.not_yet_valid is False
    r = evaluate(_fhir(type="permit", period={"end": "2026"}), FCTX)
    assert r.expired is True  # "2026" may have ended on 1 January


def test_decision_never_echoes_free_text() -> None:
    request, consents = example("gdpr")
    request["purpose"]["description"] = SECRET
    request["retention"] = {"criterion": SECRET}
    request["recipient"]["country"] = "IN"
    request["transfers"] = []
    d = decide(request, consents)
    assert d.outcome == "deny"
    assert SECRET not in d.model_dump_json()


def test_naive_now_is_refused() -> None:
    from privguard.compliance import check

    request, _ = example("hipaa")
    with pytest.raises(ValueError, match="timezone-aware"):
        check(ExportRequest.model_validate(request), None, now=dt.datetime(2026, 3, 1))


def test_consent_set_models_roundtrip() -> None:
    _, consents = example("gdpr")
    model = ConsentSet.model_validate(consents)
    again = ConsentSet.model_validate(model.model_dump(by_alias=True))
    assert again == model
    assert NOW.tzinfo is not None
