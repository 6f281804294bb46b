"""Masks that follow the glyphs: patches over the strokes a PHI box leaves out or ends on.

A detector box, and the glyph box brought in to the rows its letters fill, can stop a pixel or
two inside the letters (an anti-aliased top row, a trailing initial the detector cut in half, a
bracket's tail under the line, an accent above it). :func:`follow` looks, in the rendering
*before* masking, for the strokes of the box's own text: pixels within 30% of the contrast from
the text's grey level, connected to the letters inside the glyph box. Those strokes are cut at
the box: each *piece* of them outside the box (or on its outermost rows and columns) is judged
on its own.

* A **letter's piece** ends within one text height of the box, sideways and up or down, and is
  no bigger than a piece of a letter: it gets a patch one pixel wider than itself, masked with
  the box, so the mask ends beyond the letters.
* A **structure** runs on past those bounds, or is bigger than a letter's piece: a line of
  anatomy or a scale bar crossing the text, the surroundings of a label plate that a glyph box
  reaches by a pixel, speckle. It is not the text's and is neither followed nor a reason to
  withhold the clean claim (it crosses the mask's edge, but no letter of the masked text lies in
  it beyond the box, where letters end).
* A letter's piece that runs into a word kept as non-PHI is not patched (that would mask the
  kept word): part of a masked letter may stay readable there, so the box is **not clear** and
  the stage does not claim the file clean (Burned In Annotation stays YES, verification
  ``needs_review``).

Over a textured background (speckle, anatomy: the box's outer ring spreads more than a few grey
levels), strokes cannot be told from texture and nothing is followed. When the text's grey level
is the background's (dark letters on a light label plate read as bright text), or when most of
the glyph box is "text" (the plate itself taken for the letters), the other polarity is tried.
The image's border is no edge a piece runs past: nothing lies beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from privguard.pixels.boxes import Box

#: The least contrast (grey levels, 8-bit rendering) between the text and its background for
#: strokes to be told from background at all; below it the box is left as it is.
MIN_CONTRAST = 20
#: The most spread (median absolute deviation, grey levels) of the box's outer ring, letters left
#: out, for its background to count as flat; over texture (speckle, anatomy) the box is left as
#: it is.
TEXTURED = 6.0
#: The largest patch over a letter's piece outside the box, in squared text heights (half a
#: letter cut off by the detector is about 0.3; a structure joined to the text is more).
PIECE = 0.75
#: Stroke pixels a piece must hold to count (one stray pixel is noise).
MIN_STROKE = 2
#: Letters fill at most about half of their glyph box; when more of it is in the "text's" colour,
#: that colour is the background's (a label plate) and the other polarity is tried.
MOSTLY = 0.55
#: Depth of the band by the box (text heights) where a letter's last rows, joined to a line that
#: crosses them, are patched.
BAND = 0.25
#: A stroke taller than this many glyph-box heights is no letter's (a letter with its accent or
#: tail is about 1.3; a glyph box cut short by the detector can make it up to 1.5).
TALL = 1.6


@dataclass(frozen=True, slots=True)
class Followed:
    """A box, the patches over its letters' pieces, and whether no letter was left at its edge."""

    box: Box
    clear: bool
    extra: tuple[Box, ...] = ()
    """Patches over the letters' pieces outside the box (masked with it)."""
    structures: int = 0
    """Pieces outside the box judged not the text's (lines, plates, texture crossing its edge)."""


def _near(
    gray: np.ndarray, box: Box, core: Box, bright: bool, level: int, limit: int
) -> tuple[np.ndarray, Box, bool, int] | None:
    """The text's strokes around ``box``: a map of the window (``limit`` pixels around the box,
    each way) with pixels in the text's colour connected to the letters inside ``core``, the
    polarity and level they were told by, or None when they cannot be told from the background
    (too little contrast, texture, a plate)."""
    rows, cols = gray.shape[:2]
    ring = box.pad(1).clip(cols, rows)
    patch = gray[ring.y0 : ring.y1, ring.x0 : ring.x1]
    c_in = core.clip(cols, rows)
    inner = gray[c_in.y0 : c_in.y1, c_in.x0 : c_in.x1]
    if patch.size == 0 or inner.size == 0:
        return None
    edge = np.concatenate([patch[0], patch[-1], patch[:, 0], patch[:, -1]]).astype(np.int16)
    background = int(np.median(edge))
    contrast = (level - background) if bright else (background - level)
    if contrast < MIN_CONTRAST or _mostly(inner, bright, level, contrast):
        # the polarity or level the reader gave is the background's (dark letters on a light
        # label plate taken for bright text): try the other polarity's extreme inside the core,
        # against the core's own middle grey (the plate) when the ring lies off the plate
        bright = not bright
        level = int(inner.max()) if bright else int(inner.min())
        contrast = (level - background) if bright else (background - level)
        if contrast < MIN_CONTRAST:
            background = int(np.median(inner))
            contrast = (level - background) if bright else (background - level)
        if contrast < MIN_CONTRAST or _mostly(inner, bright, level, contrast):
            return None
    if _ring_textured(patch, level, contrast):
        return None  # text over speckle or anatomy: its strokes cannot be told from the texture
    win = box.pad(limit + 1).clip(cols, rows)
    g = gray[win.y0 : win.y1, win.x0 : win.x1].astype(np.int16)
    near = np.abs(g - level) <= 0.3 * contrast  # drawn in the text's own colour
    _, labels = cv2.connectedComponents(near.astype(np.uint8), connectivity=8)
    c = core.intersect(win)
    if c.empty:
        return None
    touching = np.unique(labels[c.y0 - win.y0 : c.y1 - win.y0, c.x0 - win.x0 : c.x1 - win.x0])
    touching = touching[touching > 0]
    return np.isin(labels, touching), win, bright, level


def _ring_textured(patch: np.ndarray, level: int, contrast: int) -> bool:
    """Whether the ring around a box (its outer rows and columns), letters left out, varies from
    pixel to pixel like speckle or anatomy: the median step between neighbours along the ring.
    A margin that is flat, a smooth gradient, or two flat tones (text running off a black border
    onto a grey organ) is no texture; a few anti-aliased edge pixels do not count."""
    steps = []
    for side in (patch[0], patch[-1], patch[:, 0], patch[:, -1]):
        v = side.astype(np.int16)
        background = np.abs(v - level) > 0.5 * contrast
        both = background[1:] & background[:-1]
        steps.append(np.abs(np.diff(v))[both])
    d = np.concatenate(steps)
    # the median step between independent noise samples is about 1.4 times their median
    # absolute deviation: the same texture threshold as :func:`_textured`
    return bool(d.size) and float(np.median(d)) > 1.4 * TEXTURED


def _mostly(inner: np.ndarray, bright: bool, level: int, contrast: int) -> bool:
    near = np.abs(inner.astype(np.int16) - level) <= 0.3 * contrast
    return bool(near.mean() > MOSTLY)


def follow(
    gray: np.ndarray,
    box: Box,
    core: Box,
    bright: bool | None,
    level: int | None,
    limit: int,
    kept: list[Box] | None = None,
) -> Followed:
    """Patches over the pieces of the letters in ``core`` that ``box`` (clipped to the frame)
    leaves out or ends on, and whether any was left (see the module note); a piece is a letter's
    when it ends within ``limit`` pixels of the box."""
    rows, cols = gray.shape[:2]
    box = box.clip(cols, rows)
    if bright is None or level is None or box.empty:
        return Followed(box, True)
    found = _near(gray, box, core, bright, level, limit)
    if found is None:
        return Followed(box, True)
    letters, win, bright, level = found
    # strokes outside the box or on its outermost rows and columns, cut at the box: each piece
    # gets a patch one pixel wider than itself, so the mask ends beyond the letters, not on them
    inner = np.zeros(letters.shape, dtype=bool)
    inner[box.y0 + 1 - win.y0 : box.y1 - 1 - win.y0, box.x0 + 1 - win.x0 : box.x1 - 1 - win.x0] = True
    loose = letters & ~inner
    n, pieces, stats, _ = cv2.connectedComponentsWithStats(loose.astype(np.uint8), connectivity=8)
    _, whole, wstats, _ = cv2.connectedComponentsWithStats(letters.astype(np.uint8), connectivity=8)
    g = gray[win.y0 : win.y1, win.x0 : win.x1]
    # the strokes with their anti-aliased edges, left out when looking at the background
    blur = cv2.dilate(letters.astype(np.uint8), np.ones((3, 3), dtype=np.uint8)) > 0
    kept = kept or []
    clear = True
    extra: list[Box] = []
    structures = 0
    h, w = win.height, win.width
    local = box.shift(-win.x0, -win.y0)
    margin = max(2, round(0.1 * core.height))
    # the band right by the box where a letter cut by its edge ends (a quarter of a text height)
    d = max(2, round(BAND * core.height))
    around = local.pad(d).clip(w, h)
    band = np.zeros(letters.shape, dtype=bool)
    band[around.y0 : around.y1, around.x0 : around.x1] = True
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < MIN_STROKE:
            continue
        patch = Box(x + win.x0, y + win.y0, x + bw + win.x0, y + bh + win.y0).pad(1).clip(cols, rows)
        if patch.overlap(box) == patch.area:
            continue
        # a letter's piece ends within the window (the image's border aside) and is no taller
        # than a letter with its accent or tail; a line, a plate's surroundings or texture
        # crossing the box's edge runs on past it, or lies on speckle or anatomy
        runs_on = (
            (x == 0 and win.x0 > 0)
            or (y == 0 and win.y0 > 0)
            or (x + bw >= w and win.x1 < cols)
            or (y + bh >= h and win.y1 < rows)
            or bh > TALL * core.height
        )
        if _textured(g, blur, patch.pad(3).shift(-win.x0, -win.y0), local):
            structures += 1  # speckle or anatomy by the box: not followed
            continue
        if runs_on:
            structures += 1
            # its part right by the box is patched: a letter's last rows joined to a line that
            # crosses them (a scale bar through a name) end there
            extra += _by_the_box(pieces == i, band, local, win, core.height, kept, cols, rows)
            continue
        # the letter's own height (a glyph box can cut it): its stroke whole, within bounds
        ys, xs = np.nonzero(pieces[y : y + bh, x : x + bw] == i)
        whole_h = int(wstats[whole[y + ys[0], x + xs[0]], cv2.CC_STAT_HEIGHT])
        height = max(core.height, min(whole_h, round(TALL * core.height)))
        outside = patch.area - patch.overlap(box)
        if outside > PIECE * core.height**2 and not _full(g[pieces == i], bright, level):
            # bigger than a piece of a letter of the box's height and no pixel of it in the
            # letters' full colour: an organ's smooth edge near the text's grey, joined to the
            # anti-aliased letters (a piece of a letter the box cut holds its strokes' colour)
            structures += 1
            continue
        if outside > PIECE * height**2 or any(patch.overlap(k) > 0 for k in kept):
            # bigger than a piece of a letter, or running into a word kept as non-PHI: left as
            # it is, and part of a masked letter may be readable there: not clear
            clear = False
            continue
        # the patch ends beyond the letter's anti-aliased edge like the box does (10% of the text
        # height, at least 2 px), or a pixel beyond its strokes where that would reach a kept word
        wide = Box(x + win.x0, y + win.y0, x + bw + win.x0, y + bh + win.y0).pad(margin).clip(cols, rows)
        extra.append(patch if any(wide.overlap(k) > 0 for k in kept) else wide)
    return Followed(box, clear, tuple(extra), structures)


def _full(values: np.ndarray, bright: bool, level: int) -> bool:
    """Whether any of a piece's pixels is drawn at least as far out as the letters' level (the
    upper quartile of bright letters' glyph pixels, the lower of dark ones)."""
    return bool(values.size) and bool((values.max() >= level) if bright else (values.min() <= level))


def _by_the_box(
    piece: np.ndarray,
    band: np.ndarray,
    local: Box,
    win: Box,
    height: int,
    kept: list[Box],
    cols: int,
    rows: int,
) -> list[Box]:
    """Patches over a structure's parts in the band by the box (``local``, window coordinates):
    a line crossing the edge, with the letters' last rows joined to it (sparse strokes, up to
    four text heights along the box, touching it over no more than two), none into a kept word.
    The rim of a plate along the edge (a solid strip, or one touching the box all along) is left."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((piece & band).astype(np.uint8), connectivity=8)
    edge = np.zeros(piece.shape, dtype=bool)  # the box's outermost rows and columns, and the next
    outer, inner = local.pad(1).clip(piece.shape[1], piece.shape[0]), local.pad(-1)
    edge[outer.y0 : outer.y1, outer.x0 : outer.x1] = True
    if not inner.empty:
        edge[inner.y0 : inner.y1, inner.x0 : inner.x1] = False
    contact = np.bincount(labels[edge], minlength=n)
    out = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        long = max(bw, bh)
        if area < MIN_STROKE or long > 4 * height or contact[i] > 2 * height:
            continue
        if long > height and area > 0.5 * bw * bh:
            continue
        patch = Box(x + win.x0, y + win.y0, x + bw + win.x0, y + bh + win.y0).pad(1).clip(cols, rows)
        if not any(patch.overlap(k) > 0 for k in kept):
            out.append(patch)
    return out


def _textured(g: np.ndarray, strokes: np.ndarray, around: Box, box: Box) -> bool:
    """Whether the background around a piece (``around``, window coordinates, the box and the
    strokes left out) spreads like speckle or anatomy rather than a flat margin."""
    around = around.clip(g.shape[1], g.shape[0])
    sel = ~strokes[around.y0 : around.y1, around.x0 : around.x1].copy()
    b = box.intersect(around).shift(-around.x0, -around.y0)
    if not b.empty:
        sel[b.y0 : b.y1, b.x0 : b.x1] = False
    vals = g[around.y0 : around.y1, around.x0 : around.x1][sel].astype(np.int16)
    if vals.size < 8:
        return False
    return float(np.median(np.abs(vals - np.median(vals)))) > TEXTURED
