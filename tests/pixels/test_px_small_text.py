"""Small text and names cut where they cross anatomy (issue 11, the independent held-out set).

Found on ``benchmarks/pixel_independent.py`` seeds 2 and 3: a DOB in 7-10 px glyphs on a 256x256
MR read only as ``15,`` (CRAFT at native size), ``Ref: DR FITZGERALD`` masked to ``FITZGER`` (the
end over a bright organ), ``KOWA`` and ``LCZYK`` masked apart with the letter between left, and
``DR`` of a low-contrast line masked over its lower half only. These tests need no OCR weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from pydicom.dataset import Dataset

from privguard.pixels.boxes import Box
from privguard.pixels.fuzzy import HeaderMatcher
from privguard.pixels.ocr import Detection, OCREngine, Reading
from privguard.pixels.stage import _bridges, _full_rows, _name_rest
from privguard.pixels.textfind import SMALL_REACH, SMALL_SCALE, FrameJob, TextFinder
from privguard.text.context import PhiContext


@pytest.fixture(scope="module")
def matcher() -> HeaderMatcher:
    ds = Dataset()
    ds.PatientName = "NAKAMURA^EVANGELINE"
    ds.ReferringPhysicianName = "FITZGERALD^"
    ds.PatientID = "75-5853-19"
    return HeaderMatcher(PhiContext.from_dataset(ds))


def test_missing_letters_of_a_name_read_in_part(matcher: HeaderMatcher) -> None:
    assert matcher.missing_letters("FITZGER") == (0, 3)
    assert matcher.missing_letters("ZGERALD") == (3, 0)
    assert matcher.missing_letters("FITZGERALD") == (0, 0)  # whole
    assert matcher.missing_letters("NAKAMURA,") == (0, 0)
    assert matcher.missing_letters("FI") == (0, 0)  # too short to say
    assert matcher.missing_letters("HOSPITAL") == (0, 0)  # no name


def test_the_mask_reaches_where_the_rest_of_the_name_lies(matcher: HeaderMatcher) -> None:
    box = Box(68, 49, 138, 59)  # FITZGER, 10 px per letter
    rest = _name_rest(matcher, "FITZGER", box, 256)
    assert rest == Box(68, 49, 168, 59)  # three more letters: the ALD over the organ
    assert _name_rest(matcher, "FITZGERALD", box, 256) is None
    assert _name_rest(matcher, "FITZGER", box, 150) == Box(68, 49, 150, 59)  # not past the frame


def test_a_letter_between_two_masks_of_a_line_is_covered() -> None:
    placed = [(3, Box(52, 38, 80, 46), [0], True), (3, Box(89, 36, 126, 48), [0], True)]
    assert _bridges(placed, []) == [(Box(80, 38, 89, 46), [0], True)]
    # a kept word in the gap stays
    assert _bridges(placed, [(Box(82, 38, 86, 46), [0])]) == []
    # a kept word in another frame does not matter
    assert _bridges(placed, [(Box(82, 38, 86, 46), [1])]) == [(Box(80, 38, 89, 46), [0], True)]
    # far apart (more than two text heights): separate words, not bridged
    far = [(3, Box(10, 38, 30, 46), [0], True), (3, Box(60, 38, 90, 46), [0], True)]
    assert _bridges(far, []) == []
    # other lines are never bridged
    assert _bridges([(3, Box(52, 38, 80, 46), [0], True), (4, Box(89, 38, 126, 46), [0], True)], []) == []


def test_a_short_mask_takes_the_rows_of_the_mask_beside_it() -> None:
    dr = (2, Box(596, 935, 628, 944), [0], True)  # DR: its lower half only
    name = (1, Box(636, 924, 766, 946), [0], True)
    grown = _full_rows([dr, name], [])
    assert grown[0][1] == Box(596, 924, 628, 946)
    assert grown[1] == name
    # not over a kept word
    assert _full_rows([dr, name], [(Box(600, 925, 610, 933), [0])])[0] == dr
    # masks of equal height are left as they are
    same = [(1, Box(10, 10, 40, 22), [0], True), (1, Box(45, 11, 80, 23), [0], True)]
    assert _full_rows(same, []) == same


class _Recorder(OCREngine):
    """Finds ``small`` in a whole frame, and in a magnified band one box (band coordinates)."""

    name = "recorder"
    device = "cpu"

    def __init__(self, native: list[Box], magnified: list[Box]) -> None:
        self.native = native
        self.magnified = magnified
        self.calls: list[list[tuple[int, int]]] = []

    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        self.calls.append([img.shape[:2] for img in images])
        first = len(self.calls) == 1
        return [Detection(list(self.native if first else self.magnified), None) for _ in images]

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        return [Reading("TEXT", 0.99) for _ in crops]


def _frame() -> FrameJob:
    gray = np.zeros((256, 256), dtype=np.uint8)
    gray[50:58, 10:34] = 200  # DOB, 8 px high
    gray[50:58, 60:90] = 200  # the date beyond it, which the native pass missed
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    return FrameJob(0, rgb, gray)


def test_small_text_lines_are_detected_again_magnified() -> None:
    # the band runs SMALL_REACH text heights along the line, one text height above and below
    s = SMALL_SCALE
    engine = _Recorder([Box(10, 50, 34, 58)], [Box(int(60 * s), int(8 * s), int(90 * s), int(16 * s))])
    finder = TextFinder(engine)
    lines = finder.find([_frame()])
    assert len(engine.calls) == 2
    width = 34 + SMALL_REACH * 8  # columns 0 .. the box's end + the reach
    assert engine.calls[1] == [(round(24 * s), round(width * s))]  # rows 42..66
    boxes = [w.box for line in lines[0] for w in line.words]
    assert any(b.x0 <= 62 and b.x1 >= 88 and b.y0 <= 51 and b.y1 >= 57 for b in boxes), boxes


def test_frames_with_normal_text_are_detected_once() -> None:
    gray = np.zeros((512, 512), dtype=np.uint8)
    gray[50:70, 10:80] = 200
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    engine = _Recorder([Box(10, 50, 80, 70)], [])
    TextFinder(engine).find([FrameJob(0, rgb, gray)])
    assert engine.calls == [[(512, 512)]]


def test_verification_regions_around_small_text_are_magnified() -> None:
    job = _frame()
    job.regions = [Box(0, 20, 128, 100)]
    job.text_height = 8
    engine = _Recorder([], [])
    TextFinder(engine).find([job])
    assert engine.calls == [[(round(80 * SMALL_SCALE), round(128 * SMALL_SCALE))]]
