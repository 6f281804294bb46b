"""The stage's masks, verification, report and write-back, driven by a fake engine.

These tests are about the stage's logic (decisions turned into masks, verification
failing closed, PHI-free reports); OCR itself is tested against real text in
test_px_synthetic.py and test_px_pseudo_phi.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import synth
from fakes import FakeEngine

from privguard.dicomio import read_source
from privguard.pixels.allowlist import load_allowlist
from privguard.pixels.boxes import Box
from privguard.pixels.decode import decode_dataset, load
from privguard.pixels.stage import OCRPixelStage
from privguard.text.context import PhiContext


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> synth.Case:
    out = tmp_path_factory.mktemp("stage")
    # (the fake engine reads verification crops by their size, so the layout matters: seed 17 is a
    # layout where no crop around a mask happens to have a PHI box's size)
    return synth.build(
        "ct", out, modality="CT", rows=256, cols=320, seed=17, encoding="rle", phi_items=3, nonphi_items=2
    )


def texts(case: synth.Case) -> dict[Box, str]:
    return {
        Box.from_xywh(r.left, r.top, r.width, r.height): r.text for r in case.regions if r.kind != "label"
    }


def run(stage: OCRPixelStage, path: Path):  # type: ignore[no-untyped-def]
    src = read_source(path)
    return stage.process_many([(src, PhiContext.from_dataset(src.ds))])[0]


def after(path: Path, outcome) -> np.ndarray:  # type: ignore[no-untyped-def]
    import pydicom

    ds = pydicom.dcmread(path)
    if outcome.pixel_data is None:
        return decode_dataset(ds).frames
    for k, v in outcome.elements.items():
        setattr(ds, k, v)
    if outcome.transfer_syntax:
        ds.file_meta.TransferSyntaxUID = outcome.transfer_syntax
    ds.PixelData = outcome.pixel_data
    return decode_dataset(ds).frames


def test_phi_masked_non_phi_kept_and_report_is_phi_free(
    case: synth.Case, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="privguard")
    stage = OCRPixelStage(
        ocr="on", allowlist=load_allowlist(), engine=FakeEngine(texts(case)), previews=tmp_path
    )
    out = run(stage, case.path)
    assert out.failed is None and out.verified
    assert out.transfer_syntax is None  # RLE in, RLE out
    report = out.report
    assert report["verification"] == "passed"
    # a region read as several words ("120 kV") counts as several boxes
    assert report["boxes_redacted"] >= sum(r.phi for r in case.regions)
    assert report["boxes_kept"] >= sum(not r.phi and r.kind != "label" for r in case.regions)
    dump = json.dumps(report)
    ident = case.identity
    for secret in (ident.family, ident.given, ident.patient_id, ident.accession):
        assert secret not in dump
        assert secret not in caplog.text
    for kept in report["kept"]:
        assert any(kept["text"] in r.text for r in case.regions if not r.phi)
    before = load(case.path).frames
    now = after(case.path, out)
    for r in case.regions:
        changed = float((before[0][r.mask] != now[0][r.mask]).mean())
        if r.phi:
            assert changed == 1.0, r.kind
        elif r.kind != "label":
            assert changed == 0.0, r.text
    assert (tmp_path / report["preview"]).is_file()


def test_verification_fails_closed_when_phi_stays_readable(case: synth.Case) -> None:
    # an engine that keeps "seeing" the text after masking: PHI still readable
    engine = FakeEngine(texts(case), residual=case.identity.family, frame_shape=(case.rows, case.columns))
    # screen=False: the fake "sees" text on masked (flat) pixels, which the pixel pre-check would
    # rightly skip; here the decision logic after a residual is under test
    stage = OCRPixelStage(ocr="on", allowlist=load_allowlist(), engine=engine, screen=False)
    out = run(stage, case.path)
    assert out.failed is not None and "still readable" in out.failed
    assert out.pixel_data is None and not out.verified
    assert out.report["verification"] == "failed"
    assert case.identity.family not in out.failed


def test_unverifiable_text_keeps_burned_in_annotation_yes(case: synth.Case) -> None:
    # the last verification round still finds text by a mask that it cannot classify (read with
    # confidence 0.1): the masks are applied and written, but the file is not claimed clean
    # (never a false NO). One round, so that round is the last.
    engine = FakeEngine(texts(case), residual="#~%", frame_shape=(case.rows, case.columns))
    stage = OCRPixelStage(
        ocr="on", allowlist=load_allowlist(), engine=_LowResidual(engine), max_rounds=1, screen=False
    )
    out = run(stage, case.path)
    assert out.failed is None
    assert out.report["verification"] == "needs_review"
    assert not out.verified
    assert out.elements.get("BurnedInAnnotation") == "YES"
    assert out.pixel_data is not None  # the PHI masks are still applied


class _LowResidual(FakeEngine):
    """The fake engine, reading its residual with a confidence too low to classify it."""

    def __init__(self, inner: FakeEngine) -> None:
        self.__dict__.update(inner.__dict__)

    def recognize(self, crops):  # type: ignore[no-untyped-def]
        out = super().recognize(crops)
        from privguard.pixels.ocr import Reading

        return [Reading(r.text, 0.1) if r.text == self.residual else r for r in out]


def test_no_text_means_nothing_changes(tmp_path: Path) -> None:
    neg = synth.build("neg", tmp_path, modality="CT", rows=128, cols=128, seed=2, no_text=True)
    stage = OCRPixelStage(ocr="on", allowlist=load_allowlist(), engine=FakeEngine({}))
    out = run(stage, neg.path)
    assert out.pixel_data is None and out.verified
    assert out.report["verification"] == "no-text"
    assert out.report["output"] == "unchanged"


def test_all_text_mode(case: synth.Case) -> None:
    stage = OCRPixelStage(
        ocr="on", redact="all-text", allowlist=load_allowlist(), engine=FakeEngine(texts(case))
    )
    out = run(stage, case.path)
    assert out.report["boxes_kept"] == 0
    assert out.report["boxes_redacted"] >= len([r for r in case.regions if r.kind != "label"])


def test_known_device_regions_are_masked_whatever_ocr_says(tmp_path: Path) -> None:
    neg = synth.build("dose", tmp_path, modality="CT", rows=512, cols=512, seed=3, no_text=True)
    import pydicom

    ds = pydicom.dcmread(neg.path)
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    ds.ManufacturerModelName = "LightSpeed VCT"
    ds.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    ds.SeriesDescription = "Dose Report"
    ds.save_as(neg.path)
    stage = OCRPixelStage(ocr="auto", allowlist=load_allowlist(), engine=FakeEngine({}))
    src = read_source(neg.path)
    assert stage.wants(src)
    out = stage.process_many([(src, PhiContext.from_dataset(src.ds))])[0]
    assert out.report["known_regions_masked"] >= 1
    before = load(neg.path).frames
    now = after(neg.path, out)
    changed = before != now
    assert changed[0, :121, :512].any()
    changed[0, :121, :512] = False
    assert not changed.any()


def test_undecodable_file_fails_that_file_only(case: synth.Case, tmp_path: Path) -> None:
    import pydicom

    bad = tmp_path / "video.dcm"
    ds = pydicom.dcmread(case.path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"  # MPEG-4: no decoder
    ds.save_as(bad)
    stage = OCRPixelStage(ocr="on", allowlist=load_allowlist(), engine=FakeEngine(texts(case)))
    srcs = [read_source(bad), read_source(case.path)]
    outs = stage.process_many([(s, PhiContext.from_dataset(s.ds)) for s in srcs])
    assert outs[0].failed is not None and "video" in outs[0].failed
    assert outs[1].failed is None


def test_build_stage_options() -> None:
    from privguard.deidentifier import PixelOptions
    from privguard.errors import ConfigError
    from privguard.header.profile import load_profile
    from privguard.pixels import build_stage

    prof = load_profile("basic")
    st = build_stage(prof, PixelOptions(ocr="on", device="cpu", redact="all-text"), engine=FakeEngine({}))
    assert (st.ocr, st.redact) == ("on", "all-text")
    with pytest.raises(ConfigError):
        build_stage(prof, PixelOptions(device="tpu"), engine=FakeEngine({}))
    off = build_stage(
        prof.model_copy(update={"pixels": prof.pixels.model_copy(update={"ocr": "off"})}),
        PixelOptions(),
        engine=FakeEngine({}),
    )
    assert off.ocr == "off"
