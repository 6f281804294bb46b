"""De-identification profiles: PS3.15 options plus site overrides, from YAML.

A profile is a data file (``policies/deid/<name>.yaml``) validated by the
pydantic models below. Loading is three small steps, each failing closed:
read the YAML, validate it, return the frozen model. A missing profile is an
error that lists the available ones; there is no fallback to a default.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from privguard.errors import PolicyError
from privguard.policyio import parse_text, validate


class Option(StrEnum):
    """The options of the Basic Application Level Confidentiality Profile (PS3.15 E.3)."""

    RETAIN_SAFE_PRIVATE = "retain_safe_private"
    """E.3.10: keep the private attributes listed in Table E.3.10-1."""
    RETAIN_UIDS = "retain_uids"
    """E.3.9: keep UIDs unchanged."""
    RETAIN_DEVICE_IDENTITY = "retain_device_identity"
    """E.3.8: keep device identity (serial numbers, station names; AE titles are cleaned)."""
    RETAIN_INSTITUTION_IDENTITY = "retain_institution_identity"
    """E.3.12: keep institution names, addresses and codes."""
    RETAIN_PATIENT_CHARACTERISTICS = "retain_patient_characteristics"
    """E.3.7: keep sex, age, size, weight and similar."""
    RETAIN_LONGITUDINAL_FULL_DATES = "retain_longitudinal_full_dates"
    """E.3.6: keep dates and times unchanged."""
    RETAIN_LONGITUDINAL_MODIFIED_DATES = "retain_longitudinal_modified_dates"
    """E.3.6: shift dates by a keyed per-patient offset, keeping intervals."""
    CLEAN_DESCRIPTORS = "clean_descriptors"
    """E.3.5: keep descriptions and comments with identifying text replaced."""
    CLEAN_STRUCTURED_CONTENT = "clean_structured_content"
    """E.3.3: keep SR / acquisition context content, cleaned."""
    CLEAN_GRAPHICS = "clean_graphics"
    """E.3.4: keep overlays, curves and graphic annotations, cleaned."""
    CLEAN_PIXEL_DATA = "clean_pixel_data"
    """E.3.1: redact identifying text burned into the pixel data (OCR)."""


#: CID 7050 "De-identification Method" codes (scheme DCM) for the profile and options.
CID_7050: dict[str, tuple[str, str]] = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    Option.CLEAN_PIXEL_DATA.value: ("113101", "Clean Pixel Data Option"),
    Option.CLEAN_GRAPHICS.value: ("113103", "Clean Graphics Option"),
    Option.CLEAN_STRUCTURED_CONTENT.value: ("113104", "Clean Structured Content Option"),
    Option.CLEAN_DESCRIPTORS.value: ("113105", "Clean Descriptors Option"),
    Option.RETAIN_LONGITUDINAL_FULL_DATES.value: (
        "113106",
        "Retain Longitudinal Temporal Information Full Dates Option",
    ),
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES.value: (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    Option.RETAIN_PATIENT_CHARACTERISTICS.value: ("113108", "Retain Patient Characteristics Option"),
    Option.RETAIN_DEVICE_IDENTITY.value: ("113109", "Retain Device Identity Option"),
    Option.RETAIN_UIDS.value: ("113110", "Retain UIDs Option"),
    Option.RETAIN_SAFE_PRIVATE.value: ("113111", "Retain Safe Private Option"),
    Option.RETAIN_INSTITUTION_IDENTITY.value: ("113112", "Retain Institution Identity Option"),
}

_TAG_RE = re.compile(r"^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$")


def parse_option(name: str) -> Option:
    """Return the Option named ``name`` (``retain-uids`` and ``retain_uids`` both work)."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return Option(key)
    except ValueError:
        known = ", ".join(o.value.replace("_", "-") for o in Option)
        raise PolicyError(f"unknown option '{name}'; known options: {known}") from None


def parse_attribute(ref: str) -> int:
    """Return the tag named by a keyword (``PatientAge``) or a tag (``(0010,1010)``, ``00101010``)."""
    from pydicom.datadict import tag_for_keyword

    m = _TAG_RE.match(ref.strip())
    if m:
        return int(m.group(1) + m.group(2), 16)
    tag = tag_for_keyword(ref.strip())
    if tag is None:
        raise ValueError(f"'{ref}' is neither a DICOM keyword nor a tag like (0010,1010)")
    return int(tag)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _OverrideBase(_Model):
    attribute: str = Field(description="DICOM keyword (PatientAge) or tag ((0010,1010)).")
    reason: str = Field(default="", description="Why the site needs this override (for the record).")

    @field_validator("attribute")
    @classmethod
    def _known_attribute(cls, v: str) -> str:
        parse_attribute(v)
        return v

    @property
    def tag(self) -> int:
        return parse_attribute(self.attribute)


class KeepOverride(_OverrideBase):
    """Keep the value as it is (weakens protection; the record says so)."""

    action: Literal["keep"]


class RemoveOverride(_OverrideBase):
    """Remove the attribute."""

    action: Literal["remove"]


class EmptyOverride(_OverrideBase):
    """Keep the attribute with a zero-length value."""

    action: Literal["empty"]


class ReplaceOverride(_OverrideBase):
    """Replace the value with a fixed one."""

    action: Literal["replace"]
    value: str = Field(description="The replacement value, valid for the attribute's VR.")


class HashOverride(_OverrideBase):
    """Replace the value with a keyed pseudonym (or a vault token, by the pseudonym method)."""

    action: Literal["hash"]


Override = Annotated[
    KeepOverride | RemoveOverride | EmptyOverride | ReplaceOverride | HashOverride,
    Field(discriminator="action"),
]


class PseudonymSettings(_Model):
    """How identifiers, UIDs and dates are replaced."""

    method: Literal["keyed", "random"] = Field(
        default="keyed",
        description=(
            "keyed: HMAC-SHA256 under the project key (deterministic, no table). "
            "random: random tokens kept in an encrypted vault at the sender "
            "(HIPAA 164.514(c): codes not derived from identifiers)."
        ),
    )
    date_shift_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="Modified dates move by a per-patient offset in [-N, -1] or [1, N] days.",
    )


class PixelSettings(_Model):
    """Burned-in text handling (the Clean Pixel Data option)."""

    ocr: Literal["auto", "on", "off"] = Field(
        default="auto", description="auto: OCR only images that triage flags; on: every image; off: never."
    )
    redact: Literal["phi", "all-text"] = Field(
        default="phi", description="phi: mask text classified as PHI; all-text: mask every text box."
    )
    allowlist: tuple[str, ...] = Field(
        default=(),
        description=(
            "Site allow-list files (non-PHI terms kept on images), added to the shipped one. "
            "Relative paths are read from the profile file's folder."
        ),
    )


class DeidProfile(_Model):
    """A de-identification profile: the Basic Profile, its options and site overrides."""

    schema_version: Literal[1]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
    description: str = ""
    options: frozenset[Option] = frozenset()
    pseudonyms: PseudonymSettings = PseudonymSettings()
    pixels: PixelSettings = PixelSettings()
    age_cap: int | None = Field(
        default=None,
        ge=1,
        le=150,
        description="When Patient's Age is kept, ages at or above this become this value (HIPAA: 90).",
    )
    free_text: Literal["keep", "clean"] | None = Field(
        default=None,
        description=(
            "Free text Table E.1-1 does not list (ST/LT/UT/UC values; LO/SH descriptions, comments, "
            "titles...). keep: as PS3.15's Basic Profile does; clean: identifying words replaced. "
            "Default: clean under clean_descriptors, keep otherwise."
        ),
    )
    overrides: tuple[Override, ...] = ()

    @property
    def cleans_free_text(self) -> bool:
        """Whether free text outside Table E.1-1 goes through the text classifier."""
        if self.free_text is None:
            return Option.CLEAN_DESCRIPTORS in self.options
        return self.free_text == "clean"

    @model_validator(mode="after")
    def _check(self) -> DeidProfile:
        if {
            Option.RETAIN_LONGITUDINAL_FULL_DATES,
            Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
        } <= self.options:
            raise ValueError(
                "options: retain_longitudinal_full_dates and retain_longitudinal_modified_dates "
                "exclude each other (PS3.15 E.3.6)"
            )
        seen: set[int] = set()
        for o in self.overrides:
            if o.tag in seen:
                raise ValueError(f"overrides: attribute '{o.attribute}' is overridden twice")
            seen.add(o.tag)
        return self

    def with_options(self, extra: set[Option]) -> DeidProfile:
        """Return a copy with more options switched on (validated again)."""
        if extra <= self.options:
            return self
        data = self.model_dump()
        data["options"] = set(self.options) | extra
        return DeidProfile.model_validate(data)

    @property
    def method_codes(self) -> list[tuple[str, str]]:
        """CID 7050 (code value, meaning) pairs for this profile, Basic Profile first."""
        codes = [CID_7050["basic"]]
        codes += [CID_7050[o.value] for o in sorted(self.options, key=lambda o: CID_7050[o.value][0])]
        return codes


def _policies_dir() -> Path:
    return Path(str(files("privguard") / "_policies"))


def available_profiles() -> list[str]:
    """Names of the profiles shipped in ``policies/deid``."""
    return sorted(p.stem for p in (_policies_dir() / "deid").glob("*.yaml"))


def profile_from_yaml(text: str, source: str) -> DeidProfile:
    """Validate YAML text as a profile; ``source`` names it in error messages."""
    return validate(DeidProfile, parse_text(text, "yaml", "profile", source), "profile", source)


@lru_cache(maxsize=32)
def _load_named(name: str) -> DeidProfile:
    path = _policies_dir() / "deid" / f"{name}.yaml"
    if not path.is_file():
        raise PolicyError(f"profile '{name}' not found; available: {', '.join(available_profiles())}")
    return profile_from_yaml(path.read_text(encoding="utf-8"), f"'{name}'")


def load_profile(ref: str | Path | DeidProfile = "basic") -> DeidProfile:
    """Load a profile by shipped name (``basic``, ``research``) or from a YAML file path."""
    if isinstance(ref, DeidProfile):
        return ref
    text = str(ref)
    if isinstance(ref, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise PolicyError(f"profile file {path} not found")
        prof = profile_from_yaml(path.read_text(encoding="utf-8"), str(path))
        if prof.pixels.allowlist:
            here = path.resolve().parent
            files = tuple(str(here / f) for f in prof.pixels.allowlist)
            prof = prof.model_copy(update={"pixels": prof.pixels.model_copy(update={"allowlist": files})})
        return prof
    return _load_named(text)
