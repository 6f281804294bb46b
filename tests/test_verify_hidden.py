"""Identifying elements hidden inside other values are still searched for in the output."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import part10, pydicom_test_files
from pydicom.dataset import Dataset

from privguard.deidentifier import Deidentifier
from privguard.dicom.scan import scan
from privguard.dicom.verify import hidden_identifiers
from privguard.pseudonym.keys import ProjectKey

KEY = ProjectKey.from_bytes(b"k" * 32, datetime(2020, 1, 1, tzinfo=UTC))
MARKER = b"QZXWHIDDEN^MARKER"


def _hidden_name(explicit: bool) -> bytes:
    value = MARKER + b" " * (len(MARKER) & 1)
    if explicit:
        return b"\x10\x00\x10\x00PN" + struct.pack("<H", len(value)) + value
    return b"\x10\x00\x10\x00" + struct.pack("<I", len(value)) + value


@pytest.mark.parametrize("explicit", [True, False])
def test_a_hidden_element_header_is_found(explicit: bool) -> None:
    data = b"\x01\x02" * 10 + _hidden_name(explicit) + b"\x00" * 6
    assert hidden_identifiers(data, 0, len(data), True) == [(0x00100010, MARKER)]


def test_nothing_is_found_in_well_formed_files_beyond_their_own_elements() -> None:
    for path in pydicom_test_files():
        data = path.read_bytes()
        try:
            sc = scan(data, with_index=True)
        except Exception:
            continue
        if sc.deflated:
            continue
        base = sc.meta_end
        real = {
            bytes(data[base + e.value_start : base + e.end]).rstrip(b"\x00 ")
            for e in sc.index or []
            if e.tag
            in (
                0x00100010,
                0x00100020,
                0x00080050,
                0x00101000,
                0x00101001,
                0x00101005,
                0x00101060,
                0x00120063,
            )
        }
        px = sc.pixel
        end = base + px.start if px is not None else len(data)
        extra = [v for _, v in hidden_identifiers(data, base, end, sc.little) if v not in real]
        assert extra == [], (path.name, extra)


def test_a_name_hidden_in_a_kept_binary_value_is_refused(tmp_path: Path) -> None:
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "ID123456"
    # A palette LUT (kept by every profile: not in Table E.1-1) carrying a copy of a PatientName element.
    lut = _hidden_name(explicit=False) + b"\x00" * 8
    ds.add_new(0x00281201, "OW", lut + b"\x00" * (len(lut) & 1))
    src = tmp_path / "in.dcm"
    src.write_bytes(part10(ds))
    res = Deidentifier("basic", KEY).file(src, tmp_path / "out")
    assert res.status == "failed" and "still holds the input's PatientName" in (res.reason or "")
    assert not list((tmp_path / "out").rglob("*.dcm"))
