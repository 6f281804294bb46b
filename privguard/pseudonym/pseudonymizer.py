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
from hashlib import sha256

from privguard.pseudonym.forms import (
    ID_LENGTH,
    PREFIX,
    IdKind,
    Pseudonymizer,
    base32,
    offset_from_bytes,
    uid_from_bytes,
)
from privguard.pseudonym.keys import ProjectKey

__all__ = [
    "ID_LENGTH",
    "IdKind",
    "KeyedPseudonymizer",
    "Pseudonymizer",
    "base32",
    "make_pseudonymizer",
    "offset_from_bytes",
    "uid_from_bytes",
]
_PREFIX = PREFIX  # the former private name

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
