"""Patients named like a word of privguard's own method attributes are not refused.

DeidentificationMethod, its code sequence's meanings and LongitudinalTemporalInformationModified
are generated from the profile ("DICOM PS3.15 2026c Basic Profile", "Retain Longitudinal Temporal
Information Modified Dates Option", "MODIFIED"), never from the input. The output check excuses a
name found in them only when they hold exactly what privguard writes; anything else in them is
searched like the rest of the header.
"""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from conftest import part10
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from privguard.deidentifier import Deidentifier
from privguard.dicom.verify import identifying_values, verify_output
from privguard.errors import OutputError
from privguard.header.names import name_words
from privguard.pseudonym.keys import ProjectKey

NAMES = ["Basic", "Profile", "Option", "Retain", "Clean", "Long", "Modified", "MODIFIED", "Removed"]


@pytest.mark.parametrize("profile", ["basic", "research", "hipaa-safe-harbor"])
@pytest.mark.parametrize("family", NAMES)
def test_patients_named_like_the_method_text_are_de_identified(
    tmp_path: Path, profile: str, family: str
) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName = f"{family}^Alexandra"
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier(profile, ProjectKey.generate(), vault=tmp_path / "tokens.vault")
    try:
        out_ds, _ = deid.dataset(pydicom.dcmread(src))
        res = deid.file(src, tmp_path / "out")
        methods = deid.engine.method_texts()
    finally:
        deid.close()
    assert res.status == "ok", res.reason
    file_ds = pydicom.dcmread(tmp_path / "out" / str(res.output))
    for out in (out_ds, file_ds):
        assert list(out.DeidentificationMethod) == methods
        assert "Alexandra" not in str(out.PatientName)
    data = (tmp_path / "out" / str(res.output)).read_bytes()
    assert b"Alexandra" not in data


def _forbidden(name: str) -> object:
    src = Dataset()
    src.PatientName = name
    return identifying_values(
        src,
        written_methods=["DICOM PS3.15 2026c Basic Profile", "privguard 0.1.0 profile basic"],
        name_words=name_words([name]),
        method_codes=[("113100", "Basic Application Confidentiality Profile")],
        temporal="REMOVED",
    )


def _output(method: list[str], codes: list[tuple[str, str]], temporal: str = "REMOVED") -> bytes:
    ds = Dataset()
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = method
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = temporal
    return part10(ds)


OURS = ["DICOM PS3.15 2026c Basic Profile", "privguard 0.1.0 profile basic"]
CODE = [("113100", "Basic Application Confidentiality Profile")]


@pytest.mark.parametrize(
    "name", ["Basic^Alex", "BASIC^ALEX", "Profile^Alex", "Removed^Alex", "Application^Al"]
)
def test_exactly_privguards_method_attributes_excuse_the_name(name: str) -> None:
    verify_output(_output(OURS, CODE), _forbidden(name))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "codes", "temporal"),
    [
        (["DICOM PS3.15 2026c Basic Profile", "reviewed by Basic"], CODE, "REMOVED"),  # another value
        (OURS, [*CODE, ("113100", "Basic Alex")], "REMOVED"),  # a meaning privguard does not write
        (OURS, [("113105", "Basic Application Confidentiality Profile")], "REMOVED"),  # code not ours
        (OURS, CODE, "BASIC"),
    ],
)
def test_anything_else_in_them_is_searched(
    method: list[str], codes: list[tuple[str, str]], temporal: str
) -> None:
    with pytest.raises(OutputError, match=re.escape("patient") + "|PatientName"):
        verify_output(_output(method, codes, temporal), _forbidden("Basic^Alex"))  # type: ignore[arg-type]


def test_without_the_expected_values_nothing_is_excused() -> None:
    src = Dataset()
    src.PatientName = "Basic^Alex"
    with pytest.raises(OutputError, match="PatientName"):
        verify_output(_output(OURS, CODE), identifying_values(src))


@pytest.mark.parametrize(
    "name", ["ExplVR_BigEnd.dcm", "image_dfl.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm"]
)
@pytest.mark.parametrize("family", ["Basic", "Option"])
def test_every_encoding(tmp_path: Path, name: str, family: str) -> None:
    # Big endian, deflated, implicit VR and encapsulated outputs: the method attributes are read
    # back in the output's own encoding before anything in them is excused.
    ds = pydicom.dcmread(get_testdata_file(name))
    ds.PatientName = f"{family}^Alexandra"
    ds.ImageComments = f"{family.lower()} alexandra"  # research cleans it; basic removes it
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier("research", ProjectKey.generate())
    try:
        res = deid.file(src, tmp_path / "out")
    finally:
        deid.close()
    assert res.status == "ok", res.reason
    data = (tmp_path / "out" / str(res.output)).read_bytes()
    assert b"alexandra" not in data.lower() or name == "image_dfl.dcm"  # deflated: compressed bytes
    out = pydicom.dcmread(tmp_path / "out" / str(res.output))
    assert "alexandra" not in str(out.get("ImageComments", "")).lower()
