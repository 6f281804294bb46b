"""Cine counters and timers are not PHI, however the reader cut or misread them in a frame
(stage._cine_overlays): a timer read as a static part ("00.") next to PHI and a changing part,
and a counter read with the wrong polarity in one frame."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from privguard.pixels.boxes import Box
from privguard.pixels.phi_text import Decision
from privguard.pixels.stage import _cine_overlays, _File, _Found
from privguard.pixels.textfind import Word

FONT = cv2.FONT_HERSHEY_SIMPLEX


def _stack(n: int = 6) -> np.ndarray:
    """A dark cine: a counter "k/6" at x 10, a timer "00.0ks" at x 60, an ID at x 160 (static)."""
    out = np.full((n, 60, 260), 20, dtype=np.uint8)
    for k in range(n):
        cv2.putText(out[k], f"{k + 1}/6", (10, 40), FONT, 0.6, 235, 1, cv2.LINE_AA)
        cv2.putText(out[k], f"00.0{k}s", (60, 40), FONT, 0.6, 235, 1, cv2.LINE_AA)
        cv2.putText(out[k], "4054875", (160, 40), FONT, 0.6, 235, 1, cv2.LINE_AA)
    return out


def _word(gray: np.ndarray, frame: int, box: Box, text: str, bright: bool = True) -> Word:
    patch = gray[frame, box.y0 : box.y1, box.x0 : box.x1]
    mask = patch > 120 if bright else patch <= 120
    return Word(box, text, 0.4, bright=bright, mask=mask)


class _Rendering:
    def __init__(self, gray: np.ndarray) -> None:
        self.gray = gray


def _file(gray: np.ndarray, found: list[_Found]) -> Any:
    f = _File.__new__(_File)
    f.found = found
    f.rendering = _Rendering(gray)  # type: ignore[assignment]
    return f


def test_a_timer_cut_next_to_an_id_and_a_counter_of_the_wrong_polarity_are_kept() -> None:
    g = _stack()
    static, changing = Box(58, 24, 92, 46), Box(92, 24, 130, 46)
    idbox, counter = Box(158, 24, 250, 46), Box(8, 24, 48, 46)
    every = [0, 1, 2, 3, 4, 5]
    found = [
        # frame 0: the timer read as a static "00 ," (in the ID's phrase) and "Oos" (unsure, beside it)
        _Found(_word(g, 0, static, "00 ,"), Decision(True, "phrase"), 0, [0, 2, 5], 1),
        _Found(_word(g, 0, changing, "Oos"), Decision(True, "adjacent"), 0, [0, 2, 5], 1),
        _Found(_word(g, 0, idbox, "4054875"), Decision(True, "header:id"), 0, every, 1),
        # frame 1: the same places read as non-PHI
        _Found(_word(g, 1, static, "00"), Decision(False, "allow-list"), 1, [1, 3, 4], 2),
        _Found(_word(g, 1, changing, "01s"), Decision(False, "allow-list"), 1, [1, 3, 4], 2),
        _Found(_word(g, 1, counter, "2/6"), Decision(True, "pattern:date"), 1, [1], 2),
        # frame 3: the counter read as dark text (its glyph mask is the background's)
        _Found(_word(g, 3, counter, "4/6", bright=False), Decision(True, "pattern:date"), 3, every, 3),
    ]
    f = _file(g, found)
    _cine_overlays(f)
    got = {(x.word.text, x.frame): x.decision for x in f.found}
    for key in [("00 ,", 0), ("Oos", 0), ("2/6", 1), ("4/6", 3)]:
        assert got[key] == Decision(False, "cine-overlay"), key
    assert got[("4054875", 0)] == Decision(True, "header:id")  # never reconsidered


def test_static_text_masked_for_its_phrase_stays_masked_without_a_changing_neighbour() -> None:
    g = _stack()
    static, changing, idbox = Box(58, 24, 92, 46), Box(92, 24, 130, 46), Box(158, 24, 250, 46)
    every = [0, 1, 2, 3, 4, 5]
    # digits that never change, next to the ID only, read as non-PHI in another frame: they stay
    # with the ID's phrase (no changing piece beside them says they are a timer)
    g[:, :, 92:130] = g[0:1, :, 92:130]  # the timer's changing part frozen
    found = [
        _Found(_word(g, 0, static, "00 ,"), Decision(True, "phrase"), 0, every, 1),
        _Found(_word(g, 0, changing, "00s"), Decision(True, "adjacent"), 0, every, 1),
        _Found(_word(g, 0, idbox, "4054875"), Decision(True, "header:id"), 0, every, 1),
        _Found(_word(g, 1, static, "00"), Decision(False, "allow-list"), 1, [1], 2),
    ]
    f = _file(g, found)
    _cine_overlays(f)
    assert all(x.decision.redact for x in f.found if x.frame == 0)


def test_counter_shapes_despite_stray_marks_and_a_unit_read_as_5() -> None:
    from privguard.pixels.stage import _COUNTER, _digits

    for text in ("~00.15s", "00 ,05s", "00.105", "1/6", "00:01.3", "2.40s"):
        assert _COUNTER.fullmatch(_digits(text)), text
    for text in ("L00s", "MRN 1234", "2011-10-20", "12/03/2019"):
        assert not _COUNTER.fullmatch(_digits(text)), text


def test_a_reading_at_a_place_that_changes_in_another_frame_is_the_same_overlay() -> None:
    # the counter read in frame 0 as dark text whose glyph mask misses the digit that changes,
    # and the timer's static part read unreadable: another frame's readings there change in place
    g = _stack()
    counter, timer = Box(8, 24, 48, 46), Box(58, 24, 130, 46)
    dark = Word(counter, "1/6", 0.4, bright=False, mask=np.zeros((22, 40), dtype=bool))
    found = [
        _Found(dark, Decision(True, "pattern:date"), 0, [0, 1, 2, 3, 4, 5], 1),
        _Found(_word(g, 0, Box(58, 24, 92, 46), "J00."), Decision(True, "unreadable"), 0, [0], 1),
        _Found(_word(g, 2, counter, "3/6"), Decision(True, "pattern:date"), 2, [2], 2),
        _Found(_word(g, 2, timer, "00.025"), Decision(True, "pattern:id"), 2, [2], 2),
    ]
    f = _file(g, found)
    _cine_overlays(f)
    assert all(x.decision == Decision(False, "cine-overlay") for x in f.found)
