"""Shared pseudonym forms and the pseudonymizer interface (see :mod:`privguard.pseudonym.pseudonymizer`).

Both pseudonymizers (keyed, and the vault's random one) build on these; they
sit below both so that neither imports the other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

IdKind = Literal["patient", "accession", "study", "other", "ae"]
PREFIX: dict[str, str] = {"patient": "P", "accession": "A", "study": "S", "other": "I", "ae": "AE"}
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
