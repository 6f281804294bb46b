"""Consent records per patient: DUO codes or an HL7 FHIR R4 Consent, plus separate consents.

A consent file is a snapshot (id and time, recorded in the decision and the
approval, compliance.md 2.4) of one record per patient. Each record is either

* ``kind: duo``: a DUO permission and modifiers, the date given, an optional
  expiry and withdrawal date; or
* ``kind: fhir``: an R4 ``Consent`` resource (status, provision, period,
  purpose) with an optional withdrawal date from the consent history.

Both kinds may carry the separate consents some rules ask for (PIPL Art. 29
sensitive PI, PIPL Art. 39 cross-border, GDPR Art. 49(1)(a) transfer) and a
guardian's consent for a minor (PIPL Art. 31).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, model_validator

from privguard.compliance._base import Identifier, Model, Sha256Hex, unique
from privguard.compliance.duo import PERMISSIONS, ConsentTerm, DuoCode
from privguard.compliance.fhir import FhirConsentResource


class SeparateConsent(Model):
    """A separate, specific consent with its own dates."""

    given: dt.date
    withdrawn: dt.date | None = None

    def valid_at(self, day: dt.date) -> bool:
        """Given on or before ``day`` and not withdrawn by then."""
        return self.given <= day and (self.withdrawn is None or self.withdrawn > day)


class HipaaAuthorization(SeparateConsent):
    """A research authorization under 45 CFR 164.508 (compliance.md 1.7 [H15][H16]).

    ``withdrawn`` is the date a written revocation was received.
    """

    expires: dt.date | None = Field(
        description="Required: the expiration date; null for an expiration event ('end of the research "
        "study') or 'none', which research authorizations may state."
    )
    recipient: str = Field(
        min_length=1, max_length=200, description="Who may receive the PHI, as authorized."
    )

    def valid_at(self, day: dt.date) -> bool:
        return super().valid_at(day) and (self.expires is None or day <= self.expires)


class Guardian(SeparateConsent):
    """Consent of a parent or other guardian (PIPL Art. 31)."""

    relationship: Literal["parent", "legal_guardian"]


class SeparateConsents(Model):
    """Consents some regimes require on their own, apart from the main consent."""

    pipl_sensitive: SeparateConsent | None = Field(default=None, description="PIPL Art. 29: sensitive PI.")
    pipl_cross_border: SeparateConsent | None = Field(
        default=None, description="PIPL Art. 39: provision abroad."
    )
    gdpr_transfer: SeparateConsent | None = Field(
        default=None,
        description="GDPR Art. 49(1)(a): explicit consent to this transfer, after being told the risks.",
    )
    hipaa_authorization: HipaaAuthorization | None = Field(
        default=None, description="HIPAA 164.508: the patient's authorization of this disclosure."
    )


class _Record(Model):
    patient: Identifier
    withdrawn: dt.date | None = Field(default=None, description="Date the consent was withdrawn.")
    explicit: bool = Field(default=False, description="Explicit consent (GDPR Art. 9(2)(a)).")
    separate: SeparateConsents = SeparateConsents()
    guardian: Guardian | None = None


class DuoConsent(_Record):
    """A consent coded with DUO terms."""

    kind: Literal["duo"]
    given: dt.date
    expires: dt.date | None = None
    permission: ConsentTerm
    modifiers: tuple[ConsentTerm, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> DuoConsent:
        if self.permission.code not in PERMISSIONS:
            raise ValueError("permission: use NRES, GRU, HMB, DS or POA")
        codes = [m.code for m in self.modifiers]
        if any(c in PERMISSIONS for c in codes):
            raise ValueError("modifiers: a permission code is listed as a modifier")
        if not unique(tuple(c.value for c in codes)):
            raise ValueError("modifiers: a modifier is repeated")
        if self.expires is not None and self.expires < self.given:
            raise ValueError("expires is before given")
        return self

    @property
    def modifier_codes(self) -> frozenset[DuoCode]:
        return frozenset(m.code for m in self.modifiers)


class FhirConsent(_Record):
    """A consent given as an HL7 FHIR R4 Consent resource."""

    kind: Literal["fhir"]
    resource: FhirConsentResource


ConsentRecord = Annotated[DuoConsent | FhirConsent, Field(discriminator="kind")]


class Snapshot(Model):
    """Which version of the consent registry this file is."""

    id: Identifier
    taken: dt.datetime


class ConsentSet(Model):
    """A consent file: a snapshot of one record per patient, listed or in a consent table.

    A ``table`` is a CSV file of DUO consents (one row per patient, sorted by
    patient id; see docs/compliance.md) streamed by the check; its path is
    relative to the consent file and ``sha256`` pins its content.
    """

    schema_version: Literal[1]
    snapshot: Snapshot
    records: tuple[ConsentRecord, ...] = ()
    table: str | None = Field(default=None, min_length=1, max_length=300, description="Consent table (CSV).")
    sha256: Sha256Hex | None = Field(default=None, description="SHA-256 the table must have.")

    @model_validator(mode="after")
    def _unique(self) -> ConsentSet:
        if self.table is not None and self.records:
            raise ValueError("give 'records' or 'table', not both")
        if self.sha256 is not None and self.table is None:
            raise ValueError("sha256 pins a table; give 'table'")
        if not unique(tuple(r.patient for r in self.records)):
            raise ValueError("records: a patient has more than one record")
        return self
