"""Per-file resource limits inside a worker: memory ceiling and inflate bound.

Two defences against a file that needs far more memory than its size
suggests (a deflate bomb, a header that declares huge values):

* before a Deflated Explicit VR file is parsed, its data set is inflated in
  bounded pieces and only counted; one that inflates past half the ceiling is
  refused without ever holding the inflated bytes;
* the worker process runs under an address-space limit (``RLIMIT_AS``) of its
  start-up size plus the ceiling, so whatever else allocates too much fails
  with ``MemoryError`` for that file instead of taking the machine (or the
  worker) down (not where CUDA may run: it reserves far more address space
  than it uses);
* the driver watches each worker's resident memory and kills one that grows
  past its start-up size plus the ceiling; its files are retried alone, and
  one that does it alone fails with the same reason.
"""

from __future__ import annotations

import os
import struct
import zlib
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


def limit_address_space(extra: int) -> bool:
    """Cap this process's address space at its current size plus ``extra`` bytes (Linux only)."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[0])
        current = pages * os.sysconf("SC_PAGE_SIZE")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        want = current + extra
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        if soft != resource.RLIM_INFINITY and soft <= want:
            return True
        resource.setrlimit(resource.RLIMIT_AS, (want, hard))
        return True
    except (ImportError, OSError, ValueError):
        return False


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
            while True:
                data = fh.read(_PIECE)
                if not data:
                    break
                while data:
                    total += len(inflater.decompress(data, _PIECE))
                    if total > limit:
                        return True
                    data = inflater.unconsumed_tail
                if inflater.eof:
                    break
            total += len(inflater.flush())
            return total > limit
    except (OSError, zlib.error):
        return False  # unreadable or corrupt: the parser reports it
