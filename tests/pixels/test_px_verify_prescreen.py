"""The verification pre-check: which mask neighbourhoods still hold something glyph-like."""

from __future__ import annotations

import cv2
import numpy as np

from privguard.pixels.boxes import Box
from privguard.pixels.verify import _strokes


def line(text: str, x: int) -> np.ndarray:
    g = np.zeros((60, 240), dtype=np.uint8)
    cv2.putText(g, text, (x, 35), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_AA)
    return g


def glyph_boxes(g: np.ndarray) -> list[Box]:
    _n, _, stats, _ = cv2.connectedComponentsWithStats((g > 60).astype(np.uint8))
    return [Box(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:]]


def test_a_glyph_left_by_a_mask_is_seen() -> None:
    g = line("1", 60)
    g[18:40, 72:160] = 0  # the mask over the rest of the date, right of the "1"
    mask = Box(72, 18, 160, 40)
    assert _strokes(g, Box(0, 0, 240, 60), [mask], [])


def test_glyphs_inside_the_masks_and_kept_words_are_explained() -> None:
    g = line("TIS 0.4", 10)
    boxes = glyph_boxes(g)
    mid = (boxes[0].x0 + boxes[-1].x1) // 2
    left = Box(boxes[0].x0, 10, mid, 45)
    right = Box(mid, 10, boxes[-1].x1, 45)
    mask = Box(right.x1 + 2, 18, right.x1 + 60, 40)
    region = Box(0, 0, 240, 60)
    # the kept line as two words: a letter blob spanning both is inside them together
    assert not _strokes(g, region, [mask], [left, right])
    # only its left word kept: the right word's glyphs by the mask are not explained
    assert _strokes(g, region, [mask], [left])
