"""Masks that follow the glyphs (privguard.pixels.follow): patches over the letters' pieces a PHI box
leaves out or ends on, within bounds, and whether strokes were left touching it (no clean claim)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pxhelpers import needs_ocr

from privguard.pixels.boxes import Box
from privguard.pixels.follow import Followed, follow

ROOT = Path(__file__).resolve().parents[2]


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
    assert max(b.x1 for b in got.extra) <= 52 + 2  # over the letter and its edge (2 px), not to the limit


def test_edge_rows_of_the_letters_are_taken_in() -> None:
    g = _letters()
    core = Box(20, 31, 52, 41)  # the glyph rows missed the letters' top and bottom rows
    got = follow(g, core, core, True, 220, core.height)
    assert got.clear and _covered(g, got, 220)
    assert min(b.y0 for b in got.extra) == 28 and max(b.y1 for b in got.extra) == 44  # 2 px margin


def test_speckle_not_connected_to_the_letters_is_not_followed() -> None:
    g = _letters()
    g[26, 30] = g[26, 31] = 220  # grains above the box's top edge, apart from the letters
    g[27, 58:61] = 220
    core = Box(20, 30, 52, 42)
    box = core.pad(2)
    got = follow(g, box, core, True, 220, core.height)
    assert got.clear and got.box == box and not got.extra


def test_a_bar_running_on_from_a_letter_is_a_structure_not_a_reason_for_review() -> None:
    g = _letters()
    g[36:38, 52:140] = 220  # a bar joined to the last letter, running on far to the right
    core = Box(20, 30, 52, 42)
    box = core.pad(2)
    got = follow(g, box, core, True, 220, core.height)
    assert got.clear and got.structures == 1
    # the bar is not a letter: patched only by the box (a quarter of a text height), not along it
    assert all(b.x1 <= box.x1 + 3 + 1 for b in got.extra)


def test_a_line_crossing_the_text_leaves_the_claim_and_gets_no_patch() -> None:
    # an arc of anatomy in the text's colour crossing the line (the project's sample ultrasound:
    # a stroke at the edge of the name's mask was taken for a letter left readable)
    g = _letters(rows=120)
    for y in range(0, 120):
        x = 30 + (y - 60) // 3
        g[y, x : x + 2] = 200
    core = Box(20, 30, 52, 42)
    box = core.pad(2)
    got = follow(g, box, core, True, 220, core.height)
    assert got.clear and got.structures == 2
    # only where it crosses the box's edge, a quarter of a text height deep (3 px) and a pixel more
    assert all(b.y0 >= box.y0 - 4 and b.y1 <= box.y1 + 4 and b.width <= 5 for b in got.extra)


def test_a_letter_s_foot_joined_to_a_bar_crossing_it_is_covered() -> None:
    # the glyph box stops two rows above the stems' feet; a scale bar runs down through the
    # second letter's stem, so that foot is one stroke with the bar
    g = _letters(rows=120)
    g[42:44, 20:22] = g[42:44, 32:34] = g[42:44, 44:46] = 220  # the feet
    g[0:120, 32:34] = 220  # the bar
    core = Box(20, 30, 52, 42)
    got = follow(g, core, core, True, 220, core.height)
    assert got.clear
    covered = np.zeros(g.shape, dtype=bool)
    for b in (got.box, *got.extra):
        covered[b.y0 : b.y1, b.x0 : b.x1] = True
    assert covered[42:44, 20:22].all() and covered[42:44, 44:46].all()  # the free feet
    assert covered[42:44, 32:34].all()  # the foot joined to the bar
    assert not covered[50:, 32:34].any() and not covered[:24, 32:34].any()  # the bar is not followed


def test_a_plate_s_surroundings_inside_the_glyph_box_are_no_letters() -> None:
    # dark letters on a light plate in a dark frame; the glyph box reaches a pixel past the plate
    g = np.full((80, 160), 40, dtype=np.uint8)
    g[26:46, 18:56] = 250
    g[26:46, 18:56] = _letters(bg=250, ink=0)[26:46, 18:56]
    core = Box(17, 29, 53, 43)
    got = follow(g, core.pad(2), core, False, 0, core.height)
    assert got.clear and not got.extra


def test_a_letter_cut_by_a_wrong_glyph_box_is_covered_to_its_own_height() -> None:
    # the glyph box sits low: the letter's upper half (5 rows) lies above it, more than a piece
    # of a 9-row letter would be, but the letter's own stroke is 14 rows tall
    g = np.full((60, 80), 30, dtype=np.uint8)
    g[20:34, 30:32] = 160
    g[20:22, 30:40] = 160
    g[26:28, 30:40] = 160
    g[20:28, 38:40] = 160
    g[28:34, 36:38] = 160
    core = Box(29, 25, 41, 34)
    got = follow(g, core.pad(2), core, True, 160, core.height)
    assert got.clear and _covered(g, got, 160)


def test_a_big_piece_left_by_the_box_means_no_clean_claim() -> None:
    g = _letters()
    g[42:53, 24:52] = 220  # a solid block under the letters, joined to them, within a text height
    core = Box(20, 30, 52, 42)
    got = follow(g, core, core, True, 220, core.height)
    assert not got.clear  # more than a letter's piece: something of the text may show there


def test_texture_around_a_piece_is_not_followed() -> None:
    rng = np.random.default_rng(3)
    g = _letters(rows=80)
    g[10:28, :] = rng.integers(0, 240, size=(18, 160), dtype=np.uint8)  # speckle over the line
    g[26:30, 30:34] = 220  # a grain of it joined to the second letter's top
    core = Box(20, 30, 52, 42)
    box = core.pad(2)
    got = follow(g, box, core, True, 220, core.height)
    assert got.clear
    assert all(b.y0 >= box.y0 - 1 for b in got.extra)  # no patch over the speckle


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


@needs_ocr
@pytest.mark.ocr
def test_the_sample_ultrasound_is_cleaned_and_claimed_clean(tmp_path: Path) -> None:
    """examples/make_samples.py's ultrasound (arcs of anatomy in the text's grey run through the
    name and ID lines): masked, verified and written with Burned In Annotation NO."""
    from privguard.deidentifier import Deidentifier, PixelOptions
    from privguard.pseudonym.keys import ProjectKey

    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "examples" / "make_samples.py")
    assert spec is not None and spec.loader is not None
    samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(samples)
    patients = [("Quackenbush^Wilhelmina", "MRN7730912", "19610423"), ("Doe^Jane", "MRN7654321", "19800202")]
    paths = []
    for i, patient in enumerate(patients):
        paths.append(tmp_path / f"us{i}.dcm")
        samples.us_screen_capture(paths[-1], patient)
    deid = Deidentifier("research", ProjectKey.generate(), pixels=PixelOptions(ocr="on", device="cpu"))
    try:
        results = deid.files(paths, tmp_path / "out")
    finally:
        deid.close()
    for r in results:
        assert r.status == "ok" and r.output is not None
        assert (r.pixels or {}).get("verification") == "passed", r.pixels
        out = pydicom.dcmread(tmp_path / "out" / r.output)
        assert out.BurnedInAnnotation == "NO"
        assert out.pixel_array[4:36, :160].max() < 255  # the white name and ID lines are gone
        assert out.pixel_array[0:20, 270:300].max() == 255  # the "L" marker is kept


def test_text_running_off_a_black_border_onto_a_smooth_organ_is_followed() -> None:
    """A ring of two flat tones (black margin above, a smooth grey organ below) is no texture:
    the trailing letter the detector cut in half is still covered (``22/08/14`` whose last
    digit's bar crossed from the MR's black corner onto anatomy, independent set seed 8)."""
    g = _letters()
    g[38:, :] = np.linspace(120, 200, 160)[None, :].astype(np.uint8)  # a smooth organ below
    g[38:42, 20:22] = 220  # the stems go on over it
    g[38:42, 32:34] = 220
    g[38:42, 44:46] = 220
    core = Box(20, 30, 47, 42)
    got = follow(g, core.pad(2), core, True, 220, core.height)
    assert got.clear
    assert max(b.x1 for b in (got.box, *got.extra)) >= 52  # the last letter's bars are covered


def test_noise_in_the_ring_still_stops_the_follower() -> None:
    rng = np.random.default_rng(4)
    g = _letters()
    noise = rng.normal(20, 12, g.shape)
    g = np.where(g == 220, 220, np.clip(noise, 0, 255)).astype(np.uint8)
    core = Box(20, 30, 47, 42)
    got = follow(g, core.pad(2), core, True, 220, core.height)
    assert got.box == core.pad(2) and not got.extra  # over noise nothing is followed


def test_a_smooth_organ_joined_to_the_letters_below_their_colour_is_no_letter_s_piece() -> None:
    """An organ's bright dome right under anti-aliased letters (independent set seed 31): its
    top is within 30% of the contrast of the letters' quartile level, so it joins them, and it
    is bigger than a letter's piece of the box's height. None of its pixels reaches the letters'
    level: it is the background's, and gets no patch (before, three 17 x 14 patches hung under
    an institution's line)."""
    g = _letters(bg=200, ink=250).astype(np.float32)
    plate = np.zeros(g.shape, dtype=np.float32)
    plate[40:52, 26:46] = 39.0  # the dome, at most 239: below the letters' level (240)
    dome = 200 + cv2.GaussianBlur(plate, (0, 0), 1.2)
    g = np.where(g == 250, 250, dome).astype(np.uint8)
    core = Box(20, 30, 52, 42)
    got = follow(g, core.pad(1), core, True, 240, core.height)
    assert got.clear and _covered(g, got, 250)
    assert not got.extra and got.structures == 1
    # the same dome drawn in the letters' colour is a piece of them, and is patched
    g2 = np.where(dome > 236, 250, g).astype(np.uint8)
    got2 = follow(g2, core.pad(1), core, True, 240, core.height)
    assert got2.extra or not got2.clear
