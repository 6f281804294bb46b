"""Masks reach over the diacritics of their letters (accents above, cedillas below)."""

from __future__ import annotations

import numpy as np

from privguard.pixels.boxes import Box
from privguard.pixels.stage import over_marks


def letters(rows: int = 60, cols: int = 200) -> np.ndarray:
    g = np.full((rows, cols), 20, dtype=np.uint8)
    for x in (20, 40):  # two capitals 20 px high, an "H" each (2-pixel strokes)
        g[24:44, x : x + 2] = 240
        g[24:44, x + 8 : x + 10] = 240
        g[33:35, x : x + 10] = 240
    return g


def test_an_accent_above_and_a_cedilla_below_are_taken() -> None:
    g = letters()
    g[18:21, 42:48] = 240  # an accent 3 rows above the capital
    g[45:49, 24:27] = 240  # a cedilla just below
    core = Box(20, 24, 50, 44)
    got = over_marks(g, core, True, 240)
    assert got.y0 <= 18 and got.y1 >= 49 and (got.x0, got.x1) == (20, 50)


def test_no_marks_or_another_line_leave_the_box_as_it_is() -> None:
    core = Box(20, 24, 50, 44)
    assert over_marks(letters(), core, True, 240) == core
    g = letters(rows=90)
    g[2:22, 20:50] = 240  # a solid block right above (another line, a bar): not marks
    assert over_marks(g, core, True, 240) == core
    g = letters()
    g[14:16, 20:50] = 240  # a bar across the whole box above, a gap from the letters
    assert over_marks(g, core, True, 240) == core
    g = letters()
    g[44:52, 30:32] = 240  # a scale bar's line running 8 rows below, then ending: not a mark
    assert over_marks(g, core, True, 240) == core
    assert over_marks(letters(), core, None, 240) == core  # polarity unknown
