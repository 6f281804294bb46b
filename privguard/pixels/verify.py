"""Verification: read the masked neighbourhoods again and look for PHI that is still readable.

After masking, every masked box's neighbourhood (the box grown by one and a
half text heights sideways and one height up and down) is rendered again and
OCR'd. Any word there that the PHI decision would mask, that the masks do not
already cover and that touches a mask (a fragment left at its edge), is a
*residual*: the stage widens the masks over it and
checks again, up to a few rounds. A residual that is still classified as PHI
after the last round fails the file (nothing is written for it). Identical
neighbourhoods (a static banner masked in every frame of a cine) are read once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from privguard.pixels.boxes import Box, merge_boxes
from privguard.pixels.fuzzy import HeaderMatcher
from privguard.pixels.phi_text import PhiDecider
from privguard.pixels.screen import glyph_components, kernel_size
from privguard.pixels.textfind import FrameJob, TextFinder, Word
from privguard.text.context import PhiContext

#: The least character score (the main detection pass's score map, before masking, highest value
#: within two pixels of the component) a stroke by a mask must have had to be looked at again.
#: Measured on 44 generated files (the test and held-out sets, 512x512 ultrasound): every one of
#: 5,626 text glyph components scored 0.376 or more (median 0.90); 94.6% of the 2,427 components
#: away from text (speckle, edges) scored under 0.1. CRAFT's own box threshold is 0.35.
RESIDUE_SCORE = 0.1
#: Decision reasons that mean "PHI was read" (as opposed to unreadable residue).
_PHI_REASONS = ("header:", "pattern:", "label-value", "adjacent", "all-text", "unknown-text")


@dataclass
class Residual:
    """A word still found over or next to a mask."""

    frames: list[int]
    """Frames whose neighbourhood pixels are identical to the one read."""
    box: Box
    readable_phi: bool
    """True when the word was read and classified as PHI (not just unreadable residue)."""
    bright: bool | None = None
    """The residual text's polarity, when known."""


@dataclass
class VerifyRequest:
    """What to verify in one file."""

    key: int
    gray: np.ndarray
    """(N, R, C) renderings after masking."""
    rgb: np.ndarray | None
    masks: dict[int, list[Box]]
    """Frame -> mask boxes applied there (frames to check)."""
    context: PhiContext
    modality: str
    kept: list[Box] = field(default_factory=list)
    """Words kept in the main pass: judged there in their full context, not residuals."""
    scores: dict[int, np.ndarray] = field(default_factory=dict)
    """Frame -> the main pass's character score map of the frame before masking (frames detected
    whole at full resolution): a stroke the detector gave no character score there is not text."""


def neighbourhood(box: Box, cols: int, rows: int) -> Box:
    if box.height >= 2 * box.width:  # a rotated line: its text height is its width
        h = max(box.width, 8)
        return box.pad(h + 2, int(1.5 * h) + 4).clip(cols, rows)
    h = max(box.height, 8)
    return box.pad(int(1.5 * h) + 4, h + 2).clip(cols, rows)


def _covered(word: Box, masks: list[Box]) -> bool:
    inside = sum(word.overlap(m) for m in masks)
    return inside >= 0.8 * max(1, word.area)


def _touches(word: Box, masks: list[Box]) -> bool:
    """True when the word overlaps a mask or lies within half a text height of one (a fragment)."""
    for m in masks:
        reach = max(2, min(m.height, word.height) // 2)
        if word.overlap(m.pad(reach)) > 0:
            return True
    return False


def check(
    finder: TextFinder, decider: PhiDecider, requests: list[VerifyRequest], *, prescreen: bool = True
) -> dict[int, list[Residual]]:
    """OCR the neighbourhood of every mask again; residual words per request key.

    With ``prescreen``, a mask neighbourhood that holds no glyph-like stroke outside the masks and
    the kept words is not sent to the detector (nothing readable is left there); a frame with no
    such neighbourhood is not read at all."""
    jobs: list[FrameJob] = []
    owners: list[tuple[int, list[int], list[Box]]] = []
    matchers: dict[int, Callable[[str], bool]] = {}
    for req in requests:
        rows, cols = req.gray.shape[1:3]
        seen: dict[bytes, int] = {}
        for frame, boxes in sorted(req.masks.items()):
            regions = merge_boxes([neighbourhood(b, cols, rows) for b in boxes], gap=2)
            if prescreen:
                # only the neighbourhoods where something glyph-like is left by the masks: a residual
                # touches a mask, so its strokes lie in that mask's neighbourhood
                score = req.scores.get(frame)
                regions = [r for r in regions if _strokes(req.gray[frame], r, boxes, req.kept, score)]
                if not regions:
                    continue  # nothing glyph-like left by the masks: nothing the detector could read
            digest = hashlib.sha1(usedforsecurity=False)
            for r in regions:
                digest.update(np.ascontiguousarray(req.gray[frame, r.y0 : r.y1, r.x0 : r.x1]).tobytes())
                digest.update(repr(r).encode())
            fingerprint = digest.digest()
            if fingerprint in seen:
                owners[seen[fingerprint]][1].append(frame)
                continue
            seen[fingerprint] = len(jobs)
            rgb = (
                req.rgb[frame]
                if req.rgb is not None
                else np.repeat(req.gray[frame][:, :, np.newaxis], 3, axis=2)
            )
            height = min(min(b.height, b.width) for b in boxes)
            jobs.append(
                FrameJob(
                    frame,
                    np.ascontiguousarray(rgb),
                    req.gray[frame],
                    regions=regions,
                    text_height=height,
                    near=boxes,
                    settled=matchers.setdefault(req.key, _settled_test(req.context)),
                )
            )
            owners.append((req.key, [frame], boxes))
    if not jobs:
        return {}
    found = finder.find(jobs)
    by_key = {r.key: r for r in requests}
    out: dict[int, list[Residual]] = {r.key: [] for r in requests}
    for (key, frames, masks), lines in zip(owners, found, strict=True):
        if not lines:
            continue
        req = by_key[key]
        decisions = decider.decide(lines, req.context, req.modality)
        for line, decs in zip(lines, decisions, strict=True):
            for word, dec in zip(line.words, decs, strict=True):
                if _covered(word.box, masks) or _blank(req.gray[frames[0]], word):
                    continue
                # a word PHI only as part of a phrase: its PHI word is masked already, or is a
                # residual itself (the stage then masks the rest of its phrase)
                redact = dec.redact and dec.reason != "phrase"
                if not redact and not _fragment(word, masks):
                    continue
                # Text away from the masks was read (and decided) in the main pass already;
                # what matters here is text at the masks' edges: fragments the masks missed.
                if not _touches(word.box, masks):
                    continue
                if any(word.box.overlap(k) >= 0.5 * max(1, word.box.area) for k in req.kept):
                    continue
                readable = dec.reason.startswith(_PHI_REASONS)
                if not readable and not _on_a_mask_line(word.box, masks):
                    continue  # unreadable texture spanning lines is not a fragment of masked text
                out[key].append(Residual(list(frames), word.box, readable, word.bright))
    return out


def _settled_test(ctx: PhiContext) -> Callable[[str], bool]:
    """A reading that matches one of the file's header values (see ``FrameJob.settled``)."""
    matcher = HeaderMatcher(ctx)
    return lambda text: bool(matcher.match(text))


def _strokes(
    gray: np.ndarray, region: Box, masks: list[Box], kept: list[Box], score: np.ndarray | None = None
) -> bool:
    """True when the region holds a glyph-like stroke (:mod:`privguard.pixels.screen`) that is
    not explained by the masks and the words kept as non-PHI: a letter or a fragment of one the
    masks left readable. A single component is enough here (a lone "1" left of a masked ".03.2008").

    A component is explained when it lies wholly inside the masks and kept words together, or at
    least half inside one kept word (that word's own letters, reaching past its box: ``check``
    skips a word half inside a kept word). With ``score`` (the main pass's character score map
    of the frame, before masking), a component the detector gave less than
    :data:`RESIDUE_SCORE` there is not a letter (speckle, an organ's edge)."""
    crop = np.ascontiguousarray(gray[region.y0 : region.y1, region.x0 : region.x1])
    if crop.size == 0:
        return False
    # the masks and kept words (each grown by a pixel) over the region: a component wholly inside
    # them is explained, also when it spans two of them ("TIS" and "0.4" merged into one blob)
    explained = np.zeros(crop.shape[:2], dtype=np.uint8)
    for e in [*masks, *kept]:
        c = e.pad(1).intersect(region)
        if c.x1 > c.x0 and c.y1 > c.y0:
            explained[c.y0 - region.y0 : c.y1 - region.y0, c.x0 - region.x0 : c.x1 - region.x0] = 1
    inside = cv2.integral(explained)
    for x, y, w, h in glyph_components(crop, kernel_size(*gray.shape[:2])):
        b = Box(int(x), int(y), int(x + w), int(y + h)).shift(region.x0, region.y0)
        covered = inside[y + h, x + w] - inside[y, x + w] - inside[y + h, x] + inside[y, x]
        if covered == w * h:
            continue
        if any(b.overlap(k.pad(1)) >= 0.5 * b.area for k in kept):
            continue  # a kept word's letter reaching past its box
        # a residual must touch a mask (check() drops words farther than half a text height);
        # strokes within one text height of a mask are looked at, farther ones were read before
        if not any(b.overlap(m.pad(max(3, min(m.height, m.width)))) > 0 for m in masks):
            continue
        if score is not None and _peak(score, b) < RESIDUE_SCORE:
            continue  # no character score before masking: speckle or an edge, not a letter
        return True
    return False


def _peak(score: np.ndarray, box: Box) -> float:
    """The highest character score within two pixels of ``box``."""
    r = box.pad(2).clip(score.shape[1], score.shape[0])
    if r.empty:
        return 0.0
    return float(score[r.y0 : r.y1, r.x0 : r.x1].max())


def _fragment(word: Word, masks: list[Box]) -> bool:
    """A short piece (3 characters or fewer) right at a mask's side on its line: what the first
    pass did not detect of the masked text ("11." before a masked ".03.2008"), whatever it reads."""
    core = [c for c in word.text if c.isalnum()]
    if len(core) > 3:
        return False
    for m in masks:
        if m.vertical_overlap(word.box) >= 0.5 and word.box.gap(m)[0] <= max(2, 0.3 * m.height):
            return True
    return False


def _on_a_mask_line(word: Box, masks: list[Box]) -> bool:
    return any(m.vertical_overlap(word) >= 0.5 and word.height <= 1.5 * max(1, m.height) for m in masks)


def _blank(gray: np.ndarray, word: Word) -> bool:
    """A 'word' on a flat patch (the mask itself) is detector noise, not text."""
    b = word.box.clip(gray.shape[1], gray.shape[0])
    if b.empty:
        return True
    patch = gray[b.y0 : b.y1, b.x0 : b.x1]
    return int(patch.max()) - int(patch.min()) < 12
