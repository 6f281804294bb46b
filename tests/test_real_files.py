"""pydicom's ~90 real test files and its character-set files: each is scrubbed or refused cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from conftest import HAVE_DCIODVFY, charset_files, dciodvfy_errors, pydicom_test_files, snapshot
from privguard_cli.main import cli

from privguard.deidentifier import Deidentifier
from privguard.dicomio import sniff
from privguard.models import FileResult
from privguard.pseudonym.keys import ProjectKey

#: Files pydicom ships that are deliberately broken or are not Part 10 instances, and why
#: privguard refuses them. Every other DICOM file must be scrubbed.
EXPECTED_REFUSALS = {
    "MR_truncated.dcm": "truncated",
    "rtplan_truncated.dcm": "truncated",
    "UN_sequence.dcm": "SOP Class UID",
    "empty_charset_LEI.dcm": "SOP Class UID",
    "meta_missing_tsyntax.dcm": "no transfer syntax UID",
    "nested_priv_SQ.dcm": "odd length",
    "badVR.dcm": "NumberOfFrames holds characters its VR IS does not allow",
    "no_meta_group_length.dcm": "SOP Class UID",
    "priv_SQ.dcm": "SOP Class UID",
    "chrSQEncoding.dcm": "SOP Class UID",
    "chrSQEncoding1.dcm": "SOP Class UID",
}


def _files() -> list[Path]:
    return [p for p in pydicom_test_files() + charset_files() if sniff(p)]


@pytest.fixture(scope="module")
def scrubbed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, FileResult, Path | None]]:
    """Each file scrubbed alone (pydicom reuses SOP Instance UIDs across its variants)."""
    key = ProjectKey.generate()
    deid = Deidentifier("basic", key)
    root = tmp_path_factory.mktemp("real")
    out: dict[str, tuple[Path, FileResult, Path | None]] = {}
    for i, path in enumerate(_files()):
        res = deid.file(path, root / str(i))
        out[path.name] = (path, res, root / str(i) / res.output if res.output else None)
    return out


def test_the_corpus_is_what_we_think() -> None:
    names = {p.name for p in _files()}
    assert len(names) > 80
    assert set(EXPECTED_REFUSALS) <= names


def test_every_file_is_scrubbed_or_refused_cleanly(
    scrubbed: dict[str, tuple[Path, FileResult, Path | None]],
) -> None:
    for name, (_, res, _out) in scrubbed.items():
        if name in EXPECTED_REFUSALS:
            assert res.status == "failed", name
            assert EXPECTED_REFUSALS[name] in (res.reason or ""), (name, res.reason)
            assert "unexpected" not in (res.reason or "")
        else:
            assert res.status == "ok", (name, res.reason)


def test_outputs_read_back_with_pixels_intact(
    scrubbed: dict[str, tuple[Path, FileResult, Path | None]],
) -> None:
    """The pixel data element is carried over byte for byte: decoded pixels are identical."""
    import numpy as np

    checked = 0
    for name, (path, res, out_file) in scrubbed.items():
        if res.status != "ok" or out_file is None:
            continue
        src = pydicom.dcmread(path, force=True)
        if "PixelData" not in src:
            continue
        try:
            expected = src.pixel_array
        except Exception:
            continue  # an encoding pydicom itself cannot decode here
        got = pydicom.dcmread(out_file).pixel_array
        assert np.array_equal(expected, got), name
        checked += 1
    assert checked > 30


@pytest.mark.skipif(not HAVE_DCIODVFY, reason="dciodvfy (Debian dicom3tools) is not installed")
def test_no_new_validator_errors_on_real_files(tmp_path: Path, key: ProjectKey) -> None:
    deid = Deidentifier("basic", key)
    compared = 0
    for i, path in enumerate(_files()):
        if path.name in EXPECTED_REFUSALS:
            continue
        res = deid.file(path, tmp_path / str(i))
        assert res.output is not None, path.name
        new = dciodvfy_errors(tmp_path / str(i) / res.output) - dciodvfy_errors(path)
        assert new == set(), (path.name, new)
        compared += 1
    assert compared > 70


@pytest.mark.parametrize(
    "path", [p for p in charset_files() if p.name not in EXPECTED_REFUSALS], ids=lambda p: p.name
)
def test_character_sets(path: Path, tmp_path: Path, key: ProjectKey) -> None:
    """Names in every character set and component group are replaced; the charset stays consistent."""
    src = pydicom.dcmread(path)
    name = src.PatientName
    # Put the patient's name (every component group) into a description too.
    src.StudyDescription = f"study of {name.family_name} {name.given_name}".strip()
    groups = [g for g in (name.alphabetic, name.ideographic, name.phonetic) if g]
    for g in groups[1:]:
        src.StudyDescription = src.StudyDescription + " " + g.replace("^", "")
    src.StudyDescription = src.StudyDescription[:64]
    inp = tmp_path / "in.dcm"
    src.save_as(inp)
    raw_in = inp.read_bytes()
    for profile in ("basic", "research"):
        res = Deidentifier(profile, key).file(inp, tmp_path / profile)
        assert res.status == "ok", res.reason
        out_path = tmp_path / profile / res.output  # type: ignore[operator]
        raw = out_path.read_bytes()
        out = pydicom.dcmread(out_path)
        assert out.get("SpecificCharacterSet") == src.get("SpecificCharacterSet")
        assert str(out.PatientName).startswith("P")
        # No component group of the name survives, in the file's own encoding.
        for g in groups:
            for part in g.replace("=", "^").split("^"):
                if len(part) < 2:
                    continue
                encoded = part.encode(_python_codec(src), errors="ignore")
                if encoded and encoded in raw_in:
                    assert encoded not in raw, (profile, path.name)
        # ...nor in any decoded text value.
        texts = [str(e.value) for e in out.iterall() if e.VR in ("PN", "LO", "SH", "LT", "ST", "UT")]
        for g in groups:
            for part in g.replace("=", "^").split("^"):
                if len(part) >= 2:
                    assert not any(part in t for t in texts), (profile, path.name)
        if profile == "research":
            assert out.StudyDescription == "study of [NAME]"


def _python_codec(ds: pydicom.Dataset) -> str:
    from pydicom.charset import python_encoding

    cs = ds.get("SpecificCharacterSet", "ISO_IR 6")
    cs = cs if isinstance(cs, str) else [c for c in cs if c][-1] if any(cs) else "ISO_IR 6"
    return python_encoding.get(cs, "latin-1")


def test_cli_scrub_of_the_corpus_keeps_going_past_bad_files(tmp_path: Path, key_file: Path) -> None:
    src = pydicom_test_files()[0].parent
    before = snapshot(src)
    report = tmp_path / "report.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "scrub",
            str(src),
            "--out",
            str(tmp_path / "out"),
            "--key-file",
            str(key_file),
            "--ocr",
            "off",
            "--report",
            str(report),
            "--workers",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 1, result.output  # some files are refused
    summary = json.loads(result.stdout)
    from privguard.batch import iter_files

    assert summary["total"] == len(list(iter_files([src])))
    assert summary["ok"] > 40 and summary["failed"] > 0 and summary["not_dicom"] > 0
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert len(lines) == summary["total"]
    assert {ln["status"] for ln in lines} == {"ok", "skipped", "failed"}
    assert all("reason" in ln for ln in lines if ln["status"] != "ok")
    assert snapshot(src) == before  # inputs untouched
    # No temporary or partial file is left behind.
    assert not [p for p in (tmp_path / "out").rglob("*.tmp")]
