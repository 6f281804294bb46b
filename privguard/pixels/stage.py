"""The Clean Pixel Data stage: triage, OCR, PHI decision, masks, verification, write-back.

:class:`OCRPixelStage` implements :class:`privguard.pixels.types.PixelStage`.
``process_many`` takes a chunk of files and runs every step over all of them
at once, so detection and recognition batches mix frames of several files:

1. decode (stored values) and render (8-bit view) each file; plan its frames
   (:mod:`privguard.pixels.cine`);
2. detect and read the text of every planned frame of every file (one batched
   :meth:`TextFinder.find`);
3. decide per word (:class:`PhiDecider`), propagate each word to the frames where
   it is present, and mask the PHI words and the known-device regions in the
   stored values;
4. verify: read the masks' neighbourhoods again, widen over residual PHI, up to
   ``max_rounds``; fail the file if PHI is still readable;
5. encode the changed frames (:mod:`privguard.pixels.encode`), write the review
   picture, and return a :class:`~privguard.pixels.types.PixelOutcome` per file.

An error on one file (no codec, damaged pixel data) fails that file only.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from privguard.errors import PrivguardError
from privguard.pixels.allowlist import AllowList
from privguard.pixels.boxes import Box, bounding, merge_boxes
from privguard.pixels.cine import CinePlan, plan, presence
from privguard.pixels.continuation import continue_line, continue_rows
from privguard.pixels.decode import DecodedImage, load
from privguard.pixels.encode import encode
from privguard.pixels.follow import follow
from privguard.pixels.fuzzy import HeaderMatcher
from privguard.pixels.mask import MaskBox, apply, fills
from privguard.pixels.ocr import OCREngine, get_engine, model_dir, resolve_device
from privguard.pixels.phi_text import Decision, PhiDecider, is_label
from privguard.pixels.render import Rendering, render, rerender
from privguard.pixels.screen import screen
from privguard.pixels.textfind import PHRASE_GAP, SMALL_TEXT, FrameJob, Line, TextFinder, Word
from privguard.pixels.triage import Triage, triage
from privguard.pixels.verify import Residual, VerifyRequest, check

if TYPE_CHECKING:
    from privguard.dicomio import Source
    from privguard.pixels.types import PixelOutcome
    from privguard.text.context import PhiContext

logger = logging.getLogger(__name__)

#: Decoded pixel values held at once per wave of files (about 1.6 GB as int32).
PIXEL_BUDGET = 400_000_000
#: A word is masked in the frames where at least this share of its text pixels is unchanged
#: (text over moving anatomy keeps about half: its anti-aliased edges change; absent text ~5%).
PRESENT = 0.35
#: Redacted words on a line closer than this many text heights are masked as one box
#: (the separators between them, "^", "/", "-", are covered too).
RUN_GAP = 2.0
#: Verification frames per file (besides the frames where words were found).
VERIFY_FRAMES = 6
#: How far after a PHI label its value must start (text heights) for the label not to be alone.
LABEL_REACH = 3.0


@dataclass
class _Found:
    """One word found in one frame, with its decision and the frames it appears in."""

    word: Word
    decision: Decision
    frame: int
    frames: list[int]
    line: int = -1
    """The text line it was read on (an id unique within the file)."""


@dataclass
class _File:
    index: int
    src: Source
    ctx: PhiContext
    triage: Triage
    started: float
    image: DecodedImage | None = None
    rendering: Rendering | None = None
    before_gray: np.ndarray | None = None
    before_rgb: np.ndarray | None = None
    plan: CinePlan | None = None
    jobs: list[int] = field(default_factory=list)
    found: list[_Found] = field(default_factory=list)
    masks: list[MaskBox] = field(default_factory=list)
    changed: set[int] = field(default_factory=set)
    rounds: int = 0
    residual_phi: bool = False
    unresolved: bool = False
    """Text the last verification round still found by the masks, not classifiable as non-PHI."""
    edge_strokes: int = 0
    lone_labels: int = 0
    """PHI labels (``Ref:``, ``DOB:``) with no word found after them on their line: their value
    went undetected, so no clean claim."""
    """Masks that left a piece of their letters unmasked (see :mod:`privguard.pixels.follow`): no
    clean claim."""
    error: str | None = None
    ocr_seconds: float = 0.0
    """This file's share of the batched OCR time (by detected pixels)."""
    own_seconds: float = 0.0
    """Time spent on this file alone: decoding, rendering, planning, encoding, preview."""
    region_frames: int = 0
    lines: int = 0
    screened_out: int = 0
    """Whole-frame passes the pixel screen dropped (no text-like strokes: CRAFT not run)."""
    matcher: HeaderMatcher | None = None
    scores: dict[int, np.ndarray] = field(default_factory=dict)
    """Frame -> the detector's character score map of the frame before masking, for frames
    detected whole at full resolution (verification looks there for what a stroke left by a mask
    looked like to the detector)."""

    def settled_matcher(self) -> HeaderMatcher:
        if self.matcher is None:
            self.matcher = HeaderMatcher(self.ctx)
        return self.matcher

    def settled(self, text: str) -> bool:
        """A reading that matches one of this file's header values (see ``FrameJob.settled``)."""
        if self.matcher is None:
            self.matcher = HeaderMatcher(self.ctx)
        return bool(self.matcher.match(text))

    @property
    def modality(self) -> str:
        return str(self.src.ds.get("Modality", "") or "").upper()


def _frames_summary(frames: list[int], total: int) -> str | list[int] | dict[str, int]:
    if total > 1 and len(frames) == total:
        return "all"
    if len(frames) <= 20:
        return sorted(frames)
    return {"count": len(frames), "first": min(frames), "last": max(frames)}


class OCRPixelStage:
    """The burned-in text stage (see the module docstring).

    Parameters
    ----------
    ocr
        ``auto`` (triage decides), ``on`` (every image with pixel data) or ``off`` (no image;
        a profile with ``pixels.ocr: off``).
    device
        ``auto``, ``cpu`` or ``cuda``.
    redact
        ``phi`` or ``all-text``.
    allowlist
        The merged allow-list.
    previews
        Directory for before/after pictures, or None.
    engine
        An OCR engine to use instead of the process-wide EasyOCR engine (tests, benchmarks).
    max_rounds
        Verification rounds (each may widen the masks).
    screen
        Run the cheap pixel screen (:mod:`privguard.pixels.screen`) before the detector and skip
        whole frames without text-like strokes, and verification neighbourhoods without strokes
        left outside the masks.
    ultrasound_regions
        Apply deid's ultrasound recipe in triage (:func:`privguard.pixels.triage.triage`): on
        ultrasound images with ``SequenceOfUltrasoundRegions``, everything outside the ultrasound
        regions is masked as a known region.
    """

    def __init__(
        self,
        *,
        ocr: str = "auto",
        device: str = "auto",
        redact: str = "phi",
        allowlist: AllowList,
        previews: Path | None = None,
        engine: OCREngine | None = None,
        max_rounds: int = 3,
        screen: bool = True,
        ultrasound_regions: bool = True,
    ) -> None:
        if ocr not in ("auto", "on", "off"):
            raise ValueError(f"unknown ocr mode '{ocr}'")
        self.ocr = ocr
        self.device = device
        self.redact = redact
        self.previews = Path(previews) if previews is not None else None
        self.decider = PhiDecider(allowlist, redact)
        self.max_rounds = max(1, max_rounds)
        self.screen = screen
        self.ultrasound_regions = ultrasound_regions
        self._triaged: dict[tuple[int, str], Triage] = {}
        self._engine = engine
        self._finder: TextFinder | None = None
        if engine is None and ocr != "off":
            model_dir()  # fail early (and cheaply) if EasyOCR or its weights are missing
            if device == "cuda":
                resolve_device(device)

    # -- the PixelStage protocol ------------------------------------------------------------

    def wants(self, src: Source) -> bool:
        return self.ocr != "off" and self.triage(src).wanted

    def triage(self, src: Source) -> Triage:
        """The triage decision for a parsed source (header only); remembered from ``wants`` until
        the file is processed (the deid catalogue has over a hundred rules to match)."""
        key = (id(src), str(src.path))
        got = self._triaged.get(key)
        if got is not None:
            return got
        pixel = src.pixel
        has = (pixel is not None and pixel.tag == 0x7FE00010) or (pixel is None and "PixelData" in src.ds)
        got = triage(src.ds, has_pixels=has, ocr=self.ocr, ultrasound_regions=self.ultrasound_regions)
        if len(self._triaged) > 4096:
            self._triaged.clear()
        self._triaged[key] = got
        return got

    def close(self) -> None:
        if self._finder is not None:
            self._finder.engine.close()
        self._finder = None

    @property
    def finder(self) -> TextFinder:
        if self._finder is None:
            engine = self._engine if self._engine is not None else get_engine(self.device)
            self._finder = TextFinder(engine, stroke_filter=self.screen)
        return self._finder

    def process_many(self, items: list[tuple[Source, PhiContext]]) -> list[PixelOutcome]:
        outcomes: list[PixelOutcome] = []
        wave: list[tuple[Source, PhiContext]] = []
        budget = 0
        for src, ctx in items:
            size = _pixel_count(src)
            if wave and budget + size > PIXEL_BUDGET:
                outcomes += self._wave(wave)
                wave, budget = [], 0
            wave.append((src, ctx))
            budget += size
        if wave:
            outcomes += self._wave(wave)
        return outcomes

    # -- one wave of files -------------------------------------------------------------------

    def _wave(self, items: list[tuple[Source, PhiContext]]) -> list[PixelOutcome]:
        files = [
            _File(i, src, ctx, self.triage(src), time.perf_counter()) for i, (src, ctx) in enumerate(items)
        ]
        for src, _ctx in items:
            self._triaged.pop((id(src), str(src.path)), None)
        for f in files:
            self._load(f)
        live = [f for f in files if f.error is None]
        if live:
            self._detect(live)
            for f in live:
                _cine_overlays(f)
                _collinear_phrases(f)
                f.lone_labels = _lone_labels(f)
                self._mask(f)
            self._verify([f for f in live if f.error is None])
        return [self._outcome(f) for f in files]

    def _load(self, f: _File) -> None:
        t0 = time.perf_counter()
        try:
            self._decode(f)
        finally:
            f.own_seconds += time.perf_counter() - t0

    def _decode(self, f: _File) -> None:
        try:
            f.image = load(f.src.path)
            f.rendering = render(f.image)
        except PrivguardError as exc:
            f.error = str(exc)
            return
        except (ValueError, MemoryError) as exc:
            f.error = f"the pixel data cannot be prepared for OCR ({type(exc).__name__})"
            return
        f.plan = plan(f.rendering.gray)
        if self.previews is not None:
            f.before_gray = f.rendering.gray.copy()
            f.before_rgb = f.rendering.rgb.copy() if f.rendering.rgb is not None else None

    def _detect(self, files: list[_File]) -> None:
        """Detect in two passes: whole frames, then the cine regions that known text does not explain."""
        first: list[tuple[_File, FrameJob]] = []
        for f in files:
            assert f.rendering is not None and f.plan is not None
            r = f.rendering
            for frame in f.plan.full:
                if self.screen and not screen(r.gray[frame]).may_hold_text:
                    f.screened_out += 1  # no glyph-like strokes: the detector cannot find text here
                    continue
                first.append((f, FrameJob(frame, r.color_frame(frame), r.gray[frame], settled=f.settled)))
        self._run(first)
        second: list[tuple[_File, FrameJob]] = []
        for f in files:
            assert f.rendering is not None and f.plan is not None
            r = f.rendering
            rows, cols = r.gray.shape[1:3]
            for frame in sorted(set(f.plan.cores) | set(f.plan.rescans)):
                if frame in f.plan.full:
                    continue
                present = [x.word.box for x in f.found if frame in x.frames]
                covered = [b.pad(max(2, b.height // 3)) for b in present]
                regions = f.plan.regions(frame, covered)
                if frame in f.plan.rescans:
                    regions = merge_boxes([*regions, f.plan.rescan_box or Box(0, 0, cols, rows)], gap=8)
                if regions:
                    job = FrameJob(
                        frame,
                        r.color_frame(frame),
                        r.gray[frame],
                        regions=regions,
                        known=present,
                        settled=f.settled,
                    )
                    second.append((f, job))
                    f.region_frames += 1
        self._run(second)

    def _run(self, work: list[tuple[_File, FrameJob]]) -> None:
        if not work:
            return
        jobs = [job for _, job in work]
        t0 = time.perf_counter()
        results = self.finder.find(jobs)
        elapsed = time.perf_counter() - t0
        pixels = [job.gray.size if job.regions is None else sum(b.area for b in job.regions) for job in jobs]
        total = max(1, sum(pixels))
        for (f, job), lines, px in zip(work, results, pixels, strict=True):
            f.ocr_seconds += elapsed * px / total
            if job.score is not None:
                f.scores[job.frame] = job.score
            assert f.rendering is not None
            gray = f.rendering.gray
            n = gray.shape[0]
            if job.regions is not None:
                lines = self._new_text(f, job.frame, lines)
            decisions = self.decider.decide(lines, f.ctx, f.modality)
            for line, decs in zip(lines, decisions, strict=True):
                f.lines += 1
                for word, dec in zip(line.words, decs, strict=True):
                    if n == 1:
                        frames = [0]
                    else:
                        share = presence(gray, job.frame, word.box, word.bright, mask=word.mask)
                        if dec.redact and dec.reason.startswith("header:"):
                            # header PHI: also the frames where its letters' cores are there (text
                            # over moving speckle can keep barely 35% of its whole glyph mask)
                            core = letter_pixels(gray[job.frame], word)
                            if core is not None and core is not word.mask:
                                cores = presence(gray, job.frame, word.box, word.bright, mask=core)
                                share = np.maximum(share, cores)
                        frames = [int(i) for i in np.flatnonzero(share >= PRESENT)] or [job.frame]
                    f.found.append(_Found(word, dec, job.frame, frames, f.lines))

    @staticmethod
    def _new_text(f: _File, frame: int, lines: list[Line]) -> list[Line]:
        """Drop words of a region pass that repeat text already found and present in this frame.

        A region crop may cut through known text; its partial readings ("Ocm" for "5.0cm")
        would only add noise, while the known word is already masked or kept in this frame.
        """
        known = [x.word.box for x in f.found if frame in x.frames]
        out = []
        for line in lines:
            words = [w for w in line.words if sum(w.box.overlap(k) for k in known) < 0.5 * max(1, w.box.area)]
            if not words:
                continue
            if len(words) == len(line.words):
                out.append(line)
            else:
                out.append(Line(line.frame, line.box, words))
        return out

    # -- masks ---------------------------------------------------------------------------------

    def _mask_boxes(self, f: _File) -> list[MaskBox]:
        """Mask boxes for the redacted words (runs of them on a line as one box) and known regions."""
        assert f.image is not None
        rows, cols = f.image.info.rows, f.image.info.columns
        n = f.image.info.frames
        kept = [x for x in f.found if not x.decision.redact]
        out: list[MaskBox] = []
        placed: list[tuple[int, Box, list[int], bool]] = []
        for run in _runs(f.found):
            gray0 = f.rendering.gray[run[0].frame] if f.rendering is not None else None
            boxes = []
            cores = []
            for x in run:
                b = glyph_box(x.word, gray0)
                h = min(b.height, b.width) if x.word.orientation else b.height
                pad = max(2, round(0.1 * h))
                # small text is found magnified: its box's ends are a source pixel less certain
                boxes.append(b.pad(pad + 1, pad) if h < SMALL_TEXT and not x.word.orientation else b.pad(pad))
                cores.append(b)
                if x.decision.reason in _REST_OF and not x.word.orientation:
                    whole = " ".join(y.word.text for y in run)
                    rest = _REST_OF[x.decision.reason](f.settled_matcher(), x.word.text, b, cols, whole)
                    if rest is not None:
                        boxes.append(rest.pad(pad))
            place = [x for x in run if x.decision.reason.startswith(_PLACE)]
            if place and not run[0].word.orientation:
                read = bounding(cores)
                rest = _run_place_rest(f.settled_matcher(), run, cores, cols)
                if rest is not None and read is not None:
                    # where the line's other PHI words were found, the rest is masked with them
                    reach = PHRASE_GAP * read.height
                    beside = [
                        x.word.box
                        for x in f.found
                        if x.line == run[0].line and x.decision.redact and x not in run
                    ]
                    if any(0 <= b.x0 - read.x1 <= reach for b in beside):
                        rest = Box(rest.x0, rest.y0, read.x1, rest.y1)
                    if any(0 <= read.x0 - b.x1 <= reach for b in beside):
                        rest = Box(read.x0, rest.y0, rest.x1, rest.y1)
                    boxes.append(rest.pad(max(2, round(0.1 * rest.height))))
            box = bounding(boxes)
            assert box is not None
            box = box.clip(cols, rows)
            core = bounding(cores)
            assert core is not None
            patches: list[Box] = []
            if f.rendering is not None:
                g0 = f.rendering.gray[run[0].frame]
                levels = [lv for x in run if (lv := text_level(x.word, g0)) is not None]
                level = (max(levels) if run[0].word.bright else min(levels)) if levels else None
                kept_here = [k.word.box for k in kept if set(k.frames) & set(run[0].frames)]
                kept_any = [k.word.box for k in kept]
                phi = any(x.decision.reason.startswith(("header:", "pattern:")) for x in run)
                if run[0].word.orientation:
                    # vertical text: the same steps on the transposed frame, where it runs along
                    # the rows (an ID on a side panel missing its first digits, a letter's piece)
                    t_box, t_core, t_patches, clear = _grow(
                        np.ascontiguousarray(g0.T), _t(box), _t(core), run[0].word.bright, level,
                        [_t(k) for k in kept_here], [_t(k) for k in kept_any], phi,
                    )  # fmt: skip
                    box, core, patches = _t(t_box), _t(t_core), [_t(b) for b in t_patches]
                else:
                    box, core, patches, clear = _grow(
                        g0, box, core, run[0].word.bright, level, kept_here, kept_any, phi
                    )
                if not clear:
                    f.edge_strokes += 1
            else:
                for k in kept:
                    kb = k.word.box
                    if kb.overlap(box) and not kb.overlap(core) and set(k.frames) & set(run[0].frames):
                        box = _trim(box, core, kb)
            dark = run[0].word.bright is not False
            frames = sorted(
                set(run[0].frames).intersection(*(set(x.frames) for x in run[1:])) or run[0].frames
            )
            for b in [box, *patches]:
                if len(frames) == n:
                    out.append(MaskBox(b, None, dark))
                else:
                    out += [MaskBox(b, fr, dark) for fr in frames]
            if not run[0].word.orientation:
                placed.append((run[0].line, box, frames, dark))
            # a word of the run in every frame (a static ID line) next to words read in some
            # frames only (a timer) is masked in its other frames on its own
            for x in run:
                more = sorted(set(x.frames) - set(frames))
                if more and len(x.frames) == n:
                    b = glyph_box(x.word, gray0)
                    own = b.pad(max(2, round(0.1 * b.height))).clip(cols, rows)
                    out += [MaskBox(own, fr, x.word.bright is not False) for fr in more]
        kept_boxes = [(k.word.box, k.frames) for k in kept]
        tall = _full_rows(placed, kept_boxes)
        extra = [(gw[1], gw[2], gw[3]) for gw, pl in zip(tall, placed, strict=True) if gw[1] != pl[1]]
        for eb, ef, ed in [*extra, *_bridges(tall, kept_boxes)]:
            out += [MaskBox(eb, None, ed)] if len(ef) == n else [MaskBox(eb, fr, ed) for fr in ef]
        for region in f.triage.regions:
            out.append(MaskBox(region.clip(cols, rows), None, True))
        return out

    def _mask(self, f: _File) -> None:
        assert f.image is not None
        f.masks = self._mask_boxes(f)
        if f.masks:
            f.changed |= apply(f.image.frames, f.masks, fills(f.image))

    # -- verification ----------------------------------------------------------------------------

    def _verify_frames(self, f: _File) -> dict[int, list[Box]]:
        assert f.image is not None
        n = f.image.info.frames
        ocr_masks = [m for m in f.masks if m.box not in f.triage.regions]
        origin = sorted({x.frame for x in f.found if x.decision.redact})
        extra: set[int] = set()
        if n > 1 and ocr_masks:
            touched = sorted({fr for m in ocr_masks for fr in (range(n) if m.frame is None else [m.frame])})
            step = max(1, len(touched) // VERIFY_FRAMES)
            extra = set(touched[::step][:VERIFY_FRAMES])
        out: dict[int, list[Box]] = {}
        for fr in sorted(set(origin) | extra):
            boxes = [m.box for m in ocr_masks if m.frame is None or m.frame == fr]
            if boxes:
                out[fr] = boxes
        return out

    def _verify(self, files: list[_File]) -> None:
        todo = [f for f in files if any(x.decision.redact for x in f.found)]
        for round_ in range(1, self.max_rounds + 1):
            requests = []
            for f in todo:
                assert f.image is not None and f.rendering is not None
                frames = self._verify_frames(f)
                rerender(f.image, f.rendering, sorted(frames))
                f.rounds = round_
                kept = [x.word.box for x in f.found if not x.decision.redact]
                requests.append(
                    VerifyRequest(
                        f.index, f.rendering.gray, f.rendering.rgb, frames, f.ctx, f.modality, kept, f.scores
                    )
                )
            if not requests:
                return
            t0 = time.perf_counter()
            residuals = check(self.finder, self.decider, requests, prescreen=self.screen)
            elapsed = time.perf_counter() - t0
            still = []
            for f in todo:
                f.ocr_seconds += elapsed / max(1, len(todo))
                res = residuals.get(f.index, [])
                if not res:
                    f.residual_phi = False
                    f.unresolved = False
                    continue
                f.residual_phi = any(r.readable_phi for r in res)
                # what the last round found is masked below but never read again: no clean claim
                f.unresolved = round_ == self.max_rounds
                if round_ == self.max_rounds and f.residual_phi:
                    continue
                self._phrase_of_residuals(f, res)
                self._widen(f, res)
                if round_ < self.max_rounds:
                    still.append(f)
            todo = still

    def _phrase_of_residuals(self, f: _File, residuals: list[Residual]) -> None:
        """PHI read in verification makes its phrase PHI: kept words on its line, a phrase gap
        or less away (a name whose first word the main pass could not read, "RAFAEL" kept beside
        it), become redacted and are masked with it."""
        assert f.image is not None
        rows, cols = f.image.info.rows, f.image.info.columns
        new: list[MaskBox] = []
        for r in residuals:
            if not r.readable_phi:
                continue
            reach = PHRASE_GAP * max(1, r.box.height)
            for k, x in enumerate(f.found):
                b = x.word.box
                if x.decision.redact or x.word.orientation or not set(x.frames) & set(r.frames):
                    continue
                if b.vertical_overlap(r.box) < 0.5 or b.gap(r.box)[0] > reach:
                    continue
                if x.decision.reason == "allow-list":
                    continue
                f.found[k] = _Found(x.word, Decision(True, "phrase"), x.frame, x.frames, x.line)
                box = glyph_box(x.word).pad(max(2, round(0.1 * b.height))).clip(cols, rows)
                dark = x.word.bright is not False
                if len(x.frames) == f.image.info.frames:
                    new.append(MaskBox(box, None, dark))
                else:
                    new += [MaskBox(box, fr, dark) for fr in x.frames]
        if new:
            f.masks += new
            f.changed |= apply(f.image.frames, new, fills(f.image))

    def _widen(self, f: _File, residuals: list[Residual]) -> None:
        """Grow the masks over residual words: a mask on the same line is extended to cover it."""
        assert f.image is not None
        rows, cols = f.image.info.rows, f.image.info.columns
        n = f.image.info.frames
        kept = [x.word.box for x in f.found if not x.decision.redact]
        new: list[MaskBox] = []
        for r in residuals:
            pad = max(2, round(0.2 * r.box.height))
            box = r.box.pad(pad).clip(cols, rows)
            frames: set[int] = set(r.frames)
            touching: bool | None = None
            rows_band: Box | None = None
            for m in f.masks:
                if m.frame is not None and m.frame not in r.frames:
                    continue
                reach = max(2, min(m.box.height, box.height) // 2)
                if m.box.pad(reach).overlap(box):
                    # the residual is part of the text this mask covers: mask it wherever that is masked
                    frames |= set(range(n)) if m.frame is None else {m.frame}
                    touching = m.dark if touching is None else touching
                    rows_band = m.box if rows_band is None else rows_band.union(m.box)
            if not r.readable_phi and rows_band is not None:
                # unreadable residue: a fragment left at a mask's edge lies on the mask's rows
                grow = max(2, rows_band.height // 3)
                box = Box(box.x0, max(box.y0, rows_band.y0 - grow), box.x1, min(box.y1, rows_band.y1 + grow))
            for k in kept:
                if k.overlap(box) and not k.overlap(r.box.intersect(rows_band) if rows_band else r.box):
                    if k.x0 >= box.x0:
                        box = Box(box.x0, box.y0, max(box.x0 + 1, k.x0), box.y1)
                    else:
                        box = Box(min(box.x1 - 1, k.x1), box.y0, box.x1, box.y1)
            if box.empty:
                continue
            # fill like the mask the residual belongs to: its box overlaps that mask, and a fill of the
            # other polarity there would bring the masked text back
            dark = touching if touching is not None else (r.bright is not False)
            if len(frames) == n:
                new.append(MaskBox(box, None, dark))
            else:
                new += [MaskBox(box, fr, dark) for fr in sorted(frames)]
        f.masks += new
        f.changed |= apply(f.image.frames, new, fills(f.image))
        logger.info("verification widened %d mask(s)", len(new))

    # -- outcome -----------------------------------------------------------------------------------

    def _outcome(self, f: _File) -> PixelOutcome:
        from privguard.pixels.types import PixelOutcome

        t_out = time.perf_counter()
        report: dict[str, Any] = {"triage": f.triage.reason}
        if f.triage.labels:
            report["known_devices"] = list(f.triage.labels)
        if f.error is not None or f.image is None:
            report["verification"] = "failed"
            report["seconds"] = round(f.own_seconds + f.ocr_seconds, 3)
            return PixelOutcome(report=report, failed=f.error or "the pixel data could not be processed")
        info = f.image.info
        engine = self._finder.engine if self._finder is not None else self._engine
        self._inside_masks(f)
        redacted = [x for x in f.found if x.decision.redact]
        kept = [x for x in f.found if not x.decision.redact]
        report.update(
            {
                "frames": info.frames,
                "frames_detected_whole": len(f.plan.full) if f.plan else 0,
                "frames_detected_regions": f.region_frames,
                "boxes_found": len(_unique(f.found)),
                "boxes_redacted": len(_unique(redacted)),
                "boxes_kept": len(_unique(kept)),
                "redacted": [
                    {
                        "box": x.word.box.as_list(),
                        "frames": _frames_summary(x.frames, info.frames),
                        "reason": x.decision.reason,
                    }
                    for x in _unique(redacted)
                ],
                "kept": [
                    {
                        "text": x.word.text,
                        "box": x.word.box.as_list(),
                        "frames": _frames_summary(x.frames, info.frames),
                        "reason": x.decision.reason,
                    }
                    for x in _unique(kept)
                ],
                "known_regions_masked": len(f.triage.regions),
                "frames_screened_out": f.screened_out,
                "ocr": {
                    "engine": engine.name if engine is not None else "not-run",
                    "device": engine.device if engine is not None else "none",
                    "redact": self.redact,
                },
            }
        )
        if not f.found:
            verification = "no-text"
        elif f.residual_phi:
            verification = "failed"
        elif f.unresolved or f.edge_strokes or f.lone_labels:
            verification = "needs_review"
        else:
            verification = "passed"
        report["verification"] = verification
        if f.edge_strokes:
            report["masks_leaving_letter_pieces"] = f.edge_strokes
        if f.lone_labels:
            report["labels_without_value"] = f.lone_labels
        report["verification_rounds"] = f.rounds
        if verification == "failed":
            report["seconds"] = round(f.own_seconds + f.ocr_seconds, 3)
            return PixelOutcome(
                report=report,
                failed=f"PHI was still readable in the pixels after {f.rounds} verification round(s)",
            )
        # A file is claimed clean (Burned In Annotation NO, code 113101) only when verification
        # passed or no text was found; text still found but not classifiable as non-PHI keeps
        # Burned In Annotation YES and the file is reported for review (never a false NO).
        out = PixelOutcome(report=report, verified=verification != "needs_review")
        if verification == "needs_review":
            out.elements["BurnedInAnnotation"] = "YES"
        if f.changed:
            enc = encode(f.image, f.image.frames, f.changed)
            out.pixel_data = enc.pixel_data
            out.transfer_syntax = enc.transfer_syntax
            out.elements.update(enc.elements)
            report["output"] = enc.output
            report["frames_changed"] = len(f.changed)
        else:
            report["output"] = "unchanged"
        if self.previews is not None and f.masks:
            report["preview"] = self._preview(f)
        report["ocr_seconds"] = round(f.ocr_seconds, 3)
        f.own_seconds += time.perf_counter() - t_out
        report["seconds"] = round(f.own_seconds + f.ocr_seconds, 3)
        logger.info(
            "pixels: %d box(es) found, %d redacted, %d kept, verification %s",
            report["boxes_found"],
            report["boxes_redacted"],
            report["boxes_kept"],
            verification,
        )
        return out

    def _inside_masks(self, f: _File) -> None:
        """A 'kept' word under a PHI mask (a fragment of masked text, read on its own) is redacted."""
        ocr_masks = [m for m in f.masks if m.box not in f.triage.regions]
        for k, x in enumerate(f.found):
            if x.decision.redact:
                continue
            b = x.word.box
            inside = max(
                (b.overlap(m.box) for m in ocr_masks if m.frame is None or m.frame in x.frames), default=0
            )
            if inside >= 0.3 * max(1, b.area):
                f.found[k] = _Found(x.word, Decision(True, "under-mask"), x.frame, x.frames)

    def _preview(self, f: _File) -> str:
        from privguard.pixels.preview import write_preview

        assert f.image is not None and f.rendering is not None and self.previews is not None
        counts: dict[int, int] = {}
        for m in f.masks:
            for fr in range(f.image.info.frames) if m.frame is None else [m.frame]:
                counts[fr] = counts.get(fr, 0) + 1
        frame = max(counts, key=lambda k: counts[k]) if counts else 0
        rerender(f.image, f.rendering, [frame])
        before = (
            f.before_rgb[frame]
            if f.before_rgb is not None
            else np.repeat(f.before_gray[frame][:, :, np.newaxis], 3, axis=2)  # type: ignore[index]
        )
        after = f.rendering.color_frame(frame)
        name = hashlib.sha256(str(f.src.path).encode()).hexdigest()[:16] + ".png"
        red = [x.word.box for x in f.found if x.decision.redact and frame in x.frames]
        green = [x.word.box for x in f.found if not x.decision.redact and frame in x.frames]
        write_preview(self.previews / name, before, after, red, green, list(f.triage.regions))
        return name


def glyph_box(word: Word, gray: np.ndarray | None = None) -> Box:
    """The word's box, brought in to the rows (upright text) or columns (rotated text) its text
    pixels occupy: the mask follows the letters, not the margin a detector puts around them (which
    varies with the OCR stack's version and numerics).

    The text pixels are the word's glyph mask and, when ``gray`` is given, only those of them near
    the text's extreme grey level (a glyph mask that took in the edge of a panel the text sits on
    would otherwise reach past the letters). Along the line the word's box is kept (it is already
    the wider of the detector's box and the glyphs', so letters the detector cut off stay
    covered). When the text pixels span less than 60% of the box across the line (a partial
    separation), the box is kept as it is.
    """
    b = word.box
    m = word.mask
    if m is None or m.shape != (b.height, b.width) or not m.any():
        return b
    sel = m
    if gray is not None and word.bright is not None:
        patch = gray[b.y0 : b.y1, b.x0 : b.x1].astype(np.int16)
        if patch.shape == m.shape:
            level = int(patch[m].max()) if word.bright else int(patch[m].min())
            background = int(np.median(patch[~m])) if (~m).any() else int(np.median(patch))
            contrast = abs(level - background)
            if contrast >= 40:
                near = m & (np.abs(patch - level) <= 0.3 * contrast)
                if near.sum() >= 0.2 * m.sum():
                    sel = near
    axis = 0 if word.orientation else 1
    counts = sel.sum(axis=axis)
    keep = np.flatnonzero(counts >= min(2, int(counts.max())))
    a0, a1 = int(keep[0]), int(keep[-1]) + 1
    across = b.width if word.orientation else b.height
    if a1 - a0 < 0.6 * across:
        return b
    if word.orientation:
        return Box(b.x0 + a0, b.y0, b.x0 + a1, b.y1)
    return Box(b.x0, b.y0 + a0, b.x1, b.y0 + a1)


def over_marks(gray: np.ndarray, core: Box, bright: bool | None, level: int | None) -> Box:
    """Grow a PHI box up and down over the diacritics of its letters (the accents of Ő or É above
    the capitals, a cedilla below Ç): small marks of the text's grey level within half a text
    height of the box, in its columns, no taller than about a third of the text height, set apart
    from anything beyond them by a blank row.

    A band whose text-coloured pixels do not stop before half a text height (another line, a
    panel's edge) or that are dense (a bar) is not taken: the box then stays as it is there."""
    rows = gray.shape[0]
    h = core.height
    if h < 6 or bright is None or level is None:
        return core
    inside = gray[core.y0 : core.y1, core.x0 : core.x1].astype(np.int16)
    contrast = abs(level - int(np.median(inside)))
    if contrast < 40:
        return core
    reach = max(3, h // 2)
    y0, y1 = core.y0, core.y1

    def rows_with_marks(lo: int, hi: int, upward: bool) -> int:
        """How many rows next to the box hold marks (0 when there are none): after at most a
        small gap, rows with text-coloured pixels, then a blank row within the reach."""
        lo, hi = max(0, lo), min(rows, hi)
        if hi <= lo:
            return 0
        band = np.abs(gray[lo:hi, core.x0 : core.x1].astype(np.int16) - level) <= 0.3 * contrast
        counts = band.sum(axis=1)
        order = counts[::-1] if upward else counts
        hits = np.flatnonzero(order > 0)
        if hits.size == 0 or int(hits[0]) > max(2, h // 5):
            return 0  # nothing right by the letters
        blank = np.flatnonzero(order[int(hits[0]) :] == 0)
        if blank.size == 0:
            return 0  # text-coloured pixels run on past the reach: another line, not marks
        end = int(hits[0]) + int(blank[0])
        if end - int(hits[0]) > 0.35 * h:
            return 0  # taller than an accent or a cedilla: a bar, a tick scale, a stroke
        marks = order[int(hits[0]) : end]
        if int(marks.max()) > 0.5 * core.width or int(marks.sum()) > 0.2 * marks.size * core.width:
            return 0  # dense: a bar or a line, not marks
        return end

    up = rows_with_marks(y0 - reach, y0, True)
    down = rows_with_marks(y1, y1 + reach, False)
    return Box(core.x0, y0 - up, core.x1, y1 + down) if up or down else core


def text_level(word: Word, gray: np.ndarray) -> int | None:
    """The grey level the word's letters are drawn in (its glyph pixels' upper or lower quartile),
    or None when its glyphs were not separated."""
    b, m = word.box, word.mask
    if m is None or word.bright is None or m.shape != (b.height, b.width) or m.sum() < 4:
        return None
    vals = gray[b.y0 : b.y1, b.x0 : b.x1][m]
    return int(np.percentile(vals, 75 if word.bright else 25))


def extend_over_glyphs(
    gray: np.ndarray, core: Box, bright: bool | None, kept: list[Box], level: int | None = None
) -> Box:
    """Grow a PHI box sideways over glyphs the detector left out.

    Only *glyph-shaped* connected components count: pixels of the text's grey level that form a
    component lying on the box's rows (not reaching more than a quarter of the text height above
    or below them), at least a third of the text height tall, no wider apart than a word space,
    up to four text heights each way, never into a kept word and only over a flat background.
    Speckle grains or anatomy of the text's grey level rarely have a glyph's shape and position,
    and a column is never taken because of scattered bright pixels alone, so the mask follows
    the letters rather than the texture around them. A date read from its second digit on
    ("1.03.2008" of "11.03.2008") would otherwise leave the first one readable.
    """
    rows, cols = gray.shape[:2]
    h = core.height
    if h < 4 or core.width < 2:
        return core
    band = gray[core.y0 : core.y1].astype(np.int16)
    inside = band[:, core.x0 : core.x1]
    if level is None:
        level = int(inside.max()) if bright is not False else int(inside.min())
    background = int(np.median(band))
    contrast = abs(level - background)
    if contrast < 40:
        return core
    reach = 4 * h
    dy = max(2, h // 2)
    win = Box(core.x0 - reach - 1, core.y0 - dy, core.x1 + reach + 1, core.y1 + dy).clip(cols, rows)
    area = gray[win.y0 : win.y1, win.x0 : win.x1].astype(np.int16)
    near = np.abs(area - level) <= 0.3 * contrast
    n, labels, stats, _ = cv2.connectedComponentsWithStats(near.astype(np.uint8), connectivity=8)
    # burned-in letters are drawn in one colour: most of their pixels sit at the text's level,
    # where speckle and anatomy only graze it (compared with the core's own letters)
    exact = np.abs(area - level) <= 0.12 * contrast
    core_near = np.abs(inside - level) <= 0.3 * contrast
    core_frac = float((np.abs(inside - level) <= 0.12 * contrast).sum()) / max(1, int(core_near.sum()))
    hits = np.bincount(labels.ravel(), weights=exact.ravel().astype(np.float64), minlength=n)
    tol = max(1, h // 4)
    glyph_cols = np.zeros(win.width, dtype=bool)
    for i in range(1, n):
        x, y, w, hh, a = (int(v) for v in stats[i])
        top, bottom = win.y0 + y, win.y0 + y + hh
        if top < core.y0 - tol or bottom > core.y1 + tol:
            continue  # reaches off the line: texture or anatomy, not a letter of this line
        if hh < max(2, h // 3) or w > 2 * h:
            continue  # a dot, a grain, or a long streak
        if hits[i] / max(1, a) < 0.5 * core_frac:
            continue  # not drawn in the text's colour
        glyph_cols[x : x + w] = True
    # a column whose non-text pixels vary is texture (speckle, anatomy): its grains are not letters
    glyph = cv2.dilate(near.astype(np.uint8), np.ones((3, 5), np.uint8)) > 0
    off = core.y0 - win.y0
    lines = area[off : off + core.height]
    gmask = glyph[off : off + core.height]
    masked = np.where(gmask, np.nan, lines.astype(np.float32))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spread = np.nan_to_num(np.nanstd(masked, axis=0), nan=0.0)
    textured = spread > 12
    gap_limit = max(2, int(0.6 * h))
    x0, x1 = core.x0, core.x1
    for step in (-1, 1):
        x = (core.x0 - 1) if step < 0 else core.x1
        gap = 0
        last = core.x0 if step < 0 else core.x1 - 1
        while win.x0 <= x < win.x1 and abs(x - (core.x0 if step < 0 else core.x1)) <= reach:
            k = x - win.x0
            if any(kb.x0 <= x < kb.x1 and kb.vertical_overlap(core) > 0 for kb in kept) or textured[k]:
                break
            if glyph_cols[k]:
                last, gap = x, 0
            else:
                gap += 1
                if gap > gap_limit:
                    break
            x += step
        if step < 0:
            x0 = min(x0, last)
        else:
            x1 = max(x1, last + 1)
    return Box(x0, core.y0, x1, core.y1)


#: Frame counters and timers of a cine ("3/10", "00:01.3", "2.40s"): short numbers that a
#: date or time pattern would otherwise take for PHI.
_COUNTER = re.compile(
    r"\d{1,3}\s*/\s*\d{1,3}|\d{1,2}\s*[:.]\s*\d{2}([:.]\d{1,3})?\s*s?|\d{1,3}\s*[.,]\s*\d{1,3}\s*s"
)
#: A piece of a counter or timer as the reader may cut it ("00 ,", "05s", "/6").
_FRAGMENT = re.compile(r"[\d\s.,:/']+s?")


def letter_pixels(gray: np.ndarray, word: Word) -> np.ndarray | None:
    """The word's glyph pixels drawn in the text's own colour (its letters' cores, not their
    anti-aliased edges or grains of background the glyph mask took in): present-or-absent in
    another frame is measured on these, so text over moving speckle does not look half gone."""
    b, m = word.box, word.mask
    if m is None or word.bright is None or m.shape != (b.height, b.width) or m.sum() < 6:
        return m
    patch = gray[b.y0 : b.y1, b.x0 : b.x1].astype(np.int16)
    level = int(np.percentile(patch[m], 75 if word.bright else 25))
    background = int(np.median(patch[~m])) if (~m).any() else 0
    contrast = abs(level - background)
    if contrast < 30:
        return m
    core = m & (np.abs(patch - level) <= 0.25 * contrast)
    return core if core.sum() >= max(6, 0.2 * m.sum()) else m


def changes_in_place(gray: np.ndarray, word: Word, frame: int, bright: bool | None = None) -> bool:
    """True when the word's letters change partly in some frame (another number drawn in the same
    place: a counter, a timer), rather than staying (static text) or vanishing (transient text).
    ``bright`` overrides the word's polarity (the one read at the same place in other frames,
    when this reading's is the other): its glyph mask is then the other polarity's, so the
    letters are looked for in the whole box."""
    b, m = word.box, word.mask
    top = 75  # the letters' level: a high percentile of the glyph mask's pixels
    if bright is not None and bright != word.bright and m is not None:
        m, top = np.ones_like(m, dtype=bool), 95  # the whole box: letters are its extreme few
    else:
        bright = word.bright
    if m is None or bright is None or gray.shape[0] < 2 or m.shape != (b.height, b.width) or m.sum() < 6:
        return False
    stack = gray[:, b.y0 : b.y1, b.x0 : b.x1].astype(np.int16)
    ref = stack[frame]
    level = int(np.percentile(ref[m], top if bright else 100 - top))
    background = int(np.median(ref[~m])) if (~m).any() else int(np.median(ref))
    contrast = abs(level - background)
    if contrast < 30:
        return False
    letters = m & (np.abs(ref - level) <= 0.25 * contrast)
    if letters.sum() < 6:
        return False
    gone = np.abs(stack[:, letters] - level) > 0.5 * contrast  # (frames, letter pixels)
    share = gone.mean(axis=1)
    return bool(((share >= 0.08) & (share <= 0.85)).any())


def _digits(text: str) -> str:
    """A reading with the usual OCR letter-for-digit confusions folded (for counter shapes only),
    without the stray marks the reader adds at its ends ("~00.15s", "00.10s_")."""
    t = text.strip().strip("~_'\"`|[](){}-")
    unit = t[-1:] in ("s", "S")  # a timer's unit, not a 5
    core = t[:-1] if unit else t
    out = core.translate(str.maketrans("OoQDIlSZB", "000011528"))
    if not unit and re.fullmatch(r"\d{1,3}[.,]\d{2}5", out):
        out, unit = out[:-1], True  # a timer's unit read as a 5 ("00.105")
    return out + ("s" if unit else "")


def _cine_overlays(f: _File) -> None:
    """Counters and timers that change from frame to frame are not PHI (issue: a "3/10" in every
    frame of a loop was masked as a date). Only words flagged by a date / time / number *pattern*
    alone, unreadable ones, and ones masked only for their place in a phrase or next to PHI are
    reconsidered, never a header match; the word must look like a counter or timer (or sit where
    one was read in another frame) and its letters must change in place between frames. A word
    masked for its place in a phrase or next to PHI must also have been read as non-PHI at the
    same place in another frame."""
    if f.rendering is None or f.rendering.gray.shape[0] < 2:
        return
    gray = f.rendering.gray

    def counter_shaped(x: _Found) -> bool:
        texts = [_digits(r.text) for r in x.word.readings() if r.text.strip()]
        return any(_COUNTER.fullmatch(t) and sum(c.isdigit() for c in t) <= 6 for t in texts)

    def fragment(x: _Found) -> bool:
        """A piece of a counter or timer: digits and their separators only."""
        t = _digits(x.word.text)
        return bool(_FRAGMENT.fullmatch(t)) and 1 <= sum(c.isdigit() for c in t) <= 6

    def at(x: _Found, others: list[_Found]) -> list[_Found]:
        """The words read at the same place (mostly the same box, or this one mostly inside it)."""
        b = x.word.box
        return [
            o
            for o in others
            if o is not x and (o.word.box.iou(b) >= 0.5 or o.word.box.overlap(b) >= 0.7 * b.area)
        ]

    shaped = [x for x in f.found if counter_shaped(x)]
    kept = [
        x for x in f.found if not x.decision.redact and x.decision.reason in ("allow-list", "cine-overlay")
    ]
    changed: list[int] = []
    for k, x in enumerate(f.found):
        reason = x.decision.reason
        if not x.decision.redact:
            continue
        here = at(x, shaped)
        if reason.startswith("pattern:") or reason == "unreadable":
            # a counter misread in one frame ("@0,@Os") sits where it was read as one in another
            if not counter_shaped(x) and not here:
                continue
        elif reason in ("phrase", "adjacent"):
            elsewhere = [o for o in at(x, kept) if o.frame != x.frame]
            if not elsewhere or not (counter_shaped(x) or here or fragment(x)):
                continue
            here = here + elsewhere
        else:
            continue
        # the polarity read at the same place in other frames, when this reading's differs
        polarities = [x.word.bright, *{o.word.bright for o in here if o.word.bright != x.word.bright}]
        if any(changes_in_place(gray, x.word, x.frame, b) for b in polarities):
            f.found[k] = _Found(x.word, Decision(False, "cine-overlay"), x.frame, x.frames, x.line)
            changed.append(k)
    # a word at the place where another frame's reading changes in place (a counter or timer
    # whose letters this frame's reading could not show changing: read with the wrong polarity,
    # or its static part only) is that counter or timer
    confirmed = [f.found[j] for j in changed]
    for k, x in enumerate(f.found):
        reason = x.decision.reason
        if not x.decision.redact or not (
            reason.startswith("pattern:") or reason in ("unreadable", "phrase", "adjacent")
        ):
            continue
        if any(o.frame != x.frame for o in at(x, confirmed)):
            f.found[k] = _Found(x.word, Decision(False, "cine-overlay"), x.frame, x.frames, x.line)
            changed.append(k)
    # the static part of a timer ("00." of "00.05s") beside its changing part, where a counter
    # or timer was read, or non-PHI at the same place, in another frame: masked only for its place
    # in a phrase or next to PHI (its digits), or unreadable
    for k, x in enumerate(f.found):
        reason = x.decision.reason
        if not x.decision.redact or not (
            (reason in ("phrase", "adjacent") and fragment(x)) or reason == "unreadable"
        ):
            continue
        if not any(o.frame != x.frame for o in at(x, shaped + kept)):
            continue
        h = x.word.box.height
        if any(
            f.found[j].line == x.line
            and f.found[j].frame == x.frame
            and f.found[j].word.box.gap(x.word.box)[0] <= 0.5 * max(h, f.found[j].word.box.height)
            for j in changed
        ):
            f.found[k] = _Found(x.word, Decision(False, "cine-overlay"), x.frame, x.frames, x.line)


def _collinear(a: Box, b: Box, rotated: bool) -> bool:
    """Two word boxes on one line of text, a phrase gap apart at most: side by side on the same
    rows, or (``rotated``: either is vertical text) stacked in the same columns."""
    if rotated:
        t = max(min(a.width, a.height), min(b.width, b.height))
        shared = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
        return shared >= 0.5 * min(a.width, b.width) and a.gap(b)[1] <= PHRASE_GAP * t
    return a.vertical_overlap(b) >= 0.5 and a.gap(b)[0] <= PHRASE_GAP * max(a.height, b.height)


#: The reasons a masked word spreads along its line for (:func:`_collinear_phrases`).
_COLLINEAR = ("header:", "pattern:", "phrase", "label-value")


def _touching(a: Box, b: Box) -> bool:
    """Whether two word boxes on the same rows touch: at most 0.15 text heights apart (1 px at
    least), as the pieces of one word cut by the recognizer are."""
    gap = a.gap(b)[0]
    return a.vertical_overlap(b) >= 0.5 and gap <= max(1, 0.15 * max(a.height, b.height))


def _tail(a: Box, b: Box) -> bool:
    """Whether word box ``a`` follows ``b`` on its rows, :data:`LABEL_REACH` text heights on at most."""
    return a.vertical_overlap(b) >= 0.5 and 0 <= a.x0 - b.x1 <= LABEL_REACH * max(a.height, b.height)


def _lone_labels(f: _File) -> int:
    """PHI labels (``Ref:``, ``DOB:``, upright) with no other word found after them on their
    rows within :data:`LABEL_REACH` text heights, in their frame: the value the label announces
    was not detected (faint text over an organ), so it cannot have been checked."""
    n = 0
    for x in f.found:
        b = x.word.box
        if x.word.orientation or not is_label(x.word.text):
            continue
        reach = LABEL_REACH * max(1, b.height)
        if not any(
            y is not x
            and y.frame == x.frame
            and y.word.box.vertical_overlap(b) >= 0.5
            and 0 <= y.word.box.x0 - b.x1 + 1 <= reach
            for y in f.found
        ):
            n += 1
    return n


def _vertical(word: Word) -> bool:
    """A word read turned that lies along a column: a short one read turned (a ``[F]`` read as a
    turned ``5``) says nothing of which way its line runs."""
    return bool(word.orientation) and word.box.height >= 1.5 * word.box.width


def _collinear_phrases(f: _File) -> None:
    """An identifier makes its whole phrase PHI across the detector's line cuts too.

    :class:`PhiDecider` spreads PHI over the phrase within one detected line; the detector can
    cut one line of text in two (a short ``DR`` read upright beside a vertical ``PETROVIC``, the
    ``10`` of a vertical ``2003.02.10`` read apart as an allow-listed ``9``). A kept word (unknown
    text or allow-listed, not a PHI label) that lies on the line of a header- or pattern-matched
    PHI word, a phrase gap away at most, in a frame both are in, becomes ``phrase`` PHI, and
    spreads on in turn, as words of one detected line do in :class:`PhiDecider`.

    Unknown text (kept as ``non-phi``, not allow-listed) that follows a PHI value on its rows
    within :data:`LABEL_REACH` text heights is its *tail*: the detector left the letters between
    them out (``DR VARG`` ... ``ES`` of a ``DR HARGREAVES`` over an organ, the middle too faint
    to detect). It becomes ``phrase`` PHI too, so the mask reaches it; a tail has no tail of its
    own (a row of unknown words is not swept up one by one).

    A kept word touching a masked word of any reason on its rows (0.15 text heights apart at
    most) is a piece of that word the recognizer cut off, and is masked with it (the ``s`` of an
    unreadable ``dren`` of ``Children's``).
    """
    changed = True
    while changed:
        changed = False
        phi = [x for x in f.found if x.decision.redact and x.decision.reason.startswith(_COLLINEAR)]
        masked = [x for x in f.found if x.decision.redact]
        for k, x in enumerate(f.found):
            if (
                x.decision.redact
                or x.decision.reason not in ("non-phi", "allow-list")
                or is_label(x.word.text)
            ):
                continue
            for y in masked:
                if set(x.frames) & set(y.frames) and _touching(x.word.box, y.word.box):
                    # one word cut in two by the recognizer ("dren" unreadable, its "s" apart)
                    f.found[k] = _Found(x.word, Decision(True, "phrase"), x.frame, x.frames, x.line)
                    changed = True
                    break
            if f.found[k].decision.redact:
                continue
            for y in phi:
                if not set(x.frames) & set(y.frames):
                    continue
                rotated = _vertical(x.word) or _vertical(y.word)
                near = _collinear(x.word.box, y.word.box, rotated) and y.decision.reason != "label-value"
                tail = (
                    x.decision.reason == "non-phi"
                    and y.decision.reason != "phrase"  # a value's own tail, not a tail's tail
                    and not rotated
                    and _tail(x.word.box, y.word.box)
                )
                if near or tail:
                    f.found[k] = _Found(x.word, Decision(True, "phrase"), x.frame, x.frames, x.line)
                    changed = True
                    break


def _t(b: Box) -> Box:
    """A box in the transposed frame (rows and columns swapped)."""
    return Box(b.y0, b.x0, b.y1, b.x1)


def _trim(box: Box, core: Box, kb: Box) -> Box:
    """Cut a mask box back where a kept word beside its letters starts."""
    if kb.x0 >= core.x1:
        return Box(box.x0, box.y0, max(core.x1, min(box.x1, kb.x0)), box.y1)
    if kb.x1 <= core.x0:
        return Box(min(core.x0, max(box.x0, kb.x1)), box.y0, box.x1, box.y1)
    return box


def _grow(
    gray: np.ndarray,
    box: Box,
    core: Box,
    bright: bool | None,
    level: int | None,
    kept: list[Box],
    kept_any: list[Box],
    phi: bool = False,
) -> tuple[Box, Box, list[Box], bool]:
    """A run's mask box (text along the rows of ``gray``) grown over the glyphs the detector left
    out (never into a word kept in any frame, ``kept_any``; for a ``phi`` run also over the faint
    rest of its line, :func:`~privguard.pixels.continuation.continue_line`) and over their
    diacritics, cut back
    at the words kept in its frames (``kept``), then followed at its edge: the box, the glyph
    box, patches over letters' pieces, and whether no letter's piece was left."""
    rows, cols = gray.shape[:2]
    grown = extend_over_glyphs(gray, core, bright, kept_any, level)
    if phi:
        # a PHI line goes on in flat strokes of its colour past a faint end, and its letters'
        # rows past a box set off them on noise (see privguard.pixels.continuation)
        grown = continue_line(gray, grown, kept_any, bright)
        across = continue_rows(gray, grown, bright)
        if across != grown:
            box = box.union(across.pad(0, 1).clip(cols, rows))
            grown = across
    if grown != core:
        pad = max(2, round(0.1 * core.height))
        box = box.union(grown.pad(pad, 0).clip(cols, rows))
        core = grown
    marked = over_marks(gray, core, bright, level)
    if marked != core:
        box = box.union(marked.pad(0, max(1, round(0.05 * core.height))).clip(cols, rows))
    for kb in kept:
        if kb.overlap(box) and not kb.overlap(core):
            box = _trim(box, core, kb)
    # the mask follows the letters: patches over the pieces of them the box leaves out or ends
    # on; a piece it cannot take (into a kept word, bigger than a letter's) means no clean claim;
    # lines and plates crossing its edge do not (see privguard.pixels.follow)
    followed = follow(gray, box, core, bright, level, core.height, kept)
    return followed.box, core, list(followed.extra), followed.clear


def _runs(found: list[_Found]) -> list[list[_Found]]:
    """Redacted words grouped into runs: consecutive on a line, no kept word between, a phrase gap apart."""
    lines: dict[int, list[_Found]] = {}
    for x in found:
        lines.setdefault(x.line, []).append(x)
    out: list[list[_Found]] = []
    for members in lines.values():
        members.sort(key=lambda x: x.word.box.x0)
        run: list[_Found] = []
        for x in members:
            if not x.decision.redact or x.word.orientation:
                if run:
                    out.append(run)
                run = []
                if x.decision.redact:
                    out.append([x])
                continue
            if run:
                prev = run[-1].word.box
                b = x.word.box
                if (
                    b.gap(prev)[0] > RUN_GAP * max(b.height, prev.height)
                    or run[-1].word.bright != x.word.bright
                ):
                    out.append(run)
                    run = []
            run.append(x)
        if run:
            out.append(run)
    return out


def _widened(box: Box, left: float, right: float, cols: int) -> Box:
    """``box`` widened by ``left`` and ``right`` pixels (rounded), within the frame's columns."""
    return Box(max(0, box.x0 - round(left)), box.y0, min(cols, box.x1 + round(right)), box.y1)


def _name_rest(matcher: HeaderMatcher, text: str, box: Box, cols: int, whole: str = "") -> Box | None:
    """Where the rest of a header name read only in part lies (``FITZGER`` of FITZGERALD, its
    end over a bright organ the detector did not see as text): the box widened by the missing
    letters at the width of the letters read. None when nothing is missing."""
    read = sum(ch.isalpha() for ch in text)
    before, after = matcher.missing_letters(text)
    if read < 3 or not (before or after):
        return None
    per = box.width / max(1, len(text.strip()))
    return _widened(box, before * per, after * per, cols)


def _digits_rest(matcher: HeaderMatcher, text: str, box: Box, cols: int, whole: str = "") -> Box | None:
    """Where the rest of a header date or identifier read only in part lies (``02/10/198`` of
    02/10/1994, its last digit over an organ): the box widened by the missing digits at the width
    of the characters read. None when nothing is missing (``whole``: the text of the word's run)."""
    before, after = matcher.missing_digits(text, whole)
    if not (before or after):
        return None
    per = box.width / max(1, len(text.strip()))
    return _widened(box, before * per, after * per, cols)


#: The rest of a header value read only in part, by the reason a word was masked.
_REST_OF = {"header:name": _name_rest, "header:date": _digits_rest, "header:id": _digits_rest}


def _place_rest(matcher: HeaderMatcher, texts: list[str], box: Box | None, cols: int) -> Box | None:
    """Where the rest of a header place read only in part lies (``MEDICAL CENTER`` of ``ST.
    BARTHOLOMEW MEDICAL CENTER``, too faint for the detector): the run's box widened by the
    missing characters at the width of the characters read. None when nothing is missing."""
    if box is None:
        return None
    before, after = matcher.missing_place_text(texts)
    read = len(" ".join(t.strip() for t in texts))
    if read < 4 or not (before or after):
        return None
    per = box.width / read
    return _widened(box, before * per, after * per, cols)


def _run_place_rest(matcher: HeaderMatcher, run: list[_Found], cores: list[Box], cols: int) -> Box | None:
    """Where the rest of a header place a run of words (glyph boxes ``cores``) read in part lies
    (:func:`_place_rest`), from all its words: a word the place lacks stops the match. A word that
    could not be read may be the place's rest or not, so where the run holds one, the rest is
    measured from the place's own words (``Kingsbridge`` of ``Kingsbridge Children's Clinic``,
    ``dren`` unreadable over an organ)."""
    rest = _place_rest(matcher, [x.word.text for x in run], bounding(cores), cols)
    if rest is None and any(x.decision.reason == "unreadable" for x in run):
        own = [(x, c) for x, c in zip(run, cores, strict=True) if x.decision.reason.startswith(_PLACE)]
        rest = _place_rest(matcher, [x.word.text for x, _ in own], bounding(c for _, c in own), cols)
    return rest


#: The reasons a word is masked for as a header place.
_PLACE = ("header:place", "header:location")


def _full_rows(
    placed: list[tuple[int, Box, list[int], bool]], kept: list[tuple[Box, list[int]]]
) -> list[tuple[int, Box, list[int], bool]]:
    """Masks as tall as the text of their line: a mask much lower than the mask beside it on its
    rows (under 0.75 of its height, a run gap away at most) takes that mask's rows over its own
    columns. On low-contrast text over noise the glyphs of a short word (``DR`` of ``Ref: DR
    KOWALCZYK``) can be refined to their lower half; the name beside it shows the line's rows.
    Not where a kept word would be covered. Returns ``placed`` with those masks grown."""
    out: list[tuple[int, Box, list[int], bool]] = []
    for line, a, fa, dark in placed:
        near = []
        for _l, b, fb, _d in placed:
            if b is a or not set(fa) & set(fb):
                continue
            shared = max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
            gap = max(b.x0 - a.x1, a.x0 - b.x1, 0)
            if shared >= 0.5 * a.height and gap <= RUN_GAP * b.height:
                near.append((gap, b))
        b = min(near, key=lambda t: t[0])[1] if near else a
        grown = Box(a.x0, min(a.y0, b.y0), a.x1, max(a.y1, b.y1))
        if a.height >= 0.75 * b.height or any(kb.overlap(grown) and set(kf) & set(fa) for kb, kf in kept):
            grown = a
        out.append((line, grown, fa, dark))
    return out


def _bridges(
    placed: list[tuple[int, Box, list[int], bool]], kept: list[tuple[Box, list[int]]]
) -> list[tuple[Box, list[int], bool]]:
    """Boxes over the gaps between two masks of one line that ``_runs`` kept apart (the text's
    polarity read differently where a word crosses anatomy: ``KOWA`` on black, ``LCZYK`` on a
    bright organ) when the gap is narrower than ``RUN_GAP`` text heights and holds no kept word:
    a letter between them would be left readable, a partial mask being a leak. The bridge spans
    the rows both masks share, in the frames both are masked in."""
    out: list[tuple[Box, list[int], bool]] = []
    by_line: dict[int, list[tuple[Box, list[int], bool]]] = {}
    for line, box, frames, dark in placed:
        by_line.setdefault(line, []).append((box, frames, dark))
    for members in by_line.values():
        members.sort(key=lambda m: m[0].x0)
        for (a, fa, da), (b, fb, _db) in itertools.pairwise(members):
            gap = b.x0 - a.x1
            y0, y1 = max(a.y0, b.y0), min(a.y1, b.y1)
            frames = sorted(set(fa) & set(fb))
            if gap <= 0 or y1 <= y0 or not frames or gap > RUN_GAP * min(a.height, b.height):
                continue
            bridge = Box(a.x1, y0, b.x0, y1)
            if any(kb.overlap(bridge) and set(kf) & set(frames) for kb, kf in kept):
                continue
            out.append((bridge, frames, da))
    return out


def _unique(found: list[_Found]) -> list[_Found]:
    """The same word found in several frames counts once."""
    out: list[_Found] = []
    for x in found:
        if not any(o.word.box.iou(x.word.box) >= 0.6 and o.decision.redact == x.decision.redact for o in out):
            out.append(x)
    return out


def _pixel_count(src: Source) -> int:
    ds = src.ds
    try:
        rows = int(ds.get("Rows", 0) or 0)
        cols = int(ds.get("Columns", 0) or 0)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError):
        return 0
    return rows * cols * frames * samples
