"""The digests in the audit log come from the workers, and are those of the bytes on disk.

Workers hash each input as read and each output as written (``FileResult.digests``);
the log's writer thread and the manifest use those digests and never read the files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from study_gen import write_study

from privguard.audit import MANIFEST, AuditLog, audited_scrub
from privguard.audit.log import keyed, path_token
from privguard.audit.verify import iter_records
from privguard.batch import ScrubConfig
from privguard.deidentifier import Deidentifier
from privguard.pseudonym.keys import ProjectKey


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_scrub_log_and_manifest_carry_the_workers_digests_without_reading_the_files(
    tmp_path: Path, key: ProjectKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = write_study(tmp_path / "in", series=2, per_series=3)
    out = tmp_path / "out"

    def no_reading(path: Path) -> str:
        raise AssertionError("the audit writer read a file the workers had hashed")

    # the parent's fallback (files without digests) is off: a read there fails the run
    monkeypatch.setattr("privguard.audit.log.file_sha256", no_reading)
    cfg = ScrubConfig(inputs=[tmp_path / "in"], out=out, key=key, profile="basic", workers=2)
    log_path = tmp_path / "state" / "audit.jsonl"
    summary, head = audited_scrub(cfg, log=log_path)
    assert summary.ok == len(inputs) and summary.failed == 0

    lookup = key.derive("audit", "lookup")
    files = [r for r in iter_records(log_path) if r["type"] == "file" and r["run"] == head.run]
    by_input = {r["input"]: r for r in files}
    assert len(by_input) == len(inputs)
    manifest = {}
    for line in (out / MANIFEST).read_text().splitlines():
        digest, _, rel = line.partition("  ")
        manifest[rel] = digest
    for src in inputs:
        rec = by_input[path_token(lookup, src)]
        # a fresh SHA-256 of the files on disk: the input keyed as the record format says
        assert rec["input_sha256"] == keyed(lookup, "sha256", sha(src))
        assert rec["output_sha256"] == sha(out / rec["output"])
        assert manifest[rec["output"]] == rec["output_sha256"]
    assert len(manifest) == len(inputs)


def test_without_audit_no_digests_are_computed(tmp_path: Path, key: ProjectKey) -> None:
    write_study(tmp_path / "in", series=1, per_series=2)
    deid = Deidentifier("basic", key)
    try:
        results = deid.files(sorted((tmp_path / "in").rglob("*.dcm")), tmp_path / "out")
    finally:
        deid.close()
    assert [r.status for r in results] == ["ok", "ok"]
    assert all(r.digests is None for r in results)
    assert "digests" not in results[0].model_dump()  # never in the report or --json


def test_a_file_without_worker_digests_is_read_by_the_log(tmp_path: Path, key: ProjectKey) -> None:
    """Results from elsewhere (a library caller, a Ray actor) still get digests in the log."""
    (tmp_path / "in.dcm").write_bytes(b"input bytes")
    (tmp_path / "out" / "P").mkdir(parents=True)
    (tmp_path / "out" / "P" / "o.dcm").write_bytes(b"output bytes")
    log_path = tmp_path / "audit.jsonl"
    with AuditLog.open(log_path) as log:
        run = log.begin_run(command="scrub", key=key)
        log.file_record(input=tmp_path / "in.dcm", status="ok", output="P/o.dcm", out_dir=tmp_path / "out")
        outputs = log.flush()
        log.end_run(outcome="success")
    rec = next(r for r in iter_records(log_path) if r["type"] == "file" and r["run"] == run)
    lookup = key.derive("audit", "lookup")
    assert rec["input_sha256"] == keyed(lookup, "sha256", sha(tmp_path / "in.dcm"))
    assert rec["output_sha256"] == sha(tmp_path / "out" / "P" / "o.dcm") == outputs["P/o.dcm"]


def test_digests_are_of_the_pixel_redacted_output(tmp_path: Path, key: ProjectKey) -> None:
    """The output digest is of the bytes written after burned-in text was masked, not before."""
    from pixels import synth
    from pixels.fakes import FakeEngine

    from privguard.pixels.allowlist import load_allowlist
    from privguard.pixels.boxes import Box
    from privguard.pixels.stage import OCRPixelStage

    case = synth.build(
        "ct", tmp_path / "in", modality="CT", rows=256, cols=320, seed=17, encoding="native", phi_items=3
    )
    texts = {
        Box.from_xywh(r.left, r.top, r.width, r.height): r.text for r in case.regions if r.kind != "label"
    }
    results: dict[bool, str | None] = {}
    for masked in (False, True):
        deid = Deidentifier("basic", key, digests=True)
        if masked:
            deid.pixel_stage = OCRPixelStage(ocr="on", allowlist=load_allowlist(), engine=FakeEngine(texts))
        try:
            (res,) = deid.files([case.path], tmp_path / f"out-{masked}")
        finally:
            deid.close()
        assert res.status == "ok" and res.output and res.digests is not None, res.reason
        written = tmp_path / f"out-{masked}" / res.output
        assert res.digests.output_sha256 == sha(written)
        assert res.digests.input_sha256 == sha(case.path)
        results[masked] = res.digests.output_sha256
        if masked:
            assert res.pixels is not None and int(str(res.pixels["boxes_redacted"])) > 0
    # the header-only output holds the same header changes and the unmasked pixels: different bytes
    assert results[True] != results[False]


def test_held_digests_equal_immediate_ones_and_stay_within_the_budget(tmp_path: Path) -> None:
    from privguard.digests import Digester

    big = tmp_path / "big.dcm"
    big.write_bytes(b"b" * 5000)
    files = {f"in{i}": (bytes([i]) * (1000 + i), bytes([255 - i]) * 900) for i in range(8)}
    now, held = Digester(), Digester(hold_bytes=4096)
    for dig in (now, held):
        for key, (data, out) in files.items():
            dig.input(key, data, tmp_path / "unused")
            dig.output(key, out)
        dig.input("big", None, big)  # too large to hold in memory: read from disk
        dig.output("big", big)
    assert held._held <= 4096 and held._held > 0  # some bytes held, the rest hashed at once
    got_now, got_held = now.finish(), held.finish()
    assert got_now == got_held
    assert got_held["in3"].input_sha256 == hashlib.sha256(files["in3"][0]).hexdigest()
    assert got_held["in3"].output_sha256 == hashlib.sha256(files["in3"][1]).hexdigest()
    assert got_held["big"].input_sha256 == got_held["big"].output_sha256 == sha(big)
    assert held.finish() == {}  # finish hands everything over once
