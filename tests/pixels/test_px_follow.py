"""Masks that follow the glyphs (privguard.pixels.follow): patches over the letters' pieces a PHI box
leaves out or ends on, within bounds, and whether strokes were left touching it (no clean claim)."""

from __future__ import annotations

import numpy as np

from privguard.pixels.boxes import Box
from privguard.pixels.follow import Followed, follow


def _letters(bg: int = 20, ink: int = 220, rows: int = 80, cols: int = 160) -> np.ndarray:
    """Three block 'letters' 12 px tall on rows 30..41 at x 20..27, 32..39 and 44..51."""
    g = np.full((rows, cols), bg, dtype=np.uint8)
    for x0 in (20, 32, 44):
        g[30:42, x0 : x0 + 2] = ink  # stem
        g[30:32, x0 : x0 + 8] = ink  # top bar
        g[36:38, x0 : x0 + 8] = ink  # middle bar
    return g


def _covered(g: np.ndarray, got: Followed, ink: int, dx: int = 0, dy: int = 0) -> bool:
    """Every ink pixel lies inside the box or a patch, none on their outermost rows/columns."""
    inside = np.zeros(g.shape, dtype=bool)
    for b in (got.box, *got.extra):
        b = b.shift(dx, dy)
        inside[max(0, b.y0) : b.y1, max(0, b.x0) : b.x1] = True
    strict = inside.copy()
    strict[1:-1, 1:-1] &= inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
    return not bool(((g == ink) & ~strict).any())


def test_trailing_letter_cut_in_half_is_covered() -> None:
    g = _letters()
    core = Box(20, 30, 47, 42)  # the detector cut the last letter after its stem
    got = follow(g, core.pad(2), core, True, 220, core.height)
    assert got.clear
    assert _covered(g, got, 220)
    assert max(b.x1 for b in got.extra) <= 52 + 1  # a patch over the letter, not to the limit


def test_edge_rows_of_the_letters_are_taken_in() -> None:
    g = _letters()
    core = Box(20, 31, 52, 41)  # the glyph rows missed the letters' top and bottom rows
    got = follow(g, core, core, True, 220, core.height)
    assert got.clear and _covered(g, got, 220)
    assert min(b.y0 for b in got.extra) == 29 and max(b.y1 for b in got.extra) == 43


def test_speckle_not_connected_to_the_letters_is_not_followed() -> None:
    g = _letters()
    g[26, 30] = g[26, 31] = 220  # grains above the box's top edge, apart from the letters
    g[27, 58:61] = 220
    core = Box(20, 30, 52, 42)
    box = core.pad(2)
    got = follow(g, box, core, True, 220, core.height)
    assert got.clear and got.box == box and not got.extra


def test_strokes_running_past_the_limit_mean_no_clean_claim() -> None:
    g = _letters()
    g[36:38, 52:140] = 220  # a bar joined to the last letter, running on far to the right
    core = Box(20, 30, 52, 42)
    got = follow(g, core.pad(2), core, True, 220, core.height)
    assert not got.clear
    assert not got.extra  # the bar is not a letter: no patch along it


def test_a_kept_word_stops_the_growth_and_the_claim() -> None:
    g = _letters()
    core = Box(20, 30, 47, 42)
    kept = Box(48, 28, 60, 44)  # the cut letter's other half lies in a word kept as non-PHI
    got = follow(g, core.pad(1), core, True, 220, core.height, [kept])
    assert not got.clear
    assert all(b.overlap(kept) == 0 for b in got.extra)


def test_inverse_video_read_as_bright_still_followed() -> None:
    # dark letters on a light plate: the reader gave bright text at the plate's level
    g = np.full((80, 160), 10, dtype=np.uint8)
    g[24:50, 10:70] = 250  # the plate
    plate = _letters(bg=250, ink=0)[24:50, 10:70]
    g[24:50, 10:70] = plate
    core = Box(20, 31, 52, 41)
    got = follow(g, core, core, True, 250, core.height)
    assert _covered(g[24:50, 10:70], got, 0, -10, -24)


def test_letters_cut_by_the_image_border_are_clear() -> None:
    g = _letters()[:, 24:]  # the first letter runs off the left border
    core = Box(0, 30, 28, 42)
    got = follow(g, core, core, True, 220, core.height)
    assert got.clear and got.box.x0 == 0
    inside = np.zeros(g.shape, dtype=bool)
    for b in (got.box, *got.extra):
        inside[b.y0 : b.y1, b.x0 : b.x1] = True
    assert not ((g == 220) & ~inside).any()


def test_low_contrast_or_unknown_polarity_leaves_the_box() -> None:
    g = _letters(bg=100, ink=110)
    core = Box(20, 31, 47, 41)
    assert follow(g, core, core, True, 110, core.height) == Followed(core, True)
    assert follow(g, core, core, None, None, core.height) == Followed(core, True)
