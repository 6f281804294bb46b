"""HL7 FHIR R4 ``Consent`` resources: the elements privguard reads, and their evaluation.

Elements and their use follow compliance.md 4.2 [F1][F2][F3]:

* only ``status: active`` can permit; ``inactive`` is read as a withdrawal
  (**Interpretation**: R4 has no withdrawal element, 4.2);
* ``scope`` must be ``research`` or ``patient-privacy`` (CodeSystem consentscope);
* ``provision.type`` is the base rule and nested ``provision.provision``
  entries are exceptions to it, applied when their period, purpose, actor and
  action match the export;
* ``provision.purpose`` is compared with the request's v3 PurposeOfUse codes
  (HRESCH healthcare research, CLINTRCH clinical trial research, a kind of HRESCH).

Fail-closed choices (privguard's, documented in docs/compliance.md):

* a ``modifierExtension`` anywhere makes the consent unevaluable (its meaning
  could reverse the rule), so it permits nothing;
* a provision restricted by ``securityLabel``, ``class``, ``code``, ``data`` or
  ``dataPeriod`` cannot be matched to an imaging export: such a permit does not
  apply and such a deny does;
* partial dates (``2024``, ``2024-05``) are read so that the validity window is
  as narrow as possible.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from privguard.compliance._base import Model
from privguard.policyio import BoundedDict, BoundedTuple  # free-form fields are size-bounded (issue 9)

logger = logging.getLogger(__name__)

CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CONSENT_ACTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentaction"

#: Scopes under which a consent can permit sharing (compliance.md 4.2).
SHARING_SCOPES = frozenset({"research", "patient-privacy"})
#: v3 ActReason parent of each code privguard knows a parent for.
POU_PARENT: dict[str, str] = {"CLINTRCH": "HRESCH"}
#: Consent actions an export performs.
EXPORT_ACTIONS = frozenset({"disclose", "use"})

_FhirDate = str


class _Element(Model):
    """FHIR datatypes may carry an ``id`` and ``extension`` anywhere."""

    id: str | None = None
    extension: BoundedTuple = ()


class Coding(_Element):
    system: str | None = None
    version: str | None = None
    code: str | None = None
    display: str | None = None
    userSelected: bool | None = None


class CodeableConcept(_Element):
    coding: tuple[Coding, ...] = ()
    text: str | None = None


class Period(_Element):
    start: _FhirDate | None = None
    end: _FhirDate | None = None

    @field_validator("start", "end")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None:
            parse_fhir_date(v, latest=False)
        return v


class Reference(_Element):
    reference: str | None = None
    type: str | None = None
    identifier: BoundedDict | None = None
    display: str | None = None


class Actor(_Element):
    modifierExtension: BoundedTuple = ()
    role: CodeableConcept
    reference: Reference


class Data(_Element):
    modifierExtension: BoundedTuple = ()
    meaning: Literal["instance", "related", "dependents", "authoredby"]
    reference: Reference


class Provision(_Element):
    """``Consent.provision`` (and nested exceptions)."""

    modifierExtension: BoundedTuple = ()
    type: Literal["deny", "permit"] | None = None
    period: Period | None = None
    actor: tuple[Actor, ...] = ()
    action: tuple[CodeableConcept, ...] = ()
    securityLabel: tuple[Coding, ...] = ()
    purpose: tuple[Coding, ...] = ()
    class_: tuple[Coding, ...] = Field(default=(), alias="class")
    code: tuple[CodeableConcept, ...] = ()
    dataPeriod: Period | None = None
    data: tuple[Data, ...] = ()
    provision: tuple[Provision, ...] = ()

    @property
    def restricted(self) -> bool:
        """Whether the provision limits data by labels, classes, codes or records (not evaluated)."""
        return bool(self.securityLabel or self.class_ or self.code or self.data or self.dataPeriod)

    def has_modifier_extension(self) -> bool:
        own = (
            bool(self.modifierExtension)
            or any(a.modifierExtension for a in self.actor)
            or any(d.modifierExtension for d in self.data)
        )
        return own or any(p.has_modifier_extension() for p in self.provision)


class FhirConsentResource(Model):
    """An HL7 FHIR R4 ``Consent`` resource. Every R4 element is accepted; unknown ones are errors."""

    resourceType: Literal["Consent"]
    id: str | None = None
    meta: BoundedDict | None = None
    implicitRules: str | None = None
    language: str | None = None
    text: BoundedDict | None = None
    contained: BoundedTuple = ()
    extension: BoundedTuple = ()
    modifierExtension: BoundedTuple = ()
    identifier: BoundedTuple = ()
    status: Literal["draft", "proposed", "active", "rejected", "inactive", "entered-in-error"]
    scope: CodeableConcept
    category: tuple[CodeableConcept, ...] = Field(min_length=1)
    patient: Reference | None = None
    dateTime: str | None = None
    performer: BoundedTuple = ()
    organization: BoundedTuple = ()
    sourceAttachment: BoundedDict | None = None
    sourceReference: BoundedDict | None = None
    policy: BoundedTuple = ()
    policyRule: CodeableConcept | None = None
    verification: BoundedTuple = ()
    provision: Provision | None = None

    @field_validator("dateTime")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None:
            parse_fhir_date(v, latest=False)
        return v


def parse_fhir_date(value: str, *, latest: bool) -> dt.date:
    """Parse a FHIR ``date``/``dateTime`` (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD[Thh:mm:ss+zz:zz]``).

    A partial date stands for a range of days; ``latest`` picks its last day,
    otherwise its first.
    """
    text = value.strip()
    try:
        if len(text) == 4:
            year = int(text)
            return dt.date(year, 12, 31) if latest else dt.date(year, 1, 1)
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            last = calendar.monthrange(year, month)[1]
            return dt.date(year, month, last if latest else 1)
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError("not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD...)") from None


@dataclass(frozen=True)
class FhirContext:
    """What a FHIR consent is matched against."""

    purposes: frozenset[str]
    """The request's v3 PurposeOfUse codes."""
    recipient_names: frozenset[str]
    """The recipient's organisation name and identifiers, compared with ``provision.actor``."""
    now: dt.date


@dataclass(frozen=True)
class FhirResult:
    """The outcome of evaluating one FHIR Consent for one export."""

    given: dt.date | None
    active: bool
    withdrawn: bool
    expired: bool
    not_yet_valid: bool
    covers_purpose: bool
    unevaluated: bool


def _codes(codings: tuple[Coding, ...], system: str | None) -> set[str]:
    return {c.code for c in codings if c.code and (system is None or c.system == system)}


def _lineage(code: str) -> set[str]:
    out = {code}
    while code in POU_PARENT:
        code = POU_PARENT[code]
        out.add(code)
    return out


def _in_period(period: Period | None, now: dt.date) -> bool:
    if period is None:
        return True
    if period.start is not None and now < parse_fhir_date(period.start, latest=True):
        return False
    return not (period.end is not None and now > parse_fhir_date(period.end, latest=False))


def _actor_matches(p: Provision, ctx: FhirContext) -> bool:
    for a in p.actor:
        ref = a.reference
        ident = (ref.identifier or {}).get("value")
        if ref.display in ctx.recipient_names or (isinstance(ident, str) and ident in ctx.recipient_names):
            return True
    return False


def _applies(p: Provision, kind: str, ctx: FhirContext, *, check_period: bool = True) -> tuple[bool, bool]:
    """Whether provision ``p`` of type ``kind`` applies to the export; second value: unevaluated."""
    if check_period and not _in_period(p.period, ctx.now):
        return False, False
    if p.restricted:
        # Cannot match labels/classes/codes/records to the export: deny applies, permit does not.
        return kind == "deny", True
    if p.purpose:
        if kind == "permit":
            allowed = _codes(p.purpose, ACT_REASON_SYSTEM)
            if not all(_lineage(c) & allowed for c in ctx.purposes):
                return False, False
        else:
            denied = _codes(p.purpose, None)
            if not any(_lineage(c) & denied for c in ctx.purposes):
                return False, False
    if p.actor and not _actor_matches(p, ctx):
        return False, False
    if p.action:
        actions = set().union(*(_codes(a.coding, None) for a in p.action))
        if kind == "permit" and "disclose" not in actions:
            return False, False
        if kind == "deny" and not actions & EXPORT_ACTIONS:
            return False, False
    return True, False


def _decide(p: Provision, kind: str, ctx: FhirContext) -> tuple[str, bool]:
    """Resolve an applying provision with its nested exceptions; returns (permit|deny, unevaluated)."""
    result, unevaluated = kind, False
    child_results: list[str] = []
    for child in p.provision:
        # A nested provision without a type is read as a deny (fail closed).
        child_kind = child.type or "deny"
        applies, uneval = _applies(child, child_kind, ctx)
        unevaluated |= uneval
        if applies:
            r, u = _decide(child, child_kind, ctx)
            unevaluated |= u
            child_results.append(r)
    if "deny" in child_results:
        result = "deny"
    elif child_results:
        result = "permit"
    return result, unevaluated


def evaluate(resource: FhirConsentResource, ctx: FhirContext) -> FhirResult:
    """Evaluate a FHIR R4 Consent against one export.

    Parameters
    ----------
    resource
        The validated Consent resource.
    ctx
        The export's purposes, recipient and date.

    Returns
    -------
    FhirResult
        Status, validity window and whether the provisions permit the export.
    """
    given = parse_fhir_date(resource.dateTime, latest=True) if resource.dateTime else None
    root = resource.provision
    period = root.period if root is not None else None
    expired = (
        period is not None and period.end is not None and ctx.now > parse_fhir_date(period.end, latest=False)
    )
    not_yet = (
        period is not None
        and period.start is not None
        and ctx.now < parse_fhir_date(period.start, latest=True)
    ) or (given is not None and ctx.now < given)
    unevaluable = bool(resource.modifierExtension) or (root is not None and root.has_modifier_extension())
    scope_ok = bool(_codes(resource.scope.coding, CONSENT_SCOPE_SYSTEM) & SHARING_SCOPES)
    covers, unevaluated = False, unevaluable
    if root is not None and root.type is not None and scope_ok and not unevaluable:
        applies, uneval = _applies(root, root.type, ctx, check_period=False)
        unevaluated |= uneval
        if applies:
            decision, uneval = _decide(root, root.type, ctx)
            unevaluated |= uneval
            covers = decision == "permit"
        elif root.type == "deny":
            # A base deny that does not apply permits nothing by itself.
            covers = False
    result = FhirResult(
        given=given,
        active=resource.status == "active",
        withdrawn=resource.status == "inactive",
        expired=expired,
        not_yet_valid=not_yet,
        covers_purpose=covers,
        unevaluated=unevaluated,
    )
    logger.debug("FHIR consent evaluated: status=%s covers=%s", resource.status, covers)
    return result
