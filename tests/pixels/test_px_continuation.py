"""A PHI line followed past a faint end: flat strokes of the text's colour over noise.

Real burned-in text is written after acquisition in one grey level, so its strokes are flat while
the image around them is noisy. These images put grey text over a noisy gradient, the case where
the detector stopped at the faint end of a name or institution on the independent held-out set
(``benchmarks/pixel_independent.py``, seeds 6, 8, 9 and 12).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from privguard.pixels.boxes import Box
from privguard.pixels.continuation import REACH, continue_line, continue_rows, text_colour

#: matplotlib (a dependency of deid) ships DejaVu
FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


def _line(text: str, level: int, noise: float, size: int = 22, seed: int = 3) -> tuple[np.ndarray, Box]:
    """A 120x640 frame: a gradient with noise, ``text`` drawn flat at ``level``, and its ink box."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(70, 150, 640)[None, :].repeat(120, axis=0)
    frame = np.clip(ramp + rng.normal(0, noise, ramp.shape), 0, 255).astype(np.uint8)
    ink = Image.new("L", (640, 120), 0)
    font = ImageFont.truetype(str(FONT), size)
    ImageDraw.Draw(ink).text((20, 50), text, fill=255, font=font)
    alpha = np.asarray(ink) > 127  # hard strokes: the letters' pixels are exactly ``level``
    frame[alpha] = level
    ys, xs = np.nonzero(alpha)
    return frame, Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def _first_word(frame: np.ndarray, ink: Box, level: int) -> Box:
    """The ink box of the line's first word (what the detector found)."""
    cols = np.flatnonzero((frame[ink.y0 : ink.y1] == level).sum(axis=0) > 0)
    gaps = np.flatnonzero(np.diff(cols) > 6)
    end = int(cols[gaps[0]]) + 1 if gaps.size else ink.x1
    return Box(ink.x0, ink.y0, end, ink.y1)


def test_the_faint_rest_of_a_name_is_followed_to_its_end() -> None:
    frame, ink = _line("DELACROIX THADDEUS", level=112, noise=9)
    word = _first_word(frame, ink, 112)
    assert word.x1 < ink.x1 - 100  # the detector's word ends well before the line
    assert text_colour(frame, word) == 112
    grown = continue_line(frame, word, [])
    assert grown.x1 >= ink.x1 - 3  # the whole of THADDEUS
    assert grown.x1 <= ink.x1 + 12  # and not far past it: noise is not taken for strokes
    assert (grown.y0, grown.y1) == (word.y0, word.y1)  # along the rows only
    # from the last word, back to the first
    last = Box(ink.x1 - (word.x1 - word.x0), word.y0, ink.x1, word.y1)
    assert continue_line(frame, last, []).x0 <= ink.x0 + 3


def test_a_kept_word_stops_the_line() -> None:
    frame, ink = _line("DELACROIX THADDEUS", level=112, noise=9)
    word = _first_word(frame, ink, 112)
    kept = Box(word.x1 + 20, word.y0, ink.x1, word.y1)
    assert continue_line(frame, word, [kept]).x1 <= kept.x0


def test_noise_alone_is_not_text() -> None:
    rng = np.random.default_rng(5)
    frame = np.clip(rng.normal(110, 9, (120, 640)), 0, 255).astype(np.uint8)
    frame[50:70, 20:120] = 110  # a flat "word" at the noise's own mean
    core = Box(20, 50, 120, 70)
    grown = continue_line(frame, core, [])
    assert grown.x1 - core.x1 <= 10 and core.x0 - grown.x0 <= 10


def test_a_flat_background_is_left_to_the_contrast_rules() -> None:
    frame = np.zeros((120, 640), dtype=np.uint8)
    frame[50:70, 20:120:4] = 255  # white strokes on black: the flanks are as flat as the line
    frame[50:70, 200:260:4] = 255
    core = Box(20, 50, 120, 70)
    assert continue_line(frame, core, []) == core


def test_the_reach_is_bounded() -> None:
    rng = np.random.default_rng(6)
    frame = np.clip(rng.normal(110, 9, (60, 2000)), 0, 255).astype(np.uint8)
    frame[20:40, ::3] = 90  # flat strokes all the way along the rows
    frame[20:40, 1::3] = 90
    core = Box(1000, 20, 1040, 40)
    grown = continue_line(frame, core, [])
    assert grown.x1 - core.x1 <= REACH * core.height + core.height
    assert core.x0 - grown.x0 <= REACH * core.height + core.height


def test_the_text_colour_is_not_a_margin_above_the_line() -> None:
    """White letters whose box starts on a black margin and ends over a smooth organ (an MR
    corner, independent set seed 6): the black is the margin's, not the letters'; a line of
    white text below and above it does not make white a background."""
    frame = np.zeros((120, 300), dtype=np.uint8)
    frame[60:, :] = np.linspace(100, 190, 300)[None, :].astype(np.uint8)  # organ from row 60
    for y in (30, 54, 78):  # three lines of white "letters", 10 px tall
        for x in range(20, 200, 9):
            frame[y : y + 10, x : x + 2] = 255
            frame[y : y + 2, x : x + 6] = 255
    core = Box(100, 50, 160, 68)  # the middle line's box: black above, organ below
    assert text_colour(frame, core) == 255
    grown = continue_line(frame, core, [])
    assert grown.x0 <= 22 and grown.x1 >= 195  # along its own line
    assert (grown.y0, grown.y1) == (core.y0, core.y1)


def test_the_letters_rows_over_a_box_set_low() -> None:
    frame, ink = _line("MRN797399", level=108, noise=12, size=18)
    low = Box(ink.x0, ink.y0 + 3, ink.x1, ink.y1 + 3)  # the detector's box, three pixels low
    got = continue_rows(frame, low)
    assert got.y0 <= ink.y0 + 1  # the letters' tops are taken in
    assert got.y0 >= ink.y0 - 3  # not the rows above them


def test_the_black_between_white_letters_does_not_grow_the_rows() -> None:
    """White letters on a black margin whose polarity was read as dark: the black between them is
    taken for their colour, and rows of it run on above and below the line; the box keeps its
    rows (independent set seeds 15 and 19: masks twice the text's height over the image)."""
    frame = np.zeros((120, 300), dtype=np.uint8)
    for x in range(20, 200, 7):  # bold letters: the black between them is under half the box
        frame[50:60, x : x + 4] = 255
        frame[50:52, x : x + 6] = 255
    core = Box(20, 50, 200, 60)
    assert continue_rows(frame, core, bright=False) == core
