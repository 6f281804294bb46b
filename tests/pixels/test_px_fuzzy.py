"""OCR-tolerant matching of burned-in words against the file's header values."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from privguard.pixels.fuzzy import HeaderMatcher, alpha_fold, digits, distance
from privguard.text.context import PhiContext


@pytest.fixture(scope="module")
def matcher() -> HeaderMatcher:
    ds = Dataset()
    ds.PatientName = "KAUFMAN^SCOTT"
    ds.PatientID = "6774825273"
    ds.PatientBirthDate = "19430722"
    ds.StudyDate = "20130911"
    ds.AccessionNumber = "20130912E801911"
    ds.InstitutionName = "St. Benedict Medical Center"
    ds.ReferringPhysicianName = "BAILEY^THERESA"
    return HeaderMatcher(PhiContext.from_dataset(ds))


def test_helpers() -> None:
    assert distance("KAUFMAN", "KAUFMAN", 2) == 0
    assert distance("SCOI", "SCOTT", 2) == 2
    assert distance("ABCDEFG", "XYZ", 2) == 3  # bounded
    assert alpha_fold("SC0TT") == "SCOTT"
    assert digits("O7.22.I943") == "07221943"


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("KAUFMAN", "name"),
        ("Kaufman,", "name"),
        ("KAUFMAN^SCOTT", "name"),
        ("SCOI", "name"),  # misread
        ("SCO", "name"),  # read in part
        ("KAUFMANASCOTT", "name"),  # '^' read as 'A'
        ("SCOTTKAUFMAN", "name"),  # reversed order, no separator
        ("Theresa", "name"),
        ("6774825273", "id"),
        ("677482S273", "id"),  # S for 5
        ("MRN:6774825273", "id"),
        ("20130912E801911", "id"),
        ("07.22.1943", "date"),
        ("22/07/1943", "date"),
        ("19430722", "date"),
        ("O7-22-43", "date"),
        ("Benedict", "place"),
    ],
)
def test_matches(matcher: HeaderMatcher, token: str, kind: str) -> None:
    assert matcher.match(token) == kind


@pytest.mark.parametrize(
    "token", ["PORTABLE", "AP", "L", "SUPINE", "120kV", "5.0cm", "CHEST", "Medical", "2012"]
)
def test_does_not_match_non_phi(matcher: HeaderMatcher, token: str) -> None:
    assert matcher.match(token) is None


def test_runs(matcher: HeaderMatcher) -> None:
    assert (0, 3, "date") in matcher.match_runs(["07", "22", "1943"])
    assert matcher.match_runs(["67748", "25273"]) == [(0, 2, "id")]
    # a run must not absorb a neighbour, nor a label before the value
    assert matcher.match_runs(["6774825273", "L40"]) == []
    assert matcher.match_runs(["DOB:", "07.22.1943"]) == []
    assert matcher.is_place_word("Medical") and matcher.is_place_word("St.")
    assert matcher.is_name_word("Kaufmann")


def test_cjk_names() -> None:
    ds = Dataset()
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    m = HeaderMatcher(PhiContext.from_dataset(ds))
    assert m.match("山田太郎") == "name"
    assert m.match("Yamada") == "name"


def test_names_with_diacritics_match_their_base_letters() -> None:
    """The English recognizer reads only base letters; the header keeps the name as written."""
    from privguard.pixels.fuzzy import base_letters

    assert base_letters("SZŐKE") == "SZOKE" and base_letters("ØSTERGAARD") == "OSTERGAARD"
    assert base_letters("ŁUKASZ") == "LUKASZ" and base_letters("straße") == "strasse"
    assert base_letters("佐藤") == "佐藤" and base_letters("김민수") == "김민수"  # other scripts kept
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "NÚÑEZ^ÅSA^R"
    ds.InstitutionName = "Clinique Lefèvre"
    m = HeaderMatcher(PhiContext.from_dataset(ds))
    assert m.match("NUNEZ") == "name" and m.match("ASA") == "name"
    assert m.match("NÚÑEZ,") == "name"
    assert m.match("LEFEVRE") == "place"
    assert m.match("PORTABLE") is None


def test_a_reading_with_no_digit_must_fold_to_an_exact_value(matcher: HeaderMatcher) -> None:
    # "OTZZAB" folds to 072248, one digit off the birth date's 072243: letters read as digits
    # that closely are noise (a turned "Im 25/40" read "Oblsz WI" was masked as a date)
    assert matcher.match("OTZZAB") is None
    assert matcher.match("OTZZAE") is None  # 072243 would need E read as 3: no such fold
    assert matcher.match("O7ZZ4B") == "date"  # digits read: the usual OCR tolerance


def test_digits_missing_from_a_date_or_identifier_read_in_part(matcher: HeaderMatcher) -> None:
    assert matcher.missing_digits("07/22/194") == (0, 1)  # the last digit over an organ
    assert matcher.missing_digits("07/22/196") == (0, 1)  # and its last read digit misread
    assert matcher.missing_digits("4825273") == (3, 0)  # 6774825273 read from its fourth digit
    assert matcher.missing_digits("07/22/1943") == (0, 0)  # whole
    assert matcher.missing_digits("ID 6774825273") == (0, 0)  # whole, with a label glued on
    assert matcher.missing_digits("512") == (0, 0)  # too short to say
    assert matcher.missing_digits("3141592") == (0, 0)  # begins and ends no value


def test_no_digits_are_missing_from_a_value_whole_across_its_run(matcher: HeaderMatcher) -> None:
    # "1943" begins 19430722 and ends 07221943: alone it says nothing of which side is missing
    assert matcher.missing_digits("1943") == (0, 0)
    # "221943" alone lacks the "07" before it; read as "07/" and "221943", the run holds it whole
    assert matcher.missing_digits("221943", whole="07/ 221943") == (0, 0)
    assert matcher.missing_digits("221943") != (0, 0)
