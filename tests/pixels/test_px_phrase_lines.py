"""An identifier makes its whole phrase PHI where the detector cut the line or missed its end.

Two false clean claims on the independent held-out set (``benchmarks/pixel_independent.py``,
seeds 4 and 6) came from these: a vertical mammography side label ``DR PETROVIC`` whose short
``DR`` was read upright as a line of its own and kept, and a CR institution line
``ST. BARTHOLOMEW MEDICAL CENTER`` whose faint end (``MEDICAL CENTER``) the detector did not see.
"""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from privguard.pixels.boxes import Box
from privguard.pixels.fuzzy import HeaderMatcher
from privguard.pixels.phi_text import Decision
from privguard.pixels.stage import (
    _collinear,
    _collinear_phrases,
    _File,
    _Found,
    _lone_labels,
    _place_rest,
    _run_place_rest,
)
from privguard.pixels.textfind import Word
from privguard.pixels.triage import Triage
from privguard.text.context import PhiContext


@pytest.fixture(scope="module")
def ctx() -> PhiContext:
    ds = Dataset()
    ds.PatientName = "PETROVIC^DESMOND"
    ds.InstitutionName = "ST. BARTHOLOMEW MEDICAL CENTER"
    ds.PatientID = "75-5853-19"
    return PhiContext.from_dataset(ds)


def test_missing_text_of_an_institution_read_in_part(ctx: PhiContext) -> None:
    m = HeaderMatcher(ctx)
    assert m.missing_place_text(["ST.", "BARTHOLOMEW"]) == (0, len(" MEDICAL CENTER"))
    assert m.missing_place_text(["BARTHOLOMEW"]) == (len("ST. "), len(" MEDICAL CENTER"))
    assert m.missing_place_text(["BARTH0LOMEW", "MEDICAL"]) == (len("ST. "), len(" CENTER"))  # misread
    assert m.missing_place_text(["ST.", "BARTHOLOMEW", "MEDICAL", "CENTER"]) == (0, 0)  # whole
    # generic words alone say nothing about which institution it is: no extension from them
    assert m.missing_place_text(["MEDICAL", "CENTER"]) == (0, 0)
    assert m.missing_place_text(["ROYAL", "INFIRMARY"]) == (0, 0)


def test_the_mask_reaches_where_the_rest_of_the_institution_lies(ctx: PhiContext) -> None:
    m = HeaderMatcher(ctx)
    read = Box(2, 79, 182, 98)  # "ST. BARTHOLOMEW": 15 characters, 12 px each
    rest = _place_rest(m, ["ST.", "BARTHOLOMEW"], read, 1024)
    assert rest == Box(2, 79, 182 + 15 * 12, 98)
    assert _place_rest(m, ["ST.", "BARTHOLOMEW"], read, 300) == Box(2, 79, 300, 98)  # not past the frame
    assert _place_rest(m, ["ST.", "BARTHOLOMEW", "MEDICAL", "CENTER"], read, 1024) is None


def test_collinear_boxes() -> None:
    # upright: side by side on the same rows, a space apart
    assert _collinear(Box(10, 10, 40, 30), Box(48, 12, 120, 30), rotated=False)
    assert not _collinear(Box(10, 10, 40, 30), Box(90, 12, 160, 30), rotated=False)  # far apart
    assert not _collinear(Box(10, 10, 40, 30), Box(44, 40, 120, 60), rotated=False)  # next row
    # vertical text: stacked in the same columns
    assert _collinear(Box(8, 408, 26, 432), Box(10, 292, 25, 396), rotated=True)
    assert not _collinear(Box(8, 470, 26, 500), Box(10, 292, 25, 396), rotated=True)
    assert not _collinear(Box(60, 408, 80, 432), Box(10, 292, 25, 396), rotated=True)


def _file(ctx: PhiContext, found: list[_Found]) -> _File:
    f = _File(0, None, ctx, Triage(True, "test"), 0.0)  # type: ignore[arg-type]
    f.found = found
    return f


def _found(text: str, box: Box, reason: str, redact: bool, orientation: int = 0, line: int = 0) -> _Found:
    return _Found(Word(box, text, 0.9, orientation=orientation), Decision(redact, reason), 0, [0], line)


def test_a_word_cut_off_a_vertical_name_goes_with_it(ctx: PhiContext) -> None:
    # the MG side label "DR PETROVIC" written bottom to top: "PETROVIC" read rotated, "DR" upright
    name = _found("PETROVIC", Box(10, 292, 25, 396), "header:name", True, orientation=270, line=1)
    title = _found("DR", Box(8, 408, 26, 432), "non-phi", False, line=2)
    far = _found("RCC", Box(690, 80, 762, 99), "non-phi", False, line=3)
    label = _found("Ref:", Box(8, 440, 26, 470), "allow-list", False, line=4)
    f = _file(ctx, [name, title, far, label])
    _collinear_phrases(f)
    assert [x.decision for x in f.found] == [
        name.decision,
        Decision(True, "phrase"),
        far.decision,  # not on the line
        label.decision,  # a PHI label stays: it says what was there, not whose it was
    ]


def test_an_allow_listed_piece_of_a_vertical_value_goes_with_it(ctx: PhiContext) -> None:
    # a vertical "2003.02.10" read as "2003.02" and, apart, an allow-listed "9" (its "10")
    value = _found("2003.02", Box(4, 364, 22, 446), "pattern:id", True, orientation=270, line=1)
    piece = _found("9", Box(4, 335, 22, 352), "allow-list", False, line=2)
    f = _file(ctx, [value, piece])
    _collinear_phrases(f)
    assert f.found[1].decision == Decision(True, "phrase")


def test_the_phrase_spreads_along_a_line_cut_in_pieces(ctx: PhiContext) -> None:
    a = _found("A5665860", Box(100, 10, 180, 28), "header:id", True, line=1)
    b = _found("EXT", Box(186, 10, 220, 28), "non-phi", False, line=2)
    c = _found("7", Box(226, 10, 240, 28), "non-phi", False, line=3)
    other_frame = _Found(Word(Box(246, 10, 280, 28), "X", 0.9), Decision(False, "non-phi"), 1, [1], 4)
    f = _file(ctx, [a, b, c, other_frame])
    _collinear_phrases(f)
    assert [x.decision.redact for x in f.found] == [True, True, True, False]


def test_nothing_changes_without_header_or_pattern_phi(ctx: PhiContext) -> None:
    a = _found("Im", Box(100, 10, 130, 28), "unreadable", True, line=1)
    b = _found("25/40", Box(136, 10, 200, 28), "non-phi", False, line=2)
    f = _file(ctx, [a, b])
    _collinear_phrases(f)
    assert not f.found[1].decision.redact


def test_a_short_word_read_turned_is_no_vertical_line(ctx: PhiContext) -> None:
    # a "[F]" read as a turned "5" (PHI by its upright reading) above an "R" marker: the box is
    # square, so the R is not stacked on its line
    sex = _found("5", Box(422, 432, 448, 456), "pattern:sex", True, orientation=270, line=1)
    marker = _found("R", Box(436, 467, 448, 480), "allow-list", False, line=2)
    f = _file(ctx, [sex, marker])
    _collinear_phrases(f)
    assert not f.found[1].decision.redact


def test_a_label_whose_value_was_not_found_withholds_the_clean_claim(ctx: PhiContext) -> None:
    # "Ref:" with the physician's name too faint to detect: only a piece ("ES") far along the line
    label = _found("Ref:", Box(8, 49, 32, 58), "non-phi", False, line=1)
    piece = _found("ES", Box(108, 48, 127, 58), "non-phi", False, line=2)
    f = _file(ctx, [label, piece])
    assert _lone_labels(f) == 1
    # with its value found beside it, the label is not alone
    value = _found("HARGREAVES", Box(38, 49, 120, 58), "header:name", True, line=1)
    f = _file(ctx, [label, value])
    assert _lone_labels(f) == 0
    # a word that is no label says nothing
    f = _file(ctx, [_found("STANDING", Box(8, 49, 80, 58), "allow-list", False, line=1)])
    assert _lone_labels(f) == 0


def test_unknown_text_after_a_value_beyond_an_undetected_middle_goes_with_it(ctx: PhiContext) -> None:
    # "Ref: DR HARGREAVES" over an organ: "DR VARG" and "ES" detected, "REAV" between them not
    label = _found("Ref:", Box(8, 49, 32, 58), "label-value", True, line=1)
    value = _found("DR VARG", Box(34, 48, 93, 59), "label-value", True, line=1)
    tail = _found("ES", Box(108, 48, 127, 58), "non-phi", False, line=2)
    far = _found("TE", Box(150, 48, 170, 59), "non-phi", False, line=4)  # over 3 heights from both
    below = _found("64", Box(100, 62, 118, 72), "non-phi", False, line=5)
    f = _file(ctx, [label, value, tail, far, below])
    _collinear_phrases(f)
    assert [x.decision.redact for x in f.found] == [True, True, True, False, False]
    # allow-listed text there stays (a probe name after a date on an ultrasound banner)
    probe = _found("L12-5", Box(108, 48, 148, 59), "allow-list", False, line=3)
    f = _file(ctx, [label, value, probe])
    _collinear_phrases(f)
    assert not f.found[2].decision.redact
    # a value's tail only: unknown text before a value, beyond a phrase gap, stays
    before = _found("XR", Box(0, 48, 18, 59), "non-phi", False, line=6)
    f = _file(ctx, [before, _found("DR VARG", Box(40, 48, 93, 59), "label-value", True, line=1)])
    _collinear_phrases(f)
    assert not f.found[0].decision.redact


def test_a_kept_piece_touching_a_masked_word_goes_with_it(ctx: PhiContext) -> None:
    # "Children's" over an organ read as an unreadable "dren" and, touching it, an allow-listed "s"
    piece = _found('dren"', Box(110, 38, 141, 49), "unreadable", True, line=1)
    s_ = _found("s", Box(141, 38, 150, 49), "allow-list", False, line=2)
    marker = _found("L", Box(180, 38, 188, 49), "allow-list", False, line=3)  # a phrase gap on
    label = _found("ID:", Box(100, 38, 110, 49), "allow-list", False, line=4)  # a PHI label stays
    f = _file(ctx, [piece, s_, marker, label])
    _collinear_phrases(f)
    assert [x.decision.redact for x in f.found] == [True, True, False, False]


def test_the_rest_of_a_place_beside_an_unreadable_word_is_measured_from_the_place(ctx: PhiContext) -> None:
    m = HeaderMatcher(ctx)
    # "BARTHOLOMEW" (11 characters, 8 px each) and an unreadable word: the run as a whole matches
    # no place, the place's own word lacks "ST. " before it and " MEDICAL CENTER" after it
    word = _found("BARTHOLOMEW", Box(40, 10, 128, 24), "header:place", True, line=1)
    garbled = _found("~MFD1", Box(136, 10, 180, 24), "unreadable", True, line=1)
    rest = _run_place_rest(m, [word, garbled], [word.word.box, garbled.word.box], 1024)
    assert rest == Box(40 - 4 * 8, 10, 128 + 15 * 8, 24)
    # a readable word the place lacks stops the match (a "Hospital" that is not the place's)
    other = _found("Hospital", Box(136, 10, 200, 24), "phrase", True, line=1)
    assert _run_place_rest(m, [word, other], [word.word.box, other.word.box], 1024) is None
