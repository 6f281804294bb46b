"""The verification pre-check: which mask neighbourhoods still hold something glyph-like."""

from __future__ import annotations

import cv2
import numpy as np

from privguard.pixels.boxes import Box, bounding
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


def test_a_stroke_without_character_score_before_masking_is_not_text() -> None:
    """With the main pass's score map, a stroke by a mask that the detector gave no character
    score before masking (speckle, an edge) is not looked at again; one it scored is."""
    g = line("1", 60)
    g[18:40, 72:160] = 0
    mask = Box(72, 18, 160, 40)
    region = Box(0, 0, 240, 60)
    flat = np.zeros(g.shape, dtype=np.float16)
    assert not _strokes(g, region, [mask], [], flat)
    scored = flat.copy()
    scored[20:38, 60:72] = 0.6  # what CRAFT gives a letter (every text glyph measured >= 0.37)
    assert _strokes(g, region, [mask], [], scored)
    faint = flat.copy()
    faint[20:38, 60:72] = 0.05
    assert not _strokes(g, region, [mask], [], faint)


def test_a_kept_words_letter_reaching_past_its_box_is_explained() -> None:
    """A component at least half inside a kept word is that word's (check() skips a word half
    inside a kept word); less than half inside, it is still looked at."""
    g = line("MI", 10)
    word = bounding(glyph_boxes(g))
    assert word is not None
    mask = Box(word.x1 + 4, 18, word.x1 + 60, 40)
    region = Box(0, 0, 240, 60)
    # the kept box misses the letters' top third (a detector box cut short)
    short = Box(word.x0, word.y0 + word.height // 3, word.x1, word.y1)
    assert not _strokes(g, region, [mask], [short])
    # a kept box holding less than half of the letters does not explain them
    sliver = Box(word.x0, word.y1 - word.height // 3, word.x1, word.y1)
    assert _strokes(g, region, [mask], [sliver])


def test_scoring_counts_letters_a_mask_filled_with_their_own_value() -> None:
    """The benchmark's scorer: a dark fill over dark letters on a light label leaves the letters'
    pixels as they were, inside a now uniform patch; they are hidden. Letters left as they were
    beside a mask are not."""
    import scoring

    before = np.full((1, 40, 120), 240, dtype=np.uint8)
    before[0, 15:25, 10:14] = 5  # a dark letter on the light label
    before[0, 15:25, 100:104] = 5  # another, away from the mask
    after = before.copy()
    after[0, 12:28, 6:40] = 5  # the mask, filled dark
    hidden = scoring._hidden(after[0], scoring._changed(before, after)[0])
    assert hidden[15:25, 10:14].all()
    assert not hidden[15:25, 100:104].any()
