"""What goes into the output folder: ``MANIFEST.sha256`` and the run's signed ``AUDIT-HEAD.json``.

The manifest is in ``sha256sum`` format (``<hex>  <path>``, one line per
output file, sorted by path), so ``sha256sum -c MANIFEST.sha256`` checks it
anywhere. ``AUDIT-HEAD.json`` is the signed chain head of the run that wrote
the folder: it names the log, the run, the position and hash of the run's end
record, and the manifest's SHA-256. A recipient checks the delivered set with
:func:`verify_delivery` (``privguard audit verify-delivery OUT``); the sender
checks the head against the log with ``privguard audit verify LOG --head``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from privguard.audit.chain import canonical, head_message
from privguard.audit.log import RunHead, file_sha256
from privguard.errors import AuditIntegrityError, ConfigError, OutputError

MANIFEST = "MANIFEST.sha256"
HEAD = "AUDIT-HEAD.json"
#: Names in the output folder that are not part of the delivered set.
NOT_SHIPPED = frozenset({MANIFEST, HEAD, ".privguard", "review"})


def manifest_bytes(outputs: Mapping[str, str]) -> bytes:
    """The manifest of ``outputs`` (relative path -> SHA-256), sorted by path."""
    return "".join(f"{outputs[p]}  {p}\n" for p in sorted(outputs)).encode("utf-8")


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename, fsync'd."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".privguard-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None


def write_manifest(out: Path, outputs: Mapping[str, str]) -> str:
    """Write ``OUT/MANIFEST.sha256``; return its SHA-256."""
    data = manifest_bytes(outputs)
    write_atomic_bytes(out / MANIFEST, data)
    return hashlib.sha256(data).hexdigest()


def write_head(out: Path, head: RunHead) -> None:
    """Write ``OUT/AUDIT-HEAD.json`` (canonical JSON)."""
    write_atomic_bytes(out / HEAD, canonical(head.to_json()) + b"\n")


def delivered_files(out: Path) -> list[str]:
    """The files of the delivered set (relative POSIX paths), the manifest and head excluded."""
    found: list[str] = []
    for root, dirs, files in os.walk(out):
        rel_root = Path(root).relative_to(out)
        if rel_root == Path("."):
            dirs[:] = [d for d in dirs if d not in NOT_SHIPPED]
            files = [f for f in files if f not in NOT_SHIPPED]
        dirs.sort()
        for name in sorted(files):
            if name.startswith(".privguard-") and name.endswith(".tmp"):
                continue
            found.append((rel_root / name).as_posix())
    return found


def verify_delivery(out: str | Path, public_key: Any = None) -> list[str]:
    """Check a delivered folder: every file matches the manifest, the manifest matches the signed head.

    Returns the problems found (empty when the set is intact). With
    ``public_key`` the head must be signed by that key.
    """
    from privguard.audit.verify import load_public_key
    from privguard.compliance.approval import PublicKey

    out = Path(out)
    problems: list[str] = []
    man, head_file = out / MANIFEST, out / HEAD
    if not man.is_file() or not head_file.is_file():
        raise ConfigError(f"{out} holds no {MANIFEST} and {HEAD}; it was not written by privguard")
    data = man.read_bytes()
    try:
        head = json.loads(head_file.read_bytes())
        log_id, run, seq, digest = str(head["log"]), str(head["run"]), int(head["seq"]), str(head["hash"])
    except (ValueError, KeyError, TypeError):
        raise AuditIntegrityError(f"{head_file} is damaged") from None
    if hashlib.sha256(data).hexdigest() != head.get("manifest_sha256"):
        problems.append(f"{MANIFEST} does not match the hash in {HEAD}")
    listed: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        digest_hex, _, rel = line.partition("  ")
        listed[rel] = digest_hex
    present = set(delivered_files(out))
    for rel in sorted(present - set(listed)):
        problems.append(f"{rel} is not in the manifest")
    for rel in sorted(set(listed) - present):
        problems.append(f"{rel} is in the manifest but missing")
    for rel in sorted(present & set(listed)):
        if file_sha256(out / rel) != listed[rel]:
            problems.append(f"{rel} differs from the manifest")
    if public_key is not None and not hasattr(public_key, "key_id"):
        public_key = load_public_key(public_key)
    if head.get("sig") is None:
        if public_key is not None:
            problems.append(f"{HEAD} is unsigned")
    else:
        try:
            embedded = PublicKey(base64.urlsafe_b64decode(str(head.get("public_key")).encode()))
            sig = bytes.fromhex(str(head["sig"]))
        except (ValueError, binascii.Error, ConfigError):
            return [*problems, f"{HEAD} carries a damaged key or signature"]
        key = public_key if public_key is not None else embedded
        if key.key_id != embedded.key_id:
            problems.append(f"{HEAD} is signed with another key than the one given")
        elif not key.verify(sig, head_message(log_id, run, seq, digest, head.get("manifest_sha256"))):
            problems.append(f"the signature in {HEAD} does not verify")
    return problems
