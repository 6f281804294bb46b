"""The up-front warning of `privguard scrub` when OCR would run on CPU for many files."""

from __future__ import annotations

from pathlib import Path

from privguard.pixels.advice import MANY_FILES, count_files, cpu_ocr_warning


def test_warns_for_many_files_on_cpu(tmp_path: Path) -> None:
    for k in range(MANY_FILES):
        (tmp_path / f"{k}.dcm").write_bytes(b"")
    assert count_files([tmp_path]) == MANY_FILES
    msg = cpu_ocr_warning([tmp_path], "cpu", workers=2)
    assert msg is not None and f"{MANY_FILES:,} input files" in msg and "min" in msg
    assert cpu_ocr_warning([tmp_path], "cuda") is None


def test_quiet_for_few_files(tmp_path: Path) -> None:
    (tmp_path / "a.dcm").write_bytes(b"")
    assert cpu_ocr_warning([tmp_path], "cpu") is None
