"""SHA-256 digests of the bytes a worker reads and writes, for the audit log and the manifest.

A :class:`Digester` is given each file's input bytes as read and output bytes
as written (keyed by the input's path, as in ``FileResult.input``). It hashes
them at once, or, with a byte budget, holds them and hashes them in
:meth:`Digester.finish`: the batch worker calls that while the chunk's
outputs are being fsync'd, so the hashing (hashlib releases the GIL) fills
time the worker would otherwise spend waiting on the disk. Files beyond the
budget are hashed at once, so a chunk of large files never holds more than
the budget in memory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from privguard.models import FileDigests, FileResult

_CHUNK = 1 << 20


def sha256_hex(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Digester:
    """The input and output SHA-256 of each file; see the module docstring."""

    def __init__(self, hold_bytes: int = 0) -> None:
        self.hold_bytes = hold_bytes
        self._held = 0
        self._inputs: dict[str, str | bytes | None] = {}
        self._outputs: dict[str, str | bytes] = {}

    def _keep(self, data: bytes) -> str | bytes:
        if self._held + len(data) <= self.hold_bytes:
            self._held += len(data)
            return data
        return sha256_hex(data)

    def input(self, key: str, data: bytes | None, path: Path) -> None:
        """The input's bytes as read (``data``), or None: a file too large to hold, read again here."""
        if data is not None:
            self._inputs[key] = self._keep(data)
            return
        try:
            self._inputs[key] = file_sha256(path)
        except OSError:  # gone since it was read: no digest (the log then reads what is there)
            self._inputs[key] = None

    def output(self, key: str, data: bytes | Path) -> None:
        """The output's bytes as written, or the path of a file too large to hold (hashed now)."""
        self._outputs[key] = file_sha256(data) if isinstance(data, Path) else self._keep(data)

    def finish(self) -> dict[str, FileDigests]:
        """Hash what is held; the digests of every file whose input was read."""
        out: dict[str, FileDigests] = {}
        for key, got in self._inputs.items():
            if got is None:
                continue
            written = self._outputs.get(key)
            out[key] = FileDigests(
                input_sha256=got if isinstance(got, str) else sha256_hex(got),
                output_sha256=written if written is None or isinstance(written, str) else sha256_hex(written),
            )
        self._inputs, self._outputs, self._held = {}, {}, 0
        return out


def attach(results: list[FileResult], digests: dict[str, FileDigests]) -> list[FileResult]:
    """``results`` with their digests (for written files only: a failed file's output is not kept)."""
    return [
        r.model_copy(update={"digests": digests[r.input]})
        if r.status == "ok" and r.output and r.input in digests
        else r
        for r in results
    ]
