"""Axis-aligned boxes in stored-pixel coordinates, and small geometry helpers.

A :class:`Box` is half-open: ``x0 <= x < x1`` and ``y0 <= y < y1``, so its
width is ``x1 - x0``. Every module of the pixel stage speaks in these boxes,
whatever the detector or the ground truth uses internally.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Box:
    """A rectangle ``[x0, x1) x [y0, y1)`` in pixel coordinates."""

    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def from_xywh(cls, left: int, top: int, width: int, height: int) -> Box:
        """Build a box from a left/top corner and a size (the ground-truth format)."""
        return cls(int(left), int(top), int(left) + int(width), int(top) + int(height))

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def empty(self) -> bool:
        return self.width == 0 or self.height == 0

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    def pad(self, dx: int, dy: int | None = None) -> Box:
        """Grow by ``dx`` columns and ``dy`` rows on each side (``dy`` defaults to ``dx``)."""
        dy = dx if dy is None else dy
        return Box(self.x0 - dx, self.y0 - dy, self.x1 + dx, self.y1 + dy)

    def clip(self, width: int, height: int) -> Box:
        """Clip to an image of ``width`` x ``height``."""
        return Box(
            min(max(self.x0, 0), width),
            min(max(self.y0, 0), height),
            min(max(self.x1, 0), width),
            min(max(self.y1, 0), height),
        )

    def shift(self, dx: int, dy: int) -> Box:
        return Box(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def scale(self, factor: float) -> Box:
        """Scale coordinates by ``factor``, rounding outwards."""
        import math

        return Box(
            math.floor(self.x0 * factor),
            math.floor(self.y0 * factor),
            math.ceil(self.x1 * factor),
            math.ceil(self.y1 * factor),
        )

    def intersect(self, other: Box) -> Box:
        return Box(
            max(self.x0, other.x0), max(self.y0, other.y0), min(self.x1, other.x1), min(self.y1, other.y1)
        )

    def union(self, other: Box) -> Box:
        return Box(
            min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1)
        )

    def overlap(self, other: Box) -> int:
        """Area of the intersection."""
        return self.intersect(other).area

    def iou(self, other: Box) -> float:
        inter = self.overlap(other)
        if inter == 0:
            return 0.0
        return inter / float(self.area + other.area - inter)

    def contains(self, other: Box) -> bool:
        return self.x0 <= other.x0 and self.y0 <= other.y0 and self.x1 >= other.x1 and self.y1 >= other.y1

    def gap(self, other: Box) -> tuple[int, int]:
        """Horizontal and vertical gaps between two boxes (0 where they overlap)."""
        gx = max(0, max(self.x0, other.x0) - min(self.x1, other.x1))
        gy = max(0, max(self.y0, other.y0) - min(self.y1, other.y1))
        return gx, gy

    def vertical_overlap(self, other: Box) -> float:
        """Shared rows as a fraction of the shorter box's height."""
        shared = max(0, min(self.y1, other.y1) - max(self.y0, other.y0))
        shorter = min(self.height, other.height)
        return shared / shorter if shorter else 0.0

    def as_list(self) -> list[int]:
        """``[left, top, width, height]`` (JSON-friendly, the ground-truth order)."""
        return [self.x0, self.y0, self.width, self.height]


def bounding(boxes: Iterable[Box]) -> Box | None:
    """The smallest box holding all of ``boxes`` (None for none)."""
    out: Box | None = None
    for b in boxes:
        out = b if out is None else out.union(b)
    return out


def merge_boxes(boxes: Iterable[Box], gap: int = 0) -> list[Box]:
    """Merge boxes that overlap or lie within ``gap`` pixels of each other, until stable."""
    todo = sorted(b for b in boxes if not b.empty)
    changed = True
    while changed and len(todo) > 1:
        changed = False
        out: list[Box] = []
        for b in todo:
            for i, o in enumerate(out):
                gx, gy = b.gap(o)
                if gx <= gap and gy <= gap:
                    out[i] = o.union(b)
                    changed = True
                    break
            else:
                out.append(b)
        todo = sorted(out)
    return todo
