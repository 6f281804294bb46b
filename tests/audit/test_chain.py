"""The hash chain and signed heads: any edit, removal, reordering, insertion or truncation is found."""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import signal
from pathlib import Path

import pytest

from privguard.audit import AuditLog, verify
from privguard.audit.chain import record_hash
from privguard.audit.log import head_path
from privguard.compliance.approval import SigningKey
from privguard.errors import AuditIntegrityError, OutputError
from privguard.pseudonym.keys import ProjectKey

from .support import SECRET_PATH_PART, edit, lines, make_log, write_lines


@pytest.fixture
def signing() -> SigningKey:
    return SigningKey.generate()


def test_a_fresh_log_verifies_with_its_signing_key(
    tmp_path: Path, key: ProjectKey, signing: SigningKey
) -> None:
    log, runs = make_log(tmp_path, key, signing)
    report = verify(log, signing.public_key)
    assert report.ok, report.problem
    # 1 log record + 2 runs x (run + 3 files + end)
    assert report.records == 1 + 2 * 5
    assert [r.run for r in report.runs] == runs
    assert all(r.signature == "valid" and r.outcome == "success" and r.files == 3 for r in report.runs)


def test_no_phi_in_the_log(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None)
    data = log.read_bytes()
    assert SECRET_PATH_PART.encode() not in data
    assert str(tmp_path).encode() not in data
    rec = json.loads(lines(log)[2])
    assert rec["type"] == "file" and len(rec["input"]) == 32 and len(rec["input_sha256"]) == 32


@pytest.mark.parametrize("position", [2, 4, 7, 11])
def test_an_edited_record_is_named(tmp_path: Path, key: ProjectKey, position: int) -> None:
    log, _ = make_log(tmp_path, key, None)
    edit(log, position, "time", "2020-01-01T00:00:00.000Z")
    report = verify(log)
    assert not report.ok and report.bad_position == position
    assert "modified" in (report.problem or "")


def test_an_edited_record_with_a_recomputed_hash_breaks_the_next_link(
    tmp_path: Path, key: ProjectKey
) -> None:
    log, _ = make_log(tmp_path, key, None)
    rows = lines(log)
    rec = json.loads(rows[3])
    rec["status"] = "failed"
    rec["hash"] = record_hash(rec)
    rows[3] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    write_lines(log, rows)
    report = verify(log)
    assert report.bad_position == 5 and "chain is broken" in (report.problem or "")


@pytest.mark.parametrize("position", [1, 3, 6, 8])
def test_a_removed_record_is_named(tmp_path: Path, key: ProjectKey, position: int) -> None:
    log, _ = make_log(tmp_path, key, None)
    rows = lines(log)
    del rows[position - 1]
    write_lines(log, rows)
    report = verify(log)
    assert not report.ok and report.bad_position == position


def test_swapped_records_are_named(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None)
    rows = lines(log)
    rows[3], rows[4] = rows[4], rows[3]
    write_lines(log, rows)
    report = verify(log)
    assert report.bad_position == 4 and "reordered" in (report.problem or "")


def test_an_inserted_record_is_named(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None)
    rows = lines(log)
    rows.insert(5, rows[4])
    write_lines(log, rows)
    assert verify(log).bad_position == 6


def test_a_truncated_last_record_is_found_through_the_head_file(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None)
    rows = lines(log)
    write_lines(log, rows[:-1])
    report = verify(log)
    assert report.bad_position == len(rows) and "truncated" in (report.problem or "")
    # ... and the next run refuses to write to it
    with pytest.raises(AuditIntegrityError, match="truncated"):
        AuditLog.open(log)


def test_a_half_written_last_line_is_named(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None)
    data = log.read_bytes()
    log.write_bytes(data[:-40])
    report = verify(log)
    assert report.bad_position == len(data[:-40].splitlines())
    with pytest.raises(AuditIntegrityError, match="partial record"):
        AuditLog.open(log)


def test_a_deleted_log_is_refused_not_restarted(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None, runs=1)
    log.unlink()
    with pytest.raises(AuditIntegrityError, match="missing"):
        AuditLog.open(log)
    assert not log.exists()


def test_signatures_wrong_key_stripped_and_unsigned(
    tmp_path: Path, key: ProjectKey, signing: SigningKey
) -> None:
    log, _ = make_log(tmp_path, key, signing, runs=1)
    end = len(lines(log))
    other = SigningKey.generate()
    report = verify(log, other.public_key)
    assert report.bad_position == end and "another key" in (report.problem or "")
    rows = lines(log)
    rec = json.loads(rows[-1])
    del rec["sig"]
    rows[-1] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    write_lines(log, rows)
    assert verify(log).bad_position == end  # signed_by without a signature
    rec["sig"] = "00" * 64
    rows[-1] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    write_lines(log, rows)
    report = verify(log)
    assert report.bad_position == end and "does not verify" in (report.problem or "")


def test_unsigned_runs_pass_unless_signatures_are_required(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None, runs=1)
    assert verify(log).ok
    assert verify(log).runs[0].signature == "unsigned"
    assert verify(log, require_signed=True).bad_position == len(lines(log))


def test_an_interrupted_run_is_listed_and_the_next_run_chains_on(tmp_path: Path, key: ProjectKey) -> None:
    log = tmp_path / "audit.jsonl"
    audit = AuditLog.open(log)
    audit.begin_run(command="export", key=key)
    audit.file_record(input=None, status="ok", output="a.dcm", output_sha256="1" * 64)
    audit.close()  # no end record: as if killed
    with AuditLog.open(log) as again:
        again.begin_run(command="export", key=key)
        again.end_run(outcome="success")
    report = verify(log)
    assert report.ok
    assert [r.outcome for r in report.runs] == ["interrupted", "success"]
    assert any("interrupted" in n for n in report.notes)


def _writer(log: str, secret: bytes, n: int) -> None:
    key = ProjectKey.from_bytes(secret)
    with AuditLog.open(log) as audit:
        for _ in range(3):
            audit.begin_run(command="scrub", key=key)
            for i in range(n):
                audit.file_record(
                    input=None, status="ok", output=f"{os.getpid()}/{i}.dcm", output_sha256="2" * 64
                )
            audit.end_run(outcome="success")


def test_two_processes_append_to_one_log_without_damage(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    secret = os.urandom(32)
    AuditLog.open(log).close()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(log), secret, 200)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    report = verify(log)
    assert report.ok, report.problem
    assert len(report.runs) == 6 and all(r.files == 200 for r in report.runs)


def _fill_up(log: str, secret: bytes, conn: object) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    size = Path(log).stat().st_size
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 3000, size + 3000))
    key = ProjectKey.from_bytes(secret)
    audit = AuditLog.open(log)
    audit.begin_run(command="scrub", key=key)
    for i in range(100):
        audit.file_record(input=None, status="ok", output=f"{i}.dcm", output_sha256="3" * 64)
    try:
        audit.end_run(outcome="success")
        conn.send("ended")  # type: ignore[attr-defined]
    except OutputError as exc:
        conn.send(f"refused: {exc}")  # type: ignore[attr-defined]


def test_a_full_disk_fails_the_run_and_leaves_a_verifiable_log(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    AuditLog.open(log).close()
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_fill_up, args=(str(log), os.urandom(32), child))
    p.start()
    p.join(60)
    message = parent.recv()
    assert message.startswith("refused: cannot write the audit log")
    report = verify(log)
    assert report.ok, report.problem  # cut back to whole records
    assert report.runs[0].outcome == "interrupted"


def test_head_side_file_is_next_to_the_log(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None, runs=1)
    side = json.loads(head_path(log).read_bytes())
    assert side["seq"] == len(lines(log))
    assert side["hash"] == json.loads(lines(log)[-1])["hash"]
