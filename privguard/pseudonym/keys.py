"""Project keys: the secret behind every pseudonym.

A key file holds a random 256-bit master key, a key id and the time it was
made. It must be readable by its owner only (mode 0600); anything looser is
refused when the key is read. Per-project and per-purpose sub-keys are derived
with HKDF-SHA256, so one master key yields pseudonyms that cannot be linked
across projects.

The key never appears in ``repr``, logs or error messages.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privguard.errors import KeyMaterialError

KEY_FORMAT = "privguard-project-key"
KEY_BYTES = 32


def _hkdf(secret: bytes, info: bytes, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


def _key_id(secret: bytes) -> str:
    return "pk_" + _hkdf(secret, b"privguard/v1/key-id", 8).hex()


def check_private_file(path: Path, what: str) -> None:
    """Refuse a secret file that group or others can read or write (POSIX only)."""
    if os.name != "posix":
        return
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyMaterialError(f"{what} {path} not found") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyMaterialError(f"{what} {path} is not a regular file")
    if st.st_mode & 0o077:
        raise KeyMaterialError(
            f"{what} {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )


def write_new_file(path: Path, data: bytes, mode: int = 0o600, what: str = "a key") -> None:
    """Create ``path`` with ``mode`` and write ``data``; never overwrite an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise KeyMaterialError(f"{path} already exists; refusing to overwrite {what}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600; never overwrite an existing file."""
    write_new_file(path, data, 0o600)


class ProjectKey:
    """A project master key. Use :meth:`generate`, :meth:`load` or :meth:`from_bytes`."""

    __slots__ = ("__secret", "created", "key_id")

    def __init__(self, secret: bytes, created: datetime) -> None:
        if len(secret) != KEY_BYTES:
            raise KeyMaterialError(f"a project key must be {KEY_BYTES} bytes")
        self.__secret = bytes(secret)
        self.created = created
        self.key_id = _key_id(self.__secret)

    def __repr__(self) -> str:
        return f"ProjectKey(key_id={self.key_id!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Worker processes receive the key through pickling (never through a file or argv).
        return (ProjectKey, (self.__secret, self.created))

    @classmethod
    def generate(cls, now: datetime | None = None) -> ProjectKey:
        """Make a new random 256-bit key."""
        return cls(secrets.token_bytes(KEY_BYTES), now or datetime.now(UTC))

    @classmethod
    def from_bytes(cls, secret: bytes, created: datetime | None = None) -> ProjectKey:
        """Wrap existing key bytes (e.g. from a hardware module or a test)."""
        return cls(secret, created or datetime(1970, 1, 1, tzinfo=UTC))

    def derive(self, purpose: str, project: str) -> bytes:
        """Return a 256-bit sub-key for ``purpose`` within ``project`` (HKDF-SHA256)."""
        info = f"privguard/v1/{purpose}/{project}".encode()
        return _hkdf(self.__secret, info)

    def to_json(self) -> bytes:
        doc = {
            "format": KEY_FORMAT,
            "version": 1,
            "key_id": self.key_id,
            "created": self.created.isoformat().replace("+00:00", "Z"),
            "key": base64.urlsafe_b64encode(self.__secret).decode("ascii"),
        }
        return (json.dumps(doc, indent=2) + "\n").encode()

    def save(self, path: Path) -> None:
        """Write the key to a new file with mode 0600."""
        write_private_file(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> ProjectKey:
        """Read a key file, refusing one with unsafe permissions or a wrong key id."""
        path = Path(path)
        check_private_file(path, "key file")
        try:
            doc = json.loads(path.read_bytes())
            if doc.get("format") != KEY_FORMAT or doc.get("version") != 1:
                raise ValueError("format")
            secret = base64.urlsafe_b64decode(doc["key"])
            created = datetime.fromisoformat(str(doc["created"]).replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            raise KeyMaterialError(
                f"key file {path} is not a privguard project key (make one with: privguard keys new)"
            ) from None
        key = cls(secret, created)
        if doc.get("key_id") != key.key_id:
            raise KeyMaterialError(f"key file {path} is damaged: its key id does not match its key")
        return key
