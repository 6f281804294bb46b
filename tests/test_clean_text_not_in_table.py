"""Under Clean Descriptors, free text Table E.1-1 does not list is cleaned; under basic it is kept."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from privguard.deidentifier import Deidentifier
from privguard.pseudonym.keys import ProjectKey

PHI = {
    "CommentsOnTheScheduledProcedureStep": "Pt Zebulon Quarternight MRN 88123456 called 555-867-5309",  # LT
    "TextValue": "Zebulon Quarternight seen on 1961-04-02",  # UT
    "DocumentTitle": "Report for Zebulon Quarternight",  # ST
    "ContentDescription": "Prior of Zebulon Quarternight",  # LO, descriptive keyword
}
CLINICAL = {"SegmentDescription": "liver lesion segment 4"}  # ST without PHI: kept as is
MARKERS = (b"Quarternight", b"88123456", b"867-5309")


def _scrub(tmp_path: Path, profile: str) -> pydicom.Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword, value in {**PHI, **CLINICAL}.items():
        setattr(ds, keyword, value)
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier(profile, ProjectKey.generate())
    try:
        res = deid.file(src, tmp_path / profile)
    finally:
        deid.close()
    assert res.status == "ok", res.reason
    out = tmp_path / profile / str(res.output)
    data = out.read_bytes()
    if profile == "research":
        for marker in MARKERS:
            assert marker not in data, marker
    return pydicom.dcmread(out)


def test_research_cleans_free_text_outside_the_table(tmp_path: Path) -> None:
    out = _scrub(tmp_path, "research")
    for keyword in PHI:
        assert "Quarternight" not in str(out.data_element(keyword).value)
        assert str(out.data_element(keyword).value)  # cleaned, not removed
    assert out.SegmentDescription == CLINICAL["SegmentDescription"]
    assert "Report for" in out.DocumentTitle  # only the identifying words go


@pytest.mark.parametrize("keyword", sorted(PHI))
def test_basic_keeps_what_the_standard_keeps(tmp_path: Path, keyword: str) -> None:
    # The Basic Profile keeps attributes its table does not list (PS3.15 E.1.1); this pins that
    # the cleaning above is the Clean Descriptors option's doing, not a silent change of basic.
    out = _scrub(tmp_path, "basic")
    assert str(out.data_element(keyword).value) == PHI[keyword]
