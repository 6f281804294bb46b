"""A fake OCR engine for tests of the decision, mask and report logic (never to claim OCR works)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from privguard.pixels.boxes import Box
from privguard.pixels.ocr import Detection, OCREngine, Reading


class FakeEngine(OCREngine):
    """Finds the given boxes wherever the image still shows them, and reads the given text.

    ``texts`` maps a box (frame coordinates of a whole-frame pass) to its text. A box is
    "detected" while its pixels are not flat (a mask makes them flat); crops (region passes)
    are matched by size and position offsets are ignored, so the fake is only for whole frames
    and the verification of whole-frame masks.
    """

    name = "fake"
    device = "cpu"

    def __init__(
        self,
        texts: dict[Box, str],
        *,
        confidence: float = 0.99,
        residual: str | None = None,
        frame_shape: tuple[int, int] | None = None,
    ) -> None:
        self.texts = texts
        self.confidence = confidence
        self.residual = residual
        """When set: every crop smaller than ``frame_shape`` (a verification neighbourhood)
        shows a word with this text around its mask, whatever the masks did."""
        self.frame_shape = frame_shape
        self._crop_sizes: list[tuple[int, int]] = []

    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        out = []
        for img in images:
            h, w = img.shape[:2]
            if self.residual is not None and self.frame_shape is not None and (h, w) != self.frame_shape:
                cy = h // 2
                box = Box(1, max(0, cy - 8), max(4, w // 2), min(h, cy + 8))
                self._crop_sizes.append((box.height, box.width))
                out.append(Detection([box], None))
                continue
            boxes = []
            for b in self.texts:
                c = b.clip(w, h)
                if c.empty or c.width < b.width:
                    continue
                patch = img[c.y0 : c.y1, c.x0 : c.x1]
                if int(patch.max()) - int(patch.min()) > 10:
                    boxes.append(c)
            out.append(Detection(boxes, None))
        return out

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        out = []
        for crop in crops:
            h, w = crop.shape[:2]
            if self.residual is not None and any(
                abs(h - ch) < 24 and abs(w - cw) < 24 for ch, cw in self._crop_sizes
            ):
                out.append(Reading(self.residual, self.confidence))
                continue
            best = min(self.texts.items(), key=lambda kv: abs(kv[0].width - w) + abs(kv[0].height - h))
            if h > 1.5 * w and len(best[1]) > 1:
                out.append(Reading("", 0.0))  # a rotated reading of a line: nothing
            else:
                out.append(Reading(best[1], self.confidence))
        return out
