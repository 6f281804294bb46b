"""Before/after pictures for the review page, with no readable PHI in either.

The boxes are where the output's pixels differ from the input's (what the
burned-in text stage redacted). 'Before' is the input frame with those boxes
filled and outlined (so the page never shows the redacted text); 'after' is
the output frame with the same outlines. Both are 8-bit PNGs scaled to at most
``MAX_WIDTH`` pixels wide. Needs OpenCV (the ``ocr`` extra, which pixel
redaction needs anyway).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_WIDTH = 640
RED = (0, 0, 255)
#: Pixels around each changed region that are filled too (anti-aliased text edges).
MARGIN = 2


def _frames(path: Path) -> np.ndarray:
    import pydicom

    ds = pydicom.dcmread(path)
    arr = np.asarray(ds.pixel_array)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames == 1:
        arr = arr[np.newaxis, ...]
    return arr


def _to8(frame: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = (frame.astype(np.float64) - lo) * (255.0 / max(hi - lo, 1.0))
    out = np.clip(scaled, 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = np.repeat(out[:, :, np.newaxis], 3, axis=2)
    return out


def changed_boxes(before: np.ndarray, after: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x0, y0, x1, y1, exclusive) of the regions where ``after`` differs from ``before``."""
    import cv2

    diff = before != after
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    mask = diff.astype(np.uint8)
    if not mask.any():
        return []
    mask = cv2.dilate(mask, np.ones((2 * MARGIN + 1, 2 * MARGIN + 1), np.uint8))
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _area in (stats[i] for i in range(1, n))]


def render_pair(input_path: Path, output_path: Path) -> tuple[bytes, bytes, int] | None:
    """PNG bytes of 'before' (boxes filled) and 'after', and the box count; None if not comparable."""
    import cv2

    a, b = _frames(input_path), _frames(output_path)
    if a.shape != b.shape:
        return None
    changed = [(i, int((a[i] != b[i]).sum())) for i in range(a.shape[0])]
    frame, n = max(changed, key=lambda t: t[1])
    if n == 0:
        return None
    fa, fb = a[frame], b[frame]
    boxes = changed_boxes(fa, fb)
    lo, hi = float(np.percentile(fb, 0.5)), float(np.percentile(fb, 99.5))
    before, after = _to8(fa, lo, hi), _to8(fb, lo, hi)
    for x0, y0, x1, y1 in boxes:
        before[y0:y1, x0:x1] = 0  # filled: the page never shows what was redacted
        for img in (before, after):
            cv2.rectangle(img, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), RED, 2)
    pngs = []
    for img in (before, after):
        h, w = img.shape[:2]
        if w > MAX_WIDTH:
            img = cv2.resize(img, (MAX_WIDTH, max(1, round(h * MAX_WIDTH / w))), interpolation=cv2.INTER_AREA)
        ok, enc = cv2.imencode(".png", img)
        if not ok:
            return None
        pngs.append(enc.tobytes())
    return pngs[0], pngs[1], len(boxes)
