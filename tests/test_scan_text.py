"""A text value may not hold control bytes: how a wrong length that swallows elements is caught."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import part10
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from privguard.deidentifier import Deidentifier
from privguard.dicom.scan import ScanError, scan
from privguard.pseudonym.keys import ProjectKey

KEY = ProjectKey.from_bytes(b"k" * 32, datetime(2020, 1, 1, tzinfo=UTC))
NAME = b"QZXWMBAPN^QZXWMBAPNG"


def _file(ts: str, model: str = "Planning System  ", **extra: str) -> bytes:
    ds = Dataset()
    ds.ManufacturerModelName = model
    ds.PatientName = NAME.decode()
    ds.PatientID = "QZXWMBAPI1"
    for k, v in extra.items():
        setattr(ds, k, v)
    return part10(ds, ts)


def _swallow(data: bytes, implicit: bool) -> bytes:
    """Lengthen ManufacturerModelName (0008,1090) so that its value swallows PatientName and PatientID."""
    tag = b"\x08\x00\x90\x10"
    at = data.index(tag)
    name_at = data.index(b"\x10\x00\x10\x00", at)
    id_end = data.index(b"QZXWMBAPI1", name_at) + len(b"QZXWMBAPI1")
    if implicit:
        start = at + 8
        return data[: at + 4] + struct.pack("<I", id_end - start) + data[at + 8 :]
    start = at + 8
    return data[: at + 6] + struct.pack("<H", id_end - start) + data[at + 8 :]


@pytest.mark.parametrize("ts", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_a_text_value_that_swallowed_the_patient_elements_is_refused(ts: str, tmp_path: Path) -> None:
    data = _swallow(_file(ts), implicit=ts == ImplicitVRLittleEndian)
    with pytest.raises(ScanError, match=r"\(0008,1090\) \(LO\) holds control bytes"):
        scan(data)
    src = tmp_path / "in.dcm"
    src.write_bytes(data)
    for profile in ("basic", "research"):
        res = Deidentifier(profile, KEY).file(src, tmp_path / profile)
        assert res.status == "failed" and "control bytes" in (res.reason or "")
        assert not list((tmp_path / profile).rglob("*.dcm"))


def test_trailing_nul_padding_and_whitespace_controls_are_accepted() -> None:
    scan(_file(ExplicitVRLittleEndian, model="Planning System\x00"))
    scan(_file(ExplicitVRLittleEndian, StudyComments="line one\r\nline\ttwo\x0c"))
    scan(_file(ExplicitVRLittleEndian, PatientComments="\x1b$B8+\x1b(B"))  # ISO 2022 escapes


@pytest.mark.parametrize("bad", ["Plan\x00ning ", "Plan\x01ning ", "Planning\x00 x"])
def test_control_bytes_inside_a_text_value_are_refused(bad: str) -> None:
    with pytest.raises(ScanError, match="holds control bytes"):
        scan(_file(ExplicitVRLittleEndian, model=bad))
