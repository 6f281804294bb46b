"""Shared fixtures: keys, paths to real test files, the DICOM validator."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

sys.path.insert(0, str(Path(__file__).parent))

from privguard.pseudonym.keys import ProjectKey

TESTS = Path(__file__).parent
DATA = TESTS / "data"
HAVE_DCIODVFY = shutil.which("dciodvfy") is not None
needs_dciodvfy = pytest.mark.skipif(
    not HAVE_DCIODVFY, reason="dciodvfy (Debian dicom3tools) is not installed"
)


@pytest.fixture(autouse=True)
def _private_audit_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Audited commands write their audit log under a temporary XDG_STATE_HOME, never the real home."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
    monkeypatch.delenv("PRIVGUARD_AUDIT_LOG", raising=False)


@pytest.fixture(scope="session")
def key() -> ProjectKey:
    return ProjectKey.generate()


@pytest.fixture
def key_file(tmp_path: Path, key: ProjectKey) -> Path:
    path = tmp_path / "keys" / "project.key"
    path.parent.mkdir()
    key.save(path)
    return path


def pydicom_test_files() -> list[Path]:
    from pydicom.data import get_testdata_file

    root = Path(get_testdata_file("CT_small.dcm")).parent  # type: ignore[arg-type]
    return sorted(p for p in root.iterdir() if p.is_file())


def charset_files() -> list[Path]:
    from pydicom.data import get_charset_files

    return sorted(Path(p) for p in get_charset_files("*.dcm"))


def dciodvfy_errors(path: Path) -> set[str]:
    """dciodvfy's error lines, with numbers and UIDs normalised so that inputs and outputs compare.

    A UID holding bytes that are not text (a fuzzed input's) is decoded with replacement
    characters; they belong to the UID and are normalised with it.
    """
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, errors="replace", timeout=120)
    lines = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error")]
    return {re.sub(r"[\d.\ufffd]+", "#", line) for line in lines}


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes), the resume journal excluded."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and ".privguard" not in p.parts:
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Mode and bytes of every file under ``root`` (to prove inputs are untouched)."""
    return {
        str(p.relative_to(root)): (os.stat(p).st_mode, p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def part10(ds: Dataset, ts: str = ExplicitVRLittleEndian) -> bytes:
    """``ds`` as a Part 10 file of transfer syntax ``ts`` (a secondary capture with fixed UIDs)."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
