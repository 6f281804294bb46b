"""The PHI decision per word, on hand-made OCR results (decision logic only, no OCR)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from privguard.pixels.allowlist import load_allowlist
from privguard.pixels.boxes import Box
from privguard.pixels.phi_text import PhiDecider, pattern_kind, unreadable
from privguard.pixels.textfind import Line, Phrase, Word
from privguard.text.context import PhiContext


@pytest.fixture(scope="module")
def ctx() -> PhiContext:
    ds = Dataset()
    ds.PatientName = "DAVIDSON^DOUGLAS"
    ds.PatientID = "292821506"
    ds.PatientBirthDate = "19760616"
    ds.StudyDate = "20130713"
    ds.AccessionNumber = "20130714E864535"
    ds.InstitutionName = "St. Benedict Medical Center"
    ds.ReferringPhysicianName = "HUGHES^KATHLEEN"
    return PhiContext.from_dataset(ds)


@pytest.fixture(scope="module")
def decider() -> PhiDecider:
    return PhiDecider(load_allowlist())


def line(*items: tuple[str, float] | str, h: int = 20, gap: int = 10, y: int = 0) -> Line:
    """Words laid out left to right: text (confidence 0.95) or (text, confidence)."""
    words = []
    x = 0
    for it in items:
        text, conf = (it, 0.95) if isinstance(it, str) else it
        w = max(h // 2, int(len(text) * 0.6 * h))
        words.append(Word(Box(x, y, x + w, y + h), text, conf, bright=True))
        x += w + gap
    box = Box(0, y, x - gap, y + h)
    return Line(0, box, words)


def decide(decider: PhiDecider, ctx: PhiContext, ln: Line, modality: str = "CR") -> list[bool]:
    return [d.redact for d in decider.decide([ln], ctx, modality)[0]]


def test_header_values_in_all_orders_and_forms(decider: PhiDecider, ctx: PhiContext) -> None:
    assert decide(decider, ctx, line("DAVIDSON", "DOUGLAS", "[M]", "01.09.2012")) == [True] * 4
    assert decide(decider, ctx, line("Douglas", "Davidson")) == [True, True]
    assert decide(decider, ctx, line("DAVIDSON^DOUGLAS")) == [True]
    assert decide(decider, ctx, line("DAVIDS0N,", "D0UGLAS")) == [True, True]  # OCR zeros
    assert decide(decider, ctx, line("292821506")) == [True]
    assert decide(decider, ctx, line("06/16/1976")) == [True]
    assert decide(decider, ctx, line("16-Jun-1976")) == [True]


def test_phi_not_in_the_header_is_still_found(decider: PhiDecider, ctx: PhiContext) -> None:
    assert decide(decider, ctx, line("03.09.2012")) == [True]  # a date the header does not hold
    assert decide(decider, ctx, line("john.doe@example.org")) == [True]
    assert decide(decider, ctx, line("45Y")) == [True]
    assert decide(decider, ctx, line("[F]")) == [True]
    assert decide(decider, ctx, line("10:32:15")) == [True]
    assert decide(decider, ctx, line("88812345")) == [True]  # an ID-like digit run


def test_non_phi_markers_are_kept(decider: PhiDecider, ctx: PhiContext) -> None:
    assert decide(decider, ctx, line("Semi-Upright")) == [False]
    assert decide(decider, ctx, line("Portable", gap=40)) == [False]
    assert decide(decider, ctx, line("L")) == [False]
    assert decide(decider, ctx, line("PA", "ERECT", gap=40)) == [False, False]
    assert decide(decider, ctx, line("5.0cm", "C5-1", gap=40), "US") == [False, False]


def test_labels_and_their_values(decider: PhiDecider, ctx: PhiContext) -> None:
    assert decide(decider, ctx, line("DOB:", "06.16.1976")) == [False, True]
    # an unknown name after a label is masked; what follows the value is not
    assert decide(decider, ctx, line("Name:", "Jane", "Roe")) == [False, True, True]
    # an identifier makes its whole phrase PHI (issue 11); a word a phrase gap away is not in it
    assert decide(decider, ctx, line("DOB:", "06.16.1976", "CHEST")) == [False, True, True]
    assert decide(decider, ctx, line("DOB:", "06.16.1976", "CHEST", gap=40)) == [False, True, False]


def test_whole_phrase_is_phi(decider: PhiDecider, ctx: PhiContext) -> None:
    # an institution line whose distinctive word alone matches the header: every word is masked
    assert decide(decider, ctx, line("Benedict", "Children's", "Imaging", "Wing")) == [True] * 4
    # unreadable first word of a phrase takes its confident, unlisted neighbours with it
    assert decide(decider, ctx, line(("Xqzv", 0.2), "Hospital")) == [True, True]
    # but not allow-listed ones
    assert decide(decider, ctx, line(("Xqzv", 0.2), "PORTABLE")) == [True, False]


def test_partial_masks_are_leaks(decider: PhiDecider, ctx: PhiContext) -> None:
    # "St." before "Benedict Medical Center" must go with it
    assert decide(decider, ctx, line("St.", "Benedict", "Medical", "Center")) == [True] * 4
    # an initial next to a name, a title before it
    assert decide(decider, ctx, line("Dr.", "Hughes", "K")) == [True, True, True]


def test_unreadable_text_is_phi_unless_allowed(decider: PhiDecider, ctx: PhiContext) -> None:
    assert decide(decider, ctx, line(("Xqzv", 0.2))) == [True]
    assert decide(decider, ctx, line(("ბაგრატიონი", 0.9))) == [True]  # a script the weights do not cover
    assert decide(decider, ctx, line(("", 0.0))) == [True]
    assert decide(decider, ctx, line(("PORTABLE", 0.2))) == [False]  # listed, read exactly
    assert decide(decider, ctx, line(("P0RTABLE", 0.2))) == [True]  # unreadable: strict matching only


def test_confident_unknown_text_follows_the_policy(ctx: PhiContext, tmp_path: object) -> None:
    from pathlib import Path

    keep = PhiDecider(load_allowlist())
    assert decide(keep, ctx, line("Hounsfield")) == [False]
    site = Path(str(tmp_path)) / "strict.yaml"
    site.write_text("schema_version: 1\nunknown_text: redact\n")
    strict = PhiDecider(load_allowlist([site]))
    assert decide(strict, ctx, line("Hounsfield")) == [True]
    assert decide(strict, ctx, line("PORTABLE")) == [False]


def test_all_text_mode_masks_everything(ctx: PhiContext) -> None:
    d = PhiDecider(load_allowlist(), "all-text")
    assert decide(d, ctx, line("PORTABLE", "L", "DAVIDSON")) == [True, True, True]
    with pytest.raises(ValueError):
        PhiDecider(load_allowlist(), "some")


def test_header_match_wins_over_the_allowlist(decider: PhiDecider) -> None:
    ds = Dataset()
    ds.PatientName = "PORTABLE^AP"
    c = PhiContext.from_dataset(ds)
    assert decide(decider, c, line("PORTABLE", gap=40)) == [True]


def test_phrase_reading_across_detector_cuts(decider: PhiDecider, ctx: PhiContext) -> None:
    # the detector cut 11.06.2017 at its dots; the phrase crop was read whole
    ln = line("11", "06", "2017", gap=8)
    ln.phrases.append(
        Phrase(
            ln.box,
            __import__("privguard.pixels.ocr", fromlist=["Reading"]).Reading("11.06.2017", 0.9),
            [0, 1, 2],
        )
    )
    assert decide(decider, ctx, ln) == [True, True, True]
    far = line("SCOUT", "120", "kV", gap=60)
    assert decide(decider, ctx, far, "CT") == [False, False, False]


def test_other_readings_count(decider: PhiDecider, ctx: PhiContext) -> None:
    from privguard.pixels.ocr import Reading

    w = Word(Box(0, 0, 60, 20), "1", 0.9, alternatives=(Reading("DAVIDSON", 0.7),))
    assert decide(decider, ctx, Line(0, w.box, [w])) == [True]


def test_a_box_holding_several_words_is_phi_when_one_repeats_the_header(
    decider: PhiDecider, ctx: PhiContext
) -> None:
    # a faint institution line read as one box, one letter of its distinctive word misread
    # (independent set seed 27: "LAKEVEW UNIVERSITY HOSPITAL" kept as unknown text)
    ds = Dataset()
    ds.PatientName = "DELACROIX^MAXIMILIAN"
    ds.InstitutionName = "LAKEVIEW UNIVERSITY HOSPITAL"
    lake = PhiContext.from_dataset(ds)
    w = Word(Box(0, 0, 280, 12), "LAKEVEW UNIVERSITY HOSPITAL", 0.9, bright=True)
    assert decide(decider, lake, Line(0, w.box, [w])) == [True]
    plain = Word(Box(0, 0, 280, 12), "AX T2 FLAIR", 0.9, bright=True)
    assert decide(decider, lake, Line(0, plain.box, [plain])) == [False]
    # a space read as an underscore (on a dark plate, --style plate, seed 36)
    joined = Word(Box(0, 0, 280, 12), "LAKEVIEW_UNIVERSITY", 0.9, bright=True)
    assert decide(decider, lake, Line(0, joined.box, [joined])) == [True]
    snake = Word(Box(0, 0, 280, 12), "SLICE_THICKNESS", 0.9, bright=True)
    assert decide(decider, lake, Line(0, snake.box, [snake])) == [False]


def test_an_unsure_other_reading_counts_only_for_a_bracketed_sex(
    decider: PhiDecider, ctx: PhiContext
) -> None:
    """A "[F]" read turned as "5" (allow-listed) with an unsure upright "[Fl" (adversarial set,
    seed 47, hard_6): the bracketed sex is taken from the unsure reading; other patterns are not
    (an unsure "03.24" beside a "5" is noise shaped like a date)."""
    from privguard.pixels.ocr import Reading

    sex = Word(Box(0, 0, 26, 24), "5", 0.9, alternatives=(Reading("[Fl", 0.2),), orientation=270)
    assert decide(decider, ctx, Line(0, sex.box, [sex])) == [True]
    other = Word(Box(0, 0, 26, 24), "5", 0.9, alternatives=(Reading("03.24", 0.2),))
    assert decide(decider, ctx, Line(0, other.box, [other])) == [False]


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("03.24", "date"),
        ("12/25", "date"),
        ("5.0", None),
        ("1.2", None),
        ("2O13-O9-11", "date"),
        ("C5-1", None),
    ],
)
def test_pattern_kind(token: str, kind: str | None) -> None:
    assert pattern_kind(token) == kind


def test_unreadable_uses_character_density() -> None:
    assert unreadable(Word(Box(0, 0, 300, 20), "ab", 0.9), 0.5)  # far too few characters for its box
    assert not unreadable(Word(Box(0, 0, 60, 20), "ABCD", 0.9), 0.5)


def test_measurements_shaped_like_times_or_ids_are_kept(decider: PhiDecider, ctx: PhiContext) -> None:
    # independent held-out set (issue 11): a slice thickness read as a time, a window setting
    # read as one token and taken for an ID (L read as 1: 400140)
    assert decide(decider, ctx, line("1.25", "mm"), "CT") == [False, False]
    assert decide(decider, ctx, line("0.50", "s"), "CT") == [False, False]
    assert decide(decider, ctx, line("10.30", "h"), "CT")[0]  # hours: a time of day
    assert decide(decider, ctx, line("13:45"), "CT") == [True]  # a time alone still is PHI
    for t in ("W400L40", "400L40", "WW350WL-40"):
        assert pattern_kind(t) is None
    assert pattern_kind("400140") == "id"  # the same digits without the window's letters
