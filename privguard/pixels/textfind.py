"""Find and read the text of many frames at once: detection plan, glyph refinement, words, readings.

For each :class:`FrameJob` the finder decides what the detector sees:

* a frame whose longer side is at most ``large_side`` is detected whole, at
  full resolution;
* a larger frame (a 2k x 2.5k radiograph) is detected downscaled to
  ``detect_side``, which finds every line of ordinary size at a fraction of
  the cost, plus full-resolution crops around the classical text candidates
  (:mod:`privguard.pixels.candidates`) too small to survive the downscale;
  if those crops would cover much of the frame, the frame is detected whole;
* a job with ``regions`` (cine changes, verification neighbourhoods) is
  detected only there.

All detector inputs of all jobs go to :meth:`OCREngine.detect` in one call
(batched on GPU). Each box is refined from the text pixels
(:mod:`privguard.pixels.glyphs`), boxes of one word are merged, and boxes are
grouped into lines. Every segment is read upright and, when its shape allows
vertical text, at 90 and 270 degrees too; all readings are kept for the PHI
decision rather than trusting one pick. A segment the recognizer reads as
several words is split at its widest pixel gaps, and each word is read again
on its own crop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from privguard.pixels.boxes import Box, bounding
from privguard.pixels.candidates import candidate_regions, text_candidates
from privguard.pixels.glyphs import Glyphs, refine, split_words
from privguard.pixels.ocr import Detection, OCREngine, Reading
from privguard.pixels.screen import glyph_components, kernel_size

logger = logging.getLogger(__name__)

#: A rotated reading replaces the upright one only when it is this much more confident.
ROTATION_MARGIN = 0.1
#: Character blobs of the score map outside every detector box: extent and required peak.
ORPHAN_LOW = 0.3
ORPHAN_PEAK = 0.5
#: Long refined boxes less tall than this (pixels) are edges or lines, not legible text.
MIN_TEXT_HEIGHT = 6
#: Boxes taller than this share of the image's smaller side are not burned-in text.
MAX_TEXT_HEIGHT = 0.12
#: A text height (pixels) CRAFT detects comfortably; larger text in a region job is scaled to it.
COMFORTABLE_TEXT = 24
#: Text less tall than this (pixels) is detected again magnified (``SMALL_SCALE``): CRAFT finds
#: 7-10 px glyphs only in part (a date read as ``15,``, a name cut where it crosses anatomy).
SMALL_TEXT = 12
#: The magnification of small text's lines (and of verification regions around small text).
SMALL_SCALE = 2.0
#: How far along its line (text heights, each side) a small text's box is detected again.
SMALL_REACH = 8
#: An upright reading less confident than this is also read turned (90/270, or 180 when wide).
TURN_CHECK = 0.9
#: Words closer than this many text heights are read together as a phrase.
PHRASE_GAP = 1.3


@dataclass
class Word:
    """One word (or an unsplittable run of words) with its readings."""

    box: Box
    text: str
    confidence: float
    alternatives: tuple[Reading, ...] = ()
    """Other readings of the same pixels (own crop, other orientations)."""
    bright: bool | None = None
    """Text polarity, when the glyphs could be separated from the background."""
    orientation: int = 0
    mask: np.ndarray | None = field(default=None, repr=False)
    """The word's text pixels inside ``box`` (bool), when the glyphs were separated."""

    def readings(self) -> tuple[Reading, ...]:
        return (Reading(self.text, self.confidence), *self.alternatives)


@dataclass
class Phrase:
    """Adjacent words of a line (no wider gap than a space or two), read together as one crop.

    The detector cuts text at punctuation ("11" "06" "2017" for 11.06.2017); the
    phrase reading keeps it, so patterns and header values spanning words are found.
    """

    box: Box
    reading: Reading
    words: list[int]
    """Indices into the line's words."""


@dataclass
class Line:
    """Words on one text line, left to right (one frame)."""

    frame: int
    box: Box
    words: list[Word]
    phrases: list[Phrase] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass
class FrameJob:
    """One frame to search: its 8-bit views and, optionally, the only regions to look at."""

    frame: int
    rgb: np.ndarray
    gray: np.ndarray
    regions: list[Box] | None = None
    full: bool = False
    """Detect the whole frame at full resolution whatever its size."""
    known: list[Box] | None = None
    """Boxes of words already read in this frame: detections covering them are not read again."""
    text_height: int | None = None
    """The height of the text expected in ``regions``; large text is detected downscaled."""
    near: list[Box] | None = None
    """When set (verification: the masks), only text lines with a segment within half a text
    height of one of these boxes are read; other lines are dropped before recognition."""
    settled: Callable[[str], bool] | None = None
    """True for a reading that makes its word PHI whatever else is read of it (it matches one of
    the file's header values; the PHI decision takes the first reading that matches one). Other
    readings would only be more alternatives, so they are skipped: a wide segment whose upright
    reading, and each of its words, is settled is not read upside down; a word split off a
    segment whose token is settled is not read again on its own crop; a phrase whose words'
    main readings are all settled is not read."""
    score: np.ndarray | None = field(default=None, repr=False)
    """Set by :meth:`TextFinder.find` when the frame was detected whole at full resolution: the
    detector's character score map of the whole frame (0..1, frame-sized), else None."""


@dataclass
class _Unit:
    job: int
    image: np.ndarray
    offset: tuple[int, int]
    scale: float
    rows: list[tuple[int, int]] | None = None
    """A small-text band's lines: the rows (frame coordinates) of the boxes it was cut around."""


@dataclass
class _Segment:
    box: Box
    glyphs: Glyphs | None
    readings: dict[int, Reading] = field(default_factory=dict)


@dataclass
class FinderStats:
    """Counters for the report and the benchmark."""

    detector_inputs: int = 0
    detector_pixels: int = 0
    crops_read: int = 0


class TextFinder:
    """Plan detection, run the engine in batches, and turn boxes into read words.

    Parameters
    ----------
    engine
        The OCR engine (loaded once per process).
    large_side
        Frames whose longer side exceeds this are detected downscaled plus candidate crops.
    detect_side
        The longer side of the downscaled detection pass.
    small_text
        Candidates whose height would fall below this many pixels in the downscaled pass are
        also detected at full resolution.
    upside_down
        Also read every wide segment turned by 180 degrees (text burned in upside down); that
        reading is one more alternative for the PHI decision, never the word's main reading.
    stroke_filter
        In region jobs (cine strips, verification), drop detections that hold no glyph-like
        stroke (:mod:`privguard.pixels.screen`): a moving edge the detector took for text.
    """

    def __init__(
        self,
        engine: OCREngine,
        *,
        large_side: int = 1100,
        detect_side: int = 768,
        small_text: int = 12,
        upside_down: bool = True,
        stroke_filter: bool = True,
    ) -> None:
        self.engine = engine
        self.large_side = large_side
        self.detect_side = detect_side
        self.small_text = small_text
        self.upside_down = upside_down
        self.stroke_filter = stroke_filter
        self.stats = FinderStats()

    # -- planning -------------------------------------------------------------------------

    def _crop_unit(self, j: int, job: FrameJob, region: Box) -> _Unit:
        rows, cols = job.gray.shape
        r = region
        if r.width < 64 or r.height < 64:
            r = r.pad(max(0, (64 - r.width + 1) // 2), max(0, (64 - r.height + 1) // 2)).clip(cols, rows)
        crop = job.rgb[r.y0 : r.y1, r.x0 : r.x1]
        longest = max(r.width, r.height)
        s = 1.0
        if job.text_height and job.text_height > 1.3 * COMFORTABLE_TEXT:
            s = COMFORTABLE_TEXT / job.text_height  # large text: the detector needs far fewer pixels
        elif job.text_height and job.text_height < SMALL_TEXT:
            s = SMALL_SCALE  # small text: the detector finds it whole only magnified
        if longest * s > self.large_side:
            s = max(1.0, self.large_side / longest) if s > 1.0 else self.large_side / longest
        if s > 1.0:
            crop = cv2.resize(
                crop, (max(1, round(r.width * s)), max(1, round(r.height * s))), interpolation=cv2.INTER_CUBIC
            )
            return _Unit(j, np.ascontiguousarray(crop), (r.x0, r.y0), s)
        if s < 1.0:
            crop = cv2.resize(
                crop, (max(1, int(r.width * s)), max(1, int(r.height * s))), interpolation=cv2.INTER_AREA
            )
            return _Unit(j, np.ascontiguousarray(crop), (r.x0, r.y0), s)
        return _Unit(j, np.ascontiguousarray(crop), (r.x0, r.y0), 1.0)

    def _small_units(self, j: int, job: FrameJob, boxes: list[Box]) -> list[_Unit]:
        """Bands along the lines of small text found in a whole-frame pass, magnified.

        A box of small text (under ``SMALL_TEXT`` pixels high) is detected again in a band along
        its line, ``SMALL_REACH`` text heights to either side of it and one text height above and
        below, at ``SMALL_SCALE``: the parts CRAFT missed at native size (letters over anatomy, a
        date after its label) are found there. Frames with no small text are not touched, and a
        frame's bands cost a fraction of its whole-frame pass (they hold its small lines only)."""
        rows, cols = job.gray.shape
        bands: list[tuple[Box, list[tuple[int, int]]]] = []
        for b in boxes:
            vertical = is_vertical(b)
            h = b.width if vertical else b.height
            if h >= SMALL_TEXT or h < 3:
                continue
            reach = SMALL_REACH * h
            if vertical:
                bands.append((Box(b.x0 - h, b.y0 - reach, b.x1 + h, b.y1 + reach).clip(cols, rows), []))
            else:
                bands.append(
                    (Box(b.x0 - reach, b.y0 - h, b.x1 + reach, b.y1 + h).clip(cols, rows), [(b.y0, b.y1)])
                )
        merged: list[tuple[Box, list[tuple[int, int]]]] = []
        for b, lines in sorted(bands, key=lambda x: (x[0].x0, x[0].y0)):
            for k, (m, ml) in enumerate(merged):
                if m.overlap(b) > 0:
                    merged[k] = (m.union(b), ml + lines)
                    break
            else:
                merged.append((b, lines))
        units = []
        for m, lines in merged:
            s = SMALL_SCALE
            if max(m.width, m.height) * s > 2 * self.large_side:
                continue  # a band this long is a large frame's: its candidates have their own crops
            crop = cv2.resize(
                job.rgb[m.y0 : m.y1, m.x0 : m.x1],
                (max(1, round(m.width * s)), max(1, round(m.height * s))),
                interpolation=cv2.INTER_CUBIC,
            )
            units.append(_Unit(j, np.ascontiguousarray(crop), (m.x0, m.y0), s, lines or None))
        return units

    def _plan(self, j: int, job: FrameJob) -> list[_Unit]:
        rows, cols = job.gray.shape
        if job.regions is not None:
            return [
                self._crop_unit(j, job, r.clip(cols, rows))
                for r in job.regions
                if not r.clip(cols, rows).empty
            ]
        longest = max(rows, cols)
        if job.full or longest <= self.large_side:
            return [_Unit(j, job.rgb, (0, 0), 1.0)]
        s = self.detect_side / longest
        small = cv2.resize(
            job.rgb, (max(1, int(cols * s)), max(1, int(rows * s))), interpolation=cv2.INTER_AREA
        )
        units = [_Unit(j, small, (0, 0), s)]
        cands = [b for b in text_candidates(job.gray) if b.height * s < self.small_text]
        regions = candidate_regions(cands, cols, rows)
        if sum(r.area for r in regions) > 0.4 * rows * cols:
            return [_Unit(j, job.rgb, (0, 0), 1.0)]
        units += [self._crop_unit(j, job, r) for r in regions]
        return units

    # -- running ----------------------------------------------------------------------------

    def find(self, jobs: Sequence[FrameJob]) -> list[list[Line]]:
        """Detect and read the text of every job; one list of lines per job."""
        units: list[_Unit] = []
        for j, job in enumerate(jobs):
            units += self._plan(j, job)
        self.stats.detector_inputs += len(units)
        self.stats.detector_pixels += sum(int(u.image.shape[0] * u.image.shape[1]) for u in units)
        detected = self.engine.detect([u.image for u in units]) if units else []
        raw: list[list[Box]] = [[] for _ in jobs]
        scores: list[np.ndarray | None] = [None] * len(jobs)
        for u, det in zip(units, detected, strict=True):
            rows, cols = jobs[u.job].gray.shape
            for b in [*det.boxes, *_orphans(det)]:
                fb = (b.scale(1.0 / u.scale) if u.scale != 1.0 else b).shift(*u.offset).clip(cols, rows)
                known = jobs[u.job].known
                if known and sum(fb.overlap(k) for k in known) >= 0.6 * fb.area:
                    continue
                if not fb.empty:
                    raw[u.job].append(fb)
            if det.score is not None:
                scores[u.job] = _paste(scores[u.job], det.score, u, rows, cols)
        units_of = [0] * len(jobs)
        whole = [False] * len(jobs)
        for u in units:
            units_of[u.job] += 1
            full_size = u.image.shape[:2] == jobs[u.job].gray.shape
            whole[u.job] = u.scale == 1.0 and u.offset == (0, 0) and full_size
        # small text found in a whole-frame pass: its lines are detected again, magnified
        small = [
            v
            for j, job in enumerate(jobs)
            if job.regions is None and units_of[j] == 1 and whole[j]
            for v in self._small_units(j, job, raw[j])
        ]
        if small:
            native = [list(r) for r in raw]
            self.stats.detector_inputs += len(small)
            self.stats.detector_pixels += sum(int(u.image.shape[0] * u.image.shape[1]) for u in small)
            for u, det in zip(small, self.engine.detect([u.image for u in small]), strict=True):
                rows, cols = jobs[u.job].gray.shape
                for b in [*det.boxes, *_orphans(det)]:
                    # one source pixel of slack along the line: the magnified glyphs' ends are interpolated
                    fb = _on_line(b.scale(1.0 / u.scale).shift(*u.offset).pad(1, 0), u.rows).clip(cols, rows)
                    known = jobs[u.job].known
                    if known and sum(fb.overlap(k) for k in known) >= 0.6 * fb.area:
                        continue
                    if fb.empty or sum(fb.overlap(k) for k in native[u.job]) >= 0.7 * fb.area:
                        continue  # found at native size already: that box is the one read
                    raw[u.job].append(fb)
                if det.score is not None:
                    scores[u.job] = _paste(scores[u.job], det.score, u, rows, cols)
        for j, job in enumerate(jobs):
            if job.regions is None and units_of[j] == 1 and whole[j]:
                job.score = scores[j]
        segments = [
            self._segments(job, boxes, score) for job, boxes, score in zip(jobs, raw, scores, strict=True)
        ]
        segments = [_near_lines(job, segs) for job, segs in zip(jobs, segments, strict=True)]
        self._read_segments(jobs, segments)
        return [self._lines(job, segs) for job, segs in zip(jobs, segments, strict=True)]

    def _segments(self, job: FrameJob, boxes: list[Box], score: np.ndarray | None) -> list[_Segment]:
        rows, cols = job.gray.shape
        refined: list[Box] = []
        for b in _dedupe(boxes):
            refined.append(_settle(b, refine_any(job.gray, b, score), cols, rows))
        # Boxes of one word or line that touch once refined (CRAFT cuts dates at their dots and can
        # stop short of a word's last letters) become one segment, refined once more.
        segs = []
        too_tall = max(48, int(MAX_TEXT_HEIGHT * min(rows, cols)))
        # a box too tall for text both ways (anatomy) is dropped before joining: joining only grows
        # boxes, so it would be dropped after it too, together with the text lines it touched
        refined = [b for b in refined if min(b.width, b.height) <= too_tall]
        for b in _join_vertical(_join_line(refined)):
            # a vertical line's text height is its width
            text_h = b.width if is_vertical(b) else b.height
            if text_h > too_tall:
                continue  # anatomy the detector took for a letter; burned-in text is never this tall
            across, along = (b.width, b.height) if is_vertical(b) else (b.height, b.width)
            if across < 4 or (across < MIN_TEXT_HEIGHT and along > 12 * across):
                continue  # an edge or a line; text this small cannot be read, by OCR or by people
            g = refine_any(job.gray, b, score)
            seg = _Segment(_settle(b, g, cols, rows), g)
            if self.stroke_filter and job.regions is not None and not _has_strokes(job.gray, seg.box):
                continue  # a region pass (cine strip, verification) on a moving edge: no strokes
            segs.append(seg)
        return segs

    def _read_segments(self, jobs: Sequence[FrameJob], segments: list[list[_Segment]]) -> None:
        """Read every segment upright (vertical lines: at 90 and 270 degrees too) in one batch,
        then, in a second small batch, the turned readings of the segments the first one left
        unsure: 90/270 for boxes that could hold a turned word, 180 for wide ones."""
        first: list[tuple[int, int, int, np.ndarray]] = []
        for j, segs in enumerate(segments):
            gray = jobs[j].gray
            for k, s in enumerate(segs):
                crop = _crop(gray, s.box)
                first.append((j, k, 0, crop))
                if is_vertical(s.box):
                    first.append((j, k, 90, np.ascontiguousarray(np.rot90(crop, 1))))
                    first.append((j, k, 270, np.ascontiguousarray(np.rot90(crop, -1))))
        self._read(first, segments)
        second: list[tuple[int, int, int, np.ndarray]] = []
        for j, segs in enumerate(segments):
            gray = jobs[j].gray
            for k, s in enumerate(segs):
                upright = s.readings.get(0, Reading("", 0.0))
                unsure = upright.confidence < TURN_CHECK
                turnable = s.box.height >= 0.8 * s.box.width and not is_vertical(s.box)
                wide = self.upside_down and s.box.width > 1.5 * s.box.height
                if not unsure or not (turnable or wide):
                    continue
                if wide and not turnable and _settled(jobs[j].settled, upright.text):
                    continue  # PHI by its upright reading whichever way up it is
                crop = _crop(gray, s.box)
                if turnable:
                    second.append((j, k, 90, np.ascontiguousarray(np.rot90(crop, 1))))
                    second.append((j, k, 270, np.ascontiguousarray(np.rot90(crop, -1))))
                if wide:
                    second.append((j, k, 180, np.ascontiguousarray(np.rot90(crop, 2))))
        self._read(second, segments)

    def _read(self, work: list[tuple[int, int, int, np.ndarray]], segments: list[list[_Segment]]) -> None:
        if not work:
            return
        self.stats.crops_read += len(work)
        readings = self.engine.recognize([c for _, _, _, c in work])
        for (j, k, angle, _), reading in zip(work, readings, strict=True):
            segments[j][k].readings[angle] = reading

    def _lines(self, job: FrameJob, segs: list[_Segment]) -> list[Line]:
        words_per_seg: list[list[Word]] = []
        reread: list[tuple[int, int]] = []
        crops: list[np.ndarray] = []
        for si, s in enumerate(segs):
            upright = s.readings.get(0, Reading("", 0.0))
            best_angle, best = 0, upright
            if is_vertical(s.box):
                # a vertical line: the better rotated reading, unless the upright one is clearly better
                turned = [(a, r) for a, r in s.readings.items() if a in (90, 270) and r.text.strip()]
                if turned:
                    t_angle, t_best = max(turned, key=lambda ar: ar[1].confidence)
                    if t_best.confidence + ROTATION_MARGIN >= upright.confidence:
                        best_angle, best = t_angle, t_best
            # (a 180-degree reading only joins the alternatives: on upright text it is often read
            # confidently as something else, and every reading is kept for the PHI decision)
            for angle in (90, 270):
                r = s.readings.get(angle)
                if r is not None and r.text.strip() and r.confidence > best.confidence + ROTATION_MARGIN:
                    best_angle, best = angle, r
            others = tuple(r for a, r in s.readings.items() if a != best_angle and r.text.strip())
            if _not_text(s, best):
                words_per_seg.append([])
                continue
            bright = s.glyphs.bright if s.glyphs is not None else None
            tokens = best.text.split()
            boxes = None
            if best_angle == 0 and len(tokens) > 1 and s.glyphs is not None:
                boxes = split_words(s.glyphs, tokens, s.box)
            if boxes is None:
                mask = s.glyphs.mask_of(s.box) if s.glyphs is not None else None
                words_per_seg.append(
                    [Word(s.box, best.text.strip(), best.confidence, others, bright, best_angle, mask)]
                )
                continue
            ws = []
            for tok, wb in zip(tokens, boxes, strict=True):
                assert s.glyphs is not None
                ws.append(Word(wb, tok, best.confidence, others, bright, 0, s.glyphs.mask_of(wb)))
                if job.settled is not None and job.settled(tok):
                    continue  # PHI by its main reading: another reading would change nothing
                reread.append((si, len(ws) - 1))
                crops.append(_crop(job.gray, wb))
            words_per_seg.append(ws)
        lines = _group_lines(job.frame, segs, words_per_seg)
        # phrases: runs of words from different segments closer than PHRASE_GAP heights
        seg_of = {id(w): si for si, ws in enumerate(words_per_seg) for w in ws}
        pending: list[tuple[Line, list[int], Box]] = []
        for line in lines:
            run: list[int] = []
            for k, w in enumerate(line.words):
                if run:
                    prev = line.words[run[-1]]
                    if w.box.gap(prev.box)[0] > PHRASE_GAP * max(w.box.height, prev.box.height):
                        self._close_phrase(line, run, seg_of, pending)
                        run = []
                run.append(k)
            self._close_phrase(line, run, seg_of, pending)
        if job.settled is not None:
            # a phrase only adds PHI to words that have none yet: not read when every word's
            # main reading matches a header value already
            test = job.settled
            pending = [p for p in pending if not all(test(p[0].words[k].text) for k in p[1])]
        for _line, _run, box in pending:
            crops.append(_crop(job.gray, box))
        if crops:
            self.stats.crops_read += len(crops)
            got = self.engine.recognize(crops)
            for (si, wi), r in zip(reread, got[: len(reread)], strict=True):
                w = words_per_seg[si][wi]
                w.alternatives = (*w.alternatives, r)
            for (line, run, box), r in zip(pending, got[len(reread) :], strict=True):
                line.phrases.append(Phrase(box, r, run))
        return lines

    @staticmethod
    def _close_phrase(
        line: Line, run: list[int], seg_of: dict[int, int], pending: list[tuple[Line, list[int], Box]]
    ) -> None:
        if len(run) < 2 or len({seg_of.get(id(line.words[k])) for k in run}) < 2:
            return
        if any(line.words[k].orientation for k in run):
            return
        box = bounding(line.words[k].box for k in run)
        assert box is not None
        pending.append((line, list(run), box))


def _near_lines(job: FrameJob, segs: list[_Segment]) -> list[_Segment]:
    """For a job with ``near`` boxes: only the segments of text lines that have a segment within
    half a text height of one of them (the others' words cannot touch those boxes, and a line's
    decisions depend only on its own words)."""
    if job.near is None:
        return segs

    def touches(b: Box) -> bool:
        return any(b.overlap(m.pad(max(2, min(m.height, b.height) // 2))) > 0 for m in job.near or ())

    keep: set[int] = set()
    for members in _line_members([s.box for s in segs]):
        if any(touches(segs[k].box) for k in members):
            keep.update(members)
    return [s for k, s in enumerate(segs) if k in keep]


def _settled(test: Callable[[str], bool] | None, text: str) -> bool:
    """True when ``text`` and each of its words pass ``test`` (so every word the segment becomes,
    split or not, has a settled main reading)."""
    if test is None or not text.strip():
        return False
    return test(text.strip()) and all(test(tok) for tok in text.split())


#: A box this many times taller than wide is a vertical line of text (read at 90 / 270 degrees).
VERTICAL = 2.0


def is_vertical(box: Box) -> bool:
    """A box much taller than wide: a line of text rotated by 90 or 270 degrees (or one glyph)."""
    return box.height >= VERTICAL * max(1, box.width)


def _t(box: Box) -> Box:
    """The box in transposed coordinates (x and y swapped)."""
    return Box(box.y0, box.x0, box.y1, box.x1)


def refine_any(gray: np.ndarray, box: Box, score: np.ndarray | None) -> Glyphs | None:
    """:func:`refine` for upright boxes; for vertical ones, refined on the transposed frame (so the
    search runs along the rotated line) and turned back."""
    if not is_vertical(box):
        return refine(gray, box, score)
    sc = np.ascontiguousarray(score.T) if score is not None else None
    g = refine(np.ascontiguousarray(gray.T), _t(box), sc)
    if g is None:
        return None
    return Glyphs(
        _t(g.box),
        tuple(sorted((_t(c) for c in g.components), key=lambda b: (b.y0, b.x0))),
        g.bright,
        g.band,
        np.ascontiguousarray(g.mask.T),
    )


def _join_vertical(boxes: list[Box]) -> list[Box]:
    """Merge vertical boxes of one rotated line that touch or nearly touch (CRAFT cuts a vertical
    line where its letters are widest apart), until stable."""
    out = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                u = a.union(b)
                if not is_vertical(u) or a.width > 1.5 * a.height or b.width > 1.5 * b.height:
                    continue  # only pieces of a rotated line (never a word of an upright one)
                gx, gy = a.gap(b)
                shared = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
                if (
                    gx == 0
                    and gy <= max(1, max(a.width, b.width) // 2)  # a dot or a letter gap, turned
                    and shared >= 0.5 * min(a.width, b.width)
                    and 0.5 <= a.width / max(1, b.width) <= 2
                ):
                    out[i] = a.union(b)
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return out


def _has_strokes(gray: np.ndarray, box: Box) -> bool:
    """True when the box holds at least one glyph-like stroke (:mod:`privguard.pixels.screen`)."""
    rows, cols = gray.shape[:2]
    r = box.pad(2).clip(cols, rows)
    crop = np.ascontiguousarray(gray[r.y0 : r.y1, r.x0 : r.x1])
    return crop.size > 0 and len(glyph_components(crop, kernel_size(rows, cols))) > 0


def _not_text(seg: _Segment, reading: Reading) -> bool:
    """A long detection with at most one glyph blob and no reading: an edge (a lung apex, a
    collimator border) the detector took for text. Single characters are about as wide as tall,
    and real text the recognizer cannot read (another script) still has several glyphs."""
    blobs = len(seg.glyphs.components) if seg.glyphs is not None else 0
    return reading.confidence < 0.1 and blobs <= 1 and seg.box.width > 3 * seg.box.height


def _settle(box: Box, glyphs: Glyphs | None, cols: int, rows: int) -> Box:
    """A segment's box from the detector's box and the glyphs found in it.

    Horizontally the wider of the two (glyphs complete cut-off letters; the detector's
    extent is kept where the glyphs could not be separated from the background);
    vertically the glyphs' rows when they span the box, else those and the detector's rows
    less the margin CRAFT puts around text.
    """
    if glyphs is None:
        return box.pad(max(1, min(box.height, box.width) // 10)).clip(cols, rows)
    if is_vertical(box):
        return _t(
            _settle(
                _t(box), Glyphs(_t(glyphs.box), (), glyphs.bright, glyphs.band, glyphs.mask.T), rows, cols
            )
        )
    g = glyphs.box
    x0, x1 = min(g.x0, box.x0), max(g.x1, box.x1)
    if g.width >= 0.8 * box.width and g.height >= 0.5 * box.height:
        return Box(x0, g.y0, x1, g.y1)
    # glyphs found over part of the box only: their rows, or the detector's without its margin
    margin = int(0.12 * box.height)
    return Box(x0, min(g.y0, box.y0 + margin), x1, max(g.y1, box.y1 - margin))


def _orphans(det: Detection) -> list[Box]:
    """Characters the detector scored but left out of its boxes (a short isolated mark, an initial).

    CRAFT drops character blobs that are small at its half resolution; they still show in the
    score map. Blobs with a clear peak that no box covers are returned as boxes.
    """
    if det.score is None:
        return []
    score = det.score.astype(np.float32)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        (score >= ORPHAN_LOW).astype(np.uint8), connectivity=8
    )
    if n <= 1:
        return []
    peaks = np.zeros(n, dtype=np.float32)
    np.maximum.at(peaks, labels.ravel().astype(np.intp), score.ravel())
    out = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if peaks[i] < ORPHAN_PEAK or area < 6 or h < 4:
            continue
        b = Box(x, y, x + w, y + h)
        if any(b.overlap(d.pad(2)) for d in det.boxes):
            continue
        out.append(b.pad(max(2, h // 3)).clip(score.shape[1], score.shape[0]))
    return out


def _on_line(box: Box, lines: list[tuple[int, int]] | None) -> Box:
    """A box found in a small-text band, cut to the rows of the line it lies on (with a sixth of
    the line's height to spare): over anatomy CRAFT's magnified box takes in rows of the organ,
    which a mask would then cover outside the text."""
    if not lines:
        return box
    best = max(lines, key=lambda r: min(box.y1, r[1]) - max(box.y0, r[0]))
    if min(box.y1, best[1]) - max(box.y0, best[0]) <= 0:
        return box
    spare = math.ceil((best[1] - best[0]) / 6)
    return Box(box.x0, max(box.y0, best[0] - spare), box.x1, min(box.y1, best[1] + spare))


def _paste(target: np.ndarray | None, score: np.ndarray, unit: _Unit, rows: int, cols: int) -> np.ndarray:
    """Put a unit's score map into the frame-sized map (scaled back, maximum where units overlap)."""
    out = target if target is not None else np.zeros((rows, cols), dtype=np.float16)
    sh, sw = score.shape[:2]
    if unit.scale != 1.0:
        w = min(cols - unit.offset[0], max(1, round(sw / unit.scale)))
        h = min(rows - unit.offset[1], max(1, round(sh / unit.scale)))
        score = cv2.resize(score.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR).astype(
            np.float16
        )
    x0, y0 = unit.offset
    h = min(score.shape[0], rows - y0)
    w = min(score.shape[1], cols - x0)
    if h > 0 and w > 0:
        view = out[y0 : y0 + h, x0 : x0 + w]
        np.maximum(view, score[:h, :w], out=view)
    return out


def _crop(gray: np.ndarray, box: Box) -> np.ndarray:
    rows, cols = gray.shape
    pad = max(2, round(0.2 * min(box.height, box.width if box.height > 2 * box.width else box.height)))
    r = box.pad(pad).clip(cols, rows)
    return np.ascontiguousarray(gray[r.y0 : r.y1, r.x0 : r.x1])


def _dedupe(boxes: list[Box]) -> list[Box]:
    out: list[Box] = []
    for b in sorted(boxes, key=lambda b: -b.area):
        for i, o in enumerate(out):
            if b.overlap(o) >= 0.6 * min(b.area, o.area):
                out[i] = o.union(b)
                break
        else:
            out.append(b)
    return out


def _join_line(boxes: list[Box]) -> list[Box]:
    """Merge boxes on the same text line that overlap or touch (1 pixel), until stable."""
    out = _dedupe(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                gx, gy = a.gap(b)
                if (
                    gx <= 1
                    and gy == 0
                    and a.vertical_overlap(b) >= 0.5
                    and 0.5 <= a.height / max(1, b.height) <= 2
                ):
                    out[i] = a.union(b)
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return out


def _line_members(boxes: list[Box]) -> list[list[int]]:
    """Which boxes form one text line (same rows, similar height, within 2.5 heights; for
    vertical lines the same columns, stacked): lists of indices, in first-seen order."""
    parent = list(range(len(boxes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(boxes)):
        a = boxes[i]
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            if is_vertical(a) and is_vertical(b):
                # a rotated line: the same columns, stacked
                ratio = a.width / max(1, b.width)
                gx, gy = a.gap(b)
                shared = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
                if (
                    shared >= 0.5 * min(a.width, b.width)
                    and 0.5 <= ratio <= 2.0
                    and gy <= 2.5 * max(a.width, b.width)
                ):
                    parent[find(i)] = find(j)
                continue
            ratio = a.height / max(1, b.height)
            gx, _ = a.gap(b)
            if a.vertical_overlap(b) >= 0.5 and 0.5 <= ratio <= 2.0 and gx <= 2.5 * max(a.height, b.height):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _group_lines(frame: int, segs: list[_Segment], words: list[list[Word]]) -> list[Line]:
    """Group segments into text lines (see :func:`_line_members`), left to right."""
    out = []
    for members in _line_members([s.box for s in segs]):
        if len(members) > 1 and all(is_vertical(segs[k].box) for k in members):
            # reading order of a rotated line: top to bottom when read at 90 degrees, else bottom up
            turned = [w.orientation for k in members for w in words[k]]
            up = turned.count(270) > turned.count(90)
            members.sort(key=lambda k: -segs[k].box.y1 if up else segs[k].box.y0)
        else:
            members.sort(key=lambda k: segs[k].box.x0)
        ws = [w for k in members for w in words[k]]
        if not ws:
            continue
        box = bounding(w.box for w in ws)
        assert box is not None
        out.append(Line(frame, box, ws))
    out.sort(key=lambda ln: (ln.box.y0, ln.box.x0))
    return out
