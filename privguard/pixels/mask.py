"""Masks applied to the stored values, at their native depth.

A mask fills a box with one stored value: the value that displays as black
when the text is bright, as white when the text is dark, so the text pixels
always change and the box reads as a plain patch. Greyscale fills are the
darkest / brightest stored values present (inverted for MONOCHROME1), so the
result stays inside the data's range; RGB and YBR use black and white of
their colour space; PALETTE COLOR uses the palette entries that display
darkest and brightest. Nothing outside the boxes is written.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from privguard.pixels.boxes import Box
from privguard.pixels.decode import DecodedImage


@dataclass(frozen=True, slots=True)
class MaskBox:
    """A box to fill in one frame (or every frame when ``frame`` is None)."""

    box: Box
    frame: int | None
    dark: bool = True
    """Fill with the value that displays darkest (for bright text)."""


@dataclass(frozen=True)
class Fills:
    """The stored values (scalars or per-sample tuples) that display darkest and brightest."""

    dark: tuple[int, ...]
    bright: tuple[int, ...]


def fills(image: DecodedImage) -> Fills:
    """Choose the dark and bright fill values of a decoded image."""
    info = image.info
    lo, hi = info.value_range
    if info.photometric == "PALETTE COLOR":
        return _palette_fills(image)
    if info.samples == 3:
        top = (1 << min(info.bits_stored, info.bits_allocated)) - 1
        if info.photometric.startswith("YBR"):
            mid = 1 << (min(info.bits_stored, info.bits_allocated) - 1)
            return Fills((0, mid, mid), (top, mid, mid))
        return Fills((0, 0, 0), (top, top, top))
    frames = image.frames
    fmin = int(frames.min()) if frames.size else lo
    fmax = int(frames.max()) if frames.size else hi
    if fmin == fmax:
        fmin, fmax = lo, hi
    if info.photometric == "MONOCHROME1":
        return Fills((fmax,), (fmin,))
    return Fills((fmin,), (fmax,))


def _palette_fills(image: DecodedImage) -> Fills:
    from pydicom.pixels.processing import apply_color_lut

    _lo, _hi = image.info.value_range
    present = np.unique(image.frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rgb = np.asarray(apply_color_lut(present, image.dataset), dtype=np.float64)
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    return Fills((int(present[int(luma.argmin())]),), (int(present[int(luma.argmax())]),))


def apply(frames: np.ndarray, masks: list[MaskBox], fill: Fills) -> set[int]:
    """Fill ``masks`` into ``frames`` (N, rows, columns[, samples]) in place; return the frames changed."""
    n, rows, cols = frames.shape[:3]
    changed: set[int] = set()
    for m in masks:
        b = m.box.clip(cols, rows)
        if b.empty:
            continue
        value = fill.dark if m.dark else fill.bright
        v: int | np.ndarray = value[0] if len(value) == 1 else np.asarray(value, dtype=frames.dtype)
        targets = range(n) if m.frame is None else [m.frame]
        for f in targets:
            if 0 <= f < n:
                frames[f, b.y0 : b.y1, b.x0 : b.x1] = v
                changed.add(f)
    return changed


def changed_outside(before: np.ndarray, after: np.ndarray, boxes: list[Box]) -> int:
    """Number of stored values that differ outside ``boxes`` (a self-check and a test helper)."""
    diff = np.any(before != after, axis=-1) if before.ndim == 4 else before != after
    if diff.ndim == 2:
        diff = diff[np.newaxis]
    inside = np.zeros(diff.shape[1:], dtype=bool)
    rows, cols = inside.shape
    for b in boxes:
        c = b.clip(cols, rows)
        inside[c.y0 : c.y1, c.x0 : c.x1] = True
    return int(diff[:, ~inside].sum())
