"""Glyph refinement, word splitting and classical text candidates (image processing, no OCR)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import synth

from privguard.pixels.boxes import Box
from privguard.pixels.candidates import candidate_regions, text_candidates
from privguard.pixels.decode import load
from privguard.pixels.glyphs import refine, split_words
from privguard.pixels.render import render


def canvas(text: str, *, bright: bool = True, scale: float = 0.5, w: int = 300, h: int = 60) -> np.ndarray:
    img = np.full((h, w), 20 if bright else 230, dtype=np.uint8)
    cv2.putText(img, text, (10, 35), cv2.FONT_HERSHEY_SIMPLEX, scale, 250 if bright else 10, 1, cv2.LINE_8)
    return img


def text_extent(img: np.ndarray, bright: bool = True) -> Box:
    ys, xs = np.nonzero(img > 128) if bright else np.nonzero(img < 128)
    return Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def test_refine_completes_a_box_cut_short() -> None:
    img = canvas("KAUFMAN SCOTT")
    full = text_extent(img)
    cut = Box(full.x0, full.y0 - 1, full.x1 - 12, full.y1 + 1)  # the detector stopped before "TT"
    g = refine(img, cut)
    assert g is not None and g.bright
    assert g.box.x1 >= full.x1
    assert g.mask.any()


def test_refine_dark_text_and_low_contrast() -> None:
    img = canvas("DOB 1976", bright=False)
    full = text_extent(img, bright=False)
    g = refine(img, full.pad(1))
    assert g is not None and not g.bright
    flat = np.full((40, 100), 128, dtype=np.uint8)
    assert refine(flat, Box(10, 10, 60, 30)) is None


def test_refine_ignores_texture_outside_the_character_scores() -> None:
    rng = np.random.default_rng(1)
    img = canvas("SMITH", w=200)
    noise = rng.integers(0, 2, size=img.shape).astype(bool) & (rng.random(img.shape) < 0.3)
    img[noise] = 250
    full = text_extent(canvas("SMITH", w=200))
    score = np.zeros(img.shape, dtype=np.float16)
    score[full.y0 : full.y1, full.x0 : full.x1] = 0.8
    g = refine(img, full.pad(2), score)
    assert g is not None
    assert full.pad(3).contains(g.box)


def test_split_words_only_at_clear_gaps() -> None:
    img = canvas("DOE     JOHN")
    full = text_extent(img)
    g = refine(img, full.pad(1))
    assert g is not None
    parts = split_words(g, ["DOE", "JOHN"], g.box)
    assert parts is not None and len(parts) == 2
    assert parts[0].x1 <= parts[1].x0 and parts[0].x0 == g.box.x0 and parts[1].x1 == g.box.x1
    assert split_words(g, ["D", "OE", "JOHN"], g.box) is None  # not supported by the pixels


def test_candidates_find_text_and_nothing_on_a_smooth_image() -> None:
    img = canvas("PATIENT 12345", w=400)
    cands = text_candidates(img)
    assert cands and any(c.overlap(text_extent(img)) for c in cands)
    yy, xx = np.mgrid[0:200, 0:300]
    smooth = (100 + 50 * np.sin(xx / 40.0) * np.cos(yy / 50.0)).astype(np.uint8)
    assert text_candidates(smooth) == []
    regions = candidate_regions(cands, 400, 60)
    assert all(r.x1 <= 400 and r.y1 <= 60 for r in regions)


def test_dark_text_on_a_light_label_in_a_dark_frame() -> None:
    """Inverse video: dark letters on a light plate, the plate on a dark image. The box's own
    edge (the plate) is the text's background, not the dark surroundings beyond it."""
    img = np.full((80, 320), 25, dtype=np.uint8)
    img[20:52, 6:236] = 245  # the label plate
    cv2.putText(img, "SZOKE FRANCOIS", (10, 44), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 10, 2, cv2.LINE_AA)
    g = refine(img, Box(8, 22, 234, 50))
    assert g is not None and not g.bright
    ys = np.nonzero(img[20:52, 6:236] < 128)[0]
    assert g.box.y1 - g.box.y0 <= (ys.max() - ys.min()) + 6  # the letters, not the plate


def test_bright_text_off_a_black_margin_onto_a_lighter_organ_is_bright() -> None:
    """A date whose line starts on the black border and runs onto a smooth organ (independent set
    seed 28): Otsu's cut splits black from organ-and-letters, and most of the box and its
    surroundings are on the light side, so grey levels alone call the text dark (the mask was
    filled in the letters' own white). The letters' shape tells: the light side's regions are
    letters, the dark side's are margin and holes. The glyphs are the letters, not the organ."""
    img = np.zeros((60, 300), dtype=np.uint8)
    yy, xx = np.mgrid[0:60, 0:300]
    organ = (yy > 30) | (xx > 70)
    img[organ] = np.clip(90 + 0.25 * xx + 0.5 * yy, 0, 150)[organ].astype(np.uint8)
    cv2.putText(img, "2014-04-06", (10, 35), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_AA)
    ys, xs = np.nonzero(img > 200)
    box = Box(int(xs.min()), int(ys.min()) + 1, int(xs.max()) + 1, int(ys.max()))
    g = refine(img, box)
    assert g is not None and g.bright
    assert g.box.x0 <= xs.min() and g.box.x1 >= xs.max() + 1
    assert g.box.y0 >= ys.min() - 2 and g.box.y1 <= ys.max() + 3  # the letters' rows, not the organ


def test_speckle_does_not_turn_the_polarity(tmp_path: Path) -> None:
    """Over ultrasound speckle, grains of either side are shaped like letters as often as the
    text is: the grey-level decision stands. Frames 3 and 6 of the synthetic cine loop, a name
    over the fan (the shape test alone called it dark there, and the mask spread over 1% of
    the frame)."""
    case = synth.build(
        out_dir=tmp_path, name="us_cine_rle", modality="US", rows=240, cols=320, frames=8, seed=4,
        transient=True, encoding="rle",
    )  # fmt: skip
    gray = render(load(case.path)).gray
    for frame in (3, 6):
        g = refine(gray[frame], Box.from_xywh(168, 128, 82, 13))
        assert g is not None and g.bright, frame


def test_dark_text_on_a_plate_at_the_image_s_corner(tmp_path: Path) -> None:
    """A label plate in the image's bottom-left corner, its dark letters running to the last row
    (MONOCHROME1, adversarial seed 53, ``hard_12``): letters cut by the image's border still count
    as letters, and the letters' anti-aliased edges are no texture. The text is dark, so the mask
    is filled light and every letter pixel changes (it was filled in the letters' own value)."""
    case = synth.build(
        out_dir=tmp_path, name="hard_12", modality="CT", rows=320, cols=384, seed=53012,
        text_height=(11, 16), phi_items=3, nonphi_items=3, color_text=False, hard=True,
    )  # fmt: skip
    gray = render(load(case.path)).gray[0]
    region = next(r for r in case.regions if r.text == "4092323331")
    assert region.top + region.height == 320  # on the image's last row
    g = refine(gray, Box(0, 304, 140, 320))
    assert g is not None and not g.bright
