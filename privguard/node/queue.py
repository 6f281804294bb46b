"""The node's durable store-and-forward queue, on local disk.

Layout under the queue folder::

    incoming/<name>.dcm       received and fsync'd, before the sender's C-STORE is acknowledged
    outgoing/<name>.dcm       de-identified, waiting for the destination
    outgoing/<name>.json      what the forwarder needs (output path, hashes, counts): no PHI
    quarantine/<name>.pgq     inputs that could not be de-identified, encrypted (see quarantine.py)
    work/                     scratch space of the workers; emptied at start
    ledger.log                keyed tokens of the instances delivered (one per line)

``<name>`` is ``<seq>-<study>-<instance>``: an arrival sequence number and
keyed tokens (HMAC with a sub-key of the project key) of the original Study
and SOP Instance UIDs. No original identifier or path ever appears in a name.
An item moves by rename only: every state change is atomic, so a crash at any
point leaves each instance in exactly one state (a leftover duplicate from an
interrupted move is resolved at start, keeping the later state).
"""

from __future__ import annotations

import hmac
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from privguard.pseudonym.keys import ProjectKey

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


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file: fsync'd, renamed, directory fsync'd."""
    tmp = path.with_name(f".tmp-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        _datasync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _datasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def commit_outputs(root: Path, done: list[tuple[str, Path, dict[str, Any]]]) -> None:
    """Move de-identified outputs into ``outgoing`` and drop their inputs, with one fsync per folder.

    Runs in the worker processes (so the fsyncs of several chunks overlap).
    ``done`` holds (item name, output file, PHI-free description). Each output
    and description is fsync'd, renamed description first, the folder fsync'd,
    and only then are the inputs removed: a crash at any point leaves every
    item either still in ``incoming`` or complete in ``outgoing`` (recover()
    finishes a half-done move).
    """
    if not done:
        return
    outgoing, incoming = root / "outgoing", root / "incoming"
    staged = []
    for name, output, meta in done:
        desc = output.with_name(f"{name}.json")
        fd = os.open(desc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.write(fd, json.dumps(meta, sort_keys=True).encode())
            _datasync(fd)
        finally:
            os.close(fd)
        fsync_file(output)
        staged.append((name, output, desc))
    for name, output, desc in staged:
        os.replace(desc, outgoing / f"{name}.json")
        os.replace(output, outgoing / f"{name}.dcm")
    fsync_dir(outgoing)
    for name, _, _ in staged:
        (incoming / f"{name}.dcm").unlink(missing_ok=True)
    fsync_dir(incoming)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _datasync(fd)
    finally:
        os.close(fd)


class DurableQueue:
    """Items move incoming -> outgoing -> delivered (ledger), or -> quarantine."""

    def __init__(self, root: Path, key: ProjectKey, project: str) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.outgoing = root / "outgoing"
        self.quarantine = root / "quarantine"
        self.work = root / "work"
        self.ledger_path = root / "ledger.log"
        self._key = key.derive("node-queue", project)
        self._lock = threading.Lock()
        for d in (self.root, self.incoming, self.outgoing, self.quarantine, self.work):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.delivered: set[str] = set()
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
        if self.ledger_path.exists():
            data = self.ledger_path.read_bytes()
            for line in data.decode("ascii", "replace").splitlines():
                parts = line.split()
                if len(parts) >= 2 and len(parts[1]) == 16:
                    self.delivered.add(parts[1])
            if data and not data.endswith(b"\n"):  # a line cut short by a crash
                with open(self.ledger_path, "ab") as fh:
                    fh.write(b"\n")
        for d in (self.incoming, self.outgoing):
            for p in d.iterdir():
                if p.name.startswith(".tmp-"):
                    p.unlink(missing_ok=True)
        outgoing = {p.stem for p in self.outgoing.glob("*.dcm")}
        for p in self.outgoing.glob("*.json"):
            if p.stem not in outgoing:  # the move into outgoing stopped half-way: redo it
                p.unlink(missing_ok=True)
        for p in self.incoming.glob("*.dcm"):
            if p.stem in outgoing:  # scrubbed, but the input was not yet removed
                p.unlink(missing_ok=True)
        top = 0
        for d in (self.incoming, self.outgoing, self.quarantine):
            for p in d.iterdir():
                it = Item.parse(p.name.split(".", 1)[0])
                if it is None:
                    continue
                top = max(top, it.seq)
                if d is not self.quarantine:
                    self._pending[it.instance] = it
        # Sequence numbers grow across restarts even when the queue was empty.
        self._seq = max(top, time.time_ns() // 1000)

    def pending_incoming(self) -> list[Item]:
        return sorted(i for p in self.incoming.glob("*.dcm") if (i := Item.parse(p.stem)) is not None)

    def pending_outgoing(self) -> list[Item]:
        return sorted(i for p in self.outgoing.glob("*.dcm") if (i := Item.parse(p.stem)) is not None)

    # -- receiving ---------------------------------------------------------------------

    def put(self, data: bytes, study_uid: str, sop_uid: str, forward_again: bool) -> tuple[Item | None, str]:
        """Store a received instance durably. Returns the item and ``"queued"``, or None and why not.

        ``"duplicate"``: the same instance is already queued; ``"delivered"``: it was
        forwarded before (and ``forward_again`` is off).
        """
        study = self.token("study", study_uid)
        inst = self.token("instance", sop_uid)
        with self._lock:
            if inst in self._pending:
                return None, "duplicate"
            if inst in self.delivered and not forward_again:
                return None, "delivered"
            self._seq += 1
            item = Item(self._seq, study, inst)
            self._pending[inst] = item
        try:
            write_durable(self.incoming / f"{item.name}.dcm", data)
        except BaseException:
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

    def to_quarantine(self, item: Item, sealed: bytes, *, from_outgoing: bool = False) -> None:
        write_durable(self.quarantine / f"{item.name}.pgq", sealed)
        if from_outgoing:
            self.outgoing_path(item).unlink(missing_ok=True)
            (self.outgoing / f"{item.name}.json").unlink(missing_ok=True)
            fsync_dir(self.outgoing)
        else:
            self.incoming_path(item).unlink(missing_ok=True)
            fsync_dir(self.incoming)
        with self._lock:
            self._pending.pop(item.instance, None)

    # -- after delivery ----------------------------------------------------------------

    def delivered_many(self, items: list[Item]) -> None:
        """Record deliveries in the ledger (fsync'd), then drop the outgoing files."""
        if not items:
            return
        if self._ledger_fh is None:
            self._ledger_fh = open(self.ledger_path, "ab")  # noqa: SIM115 - closed in close()
        self._ledger_fh.write(b"".join(f"{i.seq:020d} {i.instance}\n".encode() for i in items))
        self._ledger_fh.flush()
        os.fsync(self._ledger_fh.fileno())
        for i in items:
            self.outgoing_path(i).unlink(missing_ok=True)
            (self.outgoing / f"{i.name}.json").unlink(missing_ok=True)
        fsync_dir(self.outgoing)
        with self._lock:
            for i in items:
                self.delivered.add(i.instance)
                self._pending.pop(i.instance, None)

    def depth(self) -> dict[str, int]:
        return {
            "incoming": sum(1 for _ in self.incoming.glob("*.dcm")),
            "outgoing": sum(1 for _ in self.outgoing.glob("*.dcm")),
            "quarantine": sum(1 for _ in self.quarantine.glob("*.pgq")),
        }

    def close(self) -> None:
        if self._ledger_fh is not None:
            self._ledger_fh.close()
            self._ledger_fh = None
