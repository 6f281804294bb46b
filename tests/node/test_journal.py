"""The receive journal: one synced append per instance before the acknowledgement, shared syncs,
segments reused, torn and stale records ignored, and a node killed between the append and the ack."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import privguard.node.journal as journal_mod
from privguard.node.journal import ALIGN, HEADER_SIZE, MAX_SPARES, ReceiveJournal, Record, scan
from privguard.node.queue import DurableQueue, Item
from privguard.pseudonym.keys import ProjectKey

from .support import NodeProcess, check_deidentified, make_study, node_config, wait_for

SEG = 16 * ALIGN  # 64 KiB segments: a few records each
CRASHY = Path(__file__).with_name("crash_after_journal.py")


def _tok(n: int) -> str:
    return f"{n:016x}"


def _open(folder: Path, done: set[int] | None = None) -> tuple[ReceiveJournal, list[Record]]:
    j = ReceiveJournal(folder, SEG)
    return j, j.open(lambda r: r.seq in (done or set()))


def test_records_survive_a_reopen_byte_for_byte(tmp_path: Path) -> None:
    j, pending = _open(tmp_path / "j")
    assert pending == []
    blobs = {seq: bytes([seq]) * (1000 * seq + 7) for seq in range(1, 9)}
    recs = [j.append(seq, _tok(seq), _tok(100 + seq), data) for seq, data in blobs.items()]
    assert [j.read(r) for r in recs] == list(blobs.values())
    assert all(r.offset % ALIGN == 0 for r in recs)
    j.release([1, 2])
    j.close()

    j2, pending = _open(tmp_path / "j", done={3})
    # What is done is the caller's to say at start (the ledger): releasing only allows reuse.
    assert [r.seq for r in pending] == [1, 2, 4, 5, 6, 7, 8]
    assert [j2.read(r) for r in pending] == [blobs[s] for s in (1, 2, 4, 5, 6, 7, 8)]
    assert (pending[2].study, pending[2].instance) == (_tok(4), _tok(104))
    j2.close()


def test_a_torn_record_ends_its_segment(tmp_path: Path) -> None:
    j, _ = _open(tmp_path / "j")
    recs = [j.append(seq, _tok(seq), _tok(seq), b"x" * 5000) for seq in (1, 2, 3)]
    j.close()
    seg = tmp_path / "j" / f"{recs[1].segment:020d}.seg"
    with open(seg, "r+b") as fh:  # the second record's data cut short by a power loss
        fh.seek(recs[1].data_offset + 4000)
        fh.write(b"\0" * 1000)
    assert [r.seq for r in scan(seg, recs[1].segment)] == [1]
    j2, pending = _open(tmp_path / "j")
    assert [r.seq for r in pending] == [1]
    j2.close()


def test_segments_are_reused_and_stale_records_never_come_back(tmp_path: Path) -> None:
    j, _ = _open(tmp_path / "j")
    data = b"y" * (3 * ALIGN)  # 4 records per segment
    for seq in range(1, 201):
        j.append(seq, _tok(seq), _tok(seq), data)
        j.release([seq])
        # One active segment, the spares, and one being prepared at most.
        assert j.segment_count() <= 1 + MAX_SPARES + 1
    last = j.append(201, _tok(201), _tok(201), b"last")
    j.close()
    # 201 went into a reused segment that still holds older records (under its old number) after
    # it: they are never read back as records of this segment.
    seg = tmp_path / "j" / f"{last.segment:020d}.seg"
    raw = seg.read_bytes()
    assert raw[4 * ALIGN : 4 * ALIGN + 4] == journal_mod.MAGIC
    assert [r.seq for r in scan(seg, last.segment)] == [201]
    j2, pending = ReceiveJournal(tmp_path / "j", SEG), None
    pending = j2.open(lambda r: False)
    seqs = [r.seq for r in pending]
    assert len(seqs) == len(set(seqs)) and {197, 198, 199, 200, 201} <= set(seqs)
    assert len(seqs) <= 4 * (1 + MAX_SPARES + 1)  # everything older was overwritten or deleted
    assert all(j2.read(r) == (b"last" if r.seq == 201 else data) for r in pending)
    j2.close()


def test_an_instance_larger_than_a_segment_gets_its_own(tmp_path: Path) -> None:
    j, _ = _open(tmp_path / "j")
    big = bytes(range(256)) * (SEG // 256 + 10)
    small = j.append(1, _tok(1), _tok(1), b"small")
    rec = j.append(2, _tok(2), _tok(2), big)
    assert rec.segment != small.segment and j.read(rec) == big
    own = tmp_path / "j" / f"{rec.segment:020d}.seg"
    assert own.stat().st_size == HEADER_SIZE + len(big)
    j.close()
    j2, pending = _open(tmp_path / "j")
    assert [r.seq for r in pending] == [1, 2]
    j2.release([2])
    assert not own.exists()  # deleted, not kept as a spare
    j2.close()


def test_concurrent_appends_share_syncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j, _ = _open(tmp_path / "j")
    syncs = Counter[int]()
    real = journal_mod.datasync

    def slow_sync(fd: int) -> None:
        syncs[fd] += 1
        time.sleep(0.05)
        real(fd)

    monkeypatch.setattr(journal_mod, "datasync", slow_sync)
    start = threading.Barrier(8)
    out: list[Record] = []

    def one(seq: int) -> None:
        start.wait()
        out.append(j.append(seq, _tok(seq), _tok(seq), b"z" * 1000))

    threads = [threading.Thread(target=one, args=(seq,)) for seq in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 8
    assert sum(syncs.values()) < 8  # eight appends, fewer syncs: they waited for a shared one
    j.close()
    j2, pending = _open(tmp_path / "j")
    assert sorted(r.seq for r in pending) == list(range(1, 9))
    j2.close()


def test_a_failed_sync_fails_the_store_and_a_retry_is_kept_once(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = DurableQueue(tmp_path / "q", key, "p", SEG)
    real = journal_mod.datasync
    calls = 0

    def failing_once(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(journal_mod, "datasync", failing_once)
    with pytest.raises(OSError):
        q.put(b"first try", "1.2.3", "1.2.3.1", False)
    assert q.pending_incoming() == []  # refused: the sender is told to retry
    item, why = q.put(b"first try", "1.2.3", "1.2.3.1", False)
    assert item is not None and why == "queued"
    q.close()
    # The failed store's record may still be on disk: the instance is queued once all the same.
    q2 = DurableQueue(tmp_path / "q", key, "p", SEG)
    pending = q2.pending_incoming()
    assert len(pending) == 1 and q2.incoming_path(pending[0]).read_bytes() == b"first try"
    q2.delivered_many(pending)
    q2.close()
    q3 = DurableQueue(tmp_path / "q", key, "p", SEG)
    assert q3.pending_incoming() == []
    q3.close()


def test_incoming_files_are_rebuilt_from_the_journal(tmp_path: Path, key: ProjectKey) -> None:
    q = DurableQueue(tmp_path / "q", key, "p", SEG)
    a, _ = q.put(b"a" * 3000, "1.2.3", "1.2.3.1", False)
    b, _ = q.put(b"b" * 3000, "1.2.3", "1.2.3.2", False)
    assert a is not None and b is not None
    q.close()
    q.incoming_path(a).unlink()  # never written back before a power loss
    q.incoming_path(b).write_bytes(b"\0" * 3000)  # or written back as zeros
    (q.incoming / f"{Item(b.seq + 1, a.study, 'f' * 16).name}.dcm").write_bytes(b"never acked")
    q2 = DurableQueue(tmp_path / "q", key, "p", SEG)
    assert q2.pending_incoming() == [a, b]
    assert q2.incoming_path(a).read_bytes() == b"a" * 3000
    assert q2.incoming_path(b).read_bytes() == b"b" * 3000
    assert sorted(p.name for p in q2.incoming.iterdir()) == [f"{a.name}.dcm", f"{b.name}.dcm"]
    q2.close()


def test_a_queue_from_before_the_journal_is_adopted(tmp_path: Path, key: ProjectKey) -> None:
    q = DurableQueue(tmp_path / "q", key, "p", SEG)
    item, _ = q.put(b"old" * 1000, "1.2.3", "1.2.3.9", False)
    assert item is not None
    q.close()
    # The layout of earlier versions: synced files in incoming/, no journal folder.
    for p in (tmp_path / "q" / "journal").iterdir():
        p.unlink()
    (tmp_path / "q" / "journal").rmdir()
    q2 = DurableQueue(tmp_path / "q", key, "p", SEG)
    assert q2.pending_incoming() == [item]
    q2.close()
    q3 = DurableQueue(tmp_path / "q", key, "p", SEG)  # now in the journal
    assert q3.pending_incoming() == [item] and q3.journal.segment_count() >= 1
    q3.close()


def _send_until_failure(paths: list[Path], port: int) -> list[int]:
    """C-STORE over one association; stop at the first store without a response."""
    import pydicom
    from pynetdicom import AE
    from pynetdicom.presentation import build_context

    ae = AE(ae_title="PACS")
    pairs = {
        (str(m.MediaStorageSOPClassUID), str(m.TransferSyntaxUID))
        for m in (pydicom.filereader.read_file_meta_info(p) for p in paths)
    }
    ae.requested_contexts = [build_context(sop, [ts]) for sop, ts in sorted(pairs)]
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    assoc = ae.associate("127.0.0.1", port, ae_title="PRIVGUARD")
    statuses: list[int] = []
    try:
        for p in paths:
            rsp: Any = assoc.send_c_store(p)
            if "Status" not in rsp:
                break
            statuses.append(int(rsp.Status))
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()
    return statuses


def test_node_killed_between_journal_append_and_ack(tmp_path: Path, key_file: Path) -> None:
    paths, uids = make_study(tmp_path / "study", series=2, per_series=3)
    archive = tmp_path / "archive"
    cfg = node_config(tmp_path, key_file, {"type": "folder", "path": str(archive)}, journal_segment_mb=1)
    node = NodeProcess(tmp_path, cfg)
    err = open(tmp_path / "node.stderr", "ab")  # noqa: SIM115 - handed to the process
    node.proc = subprocess.Popen(
        [sys.executable, str(CRASHY), "3", "serve", "--config", str(node.path)], stdout=err, stderr=err
    )
    err.close()
    wait_for(node._ready, 60, "the node to start")
    statuses = _send_until_failure(paths, node.port)
    assert statuses == [0, 0]  # the third was journaled, then the node died before answering
    assert node.proc.wait(20) == -signal.SIGKILL
    node.proc = None

    node.start()
    try:
        # The sender retries what was not acknowledged; a PACS operator may resend the whole study.
        assert _send_until_failure(paths, node.port) == [0] * len(paths)
        wait_for(lambda: len(list(archive.rglob("*.dcm"))) == len(paths), 60, "the archive")
        events = node.events()
        wait_for(lambda: sum(e["event"] == "forwarded" for e in node.events()) >= len(paths), 30, "the log")
        time.sleep(0.5)
        events = node.events()
    finally:
        node.stop()
    files = sorted(archive.rglob("*.dcm"))
    assert len(files) == len(paths)
    check_deidentified([p.read_bytes() for p in files], uids)
    forwarded = Counter(e["output"] for e in events if e["event"] == "forwarded")
    assert len(forwarded) == len(paths) and set(forwarded.values()) == {1}  # each exactly once
    ledger = (Path(cfg["queue"]) / "ledger.log").read_text().split()[1::2]
    assert len(ledger) == len(set(ledger)) == len(paths)
    # The journaled-but-unacknowledged instance came back from the journal, not from the retry.
    skipped = Counter(e["reason"] for e in events if e["event"] == "skipped")
    assert skipped["duplicate"] + skipped["delivered"] == 3


def test_the_ledger_is_compacted_and_nothing_delivered_comes_back(tmp_path: Path, key: ProjectKey) -> None:
    def queue() -> DurableQueue:
        # Remember deliveries for one hour; compact from 20 lines on.
        return DurableQueue(tmp_path / "q", key, "p", SEG, remember_delivered_s=3600, compact_after=20)

    q = queue()
    sizes = []
    for n in range(300):
        item, why = q.put(b"d" * 3000, "1.2.3", f"1.2.3.{n % 40}", True)  # 40 instances, sent again and again
        assert item is not None and why == "queued"
        q.delivered_many([item])
        sizes.append(len(q.ledger_path.read_bytes().splitlines()))
    # 300 deliveries; the ledger keeps the latest line per instance and what the journal may still hold.
    assert max(sizes[100:]) < 150 and sizes[-1] < 300
    tokens = [line.split()[1] for line in q.ledger_path.read_bytes().splitlines()]
    assert len(set(tokens)) == 40  # every instance still remembered
    q.close()

    q2 = queue()
    assert q2.pending_incoming() == []  # no delivered record in the journal is taken for a new one
    assert q2.put(b"d", "1.2.3", "1.2.3.7", False) == (None, "delivered")
    q2.close()

    # Past the retention, a delivered instance is forgotten once its journal record is gone too.
    q3 = DurableQueue(tmp_path / "q", key, "p", SEG, remember_delivered_s=1e-6, compact_after=20)
    for n in range(40, 100):
        item, _ = q3.put(b"e" * 3000, "1.2.3", f"1.2.3.{n}", False)
        assert item is not None
        q3.delivered_many([item])
    lines = q3.ledger_path.read_bytes().splitlines()
    floor = q3.journal.oldest_seq_on_disk()
    assert floor is not None and all(int(line.split()[0]) >= floor for line in lines)
    assert len(lines) < 60
    assert q3.put(b"d", "1.2.3", "1.2.3.7", False)[1] == "queued"  # forgotten: forwarded again
    q3.close()
    q4 = DurableQueue(tmp_path / "q", key, "p", SEG)
    assert [i.instance for i in q4.pending_incoming()] == [q4.token("instance", "1.2.3.7")]
    q4.close()
