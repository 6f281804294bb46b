"""Audit records of the node: one per run (a node session) and one per instance.

The node writes through the :class:`AuditSink` protocol, so the store can be
swapped (a test, or a site's own log). :class:`JsonlAuditSink` is the
built-in store: append-only JSON lines, fsync'd per batch. The fields follow
the governed-export issue: keyed hashes of the input reference and of the
input bytes' SHA-256 (HMAC with a sub-key of the project key, so only the
sender can match them), output path and SHA-256, actions by category, pixel
results, status and reason. No names, original IDs, UIDs or paths.
"""

from __future__ import annotations

import getpass
import hmac
import json
import os
import platform
import threading
from hashlib import sha256
from pathlib import Path
from typing import IO, Any, Protocol

from privguard._version import __version__
from privguard.node.events import now_iso
from privguard.pseudonym.keys import ProjectKey


class AuditSink(Protocol):
    """Where the node's audit records go."""

    def run_record(self, record: dict[str, Any]) -> None:
        """A run started or ended (``phase``: start | end)."""

    def file_records(self, records: list[dict[str, Any]]) -> None:
        """Per-instance records; durable when this returns."""

    def close(self) -> None:
        """Flush and release."""


class Hasher:
    """Keyed hashes for audit records (sub-key ``audit`` of the project key)."""

    def __init__(self, key: ProjectKey, project: str) -> None:
        self._key = key.derive("audit", project)

    def __call__(self, value: str | bytes) -> str:
        data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        return hmac.new(self._key, data, sha256).hexdigest()


class JsonlAuditSink:
    """Append-only JSON lines, fsync'd on every call."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600)
        self._fh: IO[bytes] = os.fdopen(fd, "ab")
        self._lock = threading.Lock()

    def _write(self, records: list[dict[str, Any]]) -> None:
        data = b"".join(json.dumps(r, sort_keys=True).encode() + b"\n" for r in records)
        with self._lock:
            self._fh.write(data)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def run_record(self, record: dict[str, Any]) -> None:
        self._write([{"type": "run", **record}])

    def file_records(self, records: list[dict[str, Any]]) -> None:
        if records:
            self._write([{"type": "file", **r} for r in records])

    def close(self) -> None:
        self._fh.close()


def run_info(
    command: str, profile: str, profile_sha256: str, key: ProjectKey, project: str
) -> dict[str, Any]:
    """The fields of a run record (who, when, what; the key by id only)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {
        "ts": now_iso(),
        "command": command,
        "user": user,
        "host": platform.node(),
        "software": f"privguard {__version__}",
        "profile": profile,
        "profile_sha256": profile_sha256,
        "key_id": key.key_id,
        "project": project,
    }
