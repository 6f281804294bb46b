"""Quarantine: inputs the node could not de-identify, kept encrypted at rest.

They hold PHI, so each is sealed with AES-256-GCM under a sub-key of the
project key (HKDF, purpose ``node-quarantine``). The file is::

    b"PGQ1" | nonce (12 bytes) | ciphertext+tag

with the item name as associated data, so a sealed file cannot be swapped
for another item's. The reason goes to the log (PHI-free); the sealed bytes
are the original Part 10 file as received.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privguard.errors import AuditIntegrityError
from privguard.pseudonym.keys import ProjectKey

MAGIC = b"PGQ1"
PURPOSE = "node-quarantine"


def seal(data: bytes, name: str, key: ProjectKey, project: str) -> bytes:
    """Encrypt one quarantined input."""
    nonce = os.urandom(12)
    return MAGIC + nonce + AESGCM(key.derive(PURPOSE, project)).encrypt(nonce, data, name.encode())


def unseal(path: Path, key: ProjectKey, project: str) -> bytes:
    """Decrypt a quarantined file (``<name>.pgq``); refuses a wrong key or a changed file."""
    blob = path.read_bytes()
    name = path.name.split(".", 1)[0]
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 12 + 16:
        raise AuditIntegrityError(f"{path} is not a privguard quarantine file")
    nonce = blob[len(MAGIC) : len(MAGIC) + 12]
    try:
        return AESGCM(key.derive(PURPOSE, project)).decrypt(nonce, blob[len(MAGIC) + 12 :], name.encode())
    except InvalidTag:
        raise AuditIntegrityError(
            f"{path} does not decrypt: another key or project, or the file was changed"
        ) from None
