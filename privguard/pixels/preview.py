"""Before/after review pictures for the privacy officer.

One PNG per redacted image: the frame with the most masks, before (left) and
after (right), with boxes outlined: red for text masked as PHI, green for text
kept as non-PHI, blue for known-device regions. Large frames are scaled down
so the picture stays under ``max_width`` pixels wide. The picture shows the
original PHI by design: it belongs in the sender's review area, never in the
de-identified output.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from privguard.pixels.boxes import Box

logger = logging.getLogger(__name__)

RED = (0, 0, 255)
GREEN = (0, 170, 0)
BLUE = (255, 80, 0)


def _draw(img: np.ndarray, boxes: list[Box], color: tuple[int, int, int], thick: int) -> None:
    rows, cols = img.shape[:2]
    for b in boxes:
        c = b.clip(cols, rows)
        if c.empty:
            continue
        cv2.rectangle(img, (c.x0, c.y0), (max(c.x0, c.x1 - 1), max(c.y0, c.y1 - 1)), color, thick)


def write_preview(
    path: Path,
    before_rgb: np.ndarray,
    after_rgb: np.ndarray,
    redacted: list[Box],
    kept: list[Box],
    known: list[Box],
    *,
    max_width: int = 2400,
) -> Path:
    """Write a side-by-side PNG; boxes are in the frame's pixel coordinates."""
    thick = max(1, round(max(before_rgb.shape[:2]) / 500))
    panels = []
    for img in (before_rgb, after_rgb):
        bgr = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
        _draw(bgr, known, BLUE, thick)
        _draw(bgr, kept, GREEN, thick)
        _draw(bgr, redacted, RED, thick)
        panels.append(bgr)
    gap = np.full((panels[0].shape[0], max(4, thick * 4), 3), 255, dtype=np.uint8)
    out = np.hstack([panels[0], gap, panels[1]])
    if out.shape[1] > max_width:
        s = max_width / out.shape[1]
        out = cv2.resize(out, (max_width, max(1, int(out.shape[0] * s))), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", out)
    if not ok:
        logger.warning("a preview picture could not be encoded")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_no_follow(path, png.tobytes())
    except OSError as exc:
        why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        logger.warning("a preview picture could not be written (%s)", why)
    return path


def _write_no_follow(path: Path, data: bytes) -> None:
    """Write ``path`` (created or replaced in place) without following a link planted at its name."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path.name, flags, 0o644, dir_fd=folder)
    finally:
        os.close(folder)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
