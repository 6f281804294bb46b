"""GA4GH Data Use Ontology (DUO): codes, terms and purpose matching.

Codes and meanings follow ``EBISPOT/DUO`` ``duo.csv`` as summarised in
compliance.md 4.1 [U1]. A code may be written as its current shorthand
(``HMB``) or its DUO id (``DUO:0000006``); matching is on the id, because
older DUO releases used ``NPU`` for what is now ``NPUNCU`` (DUO:0000018).

Matching follows the DUO README's description of the Broad DUOS algorithm:

1. a purpose is matched at its most specific level: a consent for DS(X)
   covers a disease purpose DS(Y) only if X is Y or an ancestor of Y
   (the request lists Y's ancestors; privguard ships no disease ontology);
2. disease research is covered by GRU, HMB or a matching DS;
3. population origins/ancestry research is covered by GRU or POA, never HMB;
4. a commercial purpose or a for-profit recipient is covered only when NCU,
   NPU and NPUNCU are all absent;
5. methods development is covered without NMDS, or with NMDS and a matching DS;
6. the other modifiers are obligations checked outside the purpose tree.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from privguard.compliance._base import CountryCode, Curie, Identifier, Model, unique

logger = logging.getLogger(__name__)


class DuoCode(StrEnum):
    """DUO terms by their current shorthand (compliance.md 4.1)."""

    NRES = "NRES"
    GRU = "GRU"
    HMB = "HMB"
    DS = "DS"
    POA = "POA"
    NPOA = "NPOA"
    NCU = "NCU"
    NPU = "NPU"
    NPUNCU = "NPUNCU"
    NMDS = "NMDS"
    GSO = "GSO"
    RS = "RS"
    CC = "CC"
    IRB = "IRB"
    GS = "GS"
    MOR = "MOR"
    TS = "TS"
    US = "US"
    PS = "PS"
    IS = "IS"
    COL = "COL"
    PUB = "PUB"
    RTN = "RTN"


#: Shorthand -> DUO id, from duo.csv [U1].
DUO_IDS: dict[DuoCode, str] = {
    DuoCode.NRES: "DUO:0000004",
    DuoCode.GRU: "DUO:0000042",
    DuoCode.HMB: "DUO:0000006",
    DuoCode.DS: "DUO:0000007",
    DuoCode.POA: "DUO:0000011",
    DuoCode.NPOA: "DUO:0000044",
    DuoCode.NCU: "DUO:0000046",
    DuoCode.NPU: "DUO:0000045",
    DuoCode.NPUNCU: "DUO:0000018",
    DuoCode.NMDS: "DUO:0000015",
    DuoCode.GSO: "DUO:0000016",
    DuoCode.RS: "DUO:0000012",
    DuoCode.CC: "DUO:0000043",
    DuoCode.IRB: "DUO:0000021",
    DuoCode.GS: "DUO:0000022",
    DuoCode.MOR: "DUO:0000024",
    DuoCode.TS: "DUO:0000025",
    DuoCode.US: "DUO:0000026",
    DuoCode.PS: "DUO:0000027",
    DuoCode.IS: "DUO:0000028",
    DuoCode.COL: "DUO:0000020",
    DuoCode.PUB: "DUO:0000019",
    DuoCode.RTN: "DUO:0000029",
}
_BY_ID = {v: k for k, v in DUO_IDS.items()}

#: Primary permissions: what use is allowed.
PERMISSIONS = frozenset({DuoCode.NRES, DuoCode.GRU, DuoCode.HMB, DuoCode.DS, DuoCode.POA})
#: Primary purposes a request may state (NRES is a permission only).
PURPOSES = frozenset({DuoCode.GRU, DuoCode.HMB, DuoCode.DS, DuoCode.POA})
#: Modifiers a request may declare about itself.
DECLARATIONS = frozenset({DuoCode.NCU, DuoCode.NPU, DuoCode.NPUNCU})
#: Modifiers whose obligation is a recorded agreement (compliance.md 4.1 rule 6).
AGREEMENTS = frozenset({DuoCode.COL, DuoCode.PUB, DuoCode.RTN, DuoCode.MOR})
#: Modifiers that forbid commercial use or for-profit users (rule 4).
NON_COMMERCIAL = frozenset({DuoCode.NCU, DuoCode.NPU, DuoCode.NPUNCU})


def parse_code(value: Any) -> Any:
    """Accept a shorthand (``HMB``) or a DUO id (``DUO:0000006``); other input is left to validation."""
    if isinstance(value, str) and value.startswith("DUO:"):
        code = _BY_ID.get(value)
        if code is None:
            raise ValueError("not a DUO id known to privguard (see compliance.md 4.1)")
        return code
    return value


class ConsentTerm(Model):
    """One DUO term of a consent, with the parameters its code needs."""

    code: DuoCode = Field(description="DUO shorthand (HMB) or id (DUO:0000006).")
    diseases: tuple[Curie, ...] = Field(default=(), description="DS: the disease(s), e.g. MONDO:0004992.")
    regions: tuple[CountryCode, ...] = Field(default=(), description="GS: countries where use is allowed.")
    months: int | None = Field(default=None, ge=1, le=1200, description="TS: approved use in months.")
    start: dt.date | None = Field(
        default=None,
        description="TS: start of the approved period (default: the consent date; Interpretation).",
    )
    research_types: tuple[Identifier, ...] = Field(default=(), description="RS: allowed research types.")

    _code = field_validator("code", mode="before")(parse_code)

    @model_validator(mode="after")
    def _params_fit_code(self) -> ConsentTerm:
        own = {
            DuoCode.DS: "diseases",
            DuoCode.GS: "regions",
            DuoCode.TS: "months",
            DuoCode.RS: "research_types",
        }
        for code, name in own.items():
            given = getattr(self, name) not in ((), None)
            if self.code is code and not given:
                raise ValueError(f"{code.value} needs '{name}'")
            if self.code is not code and given:
                raise ValueError(f"'{name}' is only allowed with {code.value}")
        if self.start is not None and self.code is not DuoCode.TS:
            raise ValueError("'start' is only allowed with TS")
        for name in ("diseases", "regions", "research_types"):
            if not unique(getattr(self, name)):
                raise ValueError(f"'{name}' repeats an entry")
        return self


class PurposeTerm(Model):
    """One DUO term of a request's purpose: the primary purpose or a declaration."""

    code: DuoCode
    disease: Curie | None = Field(default=None, description="DS: the disease studied.")
    disease_ancestors: tuple[Curie, ...] = Field(
        default=(),
        description="DS: ancestors of the disease in its ontology (a DS consent for any of them covers it).",
    )

    _code = field_validator("code", mode="before")(parse_code)

    @model_validator(mode="after")
    def _fits(self) -> PurposeTerm:
        if self.code not in PURPOSES | DECLARATIONS:
            raise ValueError("a purpose uses GRU, HMB, DS or POA, plus the declarations NCU, NPU or NPUNCU")
        if (self.code is DuoCode.DS) != (self.disease is not None):
            raise ValueError("DS needs 'disease', and only DS may have one")
        if self.disease_ancestors and self.code is not DuoCode.DS:
            raise ValueError("'disease_ancestors' is only allowed with DS")
        if not unique(self.disease_ancestors):
            raise ValueError("'disease_ancestors' repeats an entry")
        return self


@dataclass(frozen=True)
class PurposeContext:
    """What a consent is matched against: the request's purpose and recipient, reduced to facts.

    A flag that the request leaves unstated (None) is taken at its most
    restrictive value (fail closed): an unstated ``commercial`` counts as
    commercial use.
    """

    primary: DuoCode
    disease: str | None
    disease_ancestors: frozenset[str]
    category: str
    commercial: bool | None
    for_profit_recipient: bool
    methods_development: bool | None
    genetic_study: bool | None
    research_type: str | None
    agreements: frozenset[DuoCode]
    ethics_approval: bool
    dac_approval: bool
    recipient_country: str
    now: dt.date


@dataclass(frozen=True)
class DuoResult:
    """The outcome of matching one DUO consent against a purpose."""

    covers_purpose: bool
    unmet: frozenset[str]
    """Shorthands of the modifiers whose condition the request does not meet."""


def _disease_covered(consent_diseases: tuple[str, ...], ctx: PurposeContext) -> bool:
    if ctx.primary is not DuoCode.DS or ctx.disease is None:
        return False
    lineage = {ctx.disease} | ctx.disease_ancestors
    return any(d in lineage for d in consent_diseases)


def _permission_covers(permission: ConsentTerm, ctx: PurposeContext, modifiers: set[DuoCode]) -> bool:
    if ctx.category == "clinical_care":
        # CC adds clinical care to what a consent allows; NRES allows any use.
        return permission.code is DuoCode.NRES or DuoCode.CC in modifiers
    if ctx.category != "research" and permission.code is not DuoCode.NRES:
        return False
    code = permission.code
    if code in (DuoCode.NRES, DuoCode.GRU):
        return True
    if code is DuoCode.HMB:
        return ctx.primary in (DuoCode.HMB, DuoCode.DS)
    if code is DuoCode.DS:
        return _disease_covered(permission.diseases, ctx)
    if code is DuoCode.POA:
        return ctx.primary is DuoCode.POA
    return False  # pragma: no cover - PERMISSIONS is closed


def _unmet(
    permission: ConsentTerm, modifiers: tuple[ConsentTerm, ...], ctx: PurposeContext, given: dt.date
) -> set[str]:
    unmet: set[str] = set()
    for m in modifiers:
        code = m.code
        if code in NON_COMMERCIAL:
            if ctx.commercial is not False or ctx.for_profit_recipient:
                unmet.add(code.value)
        elif code is DuoCode.NPOA:
            if ctx.primary is DuoCode.POA:
                unmet.add(code.value)
        elif code is DuoCode.NMDS:
            matching_ds = permission.code is DuoCode.DS and _disease_covered(permission.diseases, ctx)
            if ctx.methods_development is not False and not matching_ds:
                unmet.add(code.value)
        elif code is DuoCode.GSO:
            if ctx.genetic_study is not True:
                unmet.add(code.value)
        elif code is DuoCode.RS:
            if ctx.research_type is None or ctx.research_type not in m.research_types:
                unmet.add(code.value)
        elif code is DuoCode.IRB:
            if not ctx.ethics_approval:
                unmet.add(code.value)
        elif code is DuoCode.GS:
            if ctx.recipient_country not in m.regions:
                unmet.add(code.value)
        elif code is DuoCode.TS:
            # Interpretation (compliance.md 4.1 rule 6): the period starts at the consent date.
            if ctx.now > _add_months(m.start or given, m.months or 0):
                unmet.add(code.value)
        elif code in (DuoCode.US, DuoCode.PS, DuoCode.IS):
            if not ctx.dac_approval:
                unmet.add(code.value)
        elif code in AGREEMENTS and code not in ctx.agreements:
            unmet.add(code.value)
        # CC widens the permission (handled in _permission_covers).
    return unmet


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise ValueError("unreachable")  # pragma: no cover


def match(
    permission: ConsentTerm, modifiers: tuple[ConsentTerm, ...], ctx: PurposeContext, given: dt.date
) -> DuoResult:
    """Match one DUO consent (a permission and its modifiers) against a purpose.

    Parameters
    ----------
    permission
        The consent's primary permission (NRES, GRU, HMB, DS or POA).
    modifiers
        Its modifiers.
    ctx
        The request's purpose, recipient and evaluation date.
    given
        The date consent was given (start of a TS period unless the term says otherwise).

    Returns
    -------
    DuoResult
        Whether the permission covers the purpose, and which modifiers are unmet.
    """
    codes = {m.code for m in modifiers}
    result = DuoResult(
        covers_purpose=_permission_covers(permission, ctx, codes),
        unmet=frozenset(_unmet(permission, modifiers, ctx, given)),
    )
    logger.debug("DUO match: covers=%s, %d unmet modifiers", result.covers_purpose, len(result.unmet))
    return result
