"""Scoring redaction against ground truth: PHI recall, non-PHI kept, pixels changed away from text.

* A PHI region is *redacted* when at least :data:`REDACTED` of its text pixels
  are hidden in every frame it appears in: changed, or (a mask filled with the letters' own
  value, e.g. a dark fill over dark text on a light label) unchanged but enclosed by changed
  pixels, or inside a now uniform 3x3 patch next to them.
* A non-PHI region is *kept* when at most :data:`KEPT` of its text pixels changed.
* *Outside* counts stored values that changed away from the text lines: each
  line of regions (regions sharing rows) grown by 40% of its height; that zone
  is where masks may legitimately reach (gaps between words, padding).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

REDACTED = 0.98
KEPT = 0.02


@dataclass
class RegionScore:
    text: str
    phi: bool
    kind: str
    changed: float
    """Worst-frame (PHI: smallest, non-PHI: largest) share of text pixels that changed."""
    strict: float = 1.0
    """PHI: worst-frame share of text pixels whose stored value changed (a mask filled with the
    letters' own value hides them but changes none: a scorer counting changed pixels alone calls
    that a leak)."""

    @property
    def ok(self) -> bool:
        return self.changed >= REDACTED if self.phi else self.changed <= KEPT


@dataclass
class CaseScore:
    name: str
    regions: list[RegionScore] = field(default_factory=list)
    outside_changed: int = 0
    total_pixels: int = 1
    any_changed: int = 0

    @property
    def outside_share(self) -> float:
        return self.outside_changed / max(1, self.total_pixels)


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    diff = before != after
    return diff.any(axis=-1) if diff.ndim == 4 else diff


def _hidden(after: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """Pixels of one frame that changed, or that a mask filled with their own value (a dark fill
    over dark letters on a light label leaves the letters' pixels as they were): unchanged pixels
    enclosed by changed ones (inside a mask every pixel holds the fill), and unchanged pixels in a
    now uniform 3x3 patch next to changed pixels (at a mask's edge)."""
    keep = (~changed).astype(np.uint8)
    labels = cv2.connectedComponents(keep, connectivity=4)[1]
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    enclosed = (labels > 0) & ~np.isin(labels, border)
    k = np.ones((3, 3), dtype=np.uint8)
    img = after.astype(np.float32)
    chans = [img] if img.ndim == 2 else [img[..., c] for c in range(img.shape[-1])]
    flat = np.ones(changed.shape, dtype=bool)
    for ch in chans:
        flat &= cv2.dilate(ch, k) == cv2.erode(ch, k)
    near = cv2.dilate(changed.astype(np.uint8), k) > 0
    return changed | enclosed | (flat & near)


@dataclass
class Truth:
    """One ground-truth region: its box, frames and (optionally) its exact text pixels."""

    text: str
    phi: bool
    kind: str
    left: int
    top: int
    width: int
    height: int
    frames: list[int]
    mask: np.ndarray | None = None


def line_zone(truths: list[Truth], rows: int, cols: int, frame: int) -> np.ndarray:
    """Where masks may reach in ``frame``: text lines of the regions present there, grown a little."""
    zone = np.zeros((rows, cols), dtype=bool)
    present = [t for t in truths if frame in t.frames]
    lines: list[list[Truth]] = []
    for t in sorted(present, key=lambda t: t.top):
        for line in lines:
            top = min(x.top for x in line)
            bottom = max(x.top + x.height for x in line)
            shared = min(bottom, t.top + t.height) - max(top, t.top)
            if shared >= 0.5 * min(t.height, bottom - top):
                line.append(t)
                break
        else:
            lines.append([t])
    for line in lines:
        for t in line:
            grow = max(3, int(0.4 * t.height))
            zone[
                max(0, t.top - grow) : t.top + t.height + grow,
                max(0, t.left - grow) : t.left + t.width + grow,
            ] = True
        x0 = min(t.left for t in line)
        x1 = max(t.left + t.width for t in line)
        y0 = min(t.top for t in line)
        y1 = max(t.top + t.height for t in line)
        grow = max(3, int(0.4 * (y1 - y0)))
        zone[max(0, y0 - grow) : y1 + grow, max(0, x0 - grow) : x1 + grow] = True
    return zone


def text_pixels(before: np.ndarray, t: Truth) -> np.ndarray:
    """The region's text pixels: its exact mask, or (real files) its brightest/darkest extreme in the box."""
    if t.mask is not None:
        return t.mask
    rows, cols = before.shape[1:3]
    out = np.zeros((rows, cols), dtype=bool)
    f = t.frames[0]
    box = before[f, t.top : t.top + t.height, t.left : t.left + t.width]
    if box.ndim == 3:
        box = box.mean(axis=-1)
    lo, hi = float(box.min()), float(box.max())
    border = np.concatenate([box[0], box[-1], box[:, 0], box[:, -1]])
    bright = float(np.median(border)) < (lo + hi) / 2
    thr = lo + 0.5 * (hi - lo)
    sel = box > thr if bright else box < thr
    out[t.top : t.top + t.height, t.left : t.left + t.width] = sel
    return out


def score(name: str, before: np.ndarray, after: np.ndarray, truths: list[Truth]) -> CaseScore:
    """Score one file: stored values before and after (frames, rows, columns[, samples])."""
    if before.shape != after.shape:
        raise AssertionError(f"{name}: the pixel array shape changed")
    changed = _changed(before, after)
    n, rows, cols = changed.shape
    out = CaseScore(name, total_pixels=n * rows * cols, any_changed=int(changed.sum()))
    for t in truths:
        if t.kind == "label":
            continue  # labels next to PHI ("DOB:") count neither way
        mask = text_pixels(before, t)
        # PHI: changed, or filled with its own value (hidden); non-PHI: changed at all
        seen = [_hidden(after[f], changed[f]) if t.phi else changed[f] for f in t.frames]
        shares = [float(v[mask].mean()) if mask.any() else 0.0 for v in seen]
        worst = min(shares) if t.phi else max(shares)
        strict = (
            min(float(changed[f][mask].mean()) if mask.any() else 0.0 for f in t.frames) if t.phi else worst
        )
        out.regions.append(RegionScore(t.text, t.phi, t.kind, worst, strict))
    for f in range(n):
        zone = line_zone(truths, rows, cols, f)
        out.outside_changed += int((changed[f] & ~zone).sum())
    return out


def summary(scores: list[CaseScore]) -> dict[str, float]:
    phi = [r for s in scores for r in s.regions if r.phi]
    non = [r for s in scores for r in s.regions if not r.phi]
    total = sum(s.total_pixels for s in scores)
    return {
        "phi_boxes": len(phi),
        "phi_recall": sum(r.ok for r in phi) / max(1, len(phi)),
        "phi_recall_changed_only": sum(r.strict >= REDACTED for r in phi) / max(1, len(phi)),
        "nonphi_boxes": len(non),
        "nonphi_kept": sum(r.ok for r in non) / max(1, len(non)),
        "outside_share": sum(s.outside_changed for s in scores) / max(1, total),
        "worst_outside_share": max((s.outside_share for s in scores), default=0.0),
    }
