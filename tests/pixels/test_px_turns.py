"""Which segments are read turned: a wide, unsure segment upside down, unless its upright
reading already matches a header value (then it is PHI whichever way up it is)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from privguard.pixels.boxes import Box
from privguard.pixels.ocr import Detection, OCREngine, Reading
from privguard.pixels.textfind import FrameJob, TextFinder


class OneBox(OCREngine):
    """Detects one fixed box and reads every crop as the same unsure text; counts the crops."""

    def __init__(self, box: Box, text: str) -> None:
        self.box, self.text, self.crops = box, text, 0

    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        return [Detection([self.box]) for _ in images]

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        self.crops += len(crops)
        return [Reading(self.text, 0.7) for _ in crops]


def job(settled: object = None) -> FrameJob:
    gray = np.zeros((80, 300), dtype=np.uint8)
    cv2.putText(gray, "OYELARAN", (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    return FrameJob(0, rgb, gray, settled=settled)  # type: ignore[arg-type]


def test_unsure_wide_segments_are_read_upside_down() -> None:
    engine = OneBox(Box(15, 25, 190, 58), "OYELARAN")
    lines = TextFinder(engine).find([job()])
    assert engine.crops == 2  # upright, then 180 degrees
    assert [w.text for ln in lines[0] for w in ln.words] == ["OYELARAN"]


def test_a_header_match_upright_is_not_read_upside_down() -> None:
    engine = OneBox(Box(15, 25, 190, 58), "OYELARAN")
    TextFinder(engine).find([job(lambda t: t == "OYELARAN")])
    assert engine.crops == 1
    # a reading that does not match is still turned
    other = OneBox(Box(15, 25, 190, 58), "NVUVTAYO")
    TextFinder(other).find([job(lambda t: t == "OYELARAN")])
    assert other.crops == 2


def two_words(second: int = 170) -> FrameJob:
    gray = np.zeros((80, 400), dtype=np.uint8)
    cv2.putText(gray, "RAFAEL", (20, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
    cv2.putText(gray, "OYELARAN", (second, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
    return FrameJob(0, np.repeat(gray[:, :, None], 3, axis=2), gray)


def test_settled_words_are_not_read_again_on_their_own_crops() -> None:
    engine = OneBox(Box(15, 25, 330, 58), "RAFAEL OYELARAN")
    lines = TextFinder(engine).find([two_words()])
    assert [w.text for ln in lines[0] for w in ln.words] == ["RAFAEL", "OYELARAN"]
    assert engine.crops == 4  # upright, 180 degrees, each word on its own crop
    settled = OneBox(Box(15, 25, 330, 58), "RAFAEL OYELARAN")
    job = two_words()
    job.settled = lambda t: t in ("RAFAEL", "OYELARAN", "RAFAEL OYELARAN")
    lines = TextFinder(settled).find([job])
    assert [w.text for ln in lines[0] for w in ln.words] == ["RAFAEL", "OYELARAN"]
    assert settled.crops == 1


class TwoBoxes(OneBox):
    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        return [Detection([Box(15, 25, 135, 58), Box(140, 25, 300, 58)]) for _ in images]


def test_a_phrase_of_settled_words_is_not_read() -> None:
    engine = TwoBoxes(Box(0, 0, 1, 1), "OYELARAN")
    lines = TextFinder(engine).find([two_words(145)])
    assert len(lines[0]) == 1 and len(lines[0][0].phrases) == 1
    assert engine.crops == 5  # two words upright and at 180 degrees, and their phrase
    settled = TwoBoxes(Box(0, 0, 1, 1), "OYELARAN")
    job = two_words(145)
    job.settled = lambda t: t == "OYELARAN"
    lines = TextFinder(settled).find([job])
    assert len(lines[0]) == 1 and lines[0][0].phrases == []
    assert settled.crops == 2


class TwoLines(OneBox):
    def detect(self, images: Sequence[np.ndarray]) -> list[Detection]:
        return [Detection([Box(15, 10, 135, 34), Box(15, 50, 135, 74)]) for _ in images]


def test_verification_reads_only_lines_by_the_masks() -> None:
    gray = np.zeros((90, 200), dtype=np.uint8)
    cv2.putText(gray, "RAFAEL", (20, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    cv2.putText(gray, "RAFAEL", (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    engine = TwoLines(Box(0, 0, 1, 1), "RAFAEL")
    lines = TextFinder(engine, stroke_filter=False).find(
        [FrameJob(0, rgb, gray, regions=[Box(0, 0, 200, 90)], near=[Box(140, 50, 190, 74)])]
    )
    assert [ln.box.y0 >= 45 for ln in lines[0]] == [True]  # the far line is not read
    both = TwoLines(Box(0, 0, 1, 1), "RAFAEL")
    lines = TextFinder(both, stroke_filter=False).find([FrameJob(0, rgb, gray, regions=[Box(0, 0, 200, 90)])])
    assert len(lines[0]) == 2 and both.crops > engine.crops


def test_a_box_too_tall_for_text_does_not_swallow_a_line_it_touches() -> None:
    """A detector box over anatomy, too tall for text both ways, is dropped before boxes are
    joined: joined with a vertical name beside it, it took the name with it (found on the
    adversarial set: a CR side label never masked, the file claimed clean)."""
    import cv2
    import numpy as np
    from fakes import FakeEngine

    from privguard.pixels.boxes import Box

    gray = np.full((400, 300), 110, dtype=np.uint8)
    line = np.zeros((24, 160), dtype=np.uint8)
    cv2.putText(line, "KOWALSKI", (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 255, 2, cv2.LINE_AA)
    gray[100:260, 260:284] = np.maximum(gray[100:260, 260:284], np.rot90(line, 1))
    job = FrameJob(0, np.repeat(gray[:, :, None], 3, axis=2), gray)
    name = Box(260, 100, 284, 260)
    anatomy = Box(60, 80, 262, 300)  # touches the name's column
    segs = TextFinder(FakeEngine({}))._segments(job, [name, anatomy], None)
    letters = Box(265, 157, 279, 254)
    assert any(s.box.overlap(letters) == letters.area for s in segs)
    assert not any(s.box.width > 100 for s in segs)
