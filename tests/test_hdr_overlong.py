"""A kept value longer than its VR allows (PS3.5 Table 6.2-1).

When the excess is padding the standard calls insignificant (leading and trailing spaces of
SH/LO/AE/CS/DS/IS, trailing spaces of ST/LT, a UI's trailing NUL), the padding is removed and the
value written again: deterministic and silent. When the value itself is too long, it is kept as
it is and the file's result carries a warning naming the attribute. Either way pydicom, reading or
writing the output, has nothing to warn about that privguard did not report.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pydicom.config
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

from privguard.deidentifier import Deidentifier
from privguard.pseudonym.keys import ProjectKey


def _input(tmp_path: Path, ts: str, **values: str) -> Path:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = ts
    src = tmp_path / "in.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the input is over-long on purpose
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.save_as(src, enforce_file_format=True)
    return src


def _read_strictly(path: Path) -> pydicom.Dataset:
    """Read ``path`` with pydicom's value validation on; any warning fails the test."""
    mode = pydicom.config.settings.reading_validation_mode
    pydicom.config.settings.reading_validation_mode = pydicom.config.WARN
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = pydicom.dcmread(path)
            for elem in ds.iterall():
                _ = elem.value
            return ds
    finally:
        pydicom.config.settings.reading_validation_mode = mode


@pytest.mark.parametrize("ts", [ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian])
def test_padding_past_the_maximum_is_removed(tmp_path: Path, ts: str) -> None:
    # research keeps DeviceSerialNumber (Retain Device Identity); Manufacturer is outside the table.
    src = _input(tmp_path, ts, DeviceSerialNumber="SN-123" + " " * 64, Manufacturer="  ACME" + " " * 70)
    deid = Deidentifier("research", ProjectKey.generate())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the output path itself (write_whole for deflated) is silent
            out_ds, record = deid.dataset(pydicom.dcmread(src))
            res = deid.file(src, tmp_path / "out")
    finally:
        deid.close()
    assert res.status == "ok", res.reason
    assert res.warnings == ()
    file_ds = _read_strictly(tmp_path / "out" / str(res.output))
    for out in (out_ds, file_ds):
        assert out.DeviceSerialNumber == "SN-123"
        assert out.Manufacturer == "ACME"
    assert {c.keyword for c in record.changes if c.reason == "padding-removed"} == {
        "DeviceSerialNumber",
        "Manufacturer",
    }


def test_a_value_too_long_by_itself_is_kept_and_reported(tmp_path: Path) -> None:
    long_value = "X" * 70
    src = _input(tmp_path, ExplicitVRLittleEndian, DeviceSerialNumber=long_value)
    deid = Deidentifier("research", ProjectKey.generate())
    try:
        out_ds, record = deid.dataset(pydicom.dcmread(src))
        res = deid.file(src, tmp_path / "out")
    finally:
        deid.close()
    want = "DeviceSerialNumber is longer than its VR LO allows; kept as it is"
    assert res.status == "ok", res.reason
    assert want in res.warnings
    assert want in record.warnings
    assert pydicom.dcmread(tmp_path / "out" / str(res.output)).DeviceSerialNumber == long_value
    assert out_ds.DeviceSerialNumber == long_value


def test_values_within_their_maximum_are_copied_byte_for_byte(tmp_path: Path) -> None:
    # A multi-valued CS longer than 16 in all (ImageType) is checked per value: untouched.
    src = _input(tmp_path, ExplicitVRLittleEndian, DeviceSerialNumber="SN-123")
    deid = Deidentifier("research", ProjectKey.generate())
    try:
        res = deid.file(src, tmp_path / "out")
    finally:
        deid.close()
    data = (tmp_path / "out" / str(res.output)).read_bytes()
    original = src.read_bytes()
    for keyword in ("ImageType", "DeviceSerialNumber"):
        elem = pydicom.dcmread(src)[keyword]
        raw = pydicom.dcmread(src).get_item(keyword)
        assert raw is not None and raw.value in data, keyword
        assert elem.value
    assert b"ORIGINAL\\PRIMARY\\AXIAL" in original
