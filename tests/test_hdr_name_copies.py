"""Copies of the patient's name in another case, order or spelling in text a profile keeps.

The engine replaces them with ``[NAME]`` in every text value it keeps (whole words of 3 letters or
more, case and accents folded); the output check searches the written header text for the same
words, whatever their case, so a copy the engine did not remove fails the file. Engine checks run
through the Dataset path and the file path.
"""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from both_paths import scrub_both
from conftest import part10
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from privguard.deidentifier import Deidentifier
from privguard.dicom.verify import identifying_values, verify_output
from privguard.errors import OutputError
from privguard.header.names import fold, name_matcher, name_words
from privguard.pseudonym.keys import ProjectKey

NAME = "Quarternight^Zebulon"
LEAK = re.compile(rb"(?i)quarternight|zebulon")


def _run(tmp_path: Path, profile: str | Path, ds: Dataset) -> tuple[Dataset, Dataset, bytes]:
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    return scrub_both(tmp_path, profile, src)


def _ct(name: str = NAME) -> Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName = name
    return ds


def test_basic_cleans_name_copies_in_kept_text(tmp_path: Path) -> None:
    # Under basic, free text the table does not list is kept (free_text: keep), as are the
    # items of a sequence it does not list: only the copies of the name go.
    ds = _ct()
    ds.TextValue = "seen by zebulon QUARTERNIGHT today"  # UT
    ds.ContentDescription = "Quarternight, Zebulon: prior"  # LO
    item = Dataset()
    item.CodeValue = "T-D4000"
    item.CodingSchemeDesignator = "SRT"
    item.CodeMeaning = "abdomen of zebulon"
    ds.AnatomicRegionSequence = Sequence([item])
    out_ds, file_ds, data = _run(tmp_path, "basic", ds)
    assert not LEAK.search(data)
    for out in (out_ds, file_ds):
        assert out.TextValue == "seen by [NAME] today"
        assert out.ContentDescription == "[NAME]: prior"
        assert out.AnatomicRegionSequence[0].CodeMeaning == "abdomen of [NAME]"
        assert out.AnatomicRegionSequence[0].CodeValue == "T-D4000"


def test_research_cleans_copies_in_retained_values_and_folds_accents(tmp_path: Path) -> None:
    ds = _ct("Müller^Zoë")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.DeviceSerialNumber = "ZOE MULLER 42"  # kept by Retain Device Identity
    ds.TextValue = "zoe muller, follow-up"  # cleaned by Clean Descriptors; the classifier misses it
    out_ds, file_ds, data = _run(tmp_path, "research", ds)
    assert not re.search(rb"(?i)muller|zoe", data)
    for out in (out_ds, file_ds):
        assert out.DeviceSerialNumber == "[NAME] 42"
        assert "[NAME]" in out.TextValue and "follow-up" in out.TextValue


def test_short_name_parts_match_whole_words_only(tmp_path: Path) -> None:
    ds = _ct("Lee^Ann")
    ds.TextValue = "Annotation by the Leeds team"
    ds.ContentDescription = "for ann LEE"
    out_ds, file_ds, _ = _run(tmp_path, "basic", ds)
    for out in (out_ds, file_ds):
        assert out.TextValue == "Annotation by the Leeds team"
        assert out.ContentDescription == "for [NAME]"


def test_a_copy_kept_by_an_override_fails_the_file(tmp_path: Path) -> None:
    prof = tmp_path / "keeps.yaml"
    prof.write_text(
        "schema_version: 1\nname: keeps\noverrides:\n  - {attribute: ImageComments, action: keep}\n",
        encoding="utf-8",
    )
    ds = _ct()
    ds.ImageComments = "zebulon quarternight"
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier(prof, ProjectKey.generate())
    try:
        res = deid.file(src, tmp_path / "out")
    finally:
        deid.close()
    assert res.status == "failed"
    assert res.reason == (
        "the output's header text still holds the patient's name (in another case or form); nothing written"
    )
    assert not list((tmp_path / "out").rglob("*.dcm"))


def _forbidden() -> object:
    src = Dataset()
    src.PatientName = NAME
    return identifying_values(src, name_words=name_words([NAME]))


@pytest.mark.parametrize(
    ("keyword", "vr", "value", "refused"),
    [
        ("ImageComments", "LT", b"for ZEBULON quarternight", True),
        ("ImageComments", "LT", b"quarternightly report", False),  # another word
        ("ImageComments", "LT", b"x_quarternight_y", True),  # an underscore separates words
        ("EncapsulatedDocument", "OB", b"\x01quarternight\x02", False),  # binary: bytes by chance
        ("RedPaletteColorLookupTableData", "OW", b"\x00quarternight\x00\x00", False),
    ],
)
def test_the_output_check_searches_text_values_case_insensitively(
    keyword: str, vr: str, value: bytes, refused: bool
) -> None:
    ds = Dataset()
    ds.add_new(pydicom.datadict.tag_for_keyword(keyword), vr, value)
    data = part10(ds)
    if refused:
        with pytest.raises(OutputError, match="patient's name"):
            verify_output(data, _forbidden())  # type: ignore[arg-type]
    else:
        verify_output(data, _forbidden())  # type: ignore[arg-type]


@pytest.mark.parametrize(("vr", "refused"), [("LO", True), ("OB", False)])
def test_the_output_check_looks_inside_items(vr: str, refused: bool) -> None:
    item = Dataset()
    if vr == "LO":
        item.CodeMeaning = "zebulon"
    else:
        item.add_new(0x00420011, "OB", b"\x01zebulon\x02\x00")
    ds = Dataset()
    ds.AnatomicRegionSequence = Sequence([item])
    data = part10(ds)
    if refused:
        with pytest.raises(OutputError, match="patient's name"):
            verify_output(data, _forbidden())  # type: ignore[arg-type]
    else:
        verify_output(data, _forbidden())  # type: ignore[arg-type]


def test_name_words() -> None:
    assert name_words(["Doe^Jane^Q^MRS^PHD"]) == ("jane", "doe")  # prefix/suffix, initials out
    assert set(name_words(["SMITH, JOHN=スミス^ジョン"])) == {"smith", "john", "スミス", "ジョン"}
    assert fold("Zoë Müller") == "zoe muller"
    m = name_matcher(name_words(["Müller^Zoë"]))
    assert m is not None
    assert m.scrub("Dr ZOË MÜLLER-x") == "Dr [NAME]-x"
    assert m.scrub("mullerite") is None
    assert name_words(["Smith-Jones^Mary Ann"]) == ("jones", "smith", "mary", "ann")
    h = name_matcher(name_words(["Smith-Jones^Mary Ann"]))
    assert h is not None and h.scrub("for mary-ann smith jones") == "for [NAME]"


@pytest.mark.parametrize("family", ["Date", "Name", "Place"])
def test_a_patient_named_like_a_label_is_not_refused(tmp_path: Path, family: str) -> None:
    # The classifier writes [DATE], [NAME], [PLACE]: those labels are not copies of the name.
    ds = _ct(f"{family}^Alexandra")
    ds.TextValue = "Alexandra seen on 2019-03-04 at 12 Elm Street, Springfield, phone 555-301-9822"
    out_ds, file_ds, data = _run(tmp_path, "research", ds)
    assert b"Alexandra" not in data
    for out in (out_ds, file_ds):
        assert "Alexandra" not in out.TextValue
        assert "[[" not in out.TextValue
        assert "[DATE]" in out.TextValue and "[PLACE]" in out.TextValue and "[NAME]" in out.TextValue


def test_the_label_words_are_the_classifiers() -> None:
    from privguard.dicom.verify import LABEL_WORDS
    from privguard.header.names import LABEL
    from privguard.text.classifier import LABELS

    labels = {*LABELS.values(), LABEL, "[REDACTED]"}
    assert {w.decode() for w in LABEL_WORDS} == {x.strip("[]") for x in labels}


_LETTERS = "abcdefghijklmnopqrstuvwxyzéüñøç"
_ACCENTS = str.maketrans("éüñøç", "eunoc")


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    family=st.text(_LETTERS, min_size=3, max_size=10),
    given_name=st.text(_LETTERS, min_size=3, max_size=10),
    order=st.sampled_from(["{g} {f}", "{f}, {g}", "{F} {G}", "Mr {g}.{f}!", "({f})", "x_{g}_y"]),
    profile=st.sampled_from(["basic", "research"]),
)
def test_any_copy_is_cleaned_or_the_file_refused(
    tmp_path_factory: pytest.TempPathFactory, family: str, given_name: str, order: str, profile: str
) -> None:
    """Property: a copy of the name in kept text, in any case, order or accents, never survives."""
    tmp = tmp_path_factory.mktemp("prop")
    ds = _ct(f"{family.title()}^{given_name.title()}")
    ds.SpecificCharacterSet = "ISO_IR 192"
    copy = order.format(f=family.translate(_ACCENTS), g=given_name, F=family.upper(), G=given_name.upper())
    ds.TextValue = f"seen {copy} today"
    ds.DeviceSerialNumber = copy[:60]
    src = tmp / "in.dcm"
    ds.save_as(src)
    deid = Deidentifier(profile, ProjectKey.generate())
    try:
        out_ds, _ = deid.dataset(pydicom.dcmread(src))
        res = deid.file(src, tmp / "out")
    finally:
        deid.close()
    words = [fold(w) for w in (family, given_name)]
    outs = [out_ds]
    if res.status == "ok":
        outs.append(pydicom.dcmread(tmp / "out" / str(res.output)))
    else:
        assert res.reason is not None and "name" in res.reason
    for out in outs:
        assert "[NAME]" in str(out.TextValue)  # the copy was found, not lost some other way
        for keyword in ("TextValue", "DeviceSerialNumber"):
            if keyword in out:
                text = fold(str(out.data_element(keyword).value))
                for w in words:
                    assert not re.search(rf"(?<![^\W_]){re.escape(w)}(?![^\W_])", text), (keyword, text)
