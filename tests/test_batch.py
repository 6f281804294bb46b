"""Folder scrubbing: integrity across files, resume, bad inputs, safety of paths."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pydicom
import pytest
from conftest import snapshot, tree_bytes
from study_gen import write_study

from privguard.batch import ScrubConfig, dry_run, scrub
from privguard.errors import ConfigError, OutputError
from privguard.header.profile import Option
from privguard.models import FileResult
from privguard.pseudonym.keys import ProjectKey


def _cfg(inputs: list[Path], out: Path, key: ProjectKey, **kw: object) -> ScrubConfig:
    return ScrubConfig(inputs=inputs, out=out, key=key, workers=kw.pop("workers", 1), **kw)  # type: ignore[arg-type]


def _outputs(out: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(out.rglob("*.dcm"))]


def test_referential_integrity_across_a_study(tmp_path: Path, key: ProjectKey) -> None:
    inp = tmp_path / "in"
    write_study(inp / "a", series=3, per_series=4)
    write_study(
        inp / "b",
        patient=("Example^John^Q", "MRN1234567", "19611224"),
        series=1,
        per_series=2,
        study_date="20240305",
    )
    write_study(inp / "c", patient=("Other^Ann", "MRN7654321", "19500101"), series=1, per_series=2)
    summary = scrub(_cfg([inp], tmp_path / "out", key, workers=2))
    assert (summary.ok, summary.failed) == (16, 0)
    outs = _outputs(tmp_path / "out")
    sops = {ds.SOPInstanceUID for ds in outs}
    assert len(sops) == 16
    by_patient: dict[str, set[str]] = {}
    references = 0
    for ds in outs:
        by_patient.setdefault(ds.PatientID, set()).add(ds.StudyInstanceUID)
        # every reference points at an instance that exists in the output
        for item in [*ds.get("ReferencedImageSequence", []), *ds.get("SourceImageSequence", [])]:
            assert item.ReferencedSOPInstanceUID in sops
            references += 1
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID):
            assert uid.startswith("2.25.") and len(uid) <= 64 and uid.is_valid
        assert ds.PatientName == ds.PatientID  # the name is derived from the pseudonymous ID
    assert references >= 12  # the references were kept (X/Z/U* -> U*), not dropped
    # Two patients; the first has two studies, linked by one pseudonym.
    assert sorted(len(v) for v in by_patient.values()) == [1, 2]
    twice = next(pid for pid, studies in by_patient.items() if len(studies) == 2)
    frames = {ds.FrameOfReferenceUID for ds in outs if ds.PatientID == twice}
    assert len(frames) == 2  # one frame of reference per study, shared by its series
    # Output names are built from pseudonymous values only.
    for p in (tmp_path / "out").rglob("*.dcm"):
        rel = p.relative_to(tmp_path / "out").parts
        ds = pydicom.dcmread(p)
        assert rel == (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID + ".dcm")
        assert not any(part in str(p) for part in ("Example", "Other", "MRN"))


def test_same_patient_links_within_a_project_not_across(tmp_path: Path, key: ProjectKey) -> None:
    paths = write_study(tmp_path / "in", series=1, per_series=1)
    a = scrub(_cfg(paths, tmp_path / "a", key, project="lung"))
    b = scrub(_cfg(paths, tmp_path / "b", key, project="lung"))
    c = scrub(_cfg(paths, tmp_path / "c", key, project="heart"))
    assert a.ok == b.ok == c.ok == 1
    da, db, dc = (_outputs(tmp_path / x)[0] for x in "abc")
    assert da.PatientID == db.PatientID and da.SOPInstanceUID == db.SOPInstanceUID
    assert da.PatientID != dc.PatientID and da.SOPInstanceUID != dc.SOPInstanceUID
    other = ProjectKey.generate()
    d = scrub(_cfg(paths, tmp_path / "d", other, project="lung"))
    assert d.ok == 1 and _outputs(tmp_path / "d")[0].PatientID != da.PatientID


def test_resume_produces_the_same_bytes_as_a_fresh_run(tmp_path: Path, key: ProjectKey) -> None:
    inp = tmp_path / "in"
    write_study(inp, series=2, per_series=5)
    fresh = scrub(_cfg([inp], tmp_path / "fresh", key))
    assert fresh.ok == 10
    # An interrupted run: half the outputs and journal lines exist, plus a stale temp file.
    out = tmp_path / "resumed"
    scrub(_cfg([inp], out, key))
    journal = out / ".privguard" / "journal.jsonl"
    header, *lines = journal.read_text().splitlines()
    assert "run" in json.loads(header)  # the run binding comes first
    journal.write_text("\n".join([header, *lines[:5]]) + "\n" + lines[5][:10])  # last line cut short
    done = {json.loads(x)["out"] for x in lines[:5]}
    for p in out.rglob("*.dcm"):
        if str(p.relative_to(out)) not in done:
            p.unlink()
    stale = next(out.rglob("*.dcm")).parent / ".privguard-abc.tmp"
    stale.write_bytes(b"partial")
    resumed = scrub(_cfg([inp], out, key, resume=True))
    assert resumed.resumed == 5 and resumed.ok == 5 and resumed.failed == 0
    assert tree_bytes(out) == tree_bytes(tmp_path / "fresh")
    assert not stale.exists()
    # Resuming a finished run does nothing more.
    again = scrub(_cfg([inp], out, key, resume=True))
    assert again.resumed == 10 and again.ok == 0


def test_journal_and_output_names_hold_no_phi(tmp_path: Path, key: ProjectKey) -> None:
    inp = tmp_path / "Example_John_MRN1234567"
    write_study(inp, series=1, per_series=2)
    scrub(_cfg([inp], tmp_path / "out", key))
    for p in (tmp_path / "out").rglob("*"):
        assert "Example" not in p.name and "MRN" not in p.name and "John" not in p.name
    journal = (tmp_path / "out" / ".privguard" / "journal.jsonl").read_text()
    assert "Example" not in journal and str(inp) not in journal and "MRN" not in journal


def test_bad_inputs_are_reported_and_the_batch_goes_on(tmp_path: Path, key: ProjectKey) -> None:
    inp = tmp_path / "in"
    good = write_study(inp, series=1, per_series=2)
    data = good[0].read_bytes()
    (inp / "truncated.dcm").write_bytes(data[: len(data) - 40])
    (inp / "empty.dcm").write_bytes(b"")
    (inp / "notes.txt").write_text("not dicom at all")
    (inp / "header_only.dcm").write_bytes(data[:300])
    # Garbage inside a sequence: a sequence item whose length runs past the sequence.
    ds = pydicom.dcmread(good[1])
    raw = bytearray(good[1].read_bytes())
    pos = raw.find(b"\x08\x00\x40\x11")  # (0008,1140) ReferencedImageSequence
    assert pos > 0
    raw[pos + 16 : pos + 20] = b"\xff\x00\xff\x00"  # corrupt the first item's length
    (inp / "garbage_in_sequence.dcm").write_bytes(bytes(raw))
    assert ds.SOPInstanceUID
    before = snapshot(inp)
    report = tmp_path / "report.jsonl"
    summary = scrub(_cfg([inp], tmp_path / "out", key, report=report, workers=2))
    assert snapshot(inp) == before
    lines = {Path(x["input"]).name: x for x in map(json.loads, report.read_text().splitlines())}
    assert lines["notes.txt"]["status"] == "skipped" and lines["notes.txt"]["reason"] == "not a DICOM file"
    assert lines["empty.dcm"]["status"] == "skipped"
    for bad in ("truncated.dcm", "header_only.dcm", "garbage_in_sequence.dcm"):
        assert lines[bad]["status"] == "failed", bad
        assert lines[bad]["reason"] and "Traceback" not in lines[bad]["reason"]
    assert summary.ok == 2 and summary.failed == 3 and summary.exit_code == 1
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 2
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_output_inside_input_is_refused(tmp_path: Path, key: ProjectKey) -> None:
    write_study(tmp_path / "in", series=1, per_series=1)
    with pytest.raises(OutputError, match="inside the input"):
        scrub(_cfg([tmp_path / "in"], tmp_path / "in" / "out", key))
    with pytest.raises(OutputError, match="inside the output"):
        scrub(_cfg([tmp_path / "in"], tmp_path, key))
    assert not (tmp_path / "in" / "out").exists()


def test_non_empty_output_needs_resume(tmp_path: Path, key: ProjectKey) -> None:
    paths = write_study(tmp_path / "in", series=1, per_series=1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "something").write_text("x")
    with pytest.raises(OutputError, match="not empty"):
        scrub(_cfg(paths, tmp_path / "out", key))


def test_missing_input_and_bad_key_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        scrub(_cfg([tmp_path / "nope"], tmp_path / "out", ProjectKey.generate()))
    loose = tmp_path / "loose.key"
    ProjectKey.generate().save(loose)
    os.chmod(loose, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        scrub(ScrubConfig(inputs=[tmp_path], out=tmp_path / "o", key=loose))
    assert not (tmp_path / "o").exists()


def test_dry_run_writes_nothing_and_lists_actions(tmp_path: Path, key: ProjectKey) -> None:
    paths = write_study(tmp_path / "in", series=1, per_series=2)
    plan = dry_run(_cfg(paths, tmp_path / "out", key))
    assert not (tmp_path / "out").exists()
    assert [f.status for f in plan.files] == ["ok", "ok"]
    rows = {(r.keyword, r.action) for r in plan.attributes}
    assert ("PatientName", "P") in rows and ("StudyDate", "Z") in rows and ("SOPInstanceUID", "U") in rows
    assert ("InstitutionName", "X") in rows
    assert all(r.files == 2 for r in plan.attributes if r.keyword == "PatientName")
    assert ("ReferencedImageSequence", "U") in rows  # X/Z/U*: kept with its UIDs replaced
    kept = dry_run(_cfg(paths, tmp_path / "out", key, options=frozenset({Option.RETAIN_UIDS})))
    nested = [r for r in kept.attributes if r.keyword == "ReferencedSOPInstanceUID"]
    assert nested and all("[*]" in r.path and r.action == "K" for r in nested)


def test_duplicate_sop_instance_with_different_content_is_refused(tmp_path: Path, key: ProjectKey) -> None:
    paths = write_study(tmp_path / "in", series=1, per_series=1)
    ds = pydicom.dcmread(paths[0])
    ds.SliceThickness = "3"  # kept by the profile, so the outputs differ
    ds.save_as(tmp_path / "in" / "z_copy.dcm")
    (tmp_path / "in" / "a_same.dcm").write_bytes(paths[0].read_bytes())
    summary = scrub(_cfg([tmp_path / "in"], tmp_path / "out", key))
    assert summary.ok == 2  # the identical copy is fine
    assert summary.failed == 1 and "duplicate SOP Instance UID" in (summary.failures[0].reason or "")
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1


@pytest.mark.slow
def test_a_ray_actor_past_the_time_limit_is_killed_and_only_its_file_fails(
    tmp_path: Path, key: ProjectKey
) -> None:
    """The same time-limit policy as local workers: the actor is killed, the chunk split, one file fails."""
    import ray

    inp = tmp_path / "in"
    paths = write_study(inp, series=1, per_series=4)
    slow = paths[1].with_name("slow.dcm")
    paths[1].rename(slow)
    tests_dir = str(Path(__file__).parent)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={
            "env_vars": {
                "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
            },
            "worker_process_setup_hook": "ray_hang_hook.install",
        },
    )
    try:
        start = time.monotonic()
        summary = scrub(
            _cfg([inp], tmp_path / "out", key, workers=2, executor="ray", chunk_size=2, file_timeout=3.0)
        )
        assert time.monotonic() - start < 90
    finally:
        ray.shutdown()
    assert summary.ok == 3 and summary.failed == 1
    failure = summary.failures[0]
    assert failure.input == str(slow) and "time limit" in (failure.reason or "")


@pytest.mark.slow
def test_ray_executor_matches_local_processes(tmp_path: Path, key: ProjectKey) -> None:
    """A real local Ray cluster: same outputs, byte for byte, as the process pool."""
    inp = tmp_path / "in"
    write_study(inp, series=2, per_series=3)
    (inp / "notes.txt").write_text("not dicom")
    local = scrub(_cfg([inp], tmp_path / "local", key, workers=2))
    distributed = scrub(_cfg([inp], tmp_path / "ray", key, workers=2, executor="ray", chunk_size=2))
    assert (
        (distributed.ok, distributed.not_dicom, distributed.failed)
        == (local.ok, local.not_dicom, 0)
        == (6, 1, 0)
    )
    assert tree_bytes(tmp_path / "ray") == tree_bytes(tmp_path / "local")
    resumed = scrub(_cfg([inp], tmp_path / "ray", key, workers=2, executor="ray", resume=True))
    assert resumed.resumed == 6
    # The audit log's digests come back from the actors too (the parent then reads no file).
    got: list[FileResult] = []
    scrub(
        _cfg([inp], tmp_path / "ray-digests", key, workers=2, executor="ray", digests=True),
        on_result=got.append,
    )
    ok = [r for r in got if r.status == "ok"]
    assert len(ok) == 6
    for r in ok:
        assert r.digests is not None and r.output is not None
        assert (
            r.digests.output_sha256
            == hashlib.sha256((tmp_path / "ray-digests" / r.output).read_bytes()).hexdigest()
        )
