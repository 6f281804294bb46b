"""The receive journal: every received instance is appended here, and synced, before it is acknowledged.

The journal is a folder of segment files ``<number>.seg`` of a fixed size
(default 32 MiB), written with zeros once, fsync'd, and then reused: a segment
whose instances were all delivered (or quarantined) is renamed to a new
number and written over. Appending a record to such a segment changes no
file-system metadata (the blocks are allocated and initialised, the size does
not change), so the ``fdatasync`` that makes it durable flushes the data only:
no file-system journal commit, no directory sync. Creating a new file for each
instance and syncing it and its folder, as the queue did before, cost two syncs
and one journal commit per instance.

A record is a 48-byte header (magic, segment number, arrival sequence number,
study and instance tokens, length, CRC-32 of header and data) followed by the
instance's bytes, and starts on a 4 KiB boundary, so that a synced record's
blocks are never written again while its segment is in use. At start every
segment is read from its beginning until the first record that does not check
out (a wrong magic, a segment number that is not the file's: an older record
of a reused segment, a bad CRC: a write cut short): nothing after it was ever
acknowledged, since each acknowledgement waits for its own record's sync.

Concurrent associations share syncs (group commit): a record is durable when a
``fdatasync`` that began after its write returned; a writer that finds a sync in
flight waits for it and for the next one only if its write came too late.

Instances larger than a segment get a segment of their own (created, synced,
its folder synced: the slow path); it is deleted, not reused, once done.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"PGRJ"
_HEADER = struct.Struct("<4sQQ8s8sQI")  # magic, segment, seq, study, instance, length, crc32
HEADER_SIZE = _HEADER.size
ALIGN = 4096
DEFAULT_SEGMENT_SIZE = 32 << 20
#: Spare segments kept for reuse beyond the one being prepared; more are deleted.
MAX_SPARES = 2
_ZEROS = bytes(1 << 20)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _crc(head: bytes, data: bytes | memoryview) -> int:
    return zlib.crc32(data, zlib.crc32(head)) & 0xFFFFFFFF


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def datasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


def write_file(path: Path, parts: list[bytes]) -> None:
    """Write ``parts`` to ``path`` (created or truncated, 0600) without syncing it."""
    fd = os.open(path, _CREATE, 0o600)
    try:
        write_all(fd, parts, 0)
    finally:
        os.close(fd)


def write_durable(path: Path, parts: list[bytes], tmp: Path | None = None) -> None:
    """Write ``parts`` to ``path`` through a temporary file: synced, renamed, folder fsync'd."""
    tmp = tmp if tmp is not None else path.with_name(f".tmp-{path.name}")
    fd = os.open(tmp, _CREATE, 0o600)
    try:
        write_all(fd, parts, 0)
        datasync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


@dataclass(frozen=True)
class Record:
    """Where one received instance lies in the journal (no PHI: tokens only)."""

    seq: int
    study: str
    instance: str
    segment: int
    offset: int
    length: int
    crc: int

    @property
    def data_offset(self) -> int:
        return self.offset + HEADER_SIZE


class _Segment:
    """One segment file: its descriptor, how far it is written, its group-commit state."""

    def __init__(self, number: int, path: Path, size: int, fd: int | None) -> None:
        self.number = number
        self.path = path
        self.size = size
        self.fd = fd
        self.tail = 0
        self.live = 0  # records not yet done
        self.inflight = 0  # appends between allocation and sync
        self.cv = threading.Condition()
        self.written = 0  # writes completed (tickets)
        self.synced = 0  # every ticket up to this one is durable
        self.syncing = False
        self.failed = False

    def sync_through(self, ticket: int) -> None:
        """Return once a ``fdatasync`` that began after write ``ticket`` completed has returned.

        A failed sync fails the segment: every write not yet known durable fails with it.
        """
        with self.cv:
            while self.synced < ticket:
                if self.failed:
                    raise OSError("the receive journal could not be synced")
                if self.syncing:
                    self.cv.wait()
                    continue
                self.syncing = True
                target = self.written
                fd = self.fd
                ok = False
                self.cv.release()
                try:
                    assert fd is not None
                    datasync(fd)
                    ok = True
                finally:
                    self.cv.acquire()
                    self.syncing = False
                    if ok:
                        self.synced = max(self.synced, target)
                    else:
                        self.failed = True
                    self.cv.notify_all()

    def write_done(self) -> int:
        with self.cv:
            self.written += 1
            return self.written


class ReceiveJournal:
    """Append received instances durably; read them back; reuse segments whose records are done."""

    def __init__(self, folder: Path, segment_size: int = DEFAULT_SEGMENT_SIZE) -> None:
        if segment_size < 4 * ALIGN or segment_size % ALIGN:
            raise ValueError("the journal segment size must be a multiple of 4096, at least 16 KiB")
        self.folder = folder
        self.segment_size = segment_size
        self._lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}  # segments holding live records, and the active one
        self._where: dict[int, _Segment] = {}  # seq -> segment
        self._spares: list[Path] = []  # done segments of the standard size, ready to be reused
        #: Segment file -> the lowest sequence number of a valid record in it (what a scan at start
        #: reads back, done or not). The ledger must remember these as long as the files hold them.
        self._oldest: dict[Path, int] = {}
        self._active: _Segment | None = None
        self._next = 1
        self._preparing = False
        self._prepared = threading.Condition(self._lock)
        self._closed = False

    # -- start-up ----------------------------------------------------------------------------

    def open(self, done: Callable[[Record], bool]) -> list[Record]:
        """Scan every segment; return the records not ``done``, in arrival order.

        Segments with no such record become spares (or are deleted). A fresh active
        segment and one spare are ready when this returns.
        """
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        pending: list[Record] = []
        top = 0
        for path in sorted(self.folder.iterdir()):
            number = _segment_number(path)
            if number is None:
                path.unlink(missing_ok=True)  # a segment being created when the node stopped
                continue
            top = max(top, number)
            valid = list(scan(path, number))
            if valid:
                self._oldest[path] = min(r.seq for r in valid)
            live = [r for r in valid if not done(r)]
            if not live:
                self._retire(path, path.stat().st_size)
                continue
            seg = _Segment(number, path, path.stat().st_size, None)
            seg.live = len(live)
            seg.tail = self.segment_size  # never appended to again
            self._segments[number] = seg
            for r in live:
                self._where[r.seq] = seg
            pending.extend(live)
        self._next = top + 1
        with self._lock:
            self._active = self._activate()
        self._start_preparing()
        pending.sort(key=lambda r: r.seq)
        return pending

    def _retire(self, path: Path, size: int) -> None:
        """A segment with no live record: keep it as a spare (standard size) or delete it."""
        if size == self.segment_size and len(self._spares) < MAX_SPARES:
            self._spares.append(path)
        else:
            path.unlink(missing_ok=True)
            self._oldest.pop(path, None)

    # -- segments ------------------------------------------------------------------------------

    def _new_spare(self) -> Path:
        """A zero-filled, synced segment file under a temporary name (not yet a segment)."""
        tmp = self.folder / f".new-{os.getpid()}-{threading.get_ident()}.seg"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            off = 0
            while off < self.segment_size:
                off += os.pwrite(fd, _ZEROS[: self.segment_size - off], off)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return tmp

    def _activate(self) -> _Segment:
        """Under the lock: give a spare (or a new zero-filled file) the next number; it becomes active."""
        path = self._spares.pop(0) if self._spares else self._new_spare()
        self._oldest.pop(path, None)  # its records are stale under the new number
        number = self._next
        self._next += 1
        final = self.folder / f"{number:020d}.seg"
        os.replace(path, final)
        fsync_dir(self.folder)  # the new name must survive before any record in it is acknowledged
        fd = os.open(final, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        seg = _Segment(number, final, self.segment_size, fd)
        self._segments[number] = seg
        return seg

    def _start_preparing(self) -> None:
        with self._lock:
            if self._preparing or self._spares or self._closed:
                return
            self._preparing = True
        threading.Thread(target=self._prepare, name="privguard-journal-prepare", daemon=True).start()

    def _prepare(self) -> None:
        """Keep one spare ready, so that moving to the next segment never waits for zero-filling."""
        try:
            path = self._new_spare()
        except OSError:
            path = None  # the append that needs it creates it (and reports the error)
        with self._lock:
            self._preparing = False
            if path is not None:
                if self._closed:
                    path.unlink(missing_ok=True)
                else:
                    self._spares.append(path)
            self._prepared.notify_all()

    # -- appending ---------------------------------------------------------------------------

    def append(self, seq: int, study: str, instance: str, data: bytes) -> Record:
        """Write one record and return once it is on disk (``fdatasync``, shared with concurrent appends).

        Records are written one at a time, in offset order, and only synced concurrently: a sync
        covers every record written before it began, so no acknowledged record ever follows one
        that a crash could leave torn. After any error the segment takes no more records.
        """
        size = _align(HEADER_SIZE + len(data))
        if size > self.segment_size:
            return self._append_alone(seq, study, instance, data)
        head = _HEADER.pack(MAGIC, 0, seq, bytes.fromhex(study), bytes.fromhex(instance), len(data), 0)
        rolled = False
        with self._lock:
            if self._closed:
                raise OSError("the receive journal is closed")
            seg = self._active
            assert seg is not None
            if seg.tail + size > seg.size or seg.failed:
                while self._preparing and not self._spares:
                    self._prepared.wait()
                old = seg
                seg = self._active = self._activate()
                self._release_fd(old)
                rolled = True
            offset = seg.tail
            seg.tail += size
            seg.live += 1
            seg.inflight += 1
            self._where[seq] = seg
            self._oldest.setdefault(seg.path, seq)
            head = head[:4] + struct.pack("<Q", seg.number) + head[12:-4]
            crc = _crc(head, data)
            head += struct.pack("<I", crc)
            try:
                assert seg.fd is not None
                write_all(seg.fd, [head, data], offset)
            except BaseException:
                seg.tail = seg.size  # a partial record ends the segment
                seg.inflight -= 1
                self._forget(seq)
                raise
            ticket = seg.write_done()
        if rolled:
            self._start_preparing()
        try:
            seg.sync_through(ticket)
        except BaseException:
            with self._lock:
                seg.tail = seg.size
                seg.inflight -= 1
                self._forget(seq)
                if seg is not self._active:
                    self._release_fd(seg)
            raise
        with self._lock:
            seg.inflight -= 1
            if seg is not self._active:
                self._release_fd(seg)
        return Record(seq, study, instance, seg.number, offset, len(data), crc)

    def _append_alone(self, seq: int, study: str, instance: str, data: bytes) -> Record:
        """An instance larger than a segment: a segment of its own, created and synced (slow path)."""
        with self._lock:
            number = self._next
            self._next += 1
        head = _HEADER.pack(MAGIC, number, seq, bytes.fromhex(study), bytes.fromhex(instance), len(data), 0)
        crc = _crc(head[:-4], data)
        head = head[:-4] + struct.pack("<I", crc)
        final = self.folder / f"{number:020d}.seg"
        write_durable(final, [head, data], tmp=self.folder / f".new-{number}.seg")
        seg = _Segment(number, final, HEADER_SIZE + len(data), None)
        seg.live = 1
        seg.tail = seg.size
        with self._lock:
            self._segments[number] = seg
            self._where[seq] = seg
            self._oldest[final] = seq
        return Record(seq, study, instance, number, 0, len(data), crc)

    def _release_fd(self, seg: _Segment) -> None:
        """Under the lock: close a segment no longer appended to once its appends are synced."""
        if seg.inflight == 0 and seg.fd is not None:
            os.close(seg.fd)
            seg.fd = None
        done = seg.live == 0 and seg.inflight == 0 and seg is not self._active
        if done and self._segments.pop(seg.number, None) is not None:
            self._retire(seg.path, seg.size)

    def _forget(self, seq: int) -> None:
        seg = self._where.pop(seq, None)
        if seg is not None:
            seg.live -= 1

    # -- after delivery -----------------------------------------------------------------------

    def release(self, seqs: list[int]) -> None:
        """These records are done (their delivery or quarantine is on disk); their segments may be reused."""
        with self._lock:
            touched = []
            for seq in seqs:
                seg = self._where.pop(seq, None)
                if seg is not None:
                    seg.live -= 1
                    touched.append(seg)
            for seg in touched:
                if seg.live == 0 and seg is not self._active:
                    self._release_fd(seg)

    def read(self, record: Record) -> bytes:
        """The instance's bytes, checked against the record's CRC (OSError if they do not match)."""
        seg_path = self.folder / f"{record.segment:020d}.seg"
        with open(seg_path, "rb") as fh:
            fh.seek(record.offset)
            head = fh.read(HEADER_SIZE)
            data = fh.read(record.length)
        if len(data) != record.length or _crc(head[:-4], data) != record.crc:
            raise OSError(f"journal record {record.seq} does not match its checksum")
        return data

    def matches(self, record: Record, data: bytes) -> bool:
        """Whether ``data`` are the record's bytes (by its CRC)."""
        head = _HEADER.pack(
            MAGIC,
            record.segment,
            record.seq,
            bytes.fromhex(record.study),
            bytes.fromhex(record.instance),
            record.length,
            0,
        )[:-4]
        return len(data) == record.length and _crc(head, data) == record.crc

    def oldest_seq_on_disk(self) -> int | None:
        """The lowest sequence number that a scan at start could read back (None: no record on disk)."""
        with self._lock:
            return min(self._oldest.values(), default=None)

    def segment_count(self) -> int:
        return sum(1 for p in self.folder.iterdir() if _segment_number(p) is not None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            while self._preparing:
                self._prepared.wait()
            for seg in list(self._segments.values()):
                if seg.fd is not None:
                    os.close(seg.fd)
                    seg.fd = None
            self._segments.clear()
            self._active = None


def write_all(fd: int, parts: list[bytes], offset: int) -> None:
    """``pwritev`` until every byte of ``parts`` is written from ``offset``."""
    views = [memoryview(p) for p in parts]
    while views:
        n = os.pwritev(fd, views, offset)
        offset += n
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


def _segment_number(path: Path) -> int | None:
    name = path.name
    if len(name) == 24 and name.endswith(".seg") and name[:20].isdigit():
        return int(name[:20])
    return None


def scan(path: Path, number: int) -> Iterator[Record]:
    """The valid records of a segment, from its start to the first one that does not check out."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset = 0
        while offset + HEADER_SIZE <= size:
            fh.seek(offset)
            head = fh.read(HEADER_SIZE)
            magic, seg, seq, study, inst, length, crc = _HEADER.unpack(head)
            if magic != MAGIC or seg != number or offset + HEADER_SIZE + length > size:
                return
            data = fh.read(length)
            if len(data) != length or _crc(head[:-4], data) != crc:
                return
            yield Record(seq, study.hex(), inst.hex(), number, offset, length, crc)
            offset += _align(HEADER_SIZE + length)
