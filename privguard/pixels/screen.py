"""A cheap pixel screen in front of the text detector: can this frame hold text at all?

Burned-in text is drawn in thin strokes at one extreme of the display range, as glyphs
of a few to a few dozen pixels that stand in rows (or, turned, in columns). The screen
looks for exactly that, with a few milliseconds of OpenCV per frame:

1. white and black top-hats (a 3x3 .. 11x11 structuring element, by frame size) keep the
   bright and dark structures thinner than the element: strokes, not organs;
2. the strong ones (top-hat >= :data:`STROKE_CONTRAST` grey levels) are binarised and
   labelled; a component is *glyph-like* when its height is plausible for text, it is
   not much wider than a short word and fills a glyph-like share of its box;
3. the frame *may hold text* when two glyph-like components of similar height stand
   next to each other along a row or a column (a word of two letters or more, upright or
   turned), or when one component is a word the top-hat merged into one blob.

It only drops frames: a frame that passes goes to CRAFT as before. It over-passes on
purpose (bone rims, catheters, speckle can look like a pair of letters); the recall on
frames that hold text is measured in ``benchmarks/ocr_throughput.py --screen`` and
``tests/pixels/test_px_screen.py`` and must stay 100%.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Least top-hat response (8-bit grey levels) of a text stroke against its surroundings.
STROKE_CONTRAST = 40
#: Text heights (pixels) the screen looks for; larger text is handled by the detector's
#: downscaled pass and shows up here as several strokes anyway.
MIN_GLYPH = 4
MAX_GLYPH = 80


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """Whether a frame may hold text, and how many glyph-like components were seen."""

    may_hold_text: bool
    glyphs: int


def kernel_size(rows: int, cols: int) -> int:
    """The top-hat element's side for a frame of this size (odd, 3 to 11 pixels)."""
    return int(np.clip(min(rows, cols) // 48, 3, 11)) | 1


def glyph_components(gray: np.ndarray, ksize: int | None = None) -> np.ndarray:
    """Glyph-like components of an 8-bit frame (or of a crop of one: then pass the frame's
    ``ksize``, so thick strokes are not lost to a small crop's element): rows of (x, y, w, h)."""
    side = ksize if ksize is not None else kernel_size(*gray.shape[:2])
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))
    found = []
    for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):
        hat = cv2.morphologyEx(gray, op, k)
        binary = (hat >= STROKE_CONTRAST).astype(np.uint8)
        if not binary.any():
            continue
        n, _labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        if n <= 1:
            continue
        st = stats[1:]
        x, y, w, h, area = st[:, 0], st[:, 1], st[:, 2], st[:, 3], st[:, 4]
        rows, cols = gray.shape[:2]
        # a strip along the frame's edge (the body's outline cut by the border), not a word
        along_edge = (((y == 0) | (y + h >= rows)) & (w >= 2 * h)) | (
            ((x == 0) | (x + w >= cols)) & (h >= 2 * w)
        )
        along = np.maximum(w, h)
        across = np.minimum(w, h)
        fill = area / np.maximum(1, w * h)
        ok = (
            (across >= 2)
            & (along >= MIN_GLYPH)
            & (across <= MAX_GLYPH)
            & (along <= 14 * np.maximum(across, MIN_GLYPH))
            & (fill >= 0.08)
            & (fill <= 0.95)
            & ~along_edge
        )
        found.append(st[ok, :4])
    if not found:
        return np.zeros((0, 4), dtype=np.int32)
    return np.concatenate(found).astype(np.int32)


def screen(gray: np.ndarray) -> ScreenResult:
    """Screen one 8-bit frame (rows, columns): False only when it cannot hold legible text."""
    comps = glyph_components(gray)
    n = len(comps)
    if n == 0:
        return ScreenResult(False, 0)
    x, y, w, h = comps[:, 0], comps[:, 1], comps[:, 2], comps[:, 3]
    # one blob a word long (letters merged by the top-hat): wider than tall, text-high
    word_like = (w >= 2.5 * h) & (h >= MIN_GLYPH + 2) & (h <= MAX_GLYPH)
    tall_word = (h >= 2.5 * w) & (w >= MIN_GLYPH + 2) & (w <= MAX_GLYPH)
    if bool((word_like | tall_word).any()):
        return ScreenResult(True, n)
    if n < 2:
        return ScreenResult(False, n)
    # pairs of neighbours: sort by row, compare each with the next few in either order
    order = np.lexsort((x, y))
    xs, ys, ws, hs = x[order], y[order], w[order], h[order]
    for i in range(n):
        for j in range(i + 1, min(n, i + 40)):
            if ys[j] > ys[i] + hs[i] + 2 * max(hs[i], ws[i]):
                break
            if _neighbours(xs[i], ys[i], ws[i], hs[i], xs[j], ys[j], ws[j], hs[j]):
                return ScreenResult(True, n)
    # columns (turned text): sort by x instead
    order = np.lexsort((y, x))
    xs, ys, ws, hs = x[order], y[order], w[order], h[order]
    for i in range(n):
        for j in range(i + 1, min(n, i + 40)):
            if xs[j] > xs[i] + ws[i] + 2 * max(hs[i], ws[i]):
                break
            if _neighbours(ys[i], xs[i], hs[i], ws[i], ys[j], xs[j], hs[j], ws[j]):
                return ScreenResult(True, n)
    return ScreenResult(False, n)


def _neighbours(x0: int, y0: int, w0: int, h0: int, x1: int, y1: int, w1: int, h1: int) -> bool:
    """Two glyphs of one line: similar heights, sharing rows, a letter gap or two apart."""
    if not (0.4 <= h0 / max(1, h1) <= 2.5):
        return False
    shared = min(y0 + h0, y1 + h1) - max(y0, y1)
    if shared < 0.5 * min(h0, h1):
        return False
    gap = max(x0, x1) - min(x0 + w0, x1 + w1)
    return gap <= 1.5 * max(h0, h1)
