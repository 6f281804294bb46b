"""The allow-list of non-PHI burned-in text: YAML -> pydantic model -> matcher.

The shipped list is ``policies/pixels/allowlist.yaml``; a site adds its own
file of the same shape (terms and patterns are merged, the site's
``unknown_text`` / ``min_confidence`` win). Loading fails closed: a missing or
invalid file is a :class:`~privguard.errors.PolicyError`, never a silent
fall-back to defaults.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from privguard.errors import PolicyError
from privguard.pixels.fuzzy import alpha_fold, distance
from privguard.policyio import parse_text, read_text, validate

ALL = "all"


class AllowListFile(BaseModel):
    """One allow-list file (``policies/pixels/*.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    unknown_text: Literal["keep", "redact"] | None = Field(
        default=None,
        description="Confidently read text that no PHI rule flags and that is not listed: keep or redact.",
    )
    min_confidence: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Readings below this confidence count as unreadable."
    )
    terms: dict[str, list[str]] = Field(
        default_factory=dict, description="Modality (or 'all') -> words or phrases that are not PHI."
    )
    patterns: dict[str, list[str]] = Field(
        default_factory=dict, description="Modality (or 'all') -> full-match regexes (case-insensitive)."
    )

    @field_validator("terms", "patterns")
    @classmethod
    def _keys(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key in v:
            if key != ALL and not re.fullmatch(r"[A-Z]{2,4}", key):
                raise ValueError(f"'{key}' is neither 'all' nor a DICOM Modality code (e.g. CR, US)")
        return v

    @field_validator("patterns")
    @classmethod
    def _compile(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, pats in v.items():
            for p in pats:
                try:
                    re.compile(p)
                except re.error as exc:
                    raise ValueError(f"patterns.{key}: invalid regular expression ({exc.msg})") from None
        return v


def normalize(token: str) -> str:
    """Upper-case a token and strip the punctuation OCR adds around words."""
    return token.strip().strip("\"'`.,;!?()[]{}|").upper()


class AllowList:
    """Merged allow-list files, ready to match OCR tokens."""

    def __init__(self, files_: Sequence[AllowListFile]) -> None:
        if not files_:
            raise PolicyError("an allow-list needs at least one file")
        self.unknown_text: str = "keep"
        self.min_confidence: float = 0.5
        terms: dict[str, set[str]] = {}
        patterns: dict[str, list[str]] = {}
        for f in files_:
            if f.unknown_text is not None:
                self.unknown_text = f.unknown_text
            if f.min_confidence is not None:
                self.min_confidence = f.min_confidence
            for key, words in f.terms.items():
                terms.setdefault(key, set()).update(normalize(w) for w in words if normalize(w))
            for key, pats in f.patterns.items():
                patterns.setdefault(key, []).extend(pats)
        self._terms = terms
        self._patterns = {
            k: re.compile("|".join(f"(?:{p})" for p in v), re.IGNORECASE) for k, v in patterns.items()
        }
        self._folded = {k: {alpha_fold(t) for t in v} for k, v in terms.items()}

    def terms_for(self, modality: str) -> set[str]:
        return self._terms.get(ALL, set()) | self._terms.get(modality.upper(), set())

    def phrases(self, modality: str) -> list[tuple[str, ...]]:
        """Multi-word terms as word tuples, longest first."""
        out = {tuple(t.split()) for t in self.terms_for(modality) if " " in t}
        return sorted(out, key=len, reverse=True)

    def matches(self, token: str, modality: str, *, strict: bool = False) -> bool:
        """True if ``token`` is a listed term or matches a listed pattern.

        Parameters
        ----------
        token
            One OCR word.
        modality
            The file's Modality (selects the modality's own entries besides ``all``).
        strict
            Exact matching only (for unreadable text): no OCR-confusion folding, no edit distance.
        """
        word = normalize(token)
        if not word:
            return False
        keys = (ALL, modality.upper())
        for key in keys:
            if word in self._terms.get(key, ()) or word.rstrip(":") in self._terms.get(key, ()):
                return True
            rx = self._patterns.get(key)
            if rx is not None and rx.fullmatch(word):
                return True
        if strict:
            return False
        folded = alpha_fold(word)
        for key in keys:
            candidates = self._folded.get(key, set())
            if folded in candidates:
                return True
            if len(folded) >= 6 and any(
                abs(len(c) - len(folded)) <= 1 and distance(c, folded, 1) <= 1
                for c in candidates
                if len(c) >= 6
            ):
                return True
        return False


def _read(path: Path | str, source: str) -> AllowListFile:
    text = read_text(Path(path), "allow-list")
    return validate(AllowListFile, parse_text(text, "yaml", "allow-list", source), "allow-list", source)


@lru_cache(maxsize=1)
def shipped() -> AllowListFile:
    """The allow-list shipped in ``policies/pixels/allowlist.yaml``."""
    path = Path(str(files("privguard") / "_policies" / "pixels" / "allowlist.yaml"))
    return _read(path, "'pixels/allowlist.yaml'")


def load_allowlist(extra: Iterable[str | Path] = ()) -> AllowList:
    """The shipped allow-list merged with site files (later files win on the scalar settings)."""
    return AllowList([shipped(), *(_read(p, str(p)) for p in extra)])
