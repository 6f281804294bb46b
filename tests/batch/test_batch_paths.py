"""Hostile paths: where the report, previews and vault may go; links in inputs and outputs; duplicates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import snapshot, tree_bytes
from study_gen import write_study

from privguard.batch import ScrubConfig, scrub
from privguard.batch.fsio import SymlinkInOutput, open_root, place
from privguard.deidentifier import PixelOptions
from privguard.errors import ConfigError, OutputError
from privguard.pseudonym.keys import ProjectKey


def _cfg(inputs: list[Path], out: Path, key: ProjectKey | Path, **kw: object) -> ScrubConfig:
    return ScrubConfig(inputs=inputs, out=out, key=key, workers=kw.pop("workers", 1), **kw)  # type: ignore[arg-type]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    write_study(tmp_path / "in", series=1, per_series=2)
    return tmp_path / "in"


def test_report_may_not_name_an_input_or_the_key(study: Path, tmp_path: Path, key_file: Path) -> None:
    victim = sorted(study.iterdir())[0]
    before, key_before = snapshot(study), key_file.read_bytes()
    with pytest.raises(OutputError, match="inside the input"):
        scrub(_cfg([study], tmp_path / "out", key_file, report=victim))
    with pytest.raises(OutputError, match="same file as the key file"):
        scrub(_cfg([study], tmp_path / "out", key_file, report=key_file))
    assert snapshot(study) == before and key_file.read_bytes() == key_before
    assert not (tmp_path / "out").exists()


def test_report_never_overwrites_a_file_privguard_did_not_write(
    study: Path, tmp_path: Path, key: ProjectKey
) -> None:
    foreign = tmp_path / "notes.txt"
    foreign.write_text("someone's notes\n")
    with pytest.raises(ConfigError, match="not a privguard report"):
        scrub(_cfg([study], tmp_path / "out", key, report=foreign))
    assert foreign.read_text() == "someone's notes\n"
    link = tmp_path / "link.jsonl"
    link.symlink_to(foreign)
    with pytest.raises(ConfigError, match="symbolic link"):
        scrub(_cfg([study], tmp_path / "out", key, report=link))
    # An earlier privguard report is replaced.
    report = tmp_path / "r.jsonl"
    report.write_text(json.dumps({"input": "x", "status": "ok"}) + "\n")
    summary = scrub(_cfg([study], tmp_path / "out", key, report=report))
    assert summary.ok == 2 and len(report.read_text().splitlines()) == 2
    assert oct(report.stat().st_mode & 0o777) == "0o600"


def test_report_inside_out_needs_the_explicit_flag(study: Path, tmp_path: Path, key: ProjectKey) -> None:
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="--report-inside-out"):
        scrub(_cfg([study], out, key, report=out / "report.jsonl"))
    assert not out.exists()
    summary = scrub(_cfg([study], out, key, report=out / "report.jsonl", report_inside_out=True))
    assert summary.ok == 2 and (out / "report.jsonl").is_file()


def test_previews_and_vault_stay_out_of_inputs_and_output(
    study: Path, tmp_path: Path, key: ProjectKey
) -> None:
    with pytest.raises(OutputError, match=r"previews folder .* inside the input"):
        scrub(_cfg([study], tmp_path / "out", key, pixels=PixelOptions(ocr="off", previews=study / "pv")))
    with pytest.raises(OutputError, match=r"vault .* inside the output"):
        scrub(_cfg([study], tmp_path / "out", key, vault=tmp_path / "out" / "vault.db"))
    assert not (study / "pv").exists() and not (tmp_path / "out").exists()


def test_a_link_inside_the_output_is_never_followed(study: Path, tmp_path: Path, key: ProjectKey) -> None:
    fresh = tmp_path / "fresh"
    scrub(_cfg([study], fresh, key))
    patient = next(p.name for p in fresh.iterdir() if p.name != ".privguard")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / patient).symlink_to(elsewhere)
    with pytest.raises(OutputError, match="symbolic link"):
        scrub(_cfg([study], out, key, resume=True))
    assert list(elsewhere.iterdir()) == []
    # A link planted while a run is going: the placement refuses it, file by file.
    staging = tmp_path / "staging"
    rel = next(str(p.relative_to(fresh)) for p in fresh.rglob("*.dcm"))
    (staging / rel).parent.mkdir(parents=True)
    (staging / rel).write_bytes(b"x")
    fd = open_root(out)
    try:
        with pytest.raises(SymlinkInOutput):
            place(staging, fd, rel)
    finally:
        os.close(fd)
    assert list(elsewhere.iterdir()) == []


def test_symlinks_in_inputs_are_counted_and_reported_unless_followed(
    study: Path, tmp_path: Path, key: ProjectKey
) -> None:
    other = tmp_path / "other"
    write_study(other, patient=("Other^Ann", "MRN7654321", "19500101"), series=1, per_series=1)
    (study / "linked-file.dcm").symlink_to(next(other.iterdir()))
    (study / "linked-dir").symlink_to(other)
    report = tmp_path / "r.jsonl"
    summary = scrub(_cfg([study], tmp_path / "out", key, report=report))
    assert summary.symlinks == 2 and summary.ok == 2 and summary.skipped == 2
    lines = {Path(x["input"]).name: x for x in map(json.loads, report.read_text().splitlines())}
    for name in ("linked-file.dcm", "linked-dir"):
        assert lines[name]["status"] == "skipped" and "symbolic link" in lines[name]["reason"]
    # Followed on request; the file reached twice (link and folder) is processed once.
    followed = scrub(_cfg([study], tmp_path / "out2", key, follow_symlinks=True))
    assert followed.symlinks == 0 and followed.ok == 3 and followed.duplicates == 1


def test_inputs_named_twice_are_processed_once(study: Path, tmp_path: Path, key: ProjectKey) -> None:
    first = sorted(study.iterdir())[0]
    report = tmp_path / "r.jsonl"
    summary = scrub(_cfg([study, study, first], tmp_path / "out", key, report=report))
    assert summary.total == 2 and summary.ok == 2 and summary.duplicates == 3
    assert len(report.read_text().splitlines()) == 2


def test_an_unwritable_output_is_a_configuration_error(study: Path, tmp_path: Path, key: ProjectKey) -> None:
    with pytest.raises(OutputError, match="cannot be created") as exc:
        scrub(_cfg([study], Path("/proc/privguard-test/out"), key))
    assert exc.value.exit_code == 2
    out = tmp_path / "out"
    out.mkdir()
    (out / ".privguard").write_text("a file")
    with pytest.raises(OutputError, match="not a folder"):
        scrub(_cfg([study], out, key, resume=True))


def test_outputs_equal_a_plain_run_with_the_new_placement(
    study: Path, tmp_path: Path, key: ProjectKey
) -> None:
    """Processes and inline give the same bytes (both place through the link-proof path)."""
    a = scrub(_cfg([study], tmp_path / "a", key, workers=2))
    b = scrub(_cfg([study], tmp_path / "b", key, executor="inline"))
    assert a.ok == b.ok == 2
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
