"""A person's name under an attribute Table E.1-1 does not list is never kept verbatim."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from privguard.deidentifier import Deidentifier
from privguard.pseudonym.keys import ProjectKey

NAMES = {"EvaluatorName": "Zebulon^Quarternight", "SecondaryReviewerName": "Ottoline^Vexhammer"}


@pytest.mark.parametrize("profile", ["basic", "research"])
def test_top_level_names_outside_the_table_become_dummies(tmp_path: Path, profile: str) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword, value in NAMES.items():
        setattr(ds, keyword, value)
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier(profile, ProjectKey.generate())
    try:
        # Dataset path
        out_ds, record = deid.dataset(pydicom.dcmread(src))
        # File path
        res = deid.file(src, tmp_path / "out")
    finally:
        deid.close()
    assert res.status == "ok", res.reason
    data = (tmp_path / "out" / str(res.output)).read_bytes()
    for keyword, value in NAMES.items():
        for part in value.split("^"):
            assert part.encode() not in data
        assert str(out_ds[keyword].value) != value
        assert str(out_ds[keyword].value)  # a dummy, not emptied
    reasons = {c.reason for c in record.changes if c.action == "D"}
    assert "name-not-in-table" in reasons
