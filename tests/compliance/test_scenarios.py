"""The scenario table: each row edits an example request/consent file and asserts the decision,
the deny/review rule ids that fired, and the rule ids that excluded patients.

Rows are grouped by regime (GDPR, HIPAA Safe Harbor, Limited Data Set, Expert
Determination, PIPL), then approval scenarios (expired, tampered) follow.
The expected ids are exact sets, so a rule that fires unexpectedly fails a row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from privguard.compliance import ExportRequest, SigningKey, sign_approval, verify_approval
from privguard.errors import AuditIntegrityError, ExportBlocked
from privguard.header.profile import DeidProfile

from .support import DATA, NOW, decide, drop, example, patient, profile_from, put, record

Dicts = tuple[dict[str, Any], dict[str, Any] | None]

G_BASE_EXCL = frozenset({"GDPR-CONSENT-WITHDRAWN", "GDPR-CONSENT-PURPOSE"})
P_BASE_EXCL = frozenset({"PIPL-GUARDIAN-CONSENT", "PIPL-CROSS-BORDER-CONSENT"})
LDS_PROFILE = {
    "name": "basic",
    "options": ["retain_longitudinal_full_dates", "retain_patient_characteristics"],
}


@dataclass(frozen=True)
class Scenario:
    id: str
    base: str
    edit: Callable[[dict[str, Any], dict[str, Any] | None], None]
    outcome: str
    fired: frozenset[str] = frozenset()
    excluded: frozenset[str] | None = None
    included: int | None = None
    info: frozenset[str] = frozenset()
    passed: frozenset[str] = frozenset()
    profile: Callable[[], DeidProfile] | None = None
    policies: tuple[str | Path, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def S(
    id: str,
    base: str,
    edit: Callable[..., None] | None,
    outcome: str,
    fired: set[str] | None = None,
    **kw: Any,
) -> Scenario:
    return Scenario(
        id=id,
        base=base,
        edit=edit or (lambda r, c: None),
        outcome=outcome,
        fired=frozenset(fired or ()),
        **{k: frozenset(v) if isinstance(v, set) else v for k, v in kw.items()},  # type: ignore[arg-type]
    )


def _edits(*fns: Callable[[dict[str, Any], dict[str, Any] | None], None]) -> Callable[..., None]:
    def run(r: dict[str, Any], c: dict[str, Any] | None) -> None:
        for f in fns:
            f(r, c)

    return run


def req(path: str, value: Any) -> Callable[..., None]:
    return lambda r, c: put(r, path, value)


def req_drop(path: str) -> Callable[..., None]:
    return lambda r, c: drop(r, path)


def rec(pid: str, key: str, value: Any) -> Callable[..., None]:
    return lambda r, c: record(c, pid).__setitem__(key, value)


def rec_drop(pid: str, key: str) -> Callable[..., None]:
    return lambda r, c: record(c, pid).pop(key)


def pat(pid: str, key: str, value: Any) -> Callable[..., None]:
    return lambda r, c: patient(r, pid).__setitem__(key, value)


def pat_drop(pid: str, key: str) -> Callable[..., None]:
    return lambda r, c: patient(r, pid).pop(key)


def add_study(pid: str, study: dict[str, Any]) -> Callable[..., None]:
    return lambda r, c: patient(r, pid)["studies"].append(study)


def fhir(path: str, value: Any) -> Callable[..., None]:
    return lambda r, c: put(record(c, "DE-P004")["resource"], path, value)


def purpose_ds(disease: str, ancestors: list[str] | None = None) -> Callable[..., None]:
    term: dict[str, Any] = {"code": "DS", "disease": disease}
    if ancestors:
        term["disease_ancestors"] = ancestors
    return req("purpose.duo.0", term)


def recipient(country: str, **more: Any) -> Callable[..., None]:
    def run(r: dict[str, Any], c: dict[str, Any] | None) -> None:
        r["recipient"]["country"] = country
        r["recipient"].update(more)
        r["transfers"] = []

    return run


def transfers(*items: dict[str, Any]) -> Callable[..., None]:
    return lambda r, c: r.__setitem__("transfers", list(items))


SCC = {"kind": "gdpr_scc", "module": "c2c", "signed": "2026-01-15", "reference": "SCC-2026-01"}
DEROGATION = {"kind": "gdpr_derogation", "derogation": "49(1)(a)", "occasional": True}


def give_transfer_consent(*pids: str) -> Callable[..., None]:
    def run(r: dict[str, Any], c: dict[str, Any] | None) -> None:
        for pid in pids:
            record(c, pid).setdefault("separate", {})["gdpr_transfer"] = {"given": "2026-02-01"}

    return run


def withdraw_all(r: dict[str, Any], c: dict[str, Any] | None) -> None:
    assert c is not None
    for rc in c["records"]:
        rc["withdrawn"] = "2026-02-01"


def lds(r: dict[str, Any], c: dict[str, Any] | None) -> None:
    r["hipaa"]["pathway"] = "limited_data_set"
    r["hipaa"]["shipped_geography"] = "zip5"
    r["dua"] = {"reference": "DUA-2026-007", "signed": "2026-01-10", "valid_until": "2027-01-09"}


def ed(r: dict[str, Any], c: dict[str, Any] | None) -> None:
    r["hipaa"] = {
        "pathway": "expert_determination",
        "shipped_geography": "zip3",
        "expert_determination": {
            "report": "ED-2026-04",
            "expert": "Statistical Disclosure Consulting",
            "date": "2026-01-20",
            "recipient": r["recipient"]["organisation"],
            "valid_until": "2027-01-20",
            "covers_keyed_pseudonyms": True,
            "requires_dua": True,
        },
    }
    r["dua"] = {"reference": "DUA-2026-008", "signed": "2026-01-21", "valid_until": None}
    r["deid_profile"] = "research"


def lds_profile() -> DeidProfile:
    return profile_from("basic", options=LDS_PROFILE["options"], name="lds-basic")


def two_sources(vienna_drops: str | None = None) -> Callable[..., None]:
    """Split the GDPR example between two exporting sites: Musterstadt (DE) and Vienna (AT)."""

    def run(r: dict[str, Any], c: dict[str, Any] | None) -> None:
        vienna = dict(r["requester"], organisation="Universitaetsklinikum Wien", country="AT")
        vienna_gdpr = {k: v for k, v in r["gdpr"].items() if k != vienna_drops}
        r["sources"] = [
            {"id": "musterstadt", "requester": r["requester"], "regimes": ["gdpr"], "gdpr": r["gdpr"],
             "transfers": r["transfers"], "pseudonymisation": r["pseudonymisation"],
             "patients": ["DE-P001", "DE-P002", "DE-P003"]},
            {"id": "vienna", "requester": vienna, "regimes": ["gdpr"], "gdpr": vienna_gdpr,
             "transfers": r["transfers"], "pseudonymisation": r["pseudonymisation"],
             "patients": ["DE-P004", "DE-P005", "DE-P006"]},
        ]  # fmt: skip

    return run


def hipaa_consents(r: dict[str, Any], c: dict[str, Any] | None) -> None:
    pass  # consents are built by the row's `extra`


# fmt: off
SCENARIOS: list[Scenario] = [
    # ------------------------------------------------------------------ GDPR
    S("gdpr-baseline-allow", "gdpr", None, "allow", excluded=G_BASE_EXCL, included=4,
      info={"GDPR-PSEUDONYMISED"}),
    S("gdpr-consent-withdrawn-before-export", "gdpr", rec("DE-P001", "withdrawn", "2026-02-20"), "allow",
      excluded=G_BASE_EXCL, included=3),
    S("gdpr-consent-withdrawn-after-export-date", "gdpr", rec("DE-P003", "withdrawn", "2026-04-01"), "allow",
      excluded={"GDPR-CONSENT-PURPOSE"}, included=5),
    S("gdpr-purpose-outside-consent-ancestry", "gdpr", req("purpose.duo.0", {"code": "POA"}), "allow",
      excluded=G_BASE_EXCL, included=1),
    S("gdpr-other-disease-breast-cancer", "gdpr", purpose_ds("MONDO:0007254", ["MONDO:0004992"]), "allow",
      excluded={"GDPR-CONSENT-WITHDRAWN"}, included=5),
    S("gdpr-disease-ancestors-not-stated", "gdpr", purpose_ds("MONDO:0008903"), "allow",
      excluded=G_BASE_EXCL, included=3),
    S("gdpr-gru-covers-hmb", "gdpr",
      _edits(req("purpose.duo.0", {"code": "HMB"}), rec("DE-P005", "permission", {"code": "GRU"})), "allow",
      excluded=G_BASE_EXCL, included=4),
    S("gdpr-consent-expired", "gdpr", rec("DE-P006", "expires", "2026-01-31"), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-EXPIRED"}, included=3),
    S("gdpr-ncu-commercial-recipient", "gdpr",
      _edits(req("recipient.kind", "commercial"), req("purpose.commercial", True), req_drop("purpose.duo.1")),
      "allow", excluded=G_BASE_EXCL | {"GDPR-CONSENT-COMMERCIAL"}, included=3),
    S("gdpr-commercial-use-unstated", "gdpr",
      _edits(req_drop("purpose.commercial"), req_drop("purpose.duo.1")),
      "allow", excluded=G_BASE_EXCL | {"GDPR-CONSENT-COMMERCIAL"}, included=3),
    S("gdpr-irb-consent-without-ethics-approval", "gdpr", req_drop("ethics"), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}, included=3),
    S("gdpr-missing-sccs-india", "gdpr", recipient("IN"), "deny", {"GDPR-TRANSFER-MECHANISM"},
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}),
    S("gdpr-sccs-present-india", "gdpr", _edits(recipient("IN"), transfers(SCC)), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}, included=3),
    S("gdpr-scc-signed-after-export", "gdpr",
      _edits(recipient("IN"), transfers(SCC | {"signed": "2026-04-01"})),
      "deny", {"GDPR-TRANSFER-MECHANISM"}, excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}),
    S("gdpr-adequacy-country-japan", "gdpr", recipient("JP"), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}, included=3),
    S("gdpr-adequacy-claimed-not-on-list", "gdpr",
      _edits(recipient("IN"), transfers({"kind": "gdpr_adequacy"})),
      "deny", {"GDPR-TRANSFER-MECHANISM"}, excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"},
      info={"GDPR-ADEQUACY-CLAIM"}),
    S("gdpr-us-recipient-not-dpf-certified", "gdpr", recipient("US"), "deny", {"GDPR-TRANSFER-MECHANISM"},
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}, info={"GDPR-ADEQUACY-DPF"}),
    S("gdpr-us-recipient-dpf-certified", "gdpr", recipient("US", dpf_certified=True), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}),
    S("gdpr-canada-adequacy-scope-unverified", "gdpr", recipient("CA"), "needs_review",
      {"GDPR-ADEQUACY-SCOPE"},
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}),
    S("gdpr-uk-adequacy-after-2031", "gdpr", recipient("GB"), "deny", {"GDPR-TRANSFER-MECHANISM"},
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"},
      extra={"now": dt.datetime(2032, 1, 5, tzinfo=dt.UTC)}),
    S("gdpr-intra-eea-no-mechanism-needed", "gdpr", recipient("NL"), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}),
    S("gdpr-derogation-49-1-a", "gdpr",
      _edits(recipient("IN"), transfers(DEROGATION), give_transfer_consent("DE-P001", "DE-P002")),
      "needs_review", {"GDPR-DEROGATION"},
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS", "GDPR-DEROGATION-CONSENT"}, included=2),
    S("gdpr-derogation-by-public-authority", "gdpr",
      _edits(recipient("IN"), transfers(DEROGATION), give_transfer_consent("DE-P001"),
             req("requester.kind", "public_authority")),
      "deny", {"GDPR-DEROGATION", "GDPR-DEROGATION-PUBLIC-AUTHORITY"},
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS", "GDPR-DEROGATION-CONSENT"}, included=1),
    S("gdpr-derogation-not-relied-on-with-sccs", "gdpr", _edits(recipient("IN"), transfers(SCC, DEROGATION)),
      "allow", excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}, included=3),
    S("gdpr-missing-art9-condition", "gdpr", req_drop("gdpr.art9_condition"), "deny", {"GDPR-ART9-CONDITION"},
      excluded=G_BASE_EXCL),
    S("gdpr-missing-art6-basis", "gdpr", _edits(req_drop("gdpr.art6_basis"), req("gdpr.art9_condition", "a")),
      "deny", {"GDPR-ART6-BASIS"}, excluded=G_BASE_EXCL),
    S("gdpr-research-9-2-j-without-law", "gdpr",
      _edits(req("gdpr.art6_basis", "e"), req("gdpr.art9_condition", "j")), "deny",
      {"GDPR-ART9-LAW", "GDPR-OBJECTION-REVIEW"}, excluded=G_BASE_EXCL),
    S("gdpr-research-9-2-j-withdrawal-is-objection", "gdpr",
      _edits(req("gdpr.art6_basis", "e"), req("gdpr.art9_condition", "j"),
             req("gdpr.member_state_law", "BDSG s. 27")),
      "needs_review", {"GDPR-OBJECTION-REVIEW"}, excluded=G_BASE_EXCL),
    S("gdpr-no-retention", "gdpr", req_drop("retention"), "deny", {"GDPR-RETENTION"}, excluded=G_BASE_EXCL),
    S("gdpr-no-dpia", "gdpr", req_drop("gdpr.dpia"), "needs_review", {"GDPR-DPIA"}, excluded=G_BASE_EXCL),
    S("gdpr-no-dpia-site-policy-denies", "gdpr", req_drop("gdpr.dpia"), "deny", {"GDPR-DPIA"},
      excluded=G_BASE_EXCL, policies=(DATA / "site-ok-stricter.yaml",)),
    S("gdpr-key-shared-with-recipient", "gdpr", req("pseudonymisation.key_shared_with_recipient", True),
      "deny",
      {"GDPR-KEY-SEPARATE"}, excluded=G_BASE_EXCL),
    S("gdpr-key-sharing-unstated", "gdpr", req_drop("pseudonymisation"), "deny", {"GDPR-KEY-SEPARATE"},
      excluded=G_BASE_EXCL),
    S("gdpr-fhir-consent-inactive-is-withdrawal", "gdpr", fhir("status", "inactive"), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-NOT-ACTIVE"}, included=3),
    S("gdpr-fhir-deny-provision-for-research", "gdpr",
      fhir("provision.provision.0.purpose.0.code", "HRESCH"), "allow", excluded=G_BASE_EXCL, included=3),
    S("gdpr-fhir-period-ended", "gdpr", fhir("provision.period.end", "2025-12-31"), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-EXPIRED"}, included=3),
    S("gdpr-fhir-unevaluable-class-restriction", "gdpr",
      fhir("provision.provision.0", {"type": "deny", "class": [{"system": "urn:x", "code": "genetics"}]}),
      "allow", excluded=G_BASE_EXCL | {"GDPR-CONSENT-UNEVALUATED"}, included=3),
    S("gdpr-consent-record-missing", "gdpr",
      lambda r, c: c["records"].remove(record(c, "DE-P001")), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-MISSING"}, included=3),
    S("gdpr-consent-not-explicit", "gdpr", rec("DE-P001", "explicit", False), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-EXPLICIT"}, included=3),
    S("gdpr-every-patient-excluded", "gdpr", withdraw_all, "deny",
      {"PG-NO-PATIENTS", "GDPR-CONSENT-COVERAGE"}, excluded=G_BASE_EXCL, included=0),
    S("gdpr-minor-in-export", "gdpr", pat("DE-P001", "age", 15), "allow", excluded=G_BASE_EXCL,
      info={"GDPR-MINORS"}),
    S("gdpr-regime-not-named-and-hipaa-without-pathway", "gdpr", req("regimes", ["hipaa"]), "deny",
      {"PG-REGIME-NOT-NAMED", "PG-HIPAA-PATHWAY"}, excluded=G_BASE_EXCL),
    # ------------------------------------------------------------------ HIPAA Safe Harbor
    S("hipaa-sh-baseline-allow", "hipaa", None, "allow", included=3),
    S("hipaa-sh-full-dates-retained", "hipaa", None, "deny", {"HIPAA-SH-DATES"},
      profile=lambda: profile_from("hipaa-safe-harbor", add_options=["retain_longitudinal_full_dates"])),
    S("hipaa-sh-key-shifted-dates", "hipaa", None, "deny", {"HIPAA-SH-DATE-SHIFT"},
      profile=lambda: profile_from("hipaa-safe-harbor", add_options=["retain_longitudinal_modified_dates"])),
    S("hipaa-sh-age-92-without-age-cap", "hipaa", pat("MRN-TOKEN-0002", "age", 92), "deny",
      {"HIPAA-SH-AGE-OVER-89"}, profile=lambda: profile_from("hipaa-safe-harbor", age_cap=None)),
    S("hipaa-sh-age-92-capped-at-90", "hipaa", pat("MRN-TOKEN-0002", "age", 92), "allow"),
    S("hipaa-sh-age-cap-above-90", "hipaa", pat("MRN-TOKEN-0002", "age", 92), "deny",
      {"HIPAA-SH-AGE-OVER-89"},
      profile=lambda: profile_from("hipaa-safe-harbor", age_cap=95)),
    S("hipaa-sh-ages-unknown-without-cap", "hipaa",
      _edits(*(pat_drop(f"MRN-TOKEN-000{i}", "age") for i in (1, 2, 3))), "needs_review",
      {"HIPAA-SH-AGE-CAP"},
      profile=lambda: profile_from("hipaa-safe-harbor", age_cap=None)),
    S("hipaa-sh-keyed-pseudonyms", "hipaa", req("deid_profile", "basic"), "deny",
      {"HIPAA-SH-REID-CODE", "HIPAA-SH-FREE-TEXT"}),
    S("hipaa-sh-free-text-kept", "hipaa", None, "needs_review", {"HIPAA-SH-FREE-TEXT"},
      profile=lambda: profile_from("hipaa-safe-harbor", free_text="keep")),
    S("hipaa-sh-device-serials-kept", "hipaa", None, "deny", {"HIPAA-SH-DEVICE"},
      profile=lambda: profile_from("hipaa-safe-harbor", add_options=["retain_device_identity"])),
    S("hipaa-sh-original-uids-kept", "hipaa", None, "deny", {"HIPAA-SH-UIDS"},
      profile=lambda: profile_from("hipaa-safe-harbor", add_options=["retain_uids"])),
    S("hipaa-sh-institution-identity-kept", "hipaa", None, "needs_review", {"HIPAA-SH-INSTITUTION"},
      profile=lambda: profile_from("hipaa-safe-harbor", add_options=["retain_institution_identity"])),
    S("hipaa-sh-head-ct-not-defaced", "hipaa",
      add_study("MRN-TOKEN-0001", {"id": "ACC-0009", "modality": "CT", "body_part": "HEAD",
                                   "burned_in_annotation": "NO"}),
      "deny", {"HIPAA-SH-FACE"}),
    S("hipaa-sh-mr-body-part-unknown", "hipaa",
      add_study("MRN-TOKEN-0001", {"id": "ACC-0009", "modality": "MR", "burned_in_annotation": "NO"}),
      "needs_review", {"HIPAA-SH-FACE-UNKNOWN"}),
    S("hipaa-sh-face-photograph", "hipaa", add_study("MRN-TOKEN-0003", {"id": "ACC-0009", "modality": "XC"}),
      "deny", {"HIPAA-SH-FACE"}),
    S("hipaa-sh-restricted-zip3", "hipaa", pat("MRN-TOKEN-0001", "zip3", "036"), "deny", {"HIPAA-SH-ZIP3"}),
    S("hipaa-sh-zip3-not-given", "hipaa", pat_drop("MRN-TOKEN-0001", "zip3"), "needs_review",
      {"HIPAA-SH-ZIP3-UNKNOWN"}),
    S("hipaa-sh-city-shipped", "hipaa", req("hipaa.shipped_geography", "city"), "deny",
      {"HIPAA-SH-GEOGRAPHY"}),
    S("hipaa-sh-actual-knowledge", "hipaa",
      _edits(req("hipaa.actual_knowledge", "flags_present"),
             req("hipaa.actual_knowledge_flags", ["rare-condition-small-town"])),
      "deny", {"HIPAA-SH-ACTUAL-KNOWLEDGE"}),
    S("hipaa-sh-actual-knowledge-not-attested", "hipaa", req_drop("hipaa.actual_knowledge"), "needs_review",
      {"HIPAA-SH-ACTUAL-KNOWLEDGE-ATTEST"}),
    S("hipaa-sh-ocr-off-with-ultrasound", "hipaa", None, "deny", {"HIPAA-SH-BURNED-IN"},
      profile=lambda: profile_from("hipaa-safe-harbor", ocr="off")),
    S("hipaa-sh-ocr-off-ct-only", "hipaa", req_drop("dataset.patients.2"), "allow",
      profile=lambda: profile_from("hipaa-safe-harbor", ocr="off")),
    S("hipaa-sh-token-table-shared", "hipaa", req("pseudonymisation.key_shared_with_recipient", True), "deny",
      {"HIPAA-SH-CODE-DISCLOSED"}),
    S("hipaa-sh-withdrawn-consent-record", "hipaa", None, "allow", excluded={"HIPAA-SH-CONSENT-SCOPE"},
      included=2, extra={"consents": "withdraw-MRN-TOKEN-0003"}),
    S("hipaa-authorization-without-authorizations", "hipaa", req("hipaa.pathway", "authorization"), "deny",
      {"HIPAA-AUTH-REQUIRED", "PG-NO-PATIENTS"}, excluded={"HIPAA-AUTH-PATIENT"}, included=0),
    S("hipaa-pathway-missing", "hipaa", req_drop("hipaa"), "deny", {"PG-HIPAA-PATHWAY"}),
    # ------------------------------------------------------------------ HIPAA Limited Data Set
    S("hipaa-lds-with-dua", "hipaa", lds, "allow", profile=lds_profile, info={"HIPAA-LDS-MINIMUM-NECESSARY"}),
    S("hipaa-lds-missing-dua", "hipaa", _edits(lds, req_drop("dua")), "deny", {"HIPAA-LDS-DUA"},
      profile=lds_profile),
    S("hipaa-lds-expired-dua", "hipaa", _edits(lds, req("dua.valid_until", "2026-01-31")), "deny",
      {"HIPAA-LDS-DUA-VALID"}, profile=lds_profile),
    S("hipaa-lds-purpose-not-permitted", "hipaa", _edits(lds, req("purpose.category", "clinical_care")),
      "deny",
      {"HIPAA-LDS-PURPOSE"}, profile=lds_profile),
    S("hipaa-lds-device-identity-kept", "hipaa", _edits(lds, req("deid_profile", "research")), "deny",
      {"HIPAA-LDS-DEVICE"}),
    S("hipaa-lds-street-address", "hipaa", _edits(lds, req("hipaa.shipped_geography", "street_address")),
      "deny", {"HIPAA-LDS-GEOGRAPHY"}, profile=lds_profile),
    S("hipaa-lds-head-ct-not-defaced", "hipaa",
      _edits(lds, add_study("MRN-TOKEN-0001", {"id": "ACC-0009", "modality": "CT", "body_part": "BRAIN"})),
      "deny", {"HIPAA-LDS-FACE"}, profile=lds_profile),
    # ------------------------------------------------------------------ HIPAA Expert Determination
    S("hipaa-ed-keyed-pseudonyms-covered", "hipaa", ed, "allow"),
    S("hipaa-ed-report-missing", "hipaa", _edits(ed, req_drop("hipaa.expert_determination")), "deny",
      {"HIPAA-ED-REPORT"}),
    S("hipaa-ed-report-for-other-recipient", "hipaa",
      _edits(ed, req("hipaa.expert_determination.recipient", "Another Lab")), "deny", {"HIPAA-ED-RECIPIENT"}),
    S("hipaa-ed-keyed-pseudonyms-not-covered", "hipaa",
      _edits(ed, req("hipaa.expert_determination.covers_keyed_pseudonyms", False)), "deny",
      {"HIPAA-ED-KEYED"}),
    S("hipaa-ed-required-dua-missing", "hipaa", _edits(ed, req_drop("dua")), "deny", {"HIPAA-ED-DUA"}),
    S("hipaa-ed-report-expired", "hipaa",
      _edits(ed, req("hipaa.expert_determination.valid_until", "2026-02-01")),
      "deny", {"HIPAA-ED-VALID"}),
    # ------------------------------------------------------------------ PIPL
    S("pipl-baseline-standard-contract", "pipl", None, "allow", excluded=P_BASE_EXCL, included=3,
      info={"PIPL-SENSITIVE-PI", "PIPL-DEIDENTIFIED", "PIPL-PROVISION-TO-HANDLER"}),
    S("pipl-sensitive-volume-over-threshold", "pipl", req("pipl.sensitive_persons_ytd", 12000), "deny",
      {"PIPL-MECHANISM-ASSESSMENT"}, excluded=P_BASE_EXCL),
    S("pipl-sensitive-volume-exactly-10000", "pipl", req("pipl.sensitive_persons_ytd", 10000), "deny",
      {"PIPL-MECHANISM-ASSESSMENT"}, excluded=P_BASE_EXCL),
    S("pipl-sensitive-volume-9999", "pipl", req("pipl.sensitive_persons_ytd", 9999), "allow",
      excluded=P_BASE_EXCL),
    S("pipl-non-sensitive-volume-one-million", "pipl", req("pipl.non_sensitive_persons_ytd", 1_000_000),
      "deny",
      {"PIPL-MECHANISM-ASSESSMENT"}, excluded=P_BASE_EXCL),
    S("pipl-security-assessment-in-force", "pipl",
      _edits(req("pipl.sensitive_persons_ytd", 12000),
             transfers({"kind": "pipl_security_assessment", "reference": "CAC-SA-2025-88",
                        "valid_until": "2028-05-31"})),
      "allow", excluded=P_BASE_EXCL),
    S("pipl-security-assessment-expired", "pipl",
      _edits(req("pipl.sensitive_persons_ytd", 12000),
             transfers({"kind": "pipl_security_assessment", "reference": "CAC-SA-2022-11",
                        "valid_until": "2026-01-31"})),
      "deny", {"PIPL-MECHANISM-ASSESSMENT"}, excluded=P_BASE_EXCL, info={"PIPL-MECHANISM-EXPIRED"}),
    S("pipl-ciio-exporter", "pipl", req("pipl.exporter_ciio", True), "deny", {"PIPL-MECHANISM-ASSESSMENT"},
      excluded=P_BASE_EXCL),
    S("pipl-no-mechanism", "pipl", transfers(), "deny", {"PIPL-MECHANISM-CONTRACT"}, excluded=P_BASE_EXCL),
    S("pipl-small-volume-exemption-claimed-for-sensitive-pi", "pipl",
      transfers({"kind": "pipl_exemption", "exemption": "non_sensitive_under_100k"}), "deny",
      {"PIPL-MECHANISM-CONTRACT", "PIPL-EXEMPTION-CLAIMED"}, excluded=P_BASE_EXCL),
    S("pipl-volumes-not-stated", "pipl", req_drop("pipl.sensitive_persons_ytd"), "needs_review",
      {"PIPL-VOLUME-UNKNOWN"}, excluded=P_BASE_EXCL),
    S("pipl-ciio-status-not-stated", "pipl", req_drop("pipl.exporter_ciio"), "needs_review",
      {"PIPL-CIIO-STATUS", "PIPL-VOLUME-UNKNOWN"}, excluded=P_BASE_EXCL),
    S("pipl-separate-sensitive-consent-missing", "pipl",
      lambda r, c: record(c, "CN-0001")["separate"].pop("pipl_sensitive"), "allow",
      excluded=P_BASE_EXCL | {"PIPL-SENSITIVE-CONSENT"}, included=2),
    S("pipl-minor-under-14-without-guardian", "pipl", rec_drop("CN-0002", "guardian"), "allow",
      excluded=P_BASE_EXCL, included=2),
    S("pipl-age-unknown-without-guardian", "pipl", pat_drop("CN-0001", "age"), "allow",
      excluded=P_BASE_EXCL, included=2),
    S("pipl-age-14-needs-no-guardian", "pipl", pat("CN-0003", "age", 14), "allow",
      excluded={"PIPL-CROSS-BORDER-CONSENT"}, included=4),
    S("pipl-consent-withdrawn", "pipl", rec("CN-0005", "withdrawn", "2026-02-02"), "allow",
      excluded=P_BASE_EXCL | {"PIPL-CONSENT-WITHDRAWN"}, included=2),
    S("pipl-no-pipia", "pipl", req_drop("pipl.pipia"), "deny", {"PIPL-PIPIA"}, excluded=P_BASE_EXCL),
    S("pipl-no-art39-notice", "pipl", req_drop("pipl.notice"), "deny", {"PIPL-NOTICE"}, excluded=P_BASE_EXCL),
    S("pipl-genomic-data-bundled", "pipl", req("pipl.genomic_data", True), "needs_review", {"PIPL-HGR"},
      excluded=P_BASE_EXCL),
    S("pipl-processor-without-agreement", "pipl", req("recipient.role", "processor"), "deny",
      {"PIPL-ENTRUSTED"},
      excluded=P_BASE_EXCL),
    S("pipl-no-retention", "pipl", req_drop("retention"), "deny", {"PIPL-RETENTION"}, excluded=P_BASE_EXCL),
    S("pipl-basis-other-than-consent", "pipl", req("pipl.lawful_basis", "contract"), "needs_review",
      {"PIPL-RESEARCH-BASIS"}, excluded=P_BASE_EXCL),
    S("pipl-declared-by-us-requester-hipaa-status-unknown", "pipl", req("requester.country", "US"),
      "needs_review", {"PG-HIPAA-STATUS"}, excluded=P_BASE_EXCL),
    S("pipl-domestic-provision", "pipl", _edits(req("recipient.country", "CN"), transfers()), "allow",
      excluded={"PIPL-GUARDIAN-CONSENT"}, included=4),
    # ------------------------------------------------------------------ second pass (issue 12)
    # reasons for what passed
    S("gdpr-baseline-reasons", "gdpr", None, "allow", excluded=G_BASE_EXCL,
      passed={"GDPR-TRANSFER-MECHANISM", "GDPR-CONSENT-COVERAGE", "GDPR-CONSENT-PURPOSE", "GDPR-RETENTION",
              "GDPR-KEY-SEPARATE", "GDPR-ART6-BASIS", "GDPR-ART9-CONDITION", "GDPR-DPIA"}),
    S("hipaa-sh-baseline-reasons", "hipaa", None, "allow",
      passed={"HIPAA-SH-RESIDUAL", "HIPAA-SH-REID-CODE", "HIPAA-SH-DATES", "HIPAA-SH-GEOGRAPHY",
              "HIPAA-SH-ZIP3", "HIPAA-SH-FACE", "HIPAA-SH-CODE-DISCLOSED",
              "HIPAA-SH-ACTUAL-KNOWLEDGE-ATTEST"}),
    S("hipaa-ed-reid-code-rule-satisfied", "hipaa", ed, "allow", passed={"HIPAA-ED-KEYED"}),
    S("pipl-baseline-reasons", "pipl", None, "allow", excluded=P_BASE_EXCL,
      passed={"PIPL-MECHANISM-CONTRACT", "PIPL-NOTICE", "PIPL-PIPIA", "PIPL-SENSITIVE-CONSENT"}),
    # residual identifiers from the compiled profile
    S("hipaa-sh-override-keeps-birth-date", "hipaa", None, "deny", {"HIPAA-SH-RESIDUAL"},
      profile=lambda: profile_from("hipaa-safe-harbor", name="site-sh",
                                   overrides=[{"attribute": "PatientBirthDate", "action": "keep"}])),
    S("hipaa-sh-override-replaces-patient-address", "hipaa", None, "deny", {"HIPAA-SH-RESIDUAL"},
      profile=lambda: profile_from("hipaa-safe-harbor", name="site-sh", overrides=[
          {"attribute": "PatientAddress", "action": "replace", "value": "Main St 1"}])),
    S("hipaa-sh-override-removes-more-is-fine", "hipaa", None, "allow", passed={"HIPAA-SH-RESIDUAL"},
      profile=lambda: profile_from("hipaa-safe-harbor", name="site-sh",
                                   overrides=[{"attribute": "PatientSex", "action": "remove"}])),
    S("hipaa-lds-override-keeps-birth-date-is-fine", "hipaa", lds, "allow",
      profile=lambda: profile_from("basic", options=LDS_PROFILE["options"], name="lds-basic",
                                   overrides=[{"attribute": "PatientBirthDate", "action": "keep"}])),
    # burned-in text actually found
    S("hipaa-sh-scrub-report-text-remains", "hipaa",
      req("pixels", {"scrub_report": "scrub-2026-02-12.json", "images": 40, "text_remaining": 2}),
      "deny", {"HIPAA-SH-PIXEL-TEXT"}),
    S("hipaa-sh-scrub-report-clean", "hipaa",
      req("pixels", {"scrub_report": "scrub-2026-02-12.json", "images": 40, "text_remaining": 0}),
      "allow", passed={"HIPAA-SH-PIXEL-TEXT"}),
    # no scrub report: OCR will run, but text left on studies that carry it (or do not say) is unverified
    S("hipaa-sh-no-scrub-report-ultrasound-unflagged", "hipaa", req_drop("pixels"), "needs_review",
      {"HIPAA-SH-PIXEL-UNVERIFIED"}),
    S("hipaa-sh-no-scrub-report-ct-mr-stated-no", "hipaa",
      _edits(req_drop("pixels"), req_drop("dataset.patients.2")), "allow",
      passed={"HIPAA-SH-PIXEL-UNVERIFIED"}),
    S("hipaa-sh-no-scrub-report-ct-flag-unstated", "hipaa",
      _edits(req_drop("pixels"), req_drop("dataset.patients.2"),
             req_drop("dataset.patients.0.studies.0.burned_in_annotation")),
      "needs_review", {"HIPAA-SH-PIXEL-UNVERIFIED"}),
    S("hipaa-sh-no-scrub-report-ocr-off-ultrasound", "hipaa", req_drop("pixels"), "deny",
      {"HIPAA-SH-BURNED-IN"}, profile=lambda: profile_from("hipaa-safe-harbor", ocr="off")),
    S("hipaa-sh-ocr-off-burned-in-unstated", "hipaa",
      _edits(req_drop("dataset.patients.2"), req_drop("dataset.patients.0.studies.0.burned_in_annotation")),
      "needs_review", {"HIPAA-SH-BURNED-IN-UNKNOWN"}, passed={"HIPAA-SH-BURNED-IN"},
      profile=lambda: profile_from("hipaa-safe-harbor", ocr="off")),
    # all-or-nothing exports
    S("gdpr-all-or-nothing-with-exclusions", "gdpr", req("dataset.allow_patient_exclusion", False), "deny",
      {"PG-ALL-OR-NOTHING"}, excluded=G_BASE_EXCL, included=4),
    S("hipaa-all-or-nothing-nobody-excluded", "hipaa", req("dataset.allow_patient_exclusion", False), "allow",
      included=3),
    # HIPAA authorizations (164.508) and waivers (164.512(i))
    S("hipaa-authorizations-for-some-patients", "hipaa", req("hipaa.pathway", "authorization"), "allow",
      excluded={"HIPAA-AUTH-PATIENT"}, included=1, passed={"HIPAA-AUTH-REQUIRED"},
      info={"HIPAA-AUTH-MINIMUM-NECESSARY"}, extra={"consents": "authorizations"}),
    S("hipaa-waiver-documented", "hipaa",
      _edits(req("hipaa.pathway", "irb_waiver"), req("hipaa.irb_waiver", {
          "reference": "IRB-W-2026-3", "board": "Lakeside IRB", "approved": "2026-01-30",
          "criteria_met": True, "phi_described": True, "review": "expedited", "signed": True})),
      "allow", passed={"HIPAA-WAIVER-REQUIRED", "HIPAA-WAIVER-ELEMENTS", "HIPAA-WAIVER-DATE"},
      info={"HIPAA-WAIVER-MINIMUM-NECESSARY"}),
    S("hipaa-waiver-reference-only", "hipaa",
      _edits(req("hipaa.pathway", "irb_waiver"), req("hipaa.irb_waiver", "IRB-W-2026-3")),
      "needs_review", {"HIPAA-WAIVER-DOCUMENTED"}),
    S("hipaa-waiver-missing", "hipaa", req("hipaa.pathway", "irb_waiver"), "deny", {"HIPAA-WAIVER-REQUIRED"}),
    S("hipaa-waiver-criteria-not-stated", "hipaa",
      _edits(req("hipaa.pathway", "irb_waiver"), req("hipaa.irb_waiver", {
          "reference": "IRB-W-2026-3", "board": "Lakeside IRB", "approved": "2026-01-30", "signed": True})),
      "deny", {"HIPAA-WAIVER-ELEMENTS"}),
    # aggregate / anonymised output
    S("gdpr-aggregate-output-to-india", "gdpr",
      _edits(recipient("IN"), req("output", {"kind": "aggregate", "includes_pseudonyms": False})), "allow",
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"}, info={"GDPR-ANONYMOUS-OUTPUT"}),
    S("gdpr-aggregate-output-with-pseudonyms", "gdpr",
      _edits(recipient("IN"), req("output", {"kind": "aggregate", "includes_pseudonyms": True})), "deny",
      {"GDPR-TRANSFER-MECHANISM"}, excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS"},
      info={"GDPR-PSEUDONYMISED"}),
    S("pipl-aggregate-output-abroad", "pipl",
      _edits(transfers(), req("output", {"kind": "aggregate", "includes_pseudonyms": False})), "allow",
      excluded={"PIPL-GUARDIAN-CONSENT"}, included=4, info={"PIPL-ANONYMISED"}),
    # retention as a structured value
    S("gdpr-retention-indefinite", "gdpr", req("retention", {"indefinite": True}), "deny",
      {"GDPR-RETENTION-UNBOUNDED"}, excluded=G_BASE_EXCL),
    S("gdpr-retention-for-five-years", "gdpr", req("retention", {"for": "P5Y"}), "allow",
      excluded=G_BASE_EXCL, passed={"GDPR-RETENTION", "GDPR-RETENTION-UNBOUNDED"}),
    S("pipl-retention-indefinite", "pipl", req("retention", {"indefinite": True}), "deny",
      {"PIPL-RETENTION-UNBOUNDED"}, excluded=P_BASE_EXCL),
    # the derogation's occasional flag
    S("gdpr-derogation-not-occasional", "gdpr",
      _edits(recipient("IN"), transfers(DEROGATION | {"occasional": False}),
             give_transfer_consent("DE-P001", "DE-P002")),
      "deny", {"GDPR-DEROGATION", "GDPR-DEROGATION-OCCASIONAL"},
      excluded=G_BASE_EXCL | {"GDPR-CONSENT-CONDITIONS", "GDPR-DEROGATION-CONSENT"}, included=2),
    # PIPL important data unstated: deny when every branch denies
    S("pipl-important-data-unstated-no-mechanism", "pipl",
      _edits(req_drop("pipl.important_data"), transfers()), "deny",
      {"PIPL-MECHANISM-EVERY-BRANCH", "PIPL-CIIO-STATUS", "PIPL-VOLUME-UNKNOWN"}, excluded=P_BASE_EXCL),
    S("pipl-important-data-unstated-contract", "pipl", req_drop("pipl.important_data"), "needs_review",
      {"PIPL-CIIO-STATUS", "PIPL-VOLUME-UNKNOWN"}, excluded=P_BASE_EXCL,
      passed={"PIPL-MECHANISM-EVERY-BRANCH"}),
    # DPIA: large-scale threshold set by policy
    S("gdpr-no-dpia-below-default-threshold", "gdpr", req_drop("gdpr.dpia"), "needs_review", {"GDPR-DPIA"},
      excluded=G_BASE_EXCL),
    S("gdpr-no-dpia-large-scale-by-site-threshold", "gdpr", req_drop("gdpr.dpia"), "deny",
      {"GDPR-DPIA-LARGE-SCALE"}, excluded=G_BASE_EXCL, policies=(DATA / "site-ok-dpia-threshold.yaml",)),
    S("gdpr-dpia-large-scale-by-site-threshold", "gdpr", None, "allow", excluded=G_BASE_EXCL,
      passed={"GDPR-DPIA-LARGE-SCALE"}, policies=(DATA / "site-ok-dpia-threshold.yaml",)),
    # several exporting sites
    S("sources-one-site-lacks-art9-condition", "gdpr", two_sources(vienna_drops="art9_condition"), "deny",
      {"GDPR-ART9-CONDITION"}, excluded=G_BASE_EXCL),
    S("sources-both-sites-fine", "gdpr", two_sources(), "allow", excluded=G_BASE_EXCL, included=4,
      passed={"GDPR-TRANSFER-MECHANISM"}),
]
# fmt: on


def _consents_for(
    s: Scenario, request: dict[str, Any], consents: dict[str, Any] | None
) -> dict[str, Any] | None:
    spec = s.extra.get("consents")
    if spec is None:
        return consents
    if spec == "authorizations":
        return _authorizations(request)
    _, pid = spec.split("-", 1)
    records = [
        {"kind": "duo", "patient": p["id"], "given": "2025-06-01", "permission": {"code": "GRU"}}
        | ({"withdrawn": "2026-01-15"} if p["id"] == pid else {})
        for p in request["dataset"]["patients"]
    ]
    return {
        "schema_version": 1,
        "snapshot": {"id": "snap", "taken": "2026-02-01T00:00:00Z"},
        "records": records,
    }


def _authorizations(request: dict[str, Any]) -> dict[str, Any]:
    """HIPAA authorizations: the first patient's names the recipient; the second's was revoked; the
    third names another recipient."""
    recipient = request["recipient"]["organisation"]
    auth = {"given": "2025-12-01", "expires": None, "recipient": recipient}
    ids = [p["id"] for p in request["dataset"]["patients"]]
    separate = [
        auth,
        auth | {"withdrawn": "2026-02-01"},
        auth | {"recipient": "Another Lab"},
    ]
    return {
        "schema_version": 1,
        "snapshot": {"id": "auth-2026-02", "taken": "2026-02-10T00:00:00Z"},
        "records": [
            {"kind": "duo", "patient": pid, "given": "2025-12-01", "permission": {"code": "GRU"},
             "separate": {"hipaa_authorization": a}}
            for pid, a in zip(ids, separate, strict=True)
        ],
    }  # fmt: skip


def _run(s: Scenario) -> Any:
    request, consents = example(s.base)
    s.edit(request, consents)
    consents = _consents_for(s, request, consents)
    return decide(
        request,
        consents,
        policies=list(s.policies) or None,
        profile=s.profile() if s.profile else None,
        now=s.extra.get("now", NOW),
    )


@pytest.mark.parametrize("s", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(s: Scenario) -> None:
    d = _run(s)
    assert d.outcome == s.outcome
    assert d.rule_ids("deny", "review") == s.fired
    assert d.rule_ids("exclude") == (s.excluded or frozenset())
    excluded_by_rules = {r for e in d.inclusion.excluded for r in e.rules}
    assert excluded_by_rules == d.rule_ids("exclude")
    if s.included is not None:
        assert len(d.inclusion.included) == s.included
    assert s.info <= d.rule_ids("info")
    assert s.passed <= d.rule_ids("pass")
    # a rule never both fires and passes (for one source)
    passes = {(f.rule_id, f.source) for f in d.findings if f.severity == "pass"}
    assert not passes & {(f.rule_id, f.source) for f in d.findings if f.severity in ("deny", "review")}
    for f in d.findings:
        assert f.citation and f.message
        if f.severity == "exclude":
            assert f.patients == sum(f.rule_id in e.rules for e in d.inclusion.excluded)


def test_scenario_table_is_broad() -> None:
    assert len(SCENARIOS) >= 40
    assert len({s.id for s in SCENARIOS}) == len(SCENARIOS)
    assert {s.base for s in SCENARIOS} == {"gdpr", "hipaa", "pipl"}
    assert {s.outcome for s in SCENARIOS} == {"allow", "deny", "needs_review"}


def test_site_override_is_recorded() -> None:
    request, consents = example("gdpr")
    drop(request, "gdpr.dpia")
    d = decide(request, consents, policies=[DATA / "site-ok-stricter.yaml"])
    (f,) = [f for f in d.findings if f.rule_id == "GDPR-DPIA"]
    assert (f.severity, f.overridden_by, f.policy) == ("deny", "site-stricter", "gdpr")
    assert [p.name for p in d.policies] == ["gdpr", "site-stricter"]


# ---------------------------------------------------------------------- approval scenarios

APPROVAL_AT = NOW
VALID_FOR = dt.timedelta(days=30)


def _approved(key: SigningKey, base: str = "gdpr") -> tuple[ExportRequest, Any]:
    request, consents = example(base)
    req_model = ExportRequest.model_validate(request)
    d = decide(request, consents)
    approval = sign_approval(
        req_model, d, key, expires_at=APPROVAL_AT + VALID_FOR, officer="DPO", now=APPROVAL_AT
    )
    return req_model, approval


def _changed(request: ExportRequest, edit: Callable[[dict[str, Any]], None]) -> ExportRequest:
    data = request.model_dump(mode="json")
    edit(data)
    return ExportRequest.model_validate(data)


APPROVAL_SCENARIOS: list[
    tuple[str, Callable[[SigningKey, ExportRequest, Any], Any], type[Exception] | None]
] = [
    (
        "approval-valid-within-period",
        lambda k, r, a: verify_approval(r, a, k.public_key, now=NOW + dt.timedelta(days=1)),
        None,
    ),
    (
        "approval-expired",
        lambda k, r, a: verify_approval(r, a, k.public_key, now=NOW + VALID_FOR),
        ExportBlocked,
    ),
    (
        "approval-used-before-signing-time",
        lambda k, r, a: verify_approval(r, a, k.public_key, now=NOW - dt.timedelta(hours=1)),
        ExportBlocked,
    ),
    (
        "approval-request-retention-changed",
        lambda k, r, a: verify_approval(
            _changed(r, lambda d: put(d, "retention.until", "2040-01-01")), a, k.public_key, now=NOW
        ),
        AuditIntegrityError,
    ),
    (
        "approval-request-patient-added",
        lambda k, r, a: verify_approval(
            _changed(
                r,
                lambda d: d["dataset"]["patients"].append(
                    {"id": "DE-P999", "studies": [{"id": "DE-S999", "modality": "CT"}]}
                ),
            ),
            a,
            k.public_key,
            now=NOW,
        ),
        AuditIntegrityError,
    ),
    (
        "approval-request-recipient-changed",
        lambda k, r, a: verify_approval(
            _changed(r, lambda d: put(d, "recipient.country", "US")), a, k.public_key, now=NOW
        ),
        AuditIntegrityError,
    ),
    (
        "approval-verified-with-other-officer-key",
        lambda k, r, a: verify_approval(r, a, SigningKey.generate().public_key, now=NOW),
        AuditIntegrityError,
    ),
    (
        "approval-expiry-extended-after-signing",
        lambda k, r, a: verify_approval(
            r,
            a.model_copy(
                update={
                    "payload": a.payload.model_copy(
                        update={"expires_at": a.payload.expires_at + dt.timedelta(days=365)}
                    )
                }
            ),
            k.public_key,
            now=NOW + VALID_FOR + dt.timedelta(days=1),
        ),
        AuditIntegrityError,
    ),
]


@pytest.mark.parametrize(
    ("name", "action", "error"), APPROVAL_SCENARIOS, ids=[s[0] for s in APPROVAL_SCENARIOS]
)
def test_approval_scenario(
    name: str,
    action: Callable[[SigningKey, ExportRequest, Any], Any],
    error: type[Exception] | None,
    signing_key: SigningKey,
) -> None:
    request, approval = _approved(signing_key)
    if error is None:
        payload = action(signing_key, request, approval)
        assert payload.included_patients == ("DE-P001", "DE-P002", "DE-P004", "DE-P006")
        assert payload.request_sha256 == approval.payload.request_sha256
        assert [p.name for p in payload.policies] == ["gdpr"]
    else:
        with pytest.raises(error):
            action(signing_key, request, approval)


def test_deny_decision_cannot_be_signed(signing_key: SigningKey) -> None:
    request, consents = example("gdpr")
    drop(request, "retention")
    d = decide(request, consents)
    assert d.outcome == "deny"
    with pytest.raises(ExportBlocked):
        sign_approval(
            ExportRequest.model_validate(request),
            d,
            signing_key,
            expires_at=NOW + VALID_FOR,
            officer="DPO",
            now=NOW,
        )


def test_needs_review_is_signed_only_after_review(signing_key: SigningKey) -> None:
    request, consents = example("gdpr")
    drop(request, "gdpr.dpia")
    req_model = ExportRequest.model_validate(request)
    d = decide(request, consents)
    assert d.outcome == "needs_review"
    with pytest.raises(ExportBlocked):
        sign_approval(req_model, d, signing_key, expires_at=NOW + VALID_FOR, officer="DPO", now=NOW)
    approval = sign_approval(
        req_model, d, signing_key, expires_at=NOW + VALID_FOR, officer="DPO", now=NOW, reviewed=True
    )
    assert verify_approval(req_model, approval, signing_key.public_key, now=NOW).reviewed is True
