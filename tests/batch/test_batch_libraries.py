"""The memory ceiling counts a file's memory, not the heavy libraries a worker loads on first use.

Regression: workers used to run under an address-space limit (``RLIMIT_AS``)
of their start-up size plus ``--max-file-memory``; importing presidio (3.3 GB
of address space) or EasyOCR and torch (4 GB) in a worker then failed every
file that needed the text classifier or OCR with ``unexpected error
(ImportError)``. These tests run the real CLI in a subprocess, as a user does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType

import pydicom
import pytest

from privguard.batch.limits import LIBRARY_ALLOWANCE, MemoryCeiling

HAVE_OCR = find_spec("easyocr") is not None and find_spec("easyocr_en_models") is not None
ROOT = Path(__file__).resolve().parents[2]
PATIENT = ("Quackenbush^Wilhelmina", "MRN7730912", "19610423")


def _samples() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "examples" / "make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scrub(args: list[str]) -> subprocess.CompletedProcess[str]:
    code = "import sys; from privguard_cli.main import main; main(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.skipif(os.name != "posix", reason="worker processes and /proc")
@pytest.mark.skipif(not HAVE_OCR, reason="EasyOCR and its offline weights are not installed")
def test_workers_load_the_classifier_and_ocr_under_a_small_ceiling(tmp_path: Path, key_file: Path) -> None:
    samples = _samples()
    inp = tmp_path / "in"
    inp.mkdir()
    samples.sr_document(inp / "report.dcm", PATIENT)
    sr = pydicom.dcmread(inp / "report.dcm")
    sr.StudyDescription = "CT chest for Wilhelmina Quackenbush, call 555-201-3344"  # clean_descriptors
    sr.save_as(inp / "report.dcm")
    samples.us_screen_capture(inp / "us.dcm", PATIENT)  # burned-in name: OCR
    out = tmp_path / "out"
    report = tmp_path / "report.jsonl"
    # 512M is less than presidio and EasyOCR take once loaded (about 0.95 GB resident together):
    # the ceiling must not charge them to the first file that needs them.
    result = _scrub(
        [
            "scrub", str(inp), "--out", str(out), "--key-file", str(key_file), "--profile", "research",
            "--ocr", "on", "--device", "cpu", "--workers", "2", "--max-file-memory", "512M",
            "--report", str(report), "--json",
        ]
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert {Path(x["input"]).name: x["status"] for x in lines} == {"report.dcm": "ok", "us.dcm": "ok"}
    summary = json.loads(result.stdout)
    assert summary["ok"] == 2 and summary["failed"] == 0 and summary["worker_deaths"] == 0
    by_name = {Path(x["input"]).name: out / x["output"] for x in lines}
    sr = pydicom.dcmread(by_name["report.dcm"])
    text = str(sr.StudyDescription)
    assert "Wilhelmina" not in text and "555-201-3344" not in text
    assert "CT chest" in text  # cleaned by the classifier, not removed
    us = pydicom.dcmread(by_name["us.dcm"])
    assert us.BurnedInAnnotation == "NO"  # OCR ran and the pixels were cleaned and verified
    assert us.pixel_array[4:36, :160].max() < 255  # the white burned-in lines are gone


def test_the_ceiling_holds_room_for_libraries_until_they_are_loaded() -> None:
    gib = 1 << 30
    ceiling = MemoryCeiling(512 << 20, frozenset({"presidio_analyzer", "easyocr"}))
    assert ceiling.limit() is None and not ceiling.exceeded(100 * gib)  # not ready: nothing known
    ceiling.ready(200 << 20, frozenset())
    assert ceiling.limit() == (200 << 20) + (512 << 20) + 2 * LIBRARY_ALLOWANCE
    assert not ceiling.exceeded((200 << 20) + gib)  # presidio loading in the first chunk
    ceiling.chunk_done(900 << 20, frozenset({"presidio_analyzer"}))  # re-measured with presidio in
    assert ceiling.limit() == (900 << 20) + (512 << 20) + LIBRARY_ALLOWANCE
    ceiling.chunk_done(1000 << 20, frozenset({"presidio_analyzer"}))  # nothing new: no creep
    assert ceiling.limit() == (900 << 20) + (512 << 20) + LIBRARY_ALLOWANCE
    ceiling.chunk_done(1500 << 20, frozenset({"presidio_analyzer", "easyocr"}))
    assert ceiling.limit() == (1500 << 20) + (512 << 20)
    assert ceiling.exceeded((1500 << 20) + (513 << 20)) and not ceiling.exceeded((1500 << 20) + (511 << 20))


def test_a_worker_that_may_load_nothing_gets_no_allowance() -> None:
    ceiling = MemoryCeiling(256 << 20, frozenset())
    ceiling.ready(100 << 20, frozenset())
    assert ceiling.limit() == (100 << 20) + (256 << 20)
