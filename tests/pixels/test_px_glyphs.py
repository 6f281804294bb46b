"""Glyph refinement, word splitting and classical text candidates (image processing, no OCR)."""

from __future__ import annotations

import cv2
import numpy as np

from privguard.pixels.boxes import Box
from privguard.pixels.candidates import candidate_regions, text_candidates
from privguard.pixels.glyphs import refine, split_words


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
