"""deid's graylist coordinate rules: ``keepcoordinates``, ``from:`` criteria, the ultrasound recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import synth
from fakes import FakeEngine
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from privguard.dicomio import read_source
from privguard.pixels.allowlist import load_allowlist
from privguard.pixels.boxes import Box
from privguard.pixels.decode import decode_dataset, load
from privguard.pixels.stage import OCRPixelStage
from privguard.pixels.triage import (
    Coordinates,
    Rule,
    header_boxes,
    parse_recipe,
    resolve_regions,
    subtract,
    triage,
    ultrasound_catalogue,
)
from privguard.text.context import PhiContext

RECIPE = """
FORMAT dicom
%filter graylist
LABEL Everything but the regions
  present SequenceOfUltrasoundRegions
  coordinates all
  keepcoordinates from:SequenceOfUltrasoundRegions
  ctpkeepcoordinates 0,0,10,5  # a corner kept too
LABEL Regions from the header
  contains Manufacturer ACME
  coordinates from:SequenceOfUltrasoundRegions
LABEL Banner with a kept logo
  contains Manufacturer LOGO
  coordinates 0,0,100,50
  keepcoordinates 20,10,40,30
"""


def region(x0: int, y0: int, x1: int, y1: int) -> Dataset:
    item = Dataset()
    item.RegionLocationMinX0 = x0
    item.RegionLocationMinY0 = y0
    item.RegionLocationMaxX1 = x1
    item.RegionLocationMaxY1 = y1
    return item


def us(rows: int = 200, cols: int = 300, regions: list[Dataset] | None = None, **kw: object) -> Dataset:
    d = Dataset()
    d.Modality = "US"
    d.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    d.Rows, d.Columns = rows, cols
    if regions is not None:
        d.SequenceOfUltrasoundRegions = Sequence(regions)
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def coverage(boxes: tuple[Box, ...], rows: int, cols: int) -> np.ndarray:
    m = np.zeros((rows, cols), dtype=bool)
    for b in boxes:
        m[b.y0 : b.y1, b.x0 : b.x1] = True
    return m


def test_coordinate_lines_are_parsed_in_order_with_from_and_keep() -> None:
    gray = {r.label: r for r in parse_recipe(RECIPE).graylist}
    assert gray["Everything but the regions"].coordinates == (
        Coordinates(False, whole=True),
        Coordinates(True, source="SequenceOfUltrasoundRegions"),
        Coordinates(True, box=Box(0, 0, 10, 5)),
    )
    assert gray["Regions from the header"].coordinates == (
        Coordinates(False, source="SequenceOfUltrasoundRegions"),
    )
    assert gray["Banner with a kept logo"].keep_regions == (Box(20, 10, 40, 30),)


def test_the_shipped_ultrasound_recipe_is_read() -> None:
    gray = {r.label: r for r in ultrasound_catalogue().graylist}
    assert set(gray) == {"Blank Image", "Clean Ultrasound Regions"}
    assert gray["Blank Image"].coordinates == (Coordinates(False, whole=True),)
    assert gray["Clean Ultrasound Regions"].coordinates == (
        Coordinates(True, source="SequenceOfUltrasoundRegions"),
    )


def test_header_boxes_read_each_complete_region_item() -> None:
    ds = us(regions=[region(10, 20, 99, 149), region(5, 5, 4, 9), Dataset()])
    # the second item has max < min, the third no coordinates: neither gives a box
    assert header_boxes(ds, "SequenceOfUltrasoundRegions", keep=True) == [Box(10, 20, 99, 149)]
    # maxima are inclusive in DICOM: a masked region includes them, a kept one stops before them
    assert header_boxes(ds, "SequenceOfUltrasoundRegions", keep=False) == [Box(10, 20, 100, 150)]
    assert header_boxes(us(), "SequenceOfUltrasoundRegions", keep=True) == []


def test_subtract_leaves_everything_but_the_cut() -> None:
    box, cut = Box(0, 0, 100, 50), Box(20, 10, 40, 30)
    pieces = subtract(box, cut)
    m = coverage(tuple(pieces), 50, 100)
    assert m.sum() == 100 * 50 - 20 * 20
    assert not m[10:30, 20:40].any()
    assert subtract(box, Box(200, 200, 210, 210)) == [box]


def test_a_keepcoordinates_region_is_not_masked() -> None:
    cat = parse_recipe(RECIPE)
    ds = us(regions=[region(120, 60, 249, 179)], Manufacturer="LOGO")
    t = triage(ds, has_pixels=True, catalogue=cat, ultrasound_regions=False)
    assert t.reason == "known-device"
    assert t.labels == ("Everything but the regions", "Banner with a kept logo")
    m = coverage(t.regions, 200, 300)
    # "Everything but the regions": all masked but the ultrasound region and the 10x5 corner; then
    # the banner is masked (the corner with it) and its logo box kept: lines apply in order, as in deid
    kept = np.zeros_like(m)
    kept[60:179, 120:249] = True
    kept[10:30, 20:40] = True
    only_first = resolve_regions([cat.graylist[0]], ds)[0]
    assert not coverage(only_first, 200, 300)[0:5, 0:10].any()
    assert not (m & kept).any()
    assert (m | kept).all()


def test_a_from_criterion_selects_mask_coordinates_from_the_header() -> None:
    cat = parse_recipe(RECIPE)
    ds = us(regions=[region(10, 20, 59, 69), region(100, 100, 149, 119)], Manufacturer="ACME")
    del ds.SequenceOfUltrasoundRegions[0].RegionLocationMaxY1  # incomplete: ignored, as deid does
    rule = {r.label: r for r in cat.graylist}["Regions from the header"]
    regions, kept = resolve_regions([rule], ds)
    assert regions == (Box(100, 100, 150, 120),) and not kept
    t = triage(ds, has_pixels=True, catalogue=parse_recipe(RECIPE.split("LABEL Banner")[0]))
    assert t.reason == "known-device" and "Regions from the header" in t.labels
    assert Box(100, 100, 150, 120) in t.regions


def test_ultrasound_images_are_masked_but_for_their_ultrasound_regions() -> None:
    ds = us(regions=[region(60, 30, 239, 189)])
    t = triage(ds, has_pixels=True)
    assert (t.wanted, t.reason) == (True, "known-device")
    assert set(t.labels) == {"Blank Image", "Clean Ultrasound Regions"}
    m = coverage(t.regions, 200, 300)
    assert not m[30:189, 60:239].any()
    assert int((~m).sum()) == 179 * 159  # everything else is masked
    # turned off: OCR alone decides, as for any ultrasound image
    off = triage(ds, has_pixels=True, ultrasound_regions=False)
    assert (off.reason, off.regions) == ("modality:US", ())


def test_ultrasound_without_usable_regions_is_left_to_ocr() -> None:
    # "coordinates all" alone would blank the whole image: not applied
    for ds in (us(), us(regions=[Dataset()]), us(regions=[region(10, 10, 5, 5)])):
        t = triage(ds, has_pixels=True)
        assert (t.reason, t.regions) == ("modality:US", ())
    # the ultrasound recipe is for ultrasound images only
    ct = us(regions=[region(60, 30, 239, 189)], Modality="CT", SOPClassUID="1.2.840.10008.5.1.4.1.1.2")
    assert triage(ct, has_pixels=True).regions == ()


def test_a_rule_with_only_keep_lines_masks_nothing() -> None:
    rule = Rule("keep only", (), coordinates=(Coordinates(True, box=Box(0, 0, 10, 10)),))
    assert resolve_regions([rule], us()) == ((), False)


def test_stage_masks_outside_the_ultrasound_region_and_keeps_it(tmp_path: Path) -> None:
    """A generated ultrasound file with SequenceOfUltrasoundRegions, through the stage (a fake
    engine that finds no text): pixels inside the region are untouched, all others masked."""
    case = synth.build("us_regions", tmp_path, modality="US", rows=240, cols=320, seed=21, encoding="native")
    ds = pydicom.dcmread(case.path)
    ds.SequenceOfUltrasoundRegions = Sequence([region(40, 30, 279, 209)])
    ds.save_as(case.path)
    stage = OCRPixelStage(ocr="auto", allowlist=load_allowlist(), engine=FakeEngine({}))
    src = read_source(case.path)
    assert stage.wants(src)
    out = stage.process_many([(src, PhiContext.from_dataset(src.ds))])[0]
    assert out.report["triage"] == "known-device" and out.report["known_regions_masked"] >= 1
    before = load(case.path).frames
    ds = pydicom.dcmread(case.path)
    for k, v in out.elements.items():
        setattr(ds, k, v)
    if out.transfer_syntax:
        ds.file_meta.TransferSyntaxUID = UID(out.transfer_syntax)
    assert out.pixel_data is not None
    ds.PixelData = out.pixel_data
    now = decode_dataset(ds).frames
    inside = (slice(None), slice(30, 209), slice(40, 279))
    assert np.array_equal(before[inside], now[inside])  # the kept region is not masked
    outside = np.ones(now.shape[:3], dtype=bool)
    outside[inside] = False
    assert (before != now).any()
    values = now[outside]
    assert (values == values.reshape(-1, *now.shape[3:])[0]).all()  # one fill everywhere else
