"""Triage from the header, and the deid known-device catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from privguard.pixels.boxes import Box
from privguard.pixels.triage import deid_catalogue, matches, parse_recipe, triage

RECIPE = """
FORMAT dicom
%filter whitelist
LABEL Clean
  contains BurnedInAnnotation No
%filter graylist
LABEL Vendor screen
  contains Manufacturer ACME
  + contains ImageType SCREEN SAVE || contains SeriesDescription Dose
  coordinates 0,0,512,100
  ctpcoordinates 10,20,30,40
LABEL Or lines
  contains Modality XX
  || contains Modality YY
  coordinates 1,1,2,2
LABEL Model with plus
  contains ManufacturerModelName SOMATOM Definition AS+
  coordinates 0,0,5,5
%filter blacklist
LABEL Missing type
  missing ImageType || empty ImageType
%header
REMOVE PatientName
"""


def ds(**kw: object) -> Dataset:
    d = Dataset()
    d.Modality = "CT"
    d.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    d.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def test_parse_recipe_sections_coordinates_and_operators() -> None:
    cat = parse_recipe(RECIPE)
    assert [r.label for r in cat.whitelist] == ["Clean"]
    gray = {r.label: r for r in cat.graylist}
    assert gray["Vendor screen"].regions == (Box(0, 0, 512, 100), Box(10, 20, 40, 60))
    assert matches(gray["Vendor screen"], ds(Manufacturer="ACME", SeriesDescription="Dose report"))
    assert matches(gray["Vendor screen"], ds(Manufacturer="ACME", ImageType=["DERIVED", "SCREEN SAVE"]))
    assert not matches(gray["Vendor screen"], ds(Manufacturer="OTHER", SeriesDescription="Dose"))
    assert matches(gray["Or lines"], ds(Modality="YY"))  # "||" between lines is an OR
    assert matches(gray["Model with plus"], ds(ManufacturerModelName="SOMATOM Definition AS+"))
    assert matches(cat.blacklist[0], ds(ImageType=""))
    assert not matches(cat.blacklist[0], ds())


def test_the_shipped_deid_catalogue_is_loaded() -> None:
    cat = deid_catalogue()
    with_regions = [r for r in cat.graylist if r.regions]
    assert len(with_regions) >= 50
    assert any("LightSpeed" in r.label for r in with_regions)


@pytest.mark.parametrize(
    ("header", "wanted", "reason"),
    [
        (ds(), False, "not-flagged"),
        (ds(ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"]), True, "image-type:LOCALIZER"),
        (ds(ImageType=["DERIVED", "SECONDARY", "MPR"]), True, "image-type:SECONDARY"),
        (ds(BurnedInAnnotation="YES"), True, "burned-in-annotation"),
        (ds(Modality="US", SOPClassUID="1.2.840.10008.5.1.4.1.1.6.1"), True, "modality:US"),
        (ds(Modality="US", BurnedInAnnotation="NO"), True, "modality:US"),
        (ds(Modality="OT", SOPClassUID="1.2.840.10008.5.1.4.1.1.7"), True, "modality:OT"),
        (ds(Modality="PT", SOPClassUID="1.2.840.10008.5.1.4.1.1.7"), True, "sop-class"),
        (ds(Modality="CR", ImageType=["ORIGINAL", "PRIMARY"]), True, "modality:CR"),
        (ds(Modality="CR", BurnedInAnnotation="NO"), False, "marked-clean"),
        (
            ds(Modality="MR", ImageType=["DERIVED", "SECONDARY"], BurnedInAnnotation="NO"),
            False,
            "marked-clean",
        ),
        (ds(Modality="XA"), True, "modality:XA"),
    ],
)
def test_rules(header: Dataset, wanted: bool, reason: str) -> None:
    t = triage(header, has_pixels=True)
    assert (t.wanted, t.reason) == (wanted, reason)


def test_no_pixels_and_ocr_on() -> None:
    assert triage(ds(Modality="US"), has_pixels=False).wanted is False
    assert triage(ds(), has_pixels=True, ocr="on").reason == "ocr-on"


def test_known_device_regions_are_returned() -> None:
    header = ds(
        Manufacturer="GE MEDICAL SYSTEMS",
        ManufacturerModelName="LightSpeed VCT",
        ImageType=["DERIVED", "SECONDARY", "SCREEN SAVE"],
        SeriesDescription="Dose Report",
    )
    t = triage(header, has_pixels=True)
    assert t.wanted and t.reason == "known-device"
    assert Box(0, 0, 512, 121) in t.regions
    assert "LightSpeed Dose Report" in t.labels


def test_stage_wants_uses_triage(tmp_path: Path) -> None:
    from fakes import FakeEngine

    from privguard.dicomio import read_source
    from privguard.pixels.allowlist import load_allowlist
    from privguard.pixels.stage import OCRPixelStage

    data = Path(__file__).parent.parent / "data" / "pseudo-phi"
    stage = OCRPixelStage(ocr="auto", allowlist=load_allowlist(), engine=FakeEngine({}))
    assert stage.wants(read_source(data / "2_ORIGINAL.dcm"))  # CT localizer
    assert stage.wants(read_source(data / "RGB_ORIGINAL.dcm"))  # secondary capture
    assert not stage.wants(read_source(data / "0_ORIGINAL_no_pixels.dcm"))
    off = OCRPixelStage(ocr="off", allowlist=load_allowlist(), engine=FakeEngine({}))
    assert not off.wants(read_source(data / "2_ORIGINAL.dcm"))
