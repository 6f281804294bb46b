"""Versioned data tables carried by policy files (never hard-coded).

Each table has an ``as_of`` date and a ``source``; re-check them before each
release (compliance.md, "Dates matter"). A site policy may replace a table
with a newer one; the decision records which policy versions were used.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, model_validator

from privguard.compliance._base import CountryCode, Identifier, Model, unique


class _Table(Model):
    as_of: dt.date
    source: str = Field(min_length=3)


class CountryList(_Table):
    """A list of countries, e.g. the EEA member states."""

    countries: tuple[CountryCode, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> CountryList:
        if not unique(self.countries):
            raise ValueError("countries: a country is repeated")
        return self


class AdequacyDecision(Model):
    """One adequacy decision under GDPR Art. 45 (compliance.md 2.6)."""

    country: CountryCode | None = None
    body: Identifier | None = Field(default=None, description="An international organisation, e.g. EPO.")
    scope: Literal["full", "dpf_certified", "unverified"] = Field(
        description="full; dpf_certified: only DPF-certified US organisations; "
        "unverified: partial, scope not checked."
    )
    decision: str = Field(min_length=3)
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None

    @model_validator(mode="after")
    def _one(self) -> AdequacyDecision:
        if (self.country is None) == (self.body is None):
            raise ValueError("give exactly one of 'country' and 'body'")
        return self

    def in_force(self, day: dt.date) -> bool:
        """Whether the decision is in force on ``day``."""
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


class AdequacyList(_Table):
    """Adequacy decisions in force."""

    decisions: tuple[AdequacyDecision, ...] = Field(min_length=1)


class Zip3List(_Table):
    """3-digit ZIP prefixes whose area has 20,000 or fewer people: shipped as 000 (164.514(b)(2)(i)(B))."""

    census: str = Field(min_length=4, description="Census the population counts come from.")
    prefixes: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Zip3List:
        if not all(len(p) == 3 and p.isdigit() for p in self.prefixes) or not unique(self.prefixes):
            raise ValueError("prefixes: three digits each, no repeats")
        return self


class FaceImaging(_Table):
    """Which studies can show a recognisable face (1.2 Q; PS3.15 E.3.2)."""

    modalities: tuple[str, ...] = Field(min_length=1, description="e.g. CT, MR.")
    body_parts: tuple[str, ...] = Field(
        min_length=1, description="BodyPartExamined values of the head, e.g. HEAD."
    )
    photo_modalities: tuple[str, ...] = Field(
        default=(), description="Photographic modalities (any body part)."
    )


class ModalityList(_Table):
    """A list of DICOM modalities, e.g. those that often carry burned-in text."""

    modalities: tuple[str, ...] = Field(min_length=1)


class Band(Model):
    """Volume thresholds of one row of the CAC table (persons, counted since 1 January)."""

    non_sensitive_persons_min: int = Field(ge=1)
    sensitive_persons_min: int = Field(ge=1)


class CacThresholds(_Table):
    """CAC cross-border volume thresholds (compliance.md 3.5). Lower bounds inclusive."""

    counting: str = Field(min_length=3, description="How persons are counted.")
    security_assessment: Band
    contract_or_certification: Band

    @model_validator(mode="after")
    def _ordered(self) -> CacThresholds:
        sa, cc = self.security_assessment, self.contract_or_certification
        if (
            sa.non_sensitive_persons_min <= cc.non_sensitive_persons_min
            or sa.sensitive_persons_min <= cc.sensitive_persons_min
        ):
            raise ValueError("security_assessment thresholds must be above contract_or_certification ones")
        return self


SafeHarborCategory = Literal[
    "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R"
]


class IdentifierTable(_Table):
    """Safe Harbor identifier categories, 45 CFR 164.514(b)(2)(i)(A)-(R), and the DICOM attributes
    that typically hold them (compliance.md 1.2). Keywords are checked against the DICOM dictionary."""

    categories: dict[SafeHarborCategory, tuple[str, ...]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> IdentifierTable:
        from privguard.header.profile import parse_attribute

        seen: set[int] = set()
        for keywords in self.categories.values():
            for kw in keywords:
                tag = parse_attribute(kw)
                if tag in seen:
                    raise ValueError("categories: an attribute is listed twice")
                seen.add(tag)
        return self

    def by_tag(self) -> dict[int, tuple[str, str]]:
        """tag -> (category letter, keyword)."""
        from privguard.header.profile import parse_attribute

        return {parse_attribute(kw): (cat, kw) for cat, kws in self.categories.items() for kw in kws}


class LargeScale(_Table):
    """Where a policy puts "large scale" for GDPR Art. 35(3)(b): data subjects in one export."""

    data_subjects_min: int = Field(
        ge=1, description="Exports of at least this many data subjects are large scale."
    )


class DataTables(Model):
    """The tables one policy file provides; each is optional."""

    eea: CountryList | None = None
    adequacy: AdequacyList | None = None
    restricted_zip3: Zip3List | None = None
    face_imaging: FaceImaging | None = None
    burned_in_text: ModalityList | None = None
    cac_thresholds: CacThresholds | None = None
    safe_harbor_identifiers: IdentifierTable | None = None
    dpia_large_scale: LargeScale | None = None
