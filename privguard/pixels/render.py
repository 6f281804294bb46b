"""A display-ready 8-bit view of stored values, for OCR and previews only.

Greyscale: Modality LUT (rescale slope/intercept or a LUT), then the first
VOI window (linear, PS3.3 C.11.2.1.2) or the VOI LUT, else the value range of
all frames; MONOCHROME1 is inverted so that OCR always sees "display" contrast.
A window that turns nearly the whole image into one value is ignored in
favour of the full range, so text hidden by an odd window still shows.
Colour: PALETTE COLOR through its LUTs, YBR_FULL converted to RGB, more than
8 bits scaled down.

The rendering is never written back: masks are applied to the stored values
(:mod:`privguard.pixels.mask`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from privguard.pixels.decode import DecodedImage

logger = logging.getLogger(__name__)

#: A window leaving more than this fraction of pixels on one value is treated as degenerate.
_DEGENERATE = 0.997


@dataclass
class Rendering:
    """8-bit views of every frame: ``gray`` (N, R, C) and, for colour images, ``rgb`` (N, R, C, 3)."""

    gray: np.ndarray
    rgb: np.ndarray | None
    gray_map: GrayMap | None = None

    def color_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` as an RGB uint8 array (greyscale replicated when the image is grey)."""
        if self.rgb is not None:
            return np.ascontiguousarray(self.rgb[index])
        g = self.gray[index]
        return np.ascontiguousarray(np.repeat(g[:, :, np.newaxis], 3, axis=2))


def _first(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            seq = list(value)  # type: ignore[call-overload]
            return float(seq[0]) if seq else None
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _to_u8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        hi = lo + 1.0
    out = (values.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    return np.asarray(np.clip(out, 0, 255), dtype=np.uint8)


def _modality(frames: np.ndarray, ds: Dataset) -> np.ndarray:
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels.processing import apply_modality_lut

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(apply_modality_lut(frames, ds), dtype=np.float32)
    slope = _first(ds.get("RescaleSlope")) or 1.0
    intercept = _first(ds.get("RescaleIntercept")) or 0.0
    if slope == 1.0 and intercept == 0.0:
        return frames
    return frames.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def _degenerate(u8: np.ndarray) -> bool:
    sample = u8[:, ::4, ::4] if u8.ndim == 3 else u8[::4, ::4]
    counts = np.bincount(sample.ravel(), minlength=256)
    return bool(counts.max() >= _DEGENERATE * sample.size)


class GrayMap:
    """The fixed mapping from stored grey values to display 8-bit, chosen once per image.

    Parameters are fixed from all frames, so re-rendering some frames after masking
    (for verification) gives exactly the view OCR saw before.
    """

    def __init__(self, frames: np.ndarray, ds: Dataset, photometric: str) -> None:
        self.ds = ds
        self.invert = photometric == "MONOCHROME1"
        self.lo: float | None = None
        self.hi: float | None = None
        self.lut = False
        values = _modality(frames, ds)
        center = _first(ds.get("WindowCenter"))
        width = _first(ds.get("WindowWidth"))
        if center is not None and width is not None and width >= 2:
            self.lo = center - 0.5 - (width - 1) / 2.0
            self.hi = center - 0.5 + (width - 1) / 2.0
        elif "VOILUTSequence" in ds:
            self.lut = True
            try:
                out = self._voi(values)
                self.lo, self.hi = float(out.min()), float(out.max())
            except Exception:  # a malformed LUT: fall back to the value range
                self.lut = False
        if self.lo is not None and not _degenerate(self._map(values)):
            return
        self.lut = False
        self.lo, self.hi = float(values.min()), float(values.max())

    def _voi(self, values: np.ndarray) -> np.ndarray:
        from pydicom.pixels.processing import apply_voi_lut

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(apply_voi_lut(values, self.ds), dtype=np.float32)

    def _map(self, values: np.ndarray) -> np.ndarray:
        assert self.lo is not None and self.hi is not None
        out = _to_u8(self._voi(values) if self.lut else values, self.lo, self.hi)
        return 255 - out if self.invert else out

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Render stored values (any shape) to display uint8."""
        return self._map(_modality(frames, self.ds))


def render_gray(frames: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """Render greyscale stored values (N, R, C) to display uint8 (N, R, C)."""
    return GrayMap(frames, ds, photometric)(frames)


def render_color(frames: np.ndarray, ds: Dataset, photometric: str, bits_stored: int) -> np.ndarray:
    """Render colour stored values to RGB uint8 (N, R, C, 3)."""
    if photometric == "PALETTE COLOR":
        from pydicom.pixels.processing import apply_color_lut

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rgb = np.asarray(apply_color_lut(frames, ds))
        depth = 8
        for kw in ("RedPaletteColorLookupTableDescriptor",):
            desc = ds.get(kw)
            if desc is not None and len(desc) == 3 and int(desc[2]) > 8:
                depth = 16
        return _to_u8(rgb, 0.0, 255.0 if depth == 8 else 65535.0)
    data = frames
    if bits_stored > 8:
        data = (frames.astype(np.uint32) >> (bits_stored - 8)).astype(np.uint8)
    else:
        data = frames.astype(np.uint8)
    if photometric.startswith("YBR"):
        from pydicom.pixels.processing import convert_color_space

        return np.asarray(convert_color_space(data, "YBR_FULL", "RGB"), dtype=np.uint8)
    return np.ascontiguousarray(data)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of RGB uint8 frames, as uint8 (the grey OCR recognises on)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.asarray(np.clip(rgb.astype(np.float32) @ weights + 0.5, 0, 255), dtype=np.uint8)


def render(image: DecodedImage) -> Rendering:
    """Render every frame of a decoded image for OCR."""
    info = image.info
    if info.photometric == "PALETTE COLOR" or info.samples == 3:
        rgb = render_color(image.frames, image.dataset, info.photometric, info.bits_stored)
        return Rendering(luminance(rgb), rgb)
    gmap = GrayMap(image.frames, image.dataset, info.photometric)
    return Rendering(gmap(image.frames), None, gmap)


def rerender(image: DecodedImage, rendering: Rendering, indices: list[int]) -> None:
    """Render frames ``indices`` of ``image`` again (after masking), with the original mapping."""
    if not indices:
        return
    info = image.info
    idx = np.asarray(sorted(set(indices)), dtype=np.intp)
    sub = image.frames[idx]
    if rendering.rgb is not None:
        rgb = render_color(sub, image.dataset, info.photometric, info.bits_stored)
        rendering.rgb[idx] = rgb
        rendering.gray[idx] = luminance(rgb)
    elif rendering.gray_map is not None:
        rendering.gray[idx] = rendering.gray_map(sub)
