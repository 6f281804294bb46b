"""The node's durable store-and-forward queue, on local disk.

Layout under the queue folder::

    journal/<n>.seg           the receive journal (see journal.py): each received instance is
                              appended and synced there before the sender's C-STORE is
                              acknowledged, and kept until the instance is delivered
    incoming/<name>.dcm       the same bytes as a file for the workers; not synced (rebuilt from
                              the journal at start when missing or different)
    outgoing/<name>.dcm       the de-identified instance, waiting for the destination
    outgoing/<name>.json      what the forwarder needs (output path, hashes, counts): no PHI
    quarantine/<name>.pgq     inputs that could not be de-identified, encrypted (see quarantine.py)
    work/                     scratch space of the workers; emptied at start
    ledger.log                one line per delivered instance: sequence number, instance token

``<name>`` is ``<seq>-<study>-<instance>``: an arrival sequence number and
keyed tokens (HMAC with a sub-key of the project key) of the original Study
and SOP Instance UIDs. No original identifier or path ever appears in a name.

Three writes are synchronous: the journal record (before the acknowledgement;
one ``fdatasync``, shared by concurrent associations), the ledger line (before
the files of a delivered instance are removed and its journal record is
released) and a quarantined instance's sealed file. The de-identified copy is
not synced: until the ledger says "delivered", the journal holds the instance
to scrub again. At start, :meth:`DurableQueue.recover` reads the journal, keeps
the records that the ledger and the quarantine do not mark done, rewrites
their incoming files where needed, and drops every outgoing file whose SHA-256
does not match its description (a write cut short by a power loss), so it is
scrubbed again; de-identification is deterministic, so the output is the same.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from privguard.errors import ConfigError
from privguard.node.journal import (
    DEFAULT_SEGMENT_SIZE,
    ReceiveJournal,
    Record,
    datasync,
    fsync_dir,
    write_durable,
    write_file,
)
from privguard.pseudonym.keys import ProjectKey

#: How long a delivered instance is remembered (skipped when sent again), by default: 90 days.
DEFAULT_REMEMBER_S = 90 * 86400.0
#: The ledger is compacted once it has this many lines and twice as many as after the last compaction.
COMPACT_AFTER = 100_000
LEDGER_TMP = "ledger.log.tmp"

_NAME = re.compile(r"^(\d{20})-([0-9a-f]{16})-([0-9a-f]{16})$")


@dataclass(frozen=True, order=True)
class Item:
    """One queued instance (names only; no PHI)."""

    seq: int
    study: str
    instance: str

    @property
    def name(self) -> str:
        return f"{self.seq:020d}-{self.study}-{self.instance}"

    @classmethod
    def parse(cls, stem: str) -> Item | None:
        m = _NAME.match(stem)
        return cls(int(m.group(1)), m.group(2), m.group(3)) if m else None


def commit_outputs(root: Path, done: list[tuple[str, Path, dict[str, Any]]]) -> None:
    """Move de-identified outputs into ``outgoing``: the description first, then the file.

    Runs in the worker processes. ``done`` holds (item name, output file,
    PHI-free description). Nothing is fsync'd here: the received file stays in
    ``incoming`` until delivery (see the module docstring).
    """
    outgoing = root / "outgoing"
    for name, output, meta in done:
        desc = output.with_name(f"{name}.json")
        desc.write_bytes(json.dumps(meta, sort_keys=True).encode())
        os.replace(desc, outgoing / f"{name}.json")
        os.replace(output, outgoing / f"{name}.dcm")


def _sha256_file(path: Path) -> str:
    h = sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        datasync(fd)
    finally:
        os.close(fd)


class DurableQueue:
    """Items move incoming -> outgoing -> delivered (ledger), or -> quarantine."""

    def __init__(
        self,
        root: Path,
        key: ProjectKey,
        project: str,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        remember_delivered_s: float | None = DEFAULT_REMEMBER_S,
        compact_after: int = COMPACT_AFTER,
    ) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.outgoing = root / "outgoing"
        self.quarantine = root / "quarantine"
        self.work = root / "work"
        self.ledger_path = root / "ledger.log"
        self.journal = ReceiveJournal(root / "journal", segment_size)
        self._key = key.derive("node-queue", project)
        self._lock = threading.Lock()
        for d in (self.root, self.incoming, self.outgoing, self.quarantine, self.work):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.name == "posix" and self.root.stat().st_mode & 0o077:
            raise ConfigError(
                f"the queue folder {root} is accessible by group or others (it holds PHI); "
                f"run: chmod 700 {root}"
            )
        self.delivered: set[str] = set()
        self._delivered_seq: dict[str, int] = {}  # instance token -> latest delivered sequence number
        self._remember_s = remember_delivered_s
        self._compact_after = compact_after
        self._ledger_lines = 0
        self._kept_lines = 0
        self._pending: dict[str, Item] = {}  # instance token -> item, incoming or outgoing
        self._seq = 0
        self._ledger_fh: Any = None
        self.recover()

    # -- tokens ------------------------------------------------------------------------

    def token(self, kind: str, value: str) -> str:
        """A keyed 64-bit token of an identifier: stable under one key and project, opaque to others."""
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), sha256).hexdigest()[:16]

    # -- start-up ----------------------------------------------------------------------

    def recover(self) -> None:
        """Bring the folder to a consistent state after a crash or a restart."""
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(mode=0o700, exist_ok=True)
        delivered_seqs: set[int] = set()
        last_delivered: dict[str, int] = {}  # instance token -> latest delivered sequence number
        if self.ledger_path.exists():
            data = self.ledger_path.read_bytes()
            for line in data.decode("ascii", "replace").splitlines():
                parts = line.split()
                if len(parts) >= 2 and len(parts[1]) == 16 and parts[0].isdigit():
                    self.delivered.add(parts[1])
                    delivered_seqs.add(int(parts[0]))
                    last_delivered[parts[1]] = max(int(parts[0]), last_delivered.get(parts[1], 0))
                    self._ledger_lines += 1
            if data and not data.endswith(b"\n"):  # a line cut short by a crash
                with open(self.ledger_path, "ab") as fh:
                    fh.write(b"\n")
        sealed = {p.stem for p in self.quarantine.glob("*.pgq")}
        sealed_seqs = {it.seq for name in sealed if (it := Item.parse(name)) is not None}
        legacy = [] if self.journal.folder.exists() else self._legacy_incoming(delivered_seqs | sealed_seqs)

        def done(r: Record) -> bool:
            # Delivered or quarantined; or an older copy of an instance delivered since (a store
            # whose sync failed, so that the sender sent it again).
            superseded = last_delivered.get(r.instance, 0) > r.seq
            return r.seq in delivered_seqs or r.seq in sealed_seqs or superseded

        records = self.journal.open(done)
        records += self._adopt(legacy)
        latest: dict[str, Record] = {}
        for r in sorted(records, key=lambda r: r.seq):
            earlier = latest.get(r.instance)
            if earlier is not None:  # a store whose sync failed, then sent again: the last copy counts
                self.journal.release([earlier.seq])
            latest[r.instance] = r
        pending: dict[str, Record] = {}
        for r in latest.values():
            it = Item(r.seq, r.study, r.instance)
            self._pending[r.instance] = it
            pending[it.name] = r
        for p in self.incoming.iterdir():
            if p.name.split(".", 1)[0] not in pending or p.suffix != ".dcm":
                p.unlink(missing_ok=True)  # not acknowledged, or done before the crash
        for name, r in pending.items():
            self._restore_incoming(name, r)
        for p in self.outgoing.iterdir():
            it = Item.parse(p.name.split(".", 1)[0])
            if p.name.startswith(".tmp-") or it is None or it.seq in delivered_seqs:
                p.unlink(missing_ok=True)  # half-written, or delivered before the crash
        names = {p.stem for p in self.outgoing.iterdir()}
        for name in names:
            dcm, desc = self.outgoing / f"{name}.dcm", self.outgoing / f"{name}.json"
            if name not in pending or name in sealed or not _intact(dcm, desc):
                dcm.unlink(missing_ok=True)  # scrubbed again from the received copy
                desc.unlink(missing_ok=True)
        top = max([0, *delivered_seqs, *sealed_seqs, *(r.seq for r in records)])
        # Sequence numbers grow across restarts even when the queue was empty.
        self._seq = max(top, time.time_ns() // 1000)
        self._delivered_seq = last_delivered
        self._kept_lines = self._ledger_lines
        self.ledger_path.with_name(LEDGER_TMP).unlink(missing_ok=True)  # a compaction cut short

    def _legacy_incoming(self, done: set[int]) -> list[tuple[Item, bytes]]:
        """Instances received by a node without the journal (files synced one by one), to journal now."""
        out = []
        for p in sorted(self.incoming.glob("*.dcm")):
            it = Item.parse(p.stem)
            if it is not None and it.seq not in done:
                out.append((it, p.read_bytes()))
        return out

    def _adopt(self, legacy: list[tuple[Item, bytes]]) -> list[Record]:
        return [self.journal.append(it.seq, it.study, it.instance, data) for it, data in legacy]

    def _restore_incoming(self, name: str, record: Record) -> None:
        """Make incoming/<name>.dcm hold the journal record's bytes (it is not synced when received)."""
        path = self.incoming / f"{name}.dcm"
        try:
            if path.stat().st_size == record.length and self.journal.matches(record, path.read_bytes()):
                return
        except OSError:
            pass
        write_file(path, [self.journal.read(record)])

    def pending_incoming(self) -> list[Item]:
        """Received instances not yet de-identified, in arrival order."""
        ready = {p.stem for p in self.outgoing.glob("*.dcm")}
        return sorted(
            i
            for p in self.incoming.glob("*.dcm")
            if p.stem not in ready and (i := Item.parse(p.stem)) is not None
        )

    def pending_outgoing(self) -> list[Item]:
        return sorted(i for p in self.outgoing.glob("*.dcm") if (i := Item.parse(p.stem)) is not None)

    # -- receiving ---------------------------------------------------------------------

    def put(
        self,
        data: bytes,
        study_uid: str,
        sop_uid: str,
        forward_again: bool,
        on_new: Callable[[Item], None] | None = None,
    ) -> tuple[Item | None, str]:
        """Store a received instance durably. Returns the item and ``"queued"``, or None and why not.

        ``"duplicate"``: the same instance is already queued; ``"delivered"``: it was
        forwarded before (and ``forward_again`` is off). ``on_new`` is called with the new item
        as soon as its sequence number is taken (under the queue's lock), before it is written,
        so that no later instance of its study can overtake it.
        """
        study = self.token("study", study_uid)
        inst = self.token("instance", sop_uid)
        with self._lock:
            if inst in self._pending:
                return None, "duplicate"
            if inst in self.delivered and not forward_again:
                return None, "delivered"
            # Microseconds since the epoch, unique and increasing: the ledger's retention uses it.
            self._seq = max(self._seq + 1, time.time_ns() // 1000)
            item = Item(self._seq, study, inst)
            self._pending[inst] = item
            if on_new is not None:
                on_new(item)
        path = self.incoming / f"{item.name}.dcm"
        try:
            write_file(path, [data])  # for the workers; the journal record is the durable copy
            self.journal.append(item.seq, study, inst, data)
        except BaseException:
            path.unlink(missing_ok=True)
            with self._lock:
                self._pending.pop(inst, None)
            raise
        return item, "queued"

    def incoming_path(self, item: Item) -> Path:
        return self.incoming / f"{item.name}.dcm"

    def outgoing_path(self, item: Item) -> Path:
        return self.outgoing / f"{item.name}.dcm"

    # -- after de-identification -------------------------------------------------------

    def meta(self, item: Item) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.outgoing / f"{item.name}.json").read_bytes())
        return data

    def to_quarantine(self, item: Item, sealed: bytes) -> None:
        """Keep a sealed copy (durably), then drop the item's files."""
        write_durable(self.quarantine / f"{item.name}.pgq", [sealed])
        self.outgoing_path(item).unlink(missing_ok=True)
        (self.outgoing / f"{item.name}.json").unlink(missing_ok=True)
        self.incoming_path(item).unlink(missing_ok=True)
        self.journal.release([item.seq])
        with self._lock:
            self._pending.pop(item.instance, None)

    # -- after delivery ----------------------------------------------------------------

    def delivered_many(self, items: list[Item]) -> None:
        """Record deliveries in the ledger (fsync'd), then drop the items' files."""
        if not items:
            return
        if self._ledger_fh is None:
            self._ledger_fh = open(self.ledger_path, "ab")  # noqa: SIM115 - closed in close()
        self._ledger_fh.write(b"".join(f"{i.seq:020d} {i.instance}\n".encode() for i in items))
        self._ledger_fh.flush()
        datasync(self._ledger_fh.fileno())
        for i in items:
            self.outgoing_path(i).unlink(missing_ok=True)
            (self.outgoing / f"{i.name}.json").unlink(missing_ok=True)
            self.incoming_path(i).unlink(missing_ok=True)
        self.journal.release([i.seq for i in items])
        with self._lock:
            for i in items:
                self.delivered.add(i.instance)
                self._delivered_seq[i.instance] = max(i.seq, self._delivered_seq.get(i.instance, 0))
                self._pending.pop(i.instance, None)
        self._ledger_lines += len(items)
        if self._ledger_lines >= max(self._compact_after, 2 * self._kept_lines):
            self.compact_ledger()

    def compact_ledger(self) -> None:
        """Rewrite the ledger with the lines still needed, so that it does not grow without bound.

        Kept: every line whose instance's journal record may still be read back at start (its
        sequence number is at or above the oldest one on disk), and the latest line of each
        instance delivered within ``remember_delivered_s`` (what ``forward_again: false`` skips).
        The new ledger is written, synced and renamed over the old one (then its folder synced), so
        a crash leaves one or the other. Called by the thread that records deliveries.
        """
        floor = self.journal.oldest_seq_on_disk()
        # Segments deleted before that must stay deleted: only then may the ledger forget the lines
        # of their records (a deletion after it only makes the floor lower than needed).
        fsync_dir(self.journal.folder)
        cutoff = None if self._remember_s is None else time.time_ns() // 1000 - int(self._remember_s * 1e6)
        if self._ledger_fh is not None:
            self._ledger_fh.close()
            self._ledger_fh = None
        kept: list[bytes] = []
        with self._lock:
            latest = dict(self._delivered_seq)
        remembered: dict[str, int] = {}
        for line in self.ledger_path.read_bytes().splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[0].isdigit():
                continue
            seq, token = int(parts[0]), parts[1].decode("ascii", "replace")
            needed = floor is not None and seq >= floor
            recent = latest.get(token) == seq and (cutoff is None or seq >= cutoff)
            if needed or recent:
                kept.append(line + b"\n")
            if recent:
                remembered[token] = seq
        tmp = self.ledger_path.with_name(LEDGER_TMP)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            view = memoryview(b"".join(kept))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.ledger_path)
        fsync_dir(self.root)
        with self._lock:
            for token in list(self._delivered_seq):
                if token not in remembered and self._delivered_seq[token] == latest.get(token):
                    del self._delivered_seq[token]
                    self.delivered.discard(token)
        self._ledger_lines = self._kept_lines = len(kept)

    def depth(self) -> dict[str, int]:
        """Instances received and not yet de-identified, de-identified and not yet delivered, sealed."""
        return {
            "incoming": len(self.pending_incoming()),
            "outgoing": sum(1 for _ in self.outgoing.glob("*.dcm")),
            "quarantine": sum(1 for _ in self.quarantine.glob("*.pgq")),
        }

    def close(self) -> None:
        if self._ledger_fh is not None:
            self._ledger_fh.close()
            self._ledger_fh = None
        self.journal.close()


def _intact(dcm: Path, desc: Path) -> bool:
    """Whether an outgoing file is complete: it exists and its SHA-256 is the one its description holds."""
    try:
        meta = json.loads(desc.read_bytes())
        return bool(meta.get("output_sha256")) and _sha256_file(dcm) == meta["output_sha256"]
    except (OSError, ValueError, AttributeError):
        return False
