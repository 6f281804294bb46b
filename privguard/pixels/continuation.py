"""Where a line of PHI goes on past what the detector found: flat strokes of the text's colour.

Burned-in text is written into the pixel data after acquisition, in one grey level: its strokes
are *flat* (a pixel of the text's exact level beside another one along the stroke), while the
image around them carries acquisition noise, where two equal neighbours at one given level are
rare. Where the text's colour is close to the background's (grey letters over a brightening
gradient: ``THADDEUS`` of ``DELACROIX^THADDEUS``, ``MEDICAL CENTER`` of a faint institution
line), the detector stops at the faint end and the contrast-based growth
(:func:`privguard.pixels.stage.extend_over_glyphs`) cannot take it, yet the letters stay readable.

* :func:`text_colour`: the level of a glyph box's flat pixels that forms the most letter-shaped
  regions (a black margin or an organ is one wide region; noise grains are short).
* :func:`continue_line` walks outward from a PHI run's glyph box along the rows its strokes lie
  on, a quarter of a text height at a time, and takes a step when those rows there hold more flat
  pixels of the text's colour than the rows above and below (more than either, :data:`RATIO`
  times the flatter, :data:`MIN_SHARE` at least, and a stroke's worth): a line of the same text
  going on. It stops after a phrase gap without strokes, at a kept word, at the image's edge, or
  after :data:`REACH` text heights.
* :func:`continue_rows` takes the rows of the letters that a box set a few pixels off them leaves
  out.

Over a flat background (a black margin, a label plate) the rows beside the line are as flat as
the line and nothing is taken there: the contrast-based growth and the stroke follower
(:mod:`privguard.pixels.follow`) handle that case.
"""

from __future__ import annotations

import cv2
import numpy as np

from privguard.pixels.boxes import Box

#: How far a line may be followed, in text heights (a long name or institution, 20 characters).
REACH = 16
#: The least share of a step's text rows that are flat pixels of the text's colour.
MIN_SHARE = 0.03
#: How many times the flatter of the rows above and below the text's rows must hold.
RATIO = 3.0
#: Steps without flat strokes (text heights) that end the line: a phrase gap.
GAP = 1.3


def _flat(a: np.ndarray) -> np.ndarray:
    """Pixels equal to one of their four neighbours at least (a stroke one pixel wide still has
    its run along the stroke; a noise grain rarely does)."""
    out = np.zeros(a.shape, dtype=bool)
    if a.shape[0] < 2 or a.shape[1] < 2:
        return out
    across = a[:, :-1] == a[:, 1:]
    down = a[:-1, :] == a[1:, :]
    out[:, :-1] |= across
    out[:, 1:] |= across
    out[:-1, :] |= down
    out[1:, :] |= down
    return out


def _letters(pixels: np.ndarray) -> int:
    """How many 8-connected regions of ``pixels`` are shaped like letters of a line as tall as
    the box: at least a third of its height tall and no wider than one and a half heights (a
    margin or an organ is one wide region; noise grains are short)."""
    h = pixels.shape[0]
    _n, _labels, found, _ = cv2.connectedComponentsWithStats(pixels.astype(np.uint8), connectivity=8)
    stats = np.asarray(found)[1:]
    keep = (stats[:, cv2.CC_STAT_HEIGHT] >= max(3, h / 3)) & (stats[:, cv2.CC_STAT_WIDTH] <= 1.5 * h)
    return int(np.count_nonzero(keep))


def text_colour(gray: np.ndarray, core: Box, bright: bool | None = None) -> int | None:
    """The grey level of the letters inside ``core``: of the most common levels of its flat
    pixels (brighter than the box's median for ``bright`` text, darker for dark text, either when
    unknown), the one whose flat pixels form the most letter-shaped regions (see :func:`_letters`),
    filling less than half of the box. None when no level forms two letters (one in a box
    narrower than two heights)."""
    rows, cols = gray.shape[:2]
    c = core.clip(cols, rows)
    if c.empty or c.height < 4:
        return None
    patch = gray[c.y0 : c.y1, c.x0 : c.x1]
    flat_in = _flat(patch)
    vals = patch[flat_in]
    if bright is not None:
        middle = np.median(patch)
        vals = vals[vals > middle] if bright else vals[vals < middle]
    if vals.size < max(8, 0.01 * patch.size):
        return None
    levels, counts = np.unique(vals, return_counts=True)
    best, best_letters = None, 0
    for k in np.argsort(counts)[::-1][:6]:
        level = int(levels[k])
        if counts[k] < max(6, 0.005 * patch.size) or counts[k] > 0.5 * patch.size:
            continue  # too few to tell, or more than letters fill of their box: a background
        n = _letters(flat_in & (patch == level))
        if n > best_letters:
            best, best_letters = level, n
    need = 1 if c.width < 2 * c.height else 2
    return best if best_letters >= need else None


def _colour(gray: np.ndarray, core: Box, bright: bool | None) -> int | None:
    """:func:`text_colour` on the reader's polarity, else on either (the reader's polarity can be
    wrong on faint text)."""
    level = text_colour(gray, core, bright)
    if level is None and bright is not None:
        level = text_colour(gray, core)
    return level


def _one_line(gray: np.ndarray, core: Box, level: int) -> Box | None:
    """The rows of ``core`` its flat strokes of ``level`` lie on, or None when they lie on two
    lines (rows without strokes between them: a detector box over more than one line, whose
    continuation would follow the other line's text)."""
    rows, cols = gray.shape[:2]
    c = core.clip(cols, rows)
    patch = gray[c.y0 : c.y1, c.x0 : c.x1]
    per_row = (_flat(patch) & (patch == level)).sum(axis=1)
    hit = np.flatnonzero(per_row >= 2)
    if hit.size == 0:
        return None
    if hit.size > 1 and int(np.diff(hit).max()) > 2:
        return None
    return Box(c.x0, c.y0 + int(hit[0]), c.x1, c.y0 + int(hit[-1]) + 1)


def continue_line(gray: np.ndarray, core: Box, kept: list[Box], bright: bool | None = None) -> Box:
    """``core`` (a PHI run's glyph box, text along the rows of ``gray``) grown along its rows over
    the flat strokes of its text's grey level that go on past it (see the module docstring)."""
    rows, cols = gray.shape[:2]
    h = core.height
    if h < 6 or core.width < 2:
        return core
    level = _colour(gray, core, bright)
    if level is None:
        return core
    line = _one_line(gray, core, level)
    if line is None:
        return core
    # the walk looks along the rows the strokes are on
    band_y0, band_y1 = line.y0, line.y1
    h = max(h if band_y1 - band_y0 < 6 else band_y1 - band_y0, 6)
    step = max(2, round(0.25 * h))
    gap_limit = max(1, round(GAP * h / step))
    margin = max(1, h // 4)
    above = (max(0, band_y0 - h), max(0, band_y0 - margin))
    below = (min(rows, band_y1 + margin), min(rows, band_y1 + h))

    def share(y0: int, y1: int, x0: int, x1: int) -> float | None:
        if y1 - y0 < 3 or x1 - x0 < 2:
            return None
        a = gray[y0:y1, max(0, x0 - 1) : min(cols, x1 + 1)]
        lo = 1 if x0 > 0 else 0
        f = (_flat(a) & (a == level))[:, lo : lo + x1 - x0]
        return float(f.mean())

    least = max(4, round(0.3 * h))  # a stroke crossing the step, not a pair of noise grains

    def strokes(x0: int, x1: int) -> bool:
        band = share(band_y0, band_y1, x0, x1)
        if band is None or band < MIN_SHARE or band * (band_y1 - band_y0) * (x1 - x0) < least:
            return False
        flanks = [s for s in (share(*above, x0, x1), share(*below, x0, x1)) if s is not None]
        # more than the rows on either side, well more than the flatter of them: a line of the
        # text going on, not a region of one grey (a black margin above an organ) beside it
        return not flanks or (band >= RATIO * min(flanks) + 0.01 and band > max(flanks))

    x0, x1 = core.x0, core.x1
    for direction in (-1, 1):
        end = core.x0 if direction < 0 else core.x1
        misses = 0
        x = end
        while abs(x - end) < REACH * h and misses <= gap_limit:
            a, b = (x - step, x) if direction < 0 else (x, x + step)
            if a < 0 or b > cols:
                break
            if any(kb.vertical_overlap(core) > 0 and kb.x0 < b and a < kb.x1 for kb in kept):
                break
            if strokes(a, b):
                misses = 0
                if direction < 0:
                    x0 = min(x0, a)
                else:
                    x1 = max(x1, b)
            else:
                misses += 1
            x = a if direction < 0 else b
    return Box(x0, core.y0, x1, core.y1)


#: How far the letters' rows may be followed past a glyph box, in text heights (a detector box
#: set a few pixels low or high on noise).
ROWS = 0.35


def continue_rows(gray: np.ndarray, core: Box, bright: bool | None = None) -> Box:
    """``core`` grown up and down over rows of its letters that the box leaves out.

    On noise the detector's box can sit a few pixels off the letters (``MRN797399`` boxed three
    pixels low: its letters' tops above the mask) and the glyph box, cut from it, cannot reach
    them. A row next to the box is taken while it holds, across the box's columns, flat pixels of
    the text's colour at a quarter at least of the share the box's own rows hold on average; up
    to :data:`ROWS` text heights each way, and only when they end before that (rows of the colour
    that run on to it are a background's: the black between white letters taken for their
    colour)."""
    rows = gray.shape[0]
    h = core.height
    if h < 6 or core.width < 4:
        return core
    level = _colour(gray, core, bright)
    if level is None:
        return core
    if _one_line(gray, core, level) is None:
        return core
    reach = max(2, round(ROWS * h))
    y0, y1 = max(0, core.y0 - reach), min(rows, core.y1 + reach)
    band = gray[y0:y1, core.x0 : core.x1]
    hits = (_flat(band) & (band == level)).mean(axis=1)
    inner = float(hits[core.y0 - y0 : core.y1 - y0].mean())
    if inner <= 0:
        return core
    need = max(0.01, 0.25 * inner)
    top, bottom = core.y0, core.y1
    while top > y0 and hits[top - 1 - y0] >= need:
        top -= 1
    while bottom < y1 and hits[bottom - y0] >= need:
        bottom += 1
    # letters' tops and feet end within the reach; rows of the colour that run on to it are a
    # background's (the black between white letters, taken for their colour, above and below)
    if top == core.y0 - reach:
        top = core.y0
    if bottom == core.y1 + reach:
        bottom = core.y1
    return Box(core.x0, top, core.x1, bottom)
