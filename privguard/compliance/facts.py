"""Facts: the named values policy rules test, and how they are computed.

A rule never reads a request directly; it tests facts (``gdpr.third_country``,
``profile.pseudonym_method``, ``consent.withdrawn``...). The registry below
names every fact with its type, its phase and, for enumerations, the values
it can take, so a policy file that tests an unknown fact or an impossible
value is rejected when it is loaded.

Phases:

* ``request``: known from the request, the profile and the policy tables;
* ``patient``: one patient's record and consent (patient-scope rules);
* ``dataset``: the patients that remain after patient-scope rules excluded some.

A fact is ``None`` when it cannot be known (a field left out, a table not
loaded). Conditions treat ``None`` as unknown (see conditions.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from privguard.compliance._base import Regime
from privguard.compliance.cohort import ConsentRow, PatientView, StudyKinds, parse_terms
from privguard.compliance.consent import ConsentSet, DuoConsent, FhirConsent
from privguard.compliance.duo import ConsentTerm, DuoCode, PurposeContext, match
from privguard.compliance.fhir import FhirContext
from privguard.compliance.fhir import evaluate as evaluate_fhir
from privguard.compliance.request import ExportRequest, IrbWaiver
from privguard.compliance.tables import CacThresholds, CountryList, DataTables, IdentifierTable
from privguard.header.plan import PSEUDONYM_TAGS, compile_plan
from privguard.header.profile import DeidProfile, Option

logger = logging.getLogger(__name__)

FactValue = bool | int | str | frozenset[str] | None
Phase = Literal["request", "patient", "dataset"]


class FactType(StrEnum):
    """The type of a fact's value (besides None)."""

    BOOL = "bool"
    INT = "int"
    STR = "str"
    SET = "set"


@dataclass(frozen=True)
class FactSpec:
    """What a fact is: its type, phase, allowed values and meaning."""

    type: FactType
    phase: Phase
    doc: str
    values: frozenset[str] | None = None


def _spec(t: FactType, phase: Phase, doc: str, values: Iterable[str] | None = None) -> FactSpec:
    return FactSpec(t, phase, doc, frozenset(values) if values is not None else None)


B, INT, S, SET = FactType.BOOL, FactType.INT, FactType.STR, FactType.SET
_REGIMES = [r.value for r in Regime]
_MECHANISMS = [
    "scc",
    "bcr",
    "derogation",
    "security_assessment",
    "standard_contract",
    "certification",
    "exemption",
]
_KINDS = ["academic", "healthcare", "nonprofit", "public_authority", "commercial"]
_DUO = [c.value for c in DuoCode]
_CATEGORIES = list("ABCDEFGHIJKLMNOPQR")

#: Every fact a rule may test.
FACTS: dict[str, FactSpec] = {
    # -- request: parties, purpose, regimes
    "request.regimes": _spec(SET, "request", "Regimes evaluated: declared plus inferred.", _REGIMES),
    "request.declared_regimes": _spec(SET, "request", "Regimes the request names.", _REGIMES),
    "requester.country": _spec(S, "request", "Requester's country (ISO alpha-2)."),
    "requester.kind": _spec(S, "request", "Requester's organisation kind.", _KINDS),
    "requester.in_eea": _spec(B, "request", "Requester is in the EEA (needs the eea table)."),
    "recipient.country": _spec(S, "request", "Recipient's country (ISO alpha-2)."),
    "recipient.kind": _spec(S, "request", "Recipient's organisation kind.", _KINDS),
    "recipient.role": _spec(
        S, "request", "controller or processor (None when unstated).", ["controller", "processor"]
    ),
    "recipient.in_eea": _spec(B, "request", "Recipient is in the EEA (needs the eea table)."),
    "recipient.dpf_certified": _spec(
        B, "request", "US recipient certified under the Data Privacy Framework."
    ),
    "purpose.category": _spec(
        S,
        "request",
        "Purpose category.",
        ["research", "public_health", "health_care_operations", "clinical_care"],
    ),
    "purpose.primary": _spec(S, "request", "Primary DUO purpose.", ["GRU", "HMB", "DS", "POA"]),
    "purpose.commercial": _spec(B, "request", "Commercial use (None when unstated)."),
    "transfer.cross_border": _spec(B, "request", "Requester and recipient are in different countries."),
    "transfer.claims": _spec(
        SET, "request", "Mechanism kinds listed, valid or not.", [*_MECHANISMS, "adequacy"]
    ),
    "transfer.mechanisms": _spec(
        SET, "request", "Mechanisms listed and valid at the evaluation date.", _MECHANISMS
    ),
    "transfer.expired": _spec(
        SET, "request", "Mechanisms listed but expired or not yet signed.", _MECHANISMS
    ),
    "transfer.derogations": _spec(
        SET, "request", "GDPR Art. 49 derogations listed.", [f"49(1)({x})" for x in "abcdefg"]
    ),
    "transfer.derogation_occasional": _spec(B, "request", "The derogation transfer is occasional."),
    "transfer.scc_module": _spec(S, "request", "Module of the SCCs listed.", ["c2c", "c2p", "p2p", "p2c"]),
    "transfer.scc_signed": _spec(S, "request", "Signature date of the SCCs listed (ISO date)."),
    "transfer.pipl_exemptions": _spec(
        SET,
        "request",
        "PIPL exemptions claimed.",
        [
            "non_sensitive_under_100k",
            "contract_with_individual",
            "hr_management",
            "emergency",
            "no_personal_information",
        ],
    ),
    "dua.present": _spec(B, "request", "A data use agreement is referenced."),
    "dua.valid": _spec(B, "request", "The DUA is signed and not expired at the evaluation date."),
    "ethics.present": _spec(B, "request", "An ethics/IRB approval is referenced."),
    "retention.present": _spec(
        B, "request", "A retention end date, duration, criterion or 'indefinite' is stated."
    ),
    "retention.kind": _spec(
        S, "request", "How retention is stated.", ["until", "for", "indefinite", "criterion"]
    ),
    "retention.indefinite": _spec(B, "request", "Retention is stated as indefinite (no end)."),
    "retention.end": _spec(S, "request", "End of retention, ISO date (until, or created + for)."),
    "output.kind": _spec(
        S, "request", "record_level or aggregate (None: unstated).", ["record_level", "aggregate"]
    ),
    "output.anonymous": _spec(
        B,
        "request",
        "Aggregate output stated without pseudonyms (the conditions for treating it as anonymous).",
    ),
    "pixels.report": _spec(B, "request", "A burned-in text scrub report is referenced."),
    "pixels.text_remaining": _spec(
        INT, "request", "Images where the scrub report says identifying text remains (None: no report)."
    ),
    "pseudonymisation.key_shared": _spec(
        B, "request", "The key or token table leaves the sender (None: unstated)."
    ),
    "consents.supplied": _spec(B, "request", "A consent file was supplied."),
    # -- request: GDPR
    "gdpr.art6_basis": _spec(S, "request", "Art. 6(1) basis letter.", list("abcdef")),
    "gdpr.art9_condition": _spec(S, "request", "Art. 9(2) condition letter.", list("abcdefghij")),
    "gdpr.consent_basis": _spec(B, "request", "Art. 6(1)(a) or Art. 9(2)(a) is relied on."),
    "gdpr.member_state_law": _spec(B, "request", "The Union/Member State law for 9(2)(i)/(j) is referenced."),
    "gdpr.dpia": _spec(B, "request", "A DPIA is referenced."),
    "gdpr.art30_record": _spec(B, "request", "An Art. 30 record is referenced."),
    "gdpr.third_country": _spec(B, "request", "Recipient is outside the EEA (needs the eea table)."),
    "gdpr.adequacy": _spec(
        S,
        "request",
        "Adequacy of the recipient's country (needs the eea and adequacy tables).",
        ["eea", "adequate", "not_adequate", "scope_unverified"],
    ),
    # -- request: HIPAA
    "hipaa.pathway": _spec(
        S,
        "request",
        "HIPAA disclosure pathway.",
        ["safe_harbor", "expert_determination", "limited_data_set", "authorization", "irb_waiver"],
    ),
    "hipaa.shipped_geography": _spec(
        S, "request", "Finest geography shipped.", ["none", "state", "zip3", "city", "zip5", "street_address"]
    ),
    "hipaa.actual_knowledge": _spec(
        S, "request", "Actual-knowledge attestation.", ["none_known", "flags_present"]
    ),
    "hipaa.irb_waiver": _spec(B, "request", "IRB/privacy board waiver documentation is referenced."),
    "hipaa.waiver.structured": _spec(
        B,
        "request",
        "The waiver is stated with its elements (board, date, criteria...), not only a reference.",
    ),
    "hipaa.waiver.approved": _spec(B, "request", "The waiver was approved on or before the evaluation date."),
    "hipaa.waiver.complete": _spec(
        B,
        "request",
        "The waiver documentation states the criteria are met, describes the PHI, says normal or expedited "
        "review and is signed (164.512(i)(2)).",
    ),
    "hipaa.expert.report": _spec(B, "request", "An expert determination report is referenced."),
    "hipaa.expert.covers_recipient": _spec(B, "request", "The report names this recipient."),
    "hipaa.expert.valid": _spec(B, "request", "The report is dated and not expired at the evaluation date."),
    "hipaa.expert.covers_keyed": _spec(B, "request", "The report covers keyed-hash pseudonyms."),
    "hipaa.expert.requires_dua": _spec(B, "request", "The report requires a DUA (None: unstated)."),
    # -- request: PIPL
    "pipl.lawful_basis": _spec(
        S,
        "request",
        "Art. 13 basis.",
        ["consent", "contract", "hr_management", "statutory_duty", "public_health_emergency", "other_law"],
    ),
    "pipl.exporter_ciio": _spec(B, "request", "Exporter is a CIIO."),
    "pipl.important_data": _spec(B, "request", "Important data is included."),
    "pipl.pipia": _spec(B, "request", "A PIPIA is referenced."),
    "pipl.notice": _spec(B, "request", "An Art. 17/39 notice record is referenced."),
    "pipl.entrusted_agreement": _spec(
        B, "request", "An Art. 21 entrusted-processing agreement is referenced."
    ),
    "pipl.genomic_data": _spec(B, "request", "Genomic data is bundled (None: unstated)."),
    # -- request: de-identification profile
    "profile.name": _spec(S, "request", "Name of the de-identification profile."),
    "profile.pseudonym_method": _spec(
        S, "request", "keyed (HMAC) or random (vault tokens).", ["keyed", "random"]
    ),
    "profile.options": _spec(SET, "request", "PS3.15 options switched on.", [o.value for o in Option]),
    "profile.age_cap": _spec(INT, "request", "Ages at or above this are written as this (None: no cap)."),
    "profile.ocr": _spec(S, "request", "Burned-in text OCR mode.", ["auto", "on", "off"]),
    "profile.free_text": _spec(
        S,
        "request",
        "What the profile does with free text Table E.1-1 does not list (comments, Text Value, titles).",
        ["keep", "clean"],
    ),
    "profile.unlisted_dates": _spec(
        S,
        "request",
        "What the compiled profile does with dates and times Table E.1-1 does not list (handled by VR "
        "like the table's: removed, shifted by the keyed offset, or kept).",
        ["removed", "shifted", "kept"],
    ),
    "profile.residual_identifiers": _spec(
        SET,
        "request",
        "Safe Harbor categories (A-R) with an attribute the compiled profile keeps unchanged or replaces "
        "with a fixed value (needs the safe_harbor_identifiers table).",
        _CATEGORIES,
    ),
    "profile.residual_options": _spec(
        SET,
        "request",
        "What keeps those attributes: the PS3.15 options, or 'override' for the profile's site overrides.",
        [*(o.value for o in Option), "override", "basic"],
    ),
    "profile.residual_attributes": _spec(
        SET, "request", "Keywords of the attributes kept or replaced (shown in findings)."
    ),
    "profile.override_identifiers": _spec(
        SET,
        "request",
        "Safe Harbor categories kept or replaced by the profile's site overrides.",
        _CATEGORIES,
    ),
    "profile.cleaned_identifiers": _spec(
        SET,
        "request",
        "Safe Harbor categories with an attribute the profile cleans (C: kept with identifying parts "
        "replaced, e.g. shifted dates, cleaned descriptions).",
        _CATEGORIES,
    ),
    "profile.coded_identifiers": _spec(
        SET,
        "request",
        "Safe Harbor categories replaced by pseudonyms or new UIDs (re-identification codes).",
        _CATEGORIES,
    ),
    # -- patient
    "patient.age": _spec(INT, "patient", "Age in years (None: unknown)."),
    "consent.present": _spec(B, "patient", "The consent file has a record for this patient."),
    "consent.active": _spec(B, "patient", "The consent is in force: given by now (FHIR: status active)."),
    "consent.withdrawn": _spec(B, "patient", "The consent was withdrawn (FHIR: status inactive)."),
    "consent.expired": _spec(B, "patient", "The consent's validity ended."),
    "consent.covers_purpose": _spec(
        B, "patient", "The consent's permission covers the purpose (DUO or FHIR)."
    ),
    "consent.explicit": _spec(B, "patient", "The consent is explicit (GDPR Art. 9(2)(a))."),
    "consent.duo_unmet": _spec(SET, "patient", "DUO modifiers whose conditions are not met.", _DUO),
    "consent.unevaluated": _spec(
        B, "patient", "The FHIR consent has restrictions privguard cannot evaluate."
    ),
    "consent.pipl_sensitive": _spec(
        B, "patient", "Separate consent for sensitive PI in force (PIPL Art. 29)."
    ),
    "consent.pipl_cross_border": _spec(
        B, "patient", "Separate consent for cross-border provision (PIPL Art. 39)."
    ),
    "consent.gdpr_transfer": _spec(B, "patient", "Explicit consent to the transfer (GDPR Art. 49(1)(a))."),
    "consent.guardian": _spec(B, "patient", "A guardian's consent in force (PIPL Art. 31)."),
    "consent.hipaa_authorization": _spec(
        B, "patient", "A HIPAA authorization (164.508) in force naming this recipient."
    ),
    # -- dataset (after exclusions)
    "dataset.requested": _spec(INT, "dataset", "Patients in the request."),
    "dataset.included": _spec(INT, "dataset", "Patients left after exclusions."),
    "dataset.excluded": _spec(INT, "dataset", "Patients excluded."),
    "dataset.withdrawn_consents": _spec(
        INT, "dataset", "Requested patients whose consent record shows a withdrawal."
    ),
    "dataset.modalities": _spec(SET, "dataset", "Modalities of included studies."),
    "dataset.studies": _spec(INT, "dataset", "Included studies."),
    "dataset.allow_patient_exclusion": _spec(
        B, "dataset", "Patients may be excluded (false: the export is all or nothing)."
    ),
    "dataset.consent_permissions": _spec(
        SET,
        "dataset",
        "Consent permissions of the included patients (DUO permission codes; FHIR for FHIR consents).",
        ["NRES", "GRU", "HMB", "DS", "POA", "FHIR"],
    ),
    "dataset.consents_covering": _spec(
        INT, "dataset", "Included patients whose consent record covers the purpose."
    ),
    "gdpr.large_scale": _spec(
        B,
        "dataset",
        "The export reaches the policy's large-scale threshold for GDPR Art. 35(3)(b) (needs the "
        "dpia_large_scale table).",
    ),
    "dataset.max_age": _spec(INT, "dataset", "Highest known age of included patients (None: none known)."),
    "dataset.ages_unknown": _spec(INT, "dataset", "Included patients without an age."),
    "dataset.under_18": _spec(INT, "dataset", "Included patients known to be under 18."),
    "dataset.zip3_restricted": _spec(
        INT, "dataset", "Included patients whose ZIP3 is on the restricted list."
    ),
    "dataset.zip3_unknown": _spec(INT, "dataset", "Included patients without a ZIP3."),
    "dataset.face_not_defaced": _spec(INT, "dataset", "Included head CT/MR or photo studies not defaced."),
    "dataset.face_unknown": _spec(INT, "dataset", "Included CT/MR studies, not defaced, body part unknown."),
    "dataset.burned_in_flagged": _spec(
        INT, "dataset", "Included studies that carry or often carry burned-in text."
    ),
    "dataset.burned_in_unknown": _spec(INT, "dataset", "Other included studies without BurnedInAnnotation."),
    "pipl.sensitive_persons": _spec(
        INT, "dataset", "Sensitive-PI persons since 1 January (at least the included)."
    ),
    "pipl.non_sensitive_persons": _spec(INT, "dataset", "Non-sensitive-PI persons since 1 January."),
    "pipl.required_mechanism": _spec(
        S,
        "dataset",
        "Mechanism the CAC thresholds require (None: unknown).",
        ["security_assessment", "contract_or_certification", "exempt"],
    ),
    "pipl.minimum_mechanism": _spec(
        S,
        "dataset",
        "The least mechanism required whatever the unstated CIIO, important-data and volume facts turn "
        "out to be (unstated flags read as false, counts at what this export proves).",
        ["security_assessment", "contract_or_certification", "exempt"],
    ),
    "gdpr.adequacy_decision": _spec(
        S, "request", "The adequacy decision relied on, as the policy's table names it."
    ),
}

Facts = dict[str, FactValue]

_MECHANISM_OF_KIND = {
    "gdpr_scc": "scc",
    "gdpr_bcr": "bcr",
    "gdpr_derogation": "derogation",
    "pipl_security_assessment": "security_assessment",
    "pipl_standard_contract": "standard_contract",
    "pipl_certification": "certification",
    "pipl_exemption": "exemption",
}


@dataclass(frozen=True)
class Context:
    """Everything facts are computed from."""

    request: ExportRequest
    profile: DeidProfile
    consents: ConsentSet | None
    tables: DataTables
    now: dt.datetime
    inferred: frozenset[Regime] = frozenset()
    """Regimes that apply from the facts (:func:`infer_regimes`)."""

    @property
    def today(self) -> dt.date:
        return self.now.date()


def infer_regimes(request: ExportRequest, eea: CountryList | None) -> frozenset[Regime]:
    """Regimes that apply from the facts, whatever the request names.

    GDPR when the requester is in the EEA; PIPL when the requester is in
    China; HIPAA when the requester says it is a covered entity or business
    associate.
    """
    out: set[Regime] = set()
    if eea is not None and request.requester.country in eea.countries:
        out.add(Regime.GDPR)
    if request.requester.country == "CN":
        out.add(Regime.PIPL)
    if request.requester.hipaa_covered_entity:
        out.add(Regime.HIPAA)
    return frozenset(out)


def _in(country: str, table: CountryList | None) -> bool | None:
    return None if table is None else country in table.countries


def _adequacy(ctx: Context) -> tuple[str | None, str | None]:
    """(adequacy status, the decision relied on as the table names it)."""
    rec, tables = ctx.request.recipient, ctx.tables
    if tables.eea is None or tables.adequacy is None:
        return None, None
    if rec.country in tables.eea.countries and rec.international_organisation is None:
        return "eea", None
    for d in tables.adequacy.decisions:
        hit = (d.body is not None and d.body == rec.international_organisation) or (
            d.country is not None and d.country == rec.country and rec.international_organisation is None
        )
        if not hit or not d.in_force(ctx.today):
            continue
        if d.scope == "full":
            return "adequate", d.decision
        if d.scope == "dpf_certified":
            return ("adequate", d.decision) if rec.dpf_certified is True else ("not_adequate", None)
        return "scope_unverified", d.decision
    return "not_adequate", None


def _transfer_facts(ctx: Context) -> Facts:
    today = ctx.today
    valid: set[str] = set()
    expired: set[str] = set()
    claims: set[str] = set()
    derogations: set[str] = set()
    exemptions: set[str] = set()
    occasional: bool | None = None
    scc_module: str | None = None
    scc_signed: str | None = None
    for t in ctx.request.transfers:
        if t.kind == "gdpr_adequacy":
            claims.add("adequacy")
            continue
        name = _MECHANISM_OF_KIND[t.kind]
        claims.add(name)
        ok = True
        signed = getattr(t, "signed", None)
        until = getattr(t, "valid_until", None)
        if signed is not None and signed > today:
            ok = False
        if until is not None and until < today:
            ok = False
        (valid if ok else expired).add(name)
        if t.kind == "gdpr_derogation":
            derogations.add(t.derogation)
            occasional = t.occasional
        if t.kind == "pipl_exemption":
            exemptions.add(t.exemption)
        if t.kind == "gdpr_scc":
            scc_module, scc_signed = t.module, t.signed.isoformat()
    return {
        "transfer.scc_module": scc_module,
        "transfer.scc_signed": scc_signed,
        "transfer.claims": frozenset(claims),
        "transfer.mechanisms": frozenset(valid),
        "transfer.expired": frozenset(expired),
        "transfer.derogations": frozenset(derogations),
        "transfer.derogation_occasional": occasional,
        "transfer.pipl_exemptions": frozenset(exemptions),
    }


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


_CODED = frozenset({"U", "H"})


def _unlisted_dates(profile: DeidProfile) -> str:
    """``profile.unlisted_dates``: the compiled rule for dates and times Table E.1-1 does not list."""
    code = compile_plan(profile).unlisted_dates.code
    return {"K": "kept", "C": "shifted"}.get(code, "removed")


def residual_facts(profile: DeidProfile, table: IdentifierTable | None) -> Facts:
    """What the compiled profile leaves of the Safe Harbor identifiers (HHS: "residual identifiers").

    Every attribute of the identifier table is looked up in the compiled
    plan (Table E.1-1 + options + overrides, privguard.header.plan): kept
    (K) or replaced by a fixed value (an override) is residual; cleaned (C)
    is reported apart; pseudonyms and new UIDs are codes. Unknown without
    the table.
    """
    names = (
        "profile.residual_identifiers",
        "profile.residual_options",
        "profile.residual_attributes",
        "profile.override_identifiers",
        "profile.cleaned_identifiers",
        "profile.coded_identifiers",
    )
    if table is None:
        return dict.fromkeys(names)
    plan = compile_plan(profile)
    residual: set[str] = set()
    sources: set[str] = set()
    attributes: set[str] = set()
    overrides: set[str] = set()
    cleaned: set[str] = set()
    coded: set[str] = set()
    for tag, (category, keyword) in table.by_tag().items():
        rule = plan.rules.get(tag)
        if rule is None:
            continue  # not in Table E.1-1 and not overridden: the Basic Profile removes it
        if rule.code in ("K", "R"):
            residual.add(category)
            attributes.add(keyword)
            sources.add(rule.source)
            if rule.source == "override":
                overrides.add(category)
        elif rule.code == "C":
            cleaned.add(category)
        elif rule.code in _CODED or (tag in PSEUDONYM_TAGS and "D" in rule.code):
            coded.add(category)
    return dict(
        zip(
            names,
            (
                frozenset(residual),
                frozenset(sources),
                frozenset(attributes),
                frozenset(overrides),
                frozenset(cleaned),
                frozenset(coded),
            ),
            strict=True,
        )
    )


def request_facts(ctx: Context) -> Facts:
    """Facts of the ``request`` phase."""
    req, prof, tables, today = ctx.request, ctx.profile, ctx.tables, ctx.today
    declared = frozenset(r.value for r in req.regimes)
    inferred = frozenset(r.value for r in ctx.inferred)
    recipient_in_eea = _in(req.recipient.country, tables.eea)
    if req.recipient.international_organisation is not None and recipient_in_eea is not None:
        recipient_in_eea = False
    facts: Facts = {
        "request.regimes": declared | inferred,
        "request.declared_regimes": declared,
        "requester.country": req.requester.country,
        "requester.kind": req.requester.kind,
        "requester.in_eea": _in(req.requester.country, tables.eea),
        "recipient.country": req.recipient.country,
        "recipient.kind": req.recipient.kind,
        "recipient.role": req.recipient.role,
        "recipient.in_eea": recipient_in_eea,
        "recipient.dpf_certified": req.recipient.dpf_certified,
        "purpose.category": req.purpose.category,
        "purpose.primary": req.purpose.primary.code.value,
        "purpose.commercial": req.purpose.commercial,
        "transfer.cross_border": req.requester.country != req.recipient.country
        or req.recipient.international_organisation is not None,
        "dua.present": req.dua is not None,
        "dua.valid": req.dua is not None
        and req.dua.signed <= today
        and (req.dua.valid_until is None or today <= req.dua.valid_until),
        "ethics.present": req.ethics is not None,
        "retention.present": req.retention is not None,
        "retention.kind": req.retention.kind if req.retention else None,
        "retention.indefinite": None if req.retention is None else req.retention.kind == "indefinite",
        "retention.end": _iso(req.retention.end(req.created)) if req.retention else None,
        "output.kind": req.output.kind if req.output else None,
        "output.anonymous": req.output is not None
        and req.output.kind == "aggregate"
        and req.output.includes_pseudonyms is False,
        "pixels.report": req.pixels is not None,
        "pixels.text_remaining": req.pixels.text_remaining if req.pixels else None,
        "pseudonymisation.key_shared": None
        if req.pseudonymisation is None
        else req.pseudonymisation.key_shared_with_recipient,
        "consents.supplied": ctx.consents is not None,
        "profile.name": prof.name,
        "profile.pseudonym_method": prof.pseudonyms.method,
        "profile.options": frozenset(o.value for o in prof.options),
        "profile.age_cap": prof.age_cap,
        "profile.ocr": prof.pixels.ocr,
        "profile.free_text": "clean" if prof.cleans_free_text else "keep",
        "profile.unlisted_dates": _unlisted_dates(prof),
    }
    facts.update(_transfer_facts(ctx))
    facts.update(residual_facts(prof, tables.safe_harbor_identifiers))
    adequacy, decision = _adequacy(ctx)
    g = req.gdpr
    facts.update(
        {
            "gdpr.art6_basis": g.art6_basis if g else None,
            "gdpr.art9_condition": g.art9_condition if g else None,
            "gdpr.consent_basis": bool(g and (g.art6_basis == "a" or g.art9_condition == "a")),
            "gdpr.member_state_law": bool(g and g.member_state_law),
            "gdpr.dpia": bool(g and g.dpia),
            "gdpr.art30_record": bool(g and g.art30_record),
            "gdpr.third_country": None if recipient_in_eea is None else not recipient_in_eea,
            "gdpr.adequacy": adequacy,
            "gdpr.adequacy_decision": decision,
        }
    )
    h = req.hipaa
    ed = h.expert_determination if h else None
    waiver = h.irb_waiver if h else None
    facts.update(
        {
            "hipaa.pathway": h.pathway if h else None,
            "hipaa.shipped_geography": h.shipped_geography if h else None,
            "hipaa.actual_knowledge": h.actual_knowledge if h else None,
            "hipaa.irb_waiver": bool(h and h.irb_waiver),
            "hipaa.waiver.structured": isinstance(waiver, IrbWaiver),
            "hipaa.waiver.approved": isinstance(waiver, IrbWaiver) and waiver.approved <= today,
            "hipaa.waiver.complete": isinstance(waiver, IrbWaiver)
            and waiver.criteria_met is True
            and waiver.phi_described is True
            and waiver.review is not None
            and waiver.signed is True,
            "hipaa.expert.report": ed is not None,
            "hipaa.expert.covers_recipient": ed is not None and ed.recipient == req.recipient.organisation,
            "hipaa.expert.valid": ed is not None
            and ed.date <= today
            and (ed.valid_until is None or today <= ed.valid_until),
            "hipaa.expert.covers_keyed": ed.covers_keyed_pseudonyms if ed else None,
            "hipaa.expert.requires_dua": ed.requires_dua if ed else None,
        }
    )
    p = req.pipl
    facts.update(
        {
            "pipl.lawful_basis": p.lawful_basis if p else None,
            "pipl.exporter_ciio": p.exporter_ciio if p else None,
            "pipl.important_data": p.important_data if p else None,
            "pipl.pipia": bool(p and p.pipia and p.pipia.date <= today),
            "pipl.notice": bool(p and p.notice),
            "pipl.entrusted_agreement": bool(p and p.entrusted_agreement),
            "pipl.genomic_data": p.genomic_data if p else None,
        }
    )
    return facts


def purpose_context(ctx: Context) -> PurposeContext:
    """The request reduced to what DUO matching needs."""
    req = ctx.request
    primary = req.purpose.primary
    return PurposeContext(
        primary=primary.code,
        disease=primary.disease,
        disease_ancestors=frozenset(primary.disease_ancestors),
        category=req.purpose.category,
        commercial=req.purpose.commercial,
        for_profit_recipient=req.recipient.kind == "commercial",
        methods_development=req.purpose.methods_development,
        genetic_study=req.purpose.genetic_study,
        research_type=req.purpose.research_type,
        agreements=frozenset(req.purpose.agreements),
        ethics_approval=req.ethics is not None and req.ethics.approved <= ctx.today,
        dac_approval=req.purpose.dac_approval is not None,
        recipient_country=req.recipient.country,
        now=ctx.today,
    )


def fhir_context(ctx: Context) -> FhirContext:
    """The request reduced to what FHIR Consent evaluation needs."""
    rec = ctx.request.recipient
    names = {rec.organisation, *rec.identifiers}
    return FhirContext(
        purposes=ctx.request.purpose.purposes_of_use, recipient_names=frozenset(names), now=ctx.today
    )


_NO_RECORD: Facts = {
    "consent.present": False,
    "consent.active": None,
    "consent.withdrawn": None,
    "consent.expired": None,
    "consent.covers_purpose": None,
    "consent.explicit": None,
    "consent.duo_unmet": None,
    "consent.unevaluated": None,
    "consent.pipl_sensitive": False,
    "consent.pipl_cross_border": False,
    "consent.gdpr_transfer": False,
    "consent.guardian": False,
    "consent.hipaa_authorization": False,
}


class PatientFacts:
    """Computes ``patient``-phase facts; DUO matching is cached on the consent's terms.

    One instance per check: it holds the request reduced to what consent
    matching needs.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.today = ctx.today
        self.today_iso = ctx.today.isoformat()
        self.duo_ctx = purpose_context(ctx)
        self.fhir_ctx = fhir_context(ctx)
        rec = ctx.request.recipient
        self.recipient_names = frozenset({rec.organisation, *rec.identifiers})
        self._duo: dict[tuple[object, ...], tuple[bool, frozenset[str]]] = {}

    def _match(
        self, key: object, permission: ConsentTerm, modifiers: tuple[ConsentTerm, ...], given: dt.date
    ) -> tuple[bool, frozenset[str]]:
        ts = any(m.code is DuoCode.TS for m in modifiers)
        k = (key, given if ts else None)
        hit = self._duo.get(k)
        if hit is None:
            result = match(permission, modifiers, self.duo_ctx, given)
            hit = self._duo[k] = (result.covers_purpose, frozenset(result.unmet))
        return hit

    def of(self, age: int | None, record: DuoConsent | FhirConsent | ConsentRow | None) -> Facts:
        """Facts of one patient and their consent record (if any)."""
        if record is None:
            return {"patient.age": age, **_NO_RECORD}
        if isinstance(record, ConsentRow):
            return self._row(age, record)
        today = self.today
        facts: Facts = {"patient.age": age, "consent.present": True}
        withdrawn = record.withdrawn is not None and record.withdrawn <= today
        if isinstance(record, DuoConsent):
            covers, unmet = self._match(
                (record.permission, record.modifiers), record.permission, record.modifiers, record.given
            )
            facts.update(
                {
                    "consent.active": record.given <= today,
                    "consent.withdrawn": withdrawn,
                    "consent.expired": record.expires is not None and today > record.expires,
                    "consent.covers_purpose": covers,
                    "consent.duo_unmet": unmet,
                    "consent.unevaluated": False,
                }
            )
        else:
            fr = evaluate_fhir(record.resource, self.fhir_ctx)
            facts.update(
                {
                    "consent.active": fr.active and not fr.not_yet_valid,
                    "consent.withdrawn": withdrawn or fr.withdrawn,
                    "consent.expired": fr.expired,
                    "consent.covers_purpose": fr.covers_purpose,
                    "consent.duo_unmet": frozenset(),
                    "consent.unevaluated": fr.unevaluated,
                }
            )
        sep = record.separate
        auth = sep.hipaa_authorization
        facts.update(
            {
                "consent.explicit": record.explicit,
                "consent.pipl_sensitive": bool(sep.pipl_sensitive and sep.pipl_sensitive.valid_at(today)),
                "consent.pipl_cross_border": bool(
                    sep.pipl_cross_border and sep.pipl_cross_border.valid_at(today)
                ),
                "consent.gdpr_transfer": bool(sep.gdpr_transfer and sep.gdpr_transfer.valid_at(today)),
                "consent.guardian": bool(record.guardian and record.guardian.valid_at(today)),
                "consent.hipaa_authorization": bool(
                    auth and auth.valid_at(today) and auth.recipient in self.recipient_names
                ),
            }
        )
        return facts

    def _row(self, age: int | None, r: ConsentRow) -> Facts:
        today = self.today_iso
        permission, modifiers = parse_terms(r.terms)
        covers, unmet = self._match(r.terms, permission, modifiers, dt.date.fromisoformat(r.given))
        return {
            "patient.age": age,
            "consent.present": True,
            "consent.active": r.given <= today,
            "consent.withdrawn": r.withdrawn is not None and r.withdrawn <= today,
            "consent.expired": r.expires is not None and today > r.expires,
            "consent.covers_purpose": covers,
            "consent.explicit": r.explicit,
            "consent.duo_unmet": unmet,
            "consent.unevaluated": False,
            "consent.pipl_sensitive": r.pipl_sensitive is not None and r.pipl_sensitive <= today,
            "consent.pipl_cross_border": r.pipl_cross_border is not None and r.pipl_cross_border <= today,
            "consent.gdpr_transfer": r.gdpr_transfer is not None and r.gdpr_transfer <= today,
            "consent.guardian": r.guardian is not None and r.guardian <= today,
            "consent.hipaa_authorization": False,
        }


def permission_of(record: DuoConsent | FhirConsent | ConsentRow | None) -> str | None:
    """The consent permission reported in ``dataset.consent_permissions``."""
    if record is None:
        return None
    if isinstance(record, ConsentRow):
        return record.terms.split("\t", 1)[0]
    if isinstance(record, DuoConsent):
        return record.permission.code.value
    return "FHIR"


def pipl_required_mechanism(
    ciio: bool | None,
    important: bool | None,
    sensitive: int | None,
    non_sensitive: int | None,
    table: CacThresholds | None,
    sensitive_floor: int = 0,
) -> str | None:
    """The cross-border mechanism the CAC table requires (compliance.md 3.5), or None if unknown.

    ``sensitive_floor`` is a lower bound on the sensitive count known without
    the declared figure (the patients of this export).
    """
    if table is None:
        return None
    sa, cc = table.security_assessment, table.contract_or_certification
    if ciio is True or important is True or sensitive_floor >= sa.sensitive_persons_min:
        return "security_assessment"
    if (sensitive is not None and sensitive >= sa.sensitive_persons_min) or (
        non_sensitive is not None and non_sensitive >= sa.non_sensitive_persons_min
    ):
        return "security_assessment"
    if ciio is None or important is None or sensitive is None or non_sensitive is None:
        return None
    if sensitive >= cc.sensitive_persons_min or non_sensitive >= cc.non_sensitive_persons_min:
        return "contract_or_certification"
    return "exempt"


class DatasetFacts:
    """Accumulates the ``dataset``-phase facts over the included patients, one patient at a time."""

    def __init__(self, ctx: Context, kinds: StudyKinds) -> None:
        self.ctx = ctx
        t = ctx.tables
        self._zip3 = frozenset(t.restricted_zip3.prefixes) if t.restricted_zip3 else None
        self.kinds = kinds
        self._kind_counts: list[int] = []
        self._shapes: dict[tuple[str | None, tuple[int, ...]], int] = {}
        self.requested = 0
        self.included = 0
        self.withdrawn = 0
        self.covering = 0
        self.permissions: set[str] = set()
        self.max_age: int | None = None
        self.ages_unknown = self.under_18 = self.zip3_restricted = self.zip3_unknown = 0

    def add(self, p: PatientView) -> None:
        """Count an included patient's ZIP3 and studies (by shape: patients often share both)."""
        shape = p[2:]
        self._shapes[shape] = self._shapes.get(shape, 0) + 1

    def _fold(self) -> None:
        """Fold the shapes into counts (once, before the facts are read)."""
        counts = self._kind_counts
        for (zip3, kinds), n in self._shapes.items():
            self.included += n
            if zip3 is None:
                self.zip3_unknown += n
            elif self._zip3 is not None and zip3 in self._zip3:
                self.zip3_restricted += n
            for k in kinds:
                if k >= len(counts):
                    counts.extend([0] * (k + 1 - len(counts)))
                counts[k] += n
        self._shapes = {}

    def _studies(self) -> tuple[int, set[str], int, int, int, int]:
        face, burned = self.ctx.tables.face_imaging, self.ctx.tables.burned_in_text
        total = nd = unknown = flagged = b_unknown = 0
        modalities: set[str] = set()
        for k, n in enumerate(self._kind_counts):
            if not n:
                continue
            s = self.kinds.views[k]
            total += n
            modalities.add(s.modality)
            if face is not None and not s.defaced:
                hit = (s.modality in face.modalities and s.body_part in face.body_parts) or (
                    s.modality in face.photo_modalities
                )
                nd += n * hit
                unknown += n * (s.modality in face.modalities and s.body_part is None)
            if burned is not None:
                flagged += n * (s.burned_in == "YES" or s.modality in burned.modalities)
                b_unknown += n * (s.burned_in is None and s.modality not in burned.modalities)
        return total, modalities, nd, unknown, flagged, b_unknown

    def add_group(self, age: int | None, permission: str | None, covers: bool, n: int) -> None:
        """Count ``n`` included patients of one age, consent permission and coverage."""
        if permission is not None:
            self.permissions.add(permission)
        self.covering += covers * n
        if age is None:
            self.ages_unknown += n
        else:
            if self.max_age is None or age > self.max_age:
                self.max_age = age
            self.under_18 += (age < 18) * n

    def facts(self) -> Facts:
        """The dataset facts."""
        self._fold()
        req, tables = self.ctx.request, self.ctx.tables
        p = req.pipl
        included = self.included
        declared_sensitive = p.sensitive_persons_ytd if p else None
        sensitive = None if declared_sensitive is None else max(declared_sensitive, included)
        non_sensitive = p.non_sensitive_persons_ytd if p else None
        ciio = p.exporter_ciio if p else None
        important = p.important_data if p else None
        large = tables.dpia_large_scale
        studies, modalities, face_nd, face_unknown, burned_flagged, burned_unknown = self._studies()
        face, burned = tables.face_imaging, tables.burned_in_text
        return {
            "dataset.requested": self.requested,
            "dataset.included": included,
            "dataset.excluded": self.requested - included,
            "dataset.withdrawn_consents": self.withdrawn,
            "dataset.modalities": frozenset(modalities),
            "dataset.studies": studies,
            "dataset.allow_patient_exclusion": req.dataset.allow_patient_exclusion,
            "dataset.consent_permissions": frozenset(self.permissions),
            "dataset.consents_covering": self.covering,
            "dataset.max_age": self.max_age,
            "dataset.ages_unknown": self.ages_unknown,
            "dataset.under_18": self.under_18,
            "dataset.zip3_restricted": None if self._zip3 is None else self.zip3_restricted,
            "dataset.zip3_unknown": self.zip3_unknown,
            "dataset.face_not_defaced": None if face is None else face_nd,
            "dataset.face_unknown": None if face is None else face_unknown,
            "dataset.burned_in_flagged": None if burned is None else burned_flagged,
            "dataset.burned_in_unknown": None if burned is None else burned_unknown,
            "gdpr.large_scale": None if large is None else included >= large.data_subjects_min,
            "pipl.sensitive_persons": sensitive,
            "pipl.non_sensitive_persons": non_sensitive,
            "pipl.required_mechanism": pipl_required_mechanism(
                ciio, important, sensitive, non_sensitive, tables.cac_thresholds, sensitive_floor=included
            ),
            "pipl.minimum_mechanism": pipl_required_mechanism(
                ciio is True,
                important is True,
                sensitive if sensitive is not None else included,
                non_sensitive if non_sensitive is not None else 0,
                tables.cac_thresholds,
                sensitive_floor=included,
            ),
        }
