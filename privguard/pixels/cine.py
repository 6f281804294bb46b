"""Multi-frame images: OCR the overlay once, not once per frame, and still catch transient text.

In a cine the overlay (patient banner, scale, probe) is static while the
anatomy moves. :func:`plan` looks at how each pixel changes through the
sequence (8-bit rendering, ``tol`` grey levels of noise allowed):

* frame 0 is detected whole (every text present at the start);
* *stable* pixels (changing in only a few frames) that change at frame ``i``
  mark an overlay event, text appearing or changing; only those regions of
  frame ``i`` are detected;
* in *moving* regions, text-like candidates (:mod:`privguard.pixels.candidates`)
  whose strokes stay unchanged from the previous frame while the anatomy around
  them moves are text laid over the anatomy; a new one is detected in that frame;
* every ``rescan_every`` frames the moving area (or the whole frame, if it moves
  nearly everywhere) is detected again, a safety net for text the two rules above
  miss; boxes of words already known in that frame are not read again.

A word found in one frame is then masked in every frame where its text pixels
are still there (:func:`presence`), so a static banner costs one OCR pass and
one mask per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from privguard.pixels.boxes import Box, merge_boxes
from privguard.pixels.candidates import edge_map, text_candidates

#: Grey-level difference treated as noise between frames.
TOLERANCE = 6


@dataclass
class CinePlan:
    """What to detect in which frame."""

    frames: int
    full: list[int]
    """Frames detected whole."""
    rescans: list[int] = field(default_factory=list)
    """Frames where ``rescan_box`` is detected again (known words excepted)."""
    rescan_box: Box | None = None
    """The moving area (grown), or None for the whole frame."""
    cores: dict[int, list[Box]] = field(default_factory=dict)
    """Other frames: where something new may have appeared (changed overlay pixels, text-like
    candidates held still over moving anatomy)."""

    def regions(self, frame: int, covered: list[Box] | None = None) -> list[Box]:
        """Regions of ``frame`` to detect: full-width strips over its cores not already ``covered``.

        Parameters
        ----------
        frame
            The frame.
        covered
            Boxes of words already found and present in this frame.
        """
        rows, cols = self.shape
        out = []
        for core in self.cores.get(frame, []):
            if covered and sum(core.overlap(c) for c in covered) >= 0.7 * core.area:
                continue
            # the whole width of the core's rows: a text line may run on over moving anatomy,
            # where its change does not show among the stable pixels
            h = max(core.height, 8)
            pad = max(6, h // 2 + 4)
            out.append(Box(0, core.y0 - pad, cols, core.y1 + pad).clip(cols, rows))
        return merge_boxes(out, gap=8)

    shape: tuple[int, int] = (0, 0)


def _regions_of(mask: np.ndarray, pad: int) -> list[Box]:
    if not mask.any():
        return []
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8))
    n, _l, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    rows, cols = mask.shape
    boxes = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area < 4:
            continue
        boxes.append(Box(x, y, x + w, y + h).pad(pad, max(4, pad // 2)).clip(cols, rows))
    return merge_boxes(boxes, gap=8)


def plan(gray: np.ndarray, *, tol: int = TOLERANCE, rescan_every: int = 25) -> CinePlan:
    """Plan detection for frames ``gray`` (N, rows, columns) of 8-bit renderings."""
    n = int(gray.shape[0])
    rows, cols = int(gray.shape[1]), int(gray.shape[2])
    if n <= 2:
        return CinePlan(n, list(range(n)), shape=(rows, cols))
    changes = np.zeros((rows, cols), dtype=np.uint16)
    changed: list[np.ndarray] = []
    for i in range(1, n):
        c = cv2.absdiff(gray[i], gray[i - 1]) > tol
        changed.append(c)
        changes += c
    moving = changes > max(2, n // 8)
    stable = ~moving
    moving_zone = cv2.dilate(moving.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    full = [0]
    rescans = list(range(rescan_every, n, rescan_every)) if rescan_every > 0 else []
    rescan_box: Box | None = None
    ys, xs = np.nonzero(moving)
    if xs.size:
        area = (
            Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1).pad(16).clip(cols, rows)
        )
        if area.area < 0.7 * rows * cols:
            rescan_box = area
    else:
        rescans = []  # nothing moves: stable-pixel events see every change
    cores: dict[int, list[Box]] = {}
    recent: list[tuple[int, Box]] = []
    for i in range(1, n):
        if i in full:
            continue
        c = changed[i - 1]
        if not c.any():
            continue
        found = _regions_of(c & stable, pad=0)
        if moving_zone.any():
            edges = edge_map(gray[i])
            for b in text_candidates(gray[i], mask=moving_zone.astype(np.uint8)):
                e = edges[b.y0 : b.y1, b.x0 : b.x1].astype(bool)
                if e.sum() < 6:
                    continue
                kept = float((~c[b.y0 : b.y1, b.x0 : b.x1])[e].mean())
                around = float(c[b.y0 : b.y1, b.x0 : b.x1].mean())
                if kept < 0.8 or around < 0.05:
                    continue  # not text held still over moving anatomy
                region = b.pad(max(8, 4 * b.height), max(4, b.height)).clip(cols, rows)
                cur = gray[i, b.y0 : b.y1, b.x0 : b.x1].astype(np.int16)
                if any(
                    old.overlap(b) >= 0.7 * b.area
                    and float(
                        (np.abs(gray[f, b.y0 : b.y1, b.x0 : b.x1].astype(np.int16) - cur)[e] <= tol).mean()
                    )
                    >= 0.8
                    for f, old in recent
                ):
                    continue  # the same text, already read in an earlier frame
                recent.append((i, region))
                found.append(b)
        if found:
            cores[i] = merge_boxes(found, gap=4)
    return CinePlan(n, full, rescans, rescan_box, cores, shape=(rows, cols))


def presence(
    gray: np.ndarray,
    frame: int,
    box: Box,
    bright: bool | None,
    *,
    mask: np.ndarray | None = None,
    tol: int = TOLERANCE,
) -> np.ndarray:
    """Fraction (0..1) of the text pixels of ``box`` in ``frame`` that are unchanged in each frame.

    ``mask`` gives the text pixels (box-sized) when the glyphs are known; otherwise the
    text class of an Otsu threshold in the box is used.
    """
    ref = gray[frame, box.y0 : box.y1, box.x0 : box.x1]
    if ref.size == 0:
        return np.zeros(gray.shape[0], dtype=np.float32)
    if mask is not None and mask.shape == ref.shape and mask.sum() >= 3:
        text = mask
    else:
        t, _ = cv2.threshold(ref.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        text = ref <= t if bright is False else ref > t
    if text.sum() < 3:
        text = np.ones_like(ref, dtype=bool)
    stack = gray[:, box.y0 : box.y1, box.x0 : box.x1].astype(np.int16)
    same = np.abs(stack - ref.astype(np.int16)[np.newaxis]) <= tol
    return np.asarray(same[:, text].mean(axis=1), dtype=np.float32)
