"""Pseudonyms for identifiers, UIDs and dates.

Two methods, chosen by the profile (``pseudonyms.method``):

``keyed`` (:class:`KeyedPseudonymizer`)
    HMAC-SHA256 under a per-project sub-key of the project key. Deterministic:
    the same input gives the same pseudonym in every file and run of a project,
    and a different one in another project. Nothing needs to be stored.

``random`` (:class:`VaultPseudonymizer`, in :mod:`privguard.pseudonym.vault`)
    Random tokens, not derived from the identifier (HIPAA 164.514(c)). The
    original-to-token table stays at the sender in an encrypted vault.

Forms (documented in docs/pseudonyms.md):

* UIDs: ``2.25.<decimal of a 128-bit RFC 9562 version-8 UUID>`` (at most 44
  characters, always a valid UID);
* patient IDs ``P`` + 15 Crockford base-32 characters (75 bits), accession numbers
  ``A…``, study IDs ``S…``, other identifiers ``I…``, AE titles ``AE…`` (14);
  all fit the SH VR's 16 characters;
* the patient name is the pseudonymous patient ID as the family name;
* the date offset is a whole number of days in [-N, -1] or [1, N].
"""

from __future__ import annotations

import hmac
from abc import ABC, abstractmethod
from hashlib import sha256
from typing import Literal

from privguard.pseudonym.keys import ProjectKey

IdKind = Literal["patient", "accession", "study", "other", "ae"]
_PREFIX: dict[str, str] = {"patient": "P", "accession": "A", "study": "S", "other": "I", "ae": "AE"}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_LENGTH = 16


def base32(data: bytes, n: int) -> str:
    """The first ``n`` Crockford base-32 characters of ``data`` (no padding, no I/L/O/U)."""
    value = int.from_bytes(data, "big")
    bits = len(data) * 8
    out = []
    for i in range(n):
        shift = bits - 5 * (i + 1)
        out.append(_CROCKFORD[(value >> shift) & 31])
    return "".join(out)


def uid_from_bytes(data: bytes) -> str:
    """A ``2.25`` UID from 16 bytes, made a valid RFC 9562 version-8 UUID first."""
    b = bytearray(data[:16])
    b[6] = (b[6] & 0x0F) | 0x80  # version 8 (custom)
    b[8] = (b[8] & 0x3F) | 0x80  # RFC variant
    return "2.25." + str(int.from_bytes(b, "big"))


def offset_from_bytes(data: bytes, max_days: int) -> int:
    """A non-zero day offset in [-max_days, -1] or [1, max_days]."""
    n = int.from_bytes(data[:8], "big") % (2 * max_days)
    return n - max_days if n < max_days else n - max_days + 1


class Pseudonymizer(ABC):
    """Replaces identifying values by pseudonyms, consistently within a project."""

    method: str

    @abstractmethod
    def uid(self, original: str) -> str:
        """The replacement for a UID."""

    @abstractmethod
    def identifier(self, kind: IdKind, original: str) -> str:
        """The replacement for an identifier of the given kind."""

    @abstractmethod
    def date_offset(self, patient_key: str) -> int:
        """The patient's date shift in days (never 0)."""

    def patient_name(self, pseudo_patient_id: str) -> str:
        """The replacement Patient's Name: the pseudonymous ID as the family name."""
        return pseudo_patient_id

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources (the vault's database)."""


class KeyedPseudonymizer(Pseudonymizer):
    """HMAC-SHA256 pseudonyms under per-project, per-purpose HKDF sub-keys."""

    method = "keyed"

    def __init__(self, key: ProjectKey, project: str, date_shift_days: int = 365) -> None:
        self.project = project
        self.date_shift_days = date_shift_days
        self._uid_key = key.derive("uid", project)
        self._id_key = key.derive("id", project)
        self._date_key = key.derive("date-offset", project)
        self._uids: dict[str, str] = {}
        self._ids: dict[tuple[str, str], str] = {}

    def _mac(self, key: bytes, value: str) -> bytes:
        return hmac.new(key, value.encode("utf-8"), sha256).digest()

    def uid(self, original: str) -> str:
        hit = self._uids.get(original)
        if hit is None:
            hit = uid_from_bytes(self._mac(self._uid_key, original))
            if len(self._uids) > 100_000:
                self._uids.clear()
            self._uids[original] = hit
        return hit

    def identifier(self, kind: IdKind, original: str) -> str:
        cache_key = (kind, original)
        hit = self._ids.get(cache_key)
        if hit is None:
            prefix = _PREFIX[kind]
            digest = self._mac(self._id_key, f"{kind}\x00{original}")
            hit = prefix + base32(digest, ID_LENGTH - len(prefix))
            if len(self._ids) > 100_000:
                self._ids.clear()
            self._ids[cache_key] = hit
        return hit

    def date_offset(self, patient_key: str) -> int:
        return offset_from_bytes(self._mac(self._date_key, patient_key), self.date_shift_days)


def make_pseudonymizer(
    method: str,
    key: ProjectKey,
    project: str,
    date_shift_days: int = 365,
    vault_path: str | None = None,
) -> Pseudonymizer:
    """Build the pseudonymizer a profile asks for."""
    if method == "keyed":
        return KeyedPseudonymizer(key, project, date_shift_days)
    if method == "random":
        from privguard.errors import ConfigError
        from privguard.pseudonym.vault import VaultPseudonymizer

        if not vault_path:
            raise ConfigError(
                "this profile uses random pseudonyms: give a vault file (--vault FILE) kept at the sender"
            )
        return VaultPseudonymizer(key, project, vault_path, date_shift_days)
    raise ValueError(f"unknown pseudonym method {method!r}")
