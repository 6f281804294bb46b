"""The resume journal: ``OUT/.privguard/journal.jsonl``.

The first line binds the folder to its run (:class:`RunInfo`: key id,
profile hash, options); every further line names one finished input by keyed
tokens of its path, size and modification time (never the path) and the
output it produced. A line is written only after that output and its folder
were made durable, so after a crash or power loss every line the journal holds
names a complete output. Lines are flushed to the operating system after every
chunk (a killed run loses none) and ``fsync``'d at most every
:data:`SYNC_INTERVAL` seconds and when the run ends: a power loss can only take
the last second's lines, and their files are simply done again on ``--resume``
(an identical output already in place is accepted, see
:class:`privguard.batch.fsio.Placer`).
"""

from __future__ import annotations

import hmac
import json
import os
import time
from hashlib import sha256
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from privguard.batch.config import RunInfo
from privguard.batch.fsio import output_exists
from privguard.errors import ConfigError, OutputError
from privguard.pseudonym.keys import ProjectKey

JOURNAL_DIR = ".privguard"
JOURNAL = "journal.jsonl"
_MAX_LINE = 4096
#: Seconds between two ``fsync`` calls of the journal while a run goes on.
SYNC_INTERVAL = 1.0


class Journal:
    """Which inputs are done, by keyed tokens of their path, size and modification time."""

    def __init__(self, out: Path, key: ProjectKey, project: str) -> None:
        self._key = key.derive("journal", project)
        self.path = out / JOURNAL_DIR / JOURNAL
        self.done: dict[str, tuple[str, str]] = {}
        self._fh: IO[str] | None = None
        self._synced = 0.0

    # -- reading ----------------------------------------------------------------------

    def load(self, run: RunInfo) -> None:
        """Read an earlier run's journal; refuse (exit 2) if it belongs to a different run."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise OutputError(f"the journal {self.path} cannot be read ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as fh:
            lines = fh.read().split(b"\n")
        header = _parse(lines[0]) if lines and lines[0] else None
        if header is None or "run" not in header:
            raise ConfigError(
                f"the journal {self.path} has no run header (an older privguard or another program "
                "wrote it); scrub into a new output folder"
            )
        try:
            earlier = RunInfo.model_validate(header["run"])
        except ValidationError:
            raise ConfigError(f"the journal {self.path} has an invalid run header") from None
        diff = earlier.differences(run)
        if diff:
            raise ConfigError(
                f"--resume refused: the earlier run in this output folder used other settings "
                f"({'; '.join(diff)}); use the same ones, or scrub into a new folder"
            )
        for n, raw in enumerate(lines[1:], start=2):
            if not raw.strip():
                continue
            entry = _parse(raw)
            if entry is None:
                continue  # a line cut short by an interrupted run
            token, sig, output = entry.get("in"), entry.get("sig"), entry.get("out")
            if not (isinstance(token, str) and isinstance(sig, str) and isinstance(output, str)):
                raise ConfigError(f"the journal {self.path} is damaged (line {n} is not a journal entry)")
            self.done[token] = (sig, output)

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8", "surrogateescape"), sha256).hexdigest()[:32]

    def token(self, text: str) -> str:
        """A keyed token of ``text`` (used for paths that must not be stored)."""
        return self._mac(text)

    def tokens(self, path: Path) -> tuple[str, str]:
        st = path.stat()
        return self._mac(str(path.resolve())), self._mac(f"{st.st_size}:{st.st_mtime_ns}")

    def finished(self, path: Path, out_fd: int) -> str | None:
        """The output of ``path`` if an earlier run finished it and it is still there."""
        if not self.done:
            return None
        token, sig = self.tokens(path)
        hit = self.done.get(token)
        if hit and hit[0] == sig and output_exists(out_fd, hit[1]):
            return hit[1]
        return None

    # -- writing ----------------------------------------------------------------------

    def open(self, run: RunInfo) -> None:
        """Open for appending; a new journal starts with the run header (fsync'd)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        fresh = os.fstat(fd).st_size == 0
        torn = False
        if not fresh:
            with open(self.path, "rb") as rd:
                rd.seek(-1, os.SEEK_END)
                torn = rd.read(1) != b"\n"
        self._fh = os.fdopen(fd, "a", encoding="utf-8")
        if fresh:
            self._fh.write(json.dumps({"run": run.model_dump(mode="json")}, sort_keys=True) + "\n")
        elif torn:  # an interrupted run left half a line: start a fresh one
            self._fh.write("\n")
        self.sync()
        if fresh:
            from privguard.batch.fsio import fsync_dir

            fsync_dir(self.path.parent)

    def add(self, path: Path, output: str) -> None:
        """Name a finished input (its output is already durable)."""
        if self._fh is None:
            return
        token, sig = self.tokens(path)
        self._fh.write(json.dumps({"in": token, "sig": sig, "out": output}) + "\n")

    def sync(self) -> None:
        """Flush and fsync."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._synced = time.monotonic()

    def chunk_done(self) -> None:
        """Flush the chunk's lines; fsync them if :data:`SYNC_INTERVAL` has passed since the last fsync."""
        if self._fh is None:
            return
        if time.monotonic() - self._synced >= SYNC_INTERVAL:
            self.sync()
        else:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None


def _parse(raw: bytes) -> dict[str, object] | None:
    """A JSON object, or None for a torn line. A valid line that is not an object is damage."""
    if len(raw) > _MAX_LINE:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return {}
    return value
