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


def _scrub(tmp_path: Path, profile: str | Path) -> pydicom.Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword, value in {**PHI, **CLINICAL}.items():
        setattr(ds, keyword, value)
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier(profile, ProjectKey.generate(), vault=tmp_path / "tokens.vault")
    name = Path(str(profile)).stem
    try:
        res = deid.file(src, tmp_path / name)
    finally:
        deid.close()
    assert res.status == "ok", res.reason
    out = tmp_path / name / str(res.output)
    data = out.read_bytes()
    if name != "basic":
        for marker in MARKERS:
            assert marker not in data, marker
    return pydicom.dcmread(out)


@pytest.mark.parametrize("profile", ["research", "hipaa-safe-harbor"])
def test_free_text_outside_the_table_is_cleaned(tmp_path: Path, profile: str) -> None:
    # research: by Clean Descriptors; hipaa-safe-harbor: by its `free_text: clean` (any of the 18
    # identifiers may sit in a comment, 45 CFR 164.514(b)(2)(i)).
    out = _scrub(tmp_path, profile)
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


def test_a_profile_can_keep_free_text_under_clean_descriptors(tmp_path: Path) -> None:
    prof = tmp_path / "keeps.yaml"
    prof.write_text(
        "schema_version: 1\nname: keeps\noptions: [clean_descriptors]\nfree_text: keep\n", encoding="utf-8"
    )
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.TextValue = PHI["TextValue"]
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier(prof, ProjectKey.generate())
    try:
        res = deid.file(src, tmp_path / "out")
    finally:
        deid.close()
    assert res.status == "ok", res.reason
    assert pydicom.dcmread(tmp_path / "out" / str(res.output)).TextValue == PHI["TextValue"]
