"""Per-file resource limits inside a worker: memory ceiling and inflate bound.

Two defences against a file that needs far more memory than its size
suggests (a deflate bomb, a header that declares huge values):

* before a Deflated Explicit VR file is parsed, its data set is inflated in
  bounded pieces and only counted; one that inflates past half the ceiling is
  refused without ever holding the inflated bytes;
* the driver watches each worker's resident memory (:class:`MemoryCeiling`)
  and kills one that grows past its ceiling; its files are retried alone, and
  one that does it alone fails with the same reason.

The ceiling counts a file's memory, not the libraries a worker loads on
first use: presidio (the text classifier) adds about 0.6 GB resident when a
worker first needs it, EasyOCR and torch about 0.4-0.6 GB more. Until a
worker has loaded one of those it may still need, its ceiling holds
:data:`LIBRARY_ALLOWANCE` for it; after the chunk in which it loaded one, the
baseline is re-measured (the worker reports its resident size after every
chunk) and the allowance goes. No address-space limit (``RLIMIT_AS``) is set:
those libraries map several GB of address space they never touch (presidio
3.3 GB, torch 3.2 GB, EasyOCR 4 GB measured), and CUDA reserves far more, so
a limit on it fails the imports rather than the files.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

DEFLATED = b"1.2.840.10008.1.2.1.99"
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UT", b"UN", b"UC", b"UR", b"SV", b"UV"}
_PIECE = 1 << 20


def memory_reason(limit: int) -> str:
    return (
        f"the file needs more than the per-file memory ceiling ({_human(limit)}); "
        "raise --max-file-memory to process it"
    )


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def resident_bytes(pid: int) -> int | None:
    """Resident memory of a process (Linux ``/proc``), or None where unknown."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


LIBRARY_ALLOWANCE = 1 << 30
"""Resident memory allowed for each heavy library a worker may still load (measured: 0.4-0.6 GB)."""

HEAVY_LIBRARIES = ("presidio_analyzer", "easyocr")
"""Modules loaded on first use whose resident size the ceiling must not charge to a file."""


@dataclass
class MemoryCeiling:
    """The resident-memory ceiling of one worker, as the driver's watchdog applies it.

    ``baseline`` is the worker's resident size when it became ready, re-measured
    after each chunk in which it loaded a heavy library it had not loaded before;
    the ceiling is that plus ``per_file`` plus :data:`LIBRARY_ALLOWANCE` for each
    library in ``may_load`` not loaded yet.
    """

    per_file: int
    may_load: frozenset[str]
    baseline: int | None = None
    loaded: frozenset[str] = frozenset()

    def ready(self, rss: int | None, loaded: frozenset[str]) -> None:
        self.baseline = rss
        self.loaded = loaded

    def chunk_done(self, rss: int | None, loaded: frozenset[str]) -> None:
        """The worker finished a chunk with ``rss`` resident and ``loaded`` heavy libraries."""
        if loaded - self.loaded and rss is not None:
            self.baseline = rss  # the libraries are now part of the worker, not of a file
        self.loaded = self.loaded | loaded

    def limit(self) -> int | None:
        """The resident size past which the worker is killed, or None where its baseline is unknown."""
        if self.baseline is None:
            return None
        return self.baseline + self.per_file + LIBRARY_ALLOWANCE * len(self.may_load - self.loaded)

    def exceeded(self, rss: int | None) -> bool:
        limit = self.limit()
        return limit is not None and rss is not None and rss > limit


def loaded_libraries() -> frozenset[str]:
    """The heavy libraries this process has imported."""
    return frozenset(name for name in HEAVY_LIBRARIES if name in sys.modules)


def _deflated_data_offset(head: bytes) -> int | None:
    """Offset of the data set of a Part 10 file whose transfer syntax is deflated, else None."""
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    pos = 132
    ts: bytes | None = None
    while pos + 8 <= len(head):
        group, elem = struct.unpack_from("<HH", head, pos)
        if group != 0x0002:
            break
        vr = head[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > len(head):
                return None
            (length,) = struct.unpack_from("<I", head, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", head, pos + 6)
            start = pos + 8
        if length == 0xFFFFFFFF or start + length > len(head):
            return None
        if elem == 0x0010:
            ts = head[start : start + length].rstrip(b"\x00 ")
        pos = start + length
    return pos if ts == DEFLATED else None


def inflated_size_exceeds(path: Path, limit: int) -> bool:
    """True if ``path`` is a deflated DICOM file whose data set inflates to more than ``limit`` bytes.

    Inflates in pieces of at most 1 MiB and keeps none of them: memory stays
    constant whatever the ratio.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(16 * 1024)
            offset = _deflated_data_offset(head)
            if offset is None:
                return False
            fh.seek(offset)
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            total = 0
            while not inflater.eof:
                data = fh.read(_PIECE)
                if not data:
                    break
                while data and not inflater.eof:
                    # Once the stream has ended, what follows it stays in unconsumed_tail and
                    # every further call returns nothing: stop at the end, never loop on it.
                    total += len(inflater.decompress(data, _PIECE))
                    if total > limit:
                        return True
                    data = inflater.unconsumed_tail
            total += len(inflater.flush())
            return total > limit
    except (OSError, zlib.error):
        return False  # unreadable or corrupt: the parser reports it
