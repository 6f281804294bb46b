"""The header engine: action codes, compound-code resolution, options, overrides, families."""

from __future__ import annotations

import copy
import io
import tempfile
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from privguard.deidentifier import Deidentifier, deidentify
from privguard.header.engine import HeaderEngine, dummy_value
from privguard.header.plan import compile_plan
from privguard.header.profile import DeidProfile, Option, load_profile
from privguard.header.standard import e1_1, iod_types
from privguard.models import DeidRecord
from privguard.pseudonym.keys import ProjectKey
from privguard.pseudonym.pseudonymizer import KeyedPseudonymizer

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


def _ct(**kw: object) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Example^John^Q"
    ds.PatientID = "MRN1234567"
    ds.PatientBirthDate = "19611224"
    ds.StudyDate = "20240105"
    ds.StudyTime = "101500"
    ds.ContentDate = "20240105"
    ds.AcquisitionDate = "20240105"
    ds.InstitutionName = "St. Benedict Medical Center"
    ds.DeviceSerialNumber = "SN-4711"
    ds.StationName = "CTROOM2"
    ds.PatientAge = "093Y"
    ds.PatientSex = "F"
    ds.PatientWeight = "61.5"
    ds.StudyDescription = "CT chest for John Q Example"
    ds.Modality = "CT"
    ds.Manufacturer = "ACME"
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def _through_file(
    ds: Dataset, key: ProjectKey, profile: str | DeidProfile, **kw: object
) -> tuple[Dataset, bytes]:
    """De-identify ``ds`` through the file path (``Deidentifier.file``): the output read back, its bytes."""
    src = copy.deepcopy(ds)
    src.file_meta = FileMetaDataset()
    src.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    src.file_meta.MediaStorageSOPClassUID = src.SOPClassUID
    src.file_meta.MediaStorageSOPInstanceUID = src.SOPInstanceUID
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.dcm"
        src.save_as(path, enforce_file_format=True)
        deid = Deidentifier(profile, key, **kw)  # type: ignore[arg-type]
        try:
            res = deid.file(path, Path(tmp) / "out")
        finally:
            deid.close()
        assert res.status == "ok", res.reason
        data = (Path(tmp) / "out" / str(res.output)).read_bytes()
    return pydicom.dcmread(io.BytesIO(data)), data


def _both(
    ds: Dataset, key: ProjectKey, profile: str | DeidProfile = "basic", **kw: object
) -> tuple[Dataset, DeidRecord]:
    """De-identify through the Dataset path and the file path; both must give the same data set.

    Every engine test goes through both: the file path writes bytes (copying the
    elements it keeps), the Dataset path does not, and they must agree.
    """
    out, record = deidentify(ds, profile, key, **kw)  # type: ignore[arg-type]
    back, data = _through_file(ds, key, profile, **kw)
    assert _json(back) == _json(out)
    for value in ("Example^John", "MRN1234567"):  # the input's identifiers, unless a test kept them
        if value not in str(out):
            assert value.encode() not in data
    return out, record


def _json(ds: Dataset) -> dict[str, object]:
    """The data set as JSON, values only (VRs of equal values may differ between the paths)."""
    out: dict[str, object] = {}
    for elem in ds:
        if elem.VR == "SQ":
            out[str(elem.tag)] = [_json(item) for item in elem.value]
        else:
            v = elem.value
            multi = isinstance(v, list | tuple) or type(v).__name__ == "MultiValue"
            out[str(elem.tag)] = [str(x) for x in v] if multi else str(v)
    return out


def _run(ds: Dataset, key: ProjectKey, profile: str | DeidProfile = "basic", **kw: object) -> Dataset:
    out, _ = _both(ds, key, profile, **kw)
    return out


def test_input_dataset_is_not_modified(key: ProjectKey) -> None:
    ds = _ct()
    before = ds.to_json_dict()
    _run(ds, key)
    assert ds.to_json_dict() == before


@pytest.mark.parametrize(
    ("option", "keyword", "kept"),
    [
        (None, "PatientAge", False),
        (Option.RETAIN_PATIENT_CHARACTERISTICS, "PatientAge", True),
        (Option.RETAIN_PATIENT_CHARACTERISTICS, "PatientWeight", True),
        (None, "DeviceSerialNumber", False),
        (Option.RETAIN_DEVICE_IDENTITY, "DeviceSerialNumber", True),
        (Option.RETAIN_DEVICE_IDENTITY, "StationName", True),
        (None, "InstitutionName", False),
        (Option.RETAIN_INSTITUTION_IDENTITY, "InstitutionName", True),
        (Option.RETAIN_LONGITUDINAL_FULL_DATES, "StudyDate", True),
        (Option.RETAIN_UIDS, "SOPInstanceUID", True),
        (Option.RETAIN_UIDS, "StudyInstanceUID", True),
        (None, "SOPInstanceUID", False),
    ],
    ids=lambda v: getattr(v, "value", v),
)
def test_options_keep_what_they_name(
    option: Option | None, keyword: str, kept: bool, key: ProjectKey
) -> None:
    ds = _ct()
    out = _run(ds, key, options={option} if option else None)
    if kept:
        assert out[keyword].value == ds[keyword].value
    else:
        assert keyword not in out or out[keyword].value != ds[keyword].value


def test_basic_profile_actions(key: ProjectKey) -> None:
    ds = _ct()
    out = _run(ds, key)
    assert out.StudyDate == ""  # Z (Type 2 in CT)
    assert out.ContentDate == ""  # Z/D, Type 2 in the CT Image IOD -> Z
    assert "AcquisitionDate" not in out  # X/Z, Type 3 -> X
    assert "InstitutionName" not in out  # X/Z/D, Type 3 -> X
    assert "StudyDescription" not in out  # X
    assert out.PatientName != ds.PatientName and out.PatientID != ds.PatientID
    assert str(out.PatientName) == out.PatientID
    assert out.Modality == "CT" and out.Manufacturer == "ACME"  # not in Table E.1-1: kept
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence] == ["113100"]


def test_compound_codes_follow_the_iod_type(key: ProjectKey) -> None:
    """ContentDate is Z/D: Type 2 in CT images (empty), Type 1 in SR documents (dummy)."""
    assert iod_types(CTImageStorage)["ContentDate"] == 2  # type: ignore[index]
    assert iod_types(COMPREHENSIVE_SR)["ContentDate"] == 1  # type: ignore[index]
    ct = _run(_ct(), key)
    sr = _run(_ct(SOPClassUID=COMPREHENSIVE_SR), key)
    assert ct.ContentDate == ""
    assert sr.ContentDate == dummy_value("DA")


def test_unknown_sop_class_is_handled_conservatively(key: ProjectKey) -> None:
    out, record = _both(_ct(SOPClassUID="1.2.3.4.5.6"), key, "basic")
    assert out.InstitutionName == dummy_value("LO")  # X/Z/D -> D: never leaks, never breaks Type 1
    assert out.AcquisitionDate == ""  # X/Z -> Z
    assert any("conservatively" in w for w in record.warnings)


def test_x_z_u_star_keeps_references_with_new_uids(key: ProjectKey) -> None:
    ref = generate_uid()
    item = Dataset()
    item.ReferencedSOPClassUID = CTImageStorage
    item.ReferencedSOPInstanceUID = ref
    item.ReferencedFrameNumber = "1"
    other = _run(_ct(SOPInstanceUID=ref), key)
    # Type 3 in the CT Image IOD, and an unknown IOD: both keep the references (U*).
    for ds in (
        _ct(ReferencedImageSequence=Sequence([item])),
        _ct(SOPClassUID="1.2.3.4", SourceImageSequence=Sequence([item])),
    ):
        out = _run(ds, key)
        seq = out.get("ReferencedImageSequence") or out.get("SourceImageSequence")
        assert seq is not None and len(seq) == 1
        new_ref = seq[0].ReferencedSOPInstanceUID
        assert new_ref != ref and new_ref.startswith("2.25.")
        assert new_ref == other.SOPInstanceUID  # the reference follows the referenced instance
        assert seq[0].ReferencedSOPClassUID == CTImageStorage  # a standard UID stays


def test_dummy_sequence_replaces_free_text_but_keeps_codes(key: ProjectKey) -> None:
    """A D sequence: free text, names and code meanings become dummies; code identifiers stay."""
    code = Dataset()
    code.CodeValue = "121071"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Finding"
    content = Dataset()
    content.ValueType = "TEXT"
    content.ConceptNameCodeSequence = Sequence([code])
    content.TextValue = "Patient John Example, MRN1234567, looks well"
    content.PersonName = "Example^John"
    out = _run(_ct(SOPClassUID=COMPREHENSIVE_SR, ContentSequence=Sequence([content])), key)
    item = out.ContentSequence[0]
    assert item.TextValue == "ANONYMIZED" and item.PersonName == "ANONYMIZED"
    assert item.ConceptNameCodeSequence[0].CodeMeaning == "ANONYMIZED"  # may hold a name
    assert item.ConceptNameCodeSequence[0].CodeValue == "121071"
    assert item.ConceptNameCodeSequence[0].CodingSchemeDesignator == "DCM"
    assert item.ValueType == "TEXT"


def test_clean_structured_content_keeps_text_without_phi(key: ProjectKey) -> None:
    content = Dataset()
    content.ValueType = "TEXT"
    content.TextValue = "Nodule in the right upper lobe of John Q Example, seen 01/05/2024"
    out = _run(
        _ct(SOPClassUID=COMPREHENSIVE_SR, ContentSequence=Sequence([content])),
        key,
        options={Option.CLEAN_STRUCTURED_CONTENT},
    )
    assert out.ContentSequence[0].TextValue == "Nodule in the right upper lobe of [NAME], seen [DATE]"


def test_clean_descriptors(key: ProjectKey) -> None:
    ds = _ct(SeriesDescription="AXIAL 5MM", ImageComments="Dr. Gregory House called 555-201-3344")
    out = _run(ds, key, options={Option.CLEAN_DESCRIPTORS})
    assert out.StudyDescription == "CT chest for [NAME]"
    assert out.SeriesDescription == "AXIAL 5MM"
    assert out.ImageComments == "Dr. [NAME] called [PHONE]"


def test_modified_dates_shift_every_date_by_one_offset(key: ProjectKey) -> None:
    ds = _ct(SeriesDate="20240110", AcquisitionDateTime="20240105101500.123+0100")
    out = _run(ds, key, options={Option.RETAIN_LONGITUDINAL_MODIFIED_DATES})
    import datetime as dt

    def d(s: str) -> dt.date:
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:8]))

    shift = d(out.StudyDate) - d(ds.StudyDate)
    assert shift.days != 0 and abs(shift.days) <= 365
    assert d(out.SeriesDate) - d(ds.SeriesDate) == shift
    assert out.PatientBirthDate == ""  # not longitudinal information: Z even with modified dates
    assert out.AcquisitionDateTime.endswith("101500.123+0100")
    assert d(out.AcquisitionDateTime[:8]) - d(ds.AcquisitionDateTime[:8]) == shift
    assert out.StudyTime == ds.StudyTime  # a whole-day shift keeps the time of day
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    # Another file of the same patient moves the same way; another patient differently.
    same = _run(_ct(StudyDate="20200101"), key, options={Option.RETAIN_LONGITUDINAL_MODIFIED_DATES})
    assert d(same.StudyDate) - dt.date(2020, 1, 1) == shift
    offsets = set()
    for pid in ("A1", "B2", "C3", "D4", "E5"):
        o = _run(_ct(PatientID=pid), key, options={Option.RETAIN_LONGITUDINAL_MODIFIED_DATES})
        offsets.add(d(o.StudyDate) - d(ds.StudyDate))
    assert len(offsets) > 1


def test_age_cap(key: ProjectKey) -> None:
    data = load_profile("research").model_dump()
    data["age_cap"] = 90
    profile = DeidProfile.model_validate(data)
    assert _run(_ct(PatientAge="093Y"), key, profile).PatientAge == "090Y"
    assert _run(_ct(PatientAge="061Y"), key, profile).PatientAge == "061Y"


@pytest.mark.parametrize(
    ("action", "extra", "check"),
    [
        ("keep", {}, lambda ds, out: out.InstitutionName == ds.InstitutionName),
        ("empty", {}, lambda ds, out: out.InstitutionName == ""),
        ("replace", {"value": "Research Site 1"}, lambda ds, out: out.InstitutionName == "Research Site 1"),
        ("hash", {}, lambda ds, out: out.InstitutionName.startswith("I") and len(out.InstitutionName) == 16),
        ("remove", {}, lambda ds, out: "InstitutionName" not in out),
    ],
)
def test_site_overrides(action: str, extra: dict[str, str], check: object, key: ProjectKey) -> None:
    data = load_profile("basic").model_dump()
    data["name"] = "site"
    data["overrides"] = [{"attribute": "InstitutionName", "action": action, **extra}]
    profile = DeidProfile.model_validate(data)
    ds = _ct()
    out, record = _both(ds, key, profile)
    assert check(ds, out)  # type: ignore[operator]
    change = next(c for c in record.changes if c.keyword == "InstitutionName")
    assert change.reason == "override"


def test_private_tags_and_safe_private(key: ProjectKey) -> None:
    ds = _ct()
    ds.add_new(0x00090010, "LO", "ACME PRIVATE")
    ds.add_new(0x00091001, "LO", "secret")
    ds.add_new(0x70530010, "LO", "Philips PET Private Group")
    ds.add_new(0x70531000, "DS", "1.5")  # safe: SUV factor
    ds.add_new(0x70531099, "LO", "not listed")
    basic = _run(ds, key)
    assert not [e for e in basic if e.tag.is_private]
    kept = _run(ds, key, options={Option.RETAIN_SAFE_PRIVATE})
    assert [int(e.tag) for e in kept if e.tag.is_private] == [0x70530010, 0x70531000]


def test_group_lengths_unknown_public_tags_curves_and_overlays(key: ProjectKey) -> None:
    ds = _ct()
    ds.add_new(0x00080000, "UL", 100)  # group length: wrong after editing
    ds.add_new(0x00091234, "LO", "orphan")  # private without a creator
    ds.add_new(0x00431001, "LO", "odd")  # private
    ds.add_new(0x7FFE0002, "LO", "not in the dictionary")  # unknown public tag
    ds.add_new(0x50000005, "US", 1)
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60003000, "OW", b"\x00" * 8)
    ds.add_new(0x60004000, "LT", "comment")
    out = _run(ds, key)
    for tag in (
        0x00080000,
        0x00091234,
        0x00431001,
        0x7FFE0002,
        0x50000005,
        0x60000010,
        0x60003000,
        0x60004000,
    ):
        assert tag not in out, hex(tag)


def test_attributes_newer_than_the_dictionary_follow_the_table(key: ProjectKey) -> None:
    ds = _ct()
    ds.add_new(0x00100016, "LO", "pronoun text")  # in Table E.1-1 2026c, not in pydicom 3.0.2
    out = _run(ds, key)
    assert 0x00100016 not in out


def test_every_table_row_is_in_the_plan() -> None:
    plan = compile_plan(load_profile("basic"))
    table = e1_1()
    assert table.edition == "2026c"
    assert len(table.rows) == 656
    assert set(plan.rules) == set(table.by_tag)
    codes = {r.code for r in plan.rules.values()}
    assert codes <= {"X", "Z", "D", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}


def test_engine_records_without_values(key: ProjectKey) -> None:
    ds = _ct()
    _, record = _both(ds, key)
    text = record.model_dump_json()
    for value in ("Example", "MRN1234567", "Benedict", "19611224", "SN-4711"):
        assert value not in text
    assert record.counts["X"] > 0 and record.counts["P"] == 2


def test_pseudonymizer_caches_are_per_project(key: ProjectKey) -> None:
    a = HeaderEngine(compile_plan(load_profile("basic")), KeyedPseudonymizer(key, "a"))
    b = HeaderEngine(compile_plan(load_profile("basic")), KeyedPseudonymizer(key, "b"))
    da, db = _ct(), _ct()
    db.SOPInstanceUID = da.SOPInstanceUID
    a.run(da)
    b.run(db)
    assert da.SOPInstanceUID != db.SOPInstanceUID


def test_file_meta_follows_the_new_sop_instance(key: ProjectKey) -> None:
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    out = _run(ds, key)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID != ds.SOPInstanceUID


def test_clean_graphics_keeps_annotations_with_text_cleaned(key: ProjectKey) -> None:
    text = Dataset()
    text.UnformattedTextValue = "Lesion, John Example 01/05/2024"
    text.AnchorPointAnnotationUnits = "PIXEL"
    layer = Dataset()
    layer.GraphicLayer = "LAYER1"
    layer.TextObjectSequence = Sequence([text])
    ds = _ct(GraphicAnnotationSequence=Sequence([layer]))
    basic = _run(ds, key)
    assert basic.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue == "ANONYMIZED"
    clean = _run(ds, key, options={Option.CLEAN_GRAPHICS, Option.CLEAN_DESCRIPTORS})
    assert (
        clean.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue
        == "Lesion, [NAME] [DATE]"
    )
    codes = [i.CodeValue for i in clean.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113103", "113105"]


def _coded(meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue = "121008"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = meaning
    return code


def test_names_in_coded_items_of_kept_references_become_dummies(key: ProjectKey) -> None:
    """U* (a reference kept with new UIDs): free text in its items is a dummy, codes stay."""
    item = Dataset()
    item.ReferencedSOPClassUID = CTImageStorage
    item.ReferencedSOPInstanceUID = generate_uid()
    item.PurposeOfReferenceCodeSequence = Sequence([_coded("Reviewed by Dr Gregory House")])
    item.EvaluatorName = "House^Gregory"  # a person name the table does not list
    out = _run(_ct(SourceImageSequence=Sequence([item])), key)
    ref = out.SourceImageSequence[0]
    assert ref.PurposeOfReferenceCodeSequence[0].CodeMeaning == "ANONYMIZED"
    assert ref.PurposeOfReferenceCodeSequence[0].CodeValue == "121008"
    assert ref.EvaluatorName == "ANONYMIZED"


def test_text_in_items_of_an_option_kept_sequence_goes_through_the_classifier(key: ProjectKey) -> None:
    """A sequence an option keeps (K), under a Clean option: its items' free text is cleaned."""
    ds = _ct(EthnicGroupCodeSequence=Sequence([_coded("Told by John Q Example")]))
    out = _run(ds, key, options={Option.RETAIN_PATIENT_CHARACTERISTICS, Option.CLEAN_DESCRIPTORS})
    meaning = out.EthnicGroupCodeSequence[0].CodeMeaning
    assert "Example" not in meaning and "[NAME]" in meaning
    assert out.EthnicGroupCodeSequence[0].CodeValue == "121008"


def test_a_kept_value_not_valid_for_its_vr_is_refused(key: ProjectKey) -> None:
    """Text under a tag whose VR cannot hold it (a name in an age or a code string) is not kept."""
    import warnings

    from privguard.errors import ProcessingError

    characteristics = {Option.RETAIN_PATIENT_CHARACTERISTICS}
    for bad in ({"PatientAge": "Doe^Jane"}, {"BodyPartExamined": "SMITH^JOHN"}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the invalid values it is given
            ds = _ct(**bad)
        with pytest.raises(ProcessingError, match="does not allow"):
            deidentify(ds, "basic", key, options=characteristics)
        src = copy.deepcopy(ds)
        src.file_meta = FileMetaDataset()
        src.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        with tempfile.TemporaryDirectory() as tmp:
            src.save_as(Path(tmp) / "in.dcm", enforce_file_format=True)
            deid = Deidentifier("basic", key, options=characteristics)
            res = deid.file(Path(tmp) / "in.dcm", Path(tmp) / "o")
            assert res.status == "failed" and "does not allow" in (res.reason or "")
            assert "Doe" not in (res.reason or "") and "SMITH" not in (res.reason or "")
            assert not (Path(tmp) / "o").exists() or not any((Path(tmp) / "o").rglob("*.dcm"))
    kept = _run(_ct(PatientAge="045Y", BodyPartExamined="L-SPINE"), key, options=characteristics)
    assert kept.PatientAge == "045Y" and kept.BodyPartExamined == "L-SPINE"
