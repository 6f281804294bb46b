"""How a chunk's placed outputs are made durable: one syncfs for several files, fsync otherwise."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from privguard.batch import fsio
from privguard.batch.fsio import Placer, open_root


def _placer(tmp_path: Path, names: list[str]) -> tuple[Placer, int]:
    staging, out = tmp_path / "staging", tmp_path / "out"
    (staging / "a").mkdir(parents=True)
    out.mkdir()
    fd = open_root(out)
    placer = Placer(staging, fd)
    for n in names:
        (staging / "a" / n).write_bytes(n.encode())
        placer.place(f"a/{n}")
    return placer, fd


def _record(monkeypatch: pytest.MonkeyPatch, rc: int = 0, err: int = 0) -> tuple[list[int], list[int]]:
    synced_fs: list[int] = []
    fsynced: list[int] = []

    def fake_syncfs(fd: int) -> int:
        synced_fs.append(fd)
        if rc:
            import ctypes

            ctypes.set_errno(err)
        return rc

    real_fsync = os.fsync

    def fake_fsync(fd: int) -> None:
        fsynced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(fsio, "_SYNCFS", fake_syncfs)
    monkeypatch.setattr(fsio.os, "fsync", fake_fsync)
    return synced_fs, fsynced


def test_a_chunk_of_several_files_is_synced_by_one_syncfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced_fs, fsynced = _record(monkeypatch)
    placer, fd = _placer(tmp_path, ["1.dcm", "2.dcm", "3.dcm"])
    placer.sync()
    assert synced_fs == [fd] and fsynced == []
    assert sorted(os.listdir(tmp_path / "out" / "a")) == ["1.dcm", "2.dcm", "3.dcm"]
    os.close(fd)


def test_a_single_file_is_fsynced_with_its_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced_fs, fsynced = _record(monkeypatch)
    placer, fd = _placer(tmp_path, ["1.dcm"])
    placer.sync()
    assert synced_fs == []
    assert len(fsynced) >= 2  # the file, then its folder (and the parents created for it)
    os.close(fd)


def test_without_syncfs_every_file_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, fsynced = _record(monkeypatch)
    monkeypatch.setattr(fsio, "_SYNCFS", None)
    placer, fd = _placer(tmp_path, ["1.dcm", "2.dcm"])
    placer.sync()
    assert len(fsynced) >= 3
    os.close(fd)


def test_a_write_back_error_reported_by_syncfs_is_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(monkeypatch, rc=-1, err=errno.EIO)
    placer, fd = _placer(tmp_path, ["1.dcm", "2.dcm"])
    with pytest.raises(OSError) as info:
        placer.sync()
    assert info.value.errno == errno.EIO
    os.close(fd)


@pytest.mark.skipif(fsio._SYNCFS is None, reason="syncfs(2) is Linux-only; the fsync path is tested above")
def test_the_real_syncfs_returns() -> None:
    fd = os.open(".", os.O_RDONLY)
    try:
        assert fsio.syncfs(fd) is True
    finally:
        os.close(fd)


def test_the_journal_is_fsynced_at_most_once_per_interval_and_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from privguard.batch import journal as journal_mod
    from privguard.batch.config import RunInfo
    from privguard.batch.journal import Journal
    from privguard.pseudonym.keys import ProjectKey

    _, fsynced = _record(monkeypatch)
    clock = [100.0]
    monkeypatch.setattr(journal_mod.time, "monotonic", lambda: clock[0])
    (tmp_path / ".privguard").mkdir()
    key = ProjectKey.from_bytes(b"k" * 32, datetime(2020, 1, 1, tzinfo=UTC))
    j = Journal(tmp_path, key, "p")
    j.open(RunInfo(key_id="x", project="p", profile="basic", profile_sha256="h", options=()))
    opened = len(fsynced)
    src = tmp_path / "in.dcm"
    src.write_bytes(b"x")
    j.add(src, "a/1.dcm")
    clock[0] += 0.2
    j.chunk_done()  # within the interval: flushed, not fsynced
    assert len(fsynced) == opened
    assert "a/1.dcm" in (tmp_path / ".privguard" / "journal.jsonl").read_text()
    clock[0] += journal_mod.SYNC_INTERVAL
    j.add(src, "a/2.dcm")
    j.chunk_done()
    assert len(fsynced) == opened + 1
    j.add(src, "a/3.dcm")
    j.close()
    assert len(fsynced) == opened + 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range(2) is Linux's")
def test_start_writeback_starts_on_files_and_refuses_pipes(tmp_path: Path) -> None:
    from privguard.outdir import start_writeback

    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"x" * 65536)
        assert start_writeback(fd) is True
    finally:
        os.close(fd)
    r, w = os.pipe()
    try:
        assert start_writeback(w) is False  # ESPIPE: a hint that cannot apply is skipped, not raised
    finally:
        os.close(r)
        os.close(w)


def test_every_output_starts_its_write_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each finished output goes to the disk before the next file is processed (the sync waits less)."""
    from pydicom.data import get_testdata_file

    import privguard.deidentifier as deidentifier
    from privguard.pseudonym.keys import ProjectKey

    started: list[int] = []
    monkeypatch.setattr(deidentifier, "start_writeback", lambda fd: started.append(fd) or True)
    src = [Path(get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm")]
    deid = deidentifier.Deidentifier("basic", ProjectKey.generate())
    try:
        results = deid.files(src, tmp_path / "out")
    finally:
        deid.close()
    assert [r.status for r in results] == ["ok", "ok"]
    assert len(started) == 2
