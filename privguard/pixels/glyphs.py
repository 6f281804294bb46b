"""Text pixels inside a detected box: complete the glyphs, find word gaps.

Detector boxes are approximate: on small, non-anti-aliased fonts CRAFT can
stop a few pixels short of the last letters (``KAUFMAN SCOTT`` boxed as
``KAUFMAN SCO``), and a box from a downscaled pass is coarse. A mask drawn
from such a box leaves readable strokes, which is a leak. So every box is
refined from the pixels themselves:

1. Otsu threshold inside the box; the text is the class that the box's
   surroundings mostly lack (so bright-on-dark and dark-on-bright both work);
2. connected components of text pixels that overlap the box are seeds;
3. components on the same text line (vertical overlap) within a character
   gap of the set are added, repeatedly, so a cut-off word is completed.

The result carries the text's polarity (for the mask fill) and the
character components, which give word gaps for splitting a line into words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from privguard.pixels.boxes import Box, bounding

#: Minimum difference (8-bit) between the text and background classes.
MIN_CONTRAST = 28
#: Largest gap between characters of one word, as a share of the text band's height
#: (a word space is about 0.3 em, i.e. 0.4 of a capital letter's height).
GAP = 0.3
#: Least detector character score (0..1) a component needs to count as a glyph.
GLYPH_SCORE = 0.15
#: Character score below which pixels are too far from any character to be part of a glyph.
NEAR_CHARS = 0.04
#: The median step between neighbouring mid-grey pixels over which the background counts as
#: speckle or texture (grey levels, 8-bit), not as flat margins or smooth organs.
TEXTURE_STEP = 8


@dataclass(frozen=True)
class Glyphs:
    """Text pixels found for one detected box."""

    box: Box
    """Tight box around the text pixels (frame coordinates)."""
    components: tuple[Box, ...]
    """Character-level connected components, left to right."""
    bright: bool
    """True when the text is brighter than its background."""
    band: int
    """Height of the text band in pixels."""
    mask: np.ndarray = field(repr=False, compare=False)
    """The text pixels inside ``box`` (bool, box-sized)."""

    def mask_of(self, box: Box) -> np.ndarray:
        """The text pixels inside ``box`` (a part of this glyph box), box-sized."""
        out = np.zeros((box.height, box.width), dtype=bool)
        inter = box.intersect(self.box)
        if not inter.empty:
            out[inter.y0 - box.y0 : inter.y1 - box.y0, inter.x0 - box.x0 : inter.x1 - box.x0] = self.mask[
                inter.y0 - self.box.y0 : inter.y1 - self.box.y0,
                inter.x0 - self.box.x0 : inter.x1 - self.box.x0,
            ]
        return out


def _otsu(values: np.ndarray) -> tuple[float, float, float]:
    """Otsu threshold of uint8 values, with the mean of each class."""
    flat = values.reshape(-1, 1)
    t, _ = cv2.threshold(flat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    lo = values[values <= t]
    hi = values[values > t]
    return float(t), float(lo.mean()) if lo.size else float(t), float(hi.mean()) if hi.size else float(t)


def refine(gray: np.ndarray, box: Box, score: np.ndarray | None = None) -> Glyphs | None:
    """Complete the glyphs of a detected box from the text pixels around it.

    The search stays on the box's text line: components may extend a quarter of
    the box height above or below it and at most ``max(1.5 h, w / 4)`` to either
    side, must lie on the line (half their height inside the band), within a
    character gap (:data:`GAP`) of the glyphs already taken, and have about the
    text's grey level. When the detector's character score map is given, a
    component must also carry some character score (:data:`GLYPH_SCORE`): that
    keeps background texture (ultrasound speckle, anatomy) out, while the weak
    score of letters the detector's box left out still counts.

    Parameters
    ----------
    gray
        The frame's 8-bit rendering.
    box
        The detector's box (frame coordinates).
    score
        The detector's character (region) score for the frame, frame-sized, or None.

    Returns
    -------
    Glyphs or None
        None when the box has too little contrast to separate text from background.
    """
    rows, cols = gray.shape[:2]
    box = box.clip(cols, rows)
    if box.empty or box.width < 2 or box.height < 3:
        return None
    core = gray[box.y0 : box.y1, box.x0 : box.x1]
    t, lo_mean, hi_mean = _otsu(core)
    if hi_mean - lo_mean < MIN_CONTRAST:
        return None
    h = box.height
    dy = max(2, h // 4)
    side = max(int(1.5 * h), box.width // 4)
    region = Box(box.x0 - side, box.y0 - dy, box.x1 + side, box.y1 + dy).clip(cols, rows)
    crop = gray[region.y0 : region.y1, region.x0 : region.x1]
    ring = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    core_bright = float((core > t).mean())
    ring_bright = float((ring > t).mean()) if ring.size else 0.5
    bright = ring_bright < 0.5 if abs(ring_bright - 0.5) > 0.1 else core_bright < 0.5
    # the box's own edge, when nearly all of one class, is the background right around the text:
    # dark letters on a light label plate (inverse video) sit in a dark frame, so the outer ring
    # alone would take the plate for the text
    edge = np.concatenate([core[0], core[-1], core[:, 0], core[:, -1]])
    edge_bright = float((edge > t).mean())
    if edge_bright >= 0.85 and bright:
        bright = False
    bright, t = _letter_polarity(gray, box, t, bright)
    text = (crop > t) if bright else (crop <= t)
    sc: np.ndarray | None = None
    if score is not None:
        sc = score[region.y0 : region.y1, region.x0 : region.x1].astype(np.float32)
        # text-class pixels far from any character blob (anatomy of the text's grey level
        # touching a letter) are not glyph pixels
        near_chars = cv2.dilate((sc >= NEAR_CHARS).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        text &= near_chars
    n, labels, stats, _ = cv2.connectedComponentsWithStats(text.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    sums = np.bincount(labels.ravel(), weights=crop.ravel().astype(np.float64), minlength=n)
    means = sums / np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    peaks: np.ndarray | None = None
    if sc is not None:
        peaks = np.zeros(n, dtype=np.float32)
        np.maximum.at(peaks, labels.ravel().astype(np.intp), sc.ravel())
    comps: list[tuple[Box, float, int]] = []
    for i in range(1, n):
        x, y, w, hh, _area = (int(v) for v in stats[i])
        c = Box(x, y, x + w, y + hh).shift(region.x0, region.y0)
        # cut by the search region's top or bottom (unless that is the image edge): not on this line
        if (c.y0 <= region.y0 and region.y0 > 0) or (c.y1 >= region.y1 and region.y1 < rows):
            continue
        if peaks is not None and peaks[i] < GLYPH_SCORE:
            continue
        comps.append((c, float(means[i]), i))
    chosen = _grow(comps, box, lo_mean if bright else hi_mean)
    if not chosen:
        return None
    tight = _band(c for c, _ in chosen)
    ids = np.zeros(n, dtype=bool)
    ids[[i for _, i in chosen]] = True
    full = ids[labels]
    mask = full[tight.y0 - region.y0 : tight.y1 - region.y0, tight.x0 - region.x0 : tight.x1 - region.x0]
    boxes = tuple(sorted((c for c, _ in chosen), key=lambda b: (b.x0, b.y0)))
    return Glyphs(tight, boxes, bright, max(1, tight.height), np.ascontiguousarray(mask))


def _letter_polarity(gray: np.ndarray, box: Box, t: float, bright: bool) -> tuple[bool, float]:
    """The text's polarity told by shape where the grey levels around the box mislead: text
    over two backgrounds (a date running off the black border onto an organ lighter than the
    threshold) makes the surroundings look like the text's class. Around the box (padded by a
    quarter of its height), the pixels well beyond the threshold on each side are cut into
    regions; the side whose regions are shaped like letters (a third to one and a half text
    heights tall, at most one and a half wide, clear of the padded edge, not a letter's hole) at
    least three times as often as the other side's, and at least twice, is the text's. Where
    that turns the polarity, the text's class is cut at that side's level (the threshold split
    the darker background from the lighter one, letters and all), so the lighter background
    stays out of the glyphs. Over speckle nothing is turned."""
    rows, cols = gray.shape[:2]
    h = box.height
    win = box.pad(max(2, h // 4)).clip(cols, rows)
    crop = gray[win.y0 : win.y1, win.x0 : win.x1].astype(np.int16)
    if crop.size == 0:
        return bright, t
    hi_cut = t + 0.5 * (float(crop.max()) - t)
    lo_cut = t - 0.5 * (t - float(crop.min()))
    light, dark = crop > hi_cut, crop < lo_cut
    # mid-grey pixels away from both sides' pixels (not the letters' anti-aliased edges)
    k = np.ones((3, 3), dtype=np.uint8)
    mid = cv2.dilate((light | dark).astype(np.uint8), k) == 0
    both = mid[:, 1:] & mid[:, :-1]
    steps = np.abs(np.diff(crop, axis=1))[both]
    if steps.size and float(np.median(steps)) > TEXTURE_STEP:
        return bright, t  # speckle: its grains are shaped like letters as often as the text is
    # the window's sides that are the image's border: letters cut by it still count
    border = (win.x0 == 0, win.y0 == 0, win.x1 == cols, win.y1 == rows)
    n_light = _letter_count(light, dark, h, border)
    n_dark = _letter_count(dark, light, h, border)
    if not bright and n_light >= 2 and n_light >= 3 * n_dark:
        return True, hi_cut
    if bright and n_dark >= 2 and n_dark >= 3 * n_light:
        return False, lo_cut
    return bright, t


def _letter_count(
    side: np.ndarray, other: np.ndarray, h: int, border: tuple[bool, bool, bool, bool] = (False,) * 4
) -> int:
    """Regions of ``side`` shaped like letters of a line ``h`` tall (see :func:`_letter_polarity`);
    ``border``: which of the window's sides (left, top, right, bottom) is the image's border,
    where a region may end (a line of text at the image's very edge)."""
    rows, cols = side.shape
    n, _, stats, _ = cv2.connectedComponentsWithStats(side.astype(np.uint8), connectivity=8)
    m, _, ostats, _ = cv2.connectedComponentsWithStats(other.astype(np.uint8), connectivity=8)
    holders = [
        (int(x), int(y), int(x + w), int(y + hh))
        for x, y, w, hh, _a in ostats[1:m]
        if hh <= 1.5 * h and w <= 1.5 * h
    ]
    count = 0
    for x, y, w, hh, _a in stats[1:n]:
        x, y, w, hh = int(x), int(y), int(w), int(hh)
        left, top, right, bottom = border
        if (
            (x == 0 and not left)
            or (y == 0 and not top)
            or (x + w >= cols and not right)
            or (y + hh >= rows and not bottom)
        ):
            continue
        if not max(3, h / 3) <= hh <= 1.5 * h or w > 1.5 * h:
            continue
        if any(x0 <= x and y0 <= y and x + w <= x1 and y + hh <= y1 for x0, y0, x1, y1 in holders):
            continue  # a hole in a letter of the other side
        count += 1
    return count


def _band(comps: Iterable[Box]) -> Box:
    """The components' bounding box, without the rows that only over-tall components reach.

    Letters of a line differ in height by at most about 1.5x (x-height against ascenders
    and descenders); a component taller than 1.6 times the median (background texture
    touching a letter) may not stretch the text's box more than 15% of that median beyond
    the band of the ordinary letters.
    """
    boxes = list(comps)
    box = bounding(boxes)
    assert box is not None
    if len(boxes) < 3:
        return box
    heights = sorted(b.height for b in boxes)
    median = heights[len(heights) // 2]
    normal = bounding(b for b in boxes if b.height <= 1.6 * median)
    if normal is None:
        return box
    reach = max(1, round(0.15 * median))
    return Box(box.x0, max(box.y0, normal.y0 - reach), box.x1, min(box.y1, normal.y1 + reach))


def _grow(comps: list[tuple[Box, float, int]], box: Box, background: float) -> list[tuple[Box, int]]:
    """Seeds inside ``box``, then same-line neighbours of the text's grey level, until stable."""
    h = box.height
    seeds = [(c, m, i) for c, m, i in comps if c.overlap(box) >= 0.5 * c.area and c.height <= 1.3 * h + 2]
    if not seeds:
        return []
    weights = np.array([c.area for c, _, _ in seeds], dtype=np.float64)
    level = float(np.average([m for _, m, _ in seeds], weights=weights))
    contrast = abs(level - background)
    chosen = [(c, i) for c, _, i in seeds]
    taken = {i for _, i in chosen}
    rest = [(c, m, i) for c, m, i in comps if i not in taken]
    changed = True
    while changed:
        changed = False
        band = bounding(c for c, _ in chosen)
        assert band is not None
        gap_limit = max(2, int(GAP * band.height))
        keep = []
        for c, m, i in rest:
            shared = max(0, min(c.y1, band.y1) - max(c.y0, band.y0))
            fits = (
                c.height <= 1.3 * band.height + 2
                and c.width <= 2 * band.height + 4
                and shared >= 0.5 * c.height
                and abs(m - level) <= 0.4 * contrast + 8
            )
            if fits and any(c.gap(s)[0] <= gap_limit and c.vertical_overlap(s) > 0 for s, _ in chosen):
                chosen.append((c, i))
                changed = True
            else:
                keep.append((c, m, i))
        rest = keep
    return chosen


def clusters(glyphs: Glyphs) -> list[tuple[Box, int]]:
    """Group components that overlap horizontally into character columns, with the gap before each."""
    cols: list[Box] = []
    for c in glyphs.components:
        if cols and c.x0 <= cols[-1].x1:
            cols[-1] = cols[-1].union(c)
        else:
            cols.append(c)
    out = []
    prev: Box | None = None
    for c in cols:
        out.append((c, 0 if prev is None else c.x0 - prev.x1))
        prev = c
    return out


def split_words(glyphs: Glyphs, tokens: list[str], span: Box | None = None) -> list[Box] | None:
    """Split a text line into one box per token, at its ``len(tokens) - 1`` widest pixel gaps.

    The split is accepted only if those gaps are clear word gaps and each part's width
    fits its token's length; the parts then tile ``span`` (the segment's box) without
    holes, meeting in the middle of each gap. Returns None when the split is not
    supported (the segment then stays one unit).
    """
    count = len(tokens)
    span = span or glyphs.box
    if count <= 1:
        return [span]
    cols = clusters(glyphs)
    if len(cols) < count:
        return None
    gaps = sorted(((g, i) for i, (_, g) in enumerate(cols) if i > 0), reverse=True)
    cut = gaps[: count - 1]
    smallest_cut = min(g for g, _ in cut)
    next_gap = gaps[count - 1][0] if len(gaps) >= count else 0
    if smallest_cut < max(2, 0.22 * glyphs.band) or smallest_cut < 1.25 * next_gap:
        return None
    cut_at = sorted(i for _, i in cut)
    edges = [span.x0]
    for i in cut_at:
        edges.append((cols[i - 1][0].x1 + cols[i][0].x0) // 2)
    edges.append(span.x1)
    chars = sum(len(t) for t in tokens)
    per_char = (span.x1 - span.x0) / max(1, chars)
    words: list[Box] = []
    for k, tok in enumerate(tokens):
        x0, x1 = edges[k], edges[k + 1]
        expected = per_char * len(tok)
        if x1 - x0 < 0.4 * expected - 2 or x1 - x0 > 2.5 * expected + 2 * glyphs.band:
            return None
        words.append(Box(x0, span.y0, x1, span.y1))
    return words
