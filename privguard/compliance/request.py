"""The export request: who sends what to whom, for which purpose, under which rules.

A request is data the privacy officer reviews and signs. Optional fields that
the check needs are reported as missing (a finding), never filled with a
permissive default: a flag the request leaves unstated is read at its most
restrictive value. Fields that could only ever make a request look better by
being left out (expiry dates of contracts and approvals) are required, with
``null`` meaning "no expiry".

The field list follows compliance.md 1.8 (HIPAA), 2.7 (GDPR) and 3.7 (PIPL).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from privguard.compliance._base import (
    CountryCode,
    Identifier,
    Label,
    Model,
    Reference,
    Regime,
    Sha256Hex,
    Text,
    unique,
)
from privguard.compliance.duo import DECLARATIONS, PURPOSES, DuoCode, PurposeTerm

OrganisationKind = Literal["academic", "healthcare", "nonprofit", "public_authority", "commercial"]
PurposeCategory = Literal["research", "public_health", "health_care_operations", "clinical_care"]
PurposeOfUse = Annotated[str, Field(pattern=r"^[A-Z]{3,12}$")]

#: Default v3 PurposeOfUse code for each purpose category (compliance.md 4.2 [F3]).
DEFAULT_PURPOSE_OF_USE: dict[str, str] = {
    "research": "HRESCH",
    "public_health": "PUBHLTH",
    "health_care_operations": "HOPERAT",
    "clinical_care": "TREAT",
}


class Party(Model):
    """An organisation that sends or receives the export."""

    organisation: Label
    country: CountryCode
    kind: OrganisationKind = Field(description="commercial means a for-profit organisation (DUO NPU/NCU).")
    role: Literal["controller", "processor"] | None = Field(
        default=None,
        description="Data protection role; unstated is read as processor (needs the most paperwork).",
    )
    identifiers: tuple[Identifier, ...] = Field(
        default=(), description="e.g. ROR ids, matched to FHIR actors."
    )


class Requester(Party):
    """The exporting organisation (the sender)."""

    hipaa_covered_entity: bool | None = Field(
        default=None, description="Covered entity or business associate under HIPAA (then HIPAA applies)."
    )


class Recipient(Party):
    """The receiving organisation."""

    dpf_certified: bool | None = Field(
        default=None, description="US recipient certified under the EU-US Data Privacy Framework."
    )
    international_organisation: Identifier | None = Field(
        default=None, description="Set for an international organisation (e.g. EPO)."
    )


class Purpose(Model):
    """Why the data is exported, in free text and in DUO terms."""

    description: Text
    category: PurposeCategory
    duo: tuple[PurposeTerm, ...] = Field(
        min_length=1,
        description="One primary purpose (GRU, HMB, DS, POA) plus declarations (NCU, NPU, NPUNCU).",
    )
    commercial: bool | None = Field(
        default=None, description="Commercial use; unstated counts as commercial."
    )
    methods_development: bool | None = Field(
        default=None, description="Methods/software development; unstated counts as yes (DUO NMDS)."
    )
    genetic_study: bool | None = Field(default=None, description="A genetic study (DUO GSO).")
    research_type: Identifier | None = Field(default=None, description="Research type id (DUO RS).")
    agreements: tuple[DuoCode, ...] = Field(
        default=(), description="DUO obligations the recipient has agreed to in writing: COL, PUB, RTN, MOR."
    )
    dac_approval: Reference | None = Field(
        default=None,
        description="Data access committee approval of the users/project/institution (DUO US/PS/IS).",
    )
    purpose_of_use: tuple[PurposeOfUse, ...] = Field(
        default=(), description="v3 PurposeOfUse codes for FHIR consents; default from the category."
    )

    @model_validator(mode="after")
    def _check(self) -> Purpose:
        primary = [t for t in self.duo if t.code in PURPOSES]
        if len(primary) != 1:
            raise ValueError("duo: state exactly one primary purpose (GRU, HMB, DS or POA)")
        declared = {t.code for t in self.duo if t.code in DECLARATIONS}
        if len(declared) + len(primary) != len(self.duo):
            raise ValueError("duo: a declaration is repeated")
        if declared & {DuoCode.NCU, DuoCode.NPUNCU} and self.commercial is not False:
            raise ValueError("duo: NCU/NPUNCU declares non-commercial use, so 'commercial' must be false")
        if not set(self.agreements) <= {DuoCode.COL, DuoCode.PUB, DuoCode.RTN, DuoCode.MOR}:
            raise ValueError("agreements: only COL, PUB, RTN and MOR are agreements")
        if not unique(tuple(a.value for a in self.agreements)) or not unique(self.purpose_of_use):
            raise ValueError("agreements and purpose_of_use must not repeat an entry")
        return self

    @property
    def primary(self) -> PurposeTerm:
        """The primary purpose term."""
        return next(t for t in self.duo if t.code in PURPOSES)

    @property
    def declarations(self) -> frozenset[DuoCode]:
        """The declared modifiers (NCU, NPU, NPUNCU)."""
        return frozenset(t.code for t in self.duo if t.code in DECLARATIONS)

    @property
    def purposes_of_use(self) -> frozenset[str]:
        """The v3 PurposeOfUse codes of this purpose."""
        return frozenset(self.purpose_of_use or (DEFAULT_PURPOSE_OF_USE[self.category],))


class GdprSection(Model):
    """GDPR fields (compliance.md 2.7)."""

    art6_basis: Literal["a", "b", "c", "d", "e", "f"] | None = Field(
        default=None, description="Art. 6(1) basis."
    )
    art9_condition: Literal["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] | None = Field(
        default=None, description="Art. 9(2) condition."
    )
    member_state_law: Reference | None = Field(
        default=None, description="Union or Member State law relied on for Art. 9(2)(i) or (j)."
    )
    dpia: Reference | None = Field(default=None, description="DPIA reference (Art. 35).")
    art30_record: Reference | None = Field(
        default=None, description="Record of processing activity id (Art. 30)."
    )


class ExpertDetermination(Model):
    """An expert's report under 45 CFR 164.514(b)(1)."""

    report: Reference
    expert: Label
    date: dt.date
    recipient: Label = Field(description="The anticipated recipient the report covers.")
    valid_until: dt.date | None = Field(description="Required; null if the report sets no end date.")
    covers_keyed_pseudonyms: bool | None = Field(
        default=None, description="The report covers keyed-hash pseudonyms with the key kept from recipients."
    )
    requires_dua: bool | None = Field(
        default=None, description="The report makes a data use agreement a condition; unstated counts as yes."
    )


class IrbWaiver(Model):
    """An IRB or privacy board waiver of authorization, 45 CFR 164.512(i) (compliance.md 1.7 [H17][H18])."""

    reference: Reference
    board: Label = Field(description="The IRB or privacy board that approved the waiver.")
    approved: dt.date = Field(description="Date of approval.")
    criteria_met: bool | None = Field(
        default=None,
        description="The documentation states the 164.512(i)(2)(ii) criteria are met (unstated: no).",
    )
    phi_described: bool | None = Field(
        default=None, description="The documentation describes the PHI the waiver covers."
    )
    review: Literal["normal", "expedited"] | None = Field(
        default=None, description="Whether review was normal or expedited."
    )
    signed: bool | None = Field(default=None, description="The documentation is signed by the chair.")


class HipaaSection(Model):
    """HIPAA fields (compliance.md 1.8)."""

    pathway: Literal["safe_harbor", "expert_determination", "limited_data_set", "authorization", "irb_waiver"]
    shipped_geography: Literal["none", "state", "zip3", "city", "zip5", "street_address"] = Field(
        description="Finest geographic unit shipped beside the images (the profile removes DICOM addresses)."
    )
    actual_knowledge: Literal["none_known", "flags_present"] | None = Field(
        default=None, description="Attestation for 164.514(b)(2)(ii)."
    )
    actual_knowledge_flags: tuple[Identifier, ...] = Field(
        default=(), description="Short codes of what is known (e.g. rare-condition-small-town)."
    )
    expert_determination: ExpertDetermination | None = None
    irb_waiver: IrbWaiver | Reference | None = Field(
        default=None,
        description="Waiver documentation, 164.512(i)(2): structured, or a bare reference (then reviewed).",
    )

    @model_validator(mode="after")
    def _check(self) -> HipaaSection:
        if self.actual_knowledge == "none_known" and self.actual_knowledge_flags:
            raise ValueError("actual_knowledge: none_known contradicts actual_knowledge_flags")
        return self


class Pipia(Model):
    """A personal information protection impact assessment (PIPL Art. 55-56)."""

    reference: Reference
    date: dt.date


class PiplSection(Model):
    """PIPL fields (compliance.md 3.7)."""

    lawful_basis: (
        Literal[
            "consent", "contract", "hr_management", "statutory_duty", "public_health_emergency", "other_law"
        ]
        | None
    ) = Field(default=None, description="Art. 13 basis.")
    exporter_ciio: bool | None = Field(
        default=None, description="Exporter is a critical information infrastructure operator."
    )
    important_data: bool | None = Field(
        default=None, description="The export includes notified important data."
    )
    sensitive_persons_ytd: int | None = Field(
        default=None,
        ge=0,
        description="Persons whose sensitive PI was exported since 1 January, this export included.",
    )
    non_sensitive_persons_ytd: int | None = Field(
        default=None,
        ge=0,
        description="Persons whose non-sensitive PI was exported since 1 January, this export included.",
    )
    pipia: Pipia | None = None
    notice: Reference | None = Field(default=None, description="Art. 17/39 notice record.")
    entrusted_agreement: Reference | None = Field(
        default=None, description="Art. 21 agreement (recipient is a processor)."
    )
    genomic_data: bool | None = Field(
        default=None, description="Genomic data bundled with the images (HGR rules)."
    )


class GdprAdequacy(Model):
    """Reliance on an adequacy decision, Art. 45 (checked against the policy's list)."""

    kind: Literal["gdpr_adequacy"]


class GdprScc(Model):
    """Standard contractual clauses, Implementing Decision (EU) 2021/914, Art. 46."""

    kind: Literal["gdpr_scc"]
    module: Literal["c2c", "c2p", "p2p", "p2c"]
    signed: dt.date
    reference: Reference


class GdprBcr(Model):
    """Binding corporate rules, Art. 46-47."""

    kind: Literal["gdpr_bcr"]
    reference: Reference


class GdprDerogation(Model):
    """An Art. 49 derogation (a last resort)."""

    kind: Literal["gdpr_derogation"]
    derogation: Literal["49(1)(a)", "49(1)(b)", "49(1)(c)", "49(1)(d)", "49(1)(e)", "49(1)(f)", "49(1)(g)"]
    occasional: bool | None = None


class PiplSecurityAssessment(Model):
    """CAC security assessment, PIPL Art. 38(1), 40 (valid 3 years)."""

    kind: Literal["pipl_security_assessment"]
    reference: Reference
    valid_until: dt.date


class PiplStandardContract(Model):
    """CAC standard contract, filed, PIPL Art. 38(3)."""

    kind: Literal["pipl_standard_contract"]
    filing_reference: Reference
    signed: dt.date


class PiplCertification(Model):
    """PI protection certification, PIPL Art. 38(2) (valid 3 years)."""

    kind: Literal["pipl_certification"]
    reference: Reference
    valid_until: dt.date


class PiplExemption(Model):
    """An exemption under the 2024 Provisions (compliance.md 3.5)."""

    kind: Literal["pipl_exemption"]
    exemption: Literal[
        "non_sensitive_under_100k",
        "contract_with_individual",
        "hr_management",
        "emergency",
        "no_personal_information",
    ]


Transfer = Annotated[
    GdprAdequacy
    | GdprScc
    | GdprBcr
    | GdprDerogation
    | PiplSecurityAssessment
    | PiplStandardContract
    | PiplCertification
    | PiplExemption,
    Field(discriminator="kind"),
]


class Dua(Model):
    """A data use agreement (HIPAA 164.514(e)(4); also an expert's condition)."""

    reference: Reference
    signed: dt.date
    valid_until: dt.date | None = Field(description="Required; null if the agreement has no end date.")


class Ethics(Model):
    """Ethics committee / IRB approval."""

    reference: Reference
    board: Label
    approved: dt.date


#: ``for:`` durations: ISO 8601 years, months, weeks or days (``P10Y``, ``P18M``, ``P2Y6M``, ``P90D``).
Duration = Annotated[
    str, StringConstraints(pattern=r"^P([0-9]{1,3}Y)?([0-9]{1,4}M)?([0-9]{1,4}W)?([0-9]{1,5}D)?$")
]


class Retention(Model):
    """How long the recipient keeps the data.

    Exactly one of: ``until`` (an end date), ``for`` (an ISO 8601 duration
    from the request's ``created`` date), ``indefinite: true`` (no end: a
    finding under GDPR Art. 5(1)(e) and PIPL Art. 19), or ``criterion`` (a
    stated criterion, free text).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    until: dt.date | None = None
    for_: Duration | None = Field(default=None, alias="for")
    indefinite: Literal[True] | None = None
    criterion: Text | None = None

    @model_validator(mode="after")
    def _one(self) -> Retention:
        given = [x for x in (self.until, self.for_, self.indefinite, self.criterion) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'until', 'for', 'indefinite' and 'criterion'")
        if self.for_ == "P":
            raise ValueError("for: an ISO 8601 duration such as P10Y, P18M or P90D")
        return self

    @property
    def kind(self) -> str:
        """until, for, indefinite or criterion."""
        if self.until is not None:
            return "until"
        if self.for_ is not None:
            return "for"
        return "indefinite" if self.indefinite else "criterion"

    def end(self, start: dt.date) -> dt.date | None:
        """The end date (``for`` counted from ``start``), or None for indefinite/criterion."""
        if self.until is not None:
            return self.until
        if self.for_ is None:
            return None
        m = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?", self.for_)
        assert m is not None  # validated by the pattern
        years, months, weeks, days = (int(g) if g else 0 for g in m.groups())
        total = start.year * 12 + start.month - 1 + years * 12 + months
        year, month = divmod(total, 12)
        last = calendar.monthrange(year, month + 1)[1]
        return dt.date(year, month + 1, min(start.day, last)) + dt.timedelta(weeks=weeks, days=days)


class Output(Model):
    """What the recipient receives: record-level (images, per-patient data) or aggregate only."""

    kind: Literal["record_level", "aggregate"] = Field(
        description="aggregate: counts, statistics or models only; no record-level data, no images."
    )
    includes_pseudonyms: bool | None = Field(
        default=None, description="Pseudonyms or tokens appear in the output (unstated counts as yes)."
    )


class PixelEvidence(Model):
    """What a burned-in text scrub (``privguard scrub --report``) found on the exported images."""

    scrub_report: Reference = Field(description="The scrub report the counts come from.")
    images: int = Field(ge=0, description="Images the scrub checked.")
    text_remaining: int = Field(
        ge=0, description="Images where identifying text is still readable (verification failed or not run)."
    )

    @model_validator(mode="after")
    def _fits(self) -> PixelEvidence:
        if self.text_remaining > self.images:
            raise ValueError("text_remaining is larger than images")
        return self


class Pseudonymisation(Model):
    """Who holds the pseudonymisation key or token vault."""

    key_holder: Label
    key_shared_with_recipient: bool | None = Field(
        default=None,
        description="Whether the key or the token table leaves the sender; unstated counts as yes.",
    )


class Study(Model):
    """One study (or series) of the dataset, described by its DICOM header values."""

    id: Identifier
    modality: str = Field(pattern=r"^[A-Z]{2,4}$", description="DICOM Modality, e.g. CT, MR, US.")
    body_part: str | None = Field(
        default=None,
        pattern=r"^[A-Z][A-Z0-9]{0,15}$",
        description="DICOM BodyPartExamined, e.g. HEAD, CHEST.",
    )
    defaced: bool = Field(
        default=False, description="Face removed; RecognizableVisualFeatures (0028,0302) = NO."
    )
    burned_in_annotation: Literal["YES", "NO"] | None = Field(
        default=None, description="BurnedInAnnotation (0028,0301)."
    )


class Patient(Model):
    """One patient of the dataset, by the sender's local id."""

    id: Identifier
    age: int | None = Field(default=None, ge=0, le=150, description="Age in years at the latest study.")
    zip3: str | None = Field(
        default=None, pattern=r"^[0-9]{3}$", description="First three ZIP digits shipped (HIPAA)."
    )
    studies: tuple[Study, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Patient:
        if not unique(tuple(s.id for s in self.studies)):
            raise ValueError("studies: a study id is repeated")
        return self


class Dataset(Model):
    """Which patients and studies the export would contain: listed inline, or in a patient table.

    A ``table`` is a CSV file (one row per study, sorted by patient id; see
    docs/compliance.md) streamed by the check, for cohorts too large to list.
    Its path is relative to the request file; ``sha256`` pins its content.
    """

    patients: tuple[Patient, ...] | None = Field(default=None, min_length=1)
    table: str | None = Field(default=None, min_length=1, max_length=300, description="Patient table (CSV).")
    sha256: Sha256Hex | None = Field(default=None, description="SHA-256 the table must have.")
    allow_patient_exclusion: bool = Field(
        default=True,
        description="false: all or nothing; if any patient would be excluded the export is denied.",
    )

    @model_validator(mode="after")
    def _unique(self) -> Dataset:
        if (self.patients is None) == (self.table is None):
            raise ValueError("give exactly one of 'patients' and 'table'")
        if self.sha256 is not None and self.table is None:
            raise ValueError("sha256 pins a table; give 'table'")
        if self.patients is not None and not unique(tuple(p.id for p in self.patients)):
            raise ValueError("patients: a patient id is repeated")
        return self


class Source(Model):
    """One exporting site of a multi-site request, with its own regime facts.

    The site's ``requester``, ``regimes``, ``gdpr``, ``hipaa``, ``pipl``,
    ``transfers`` and ``pseudonymisation`` replace the request's for its
    patients; a section the site leaves out is missing for it (fail closed),
    never taken from the request. Everything else (recipient, purpose,
    profile, retention, output...) is the request's.
    """

    id: Identifier
    requester: Requester
    regimes: tuple[Regime, ...] = Field(min_length=1)
    gdpr: GdprSection | None = None
    hipaa: HipaaSection | None = None
    pipl: PiplSection | None = None
    transfers: tuple[Transfer, ...] = Field(default=(), description="The site's transfer mechanisms.")
    pseudonymisation: Pseudonymisation | None = None
    patients: tuple[Identifier, ...] = Field(
        min_length=1, description="Ids of the dataset's patients this site exports."
    )


class ExportRequest(Model):
    """An export request (schema version 1). See docs/compliance.md for a commented example."""

    schema_version: Literal[1]
    request_id: Identifier
    created: dt.date
    requester: Requester
    recipient: Recipient
    purpose: Purpose
    regimes: tuple[Regime, ...] = Field(min_length=1, description="The regimes the requester says apply.")
    gdpr: GdprSection | None = None
    hipaa: HipaaSection | None = None
    pipl: PiplSection | None = None
    transfers: tuple[Transfer, ...] = ()
    dua: Dua | None = None
    ethics: Ethics | None = None
    retention: Retention | None = None
    pseudonymisation: Pseudonymisation | None = None
    output: Output | None = Field(default=None, description="Record-level (default) or aggregate output.")
    pixels: PixelEvidence | None = Field(default=None, description="Burned-in text scrub results.")
    deid_profile: str = Field(
        min_length=1,
        max_length=300,
        description="Shipped profile name (basic, research, hipaa-safe-harbor) or path.",
    )
    dataset: Dataset
    sources: tuple[Source, ...] = Field(
        default=(),
        description="Several exporting sites: each decided on its own and the request as a whole. "
        "Every patient of the (inline) dataset belongs to exactly one source.",
    )

    @model_validator(mode="after")
    def _check(self) -> ExportRequest:
        if self.sources:
            if self.dataset.patients is None:
                raise ValueError("sources: list the dataset's patients inline (dataset.patients)")
            if not unique(tuple(src.id for src in self.sources)):
                raise ValueError("sources: a source id is repeated")
            listed = [pid for src in self.sources for pid in src.patients]
            if sorted(listed) != sorted(p.id for p in self.dataset.patients):
                raise ValueError("sources: every dataset patient must belong to exactly one source")
        if not unique(tuple(r.value for r in self.regimes)):
            raise ValueError("regimes: a regime is repeated")
        kinds = [t.kind for t in self.transfers]
        if len(set(kinds)) != len(kinds):
            raise ValueError("transfers: a mechanism kind is listed twice")
        declared = self.purpose.declarations
        if declared & {DuoCode.NPU, DuoCode.NPUNCU} and self.recipient.kind == "commercial":
            raise ValueError(
                "purpose.duo: NPU/NPUNCU declares a not-for-profit user, but recipient.kind is commercial"
            )
        return self
