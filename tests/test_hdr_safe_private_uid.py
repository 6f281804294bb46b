"""A UID in a safe private attribute (Table E.3.10-1, VR UI) under Retain Safe Private.

The table vouches for what such an attribute means, not for the UID in it: an instance UID
there is mapped like every other (the same keyed mapping, so a reference to an instance of
the study stays a reference), and no original UID is written. Before, the engine kept it
verbatim and the output check, seeing the input's UID in the output, refused the whole file.
Well-known UIDs (1.2.840.10008.*) stay. Without the option the attribute is removed.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from privguard.deidentifier import Deidentifier
from privguard.header.standard import safe_private
from privguard.pseudonym.keys import ProjectKey

KEY = ProjectKey.from_bytes(bytes(range(32)))
ORIGINAL = "2.25.1218277924426688948986722373205"


def _safe_uid_entry() -> tuple[str, int, int]:
    return next(k for k, vr in sorted(safe_private().items()) if vr == "UI")


def _with_safe_uid(value: str, explicit: bool = True) -> tuple[Dataset, int]:
    creator, group, elem = _safe_uid_entry()
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm" if explicit else "MR_small_implicit.dcm"))
    block = 0x41
    ds.add_new((group << 16) | block, "LO", creator)
    tag = (group << 16) | (block << 8) | elem
    ds.add_new(tag, "UI", value)
    return ds, tag


def _out_value(ds: Dataset, tag: int) -> str | None:
    elem = ds.get(tag)
    if elem is None:
        return None
    value = elem.value
    return value.decode("ascii").rstrip("\x00 ") if isinstance(value, bytes) else str(value)


@pytest.mark.parametrize("explicit", [True, False])
def test_the_file_path_maps_the_uid_and_writes_the_file(tmp_path: Path, explicit: bool) -> None:
    ds, tag = _with_safe_uid(ORIGINAL, explicit)
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier("research", KEY)
    res = deid.file(src, tmp_path / "out")
    assert res.status == "ok", res.reason
    data = (tmp_path / "out" / res.output).read_bytes()  # type: ignore[operator]
    assert ORIGINAL.encode() not in data
    out = pydicom.dcmread(tmp_path / "out" / res.output)  # type: ignore[operator]
    mapped = _out_value(out, tag)
    assert mapped and mapped != ORIGINAL and pydicom.uid.UID(mapped).is_valid
    # The same keyed mapping as a standard attribute holding the same UID.
    ds2 = pydicom.dcmread(src)
    ds2.ReferencedSOPInstanceUID = ORIGINAL  # not in Table E.1-1: mapped as uid-not-in-table
    out2, _ = deid.dataset(ds2)
    assert str(out2.ReferencedSOPInstanceUID) == mapped


def test_the_dataset_path_maps_it_too_and_records_why() -> None:
    ds, tag = _with_safe_uid(ORIGINAL)
    out, record = Deidentifier("research", KEY).dataset(ds)
    assert _out_value(out, tag) not in (None, ORIGINAL)
    reasons = {c.reason for c in record.changes if c.path == f"({tag >> 16:04X},{tag & 0xFFFF:04X})"}
    assert reasons == {"safe-private-uid"}


def test_a_well_known_uid_in_it_stays(tmp_path: Path) -> None:
    ct = "1.2.840.10008.5.1.4.1.1.2"
    ds, tag = _with_safe_uid(ct)
    out, _ = Deidentifier("research", KEY).dataset(ds)
    assert _out_value(out, tag) == ct


def test_without_the_option_it_is_removed() -> None:
    ds, tag = _with_safe_uid(ORIGINAL)
    out, _ = Deidentifier("basic", KEY).dataset(ds)
    assert tag not in out
