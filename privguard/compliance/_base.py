"""Shared building blocks of the compliance models: the frozen base model and field types.

Every field type here is strict about spelling (no case folding, no trimming):
two different byte strings never validate to the same value, so the canonical
hash of a request changes whenever its meaning could have changed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints


class Model(BaseModel):
    """Base of every compliance model: unknown fields are errors and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Regime(StrEnum):
    """The legal regimes privguard checks."""

    GDPR = "gdpr"
    """Regulation (EU) 2016/679."""
    HIPAA = "hipaa"
    """45 CFR Part 164 (the Privacy Rule)."""
    PIPL = "pipl"
    """Personal Information Protection Law of the PRC."""


CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
"""ISO 3166-1 alpha-2 country code, upper case (``DE``, ``US``, ``CN``). Quote ``"NO"`` in YAML."""

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]
"""A local identifier: patient, study, request or snapshot id (letters, digits, ``._:/-``)."""

Reference = Annotated[str, StringConstraints(min_length=1, max_length=300)]
"""A reference to a document kept elsewhere (contract, approval, report): never evaluated."""

Label = Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""A short human-readable name (organisation, officer)."""

Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
"""Free text. It is hashed and signed but never copied into findings or logs."""

Curie = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]*:[A-Za-z0-9_.-]+$")]
"""A compact ontology identifier such as ``MONDO:0008903`` (lung cancer)."""

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest as 64 lower-case hex digits."""

RuleId = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")]
"""A rule id such as ``GDPR-TRANSFER-MECHANISM``."""


def unique(values: tuple[str, ...]) -> bool:
    """Return whether ``values`` has no repeated element."""
    return len(set(values)) == len(values)
