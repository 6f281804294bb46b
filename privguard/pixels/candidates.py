"""Cheap, classical text-candidate regions (no neural network).

Burned-in text is drawn with sharp, high-contrast strokes packed into short
horizontal bands. The morphological gradient marks strong edges; closing them
with a short horizontal element joins the characters of a word; connected
components of plausible text height with a high edge density are candidates.
It costs milliseconds on a 2k x 2.5k frame, and is used to

* point the neural detector at full-resolution crops of large frames, where
  small text could vanish in the downscaled pass (:mod:`privguard.pixels.textfind`);
* find text that appears in only some frames of a cine (:mod:`privguard.pixels.cine`).

It over-detects (anatomy edges, speckle) on purpose: a candidate only costs a
detector crop, a missed one could cost a leak.
"""

from __future__ import annotations

import cv2
import numpy as np

from privguard.pixels.boxes import Box, merge_boxes

#: Minimum 3x3 morphological gradient (8-bit) of a text edge.
EDGE_THRESHOLD = 48
#: Minimum fraction of edge pixels inside a candidate's bounding box.
MIN_DENSITY = 0.12


def edge_map(gray: np.ndarray, threshold: int = EDGE_THRESHOLD) -> np.ndarray:
    """Binary (uint8 0/1) map of strong edges of an 8-bit image."""
    grad = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    return (grad >= threshold).astype(np.uint8)


def text_candidates(
    gray: np.ndarray,
    *,
    min_height: int = 5,
    max_height: int = 160,
    threshold: int = EDGE_THRESHOLD,
    mask: np.ndarray | None = None,
) -> list[Box]:
    """Boxes of word- or line-like clusters of strong edges in an 8-bit image.

    Parameters
    ----------
    gray
        The 8-bit rendering (rows, columns).
    min_height, max_height
        Plausible text heights in pixels.
    threshold
        Edge strength (see :data:`EDGE_THRESHOLD`).
    mask
        Optional uint8/bool map: only edges where it is non-zero count.

    Returns
    -------
    list[Box]
        Candidate boxes, unpadded, in the image's coordinates.
    """
    edges = edge_map(gray, threshold)
    if mask is not None:
        edges &= (mask > 0).astype(np.uint8)
    if not edges.any():
        return []
    closed = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 3)))
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    out: list[Box] = []
    for i in range(1, n):
        x, y, w, h, _area = (int(v) for v in stats[i])
        if h < min_height or w < 3:
            continue
        if h > max_height and w > max_height:
            continue
        density = float(edges[y : y + h, x : x + w].mean())
        if density < MIN_DENSITY:
            continue
        out.append(Box(x, y, x + w, y + h))
    return out


def candidate_regions(boxes: list[Box], width: int, height: int, pad_factor: float = 1.0) -> list[Box]:
    """Pad candidates by ``pad_factor`` times their height, clip, and merge overlapping ones."""
    padded = []
    for b in boxes:
        p = max(8, round(pad_factor * min(b.height, 64)))
        padded.append(b.pad(p, max(4, p // 2)).clip(width, height))
    return merge_boxes(padded, gap=4)
