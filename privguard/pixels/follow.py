"""Masks that follow the glyphs: patches over the strokes a PHI box leaves out or ends on.

A detector box, and the glyph box brought in to the rows its letters fill, can stop a pixel or
two inside the letters (an anti-aliased top row, a trailing initial the detector cut in half, a
bracket's tail under the line). :func:`follow` looks, in the rendering *before* masking, for the
strokes of the box's own text (within 30% of the contrast from the text's grey level, connected
to the letters inside the glyph box) that lie outside the box or on its outermost rows and
columns, and returns a patch one pixel wider than each such piece: the mask then ends beyond the
letters. A piece is followed at most one text height sideways and half a height up and down,
never into a word kept as non-PHI, and only when it is no bigger than a piece of a letter. Over
a textured background (speckle, anatomy), where strokes cannot be told from texture, nothing is
followed. When the text's grey level is the background's (dark letters on a light label plate
read as bright text), the other polarity is tried.

It also says whether the box is left clear of the text's strokes. Strokes that run on past the
bounds, a piece too big, or one running into a kept word leave part of a letter possibly
readable at the box's edge: the stage then does not claim the file clean (Burned In Annotation
stays YES, verification ``needs_review``). The image's border is no such edge: nothing lies
beyond it.
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
#: letter cut off by the detector is about 0.3; a bright structure joined to the text is more).
PIECE = 0.75
#: Stroke pixels an edge line must hold to count as touched (one stray pixel is noise).
MIN_STROKE = 2


@dataclass(frozen=True, slots=True)
class Followed:
    """A grown box and whether all its sides ended clear of the text's strokes."""

    box: Box
    clear: bool
    extra: tuple[Box, ...] = ()
    """Patches over the letters' pieces outside the box (masked with it)."""


def strokes(gray: np.ndarray, box: Box, core: Box, bright: bool, level: int, limit: int) -> np.ndarray | None:
    """The text's strokes around ``box`` (a frame-sized map, set only within ``limit`` pixels of it
    sideways and half that up and down: 1 for a letter's strokes, 2 for strokes that run on past
    those bounds): pixels within 30% of the contrast (to the median of the box's one-pixel outer ring)
    from ``level`` that are connected to strokes inside ``core`` (the letters' own rows: a
    grain of speckle by the box is not one of its letters); None when the contrast is too low."""
    rows, cols = gray.shape[:2]
    ring = box.pad(1).clip(cols, rows)
    patch = gray[ring.y0 : ring.y1, ring.x0 : ring.x1]
    if patch.size == 0:
        return None
    edge = np.concatenate([patch[0], patch[-1], patch[:, 0], patch[:, -1]]).astype(np.int16)
    background = int(np.median(edge))
    contrast = (level - background) if bright else (background - level)
    if contrast < MIN_CONTRAST:
        # the polarity or level the reader gave is the background's (dark letters on a light
        # label plate taken for bright text): try the other polarity's extreme inside the core
        inner = gray[core.y0 : core.y1, core.x0 : core.x1]
        if inner.size == 0:
            return None
        bright = not bright
        level = int(inner.max()) if bright else int(inner.min())
        contrast = (level - background) if bright else (background - level)
        if contrast < MIN_CONTRAST:
            return None
    rest = edge[np.abs(edge - level) > 0.5 * contrast]  # the ring's background, letters left out
    # median absolute deviation: a few anti-aliased edge pixels on a flat margin do not count
    if rest.size and float(np.median(np.abs(rest - np.median(rest)))) > TEXTURED:
        return None  # text over speckle or anatomy: its strokes cannot be told from the texture
    across = max(2, limit // 2)
    win = box.pad(limit + 1, across + 1).clip(cols, rows)
    g = gray[win.y0 : win.y1, win.x0 : win.x1].astype(np.int16)
    near = np.abs(g - level) <= 0.3 * contrast  # drawn in the text's own colour
    n, labels, stats, _ = cv2.connectedComponentsWithStats(near.astype(np.uint8), connectivity=8)
    c = core.intersect(win)
    if c.empty:
        return None
    touching = np.unique(labels[c.y0 - win.y0 : c.y1 - win.y0, c.x0 - win.x0 : c.x1 - win.x0])
    touching = touching[touching > 0]
    # a letter ends within the bounds; a component reaching the window's edge runs on past
    # them (anatomy, a plate's surroundings, another line joined to it): not followed, and
    # marked (value 2) so that touching it leaves the box not clear
    h, w = win.height, win.width
    x, y, bw, bh = stats[touching, 0], stats[touching, 1], stats[touching, 2], stats[touching, 3]
    # (the image's own border is not such an edge: nothing lies beyond it)
    runs_on = (
        ((x == 0) & (win.x0 > 0))
        | ((y == 0) & (win.y0 > 0))
        | ((x + bw >= w) & (win.x1 < cols))
        | ((y + bh >= h) & (win.y1 < rows))
        | (bh > 1.5 * core.height)  # taller than a letter with its accent or tail
    )
    del n
    out = np.zeros((rows, cols), dtype=np.uint8)
    sub = np.zeros(labels.shape, dtype=np.uint8)
    sub[np.isin(labels, touching[~runs_on])] = 1
    sub[np.isin(labels, touching[runs_on])] = 2
    out[win.y0 : win.y1, win.x0 : win.x1] = sub
    return out


def follow(
    gray: np.ndarray,
    box: Box,
    core: Box,
    bright: bool | None,
    level: int | None,
    limit: int,
    kept: list[Box] | None = None,
) -> Followed:
    """Patches over the strokes of the text in ``core`` that ``box`` (clipped to the frame) leaves
    out or ends on (see the module note); ``limit`` pixels at most sideways, half that up and
    down."""
    rows, cols = gray.shape[:2]
    box = box.clip(cols, rows)
    if bright is None or level is None or box.empty:
        return Followed(box, True)
    mask = strokes(gray, box, core, bright, level, limit)
    if mask is None:
        return Followed(box, True)
    kept = kept or []
    clear = True
    # letter pixels outside the box or on its outermost rows and columns: each piece gets a patch
    # one pixel wider than itself, so the mask ends beyond the letters, not on them
    inner = np.zeros(mask.shape, dtype=bool)
    inner[box.y0 + 1 : box.y1 - 1, box.x0 + 1 : box.x1 - 1] = True
    loose = (mask == 1) & ~inner
    n, _, stats, _ = cv2.connectedComponentsWithStats(loose.astype(np.uint8), connectivity=8)
    extra: list[Box] = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < MIN_STROKE:
            continue
        patch = Box(x, y, x + w, y + h).pad(1).clip(cols, rows)
        if patch.overlap(box) == patch.area:
            continue
        outside = patch.area - patch.overlap(box)
        if any(patch.overlap(k) > 0 for k in kept) or outside > PIECE * core.height**2:
            # the letter runs into a word kept as non-PHI, or the piece is bigger than a piece of
            # a letter (a bright structure joined to the text): left as it is, and not clear
            clear = False
            continue
        extra.append(patch)
    ring = np.zeros(mask.shape, dtype=bool)
    r = box.pad(1).clip(cols, rows)
    ring[r.y0 : r.y1, r.x0 : r.x1] = True
    ring[box.y0 + 1 : box.y1 - 1, box.x0 + 1 : box.x1 - 1] = False
    if int((ring & (mask == 2)).sum()) >= MIN_STROKE:
        clear = False  # strokes that run on past a letter's bounds cross the box's edge
    return Followed(box, clear, tuple(extra))
