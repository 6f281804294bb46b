"""The node between two real Orthanc servers (hospital PACS and research archive), on loopback.

Needs Debian's orthanc (installed by .ci/run); DCMTK's storescu for the
command-line sender test.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from privguard.audit import iter_records, verify

from .support import (
    DICOMWEB_PLUGIN,
    ORTHANC,
    STORESCU,
    NodeProcess,
    alive,
    check_deidentified,
    child_pids,
    make_study,
    node_config,
    node_process,
    orthanc,
    send,
    wait_for,
)

needs_orthanc = pytest.mark.skipif(
    ORTHANC is None, reason="Orthanc (Debian package orthanc) is not installed"
)
pytestmark = [needs_orthanc, pytest.mark.slow]


def _dimse(archive: object) -> dict[str, object]:
    return {"type": "dimse", "host": "127.0.0.1", "port": archive.dicom_port, "ae_title": archive.aet}  # type: ignore[attr-defined]


def _audited(log: Path) -> list[dict[str, object]]:
    return [r for r in iter_records(log) if r["type"] == "file" and r["status"] == "ok"]


def _forwarded(events: list[dict[str, object]]) -> Counter[str]:
    return Counter(str(e["output"]) for e in events if e["event"] == "forwarded")


def test_pacs_to_archive_deidentified_and_logged(tmp_path: Path, key_file: Path) -> None:
    paths, uids = make_study(tmp_path / "study", series=2, per_series=3)
    with orthanc(tmp_path / "archive", "ARCHIVE") as archive:
        cfg = node_config(tmp_path, key_file, _dimse(archive))
        pacs_modalities = {"privguard": ["PRIVGUARD", "127.0.0.1", cfg["listen"]["port"]]}
        with (
            orthanc(tmp_path / "pacs", "PACS", modalities=pacs_modalities) as pacs,
            node_process(tmp_path, cfg) as node,
        ):
            study = pacs.upload(paths)
            assert pacs.count() == len(paths)
            pacs.store_to("privguard", study)
            wait_for(lambda: archive.count() == len(paths), 30, "the archive to hold the study")
            time.sleep(0.5)  # nothing more arrives
            assert archive.count() == len(paths)
            blobs = archive.files()
            sops = check_deidentified(blobs, uids)
            assert len(sops) == len(paths)
            wait_for(lambda: sum(_forwarded(node.events()).values()) == len(paths), 30, "the log")
            forwarded = _forwarded(node.events())
            assert all(n == 1 for n in forwarded.values())
            assert {Path(o).stem for o in forwarded} == sops
            audit_log = Path(cfg["audit_log"])
            wait_for(lambda: len(_audited(audit_log)) == len(paths), 10, "the audit records")
            assert {Path(r["output"]).stem for r in _audited(audit_log)} == sops
            log_text = node.log.read_bytes() + audit_log.read_bytes()
            for token in (b"Example", b"MRN1234567", b"19611224", *(u.encode() for u in uids)):
                assert token not in log_text
        assert verify(cfg["audit_log"]).ok  # stopped: the run's end record closes the chain


def test_archive_stopped_mid_transfer(tmp_path: Path, key_file: Path) -> None:
    paths, uids = make_study(tmp_path / "study", series=2, per_series=6)
    first, rest = paths[:5], paths[5:]
    with orthanc(tmp_path / "archive", "ARCHIVE") as archive:
        cfg = node_config(tmp_path, key_file, _dimse(archive), forward_batch=1)
        with node_process(tmp_path, cfg) as node:
            assert send(first, node.port) == [0] * len(first)
            wait_for(lambda: archive.count() == len(first), 30, "the first part to arrive")
            archive.stop(signal.SIGKILL)  # the archive goes away in the middle of the study
            # The rest is still acknowledged: it is safely queued while the archive is down.
            assert send(rest, node.port) == [0] * len(rest)
            wait_for(
                lambda: any(e["event"] == "destination-down" for e in node.events()), 30, "the node to notice"
            )
            assert len(list((Path(cfg["queue"]) / "outgoing").glob("*.dcm"))) > 0
            archive.start()
            wait_for(lambda: archive.count() == len(paths), 60, "the archive to receive the rest")
            wait_for(lambda: sum(_forwarded(node.events()).values()) >= len(paths), 30, "the log")
            time.sleep(0.5)
            assert archive.count() == len(paths)
            assert archive.new_instance_changes() == len(paths)
            check_deidentified(archive.files(), uids)
            forwarded = _forwarded(node.events())
            assert len(forwarded) == len(paths) and set(forwarded.values()) == {1}
            assert any(e["event"] == "destination-up" for e in node.events())


def test_node_killed_mid_transfer(tmp_path: Path, key_file: Path) -> None:
    paths, uids = make_study(tmp_path / "study", series=3, per_series=10)
    with orthanc(tmp_path / "archive", "ARCHIVE") as archive:
        cfg = node_config(tmp_path, key_file, _dimse(archive), forward_batch=1)
        pacs_modalities = {"privguard": ["PRIVGUARD", "127.0.0.1", cfg["listen"]["port"]]}
        with orthanc(tmp_path / "pacs", "PACS", modalities=pacs_modalities) as pacs:
            study = pacs.upload(paths)
            node = NodeProcess(tmp_path, cfg)
            node.start()
            try:
                job = pacs.store_to("privguard", study, synchronous=False)
                wait_for(lambda: archive.count() >= 3, 30, "forwarding to begin")
                assert node.proc is not None
                workers = child_pids(node.proc.pid)
                assert workers
                node.kill()  # SIGKILL
                wait_for(lambda: not any(alive(p) for p in workers), 10, "the killed node's workers to end")
                assert archive.count() < len(paths), "the transfer had finished before the kill"
                node.start()
                # The PACS's job may have failed part-way: its operator sends the study again.
                wait_for(
                    lambda: pacs.get(f"/jobs/{job['ID']}")["State"] in ("Success", "Failure"), 90, "the job"
                )
                pacs.store_to("privguard", study)
                wait_for(lambda: archive.count() == len(paths), 60, "the archive to hold the study")
                wait_for(lambda: len(_forwarded(node.events())) == len(paths), 30, "the log")
                time.sleep(0.5)
                assert archive.count() == len(paths)
                assert archive.new_instance_changes() == len(paths)
                check_deidentified(archive.files(), uids)
                forwarded = _forwarded(node.events())
                assert set(forwarded) and len(forwarded) == len(paths)
                # A crash between the archive's acknowledgement and the node's ledger can resend the one
                # instance in flight (forward_batch: 1); nothing else goes twice.
                assert sum(forwarded.values()) - len(paths) <= 1
            finally:
                node.stop()
            # The killed run stays unfinished in the audit log; the chain still verifies.
            assert verify(cfg["audit_log"]).ok


@pytest.mark.skipif(STORESCU is None, reason="DCMTK storescu is not installed")
def test_storescu_sender(tmp_path: Path, key_file: Path) -> None:
    paths, uids = make_study(tmp_path / "study", series=1, per_series=4)
    with orthanc(tmp_path / "archive", "ARCHIVE") as archive:
        cfg = node_config(tmp_path, key_file, _dimse(archive))
        with node_process(tmp_path, cfg) as node:
            assert STORESCU is not None
            base = [STORESCU, "-aec", "PRIVGUARD", "127.0.0.1", str(node.port)]
            refused = subprocess.run(
                [*base[:1], "-aet", "STRANGER", *base[1:], str(paths[0])], capture_output=True, timeout=60
            )
            assert refused.returncode != 0
            done = subprocess.run(
                [*base[:1], "-aet", "PACS", *base[1:], *map(str, paths)], capture_output=True, timeout=60
            )
            assert done.returncode == 0, done.stderr.decode(errors="replace")[-500:]
            wait_for(lambda: archive.count() == len(paths), 30, "the archive to hold the study")
            check_deidentified(archive.files(), uids)
            wait_for(lambda: sum(_forwarded(node.events()).values()) == len(paths), 30, "the log")


@pytest.mark.skipif(DICOMWEB_PLUGIN is None, reason="orthanc-dicomweb is not installed")
def test_stow_rs_to_orthanc_dicomweb(tmp_path: Path, key_file: Path) -> None:
    paths, uids = make_study(tmp_path / "study", series=2, per_series=2)
    with orthanc(tmp_path / "archive", "ARCHIVE", dicomweb=True) as archive:
        dest = {"type": "stow", "url": f"{archive.url}/dicom-web"}
        cfg = node_config(tmp_path, key_file, dest)
        with node_process(tmp_path, cfg) as node:
            assert send(paths, node.port) == [0] * len(paths)
            wait_for(lambda: archive.count() == len(paths), 30, "the archive to hold the study")
            check_deidentified(archive.files(), uids)
            wait_for(lambda: sum(_forwarded(node.events()).values()) == len(paths), 30, "the log")
