"""Faults inside a batch: killed workers, poison files, slow files, memory hogs, deflate bombs.

Faults are injected for real: a worker process is sent SIGKILL from outside,
or (through fork) a worker's de-identifier kills itself, sleeps or allocates
when it meets a file with a marked name.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from conftest import tree_bytes
from study_gen import write_study

from privguard.batch import ScrubConfig, scrub
from privguard.batch.limits import inflated_size_exceeds
from privguard.deidentifier import Deidentifier
from privguard.models import FileResult
from privguard.pseudonym.keys import ProjectKey

pytestmark = pytest.mark.skipif(os.name != "posix", reason="worker faults use fork and signals")


def _cfg(inputs: list[Path], out: Path, key: ProjectKey, **kw: object) -> ScrubConfig:
    return ScrubConfig(inputs=inputs, out=out, key=key, **kw)  # type: ignore[arg-type]


def _report(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _inputs(root: Path, n_patients: int = 3, per_series: int = 6) -> list[Path]:
    paths: list[Path] = []
    for i in range(n_patients):
        paths += write_study(
            root / f"p{i}", patient=(f"Pat^{i}", f"MRN{i:07d}", "19700101"), series=2, per_series=per_series
        )
    return paths


def _inject(monkeypatch: pytest.MonkeyPatch, marker: str, action: str) -> None:
    """Make a worker's de-identifier misbehave on inputs whose name holds ``marker`` (inherited by fork)."""
    original = Deidentifier.files

    def files(
        self: Deidentifier, paths: list[Path], out_dir: Path, *, dry_run: bool = False
    ) -> list[FileResult]:
        if any(marker in p.name for p in paths):
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif action == "sleep":
                time.sleep(60)
            elif action == "rlimit":
                import resource

                (out_dir.parents[1] / "rlimit.txt").write_text(str(resource.getrlimit(resource.RLIMIT_AS)[0]))
            elif action == "nap":
                time.sleep(0.05 * len(paths))  # every worker stays busy (and holds a chunk ahead)
            elif action == "grow":
                held = b"x" * (512 << 20)  # resident, not just reserved
                time.sleep(30)
                del held
        return original(self, paths, out_dir, dry_run=dry_run)

    monkeypatch.setattr(Deidentifier, "files", files)


def test_a_killed_worker_fails_nothing_and_every_input_is_reported_once(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    inp = tmp_path / "in"
    paths = _inputs(inp)
    clean = scrub(_cfg([inp], tmp_path / "clean", key, workers=2, chunk_size=3))
    assert clean.ok == len(paths)
    _inject(monkeypatch, ".dcm", "nap")  # slow every file a little: a worker is killed mid-chunk

    killed: list[int] = []

    def kill_one_worker(res: FileResult) -> None:
        if killed or not res.output:
            return
        workers = [p for p in multiprocessing.active_children() if p.is_alive() and p.pid]
        if workers:
            assert workers[0].pid is not None
            os.kill(workers[0].pid, signal.SIGKILL)  # as the OOM killer does
            killed.append(workers[0].pid)

    report = tmp_path / "report.jsonl"
    out = tmp_path / "out"
    summary = scrub(_cfg([inp], out, key, workers=2, chunk_size=3, report=report), on_result=kill_one_worker)
    assert killed, "no worker was killed"
    lines = _report(report)
    assert sorted(str(x["input"]) for x in lines) == sorted(str(p) for p in paths)  # each exactly once
    assert summary.worker_deaths == 1 and summary.retried >= 1  # it died holding a chunk
    # Retried in a fresh worker: nothing failed, and the output equals a clean run's.
    assert summary.failed == 0 and summary.ok == len(paths)
    assert tree_bytes(out) == tree_bytes(tmp_path / "clean")
    assert not list(out.rglob("*.tmp")) and not (out / ".privguard" / "staging").exists()
    journal = (out / ".privguard" / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 1 + len(paths)


def test_a_file_that_kills_its_worker_fails_alone_after_one_retry(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    inp = tmp_path / "in"
    paths = _inputs(inp, n_patients=2, per_series=4)
    poison = paths[5].with_name("poison.dcm")
    paths[5].rename(poison)
    paths[5] = poison
    clean = scrub(_cfg([inp], tmp_path / "clean", key, workers=2, chunk_size=4, report=tmp_path / "c.jsonl"))
    assert clean.ok == len(paths)
    poison_out = next(str(x["output"]) for x in _report(tmp_path / "c.jsonl") if x["input"] == str(poison))

    _inject(monkeypatch, "poison", "kill")
    report = tmp_path / "report.jsonl"
    summary = scrub(_cfg([inp], tmp_path / "out", key, workers=2, chunk_size=4, report=report))
    lines = {str(x["input"]): x for x in _report(report)}
    assert len(lines) == len(paths) == summary.total
    assert lines[str(poison)]["status"] == "failed"
    assert lines[str(poison)]["reason"] == "worker died (signal 9)"
    assert summary.failed == 1 and summary.ok == len(paths) - 1 and summary.exit_code == 1
    assert summary.worker_deaths == 2  # its chunk's worker, then its own retry's
    assert summary.retried >= 4  # the chunk's files went again, one by one
    expected = {k: v for k, v in tree_bytes(tmp_path / "clean").items() if k != poison_out}
    assert tree_bytes(tmp_path / "out") == expected


def test_a_file_past_the_time_limit_fails_and_the_batch_goes_on(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    inp = tmp_path / "in"
    paths = write_study(inp, series=1, per_series=4)
    slow = paths[1].with_name("slow.dcm")
    paths[1].rename(slow)
    _inject(monkeypatch, "slow", "sleep")
    start = time.monotonic()
    summary = scrub(_cfg([inp], tmp_path / "out", key, workers=2, chunk_size=2, file_timeout=1.0))
    assert time.monotonic() - start < 30
    assert summary.ok == 3 and summary.failed == 1
    failure = summary.failures[0]
    assert failure.input == str(slow) and "time limit" in (failure.reason or "")
    assert "--file-timeout" in (failure.reason or "")


def test_a_file_over_the_memory_ceiling_fails_alone_with_a_clear_reason(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's resident-memory watchdog kills the worker; the chunk is split and only the hog fails."""
    inp = tmp_path / "in"
    paths = write_study(inp, series=1, per_series=3)
    grow = paths[1].with_name("grow.dcm")
    paths[1].rename(grow)
    _inject(monkeypatch, "grow", "grow")
    start = time.monotonic()
    summary = scrub(_cfg([inp], tmp_path / "out", key, workers=1, chunk_size=3, max_file_memory=256 << 20))
    assert time.monotonic() - start < 25  # killed, not waited for
    assert summary.ok == 2 and summary.failed == 1
    assert summary.retried == 3  # its chunk went again, file by file
    failure = summary.failures[0]
    assert failure.input == str(grow)
    reason = failure.reason or ""
    assert "memory ceiling (256 MiB)" in reason and "--max-file-memory" in reason


def test_workers_run_without_an_address_space_limit(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RLIMIT_AS would fail lazy imports (presidio, torch and EasyOCR map GBs they never touch)."""
    import resource

    inp = tmp_path / "in"
    paths = write_study(inp, series=1, per_series=1)
    paths[0].rename(paths[0].with_name("rlimit.dcm"))
    _inject(monkeypatch, "rlimit", "rlimit")
    out = tmp_path / "out"
    summary = scrub(_cfg([inp], out, key, workers=1, max_file_memory=64 << 20))
    assert summary.ok == 1
    inherited = resource.getrlimit(resource.RLIMIT_AS)[0]
    assert int((out / ".privguard" / "rlimit.txt").read_text()) == inherited


def _deflate_bomb(path: Path, inflated: int) -> None:
    """A Part 10 file, Deflated Explicit VR Little Endian, whose data set inflates to ``inflated`` bytes."""

    def el(tag: tuple[int, int], vr: bytes, value: bytes) -> bytes:
        if len(value) % 2:
            value += b"\x00"
        return struct.pack("<HH", *tag) + vr + struct.pack("<H", len(value)) + value

    ts = b"1.2.840.10008.1.2.1.99"
    body = (
        el((0x0002, 0x0001), b"OB", b"")[:6]
        + b"\x00\x00"
        + struct.pack("<I", 2)
        + b"\x00\x01"
        + el((0x0002, 0x0002), b"UI", b"1.2.840.10008.5.1.4.1.1.7")
        + el((0x0002, 0x0003), b"UI", b"1.2.3.4.5")
        + el((0x0002, 0x0010), b"UI", ts)
    )
    meta = el((0x0002, 0x0000), b"UL", b"")[:6] + struct.pack("<H", 4) + struct.pack("<I", len(body)) + body
    dataset = (
        el((0x0008, 0x0016), b"UI", b"1.2.840.10008.5.1.4.1.1.7")
        + el((0x0008, 0x0018), b"UI", b"1.2.3.4.5")
        + el((0x0010, 0x0010), b"PN", b"Bomb^Patient")
        + struct.pack("<HH", 0x7FE0, 0x0010)
        + b"OB\x00\x00"
        + struct.pack("<I", inflated)
    )
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    with open(path, "wb") as fh:
        fh.write(b"\x00" * 128 + b"DICM" + meta)
        fh.write(z.compress(dataset))
        zeros = b"\x00" * (1 << 20)
        for _ in range(inflated >> 20):
            fh.write(z.compress(zeros))
        fh.write(z.flush())


def test_inflate_bound_counts_without_holding_the_bytes(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.dcm"
    _deflate_bomb(bomb, 192 << 20)
    assert bomb.stat().st_size < 1 << 20  # under 1 MiB on disk, 192 MiB inflated
    tracemalloc.start()
    try:
        assert inflated_size_exceeds(bomb, 64 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    assert not inflated_size_exceeds(bomb, 1 << 30)  # under the limit: let the parser have it


def test_bytes_after_the_deflate_stream_end_the_count(tmp_path: Path, key: ProjectKey) -> None:
    """Found by fuzzing: a stream that ends with input left over once looped forever in the bound."""
    bomb = tmp_path / "tail.dcm"
    _deflate_bomb(bomb, 8 << 20)
    with open(bomb, "ab") as fh:
        fh.write(bytes(range(256)) * 300)  # 75 KiB after the end of the deflate stream
    start = time.monotonic()
    assert not inflated_size_exceeds(bomb, 1 << 30)
    assert not inflated_size_exceeds(bomb, 64 << 20)
    assert time.monotonic() - start < 5
    start = time.monotonic()
    summary = scrub(_cfg([bomb], tmp_path / "out", key, workers=1, file_timeout=60.0))
    assert time.monotonic() - start < 60
    assert summary.failed == 1 and "after the end of the deflated data set" in (
        summary.failures[0].reason or ""
    )


def test_a_deflate_bomb_is_a_per_file_failure(tmp_path: Path, key: ProjectKey) -> None:
    inp = tmp_path / "in"
    write_study(inp, series=1, per_series=2)
    _deflate_bomb(inp / "bomb.dcm", 200 << 20)
    summary = scrub(_cfg([inp], tmp_path / "out", key, workers=1, max_file_memory=64 << 20))
    assert summary.ok == 2 and summary.failed == 1
    assert summary.failures[0].input == str(inp / "bomb.dcm")
    assert "deflate bomb" in (summary.failures[0].reason or "")
    assert "Bomb" not in (summary.failures[0].reason or "")
