"""Audit records of the node: one per run (a node session) and one per instance.

The node writes through the :class:`AuditSink` protocol, so the store can be
swapped (a test, or a site's own log). :class:`ChainedAuditSink` writes to the
project's audit log (:mod:`privguard.audit`: hash-chained JSON lines, run
heads signed with Ed25519 when a signing key is configured), the same log
``privguard scrub`` and ``privguard export`` write. The fields follow the
governed-export issue: keyed hashes of the input reference and of the input
bytes' SHA-256, output path and SHA-256, actions by category, pixel results,
status and reason. No names, original IDs, UIDs or paths.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from privguard.header.profile import DeidProfile
from privguard.pseudonym.keys import ProjectKey


class AuditSink(Protocol):
    """Where the node's audit records go."""

    def run_record(self, record: dict[str, Any]) -> None:
        """A run started or ended (``phase``: start | end)."""

    def file_records(self, records: list[dict[str, Any]]) -> None:
        """Per-instance records; written to the log when this returns."""

    def close(self) -> None:
        """Flush and release."""


class ChainedAuditSink:
    """The project's audit log (:mod:`privguard.audit`): hash-chained, the run head optionally signed.

    A node run lasts from start to stop. Per instance: ``ok`` when delivered,
    ``failed`` when quarantined, ``skipped`` when filtered. The input reference
    is the queue file (a keyed hash of it is stored, as for a scrub input).
    """

    def __init__(
        self,
        path: Path | None,
        key: ProjectKey,
        project: str,
        profile: DeidProfile,
        signing_key: Path | None = None,
        operator: str | None = None,
    ) -> None:
        from privguard.audit import AuditLog

        self._key = key
        self._project = project
        self._profile = profile
        self._operator = operator
        self._signing = None
        if signing_key is not None:
            from privguard.compliance import SigningKey

            self._signing = SigningKey.load(signing_key)
        self._log = AuditLog.open(path)
        self.path = self._log.path
        self._lock = threading.Lock()
        self._failed = 0

    def run_record(self, record: dict[str, Any]) -> None:
        if record.get("phase") == "start":
            self._log.begin_run(
                command="serve",
                key=self._key,
                project=self._project,
                profile=self._profile,
                operator=self._operator,
                details={k: record[k] for k in ("listen_ae", "destination", "node_run") if k in record},
            )
            return
        counts = {k: int(v) for k, v in (record.get("counts") or {}).items()}
        with self._lock:
            failed = self._failed
        self._log.end_run(
            outcome="partial" if failed else "success",
            counts=counts,
            reason=f"{failed} instance(s) quarantined" if failed else None,
            signing_key=self._signing,
        )

    def file_records(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            status = {"forwarded": "ok", "quarantined": "failed", "filtered": "skipped"}.get(
                str(r.get("status")), "failed"
            )
            if status == "failed":
                with self._lock:
                    self._failed += 1
            self._log.file_record(
                input=r.get("input"),
                status=status,
                output=r.get("output"),
                reason=r.get("reason"),
                counts=r.get("actions") or {},
                pixels=r.get("pixels"),
                input_sha256=r.get("input_sha256") or None,
                output_sha256=r.get("output_sha256") or None,
            )
        if records:
            self._log.flush()

    def close(self) -> None:
        self._log.close()
