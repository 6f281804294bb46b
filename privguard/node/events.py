"""JSON-lines event log and live counters of the node (nothing here carries PHI).

Every event is one JSON object per line: ``ts`` (UTC, ISO 8601), ``event``
and PHI-free fields (queue item names are keyed tokens, output UIDs are
pseudonymous, reasons are privguard's own messages about a queue file).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter, deque
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

MAX_ERRORS = 20


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventLog:
    """Thread-safe JSON-lines writer (a file, appended, or stderr)."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._own = path is not None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(path, "a", encoding="utf-8") if path is not None else sys.stderr  # noqa: SIM115

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"ts": now_iso(), "event": event, **fields}, sort_keys=False, default=str)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def emit_many(self, event: str, items: list[dict[str, Any]]) -> None:
        """One event per entry of ``items``, written together (one write and flush)."""
        if not items:
            return
        ts = now_iso()
        text = "".join(
            json.dumps({"ts": ts, "event": event, **fields}, sort_keys=False, default=str) + "\n"
            for fields in items
        )
        with self._lock:
            self._fh.write(text)
            self._fh.flush()

    def close(self) -> None:
        if self._own:
            self._fh.close()


class Stats:
    """Counters and recent errors for the status endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.errors: deque[dict[str, Any]] = deque(maxlen=MAX_ERRORS)
        self.started = now_iso()
        self.started_monotonic = time.monotonic()
        self.destination_up: bool | None = None

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n

    def error(self, stage: str, reason: str, item: str | None = None) -> None:
        with self._lock:
            self.errors.append({"ts": now_iso(), "stage": stage, "reason": reason, "item": item})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "started": self.started,
                "uptime_s": round(time.monotonic() - self.started_monotonic, 1),
                "counts": dict(self.counts),
                "destination_up": self.destination_up,
                "last_errors": list(self.errors),
            }
