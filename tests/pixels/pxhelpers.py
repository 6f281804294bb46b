"""Helpers and fixtures shared by the burned-in text tests.

There is deliberately no ``tests/pixels/conftest.py``: the suite's other modules do
``from conftest import ...``, and a second conftest module would shadow theirs. Test
modules import the fixtures they use from here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib.util import find_spec
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PSEUDO_PHI = HERE.parent / "data" / "pseudo-phi"
HAVE_OCR = find_spec("easyocr") is not None and find_spec("easyocr_en_models") is not None
HAVE_DCIODVFY = shutil.which("dciodvfy") is not None

needs_ocr = pytest.mark.skipif(not HAVE_OCR, reason="EasyOCR and its offline weights are not installed")
needs_dciodvfy = pytest.mark.skipif(
    not HAVE_DCIODVFY, reason="dciodvfy (Debian dicom3tools) is not installed"
)


def dciodvfy_errors(path: Path) -> set[str]:
    """dciodvfy's error lines, numbers and UIDs normalised so that input and output compare."""
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, errors="replace", timeout=120)
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error")]
    return {re.sub(r"[\d.]+", "#", line) for line in lines}


# Two xdist workers on two cores: one torch thread each (read when the engine is created).
if os.environ.get("PYTEST_XDIST_WORKER") and "PRIVGUARD_OCR_THREADS" not in os.environ:
    os.environ["PRIVGUARD_OCR_THREADS"] = "1"
