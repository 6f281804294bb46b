"""The real TCIA Pseudo-PHI files (tests/data/pseudo-phi) through the whole pipeline.

Every PHI box redacted; 'Semi-Upright', 'Portable' and 'L' kept; the RGB PET/CT fusion
untouched (no false positives); the header-only file handled cleanly.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import scoring
from pxhelpers import PSEUDO_PHI, dciodvfy_errors, needs_dciodvfy, needs_ocr

from privguard.deidentifier import Deidentifier, PixelOptions
from privguard.models import FileResult
from privguard.pixels.decode import load
from privguard.pseudonym.keys import ProjectKey

pytestmark = [needs_ocr, pytest.mark.ocr]


@pytest.fixture(scope="module")
def pixel_key() -> ProjectKey:
    """A project key for the pipeline runs of this module."""
    return ProjectKey.generate()


FILES = ["2_ORIGINAL.dcm", "0_ORIGINAL_compressed.dcm", "RGB_ORIGINAL.dcm"]
GT = json.loads((PSEUDO_PHI / "ground_truth.json").read_text())["files"]


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, pixel_key: ProjectKey
) -> tuple[Path, dict[str, FileResult]]:
    out = tmp_path_factory.mktemp("pseudo")
    deid = Deidentifier(
        "basic", pixel_key, pixels=PixelOptions(ocr="auto", device="cpu", previews=out / "previews")
    )
    try:
        results = deid.files([PSEUDO_PHI / f for f in FILES], out / "out")
    finally:
        deid.close()
    return out, dict(zip(FILES, results, strict=True))


def test_files_are_unchanged_copies_of_the_shared_set() -> None:
    for name, meta in GT.items():
        assert hashlib.sha256((PSEUDO_PHI / name).read_bytes()).hexdigest() == meta["sha256"]


def truths(name: str) -> list[scoring.Truth]:
    return [
        scoring.Truth(r["text"], r["phi"], r["kind"], r["left"], r["top"], r["width"], r["height"], [0])
        for r in GT[name]["regions"]
    ]


@pytest.mark.parametrize("name", ["2_ORIGINAL.dcm", "0_ORIGINAL_compressed.dcm"])
def test_every_phi_box_redacted_and_markers_kept(run: tuple[Path, dict[str, FileResult]], name: str) -> None:
    out, results = run
    r = results[name]
    assert r.status == "ok" and r.output is not None
    before = load(PSEUDO_PHI / name).frames
    after = load(out / "out" / r.output).frames
    s = scoring.score(name, before, after, truths(name))
    for reg in s.regions:
        assert reg.ok, (reg.text, reg.changed)
    kept = {reg.text for reg in s.regions if not reg.phi}
    if name == "0_ORIGINAL_compressed.dcm":
        assert {"Semi-Upright", "Portable", "L", "L-1"} <= kept
    assert s.outside_share < 0.002
    assert r.pixels is not None and r.pixels["verification"] == "passed"


def test_rgb_fusion_is_untouched(run: tuple[Path, dict[str, FileResult]]) -> None:
    out, results = run
    r = results["RGB_ORIGINAL.dcm"]
    assert r.status == "ok" and r.output is not None and r.pixels is not None
    assert r.pixels["boxes_redacted"] == 0 and r.pixels["output"] == "unchanged"
    a = pydicom.dcmread(PSEUDO_PHI / "RGB_ORIGINAL.dcm").PixelData
    b = pydicom.dcmread(out / "out" / r.output).PixelData
    assert a == b


def test_cr_stays_rle_and_claims_clean_pixel_data(run: tuple[Path, dict[str, FileResult]]) -> None:
    out, results = run
    r = results["0_ORIGINAL_compressed.dcm"]
    assert r.output is not None
    ds = pydicom.dcmread(out / "out" / r.output)
    assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.5"
    assert ds.BurnedInAnnotation == "NO"
    assert "113101" in [c.CodeValue for c in ds.DeidentificationMethodCodeSequence]
    kept = {k["text"] for k in r.pixels["kept"]} if r.pixels else set()
    assert {"Semi-Upright", "Portable"} <= kept
    assert all("DAVIDSON" not in k.upper() for k in kept)


def test_header_only_file_is_handled(tmp_path: Path, pixel_key: ProjectKey) -> None:
    deid = Deidentifier("basic", pixel_key, pixels=PixelOptions(ocr="on", device="cpu"))
    try:
        r = deid.file(PSEUDO_PHI / "0_ORIGINAL_no_pixels.dcm", tmp_path)
    finally:
        deid.close()
    assert r.status == "ok" and r.pixels is None


def test_previews(run: tuple[Path, dict[str, FileResult]]) -> None:
    out, results = run
    for name in ("2_ORIGINAL.dcm", "0_ORIGINAL_compressed.dcm"):
        p = results[name].pixels
        assert p is not None and (out / "previews" / str(p["preview"])).is_file()
    import cv2

    img = cv2.imread(str(out / "previews" / str(results["2_ORIGINAL.dcm"].pixels["preview"])))  # type: ignore[index]
    assert img is not None and img.shape[1] > 2 * 394 - 10 and np.any(img[:, :, 2] > 200)


@needs_dciodvfy
def test_outputs_validate_no_worse_than_inputs(run: tuple[Path, dict[str, FileResult]]) -> None:
    out, results = run
    for name, r in results.items():
        assert r.output is not None
        new = dciodvfy_errors(out / "out" / r.output) - dciodvfy_errors(PSEUDO_PHI / name)
        assert not new, (name, new)
