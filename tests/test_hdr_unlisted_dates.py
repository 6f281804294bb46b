"""Dates and times Table E.1-1 does not list get the treatment of the dates it lists.

PS3.15 E.1.1 (note to Table E.1-1): the table "is subject to extension ... De-identifiers may
take this extensibility into account, for example, by considering handling all dates and
times on the basis of their Value Representation of DT, DA or TM". privguard does: an unlisted
DA/DT/TM attribute, at the top level or inside any item, is removed or given a dummy under
profiles that keep no dates (basic, hipaa-safe-harbor), shifted by the patient's keyed offset
under Retain Longitudinal Temporal Information with Modified Dates (TM kept: a whole-day shift
leaves the time of day), and kept under Full Dates. Every check runs through the Dataset path
and the file path.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest
from both_paths import scrub_both
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from privguard.header.plan import compile_plan
from privguard.header.profile import load_profile
from privguard.header.standard import e1_1

# Attributes of the data dictionary that Table E.1-1 (2026c) does not list.
TOP = {"SecondaryReviewDate": "19710623", "SecondaryReviewTime": "131313", "ExpiryDate": "19730817"}
NESTED = {"StudyUpdateDateTime": "19720714081530", "ItemInventoryDateTime": "19740909101010"}
MARKERS = (b"19710623", b"131313", b"19730817", b"19720714", b"19740909")


def _input(tmp_path: Path) -> Path:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword, value in TOP.items():
        setattr(ds, keyword, value)
    item = Dataset()
    for keyword, value in NESTED.items():
        setattr(item, keyword, value)
    ds.InventoriedStudiesSequence = Sequence([item])  # a sequence the table does not list either
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    return src


def _both(tmp_path: Path, profile: str | Path) -> tuple[Dataset, Dataset, bytes]:
    return scrub_both(tmp_path, profile, _input(tmp_path))


def _days(a: str, b: str) -> int:
    return (
        dt.date.fromisoformat(f"{b[:4]}-{b[4:6]}-{b[6:8]}")
        - dt.date.fromisoformat(f"{a[:4]}-{a[4:6]}-{a[6:8]}")
    ).days


def test_the_attributes_are_really_outside_the_table() -> None:
    by_tag = e1_1().by_tag
    for keyword in (*TOP, *NESTED):
        tag = pydicom.datadict.tag_for_keyword(keyword)
        assert tag is not None and tag not in by_tag, keyword


@pytest.mark.parametrize("profile", ["basic", "hipaa-safe-harbor"])
def test_no_date_profiles_remove_unlisted_dates(tmp_path: Path, profile: str) -> None:
    out_ds, file_ds, data = _both(tmp_path, profile)
    for marker in MARKERS:
        assert marker not in data, marker
    for ds in (out_ds, file_ds):
        # Top level, in an IOD the tables know (CT Image): not part of it, removed (X/D -> X).
        for keyword in TOP:
            assert keyword not in ds, keyword
        # Inside an item the IOD tables do not expand: a dummy (X/D with an unknown Type -> D).
        item = ds.InventoriedStudiesSequence[0]
        for keyword in NESTED:
            assert str(item.data_element(keyword).value) == "19000101000000", keyword


def test_modified_dates_shift_unlisted_dates_by_the_patients_offset(tmp_path: Path) -> None:
    src_study = pydicom.dcmread(get_testdata_file("CT_small.dcm")).StudyDate
    out_ds, file_ds, data = _both(tmp_path, "research")
    for ds in (out_ds, file_ds):
        offset = _days(src_study, ds.StudyDate)
        assert offset != 0
        for keyword in ("SecondaryReviewDate", "ExpiryDate"):
            assert _days(TOP[keyword], ds.data_element(keyword).value) == offset, keyword
        item = ds.InventoriedStudiesSequence[0]
        for keyword in NESTED:
            value = str(item.data_element(keyword).value)
            assert _days(NESTED[keyword][:8], value[:8]) == offset, keyword
            assert value[8:] == NESTED[keyword][8:]  # time of day kept
        assert ds.SecondaryReviewTime == TOP["SecondaryReviewTime"]  # TM: a whole-day shift keeps it
    for marker in (b"19710623", b"19730817", b"19720714", b"19740909"):
        assert marker not in data


def test_full_dates_keep_unlisted_dates(tmp_path: Path) -> None:
    prof = tmp_path / "full.yaml"
    prof.write_text(
        "schema_version: 1\nname: full\noptions: [retain_longitudinal_full_dates]\n", encoding="utf-8"
    )
    out_ds, file_ds, _ = _both(tmp_path, prof)
    for ds in (out_ds, file_ds):
        for keyword, value in TOP.items():
            assert ds.data_element(keyword).value == value
        item = ds.InventoriedStudiesSequence[0]
        for keyword, value in NESTED.items():
            assert item.data_element(keyword).value == value


def test_the_rule_for_unlisted_dates_follows_the_tables_date_rows() -> None:
    # Generated from the table, not typed: the option codes the table gives its DA/DT/TM rows.
    from collections import Counter

    from pydicom.datadict import dictionary_VR

    codes: Counter[tuple[str | None, str | None]] = Counter()
    for tag, row in e1_1().by_tag.items():
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            continue
        if vr in ("DA", "DT", "TM"):
            codes[
                (
                    row.options.get("retain_longitudinal_full_dates"),
                    row.options.get("retain_longitudinal_modified_dates"),
                )
            ] += 1
    assert codes.most_common(1)[0][0] == ("K", "C")
    for name, want in (
        ("basic", "X/D"),
        ("research", "C"),
        ("hipaa-safe-harbor", "X/D"),
    ):
        assert compile_plan(load_profile(name)).unlisted_dates.code == want, name


def test_the_compliance_fact_follows_the_compiled_rule(tmp_path: Path) -> None:
    from privguard.compliance.facts import FACTS, _unlisted_dates

    assert "profile.unlisted_dates" in FACTS
    full = tmp_path / "full.yaml"
    full.write_text(
        "schema_version: 1\nname: full\noptions: [retain_longitudinal_full_dates]\n", encoding="utf-8"
    )
    assert _unlisted_dates(load_profile("basic")) == "removed"
    assert _unlisted_dates(load_profile("hipaa-safe-harbor")) == "removed"
    assert _unlisted_dates(load_profile("research")) == "shifted"
    assert _unlisted_dates(load_profile(full)) == "kept"
