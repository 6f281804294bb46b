"""Random-token pseudonyms with an encrypted vault kept at the sender.

For regimes that forbid codes derived from identifiers (HIPAA 164.514(c) under
Safe Harbor), every identifier, UID and per-patient date offset gets a random
token (``secrets``), not a function of the value. The vault remembers the
pairing so that the same patient gets the same token in every file and run:

* it is an SQLite file (safe for the parallel workers of one run: each
  get-or-create is one transaction, and the first writer wins);
* rows are looked up by an HMAC of the original under a vault sub-key, so the
  file holds no plaintext identifiers;
* the original is stored sealed with AES-256-GCM under another sub-key of the
  project key (bound to its kind and lookup value), for re-identification by
  the sender only (:meth:`VaultPseudonymizer.reveal`);
* the file is created with mode 0600 and refused if others can read it.

The vault must never be shipped with the data.
"""

from __future__ import annotations

import hmac
import os
import secrets
import sqlite3
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privguard.errors import KeyMaterialError
from privguard.pseudonym.forms import (
    ID_LENGTH,
    PREFIX,
    IdKind,
    Pseudonymizer,
    base32,
    offset_from_bytes,
    uid_from_bytes,
)
from privguard.pseudonym.keys import ProjectKey, check_private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    kind TEXT NOT NULL,
    lookup BLOB NOT NULL,
    token TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (kind, lookup),
    UNIQUE (kind, token)
);
"""


class VaultPseudonymizer(Pseudonymizer):
    """Random tokens remembered in an encrypted SQLite vault."""

    method = "random"

    def __init__(self, key: ProjectKey, project: str, path: str | Path, date_shift_days: int = 365) -> None:
        self.path = Path(path)
        self.project = project
        self.date_shift_days = date_shift_days
        self._lookup_key = key.derive("vault-lookup", project)
        self._aead = AESGCM(key.derive("vault-seal", project))
        self._cache: dict[tuple[str, str], str] = {}
        self._db = self._open(key)

    def _open(self, key: ProjectKey) -> sqlite3.Connection:
        if self.path.exists():
            check_private_file(self.path, "vault")
        else:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 60000")
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(_SCHEMA)
        for name, value in (
            ("key_id", key.key_id),
            ("project", self.project),
            ("format", "privguard-vault/1"),
        ):
            db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (name, value))
            (stored,) = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
            if stored != value:
                db.close()
                raise KeyMaterialError(
                    f"vault {self.path} belongs to another {name.replace('_', ' ')}; "
                    "use the key and project it was made with"
                )
        return db

    def _lookup(self, kind: str, original: str) -> bytes:
        return hmac.new(self._lookup_key, f"{kind}\x00{original}".encode(), sha256).digest()

    def _token(self, kind: str, original: str, make: object) -> str:
        cache_key = (kind, original)
        hit = self._cache.get(cache_key)
        if hit is not None:
            return hit
        lookup = self._lookup(kind, original)
        row = self._db.execute(
            "SELECT token FROM tokens WHERE kind = ? AND lookup = ?", (kind, lookup)
        ).fetchone()
        while row is None:
            token = make()  # type: ignore[operator]
            nonce = secrets.token_bytes(12)
            sealed = nonce + self._aead.encrypt(nonce, original.encode("utf-8"), kind.encode() + lookup)
            try:
                self._db.execute(
                    "INSERT OR IGNORE INTO tokens (kind, lookup, token, sealed) VALUES (?, ?, ?, ?)",
                    (kind, lookup, token, sealed),
                )
            except sqlite3.IntegrityError:  # token collision (astronomically rare): draw again
                continue
            # Another worker may have inserted first: its token wins, ours is dropped.
            row = self._db.execute(
                "SELECT token FROM tokens WHERE kind = ? AND lookup = ?", (kind, lookup)
            ).fetchone()
        token_value = str(row[0])
        self._cache[cache_key] = token_value
        return token_value

    def uid(self, original: str) -> str:
        return self._token("uid", original, lambda: uid_from_bytes(secrets.token_bytes(16)))

    def identifier(self, kind: IdKind, original: str) -> str:
        prefix = PREFIX[kind]
        return self._token(
            kind, original, lambda: prefix + base32(secrets.token_bytes(10), ID_LENGTH - len(prefix))
        )

    def date_offset(self, patient_key: str) -> int:
        token = self._token(
            "date-offset",
            patient_key,
            lambda: str(offset_from_bytes(secrets.token_bytes(8), self.date_shift_days)),
        )
        return int(token)

    def reveal(self, kind: str, token: str) -> str | None:
        """Return the original behind a token (sender-side re-identification only)."""
        row = self._db.execute(
            "SELECT lookup, sealed FROM tokens WHERE kind = ? AND token = ?", (kind, token)
        ).fetchone()
        if row is None:
            return None
        lookup, sealed = bytes(row[0]), bytes(row[1])
        plain = self._aead.decrypt(sealed[:12], sealed[12:], kind.encode() + lookup)
        return plain.decode("utf-8")

    def count(self) -> int:
        (n,) = self._db.execute("SELECT COUNT(*) FROM tokens").fetchone()
        return int(n)

    def close(self) -> None:
        self._db.close()
