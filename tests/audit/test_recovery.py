"""Crash recovery: a torn last line after the synced head is cut off and recorded; all else is refused."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from privguard_cli.main import cli
from study_gen import write_study

from privguard.audit import AuditLog, verify
from privguard.audit.log import head_path
from privguard.errors import AuditIntegrityError
from privguard.pseudonym.keys import ProjectKey

from .support import lines, make_log, write_lines

TORN = b'{"actions":{"X":2},"code":"ok","hash":"ab12'  # the first bytes of a record that was never finished


def _one_more_unsynced_run(log: Path, key: ProjectKey) -> int:
    """Append a whole run, then put the head file back as it was: records written but never synced."""
    side = head_path(log).read_bytes()
    before = len(lines(log))
    with AuditLog.open(log) as audit:
        audit.begin_run(command="scrub", key=key)
        audit.file_record(input=None, status="ok", output="late.dcm", output_sha256="4" * 64)
        audit.end_run(outcome="success")
    head_path(log).write_bytes(side)
    return before


def test_a_torn_tail_after_the_synced_head_is_cut_off_and_recorded(tmp_path: Path, key: ProjectKey) -> None:
    log, runs = make_log(tmp_path, key, None)
    whole = lines(log)
    with open(log, "ab") as fh:
        fh.write(TORN)
    assert not verify(log).ok  # before recovery the torn line is damage
    with AuditLog.open(log) as audit:
        audit.begin_run(command="scrub", key=key)
        audit.end_run(outcome="success")
    report = verify(log)
    assert report.ok, report.problem
    rows = lines(log)
    assert rows[: len(whole)] == whole  # every whole record kept, byte for byte
    rec = json.loads(rows[len(whole)])
    assert rec["type"] == "recovery" and rec["seq"] == len(whole) + 1
    assert rec["prev"] == json.loads(whole[-1])["hash"]  # chained in
    assert rec["after_seq"] == len(whole) and rec["removed_bytes"] == len(TORN)
    # counts only, never the torn content (the record's own hashes are hex too: "ab12" can occur
    # in them by chance, about once in 500 runs, so they are left out of the search)
    own = {k: v for k, v in rec.items() if k not in ("hash", "prev")}
    assert "ab12" not in json.dumps(own) and '"actions"' not in json.dumps(own)
    assert [(c.position, c.after_seq, c.removed_bytes) for c in report.recoveries] == [
        (len(whole) + 1, len(whole), len(TORN))
    ]
    assert any("crash recovery" in n and f"{len(TORN)} bytes" in n for n in report.notes)
    assert [r.run for r in report.runs][:2] == runs and report.runs[-1].outcome == "success"
    assert json.loads(head_path(log).read_bytes())["seq"] == len(rows)


def test_whole_records_written_after_the_head_are_kept(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None, runs=1)
    synced = _one_more_unsynced_run(log, key)
    whole = lines(log)
    assert len(whole) == synced + 3
    with open(log, "ab") as fh:
        fh.write(TORN)
    AuditLog.open(log).close()
    report = verify(log)
    assert report.ok, report.problem
    assert lines(log)[: len(whole)] == whole
    assert [c.after_seq for c in report.recoveries] == [len(whole)]
    assert [r.outcome for r in report.runs] == ["success", "success"]


def _refused(log: Path, match: str) -> None:
    data, side = log.read_bytes(), head_path(log).read_bytes() if head_path(log).exists() else None
    with pytest.raises(AuditIntegrityError, match=match):
        AuditLog.open(log)
    assert log.read_bytes() == data  # nothing cut, nothing appended
    assert (head_path(log).read_bytes() if head_path(log).exists() else None) == side


def test_a_torn_tail_that_removes_synced_records_is_refused(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None)
    data = log.read_bytes()
    log.write_bytes(data[:-40])  # the last, synced, run end is torn
    _refused(log, "partial record .*cuts into records")
    assert not verify(log).ok


def test_a_torn_tail_without_its_head_file_is_refused(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None)
    with open(log, "ab") as fh:
        fh.write(TORN)
    head_path(log).unlink()
    _refused(log, "partial record .*audit.jsonl.head is missing")


def test_a_torn_tail_whose_records_differ_from_the_head_file_is_refused(
    tmp_path: Path, key: ProjectKey
) -> None:
    log, _ = make_log(tmp_path, key, None)
    side = json.loads(head_path(log).read_bytes())
    side["hash"] = "f" * 64
    head_path(log).write_bytes(json.dumps(side).encode())
    with open(log, "ab") as fh:
        fh.write(TORN)
    _refused(log, f"partial record .*record {side['seq']} differs from the head file")


def test_a_torn_tail_after_an_edited_unsynced_record_is_refused(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None, runs=1)
    synced = _one_more_unsynced_run(log, key)
    rows = lines(log)
    rec = json.loads(rows[synced + 1])
    rec["output"] = "other.dcm"  # edited after it was written, before the crash
    rows[synced + 1] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    write_lines(log, [*rows, TORN])
    _refused(log, f"partial record .*record {synced + 2} is damaged")


def test_a_forged_recovery_record_is_damage(tmp_path: Path, key: ProjectKey) -> None:
    log, _ = make_log(tmp_path, key, None)
    with open(log, "ab") as fh:
        fh.write(TORN)
    AuditLog.open(log).close()
    n = len(lines(log))
    rows = lines(log)
    rec = json.loads(rows[-1])
    rec["after_seq"] = 2  # claims another position; the hash no longer matches
    rows[-1] = json.dumps(rec, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    write_lines(log, rows)
    report = verify(log)
    assert report.bad_position == n


def test_cli_verify_notes_and_show_lists_the_recovery(tmp_path: Path, key: ProjectKey) -> None:
    log, runs = make_log(tmp_path, key, None)
    with open(log, "ab") as fh:
        fh.write(TORN)
    AuditLog.open(log).close()
    runner = CliRunner()
    r = runner.invoke(cli, ["audit", "verify", str(log)])
    assert r.exit_code == 0 and "OK: 12 records" in r.output
    assert (
        f"note: record 12 is a crash recovery: {len(TORN)} bytes of a torn record after record 11" in r.output
    )
    r = runner.invoke(cli, ["audit", "show", str(log), "--json"])
    rows = json.loads(r.output)
    assert r.exit_code == 0 and [row["type"] for row in rows] == ["run", "run", "recovery"]
    assert [row["run"] for row in rows[:2]] == runs
    assert rows[2]["after_seq"] == 11 and rows[2]["removed_bytes"] == len(TORN)
    r = runner.invoke(cli, ["audit", "show", str(log)])
    assert r.exit_code == 0 and "crash recoveries" in r.output


# -- a real privguard scrub killed while it appends -------------------------------------------------

#: Runs ``privguard scrub`` with ``os.write`` to the audit log tearing its Nth write half-way and then
#: SIGKILLing the process: the state a kill or power loss in the middle of an append leaves. (Half of a
#: write of two records of equal length ends at a record boundary: the cut then moves back one byte.)
_TEARING_SCRUB = """
import os, signal, sys
from privguard_cli.main import cli
log, nth = os.path.realpath(os.environ["PRIVGUARD_AUDIT_LOG"]), int(sys.argv[1])
real, count = os.write, [0]
def write(fd, data):
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        target = ""
    if target == log:
        count[0] += 1
        if count[0] == nth:
            cut = max(1, len(data) // 2)
            if cut > 1 and bytes(data[cut - 1 : cut]) == b"\\n":
                cut -= 1
            real(fd, bytes(data)[:cut])
            os.kill(os.getpid(), signal.SIGKILL)
    return real(fd, data)
os.write = write
cli(sys.argv[2:])
"""


def _scrub_args(tmp_path: Path, key_file: Path, out: str) -> list[str]:
    return ["scrub", str(tmp_path / "in"), "--out", str(tmp_path / out), "--key-file", str(key_file),
            "--ocr", "off", "--workers", "1"]  # fmt: skip


_EXE = str(Path(sys.executable).with_name("privguard"))


def _env(log: Path) -> dict[str, str]:
    return {**os.environ, "PRIVGUARD_AUDIT_LOG": str(log)}


@pytest.mark.slow
@pytest.mark.parametrize("nth", [1, 2, 3])
def test_a_scrub_killed_inside_an_append_is_followed_by_a_run_that_verifies(
    tmp_path: Path, key_file: Path, nth: int
) -> None:
    write_study(tmp_path / "in", series=1, per_series=3)
    log = tmp_path / "state" / "audit.jsonl"
    first = subprocess.run([_EXE, *_scrub_args(tmp_path, key_file, "a")], env=_env(log), capture_output=True,
                           timeout=120)  # fmt: skip
    assert first.returncode == 0, first.stderr.decode()
    before = log.read_bytes()
    tearing = [sys.executable, "-c", _TEARING_SCRUB, str(nth), *_scrub_args(tmp_path, key_file, "b")]
    killed = subprocess.run(tearing, env=_env(log), capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    torn = log.read_bytes()
    assert torn.startswith(before) and not torn.endswith(b"\n")  # a torn last line, as a crash leaves
    again = subprocess.run([_EXE, *_scrub_args(tmp_path, key_file, "c")], env=_env(log), capture_output=True,
                           timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr.decode()
    report = verify(log)
    assert report.ok, report.problem
    assert (
        len(report.recoveries) == 1
        and report.recoveries[0].removed_bytes == len(torn) - torn.rfind(b"\n") - 1
    )
    # the first write is the killed run's own run record: then the killed run left no whole record
    expected = ["success", "success"] if nth == 1 else ["success", "interrupted", "success"]
    assert [r.outcome for r in report.runs] == expected


@pytest.mark.slow
def test_scrubs_sigkilled_at_random_points_leave_a_log_the_next_run_continues(
    tmp_path: Path, key_file: Path
) -> None:
    write_study(tmp_path / "in", series=2, per_series=3)
    log = tmp_path / "state" / "audit.jsonl"
    exe = _EXE
    start = time.monotonic()
    ref = subprocess.run([exe, *_scrub_args(tmp_path, key_file, "ref")], env=_env(log), capture_output=True,
                         timeout=120)  # fmt: skip
    full = time.monotonic() - start
    assert ref.returncode == 0, ref.stderr.decode()
    rng = random.Random(7)
    for n in range(3):
        proc = subprocess.Popen([exe, *_scrub_args(tmp_path, key_file, f"k{n}")], env=_env(log),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(0.3, full))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        again = subprocess.run([exe, *_scrub_args(tmp_path, key_file, f"r{n}")], env=_env(log),
                               capture_output=True, timeout=120)  # fmt: skip
        assert again.returncode == 0, again.stderr.decode()
        report = verify(log)
        assert report.ok, report.problem
        assert report.runs[-1].outcome == "success"


def test_a_writer_that_finds_another_process_torn_tail_recovers_and_chains_on(
    tmp_path: Path, key: ProjectKey
) -> None:
    log, _ = make_log(tmp_path, key, None, runs=1)
    with AuditLog.open(log) as audit:  # open before the other process crashed
        whole = lines(log)
        with open(log, "ab") as fh:
            fh.write(TORN)  # another writer killed in the middle of its append
        audit.begin_run(command="dicom-node", key=key)
        audit.end_run(outcome="success")
    report = verify(log)
    assert report.ok, report.problem
    assert [c.after_seq for c in report.recoveries] == [len(whole)]
    assert [r.outcome for r in report.runs] == ["success", "success"]
